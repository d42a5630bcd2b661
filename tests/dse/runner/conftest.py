"""Study specs shared by the runner tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dse.spec import StudySpec, load_spec

BASE: dict[str, Any] = {
    "dataset": {"name": "digits"},
    "model": {"name": "fcnn", "hidden": [32]},
    "training": {"epochs": 3, "lr": 0.05},
}


def study(name: str = "runner-test", **fields: Any) -> StudySpec:
    """A small digits study: ``lr`` (3 values) × ``hidden`` (2 values) on a grid unless overridden."""
    data: dict[str, Any] = {
        "name": name,
        "base": copy.deepcopy(BASE),
        "parameters": [
            {"name": "lr", "target": "training.lr", "type": "discrete", "values": [0.01, 0.05, 0.2]},
            {"name": "hidden", "target": "model.hidden", "type": "categorical", "values": [[16], [64, 32]]},
        ],
        "objectives": [{"metric": "accuracy", "goal": "max"}],
        "searcher": {"type": "grid"},
    }
    data.update(fields)
    return load_spec(data)


@pytest.fixture
def make_study():
    """Build a small digits study spec (see :func:`study`)."""
    return study
