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

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._drill_harness import (
    PACED,
    LocalCluster,
    Postgres,
    Service,
    clean_env,
    finished,
    read_trials,
    wait_for,
)
from tests.deploy.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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


def report(drill: str, **figures: Any) -> None:
    print(json.dumps({"drill": drill, **figures}))


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    state = Path(tempfile.mkdtemp(prefix="dselc-drill-", dir="/tmp"))
    c = LocalCluster(state)
    c.start(workers=2)
    yield c
    c("stop", "--clean")
    shutil.rmtree(state, ignore_errors=True)


# -- drill 1: a worker node dies -----------------------------------------------------------------
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
        # Kill worker-2 once a few trials finished and one is running on it.
        doomed = cluster.node_ids()["worker-2"]
        wait_for(lambda: sum(t["state"] == "COMPLETED" for t in read_trials(results)) >= 3
                 and any(t["state"] == "RUNNING" and t["node"] == doomed for t in read_trials(results)),
                 240, "3 finished trials and one running on worker-2")
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
    on_killed_node = {i for i in running_before if before[i]["node"] == doomed}
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
    # the trials the dead node was running were retried on the survivor and finished there
    assert on_killed_node and on_killed_node <= set(restarted), (on_killed_node, restarted)
    assert all(after[i]["node"] == survivor for i in on_killed_node)
    # every trial that finished after the kill ran on the surviving node
    late = [t for t in after.values() if t["started_at"].timestamp() > killed_at + 1]
    assert late and all(t["node"] == survivor for t in late)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    yield pg
    pg.close()


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
