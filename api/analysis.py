"""Results computed from a study snapshot: Pareto ranks, best trials, hypervolume history.

The definitions are the engine's (:mod:`dse.pareto`): *eligible* trials are COMPLETED, have a
finite value for every objective and satisfy every constraint; ranks come from
:func:`dse.pareto.nondominated_ranks`, hypervolumes from :class:`dse.pareto.Normalization`. What
this module adds is speed for large studies: eligibility is decided on the snapshot's metric
columns with numpy instead of trial by trial, and the hypervolume history is sampled at most at
:data:`MAX_HISTORY_POINTS` counts (:meth:`dse.pareto.Normalization.prefix_hypervolumes`).
``tests/api/test_analysis.py`` checks both against
``dse.pareto.rank_trials`` / ``best_trials`` / ``hypervolume_history`` on random studies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from api.snapshot import StudySnapshot
from api.store.convert import json_number
from dse.pareto import Normalization, nondominated_ranks
from dse.spec import ConstraintSpec, ObjectiveSpec, StudySpec

INFEASIBLE = -1
"""Rank given to completed trials with finite objectives that violate a constraint."""

MAX_HISTORY_POINTS = 1000
"""Most points in a hypervolume history; longer studies are sampled at evenly spaced counts."""


def _key(objectives: Sequence[ObjectiveSpec], constraints: Sequence[ConstraintSpec]) -> tuple:
    return (
        tuple((o.metric, o.goal, o.threshold) for o in objectives),
        tuple((c.metric, c.op, c.bound) for c in constraints),
    )


def feasible_mask(snap: StudySnapshot, constraints: Sequence[ConstraintSpec]) -> np.ndarray:
    """Trials that satisfy every constraint (a missing or non-finite metric violates it)."""
    ok = np.ones(len(snap.trials), dtype=bool)
    for c in constraints:
        col = snap.column(c.metric)
        with np.errstate(invalid="ignore"):
            within = col <= c.bound if c.op == "<=" else col >= c.bound
        ok &= np.isfinite(col) & within
    return ok


def objective_matrix(
    snap: StudySnapshot, objectives: Sequence[ObjectiveSpec]
) -> tuple[np.ndarray, np.ndarray]:
    """``(values (n, k), rankable mask)``: rankable trials are COMPLETED with every objective finite."""
    values = (
        np.column_stack([snap.column(o.metric) for o in objectives])
        if objectives
        else np.zeros((len(snap.trials), 0))
    )
    rankable = (snap.states == "COMPLETED") & np.isfinite(values).all(axis=1)
    return values, rankable


def pareto(
    snap: StudySnapshot, objectives: Sequence[ObjectiveSpec], constraints: Sequence[ConstraintSpec]
) -> dict[str, Any]:
    """The front (trial positions, best first by the first objective) and every ranked trial's
    number and rank (``-1``: infeasible), with ``shown``, their positions (for their objective
    values: :meth:`StudySnapshot.values_json`)."""

    def compute() -> dict[str, Any]:
        values, rankable = objective_matrix(snap, objectives)
        feasible = feasible_mask(snap, constraints)
        eligible = np.flatnonzero(rankable & feasible)
        ranks = np.full(len(snap.trials), INFEASIBLE, dtype=np.int64)
        if eligible.size:
            ranks[eligible] = nondominated_ranks(values[eligible], [o.goal for o in objectives])
        shown = np.flatnonzero(rankable)
        front = eligible[ranks[eligible] == 0]
        first = values[front, 0] * (1.0 if objectives[0].goal == "minimize" else -1.0)
        front = front[np.lexsort((snap.numbers[front], first))]
        return {
            "front": front,
            "numbers": snap.numbers[shown].tolist(),
            "ranks": ranks[shown].tolist(),
            "shown": shown,
        }

    return snap.memo(("pareto", _key(objectives, constraints)), compute)


def best(snap: StudySnapshot, objective: ObjectiveSpec, constraints: Sequence[ConstraintSpec]) -> int | None:
    """Position of the COMPLETED trial with the best finite value of ``objective`` among those
    satisfying every constraint (lowest number on a tie), or None."""

    def compute() -> int | None:
        col = snap.column(objective.metric)
        ok = (snap.states == "COMPLETED") & np.isfinite(col) & feasible_mask(snap, constraints)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return None
        loss = col[idx] if objective.goal == "minimize" else -col[idx]
        return int(idx[int(np.argmin(loss))])  # argmin: first (lowest number) on ties

    return snap.memo(("best", _key([objective], constraints)), compute)


def best_per_objective(snap: StudySnapshot, spec: StudySpec) -> list[dict[str, Any]]:
    """Best value so far of each of the study's objectives, under its constraints."""
    out = []
    for o in spec.objectives:
        pos = best(snap, o, spec.constraints)
        if pos is not None:
            t = snap.trials[pos]
            out.append(
                {"metric": o.metric, "goal": o.goal, "value": float(t.metrics[o.metric]), "trial": t.number}
            )
    return out


def hypervolume_history(
    snap: StudySnapshot, objectives: Sequence[ObjectiveSpec], constraints: Sequence[ConstraintSpec]
) -> dict[str, Any]:
    """Normalized hypervolume of the first ``n`` trials (by number) at each ``n`` where an
    eligible trial joined (sampled to at most :data:`MAX_HISTORY_POINTS` points), with the
    normalization of all eligible trials (so the last value is the study's hypervolume)."""

    def compute() -> dict[str, Any]:
        values, rankable = objective_matrix(snap, objectives)
        eligible = np.flatnonzero(rankable & feasible_mask(snap, constraints))
        pts = values[eligible]
        norm = Normalization.from_values(pts.reshape(-1, len(objectives)), list(objectives))
        history: list[dict[str, float]] = []
        if eligible.size:
            steps = np.arange(1, eligible.size + 1)
            if steps.size > MAX_HISTORY_POINTS:
                steps = np.unique(np.linspace(1, eligible.size, MAX_HISTORY_POINTS).round().astype(int))
            volumes = norm.prefix_hypervolumes(pts, steps.tolist())
            # Trials are ordered by number, so position + 1 is the count of trials so far.
            history = [{"trials": int(eligible[upto - 1]) + 1, "hypervolume": hv}
                       for upto, hv in zip(steps.tolist(), volumes)]
            if history[-1]["trials"] < len(snap.trials):
                history.append({"trials": len(snap.trials), "hypervolume": history[-1]["hypervolume"]})
        return {
            "history": history,
            "normalization": {
                "goals": list(norm.goals),
                "ideal": [json_number(v) for v in norm.ideal],
                "reference": [json_number(v) for v in norm.reference],
            },
        }

    return snap.memo(("hypervolume", _key(objectives, constraints)), compute)

