"""Studies on a cluster reached through Ray Client: a real ``ray start --head`` with its Ray Client
server on a loopback port, ``dse run --address ray://...`` and the service's runner with
``DSE_RAY_ADDRESS=ray://...``; and the features that cannot work that way say so."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dse.results import TrialState, read_trials
from tests.dse.runner.test_cluster import _free_port, _start_node, _stop, _wait_for

ROOT = Path(__file__).resolve().parents[3]
DSE = Path(sys.executable).with_name("dse")

pytestmark = [pytest.mark.integration]

SPEC = (
    "name: ray-client\n"
    "base: {dataset: {name: digits}, model: {name: fcnn, hidden: [8]}, training: {epochs: 3, lr: 0.05}}\n"
    "parameters:\n"
    "  - {name: lr, target: training.lr, type: discrete, values: [0.01, 0.05, 0.2, 0.5]}\n"
    "objectives: [{metric: accuracy, goal: max}]\n"
    "searcher: grid\n"
)


@pytest.fixture(scope="module")
def ray_client_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A one-node cluster (``ray start --head``, 2 CPUs) with its Ray Client server on a free
    loopback port: yields (``ray://127.0.0.1:PORT``, the environment to reach it)."""
    tag = uuid.uuid4().hex[:8]
    temp_dir = tempfile.mkdtemp(prefix="dse-rc-")  # short: Ray's socket paths must stay < 108 chars
    token = Path(temp_dir) / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "DSE_"))}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
               PYTHONPATH=str(ROOT),
               # The head starts a server process per client session and gives it 30 s by default,
               # which a loaded 2-core machine can exceed.
               RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="180")
    nodes: list[subprocess.Popen] = []
    try:
        for _attempt in range(3):  # a free port can be taken by another process before Ray binds it
            port, client_port = _free_port(), _free_port()
            nodes = [_start_node(["--head", "--port", str(port), "--ray-client-server-port", str(client_port),
                                  "--include-dashboard", "false", "--temp-dir", temp_dir], f"head-{tag}", env)]
            if _wait_for(f"127.0.0.1:{port}", {f"head-{tag}"}, nodes, env):
                break
            _stop(nodes)
        else:
            pytest.fail("could not start a Ray head node in 3 attempts")
        # The Ray Client server starts after the node registers: wait until it accepts connections.
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", client_port), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the Ray Client server never listened on port {client_port}")
                time.sleep(0.5)
        # _start_node gives each node 1 CPU: the driver task takes none, trials one each.
        yield f"ray://127.0.0.1:{client_port}", env
    finally:
        _stop(nodes)
        # Keep the head's Ray Client server logs (small) with pytest's temporary files.
        kept = tmp_path_factory.mktemp("ray-client-logs")
        for log in Path(temp_dir).glob("session_*/logs/ray_client_server*"):
            shutil.copy(log, kept / log.name)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_dse_run_through_ray_client(ray_client_cluster: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    address, env = ray_client_cluster
    spec = tmp_path / "study.yaml"
    spec.write_text(SPEC)
    results = tmp_path / "results"
    run = subprocess.run(
        [str(DSE), "run", str(spec), "--results", str(results), "--trial-fn", "dse.runner.synthetic:paced_trial"],
        env={**env, "RAY_ADDRESS": address}, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "running on Ray at" in run.stderr and "1 node(s)" in run.stderr
    assert "4/4 done" in run.stderr  # the progress events came back through the relay
    assert "study ray-client stopped: the searcher finished" in run.stdout
    records = read_trials(results)  # written here, by this process, from the relayed records
    assert len(records) == 4 and all(r.state is TrialState.COMPLETED for r in records)
    assert all(len(r.measurements) == 3 for r in records)  # every epoch report relayed too
    # Resuming through Ray Client keeps the finished trials.
    again = subprocess.run(
        [str(DSE), "run", str(spec), "--results", str(results), "--resume", "--address", address,
         "--trial-fn", "dse.runner.synthetic:paced_trial"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 finished trials kept" in again.stderr
    assert [r.trial_id for r in read_trials(results)] == [r.trial_id for r in records]


def test_what_cannot_work_through_ray_client_says_so(ray_client_cluster: tuple[str, dict[str, str]],
                                                     tmp_path: Path) -> None:
    address, env = ray_client_cluster
    spec = tmp_path / "study.yaml"
    spec.write_text(SPEC)
    run = subprocess.run(
        [str(DSE), "run", str(spec), "--address", address, "--num-cpus", "2", "--results", str(tmp_path / "r")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == 2
    assert "--num-cpus" in run.stderr and "drop it" in run.stderr
    run = subprocess.run(
        [str(DSE), "run", str(spec), "--address", address, "--results", str(tmp_path / "r2"),
         "--trial-fn", "not_installed_anywhere:trial"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot be imported on the cluster" in run.stderr and "install the module there" in run.stderr


@pytest.mark.slow  # a service, its runner and a study through Ray Client: ~40 s on 2 cores
def test_the_service_runs_studies_through_ray_client(ray_client_cluster: tuple[str, dict[str, str]],
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dse.client import Client
    from tests.api.server import WRITE_TOKEN, ServiceProcess

    address, env = ray_client_cluster
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"):  # the service inherits how to reach the cluster
        monkeypatch.setenv(key, env[key])
    service = ServiceProcess(f"sqlite:///{tmp_path / 'svc.db'}", tmp_path / "svc.log", ray_address=address,
                             trial_function="dse.runner.synthetic:paced_trial").start()
    try:
        with Client(service.url, token=WRITE_TOKEN) as client:
            import yaml

            study = client.wait(client.submit(yaml.safe_load(SPEC)).id, timeout_s=300)
            assert study.state == "COMPLETED", (study.error, service.output()[-2000:])
            assert study.count("COMPLETED") == 4
    finally:
        service.stop()


@pytest.mark.slow  # a study of longer paced trials interrupted through Ray Client: ~30 s
def test_ctrl_c_reaches_the_driver_on_the_cluster(ray_client_cluster: tuple[str, dict[str, str]],
                                                  tmp_path: Path) -> None:
    import signal

    address, env = ray_client_cluster
    spec = tmp_path / "study.yaml"
    spec.write_text(SPEC.replace("epochs: 3", "epochs: 30"))  # 3 s per trial
    results = tmp_path / "results"
    proc = subprocess.Popen(
        [str(DSE), "run", str(spec), "--address", address, "--results", str(results),
         "--trial-fn", "dse.runner.synthetic:paced_trial"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            done = [r for r in (read_trials(results) if (results / "trials.parquet").is_file() else [])
                    if r.state is TrialState.COMPLETED]
            if done:
                break
            time.sleep(0.5)
        assert done, "no trial finished"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "interrupted; run again with --resume" in out
    records = read_trials(results)
    assert any(r.state is TrialState.COMPLETED for r in records)
    assert len(records) < 4 or any(r.state is TrialState.CANCELLED for r in records)  # stopped early


def test_ray_client_addresses_are_recognized() -> None:
    from dse.runner.ray_client import is_ray_client_address

    assert is_ray_client_address("ray://head:10001")
    assert not is_ray_client_address("10.0.0.1:6379") and not is_ray_client_address("auto")
    assert not is_ray_client_address(None)
