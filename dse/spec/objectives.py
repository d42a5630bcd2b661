"""Objectives and constraints of a study spec."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dse.errors import SpecError
from dse.spec._parse import Fields, as_name, describe

GOALS = ("minimize", "maximize")
_GOAL_ALIASES = {"min": "minimize", "max": "maximize", "minimize": "minimize", "maximize": "maximize"}
CONSTRAINT_OPS = ("<=", ">=")


@dataclass(frozen=True)
class ObjectiveSpec:
    """A metric to optimize."""

    metric: str
    """Name of a metric the trial reports (``accuracy``, ``train_time_s``, ``n_layers`` ...)."""
    goal: Literal["minimize", "maximize"]
    """Direction: ``minimize`` or ``maximize`` (``min`` / ``max`` accepted on input)."""
    threshold: float | None = None
    """Worst acceptable value; the hypervolume reference point in this objective (see
    :mod:`dse.pareto`). ``None`` derives the reference from the trials."""

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        """The metric's value in ``metrics``, or None when missing or not finite."""
        v = metrics.get(self.metric)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return None
        return float(v)

    def loss(self, metrics: Mapping[str, Any]) -> float | None:
        """The value turned into one to minimize (negated for ``maximize``), or None."""
        v = self.value(metrics)
        return None if v is None else (v if self.goal == "minimize" else -v)

    def better(self, a: float, b: float) -> bool:
        """True when value ``a`` is strictly better than ``b``."""
        return a < b if self.goal == "minimize" else a > b

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "goal": self.goal}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out

    @classmethod
    def from_dict(cls, data: Any, path: str) -> ObjectiveSpec:
        if isinstance(data, str):
            return cls.parse(data, path)
        f = Fields(data, path, "an objective: {metric, goal, threshold}")
        metric = as_name(f.raw("metric"), f.at("metric"), "metric name")
        goal = _goal(f.raw("goal"), f.at("goal"))
        threshold = f.number("threshold", None)
        f.done()
        return cls(metric=metric, goal=goal, threshold=threshold)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, text: str, path: str = "objective") -> ObjectiveSpec:
        """``"accuracy:max"`` / ``"train_time_s:min:60"`` (metric, goal, optional threshold)."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise SpecError(path, f"got {text!r}; accepted: METRIC:min|max[:THRESHOLD]")
        threshold = None
        if len(parts) == 3:
            try:
                threshold = float(parts[2])
            except ValueError:
                raise SpecError(path, f"threshold {parts[2]!r} is not a number; accepted: METRIC:min|max[:THRESHOLD]") from None
            if not math.isfinite(threshold):
                raise SpecError(path, f"threshold {parts[2]!r} is not finite; accepted: a finite number "
                                      "(METRIC:min|max[:THRESHOLD])")
        return cls(metric=as_name(parts[0], path, "metric name"), goal=_goal(parts[1], path),  # type: ignore[arg-type]
                   threshold=threshold)


def _goal(value: Any, path: str) -> str:
    if not isinstance(value, str) or value.lower() not in _GOAL_ALIASES:
        raise SpecError(path, f"got {describe(value)}; accepted: minimize or maximize (min / max)")
    return _GOAL_ALIASES[value.lower()]


_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-\[\]]*)\s*(<=|>=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class ConstraintSpec:
    """A bound on a metric: trials that violate it are infeasible (``n_tiles <= 16``)."""

    metric: str
    """Name of the constrained metric."""
    op: Literal["<=", ">="]
    """``<=`` (at most) or ``>=`` (at least)."""
    bound: float
    """The bound."""

    def violation(self, metrics: Mapping[str, Any]) -> float:
        """How far the trial is from satisfying the constraint: ``<= 0`` is feasible, a missing or
        non-finite metric is ``+inf`` (Optuna's ``constraints_func`` convention)."""
        v = metrics.get(self.metric)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return math.inf
        return float(v) - self.bound if self.op == "<=" else self.bound - float(v)

    def satisfied(self, metrics: Mapping[str, Any]) -> bool:
        """True when the metric is present, finite and within the bound."""
        return self.violation(metrics) <= 0.0

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "op": self.op, "bound": self.bound}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> ConstraintSpec:
        if isinstance(data, str):
            m = _CONSTRAINT_RE.match(data)
            bound = None
            if m:
                try:
                    bound = float(m.group(3))
                except ValueError:
                    bound = None
            if not m or bound is None or not math.isfinite(bound):
                raise SpecError(path, f"got {data!r}; accepted: 'METRIC <= NUMBER' or 'METRIC >= NUMBER'")
            return cls(metric=m.group(1), op=m.group(2), bound=bound)  # type: ignore[arg-type]
        f = Fields(data, path, "a constraint: 'METRIC <= NUMBER' or {metric, op, bound}")
        metric = as_name(f.raw("metric"), f.at("metric"), "metric name")
        op = f.string("op", choices=CONSTRAINT_OPS)
        bound = f.number("bound")
        f.done()
        return cls(metric=metric, op=op, bound=bound)  # type: ignore[arg-type]
