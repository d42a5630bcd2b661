"""The service SIGKILLed mid-study and restarted: the study completes, every trial finished before
the kill is still there unchanged, and no configuration runs twice.

Two ways to die: the whole machine (service *and* its study runner SIGKILLed: the restarted
service resumes the study once the runner's lease lapses), and the service alone (its runner,
in a session of its own, carries on under its lease; the restarted service must not start a
second one). Real trials on the embedded digits data with a tiny network.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.factories import spec_dict
from tests.api.server import ServiceProcess, runner_pids, wait_gone

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.integration]

LRS = [0.01, 0.03, 0.1]
HIDDEN = [[8], [16]]
LONG_LRS = [0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.2]


def tiny_grid(epochs: int = 1, lrs: list[float] = LRS) -> dict:
    return spec_dict(
        name="kill-restart",
        base={
            "dataset": {"name": "digits"},
            "model": {"name": "fcnn", "hidden": [8]},
            "training": {"epochs": epochs, "lr": 0.05},
        },
        parameters=[
            {"name": "lr", "target": "training.lr", "type": "discrete", "values": lrs},
            {"name": "hidden", "target": "model.hidden", "type": "categorical", "values": HIDDEN},
        ],
        constraints=[],
        searcher={"type": "grid"},
        budget={"max_concurrent_trials": 1},
    )


def wait_until(http: httpx.Client, sid: str, check: Any, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = http.get(f"/v1/studies/{sid}").json()
        if check(body):
            return body
        time.sleep(0.5)
    raise AssertionError(f"timed out; last state {body['state']} {body['trials']}")


def completed_trials(http: httpx.Client, sid: str) -> dict[int, dict]:
    items = http.get(f"/v1/studies/{sid}/trials?state=COMPLETED&limit=1000").json()["items"]
    return {t["number"]: t for t in items}


def check_complete_without_reruns(
    http: httpx.Client, sid: str, before: dict[int, dict], n_configs: int = len(LRS) * len(HIDDEN)
) -> dict:
    body = wait_until(http, sid, lambda b: b["state"] in ("COMPLETED", "FAILED", "CANCELLED"))
    assert body["state"] == "COMPLETED", body
    after = completed_trials(http, sid)
    for number, trial in before.items():
        assert after[number] == trial  # same id, params, metrics and timestamps: not re-run
    configs = [(t["params"]["lr"], tuple(t["params"]["hidden"])) for t in after.values()]
    assert len(configs) == n_configs == len(set(configs))  # each configuration once
    return body


def test_machine_crash_mid_study_resumes(tmp_path: Path, ray_session: Any) -> None:
    db = f"sqlite:///{tmp_path / 'crash.db'}"
    settings = {
        "ray_address": ray_session.get_runtime_context().gcs_address,
        "heartbeat_s": "0.5",
        "lease_s": "4",
    }
    first = ServiceProcess(db, tmp_path / "first.log", **settings).start()
    try:
        with first.client() as http:
            # Trials long enough that most of the study is still ahead when the machine dies.
            sid = http.post("/v1/studies", json=tiny_grid(epochs=5)).json()["id"]
            wait_until(http, sid, lambda b: b["trials"]["by_state"]["COMPLETED"] >= 2)
            runners = runner_pids(sid)
            assert len(runners) == 1
            # The machine dies: service and runner at once, no handler runs.
            for pid in runners:
                os.kill(pid, signal.SIGKILL)
            first.kill()
            wait_gone(runners)
    finally:
        first.kill()
    second = ServiceProcess(db, tmp_path / "second.log", **settings).start()
    try:
        with second.client() as http:
            before = completed_trials(http, sid)
            assert len(before) >= 2
            body = check_complete_without_reruns(http, sid, before)
            assert body["runs"] == 2  # the second service resumed it
    finally:
        second.stop()


def test_service_crash_leaves_its_runner_to_finish(tmp_path: Path, ray_session: Any) -> None:
    db = f"sqlite:///{tmp_path / 'orphan.db'}"
    settings = {
        "ray_address": ray_session.get_runtime_context().gcs_address,
        "heartbeat_s": "0.5",
        "lease_s": "4",
    }
    first = ServiceProcess(db, tmp_path / "first.log", **settings).start()
    try:
        with first.client() as http:
            # Longer trials: the runner must still be busy when the second service is up.
            sid = http.post("/v1/studies", json=tiny_grid(epochs=10, lrs=LONG_LRS)).json()["id"]
            wait_until(http, sid, lambda b: b["trials"]["by_state"]["COMPLETED"] >= 1)
            runners = runner_pids(sid)
            first.kill()
    finally:
        first.kill()
    assert len(runners) == 1 and Path(f"/proc/{runners[0]}").exists()  # the runner outlived the service
    second = ServiceProcess(db, tmp_path / "second.log", **settings).start()
    try:
        with second.client() as http:
            before = completed_trials(http, sid)
            assert http.get(f"/v1/studies/{sid}").json()["state"] == "RUNNING"
            time.sleep(3 * 0.5 + 1)  # several scheduler passes of the new service
            assert set(runner_pids(sid)) <= set(runners)  # no second runner was started
            body = check_complete_without_reruns(http, sid, before, len(LONG_LRS) * len(HIDDEN))
            assert body["runs"] == 1  # the first runner finished it
    finally:
        second.stop()
