"""The image's entry point and health check, run here as plain scripts (no container engine).

The entry point's argument checks run before it starts anything; the health check is exercised
against the real service (uvicorn on loopback) and against a port where nothing listens.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY

ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"
HEALTHCHECK = DEPLOY / "docker" / "healthcheck.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(script: Path, *args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DSE_", "RAY_"))}
    base.update(env, TMPDIR=str(tmp_path))
    command = [sys.executable, str(script), *args] if script.suffix == ".py" else [str(script), *args]
    return subprocess.run(command, env=base, capture_output=True, text=True, timeout=60)


def test_a_worker_without_a_head_address_stops_with_the_variable_named(tmp_path: Path) -> None:
    out = run(ENTRYPOINT, "worker", env={}, tmp_path=tmp_path)
    assert out.returncode == 2
    assert "RAY_HEAD_ADDRESS: not set; accepted: the head's host:port" in out.stderr


def test_a_bad_resource_count_is_refused_before_ray_starts(tmp_path: Path) -> None:
    out = run(ENTRYPOINT, "head", env={"RAY_NUM_CPUS": "two"}, tmp_path=tmp_path)
    assert out.returncode == 2
    assert "RAY_NUM_CPUS: got 'two'; accepted: a non-negative integer" in out.stderr


def test_any_other_command_runs_as_given(tmp_path: Path) -> None:
    out = run(ENTRYPOINT, "echo", "study", "done", env={}, tmp_path=tmp_path)
    assert (out.returncode, out.stdout) == (0, "study done\n")


def test_the_health_check_uses_the_role_the_entry_point_recorded(tmp_path: Path) -> None:
    run(ENTRYPOINT, "worker", env={}, tmp_path=tmp_path)  # records the role, then stops
    assert (tmp_path / "dse-role").read_text().strip() == "worker"
    agent = str(free_port())  # nothing listens there
    out = run(HEALTHCHECK, env={"RAY_DASHBOARD_AGENT_PORT": agent}, tmp_path=tmp_path)
    assert out.returncode == 1
    assert out.stdout.startswith(f"worker unhealthy: http://127.0.0.1:{agent}/api/local_raylet_healthz")


def test_the_health_check_rejects_an_unknown_role(tmp_path: Path) -> None:
    out = run(HEALTHCHECK, "scheduler", env={}, tmp_path=tmp_path)
    assert out.returncode == 2
    assert "accepted: one of api, head, worker [--ready]" in out.stdout


@pytest.fixture
def service(tmp_path: Path) -> Iterator[int]:
    """The real study service on a loopback port (SQLite store, no study execution)."""
    import uvicorn

    from api.app import create_app
    from api.settings import Settings

    port = free_port()
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", anonymous_access="read",
                        run_studies=False, port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the service did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=30)


@pytest.mark.parametrize("ready", [False, True], ids=["healthz", "readyz"])
def test_the_health_check_passes_against_the_running_service(service: int, tmp_path: Path, ready: bool) -> None:
    args = ["api", "--ready"] if ready else ["api"]
    out = run(HEALTHCHECK, *args, env={"DSE_PORT": str(service)}, tmp_path=tmp_path)
    assert (out.returncode, out.stdout.strip()) == (0, "api healthy")


def test_the_health_check_fails_when_the_service_is_down(tmp_path: Path) -> None:
    port = str(free_port())
    out = run(HEALTHCHECK, "api", env={"DSE_PORT": port}, tmp_path=tmp_path)
    assert out.returncode == 1 and f"http://127.0.0.1:{port}/healthz" in out.stdout
