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


def test_a_process_about_to_start_a_local_ray_turns_on_token_authentication():
    from dse.runner.cluster import protect_local_ray

    code = ("import os, sys\n"
            "from dse.runner.cluster import protect_local_ray\n"
            "print(protect_local_ray(None), os.environ.get('RAY_AUTH_MODE'), len(os.environ.get('RAY_AUTH_TOKEN', '')))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "token", "64"]
    for environ in ({"RAY_ADDRESS": "10.0.0.1:6379"}, {"RAY_AUTH_MODE": "disabled"}):
        assert not protect_local_ray(None, environ)  # a cluster's own settings, or the user's choice
        assert "RAY_AUTH_TOKEN" not in environ
    assert not protect_local_ray("10.0.0.1:6379", {})
    import ray  # noqa: F401 - once Ray is imported it is too late

    assert not protect_local_ray(None, {})


_LOCAL_RAY = """
import json, sys
from dse.runner.cluster import connect_ray, protect_local_ray
assert protect_local_ray(None)
import ray
with connect_ray(num_cpus=1) as connection:
    @ray.remote
    def plus_one(x):
        return x + 1
    assert ray.get(plus_one.remote(1)) == 2  # the local Ray's own workers hold the token
    probe = ("import ray, sys\\n"
             "try:\\n    ray.init(address=sys.argv[1], logging_level='ERROR')\\nexcept Exception as exc:\\n"
             "    print(type(exc).__name__)\\nelse:\\n    print('connected')\\n")
    import os, subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    out = subprocess.run([sys.executable, "-c", probe, connection.address], env=env, capture_output=True,
                         text=True, timeout=120)
    print(json.dumps({"stranger": out.stdout.strip().splitlines()[-1:]}))
"""


@pytest.mark.slow  # starts a local Ray in a fresh process
def test_a_local_ray_refuses_a_client_without_its_token():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = subprocess.run([sys.executable, "-c", _LOCAL_RAY], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["stranger"] and result["stranger"] != ["connected"], result
