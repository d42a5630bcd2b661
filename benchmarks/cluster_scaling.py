"""Cluster mode on this machine: trial throughput with 1 and 2 Ray worker nodes, and the overhead
per trial that cluster mode adds to a local Ray.

Each case runs the same fixed study with ``dse run`` in its own process (a fresh Ray driver),
``--rounds`` times, the cases interleaved (medians reported, each run's throughput listed),
against a multi-node cluster started with ``deploy/local-cluster.sh`` (head without CPUs, worker
nodes of ``--worker-cpus`` CPUs each) or against a local Ray (``--address local``):

- ``digits/cluster-1w``, ``digits/cluster-2w``, ``digits/local``: a grid of real trials
  (``dse.trial.run:run_trial``: fcnn 64-128-10 on the embedded digits data, default hardware
  preset, ``--epochs`` epochs, one programmed read-out and no drift sweep, one CPU each);
- ``instant/cluster-2w``, ``instant/local``: a grid of trials that return at once
  (``dse.runner.synthetic:instant_trial``), which measures the engine alone.

From each study's ``trials.parquet`` (driver-side start and finish times, the node of each trial):

- throughput = trials / (last finish - first start), in trials/s, cold workers included;
- steady throughput: the same after every trial slot finished its first (cold) trial;
- overhead per trial = span x slots / trials - mean trial compute time, in s: how long a slot is
  busy per trial beyond the trial's own work (``train_time_s + eval_time_s`` of a real trial,
  0 for an instant one); the steady overhead is the same from the steady throughput;
- cold start: from the first trial's start until every slot finished one trial, less one trial's
  compute (a new Ray worker process importing torch and the trial code).

Prints one JSON object per line (``bench``, ``case``, ``value``, ``unit``, ``baseline_case``,
``baseline_value``, ``ratio`` plus details). Ratios compare cases of the same run; absolute
seconds depend on the load of this shared machine. Example::

    .venv/bin/python benchmarks/cluster_scaling.py              # ~12 minutes on 2 cores
    .venv/bin/python benchmarks/cluster_scaling.py --rounds 1 --digits-trials 8 --instant-trials 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
LOCAL_CLUSTER = ROOT / "deploy" / "local-cluster.sh"
BENCH = "cluster_scaling"


def study(name: str, n_trials: int, epochs: int) -> dict[str, Any]:
    """A grid study of ``n_trials`` digits configurations (``n_trials`` learning rates)."""
    return {
        "name": name,
        "base": {
            "dataset": {"name": "digits"},
            "model": {"name": "fcnn", "hidden": [128]},
            "training": {"epochs": epochs, "lr": 0.05},
            # one programmed read-out, no drift sweep: the trial's time is mostly training
            "evaluation": {"repeats": 1, "drift_times_s": []},
        },
        "parameters": [
            {"name": "lr", "target": "training.lr", "type": "discrete",
             "values": [round(0.01 + 0.005 * i, 4) for i in range(n_trials)]},
        ],
        "objectives": [{"metric": "accuracy", "goal": "max"}],
        "searcher": {"type": "grid"},
        "resources": {"cpus": 1},
    }


@contextlib.contextmanager
def local_cluster(workers: int, worker_cpus: int) -> Iterator[dict[str, str]]:
    """A local multi-node cluster; yields the driver environment (RAY_ADDRESS, token)."""
    state = Path(tempfile.mkdtemp(prefix="dselc-bench-", dir="/tmp"))
    env = {**os.environ, "DSE_CLUSTER_DIR": str(state), "DSE_PYTHON": sys.executable}
    try:
        out = subprocess.run([str(LOCAL_CLUSTER), "start", "--workers", str(workers),
                              "--worker-cpus", str(worker_cpus)],
                             env=env, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"local cluster did not start: {out.stderr}")
        yield dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines())
    finally:
        subprocess.run([str(LOCAL_CLUSTER), "stop", "--clean"], env=env, capture_output=True, timeout=300)
        shutil.rmtree(state, ignore_errors=True)


def run_study(spec: dict[str, Any], trial_fn: str, workdir: Path, *, driver_env: dict[str, str] | None,
              local_cpus: int | None) -> dict[str, Any]:
    """Run ``spec`` with ``dse run`` in a fresh process; returns its timing figures."""
    import pyarrow.parquet as pq

    spec_file = workdir / f"{spec['name']}.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    results = workdir / spec["name"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    command = [sys.executable, "-m", "dse.cli", "run", str(spec_file), "--results", str(results),
               "--trial-fn", trial_fn, "--quiet"]
    if driver_env is None:
        command += ["--address", "local", "--num-cpus", str(local_cpus)]
    else:
        env.update(driver_env)
    started = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"dse run failed ({out.returncode}): {out.stderr[-2000:]}")
    table = pq.read_table(results / "trials.parquet").to_pandas()
    done = table[table["state"] == "COMPLETED"]
    if len(done) != len(table):
        raise RuntimeError(f"{len(table) - len(done)} trials did not complete: {table['error'].tolist()}")
    start = done["started_at"].min()
    finishes = sorted(done["finished_at"])
    span = (finishes[-1] - start).total_seconds()
    compute = [0.0] * len(done)
    if "metric.train_time_s" in done and trial_fn.endswith(":run_trial"):
        compute = list(done["metric.train_time_s"] + done["metric.eval_time_s"])
    return {"n_trials": len(done), "span_s": span, "wall_s": wall, "finishes": finishes, "start": start,
            "nodes": int(done["node"].nunique()), "mean_compute_s": statistics.fmean(compute)}


def figures(result: dict[str, Any], slots: int) -> dict[str, float]:
    """Throughput, steady throughput, overhead per trial (whole span and steady state), cold start."""
    n, span, finishes = result["n_trials"], result["span_s"], result["finishes"]
    compute = result["mean_compute_s"]
    steady_n = n - slots
    steady_span = (finishes[-1] - finishes[slots - 1]).total_seconds() if steady_n > 0 else 0.0
    steady = steady_n / steady_span if steady_span > 0 else float("nan")
    return {
        "throughput": n / span,
        "steady_throughput": steady,
        "overhead_s": span * slots / n - compute,
        "steady_overhead_s": slots / steady - compute if steady == steady else float("nan"),
        "cold_start_s": (finishes[min(slots, n) - 1] - result["start"]).total_seconds() - compute,
    }


def emit(case: str, value: float, unit: str, baseline_case: str | None = None,
         baseline_value: float | None = None, **extra: Any) -> None:
    line = {"bench": BENCH, "case": case, "value": round(value, 4), "unit": unit,
            "baseline_case": baseline_case,
            "baseline_value": None if baseline_value is None else round(baseline_value, 4),
            "ratio": None if not baseline_value else round(value / baseline_value, 3)}
    line.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in extra.items()})
    print(json.dumps(line), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits-trials", type=int, default=16, help="real trials per study (default 16)")
    parser.add_argument("--instant-trials", type=int, default=50, help="instant trials per study (default 50)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each real trial (default 20)")
    parser.add_argument("--worker-cpus", type=int, default=1, help="CPUs per worker node (default 1)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of all cases, interleaved so that load drift hits every case (default 2)")
    args = parser.parse_args(argv)
    for name in ("digits_trials", "instant_trials", "epochs", "worker_cpus", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: got {getattr(args, name)}; accepted: an integer >= 1")

    digits = "dse.trial.run:run_trial"
    instant = "dse.runner.synthetic:instant_trial"
    cpus = args.worker_cpus
    slots = {"digits/cluster-1w": cpus, "digits/cluster-2w": 2 * cpus, "instant/cluster-2w": 2 * cpus,
             "digits/local": 2 * cpus, "instant/local": 2 * cpus}
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in slots}
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dse-bench-")))
        # Both clusters stay up for the whole run; each round runs every case once.
        one_worker = stack.enter_context(local_cluster(1, cpus))
        two_workers = stack.enter_context(local_cluster(2, cpus))
        plan = [
            ("digits/cluster-1w", digits, args.digits_trials, args.epochs, one_worker),
            ("digits/cluster-2w", digits, args.digits_trials, args.epochs, two_workers),
            ("digits/local", digits, args.digits_trials, args.epochs, None),
            ("instant/cluster-2w", instant, args.instant_trials, 1, two_workers),
            ("instant/local", instant, args.instant_trials, 1, None),
        ]
        for r in range(args.rounds):
            for case, fn, n, epochs, env in plan:
                name = f"{case.replace('/', '-')}-r{r}"
                result = run_study(study(name, n, epochs), fn, work, driver_env=env, local_cpus=2 * cpus)
                runs[case].append({**result, **figures(result, slots[case])})

    def med(case: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[case])

    def details(case: str) -> dict[str, Any]:
        keys = ("span_s", "wall_s", "mean_compute_s", "steady_throughput", "overhead_s", "steady_overhead_s",
                "cold_start_s")
        out: dict[str, Any] = {"rounds": len(runs[case]), "n_trials": runs[case][0]["n_trials"],
                               "nodes_used": max(run["nodes"] for run in runs[case]), "slots": slots[case]}
        out.update({f"median_{k}": med(case, k) for k in keys})
        out["throughputs"] = [round(run["throughput"], 4) for run in runs[case]]
        return out

    one, two, local = (med(c, "throughput") for c in ("digits/cluster-1w", "digits/cluster-2w", "digits/local"))
    emit("digits/cluster-1w", one, "trials/s", **details("digits/cluster-1w"))
    emit("digits/local", local, "trials/s", **details("digits/local"))
    emit("digits/cluster-2w", two, "trials/s", "digits/cluster-1w", one, ideal_ratio=2.0,
         steady_ratio=med("digits/cluster-2w", "steady_throughput") / med("digits/cluster-1w", "steady_throughput"),
         ratio_vs_local=two / local, **details("digits/cluster-2w"))
    emit("instant/local", med("instant/local", "overhead_s"), "s/trial overhead", **details("instant/local"))
    emit("instant/cluster-2w", med("instant/cluster-2w", "overhead_s"), "s/trial overhead", "instant/local",
         med("instant/local", "overhead_s"), **details("instant/cluster-2w"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
