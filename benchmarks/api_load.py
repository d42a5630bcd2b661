"""Load benchmark of the study service: latency of every read endpoint under concurrent
clients, with a study of 10,000 trials in the store, finished and while it runs.

A study with ``--trials`` synthetic finished trials (two objectives, one constraint; seeded random
metrics) is written to a fresh store, ``dse serve`` is started on loopback (scheduler off), and
``--clients`` clients, each on its own keep-alive HTTP/1.1 connection, send requests back to back
for ``--seconds`` per case. The cases, one per read endpoint:

- ``studies``: ``GET /v1/studies`` (the list, with each study's progress);
- ``study``: ``GET /v1/studies/{id}``;
- ``trials``: ``GET /v1/studies/{id}/trials?sort=accuracy&order=desc&limit=50&offset=<random>``;
- ``trial``: ``GET /v1/studies/{id}/trials/<random number>``;
- ``pareto``: ``GET /v1/studies/{id}/pareto`` (front + every trial's rank and values);
- ``best``: ``GET /v1/studies/{id}/best``;
- ``hypervolume``: ``GET /v1/studies/{id}/hypervolume``;
- ``parquet``: ``GET /v1/studies/{id}/trials.parquet`` (the whole study as a file);
- ``healthz``: ``GET /healthz``, the baseline: the same server and client doing no work.

Two phases (``phase`` in each line): ``finished`` (the study is complete: after the first request
of a kind, the server's caches answer, so these figures are cache hits) and ``running`` (a
second study, left running: a writer process (as a runner is) holds its lease and records a new trial
every ``--write-interval`` seconds, as a runner does; every answer must reflect the trials
written before it, so the study's results are recomputed after each write and no cache hit hides
that cost; what carries over between writes is only what a write cannot change, such as the JSON
of a trial that was not written again). Each case is measured in steady state, after a warm-up
in which the clients send each of the case's requests for 3 s.

One JSON object per line and case: p50 / p99 latency in ms (``value`` is the p99), requests,
errors (non-200 answers and failed connections), throughput, the baseline's p99 and the ratio
to it, the server's CPU time per request (user + system, from /proc: much less sensitive to other
load on a shared machine than latency), and whether the case meets the bar (p99 <= 100 ms with
zero errors).

    python benchmarks/api_load.py                       # SQLite, 10,000 trials, 50 clients
    python benchmarks/api_load.py --database-url postgresql+psycopg://...
    python benchmarks/api_load.py --phases running --cases studies hypervolume --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-read-token"
BAR_P99_MS = 100.0


def synthetic_trial(rng: random.Random, number: int, node: str):  # noqa: ANN201
    """A completed trial of the benchmark's spec with random parameters and metrics."""
    from dse.results import TrialRecord

    hidden = rng.choice([[16], [32], [64, 32]])
    params = {"lr": 10 ** rng.uniform(-3, -0.3), "hidden": hidden}
    metrics = {
        "accuracy": rng.betavariate(8, 2),
        "train_time_s": rng.lognormvariate(1.0, 0.6),
        "n_params": float(sum(hidden) * 70),
        "n_layers": float(len(hidden) + 1),
    }
    rec = TrialRecord.pending(f"t{number:06d}", number, params, seeds=(number,))
    return rec.start(node=node).complete([metrics])


def make_study(url: str, n: int, seed: int, finish: bool = True) -> str:
    """A study of ``n`` synthetic trials, finished (or left running with its lease released, for
    a :class:`Writer` to take); returns its id."""
    from api.store import SqlStore
    from dse.spec import load_spec

    spec = load_spec(
        {
            "name": "api-load",
            "base": {"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [16]}},
            "parameters": [
                {
                    "name": "lr",
                    "target": "training.lr",
                    "type": "float",
                    "low": 1e-3,
                    "high": 0.5,
                    "log": True,
                },
                {
                    "name": "hidden",
                    "target": "model.hidden",
                    "type": "categorical",
                    "values": [[16], [32], [64, 32]],
                },
            ],
            "objectives": [
                {"metric": "accuracy", "goal": "maximize"},
                {"metric": "train_time_s", "goal": "minimize"},
            ],
            "constraints": ["n_params <= 6000"],
            "searcher": {"type": "random", "seed": seed},
            "budget": {"max_trials": n + 100_000},
        }
    )
    store = SqlStore(url)
    study, _ = store.create_study(spec.to_dict(), name=spec.name)
    rng = random.Random(seed)
    records = [synthetic_trial(rng, i, node=f"node-{i % 4}") for i in range(n)]
    assert store.acquire_lease(study.id, "bench", 600)
    for start in range(0, n, 2000):
        store.import_trials(study.id, records[start : start + 2000])
    if finish:
        store.finish(study.id, "bench", "COMPLETED")
    else:
        store.release_lease(study.id, "bench")
    store.close()
    return study.id


class Writer:
    """A runner's writes while the study runs, from another process (as a runner is): holds the
    study's lease and records a new completed trial every ``interval`` seconds (numbers after the
    stored ones)."""

    def __init__(self, url: str, study_id: str, first: int, interval: float, seed: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._written = ctx.Value("l", 0)
        self._stop = ctx.Event()
        ready = ctx.Event()
        self.process = ctx.Process(
            target=_write_trials,
            args=(url, study_id, first, interval, seed, self._written, self._stop, ready),
            name="api-load-writer",
            daemon=True,
        )
        self.process.start()
        if not ready.wait(60):
            self.process.kill()
            raise RuntimeError("the writer could not take the study's lease")

    @property
    def written(self) -> int:
        return int(self._written.value)

    def stop(self) -> None:
        self._stop.set()
        self.process.join(30)


def _write_trials(url: str, study_id: str, first: int, interval: float, seed: int, written, stop, ready) -> None:  # noqa: ANN001
    sys.path.insert(0, str(ROOT))
    from api.store import SqlStore

    store = SqlStore(url)
    if not store.acquire_lease(study_id, "bench-writer", 600):
        return
    ready.set()
    rng, number = random.Random(seed + 1), first
    while not stop.wait(interval):
        rec = synthetic_trial(rng, number, node="node-w")
        store.write_trial(study_id, rec, owner="bench-writer")
        store.renew_lease(study_id, "bench-writer", 600)
        number += 1
        with written.get_lock():
            written.value += 1
    store.close()


def free_port() -> int:
    """A loopback port free right now (several workers cannot share an ephemeral port 0)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``dse serve`` on a free loopback port."""

    def __init__(self, url: str, workdir: Path, workers: int = 1) -> None:
        env = {
            **os.environ,
            "DSE_DATABASE_URL": url,
            "DSE_READ_TOKENS": TOKEN,
            "DSE_RUN_STUDIES": "false",
            "DSE_PORT": str(free_port()) if workers > 1 else "0",
            "DSE_WORKERS": str(workers),
            "DSE_ACCESS_LOG": "false",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dse.cli", "serve"],
            cwd=workdir,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.port = 0
        found = threading.Event()

        def pump() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                m = re.search(r"Uvicorn running on http://[\d.]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(120):
            self.process.kill()
            raise RuntimeError("the service did not start")
        # Worker processes may still be importing: wait until every one answers.
        import urllib.request

        deadline = time.monotonic() + 120
        answered = 0
        while answered < 20:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as resp:
                    answered += resp.status == 200
            except OSError:
                answered = 0
                if time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError("the service never answered /healthz") from None
                time.sleep(0.5)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def _client(
    port: int, paths: list[str], stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    reader = writer = None
    rng = random.Random(port + len(latencies))
    while time.perf_counter() < stop_at:
        path = rng.choice(paths)
        # As browsers and HTTP libraries do, the client accepts gzip (bodies are read, not inflated).
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n"
        ).encode()
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if m is None:
                raise ValueError("no content-length")
            await reader.readexactly(int(m.group(1)))
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors.append(0)
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (the server's workers), in seconds,
    from Linux's /proc."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_case(
    port: int, paths: list[str], clients: int, seconds: float, server_pid: int | None = None
) -> dict:
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> None:
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(_client(port, paths, stop_at, latencies, errors) for _ in range(clients)))

    started = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    out = {
        "p50_ms": round(pct(0.50), 2),
        "p90_ms": round(pct(0.90), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(1000 * ordered[-1], 2) if ordered else float("nan"),
        "requests": len(latencies),
        "errors": len(errors),
        "rps": round(len(latencies) / elapsed, 1),
    }
    if server_pid and latencies:
        # Server CPU per request: far less sensitive than latency to other load on the machine.
        out["server_cpu_ms_per_request"] = round(
            1000 * (cpu_seconds(server_pid) - cpu_before) / len(latencies), 3
        )
    return out


CASES = ("studies", "study", "trials", "trial", "pareto", "best", "hypervolume", "parquet")


def case_paths(sid: str, n: int) -> dict[str, list[str]]:
    """The request paths of each case for study ``sid`` of ``n`` trials."""
    v = f"/v1/studies/{sid}"
    return {
        "studies": ["/v1/studies"],
        "study": [v],
        "trials": [f"{v}/trials?sort=accuracy&order=desc&limit=50&offset={o}" for o in range(0, n, 50)],
        "trial": [f"{v}/trials/{k}" for k in range(0, n, max(1, n // 200))],
        "pareto": [f"{v}/pareto"],
        "best": [f"{v}/best"],
        "hypervolume": [f"{v}/hypervolume"],
        "parquet": [f"{v}/trials.parquet"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="store URL (default: SQLite in a temp dir)")
    parser.add_argument("--trials", type=int, default=10_000, help="trials in the study (default 10000)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each case (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic metrics")
    parser.add_argument("--workers", type=int, default=1, help="server processes (DSE_WORKERS, default 1)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES), help="endpoints to measure")
    parser.add_argument("--phases", nargs="+", choices=("finished", "running"), default=["finished", "running"])
    parser.add_argument("--write-interval", type=float, default=0.2,
                        help="seconds between two trials the writer records in the running phase")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dse-api-load-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'load.db'}"
        t0 = time.perf_counter()
        studies = {}
        for phase in args.phases:
            studies[phase] = make_study(url, args.trials, args.seed, finish=phase == "finished")
        setup_s = time.perf_counter() - t0
        server = Server(url, Path(tmp), args.workers)
        try:
            pid = server.process.pid
            for phase in args.phases:
                sid = studies[phase]
                writer = Writer(url, sid, args.trials, args.write_interval, args.seed) if phase == "running" else None
                try:
                    paths = case_paths(sid, args.trials)
                    # Warm-up, with every client so that every worker process has served each
                    # request once: the first request of a kind computes (and caches) what later
                    # ones reuse, until a write changes it.
                    for case in args.cases:
                        run_case(server.port, paths[case], args.clients, 3.0)
                    run_case(server.port, ["/healthz"], args.clients, 3.0)
                    baseline = run_case(server.port, ["/healthz"], args.clients, args.seconds, pid)
                    for case in args.cases:
                        written = writer.written if writer else 0
                        result = run_case(server.port, paths[case], args.clients, args.seconds, pid)
                        print(json.dumps(_line(case, phase, result, baseline, args, url, setup_s,
                                               (writer.written - written) if writer else 0)), flush=True)
                finally:
                    if writer is not None:
                        writer.stop()
        finally:
            server.stop()
    return 0


def _line(case: str, phase: str, result: dict, baseline: dict, args: argparse.Namespace, url: str,
          setup_s: float, written: int) -> dict:
    return {
        "bench": "api_load",
        "case": f"{phase}/{case}",
        "phase": phase,
        "cache_hits": phase == "finished",
        "value": result["p99_ms"],
        "unit": "ms (p99)",
        **result,
        "trials_written_during_case": written,
        "clients": args.clients,
        "trials": args.trials,
        "store": url.split(":", 1)[0],
        "baseline_case": "healthz",
        "baseline_value": baseline["p99_ms"],
        "baseline_p50_ms": baseline["p50_ms"],
        "baseline_rps": baseline["rps"],
        "baseline_server_cpu_ms_per_request": baseline.get("server_cpu_ms_per_request"),
        "ratio": round(result["p99_ms"] / baseline["p99_ms"], 3) if baseline["p99_ms"] else None,
        "bar_p99_ms": BAR_P99_MS,
        "meets_bar": result["p99_ms"] <= BAR_P99_MS and result["errors"] == 0,
        "setup_s": round(setup_s, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    sys.exit(main())
