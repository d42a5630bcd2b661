"""`dse model export`: a trial's model file, on its evaluation chip, loads back in three lines."""

from __future__ import annotations

import pytest
import torch

from dse.cli import main
from dse.models import ModelStore, StoreSource
from dse.results import ParquetResults, TrialRecord, split_details
from dse.spec import load_spec
from dse.trial.config import parse_trial_config
from dse.trial.run import prepare, run_trial
from dse.trial.training import evaluate

BASE = {"dataset": {"name": "digits", "max_train_samples": 200, "max_test_samples": 100},
        "model": {"hidden": [12]}, "hardware": {"preset": "hwa_standard"}, "algorithm": "hwa",
        "training": {"epochs": 1}, "evaluation": {"repeats": 1, "drift_times_s": []}}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results directory with two trials (one training, two ADC resolutions) and its models."""
    directory = tmp_path_factory.mktemp("results")
    spec = load_spec({"name": "export-test", "base": BASE, "searcher": "grid",
                      "parameters": [{"name": "bits", "target": "inference.forward.out_bits", "type": "discrete",
                                      "values": [4, 8]}],
                      "objectives": [{"metric": "accuracy", "goal": "max"}]})
    store = ModelStore(directory / "models")
    with ParquetResults(directory, spec) as sink:
        for number, params in enumerate(spec.iter_grid()):
            trial_id = f"t{number:05d}"
            metrics, details = split_details(run_trial(spec.trial_config(params), models=StoreSource(
                store, {"study": spec.name, "trial_id": trial_id, "repeat": 0}), num_threads=1))
            record = TrialRecord.pending(trial_id, number, params, spec.seeds).start().complete([metrics],
                                                                                               details=[details])
            sink.write_trial(record)
    return directory


def test_export_writes_the_trials_chip_and_loads_back(results, tmp_path, capsys) -> None:
    out = tmp_path / "best.model"
    assert main(["model", "export", str(results), "1", "-o", str(out)]) == 0
    from simulator import load_analog_model

    loaded = load_analog_model(out)
    assert loaded.rpu_config.forward.out_bits == 8  # trial 1's evaluation chip, not the training's
    meta = loaded.metadata
    assert meta["exported_from"]["trial_id"] == "t00001" and meta["exported_from"]["params"] == {"bits": 8}
    assert meta["trained_by"]["trial_id"] == "t00000"  # trial 1 reused trial 0's training
    # The model evaluates like the trial's clean test accuracy (same chip, same test images; the
    # forward noise is redrawn, so within a few images of 100).
    run = prepare(parse_trial_config({**BASE, "inference": {"forward.out_bits": 8}}), build=False)
    acc = evaluate(loaded.model, run.test, 1000)[0]
    assert abs(acc - meta["exported_from"]["metrics"]["test_accuracy"]) <= 0.05
    with torch.no_grad():
        assert loaded.model(run.test.x[:3]).shape == (3, 10)


def test_export_errors_name_what_exists(results, tmp_path, capsys) -> None:
    assert main(["model", "export", str(results), "t00007", "-o", str(tmp_path / "x")]) != 0
    assert "no trial 't00007'" in capsys.readouterr().err
    assert main(["model", "export", str(results), "0", "-o", str(tmp_path / "x"),
                 "--model-store", str(tmp_path / "empty")]) != 0
    assert "no stored model for training key" in capsys.readouterr().err
