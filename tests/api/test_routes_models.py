"""GET /v1/studies/{id}/trials/{n}/model: the trial's trained model, authenticated, streamed, 404s."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.store import SqlStore
from dse.models import ModelStore, StoreSource
from dse.results import TrialRecord, split_details
from dse.spec import load_spec
from dse.trial.run import run_trial
from tests.api.conftest import READ, WRITE, fill_study, make_settings
from tests.api.factories import spec_dict, synthetic_records

BASE = {"dataset": {"name": "digits", "max_train_samples": 200, "max_test_samples": 80},
        "model": {"name": "fcnn", "hidden": [16]}, "hardware": {"preset": "hwa_standard"}, "algorithm": "hwa",
        "training": {"epochs": 1, "lr": 0.1}, "evaluation": {"repeats": 1, "drift_times_s": []}}


@pytest.fixture
def served(sqlite_store: SqlStore, tmp_path):
    """A service whose model store holds trial 0's training; trial 1 has no model."""
    models = tmp_path / "models"
    app = create_app(make_settings(sqlite_store.url, model_store=str(models)), store=sqlite_store)
    with TestClient(app) as client:
        data = spec_dict(base=BASE, constraints=[],
                         parameters=[{"name": "lr", "target": "training.lr", "type": "float", "low": 0.01,
                                      "high": 0.5}])
        sid = client.post("/v1/studies", json=data, headers=WRITE).json()["id"]
        spec = load_spec(data)
        params = {"lr": 0.1}
        metrics, details = split_details(run_trial(spec.trial_config(params), models=StoreSource(
            ModelStore(models), {"study": spec.name, "trial_id": "trial-00000", "repeat": 0}), num_threads=1))
        trained = TrialRecord.pending("trial-00000", 0, params, spec.seeds).start().complete([metrics],
                                                                                           details=[details])
        fill_study(sqlite_store, sid, [trained, *synthetic_records(1, start=1)])
        yield client, sid, metrics


def test_download_is_authenticated_and_loads_back(served, tmp_path) -> None:
    client, sid, metrics = served
    url = f"/v1/studies/{sid}/trials/0/model"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    with client.stream("GET", url, headers=READ) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
        assert "attachment" in r.headers["content-disposition"]
        body = b"".join(r.iter_bytes())
    path = tmp_path / "downloaded.model"
    path.write_bytes(body)
    from simulator import load_analog_model

    loaded = load_analog_model(path)
    assert loaded.metadata["exported_from"]["trial_id"] == "trial-00000"
    assert loaded.metadata["exported_from"]["metrics"]["accuracy"] == metrics["accuracy"]
    assert loaded.rpu_config.modifier.active  # hwa_standard's chip


def test_the_trial_shows_how_it_was_trained(served) -> None:
    client, sid, _ = served
    body = client.get(f"/v1/studies/{sid}/trials/0", headers=READ).json()
    assert body["training"] == [{"training_key": body["details"][0]["training"]["training_key"],
                                 "reused_training": False,
                                 "trained_by": {"study": "api-test", "trial_id": "trial-00000", "repeat": 0}}]


def test_missing_studies_trials_and_models_are_404(served) -> None:
    client, sid, _ = served
    for url in (f"/v1/studies/{sid}/trials/7/model", "/v1/studies/no-such-study/trials/0/model",
                f"/v1/studies/{sid}/trials/1/model"):  # trial 1 ran without a model store
        r = client.get(url, headers=READ)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json"), url
    assert "no trained model" in client.get(f"/v1/studies/{sid}/trials/1/model", headers=READ).json()["detail"]
    assert client.get(f"/v1/studies/{sid}/trials/0/model?repeat=-1", headers=READ).status_code == 422
