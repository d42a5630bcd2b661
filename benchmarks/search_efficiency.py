"""Search efficiency: trials each searcher needs to reach 99% of the exhaustive front's hypervolume.

1. The *exhaustive grid* of a digits workload (288 configurations: hidden layers x learning rate x
   batch size x activation, ideal devices, 3 epochs) runs once through the real engine
   (``RayTuneRunner``, ``run_trial``); its results directory is kept under ``--out`` and resumed,
   so a second run of this script does not retrain.
2. Each searcher (TPE, NSGA-II, GP, and random search as the baseline) then searches the same
   space, 5 seeds each, two trials in flight at a time as in a real run, until its front reaches
   99% of the grid's hypervolume (or the grid's number of trials has been spent). A trial's
   metrics are looked up in the grid's results instead of training again: a trial is
   deterministic for its configuration and seed, so a searcher sees what a live study would
   (except the timing noise of ``train_time_s``, which is frozen at the grid's measurement).
3. Hypervolume of accuracy (max) vs ``train_time_s`` (min), normalized once over the grid's
   trials (``dse.pareto.Normalization``), after each trial.

The bar separates searchers (random search reaches 95% of the hypervolume within 30% of the grid,
so that old bar did not): each model-based searcher needs fewer trials than random search to reach
99%, mean of the 5 seeds. Prints one JSON object per line (``value``: mean trials to 99%;
``baseline_value``: random search's; ``ratio`` = value / baseline, below 1 is better) and writes
the curves to ``<out>/search_efficiency.json`` and ``<out>/search_efficiency.png``. A seed that
never reaches 99% counts as the grid's number of trials (and is listed in ``not_reached``).

    .venv/bin/python benchmarks/search_efficiency.py [--out benchmarks/out] [--cpus 2]
"""

from __future__ import annotations

import argparse
import collections
import copy
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dse.pareto import hypervolume_history, normalization_for, study_hypervolume
from dse.results import ParquetResults, TrialState
from dse.searchers import FINISHED, make_searcher
from dse.spec import StudySpec, load_spec
from dse.spec._parse import canonical

SEARCHERS = ("random", "tpe", "nsga2", "gp")
TARGET = 0.99
"""Fraction of the grid's hypervolume each searcher is run to."""
SEEDS = (0, 1, 2, 3, 4)
CONCURRENCY = 2
"""Trials in flight at once while a searcher runs (a study on 2 CPUs)."""

SPACE: dict[str, Any] = {
    "name": "search-efficiency",
    "description": "Exhaustive digits grid for the search-efficiency benchmark.",
    "base": {
        "dataset": {"name": "digits"},
        "model": {"name": "fcnn", "hidden": [64], "activation": "relu"},
        "hardware": {"preset": "ideal"},
        "training": {"epochs": 3, "batch_size": 32, "lr": 0.05},
        "evaluation": {"repeats": 1, "drift_times_s": []},
    },
    "parameters": [
        {"name": "hidden", "target": "model.hidden", "type": "categorical",
         "values": [[16], [32], [64], [128], [64, 32], [128, 64]]},
        {"name": "lr", "target": "training.lr", "type": "discrete", "values": [0.005, 0.01, 0.02, 0.05, 0.1, 0.2]},
        {"name": "batch_size", "target": "training.batch_size", "type": "discrete", "values": [16, 32, 64, 128]},
        {"name": "activation", "target": "model.activation", "type": "categorical", "values": ["relu", "tanh"]},
    ],
    "objectives": [{"metric": "accuracy", "goal": "maximize"}, {"metric": "train_time_s", "goal": "minimize"}],
    "searcher": {"type": "grid"},
    "budget": {"max_failed_trials": 20},
    "resources": {"cpus": 1},
}


@dataclasses.dataclass(frozen=True)
class Replayed:
    """A trial of a replayed search (what :mod:`dse.pareto` reads)."""

    trial_id: str
    number: int
    state: TrialState
    metrics: dict[str, float]


def run_grid(out: Path, cpus: int) -> tuple[StudySpec, list[Any]]:
    """Run (or resume) the exhaustive grid through the engine; its spec and records."""
    from dse.runner import ProgressBar, RayTuneRunner

    spec = load_spec({**SPACE, "budget": {**SPACE["budget"], "max_concurrent_trials": cpus}})
    with ParquetResults(out / "grid", spec, resume=True) as results:
        RayTuneRunner(spec, results, history=results.records(), listeners=[ProgressBar(sys.stderr, interval_s=30)],
                      num_cpus=cpus).run()
        records = results.records()
    missing = [r for r in records if r.state is not TrialState.COMPLETED]
    if missing or len(records) != spec.grid_size():
        raise RuntimeError(f"the grid is incomplete: {len(records)} of {spec.grid_size()} trials, "
                           f"{len(missing)} not completed (rerun to resume)")
    return spec, records


def replay(spec: StudySpec, kind: str, seed: int, budget: int, table: dict[str, dict[str, float]],
           stop: Any = None) -> list[Replayed]:
    """Run searcher ``kind`` for ``budget`` trials, ``CONCURRENCY`` in flight, metrics from ``table``;
    ``stop(done)`` (optional) ends the search early once it returns true."""
    data = copy.deepcopy(spec.to_dict())
    data["searcher"] = {"type": kind, "seed": seed}
    data["budget"] = {"max_trials": budget}
    searcher = make_searcher(load_spec(data, validate_targets=False))
    pending: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
    done: list[Replayed] = []
    finished = False
    number = 0
    while len(done) < budget:
        while not finished and len(pending) < CONCURRENCY:
            trial_id = f"t{number:05d}"
            params = searcher.suggest(trial_id)
            if params is None:
                break
            if params == FINISHED:
                finished = True
                break
            pending.append((trial_id, params))
            number += 1
        if not pending:
            break
        trial_id, params = pending.popleft()
        metrics = table[canonical(params)]
        searcher.on_trial_complete(trial_id, metrics, TrialState.COMPLETED)
        done.append(Replayed(trial_id, int(trial_id[1:]), TrialState.COMPLETED, metrics))
        if stop is not None and stop(done):
            break
    return done


def plot(curves: dict[str, Any], path: Path) -> None:
    """Hypervolume fraction vs trials per searcher and seed, the grid's order for reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = dict(zip(SEARCHERS, ("tab:grey", "tab:blue", "tab:orange", "tab:green")))
    for kind, data in curves["searchers"].items():
        for i, curve in enumerate(data["per_seed"]):
            ax.plot(range(1, len(curve) + 1), curve, color=colors[kind], linewidth=0.8,
                    label=f"{kind} (mean {data['mean_trials']:.0f} trials)" if i == 0 else None)
    grid = curves["grid_in_order"]
    ax.plot(range(1, len(grid) + 1), grid, color="black", linestyle=":", label="grid, in grid order")
    ax.axhline(TARGET, color="black", linewidth=0.8, linestyle="--", label=f"{TARGET:.0%} of the grid's hypervolume")
    ax.set_xlim(1, len(grid))
    ax.set_ylim(0.5, 1.01)
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume / grid hypervolume")
    ax.set_title("accuracy (max) vs train_time_s (min), digits, 288 configurations")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out", help="output folder (default benchmarks/out)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray for the grid (default 2)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    spec, grid = run_grid(out, args.cpus)
    objectives = spec.objectives
    norm = normalization_for(grid, objectives)
    hv_grid = study_hypervolume(grid, objectives, normalization=norm)
    table = {canonical(dict(r.params)): dict(r.metrics) for r in grid}
    cap = len(grid)
    curves: dict[str, Any] = {
        "space": SPACE, "grid_trials": len(grid), "grid_hypervolume": hv_grid,
        "normalization": dataclasses.asdict(norm),
        "grid_in_order": [h / hv_grid for h in hypervolume_history(grid, objectives, normalization=norm)],
        "searchers": {},
    }

    def reached(done: list[Replayed]) -> bool:
        return study_hypervolume(done, objectives, normalization=norm) >= TARGET * hv_grid

    baseline = None
    for kind in SEARCHERS:
        per_seed, trials_needed, missed = [], [], []
        for seed in SEEDS:
            trials = replay(spec, kind, seed, cap, table, stop=reached)
            curve = [h / hv_grid for h in hypervolume_history(trials, objectives, normalization=norm)]
            per_seed.append(curve)
            hit = next((i + 1 for i, v in enumerate(curve) if v >= TARGET), None)
            trials_needed.append(hit if hit is not None else cap)
            if hit is None:
                missed.append(seed)
        mean_trials = sum(trials_needed) / len(trials_needed)
        curves["searchers"][kind] = {"per_seed": per_seed, "trials_to_target": trials_needed,
                                     "mean_trials": mean_trials}
        if kind == "random":
            baseline = mean_trials
        row = {
            "bench": "search_efficiency", "case": kind, "value": mean_trials,
            "unit": f"trials to {TARGET:.0%} of the exhaustive front's hypervolume (mean of {len(SEEDS)} seeds, "
                    f"{len(grid)}-configuration grid)",
            "baseline_case": "random", "baseline_value": baseline,
            "ratio": round(mean_trials / baseline, 4) if baseline else None,
            "per_seed": trials_needed, "not_reached": missed,
        }
        if kind != "random":
            row.update(bar="fewer trials than random search", meets_bar=bool(baseline and mean_trials < baseline))
        print(json.dumps(row), flush=True)
    (out / "search_efficiency.json").write_text(json.dumps(curves, indent=1) + "\n")
    plot(curves, out / "search_efficiency.png")
    print(f"curves: {out / 'search_efficiency.json'}, {out / 'search_efficiency.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
