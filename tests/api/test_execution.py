"""Studies executed by the service: scheduler, runner processes, queue limit, cancel, lease loss.

Real engine runs (``RayTuneRunner`` in runner processes joined to the test session's Ray) with
the engine's closed-form ``paced_trial`` (``training.epochs`` × 0.1 s per trial), so the tests
exercise scheduling and recording rather than training.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.store import SqlStore
from tests.api.conftest import READ, WRITE, make_settings
from tests.api.factories import spec_dict

pytestmark = [pytest.mark.ray, pytest.mark.integration]

PACED = "dse.runner.synthetic:paced_trial"


def grid_spec(name: str, epochs: int = 2, lrs: tuple[float, ...] = (0.01, 0.05, 0.2), **changes: Any) -> dict:
    return spec_dict(
        name=name,
        base={
            "dataset": {"name": "digits"},
            "model": {"name": "fcnn", "hidden": [16]},
            "training": {"epochs": epochs, "lr": 0.05},
        },
        parameters=[{"name": "lr", "target": "training.lr", "type": "discrete", "values": list(lrs)}],
        constraints=[],
        searcher={"type": "grid"},
        budget={"max_concurrent_trials": 1},
        **changes,
    )


@pytest.fixture(scope="module")
def ray_address(ray_session: Any) -> str:
    """GCS address of the session's Ray, for the runner processes to join."""
    return ray_session.get_runtime_context().gcs_address


@pytest.fixture
def service(tmp_path: Path, ray_address: str) -> Iterator[Callable[..., TestClient]]:
    """Start the service (with its scheduler) on a fresh SQLite store; stops it afterwards."""
    clients: list[TestClient] = []

    def start(**changes: Any) -> TestClient:
        settings = make_settings(
            f"sqlite:///{tmp_path / 'svc.db'}",
            run_studies=True,
            ray_address=ray_address,
            trial_function=PACED,
            heartbeat_s=0.5,
            lease_s=4.0,
            scheduler_interval_s=0.2,
            runner_log_dir=str(tmp_path / "logs"),
            **changes,
        )
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for c in clients:
        c.__exit__(None, None, None)


def wait_for(predicate: Callable[[], Any], timeout_s: float = 180.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def study(client: TestClient, sid: str) -> dict:
    return client.get(f"/v1/studies/{sid}", headers=READ).json()


@pytest.mark.slow
def test_queue_limit_then_both_studies_complete(service: Callable[..., TestClient]) -> None:
    client = service(max_running_studies=1)
    first = client.post("/v1/studies", json=grid_spec("first"), headers=WRITE).json()["id"]
    second = client.post("/v1/studies", json=grid_spec("second", lrs=(0.01, 0.2)), headers=WRITE).json()["id"]
    wait_for(lambda: study(client, first)["state"] == "RUNNING", what="the first study to start")
    # While the first runs, the second waits in the queue (the limit is one study at a time).
    assert study(client, second)["state"] == "QUEUED"
    wait_for(lambda: study(client, first)["state"] == "COMPLETED", what="the first study to complete")
    wait_for(lambda: study(client, second)["state"] == "COMPLETED", what="the second study to complete")
    for sid, n in ((first, 3), (second, 2)):
        body = study(client, sid)
        assert body["trials"]["by_state"]["COMPLETED"] == n and body["trials"]["total"] == n
        assert body["progress"] == 1.0 and body["runs"] == 1 and body["best"]
        trials = client.get(f"/v1/studies/{sid}/trials", headers=READ).json()["items"]
        params = [t["params"]["lr"] for t in trials]
        assert len(set(params)) == n  # every configuration ran exactly once
        detail = client.get(f"/v1/studies/{sid}/trials/0", headers=READ).json()
        assert [m["epoch"] for m in detail["measurements"]] == [1, 2]  # per-epoch reports stored
    assert study(client, first)["finished_at"] <= study(client, second)["started_at"]


def test_cancel_stops_running_trials_and_keeps_finished_ones(service: Callable[..., TestClient]) -> None:
    client = service()
    # 25 epochs x 0.1 s: each trial runs ~2.5 s, long enough to be caught running.
    sid = client.post(
        "/v1/studies",
        json=grid_spec("cancel-me", epochs=25, lrs=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5)),
        headers=WRITE,
    ).json()["id"]
    wait_for(lambda: study(client, sid)["trials"]["by_state"]["COMPLETED"] >= 1, what="a finished trial")
    finished_before = {
        t["number"]: t
        for t in client.get(f"/v1/studies/{sid}/trials?state=COMPLETED", headers=READ).json()["items"]
    }
    r = client.post(f"/v1/studies/{sid}:cancel", headers=WRITE)
    assert r.status_code == 200 and r.json()["state"] in ("CANCELLING", "CANCELLED")
    body = wait_for(lambda: (s := study(client, sid))["state"] == "CANCELLED" and s, what="the cancel")
    by_state = body["trials"]["by_state"]
    assert by_state["RUNNING"] == 0 and by_state["PENDING"] == 0
    assert by_state["COMPLETED"] < 6  # stopped before the end
    after = {
        t["number"]: t
        for t in client.get(f"/v1/studies/{sid}/trials?state=COMPLETED&limit=100", headers=READ).json()[
            "items"
        ]
    }
    for number, trial in finished_before.items():
        assert after[number] == trial  # finished trials kept unchanged
    cancelled = client.get(f"/v1/studies/{sid}/trials?state=CANCELLED", headers=READ).json()["items"]
    assert all(t["error"] for t in cancelled)
    assert client.post(f"/v1/studies/{sid}:cancel", headers=WRITE).status_code == 409


@pytest.mark.slow
def test_runner_that_loses_its_lease_stops_writing(tmp_path: Path, ray_address: str) -> None:
    url = f"sqlite:///{tmp_path / 'lease.db'}"
    store = SqlStore(url)
    from dse.spec import load_spec

    spec = load_spec(grid_spec("lease", epochs=20, lrs=(0.01, 0.02, 0.05, 0.1, 0.2))).to_dict()
    study_row, _ = store.create_study(spec, name="lease")
    assert store.acquire_lease(study_row.id, "runner-a", 4.0)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.runner.process",
            "--study",
            study_row.id,
            "--owner",
            "runner-a",
            "--database-url",
            url,
            "--lease-s",
            "4",
            "--heartbeat-s",
            "0.5",
            "--ray-address",
            ray_address,
            "--trial-function",
            PACED,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: store.trial_counts(study_row.id)["COMPLETED"] >= 1, what="a finished trial")
        # Another runner takes the study over (as if this one had stalled past its lease).
        from sqlalchemy import update

        from api.store.models import StudyRow

        with store.engine.begin() as conn:
            conn.execute(update(StudyRow).where(StudyRow.id == study_row.id).values(lease_owner="runner-b"))
        version_at_takeover, _ = store.study_version(study_row.id)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, out
    assert "lease lost" in out
    assert store.list_trials(study_row.id, since=version_at_takeover) == []  # nothing written after
    s = store.get_study(study_row.id)
    assert s.state == "RUNNING" and s.lease_owner == "runner-b"  # the end was not recorded by "a"
    store.close()
