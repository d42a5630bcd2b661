"""Test data of the service tests, importable without FastAPI (subprocesses use it too)."""

from __future__ import annotations

import copy
import random
from typing import Any

from dse.results import Measurement, TrialRecord


def spec_dict(**changes: Any) -> dict[str, Any]:
    """A valid two-objective study on the embedded digits data."""
    data: dict[str, Any] = {
        "name": "api-test",
        "description": "a study of the service tests",
        "labels": {"team": "api", "kind": "unit"},
        "base": {
            "dataset": {"name": "digits"},
            "model": {"name": "fcnn", "hidden": [16]},
            "training": {"epochs": 1, "lr": 0.1},
        },
        "parameters": [
            {"name": "lr", "target": "training.lr", "type": "float", "low": 0.001, "high": 0.5, "log": True},
            {"name": "hidden", "target": "model.hidden", "type": "categorical", "values": [[16], [32, 16]]},
        ],
        "objectives": [
            {"metric": "accuracy", "goal": "maximize", "threshold": 0.5},
            {"metric": "train_time_s", "goal": "minimize"},
        ],
        "constraints": ["n_params <= 5000"],
        "searcher": {"type": "random", "seed": 7},
        "budget": {"max_trials": 40},
    }
    data.update(copy.deepcopy(changes))
    return data


def synthetic_records(
    n: int, seed: int = 0, *, start: int = 0, state: str = "COMPLETED"
) -> list[TrialRecord]:
    """``n`` finished records with random metrics (accuracy, train_time_s, n_params)."""
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        rec = TrialRecord.pending(
            f"trial-{i:05d}", i, {"lr": rng.uniform(0.001, 0.5), "hidden": [16]}, seeds=(i,)
        )
        rec = rec.start(node=f"node-{i % 2}")
        rec = rec.add_measurement(Measurement.from_report({"epoch": 1, "accuracy": rng.random()}))
        metrics = {
            "accuracy": rng.random(),
            "train_time_s": rng.uniform(0.1, 10.0),
            "n_params": float(rng.choice([1000, 4000, 8000])),
        }
        if state == "COMPLETED":
            rec = rec.complete([metrics])
        elif state == "FAILED":
            rec = rec.fail("diverged: loss is NaN")
        out.append(rec)
    return out
