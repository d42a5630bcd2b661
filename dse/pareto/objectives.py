"""Objectives as the Pareto code reads them: specs or ``"metric:min|max[:threshold]"`` strings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dse.errors import SpecError
from dse.spec import ObjectiveSpec

ObjectivesArg = Sequence[ObjectiveSpec | str]


def as_objectives(objectives: ObjectivesArg) -> tuple[ObjectiveSpec, ...]:
    """Objective specs from specs or ``"metric:min|max[:threshold]"`` strings (1 to 3 of them
    for hypervolume, any number for ranks)."""
    out = tuple(o if isinstance(o, ObjectiveSpec) else ObjectiveSpec.parse(o, f"objectives[{i}]")
                for i, o in enumerate(objectives))
    if not out:
        raise SpecError("objectives", "got none; accepted: at least one objective")
    return out


def to_minimization(values: np.ndarray | Sequence[Sequence[float]], goals: Sequence[str]) -> np.ndarray:
    """``values`` (n, k) with maximized columns negated, as float64."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1, len(goals))
    signs = np.array([1.0 if g == "minimize" else -1.0 for g in goals])
    return arr * signs
