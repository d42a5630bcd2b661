"""Failure drills on a real multi-node Ray cluster on this machine (deploy/local-cluster.sh).

1. A worker node is killed (SIGKILL of its whole process group) mid-study: its trials are
   retried on the remaining node, the study completes, and no finished trial is lost.
2. The service (``dse serve`` and its study runner, as a container dies) is killed mid-study and
   started again while the cluster keeps running: the study resumes and completes, every trial
   finished before the kill is kept and none runs twice.
3. PostgreSQL is restarted mid-study: the service reconnects and no trial result is lost.

Each drill prints one JSON line of figures (trials finished / retried / lost). They start real
processes (Ray nodes, the service, a private PostgreSQL) and take a minute or more each, so they
are ``integration`` and ``slow`` (run with ``-m slow``). Trials are
``dse.runner.synthetic:paced_trial`` (10 epochs of 0.1 s) so that they are mid-flight when the
failure hits, whatever the machine's load.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import LOCAL_CLUSTER, ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PACED = "dse.runner.synthetic:paced_trial"


def study_spec(name: str, n_trials: int) -> dict[str, Any]:
    return {
        "name": name,
        "base": {"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [32]},
                 "training": {"epochs": 10, "lr": 0.05}},
        "parameters": [{"name": "lr", "target": "training.lr", "type": "discrete",
                        "values": [round(0.01 + 0.01 * i, 3) for i in range(n_trials)]}],
        "objectives": [{"metric": "accuracy", "goal": "max"}],
        "searcher": {"type": "grid"},
        "resources": {"cpus": 1},
    }


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


def report(drill: str, **figures: Any) -> None:
    print(json.dumps({"drill": drill, **figures}))


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


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    state = Path(tempfile.mkdtemp(prefix="dselc-drill-", dir="/tmp"))
    c = LocalCluster(state)
    c.start(workers=2)
    yield c
    c("stop", "--clean")
    shutil.rmtree(state, ignore_errors=True)


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "DSE_"))}
    env.update(extra)
    return env


# -- drill 1: a worker node dies -----------------------------------------------------------------
def read_trials(results: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    path = results / "trials.parquet"
    if not path.exists():
        return []
    try:
        return pq.read_table(path).to_pylist()
    except Exception:  # noqa: BLE001 - a write in progress is replaced atomically; read again
        return []


@pytest.mark.xfail(
    strict=True, raises=AssertionError,
    reason="the runner does not retry trials lost with their node yet (Tune FailureConfig(max_failures=0)): "
           "they end FAILED; remove this marker when it does")
def test_drill_worker_node_killed_mid_study(cluster: LocalCluster, tmp_path: Path) -> None:
    n_trials = 16
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(study_spec("drill-node", n_trials)))
    results = tmp_path / "results"
    run = subprocess.Popen(
        [sys.executable, "-m", "dse.cli", "run", str(spec), "--results", str(results), "--trial-fn", PACED,
         "--quiet"], env=clean_env(cluster.driver_env), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        # Kill worker-2 once a few trials finished and others are running.
        wait_for(lambda: sum(t["state"] == "COMPLETED" for t in read_trials(results)) >= 3
                 and any(t["state"] == "RUNNING" for t in read_trials(results)), 240, "3 finished trials")
        before = {t["trial_id"]: t for t in read_trials(results)}
        killed_at = time.time()
        assert cluster("kill", "worker-2").returncode == 0
        out, err = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err[-3000:]
    after = {t["trial_id"]: t for t in read_trials(results)}
    finished_before = {i for i, t in before.items() if t["state"] == "COMPLETED"}
    running_before = {i for i, t in before.items() if t["state"] == "RUNNING"}
    lost = [i for i in finished_before
            if after.get(i, {}).get("state") != "COMPLETED"
            or after[i]["finished_at"] != before[i]["finished_at"]]
    failed = sorted(i for i, t in after.items() if t["state"] != "COMPLETED")
    survivor = cluster.node_ids()["worker-1"]
    restarted = sorted(i for i in running_before
                       if after[i]["started_at"] is not None and after[i]["started_at"].timestamp() > killed_at)
    report("worker-node-killed", trials=len(after), finished=len(after) - len(failed),
           finished_before_kill=len(finished_before), running_at_kill=len(running_before),
           retried=len(restarted), failed=len(failed), lost=len(lost))
    assert len(after) == n_trials
    assert failed == [], {i: after[i]["error"] for i in failed}
    assert lost == []
    # every trial that finished after the kill ran on the surviving node
    late = [t for t in after.values() if t["started_at"].timestamp() > killed_at + 1]
    assert late and all(t["node"] == survivor for t in late)


# -- the service and its database --------------------------------------------------------------
class Postgres:
    """A private PostgreSQL instance (initdb in a temp dir, loopback, trust auth), as user postgres
    when running as root. Nothing is shared with other PostgreSQL servers on the machine."""

    def __init__(self) -> None:
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bindirs or not (bindirs[-1] / "initdb").exists():
            pytest.skip("PostgreSQL server binaries not installed (Debian package postgresql; "
                        "scripts/ci-services.sh installs them)")
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


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    yield pg
    pg.close()


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


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[[str, LocalCluster], Service]]:
    started: list[Service] = []

    def make(database_url: str, cluster: LocalCluster) -> Service:
        logs = tmp_path / "service-logs"
        logs.mkdir(exist_ok=True)
        service = Service(database_url, cluster, logs)
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


def finished(trials: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i: t for i, t in trials.items() if t["state"] == "COMPLETED"}


# -- drill 2: the service dies and comes back --------------------------------------------------------
def test_drill_service_killed_and_restarted_while_the_cluster_runs(
    cluster: LocalCluster, postgres: Postgres, service_factory
) -> None:
    n_trials = 16
    service = service_factory(postgres.url, cluster)
    service.start()
    study_id = service.submit(study_spec("drill-service", n_trials))
    wait_for(lambda: len(finished(service.trials(study_id))) >= 3, 240, "3 finished trials")
    before = service.trials(study_id)
    killed = service.kill_all()
    service.start()  # same database, same cluster, new process
    wait_for(lambda: service.study(study_id)["state"] in ("COMPLETED", "FAILED", "CANCELLED"), 600,
             "the study to end")
    detail, after = service.study(study_id), service.trials(study_id)
    done_before = finished(before)
    lost = [i for i, t in done_before.items() if after.get(i, {}).get("finished_at") != t["finished_at"]]
    report("service-killed", processes_killed=killed, trials=len(after), finished=len(finished(after)),
           finished_before_kill=len(done_before), finished_after_kill=len(finished(after)) - len(done_before),
           running_at_kill=sum(t["state"] == "RUNNING" for t in before.values()), lost=len(lost),
           runs=detail["runs"])
    assert detail["state"] == "COMPLETED", detail
    assert len(after) == n_trials and len(finished(after)) == n_trials
    assert lost == []  # kept as they were: not lost, not run twice
    assert detail["runs"] >= 2  # a second runner resumed the study
    workers = set(cluster.node_ids().values())
    assert {t["node"] for t in after.values()} <= workers


# -- drill 3: the database restarts ------------------------------------------------------------------
@pytest.mark.xfail(
    strict=True, raises=AssertionError,
    reason="the study runner's store writes do not survive a database restart yet: a trial that finishes "
           "while PostgreSQL is down errors in Tune and its result is lost; remove this marker when they do")
def test_drill_postgres_restarted_mid_study(cluster: LocalCluster, postgres: Postgres, service_factory) -> None:
    import httpx

    n_trials = 16
    service = service_factory(postgres.url, cluster)
    service.start()
    study_id = service.submit(study_spec("drill-postgres", n_trials))
    wait_for(lambda: len(finished(service.trials(study_id))) >= 3, 240, "3 finished trials")
    before = service.trials(study_id)
    postgres.stop("fast")
    down_s = 5.0
    time.sleep(down_s)
    readiness_while_down = httpx.get(service.url("/readyz"), timeout=30).status_code
    postgres.start()
    wait_for(lambda: service.study(study_id)["state"] in ("COMPLETED", "FAILED", "CANCELLED"), 600,
             "the study to end")
    detail, after = service.study(study_id), service.trials(study_id)
    done_before = finished(before)
    lost = [i for i, t in done_before.items() if after.get(i, {}).get("finished_at") != t["finished_at"]]
    not_completed = {i: f"{t['state']}: {(t['error'] or '')[:200]}" for i, t in after.items()
                     if t["state"] != "COMPLETED"}
    report("postgres-restarted", down_s=down_s, readyz_while_down=readiness_while_down, trials=len(after),
           finished=len(finished(after)), finished_before_restart=len(done_before), lost=len(lost),
           not_completed=len(not_completed), runs=detail["runs"])
    assert readiness_while_down == 503  # the service noticed the database was gone
    assert httpx.get(service.url("/readyz"), timeout=30).status_code == 200  # and reconnected
    assert detail["state"] == "COMPLETED", detail
    assert not_completed == {}  # results produced while the database was down were kept
    assert len(finished(after)) == n_trials and lost == []
