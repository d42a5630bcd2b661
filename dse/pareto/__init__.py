"""Pareto fronts, exact hypervolume and best trials, computed from trial records.

Conventions
-----------
*Eligible* trials are those COMPLETED with a finite value for every objective that satisfy every
constraint. Only they are ranked, enter a front or a hypervolume, or can be best.

*Ranks* come from non-dominated sorting: rank 0 is the Pareto front, rank 1 the front of the rest,
and so on. ``a`` dominates ``b`` when ``a`` is at least as good in every objective and better in
one; identical points share a rank. :func:`nondominated_ranks` is O(n log n) for two objectives
(a sweep keeping each front's last point), O(n log n · log F + moves) for three (a sweep keeping a
2-D staircase per front, binary search over the F fronts), and O(k n²) beyond.

*Normalization* (:class:`Normalization`): each objective is first turned into one to minimize,
``y = v`` for ``minimize`` and ``y = -v`` for ``maximize``. Then ``z = (y - ideal) / (ref - ideal)``
where, over the eligible points of the reference set,

- ``ideal`` is the best (smallest) ``y``;
- ``ref`` is the objective's ``threshold`` (converted the same way) when it has one; otherwise the
  worst ``y`` plus 10% of the range, ``nadir + 0.1 · (nadir - ideal)``, so that the worst points
  still add volume; when the range is zero, ``ideal + 1``.

The *hypervolume* is the Lebesgue measure of the union of the boxes ``[z(p), 1]^k`` over the
points with every ``z < 1`` (points at or beyond a threshold add nothing). It lies in [0, 1] and
is 1 only if one point attains the ideal in every objective. Comparing hypervolumes across
studies (searchers against an exhaustive grid) needs one shared :class:`Normalization`; pass it
explicitly. Exact algorithms: a sweep for 2 objectives, a sweep in the third objective over an
incrementally maintained 2-D area for 3 (both O(n log n) plus list moves).
"""

from __future__ import annotations

from dse.pareto.hypervolume import REFERENCE_MARGIN, Normalization, hypervolume
from dse.pareto.objectives import ObjectivesArg, as_objectives, to_minimization
from dse.pareto.sorting import nondominated_ranks
from dse.pareto.trials import (
    TrialLike,
    best_trials,
    eligible,
    hypervolume_history,
    normalization_for,
    objective_values,
    pareto_front,
    rank_trials,
    study_hypervolume,
)

__all__ = [
    "REFERENCE_MARGIN", "Normalization", "ObjectivesArg", "TrialLike", "as_objectives", "best_trials", "eligible",
    "hypervolume", "hypervolume_history", "nondominated_ranks", "normalization_for", "objective_values",
    "pareto_front", "rank_trials", "study_hypervolume", "to_minimization",
]
