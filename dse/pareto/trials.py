"""Fronts, ranks, hypervolume history and best trials, computed from trial records."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from dse.pareto.hypervolume import Normalization
from dse.pareto.objectives import ObjectivesArg, as_objectives
from dse.pareto.sorting import nondominated_ranks
from dse.spec import ConstraintSpec, ObjectiveSpec


class TrialLike(Protocol):
    """What the functions here read from a trial (``TrialRecord`` and the API's rows qualify)."""

    trial_id: str
    number: int
    state: Any
    metrics: Mapping[str, float]


def _is_completed(t: TrialLike) -> bool:
    return str(getattr(t.state, "value", t.state)).upper() == "COMPLETED"


def objective_values(trial: TrialLike, objectives: Sequence[ObjectiveSpec]) -> tuple[float, ...] | None:
    """The trial's objective values (raw orientation), or None unless all are finite."""
    out = []
    for o in objectives:
        v = o.value(trial.metrics)
        if v is None:
            return None
        out.append(v)
    return tuple(out)


def eligible(trials: Iterable[TrialLike], objectives: ObjectivesArg,
             constraints: Sequence[ConstraintSpec] = ()) -> list[tuple[TrialLike, tuple[float, ...]]]:
    """(trial, objective values) of the eligible trials, in trial-number order."""
    objs = as_objectives(objectives)
    out = []
    for t in sorted(trials, key=lambda t: t.number):
        if not _is_completed(t) or not all(c.satisfied(t.metrics) for c in constraints):
            continue
        values = objective_values(t, objs)
        if values is not None:
            out.append((t, values))
    return out


def rank_trials(trials: Iterable[TrialLike], objectives: ObjectivesArg,
                constraints: Sequence[ConstraintSpec] = ()) -> dict[str, int | None]:
    """Non-dominated rank of every trial (None for ineligible ones), by trial id."""
    trials = list(trials)
    objs = as_objectives(objectives)
    ok = eligible(trials, objs, constraints)
    out: dict[str, int | None] = {t.trial_id: None for t in trials}
    if ok:
        ranks = nondominated_ranks([v for _, v in ok], [o.goal for o in objs])
        for (t, _), r in zip(ok, ranks):
            out[t.trial_id] = int(r)
    return out


def pareto_front(trials: Iterable[TrialLike], objectives: ObjectivesArg,
                 constraints: Sequence[ConstraintSpec] = ()) -> list[TrialLike]:
    """The eligible trials of rank 0, ordered by the first objective (best first), then number."""
    trials = list(trials)
    objs = as_objectives(objectives)
    ranks = rank_trials(trials, objs, constraints)
    front = [t for t in trials if ranks[t.trial_id] == 0]
    first = objs[0]
    return sorted(front, key=lambda t: (first.loss(t.metrics), t.number))


def normalization_for(trials: Iterable[TrialLike], objectives: ObjectivesArg,
                      constraints: Sequence[ConstraintSpec] = ()) -> Normalization:
    """The normalization of a study's eligible trials (see the module docstring)."""
    objs = as_objectives(objectives)
    values = [v for _, v in eligible(trials, objs, constraints)]
    return Normalization.from_values(np.asarray(values, dtype=np.float64).reshape(-1, len(objs)), objs)


def study_hypervolume(trials: Iterable[TrialLike], objectives: ObjectivesArg,
                      constraints: Sequence[ConstraintSpec] = (), normalization: Normalization | None = None) -> float:
    """Normalized hypervolume of the eligible trials (normalized over them unless given)."""
    trials = list(trials)
    objs = as_objectives(objectives)
    norm = normalization or normalization_for(trials, objs, constraints)
    return norm.hypervolume([v for _, v in eligible(trials, objs, constraints)])


def hypervolume_history(trials: Iterable[TrialLike], objectives: ObjectivesArg,
                        constraints: Sequence[ConstraintSpec] = (),
                        normalization: Normalization | None = None) -> list[float]:
    """``history[n - 1]``: normalized hypervolume of the first ``n`` trials (by number).

    The normalization is that of all eligible trials unless given, so the history is
    non-decreasing and its last value equals :func:`study_hypervolume`.
    """
    trials = sorted(trials, key=lambda t: t.number)
    objs = as_objectives(objectives)
    norm = normalization or normalization_for(trials, objs, constraints)
    values_by_id = {t.trial_id: v for t, v in eligible(trials, objs, constraints)}
    volumes = iter(norm.prefix_hypervolumes([values_by_id[t.trial_id] for t in trials
                                             if t.trial_id in values_by_id]))
    out: list[float] = []
    current = 0.0
    for t in trials:
        if t.trial_id in values_by_id:
            current = next(volumes)
        out.append(current)
    return out


def best_trials(trials: Iterable[TrialLike], objectives: ObjectivesArg,
                constraints: Sequence[ConstraintSpec] = ()) -> dict[str, TrialLike | None]:
    """For each objective, the completed trial with its best finite value among those satisfying
    every constraint (the lowest number on a tie); None when there is none."""
    trials = sorted(trials, key=lambda t: t.number)
    out: dict[str, TrialLike | None] = {}
    for o in as_objectives(objectives):
        best, best_loss = None, math.inf
        for t in trials:
            if not _is_completed(t) or not all(c.satisfied(t.metrics) for c in constraints):
                continue
            loss = o.loss(t.metrics)
            if loss is not None and loss < best_loss:
                best, best_loss = t, loss
        out[o.metric] = best
    return out
