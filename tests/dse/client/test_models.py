"""A service running the real trial function keeps its models and serves them: the client
downloads a trial's model and the simulator loads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dse.client.conftest import READ_TOKEN, WRITE_TOKEN, start_service

pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.slow]  # a service and two real trials

SPEC = {
    "name": "client-models",
    "base": {"dataset": {"name": "digits", "max_train_samples": 200, "max_test_samples": 80},
             "model": {"name": "fcnn", "hidden": [8]}, "hardware": {"preset": "hwa_standard"}, "algorithm": "hwa",
             "training": {"epochs": 1, "lr": 0.1}, "evaluation": {"repeats": 1, "drift_times_s": []}},
    "parameters": [{"name": "adc_bits", "target": "inference.forward.out_bits", "type": "discrete",
                    "values": [4, 8]}],
    "objectives": [{"metric": "accuracy", "goal": "max"}],
    "searcher": "grid", "budget": {"max_concurrent_trials": 1},
}


def test_the_service_keeps_models_and_the_client_downloads_one(tmp_path: Path, ray_session: Any) -> None:
    from dse.client import Client, StudyNotFoundError
    from dse.models import ModelStore
    from simulator import load_analog_model

    store = tmp_path / "models"
    proc = start_service(tmp_path, ray_session, trial_function="dse.trial.run:run_trial", model_store=str(store))
    try:
        with Client(proc.url, token=WRITE_TOKEN) as client:
            study = client.wait(client.submit(SPEC).id, timeout_s=600)
            assert study.state == "COMPLETED", study
        with Client(proc.url, token=READ_TOKEN) as reader:
            records = reader.records(study.id)
            assert [r.state.value for r in records] == ["COMPLETED", "COMPLETED"]
            assert [r.reused_training for r in records] == [False, True]  # one training, two chips
            path = reader.download_model(study.id, 1, tmp_path / "chip.model")
            with pytest.raises(StudyNotFoundError):
                reader.download_model(study.id, 9, tmp_path / "none.model")
    finally:
        proc.stop()
    loaded = load_analog_model(path)
    assert loaded.rpu_config.forward.out_bits == 8 and loaded.metadata["exported_from"]["params"] == {"adc_bits": 8}
    assert list(ModelStore(store).keys()) == [records[0].training_keys[0]]
