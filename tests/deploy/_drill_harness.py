"""Processes the failure drills drive: a local multi-node Ray cluster, a private PostgreSQL, the
study service in its own process, and helpers to wait for and kill processes by id."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import LOCAL_CLUSTER, ROOT

PACED = "dse.runner.synthetic:paced_trial"


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, ...), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the process tree (children first found, then theirs)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


# -- the cluster ------------------------------------------------------------------------------------
class LocalCluster:
    """deploy/local-cluster.sh driven from a test."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {**os.environ, "DSE_CLUSTER_DIR": str(state), "DSE_PYTHON": sys.executable}
        self.driver_env: dict[str, str] = {}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(LOCAL_CLUSTER), *args], env=self.env, capture_output=True, text=True,
                              timeout=300)

    def start(self, workers: int) -> None:
        out = self("start", "--workers", str(workers))
        assert out.returncode == 0, out.stderr
        self.driver_env = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines())

    def node_ids(self) -> dict[str, str]:
        """Ray node id of each worker (by its temp dir), from the nodes' own logs."""
        ids = {}
        for node_dir in (self.state / "ray").iterdir():
            log = node_dir / "session_latest" / "logs" / "raylet.out"
            text = log.read_text() if log.exists() else ""
            marker = "Setting node ID node_id="
            for line in text.splitlines():
                if marker in line:
                    ids[node_dir.name] = line.split(marker, 1)[1].split()[0]
                    break
        return ids


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "DSE_"))}
    env.update(extra)
    return env


def read_trials(results: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    path = results / "trials.parquet"
    if not path.exists():
        return []
    try:
        return pq.read_table(path).to_pylist()
    except Exception:  # noqa: BLE001 - a write in progress is replaced atomically; read again
        return []


# -- the service and its database --------------------------------------------------------------
class Postgres:
    """A private PostgreSQL instance (initdb in a temp dir, loopback, trust auth), as user postgres
    when running as root. Nothing is shared with other PostgreSQL servers on the machine."""

    def __init__(self) -> None:
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bindirs or not (bindirs[-1] / "initdb").exists():
            reason = ("PostgreSQL server binaries not installed (Debian package postgresql; "
                      "scripts/ci-services.sh installs them)")
            if os.environ.get("DSE_REQUIRE_SERVICES") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
        self.bin = bindirs[-1]
        self.dir = Path(tempfile.mkdtemp(prefix="dsepg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "dse", "--auth=trust", "-E", "UTF8")
        self.start()
        subprocess.run([str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "dse", "-d",
                        "postgres", "-c", "create database dse"], check=True, capture_output=True)
        self.url = f"postgresql+psycopg://dse@127.0.0.1:{self.port}/dse"

    def _run(self, tool: str, *args: str) -> None:
        out = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, f"{tool}: {out.stderr}"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir}", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Service:
    """``dse serve`` in its own process, pointed at the cluster and the database."""

    def __init__(self, database_url: str, cluster: LocalCluster, logs: Path) -> None:
        self.port = free_port()
        self.env = clean_env({
            **cluster.driver_env,
            "DSE_DATABASE_URL": database_url, "DSE_ANONYMOUS_ACCESS": "write", "DSE_HOST": "127.0.0.1",
            "DSE_PORT": str(self.port), "DSE_TRIAL_FUNCTION": PACED, "DSE_RUNNER_LOG_DIR": str(logs),
            "DSE_LOG_LEVEL": "warning",
        })
        self.logs = logs
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import httpx

        out = (self.logs / "service.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "dse.cli", "serve"], env=self.env, cwd=ROOT,
                                        stdout=out, stderr=out)
        wait_for(lambda: self._ok(httpx), 120, "the service to be ready")

    def _ok(self, httpx: Any) -> bool:
        assert self.process is not None and self.process.poll() is None, "the service exited"
        try:
            return httpx.get(self.url("/readyz"), timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def kill_all(self) -> int:
        """SIGKILL the service and every process it started (its study runners and their Ray
        drivers), as when its container dies; returns how many processes were killed."""
        assert self.process is not None
        victims = [self.process.pid, *descendants(self.process.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        wait_for(lambda: not any(running(pid) for pid in victims), 30, "the killed processes to end")
        return len(victims)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill_all()

    def submit(self, spec: dict[str, Any]) -> str:
        import httpx

        response = httpx.post(self.url("/v1/studies"), json=spec, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def study(self, study_id: str) -> dict[str, Any]:
        import httpx

        return httpx.get(self.url(f"/v1/studies/{study_id}"), timeout=30).json()

    def trials(self, study_id: str) -> dict[str, dict[str, Any]]:
        import httpx

        items = httpx.get(self.url(f"/v1/studies/{study_id}/trials"), params={"limit": 1000}, timeout=30).json()
        return {t["trial_id"]: t for t in items["items"]}


def finished(trials: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i: t for i, t in trials.items() if t["state"] == "COMPLETED"}
