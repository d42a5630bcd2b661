"""Train once per training key: the loop's coordinator (no Ray), then studies on Ray with the real
trial function: two workers, resume, a second study over the same store, reuse: false."""

from __future__ import annotations

import dataclasses

import pytest

from dse.models import ModelStore
from dse.results import MemorySink, ParquetResults, TrialState, read_trials
from dse.runner import RayTuneRunner, run_study
from dse.runner.loop import StudyLoop, TrialOutcome
from dse.runner.reuse import TrainingCoordinator
from dse.searchers import FINISHED, make_searcher
from dse.spec import load_spec
from dse.trial.config import training_key

BASE = {"dataset": {"name": "digits", "max_train_samples": 240, "max_test_samples": 90},
        "model": {"hidden": [12]}, "hardware": {"preset": "hwa_standard"}, "algorithm": "hwa",
        "training": {"epochs": 2, "lr": 0.1}, "evaluation": {"repeats": 1, "drift_times_s": [3600]}}


def _spec(name: str = "reuse-test", lrs=(0.1,), bits=(3, 4, 5, 6), **fields) -> object:
    return load_spec({
        "name": name, "base": BASE,
        "parameters": [
            {"name": "lr", "target": "training.lr", "type": "discrete", "values": list(lrs)},
            {"name": "adc_bits", "target": "inference.forward.out_bits", "type": "discrete", "values": list(bits)},
        ],
        "objectives": [{"metric": "accuracy", "goal": "max"}],
        "searcher": "grid", "budget": {"max_concurrent_trials": 2}, **fields,
    })


# -- the coordinator in the loop (no Ray) ------------------------------------------------------------
def _done(loop: StudyLoop, plan, state=TrialState.COMPLETED) -> None:
    loop.trial_started(plan.trial_id)
    if state is TrialState.COMPLETED:
        loop.trial_finished(plan.trial_id, TrialOutcome(state, ({"accuracy": 0.5},)))
    else:
        loop.trial_finished(plan.trial_id, TrialOutcome(state, (), error="boom"))


def test_a_trial_whose_key_is_being_trained_waits_and_others_go_ahead() -> None:
    spec = _spec(lrs=(0.1, 0.2), bits=(3, 4))
    stored: set[str] = set()
    loop = StudyLoop(spec, make_searcher(spec), MemorySink(), coordinator=TrainingCoordinator(stored.__contains__))
    first = loop.next_trial()  # lr 0.1 (key A), trains
    assert first.params == {"lr": 0.1, "adc_bits": 3}
    key_a = training_key(first.runs[0]["config"])
    assert first.runs[0]["training_key"] == key_a
    assert loop.next_trial() is None  # lr 0.1, 4 bits: key A is being trained by t00000: parked
    third = loop.next_trial()  # lr 0.2 (key B): trains meanwhile
    assert third.params == {"lr": 0.2, "adc_bits": 3} and loop.coordinator.training == {
        key_a: first.trial_id, third.runs[0]["training_key"]: third.trial_id}
    assert loop.next_trial() is None  # lr 0.2, 4 bits waits for t00002
    assert loop.next_trial() is None  # the searcher is done, but two trials wait: not FINISHED yet
    _done(loop, first)
    released = loop.next_trial()
    assert released.params == {"lr": 0.1, "adc_bits": 4} and released.trial_id == "t00001"
    assert key_a not in loop.coordinator.training  # stored now: the waiting trial loads it
    _done(loop, released)
    _done(loop, third, TrialState.FAILED)  # its training failed: the waiting trial trains key B
    last = loop.next_trial()
    assert last.params == {"lr": 0.2, "adc_bits": 4}
    assert loop.coordinator.training == {last.runs[0]["training_key"]: last.trial_id}
    _done(loop, last)
    assert loop.next_trial() == FINISHED


def test_keys_stored_before_the_study_need_no_waiting() -> None:
    spec = _spec(bits=(3, 4, 5))
    key = training_key(spec.trial_config(spec.default_params()))
    loop = StudyLoop(spec, make_searcher(spec), MemorySink(), coordinator=TrainingCoordinator({key}.__contains__))
    plans = [loop.next_trial() for _ in range(3)]
    assert all(p is not None and p != FINISHED for p in plans) and loop.coordinator.training == {}


# -- on Ray ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def first_study(ray_session, tmp_path_factory):
    """One training configuration × four ADC resolutions on two workers."""
    results = tmp_path_factory.mktemp("first")
    outcome = run_study(_spec(), results)
    return results, outcome


@pytest.mark.ray
def test_concurrent_trials_of_one_key_train_once_with_two_workers(first_study) -> None:
    results, outcome = first_study
    assert outcome.ok
    records = read_trials(results)
    assert [r.state for r in records] == [TrialState.COMPLETED] * 4
    trainers = [r for r in records if not r.reused_training]
    assert len(trainers) == 1  # two workers, four trials of one key: one training
    trainer = trainers[0]
    key = trainer.training_keys[0]
    for r in records:
        assert r.training_keys == (key,)
        assert r.training[0]["trained_by"] == {"study": "reuse-test", "trial_id": trainer.trial_id, "repeat": 0}
        assert r.metrics["train_time_s"] == trainer.metrics["train_time_s"]  # the training's own time
        assert r.metrics["train_loss"] == trainer.metrics["train_loss"]
        assert [m.epoch for m in r.measurements] == [1, 2]  # the searcher sees ordinary trials
    assert len({r.metrics["energy_per_inference_nj"] for r in records}) == 4  # four ADCs, four prices
    assert list(ModelStore(results / "models").keys()) == [key]


@pytest.mark.ray
def test_resume_of_a_study_whose_models_are_stored_trains_nothing(first_study, tmp_path) -> None:
    results, _ = first_study
    spec = _spec()
    # A run killed while the last two trials ran: their records say RUNNING, the model is stored.
    history = [r if r.number < 2 else dataclasses.replace(r, state=TrialState.RUNNING, repeat_metrics=(), metrics={},
                                                          metrics_std={}, details=(), finished_at=None, measurements=())
               for r in read_trials(results)]
    sink = MemorySink(history)
    outcome = RayTuneRunner(spec, sink, history=history, model_store=results / "models").run()
    assert outcome.ok
    rerun = [r for r in sink.records() if r.number >= 2]
    assert [r.state for r in rerun] == [TrialState.COMPLETED] * 2
    assert all(r.reused_training for r in rerun)


@pytest.mark.ray
@pytest.mark.slow  # two more studies on Ray (about 50 s on 2 cores)
def test_a_second_study_over_the_same_store_trains_nothing_and_reuse_false_trains_all(first_study, tmp_path) -> None:
    results, _ = first_study
    before = {r.params["adc_bits"]: r for r in read_trials(results)}
    second = tmp_path / "second"
    outcome = run_study(_spec("another-study", bits=(3, 6)), second, model_store=results / "models")
    assert outcome.ok
    records = read_trials(second)
    assert len(records) == 2 and all(r.reused_training for r in records)
    assert {r.training[0]["trained_by"]["study"] for r in records} == {"reuse-test"}
    assert not (second / "models").exists()  # the shared store was used
    for r in records:  # same seeds, same model, same evaluation: the same metrics
        same = before[r.params["adc_bits"]]
        assert {k: v for k, v in r.metrics.items() if k != "eval_time_s"} == \
            {k: v for k, v in same.metrics.items() if k != "eval_time_s"}
    # reuse: false trains every trial, in its own results directory too
    off = tmp_path / "off"
    with ParquetResults(off, _spec("no-reuse", bits=(3, 6), reuse=False)) as sink:
        RayTuneRunner(_spec("no-reuse", bits=(3, 6), reuse=False), sink, model_store=results / "models").run()
    records = read_trials(off)
    assert len(records) == 2 and all(r.reused_training is False for r in records)
    for r in records:
        assert r.training[0]["trained_by"] == {} or r.training[0]["trained_by"]["trial_id"] == r.trial_id
        assert r.metrics["accuracy"] == before[r.params["adc_bits"]].metrics["accuracy"]
