"""Settings from the environment, ``dse serve`` on bad settings, failure answers (store down,
unexpected errors) and the scheduler's decisions that need no study run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from api.deps import get_store
from api.runner.scheduler import LOCK_NAME, Scheduler
from api.settings import Settings
from api.store import SqlStore
from tests.api.conftest import READ, make_settings
from tests.api.factories import spec_dict

ROOT = Path(__file__).resolve().parents[2]


class TestSettings:
    def test_read_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DSE_WRITE_TOKENS", "alice, ci-token ,")
        monkeypatch.setenv("DSE_READ_TOKENS", "viewer")
        monkeypatch.setenv("DSE_MAX_RUNNING_STUDIES", "3")
        monkeypatch.setenv("DSE_DATABASE_URL", "sqlite:////tmp/x.db")
        s = Settings()
        assert s.write_tokens == ("alice", "ci-token") and s.read_tokens == ("viewer",)
        assert s.max_running_studies == 3 and s.database_url == "sqlite:////tmp/x.db"

    @pytest.mark.parametrize(
        ("values", "field"),
        [
            ({}, "anonymous_access"),  # no token and no anonymous access would refuse everything
            ({"write_tokens": ("a",), "read_tokens": ("a",)}, "read_tokens"),
            ({"write_tokens": ("a",), "lease_s": 1.0, "heartbeat_s": 1.0}, "lease_s"),
            ({"write_tokens": ("a",), "max_running_studies": 0}, "max_running_studies"),
            ({"write_tokens": ("a",), "anonymous_access": "admin"}, "anonymous_access"),
        ],
    )
    def test_invalid_settings_name_the_field(self, values: dict, field: str) -> None:
        with pytest.raises(ValidationError, match=field):
            Settings(**values)

    def test_anonymous_read_access(self, sqlite_store: SqlStore) -> None:
        app = create_app(
            make_settings(sqlite_store.url, write_tokens=(), read_tokens=(), anonymous_access="read"),
            store=sqlite_store,
        )
        with TestClient(app) as client:
            assert client.get("/v1/studies").status_code == 200
            assert client.post("/v1/studies", json=spec_dict()).status_code == 403
            assert (
                client.post(
                    "/v1/studies", json=spec_dict(), headers={"Authorization": "Bearer x"}
                ).status_code
                == 401
            )


def test_dse_serve_refuses_bad_settings_naming_the_field(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DSE_WRITE_TOKENS": "t",
        "DSE_MAX_RUNNING_STUDIES": "0",
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [sys.executable, "-m", "dse.cli", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "max_running_studies" in out.stderr and "greater than or equal to 1" in out.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "dse.cli", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "--host" in help_text and "--port" in help_text and "DSE_" in help_text


def test_store_down_gives_503_and_readyz_says_so(tmp_path: Path) -> None:
    down = SqlStore("postgresql+psycopg://dse:x@127.0.0.1:1/none", create=False)
    app = create_app(make_settings(down.url), store=down)
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["store"].startswith("error")
        r = client.get("/v1/studies/abc", headers=READ)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["type"] == "urn:analog-dse:problem:store-unavailable"
        assert client.get("/v1/studies", headers=READ).status_code == 503
        assert client.get("/healthz").status_code == 200  # alive, not ready


def test_unexpected_errors_are_500_problems_without_internals(sqlite_store: SqlStore) -> None:
    app = create_app(make_settings(sqlite_store.url), store=sqlite_store)

    async def broken_store() -> SqlStore:
        raise RuntimeError("secret internal detail")

    app.dependency_overrides[get_store] = broken_store
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/v1/studies", headers=READ)
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "urn:analog-dse:problem:internal" and "secret" not in r.text


class TestScheduler:
    def test_one_scheduler_acts_at_a_time(self, sqlite_store: SqlStore) -> None:
        settings = make_settings(sqlite_store.url, run_studies=True)
        first, second = Scheduler(sqlite_store, settings), Scheduler(sqlite_store, settings)
        assert first.tick() == [] and second.tick() == []  # nothing queued
        assert sqlite_store.acquire_lock(LOCK_NAME, first.identity, 10)  # the first holds it
        assert not sqlite_store.acquire_lock(LOCK_NAME, second.identity, 10)

    def test_a_study_whose_runner_keeps_dying_fails_instead_of_looping(self, sqlite_store: SqlStore) -> None:
        settings = make_settings(sqlite_store.url, run_studies=True, max_study_runs=2)
        study, _ = sqlite_store.create_study(spec_dict(), name="doomed")
        for i in range(2):  # two runs that died (each took the lease, then gave it back)
            assert sqlite_store.acquire_lease(study.id, f"dead-{i}", 60)
            assert sqlite_store.release_lease(study.id, f"dead-{i}")
        scheduler = Scheduler(sqlite_store, settings)
        assert scheduler.tick() == [] and scheduler.children() == {}
        failed = sqlite_store.get_study(study.id)
        assert failed.state == "FAILED" and "max_study_runs = 2" in failed.error

    def test_running_studies_with_live_leases_fill_the_limit(self, sqlite_store: SqlStore) -> None:
        settings = make_settings(sqlite_store.url, run_studies=True, max_running_studies=1)
        running, _ = sqlite_store.create_study(spec_dict(), name="running")
        queued, _ = sqlite_store.create_study(spec_dict(), name="queued")
        assert sqlite_store.acquire_lease(running.id, "another-service-runner", 60)
        scheduler = Scheduler(sqlite_store, settings)
        assert scheduler.tick() == []  # the limit is taken by a runner this scheduler did not start
        assert sqlite_store.get_study(queued.id).state == "QUEUED"


class TestRunnerReaping:
    def test_every_exited_runner_is_reaped_with_what_it_left_in_its_process_group(
        self, sqlite_store: SqlStore, tmp_path: Path
    ) -> None:
        """Two runners of one study overlap (one lost its lease and exits while its successor
        starts): both are waited for, and a process the exited one left behind (as a local
        Ray's would be) is ended."""
        import os
        import signal
        import time

        from api.runner.scheduler import _Child

        settings = make_settings(sqlite_store.url, run_studies=True)
        scheduler = Scheduler(sqlite_store, settings)
        pid_file = tmp_path / "grandchild.pid"
        leaves_a_child = (
            "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
            f" open({str(pid_file)!r}, 'w').write(str(p.pid))"
        )
        old = subprocess.Popen([sys.executable, "-c", leaves_a_child], start_new_session=True)
        new = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
        scheduler._children = {
            "old-owner": _Child("s1", "old-owner", old, tmp_path / "a.log"),
            "new-owner": _Child("s1", "new-owner", new, tmp_path / "b.log"),
        }
        old.wait(60)
        new.wait(60)
        grandchild = int(pid_file.read_text())
        scheduler._reap()
        assert scheduler._children == {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(grandchild, 0)
            except ProcessLookupError:
                break
            # the grandchild is reparented to init (or a subreaper) and reaped by it
            if Path(f"/proc/{grandchild}/stat").exists() and Path(f"/proc/{grandchild}/stat").read_text().split()[2] == "Z":
                break
            time.sleep(0.1)
        else:
            os.kill(grandchild, signal.SIGKILL)
            raise AssertionError("the exited runner's process group outlived it")


class TestLeaseKeeper:
    class _Store:
        def __init__(self) -> None:
            self.answers: list[object] = []

        def renew_lease(self, study_id: str, owner: str, lease_s: float) -> bool | None:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer  # type: ignore[return-value]

    def _keeper(self, store: object, lost: list[str], lease_s: float):
        from api.runner.lease import LeaseKeeper

        return LeaseKeeper(store, "s1", "me", lease_s=lease_s, heartbeat_s=0.01,  # type: ignore[arg-type]
                           on_cancel=lambda: None, on_lost=lost.append, hard_exit=False)

    def test_a_lease_that_lapsed_during_a_store_outage_is_reported_as_the_outage(self) -> None:
        import time

        store, lost = self._Store(), []
        keeper = self._keeper(store, lost, lease_s=0.05)
        store.answers = [False, ConnectionError("connection refused"), None]
        keeper.beat()
        keeper.beat()  # the store is down
        time.sleep(0.1)  # longer than the lease
        keeper.beat()  # back, but the lease is gone
        assert keeper.lost and len(lost) == 1
        assert lost[0].startswith("store unavailable") and "connection refused" in lost[0]
        assert "another runner" not in lost[0]

    def test_a_lease_taken_by_another_runner_says_so(self) -> None:
        store, lost = self._Store(), []
        keeper = self._keeper(store, lost, lease_s=60)
        store.answers = [False, None]
        keeper.beat()
        keeper.beat()
        assert lost == ["another runner owns the study now"]


class TestSecurityDefaults:
    def test_anonymous_write_on_a_reachable_host_is_refused_unless_asked_for(self) -> None:
        with pytest.raises(ValidationError, match="anonymous_access: got 'write' with host '0.0.0.0'"):
            Settings(host="0.0.0.0", anonymous_access="write")
        assert Settings(host="127.0.0.1", anonymous_access="write").anonymous_access == "write"
        assert Settings(host="::1", anonymous_access="write").host == "::1"
        Settings(host="0.0.0.0", anonymous_access="write", allow_public_anonymous_write=True)
        Settings(host="0.0.0.0", write_tokens=("t",))

    def test_plain_dse_serve_generates_a_token_and_prints_it_with_the_dashboard_url(self, tmp_path: Path) -> None:
        import re
        import socket
        import time
        import urllib.error
        import urllib.request

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "dse.cli", "serve", "--port", str(port), "--no-run-studies",
             "--database-url", f"sqlite:///{tmp_path / 'serve.db'}"],
            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            match = re.search(rf"http://127\.0\.0\.1:{port}/#token=(\S+)", line)
            assert match, line
            token = match.group(1)
            url = f"http://127.0.0.1:{port}/v1/studies"
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(urllib.request.Request(
                            url, headers={"Authorization": f"Bearer {token}"}), timeout=5) as r:
                        assert r.status == 200
                    break
                except urllib.error.URLError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.3)
            with pytest.raises(urllib.error.HTTPError) as denied:
                urllib.request.urlopen(url, timeout=5)
            assert denied.value.code == 401
        finally:
            proc.terminate()
            proc.wait(30)
