"""Engine overhead per trial: a study whose trial function returns at once, end to end.

Measures, on this machine, ``RayTuneRunner.run()`` for a study of N trials of
``dse.runner.synthetic:instant_trial`` (no training: every second is engine overhead), from the
call to its return, *including* starting a local Ray on demand and stopping it, like ``dse run``
does. The baseline is the same study with Ray Tune's default of a new actor per trial
(``reuse_actors=False``), measured in the same run on fewer trials (it is slow), per trial.

Prints one JSON object per line (see HOUSE_STYLE.md):

- ``case: reuse-actors/<N>-trials``: seconds per trial, end to end; ``meets_target`` compares it
  with the 0.5 s per trial target; ``ratio`` is against the baseline's seconds per trial;
- ``case: reuse-actors/steady``: seconds per trial once workers are up (from the first trial's
  start to the last trial's end, over N - 1 trials) — the marginal cost of one more trial.

    .venv/bin/python benchmarks/dse_overhead.py [--trials 50] [--baseline-trials 10] [--cpus 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dse.results import MemorySink, TrialState
from dse.runner import RayTuneRunner
from dse.spec import load_spec

TARGET_S_PER_TRIAL = 0.5
"""The issue's target: at most this many seconds per trial, end to end."""


def overhead_spec(trials: int, concurrent: int):  # type: ignore[no-untyped-def]
    """A random search over a digits fcnn config, ``trials`` trials, ``concurrent`` at once."""
    return load_spec({
        "name": "overhead",
        "base": {"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [32]},
                 "training": {"epochs": 1}},
        "parameters": [{"name": "lr", "target": "training.lr", "type": "float", "low": 0.01, "high": 0.5,
                        "log": True}],
        "objectives": [{"metric": "accuracy", "goal": "maximize"}],
        "searcher": {"type": "random", "seed": 0},
        "budget": {"max_trials": trials, "max_concurrent_trials": concurrent},
    })


def measure(trials: int, cpus: int, reuse_actors: bool) -> dict[str, float]:
    """Run the study once on a freshly started local Ray; return its timings."""
    spec = overhead_spec(trials, cpus)
    runner = RayTuneRunner(spec, MemorySink(), trial_fn="dse.runner.synthetic:instant_trial",
                           address="local", num_cpus=cpus, reuse_actors=reuse_actors)
    start = time.perf_counter()
    outcome = runner.run()
    total = time.perf_counter() - start
    records = outcome.records
    completed = [r for r in records if r.state is TrialState.COMPLETED]
    if len(completed) != trials:
        raise RuntimeError(f"expected {trials} completed trials, got {[r.state.value for r in records]}")
    first_start = min(r.started_at for r in records)
    last_end = max(r.finished_at for r in records)
    steady = (last_end - first_start).total_seconds() / max(1, trials - 1)
    return {"total_s": total, "per_trial_s": total / trials, "steady_per_trial_s": steady}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="trials of the measured study (default 50)")
    parser.add_argument("--baseline-trials", type=int, default=10,
                        help="trials of the Ray Tune default baseline (default 10; it is slow)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray, = concurrent trials")
    args = parser.parse_args(argv)

    ours = measure(args.trials, args.cpus, reuse_actors=True)
    base = measure(args.baseline_trials, args.cpus, reuse_actors=False)
    common = {"bench": "dse_overhead", "unit": "s/trial", "cpus": args.cpus,
              "baseline_case": f"tune-default-actor-per-trial/{args.baseline_trials}-trials",
              "baseline_value": round(base["per_trial_s"], 4)}
    rows = [
        {**common, "case": f"reuse-actors/{args.trials}-trials", "value": round(ours["per_trial_s"], 4),
         "ratio": round(ours["per_trial_s"] / base["per_trial_s"], 4), "total_s": round(ours["total_s"], 2),
         "baseline_total_s": round(base["total_s"], 2), "target": TARGET_S_PER_TRIAL,
         "meets_target": ours["per_trial_s"] <= TARGET_S_PER_TRIAL},
        {**common, "case": "reuse-actors/steady", "value": round(ours["steady_per_trial_s"], 4),
         "baseline_value": round(base["steady_per_trial_s"], 4), "baseline_case": "tune-default-actor-per-trial/steady",
         "ratio": round(ours["steady_per_trial_s"] / base["steady_per_trial_s"], 4)},
    ]
    for row in rows:
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
