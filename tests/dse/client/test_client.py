"""The Python client against a real ``dse serve`` on a loopback port (a subprocess): submit, wait,
trials as a DataFrame, idempotent resubmits, typed errors, and a wait that outlives the service."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from dse.client import (
    AuthenticationError,
    Client,
    InvalidRequestError,
    PermissionDeniedError,
    StudyConflictError,
    StudyEvent,
    StudyNotFoundError,
)
from dse.errors import ConflictError, NotFoundError
from tests.dse.client.conftest import PACED, READ_TOKEN, WRITE_TOKEN, grid_spec, start_service

pytestmark = [pytest.mark.ray, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_client_loads_neither_torch_nor_ray() -> None:
    code = ("import sys, dse.client, dse.commands.remote\n"
            "print(','.join(sorted(n for n in sys.modules if n.split('.')[0] in {'torch', 'ray', 'simulator'})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_submit_wait_and_trials_equal_the_servers_parquet(service: Any, finished_study: Any) -> None:
    study, events = finished_study
    with Client(service.url, token=WRITE_TOKEN) as client:
        assert study.state == "COMPLETED" and study.finished and study.name == "client-grid"
        assert study.count("COMPLETED") == 9 == study.trials["total"]
        assert events[-1].kind == "end" and events[-1].data == {"state": "COMPLETED"}
        ids = [e.id for e in events if e.id is not None]
        assert ids == sorted(ids)
        finished = {e.data["number"] for e in events if e.kind == "trial" and e.data["state"] == "COMPLETED"}
        assert finished == set(range(9))

        df = client.trials(study.id)
        raw = httpx.get(f"{service.url}/v1/studies/{study.id}/trials.parquet",
                        headers={"Authorization": f"Bearer {READ_TOKEN}"}).content
        pd.testing.assert_frame_equal(df, pd.read_parquet(io.BytesIO(raw)))
        assert len(df) == 9 and (df["state"] == "COMPLETED").all()
        for column in ("trial_id", "number", "param.lr", "param.hidden", "metric.accuracy", "metric.train_time_s",
                       "metric_std.accuracy", "n_repeats", "seeds", "repeat_metrics", "details", "duration_s"):
            assert column in df.columns
        assert client.measurements(study.id).columns[:4].tolist() == ["trial_id", "number", "repeat", "epoch"]

        records = client.records(study.id)
        assert [r.number for r in records] == list(range(9))
        pareto = client.pareto(study.id)
        from dse.pareto import pareto_front

        spec = client.spec(study.id)
        assert [t["trial_id"] for t in pareto["front"]] == [
            r.trial_id for r in pareto_front(records, spec.objectives, spec.constraints)]
        best = client.best(study.id, "accuracy")
        assert best["trial"]["number"] == max(
            (r for r in records if r.metrics["n_params"] <= 5000), key=lambda r: (r.metrics["accuracy"], -r.number)
        ).number
        history = client.hypervolume(study.id)["history"]
        assert history and 0 < history[-1]["hypervolume"] <= 1
        assert [s.id for s in client.studies(label="suite=client")].count(study.id) == 1
        assert study.id in [s.id for s in client.studies(state="COMPLETED")]
        assert study.id not in [s.id for s in client.studies(state=["QUEUED", "RUNNING"])]


def test_a_resubmit_with_the_same_key_returns_the_first_study(service: Any) -> None:
    spec = grid_spec("client-idempotent")
    with Client(service.url, token=WRITE_TOKEN) as client:
        first = client.submit(spec, idempotency_key="resubmit-1")
        again = client.submit(spec, idempotency_key="resubmit-1")
        assert again.id == first.id
        assert [s.id for s in client.studies() if s.name == "client-idempotent"] == [first.id]
        # Without a key each call is its own submission.
        other = client.submit(spec)
        assert other.id != first.id
        with pytest.raises(InvalidRequestError) as info:
            client.submit(grid_spec("client-idempotent-2"), idempotency_key="resubmit-1")
        assert info.value.path == "header.Idempotency-Key" and info.value.kind == "request-id-reuse"
        for sid in (first.id, other.id):
            client.cancel(sid)  # queued: cancelled at once; running: stopped by its runner
            assert client.wait(sid, timeout_s=300).state == "CANCELLED"
            client.delete(sid)
        with pytest.raises(StudyNotFoundError):
            client.study(first.id)


def test_an_invalid_spec_is_a_typed_error_with_the_field_path(service: Any) -> None:
    bad = grid_spec("client-bad", objectives=[{"metric": "accuracy", "goal": "upwards"}])
    with Client(service.url, token=WRITE_TOKEN) as client:
        with pytest.raises(InvalidRequestError) as info:
            client.submit(bad)
        err = info.value
        assert err.status == 422 and err.kind == "invalid-spec" and isinstance(err, ValueError)
        assert err.path == "objectives[0].goal"
        assert "upwards" in err.errors[0].message and "minimize" in err.errors[0].message
        assert err.instance == "/v1/studies"
        with pytest.raises(StudyNotFoundError) as missing:
            client.study("no-such-study")
        assert isinstance(missing.value, NotFoundError) and missing.value.status == 404
    with Client(service.url, token="not-a-token") as client, pytest.raises(AuthenticationError):
        client.studies()
    with Client(service.url, token=READ_TOKEN) as client, pytest.raises(PermissionDeniedError):
        client.submit(grid_spec("client-read-only"))


def test_cancelling_a_finished_study_is_a_conflict(service: Any, finished_study: Any) -> None:
    study, _ = finished_study
    with Client(service.url, token=WRITE_TOKEN) as client:
        with pytest.raises(StudyConflictError) as info:
            client.cancel(study.id)
        assert isinstance(info.value, ConflictError) and info.value.status == 409


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two service starts and a study of paced trials: ~40 s on 2 cores
def test_wait_survives_a_service_kill_and_restart(tmp_path: Path, ray_session: Any) -> None:
    """SIGKILL the service while a client waits on its events; the study's runner carries on under
    its lease, a new service starts on the same port and the wait resumes with Last-Event-ID: it
    returns the completed study, having seen every trial finish exactly once."""
    port = str(_free_port())
    # 9 trials of 15 paced epochs (1.5 s each), two at a time: several seconds still to run at the kill.
    spec = grid_spec("client-restart", base={"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [8]},
                                             "training": {"epochs": 15, "lr": 0.05}})
    first = start_service(tmp_path, ray_session, PACED, port=port)
    second = None
    try:
        client = Client(first.url, token=WRITE_TOKEN, reconnect_for_s=120)
        sid = client.submit(spec).id
        events: list[StudyEvent] = []
        first_done = threading.Event()

        def on_event(e: StudyEvent) -> None:
            events.append(e)
            if e.kind == "trial" and e.data["state"] == "COMPLETED":
                first_done.set()

        result: dict[str, Any] = {}
        waiter = threading.Thread(target=lambda: result.update(study=client.wait(sid, on_event=on_event,
                                                                                 timeout_s=600)))
        waiter.start()
        assert first_done.wait(300), first.output()[-3000:]
        first.kill()
        killed = datetime.now(UTC)
        killed_at = len(events)
        done_at_kill = client_count = sum(1 for e in events if e.kind == "trial" and e.data["state"] == "COMPLETED")
        assert done_at_kill < 9 and waiter.is_alive()
        time.sleep(1.0)  # the client is reconnecting to a closed port meanwhile
        second = start_service(tmp_path, ray_session, PACED, port=port)
        waiter.join(600)
        assert not waiter.is_alive()
        study = result["study"]
        assert study.state == "COMPLETED" and study.count("COMPLETED") == 9
        completions = [e.data["number"] for e in events if e.kind == "trial" and e.data["state"] == "COMPLETED"]
        assert sorted(completions) == list(range(9))  # each once: nothing missed, nothing repeated
        assert len(events) > killed_at and client_count < len(completions)  # events arrived after the restart
        ids = [e.id for e in events if e.id is not None]
        assert ids == sorted(ids)
        finished_at = client.trials(sid)["finished_at"]
        assert (finished_at > pd.Timestamp(killed)).any()  # the kill came mid-study
        client.close()
    finally:
        first.kill()
        if second is not None:
            second.stop()
