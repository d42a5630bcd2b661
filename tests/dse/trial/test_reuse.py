"""run_trial with a model store: train once, load and evaluate, identical metrics, corrupt files."""

from __future__ import annotations

import pytest

from dse.models import ModelStore, StoreSource
from dse.trial.config import training_key
from dse.trial.run import run_trial, static_cost
from simulator import load_analog_model

CONFIG = {"dataset": {"name": "digits", "max_train_samples": 300, "max_test_samples": 120},
          "model": {"hidden": [16]}, "hardware": {"preset": "hwa_standard"}, "algorithm": "hwa",
          "training": {"epochs": 2, "lr": 0.1}, "evaluation": {"repeats": 2, "drift_times_s": [3600]}}
TIMES = {"eval_time_s"}  # this trial's own time; the rest must be equal


def _source(tmp_path, trial_id: str) -> StoreSource:
    return StoreSource(ModelStore(tmp_path), {"study": "s", "trial_id": trial_id, "repeat": 0})


def _metrics(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in TIMES and k != "_details"}


def test_a_stored_training_is_loaded_and_gives_the_metrics_of_training_anew(tmp_path) -> None:
    reports: list[list[dict]] = [[], [], []]
    fresh = run_trial(CONFIG, reports[0].append, models=_source(tmp_path, "t0"), num_threads=1)
    reused = run_trial(CONFIG, reports[1].append, models=_source(tmp_path, "t1"), num_threads=1)
    alone = run_trial(CONFIG, reports[2].append, num_threads=1)  # no store at all
    assert _metrics(fresh) == _metrics(reused)
    # Training anew without a store gives the same network (the validation passes during training
    # leave the random streams untouched) and so the same metrics, times apart.
    times = {"train_time_s", "epoch_time_s"}
    assert {k: v for k, v in _metrics(alone).items() if k not in times} == \
        {k: v for k, v in _metrics(fresh).items() if k not in times}
    key = training_key(CONFIG)
    assert fresh["_details"]["training"] == {"training_key": key, "reused_training": False,
                                             "trained_by": {"study": "s", "trial_id": "t0", "repeat": 0}}
    assert reused["_details"]["training"] == {"training_key": key, "reused_training": True,
                                              "trained_by": {"study": "s", "trial_id": "t0", "repeat": 0}}
    assert reused["train_time_s"] == fresh["train_time_s"]  # the training's own time
    assert [r["epoch"] for r in reports[1]] == [1, 2] and reports[1] == reports[0]  # replayed
    assert reused["_details"]["cost"] == fresh["_details"]["cost"]
    # The file loads on its own into an analog model with its RPU config.
    loaded = load_analog_model(ModelStore(tmp_path).path(key))
    assert loaded.metadata["training_key"] == key and loaded.rpu_config.modifier.active
    assert loaded.metadata["training"]["metrics"]["epochs"] == 2


def test_an_inference_change_reuses_the_training_and_evaluates_on_the_new_chip(tmp_path) -> None:
    base = run_trial(CONFIG, models=_source(tmp_path, "t0"), num_threads=1)
    chip = {**CONFIG, "inference": {"forward.out_bits": 3, "forward.inp_bits": 3, "cost.tech": "ecram22"}}
    other = run_trial(chip, models=_source(tmp_path, "t1"), num_threads=1)
    assert other["_details"]["training"]["reused_training"] is True
    assert base["_details"]["cost"]["technology"] == "pcm22"  # hwa_standard's own technology
    assert other["_details"]["cost"]["technology"] == "ecram22"  # the cost of the evaluation chip
    assert other["energy_per_inference_nj"] != base["energy_per_inference_nj"]
    assert other["train_loss"] == base["train_loss"]
    assert static_cost(chip).to_dict()["technology"] == "ecram22"  # `dse cost` prices the same chip


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupt_stored_model_is_retrained_never_loaded(tmp_path, damage: str) -> None:
    fresh = run_trial(CONFIG, models=_source(tmp_path, "t0"), num_threads=1)
    path = ModelStore(tmp_path).path(training_key(CONFIG))
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
    else:
        raw = raw[: len(raw) // 2]
    path.write_bytes(bytes(raw))
    again = run_trial(CONFIG, models=_source(tmp_path, "t1"), num_threads=1)
    assert again["_details"]["training"]["reused_training"] is False
    assert again["_details"]["training"]["trained_by"]["trial_id"] == "t1"
    assert _metrics(again) == {k: v for k, v in _metrics(fresh).items()} | {
        k: again[k] for k in ("train_time_s", "epoch_time_s")}
    assert path.with_name(path.name + ".corrupt").exists()
    assert ModelStore(tmp_path).read(training_key(CONFIG)) is not None  # the new training is stored


def test_an_alpha_sweep_retrains_the_detector_on_one_stored_pretraining(tmp_path) -> None:
    # RReLU draws from torch's global generator while training: the pretraining's end state is
    # restored with the model, so the retraining continues exactly as in one go.
    cfg = {"dataset": {"name": "digits", "max_train_samples": 300, "max_test_samples": 100},
           "model": {"hidden": [16], "activation": "rrelu"}, "training": {"epochs": 2},
           "algorithm": {"type": "detector_retrain", "alpha": 0.5, "retrain_epochs": 2},
           "evaluation": {"repeats": 1, "drift_times_s": []}}
    other = {**cfg, "algorithm": {**cfg["algorithm"], "alpha": 1.0}}
    first = run_trial(cfg, models=_source(tmp_path, "t0"), num_threads=1)
    reports: list[dict] = []
    second = run_trial(other, reports.append, models=_source(tmp_path, "t1"), num_threads=1)
    alone = run_trial(other, num_threads=1)
    times = {"train_time_s", "epoch_time_s"}
    assert {k: v for k, v in _metrics(second).items() if k not in times} == \
        {k: v for k, v in _metrics(alone).items() if k not in times}
    training = second["_details"]["training"]
    assert training["reused_training"] is False and training["trained_by"]["trial_id"] == "t1"
    assert training["pretraining"]["reused_training"] is True
    assert training["pretraining"]["trained_by"]["trial_id"] == "t0"
    assert training["pretraining"]["training_key"] == first["_details"]["training"]["pretraining"]["training_key"]
    assert [r["epoch"] for r in reports] == [1, 2, 3, 4]  # two replayed, two retraining epochs
    assert len(list(ModelStore(tmp_path).keys())) == 3  # one pretraining, two detector trainings
