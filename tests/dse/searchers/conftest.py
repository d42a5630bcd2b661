"""Spaces, a synthetic objective and a driver loop shared by the searcher tests."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dse.searchers import FINISHED, Searcher
from dse.spec import StudySpec, load_spec

BASE = {"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [16]}, "training": {"epochs": 1, "lr": 0.05}}

FINITE_PARAMETERS = [
    {"name": "lr", "target": "training.lr", "type": "discrete", "values": [0.01, 0.05, 0.1]},
    {"name": "batch", "target": "training.batch_size", "type": "int", "low": 16, "high": 64, "step": 16},
    {"name": "act", "target": "model.activation", "type": "categorical", "values": ["relu", "tanh"]},
    {"name": "hidden", "target": "model.hidden", "type": "categorical", "values": [[16], [32, 16]]},
    {"name": "preset", "target": "hardware.preset", "type": "categorical", "values": ["ideal", "gokmen_vlasov"]},
    {"name": "dw", "target": "hardware.device.dw_min", "type": "discrete", "values": [0.001, 0.002, 0.005],
     "condition": {"parameter": "preset", "equals": "gokmen_vlasov"}},
]
"""3 × 4 × 2 × 2 × (1 + 3) = 192 configurations."""

CONTINUOUS_PARAMETERS = [
    {"name": "lr", "target": "training.lr", "type": "float", "low": 0.001, "high": 0.5, "log": True},
    {"name": "momentum", "target": "training.momentum", "type": "float", "low": 0.0, "high": 0.9, "step": 0.1},
    {"name": "batch", "target": "training.batch_size", "type": "int", "low": 8, "high": 256, "log": True},
    *FINITE_PARAMETERS[2:],
]

OBJECTIVES = [{"metric": "accuracy", "goal": "max"}, {"metric": "train_time_s", "goal": "min"}]


def make_spec(kind: str, *, parameters: list[dict[str, Any]] | None = None, max_trials: int | None = 12,
              objectives: list[dict[str, Any]] | None = None, constraints: list[str] | None = None,
              **searcher_options: Any) -> StudySpec:
    """A study spec with the given searcher.

    The Optuna GP refits a Gaussian process for every suggestion (seconds each, tens of seconds
    for several objectives), so GP studies default to one objective and at most 5 trials (3 of
    them random start-up); the multi-objective GP runs in the ``slow`` tests.
    """
    if kind == "gp":
        searcher_options.setdefault("n_startup_trials", 3)
        objectives = objectives or [OBJECTIVES[0]]
        max_trials = min(max_trials, 5) if max_trials else 5
    elif kind == "tpe":
        searcher_options.setdefault("n_startup_trials", 4)
    elif kind == "nsga2":
        searcher_options.setdefault("population_size", 4)
    if parameters is None:
        parameters = FINITE_PARAMETERS if kind in ("grid", "coordinate") else CONTINUOUS_PARAMETERS
    return load_spec({
        "name": f"searcher-{kind}",
        "base": BASE,
        "parameters": parameters,
        "objectives": objectives or OBJECTIVES,
        "constraints": constraints or [],
        "searcher": {"type": kind, "seed": 0, **searcher_options},
        "budget": {"max_trials": max_trials} if max_trials else {},
    })


def synthetic_metrics(params: dict[str, Any]) -> dict[str, float]:
    """A deterministic stand-in for a trial's results: accuracy peaks at lr = 0.05, tanh, wide
    layers and the ideal preset; time grows with width and shrinks with batch size."""
    lr = params["lr"]
    acc = 0.9 - 0.1 * abs(math.log10(lr) - math.log10(0.05))
    acc += 0.03 if params.get("act") == "tanh" else 0.0
    acc += 0.02 * (len(params.get("hidden", [16])) - 1)
    acc -= 0.05 if params.get("preset") == "gokmen_vlasov" else 0.0
    acc -= 2.0 * params.get("dw", 0.0)
    acc -= 0.01 * abs(params.get("momentum", 0.5) - 0.5)
    width = sum(params.get("hidden", [16]))
    time_s = width / 16.0 + 64.0 / params.get("batch", 32)
    tiles = float(len(params.get("hidden", [16])) + 1)
    return {"accuracy": acc, "train_time_s": time_s, "n_tiles": tiles}


def drive(searcher: Searcher, *, limit: int = 500, concurrency: int = 1,
          outcome: Callable[[int, dict[str, Any]], tuple[dict[str, float] | None, str]] | None = None,
          ) -> list[dict[str, Any]]:
    """Run ``searcher`` like the runner does: keep up to ``concurrency`` trials in flight,
    complete the oldest when it cannot suggest, stop at FINISHED. Returns the suggestions."""
    outcome = outcome or (lambda i, p: (synthetic_metrics(p), "COMPLETED"))
    suggestions: list[dict[str, Any]] = []
    running: list[tuple[str, int, dict[str, Any]]] = []
    counter = 0
    while counter < limit:
        if len(running) < concurrency:
            trial_id = f"trial-{counter}"
            params = searcher.suggest(trial_id)
            if params == FINISHED:
                break
            if params is not None:
                running.append((trial_id, counter, params))
                suggestions.append(params)
                counter += 1
                continue
            if not running:
                raise AssertionError("searcher returned None with no trial running")
        trial_id, index, params = running.pop(0)
        metrics, state = outcome(index, params)
        searcher.on_trial_complete(trial_id, metrics, state)
    for trial_id, index, params in running:
        metrics, state = outcome(index, params)
        searcher.on_trial_complete(trial_id, metrics, state)
    return suggestions
