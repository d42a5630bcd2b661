"""Connecting to Ray, and a study spread over a real two-node cluster on this machine."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from dse.errors import ConflictError
from dse.results import TrialState, read_trials
from dse.runner.cluster import connect_ray

ROOT = Path(__file__).resolve().parents[3]
RAY = Path(sys.executable).with_name("ray")
DSE = Path(sys.executable).with_name("dse")


@pytest.mark.ray
def test_an_initialized_ray_is_reused_and_left_running(ray_session):
    connection = connect_ray()
    assert not connection.started_here and not connection.connected_here
    assert connection.num_nodes == 1 and connection.cpus == 2.0
    connection.close()
    assert ray_session.is_initialized()  # not ours to shut down


@pytest.mark.ray
def test_a_second_address_in_the_same_process_is_a_conflict(ray_session):
    with pytest.raises(ConflictError, match="cannot connect to --address '10.0.0.1:6379' as well"):
        connect_ray("10.0.0.1:6379")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _alive_node_names(address: str, env: dict[str, str]) -> set[str]:
    """Names of the alive nodes of the cluster at ``address`` (empty when it does not answer)."""
    probe = ("import json, ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
             "print(json.dumps([n['NodeName'] for n in ray.nodes() if n['Alive']]))")
    out = subprocess.run([sys.executable, "-c", probe, address], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    if out.returncode != 0:
        return set()
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _start_node(args: list[str], name: str, env: dict[str, str]) -> subprocess.Popen:
    # --block keeps `ray start` in the foreground; terminating it stops that node's processes
    # (never `ray stop`, which would stop every Ray on the machine).
    return subprocess.Popen(
        [str(RAY), "start", *args, "--node-name", name, "--num-cpus", "1", "--block", "--disable-usage-stats",
         "--object-store-memory", str(80 * 1024 * 1024)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _wait_for(address: str, names: set[str], procs: list[subprocess.Popen], env: dict[str, str],
              timeout_s: float = 120.0) -> bool:
    """True once every node in ``names`` is alive in the cluster at ``address``; False when one of
    ``procs`` exits first (e.g. the port was taken meanwhile) or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        if names <= _alive_node_names(address, env):
            return True
        time.sleep(1.0)
    return False


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        proc.terminate()
    for proc in reversed(procs):
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow  # two `ray start` nodes and a `dse run` process: ~30 s on an idle 2-core machine
@pytest.mark.integration
def test_a_study_runs_trials_on_both_nodes_of_a_two_node_cluster(tmp_path):
    """``ray start`` a head and a worker node (1 CPU each) and run ``dse run --address`` on them."""
    tag = uuid.uuid4().hex[:8]
    temp_dir = tempfile.mkdtemp(prefix="dse-ray-")  # short: Ray's socket paths must stay < 108 chars
    token = Path(temp_dir) / "auth_token"  # token authentication, as `ray start` enables by default
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
               PYTHONPATH=str(ROOT))
    nodes: list[subprocess.Popen] = []
    try:
        for _attempt in range(3):  # a free port can be taken by another process before Ray binds it
            port = _free_port()
            address = f"127.0.0.1:{port}"
            nodes = [_start_node(["--head", "--port", str(port), "--include-dashboard", "false",
                                  "--temp-dir", temp_dir], f"head-{tag}", env)]
            if _wait_for(address, {f"head-{tag}"}, nodes, env):
                break
            _stop(nodes)
        else:
            pytest.fail("could not start a Ray head node in 3 attempts")
        nodes.append(_start_node(["--address", address], f"worker-{tag}", env))
        assert _wait_for(address, {f"head-{tag}", f"worker-{tag}"}, nodes, env), "the worker node did not join"
        spec = tmp_path / "two_nodes.yaml"
        spec.write_text(
            "name: two-nodes\n"
            "base: {dataset: {name: digits}, model: {name: fcnn, hidden: [16]}, training: {epochs: 5}}\n"
            "parameters:\n"
            "  - {name: lr, target: training.lr, type: discrete, values: [0.01, 0.02, 0.05, 0.1, 0.2, 0.5]}\n"
            "objectives: [{metric: accuracy, goal: max}]\n"
            "searcher: grid\n"
            "budget: {max_concurrent_trials: 2}\n"
            "resources: {cpus: 1}\n"
        )
        results = tmp_path / "results"
        run = subprocess.run(
            [str(DSE), "run", str(spec), "--address", address, "--results", str(results),
             "--trial-fn", "dse.runner.synthetic:paced_trial"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert f":{port}: 2 node(s), 2 CPUs" in run.stderr  # the head reports its node IP
        records = read_trials(results)
        assert len(records) == 6 and all(r.state is TrialState.COMPLETED for r in records)
        assert len({r.node for r in records}) == 2  # every trial ran, on both nodes
    finally:
        _stop(nodes)
        shutil.rmtree(temp_dir, ignore_errors=True)
