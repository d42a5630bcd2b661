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

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dse.errors import SpecError
from dse.spec import ConstraintSpec, ObjectiveSpec

REFERENCE_MARGIN = 0.1
"""Fraction of the range added beyond the worst value when an objective has no threshold."""


class TrialLike(Protocol):
    """What the functions here read from a trial (``TrialRecord`` and the API's rows qualify)."""

    trial_id: str
    number: int
    state: Any
    metrics: Mapping[str, float]


ObjectivesArg = Sequence[ObjectiveSpec | str]


def as_objectives(objectives: ObjectivesArg) -> tuple[ObjectiveSpec, ...]:
    """Objective specs from specs or ``"metric:min|max[:threshold]"`` strings (1 to 3 of them
    for hypervolume, any number for ranks)."""
    out = tuple(o if isinstance(o, ObjectiveSpec) else ObjectiveSpec.parse(o, f"objectives[{i}]")
                for i, o in enumerate(objectives))
    if not out:
        raise SpecError("objectives", "got none; accepted: at least one objective")
    return out


# -- non-dominated sorting ----------------------------------------------------------------------
def to_minimization(values: np.ndarray | Sequence[Sequence[float]], goals: Sequence[str]) -> np.ndarray:
    """``values`` (n, k) with maximized columns negated, as float64."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1, len(goals))
    signs = np.array([1.0 if g == "minimize" else -1.0 for g in goals])
    return arr * signs


def nondominated_ranks(points: np.ndarray | Sequence[Sequence[float]], goals: Sequence[str] | None = None) -> np.ndarray:
    """Non-dominated rank of each point (0 = Pareto front); all objectives minimized unless
    ``goals`` says otherwise. Points must be finite."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2:
        raise ValueError(f"points: got shape {pts.shape}; accepted: (n, k)")
    if goals is not None:
        pts = to_minimization(pts, goals)
    n, k = pts.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.isfinite(pts).all():
        raise ValueError("points: got NaN or infinite values; accepted: finite objective values")
    uniq, inverse = np.unique(pts, axis=0, return_inverse=True)  # lexicographically sorted
    inverse = inverse.reshape(-1)
    if k == 2:
        ranks = _ranks_2d(uniq)
    elif k == 3:
        ranks = _ranks_3d(uniq)
    else:
        ranks = _ranks_general(uniq)
    return ranks[inverse]


def _ranks_2d(pts: np.ndarray) -> np.ndarray:
    # Sorted by (f1, f2), distinct: an earlier point q dominates p iff q.f2 <= p.f2. A front's
    # last point has its smallest f2, and those minima rise with the rank, so p joins the first
    # front whose minimum exceeds p.f2 (binary search).
    last: list[float] = []
    ranks = np.empty(len(pts), dtype=np.int64)
    for idx, (_, y) in enumerate(pts):
        r = bisect.bisect_right(last, y)
        if r == len(last):
            last.append(y)
        else:
            last[r] = y
        ranks[idx] = r
    return ranks


class _Staircase:
    """Mutually non-dominated 2-D points (x ascending, y descending) with dominance queries and,
    when ``ref`` is given, the area of the union of their boxes up to ``ref``."""

    def __init__(self, ref: tuple[float, float] | None = None) -> None:
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.ref = ref
        self.area = 0.0

    def dominates(self, x: float, y: float) -> bool:
        """True when some point has ``x' <= x`` and ``y' <= y``."""
        i = bisect.bisect_right(self.xs, x) - 1
        return i >= 0 and self.ys[i] <= y

    def insert(self, x: float, y: float) -> None:
        """Add ``(x, y)`` (ignored when weakly dominated), dropping the points it dominates."""
        if self.dominates(x, y):
            return
        xs, ys = self.xs, self.ys
        k0 = bisect.bisect_left(xs, x)
        k1 = k0
        while k1 < len(xs) and ys[k1] >= y:
            k1 += 1
        if self.ref is not None:
            rx, ry = self.ref
            x_end = xs[k1] if k1 < len(xs) else rx
            height = ry - y
            cur = ry - ys[k0 - 1] if k0 > 0 else 0.0
            pos, gain = x, 0.0
            for k in range(k0, k1):
                gain += (xs[k] - pos) * (height - cur)
                pos, cur = xs[k], ry - ys[k]
            gain += (x_end - pos) * (height - cur)
            self.area += gain
        xs[k0:k1] = [x]
        ys[k0:k1] = [y]


def _ranks_3d(pts: np.ndarray) -> np.ndarray:
    # Sorted by (f1, f2, f3), distinct: an earlier q dominates p iff q is below p in (f2, f3).
    # "Front r dominates p" is monotone in r (a member of front r is dominated by a member of
    # every lower front, and dominance is transitive), so binary search finds p's front.
    fronts: list[_Staircase] = []
    ranks = np.empty(len(pts), dtype=np.int64)
    for idx, (_, y, z) in enumerate(pts):
        lo, hi = 0, len(fronts)
        while lo < hi:
            mid = (lo + hi) // 2
            if fronts[mid].dominates(y, z):
                lo = mid + 1
            else:
                hi = mid
        if lo == len(fronts):
            fronts.append(_Staircase())
        fronts[lo].insert(y, z)
        ranks[idx] = lo
    return ranks


def _ranks_general(pts: np.ndarray) -> np.ndarray:
    n = len(pts)
    le = (pts[:, None, :] <= pts[None, :, :]).all(axis=2)
    lt = (pts[:, None, :] < pts[None, :, :]).any(axis=2)
    dominates = le & lt  # dominates[i, j]: i dominates j
    counts = dominates.sum(axis=0)
    ranks = np.full(n, -1, dtype=np.int64)
    current = np.flatnonzero(counts == 0)
    r = 0
    while current.size:
        ranks[current] = r
        counts = counts - dominates[current].sum(axis=0)
        counts[ranks >= 0] = -1
        current = np.flatnonzero(counts == 0)
        r += 1
    return ranks


# -- hypervolume -------------------------------------------------------------------------------
def hypervolume(points: np.ndarray | Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Exact volume dominated by ``points`` (all objectives minimized) and bounded by
    ``reference``; points not strictly better than the reference in every objective add nothing.
    One, two or three objectives."""
    pts = np.asarray(points, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if pts.size == 0:
        return 0.0
    if pts.ndim != 2 or pts.shape[1] != ref.shape[0]:
        raise ValueError(f"points: got shape {pts.shape} for a reference of {ref.shape[0]} objectives")
    k = pts.shape[1]
    if k > 3:
        raise ValueError(f"got {k} objectives; accepted: exact hypervolume for 1, 2 or 3")
    pts = pts[(pts < ref).all(axis=1)]
    if len(pts) == 0:
        return 0.0
    if k == 1:
        return float(ref[0] - pts[:, 0].min())
    if k == 2:
        return _hv_2d(pts, ref)
    return _hv_3d(pts, ref)


def _hv_2d(pts: np.ndarray, ref: np.ndarray) -> float:
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    best_y, area = ref[1], 0.0
    for x, y in pts[order]:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def _hv_3d(pts: np.ndarray, ref: np.ndarray) -> float:
    order = np.argsort(pts[:, 2], kind="stable")
    stair = _Staircase((float(ref[0]), float(ref[1])))
    volume = 0.0
    zs = pts[order, 2]
    for t, idx in enumerate(order):
        stair.insert(float(pts[idx, 0]), float(pts[idx, 1]))
        z_next = zs[t + 1] if t + 1 < len(order) else ref[2]
        volume += stair.area * (z_next - zs[t])
    return float(volume)


@dataclass(frozen=True)
class Normalization:
    """Maps objective values to ``z = (y - ideal) / (ref - ideal)`` (see the module docstring)."""

    goals: tuple[str, ...]
    """``minimize`` / ``maximize`` per objective."""
    ideal: tuple[float, ...]
    """Best value per objective, in the minimized orientation (``-v`` for maximize)."""
    reference: tuple[float, ...]
    """Reference point per objective, in the minimized orientation."""

    @classmethod
    def from_values(cls, values: np.ndarray | Sequence[Sequence[float]], objectives: ObjectivesArg,
                    margin: float = REFERENCE_MARGIN) -> Normalization:
        """The normalization of a reference set of objective values (n, k), in the objectives'
        own orientation (raw metric values)."""
        objs = as_objectives(objectives)
        goals = tuple(o.goal for o in objs)
        y = to_minimization(values, goals)
        ideal, ref = [], []
        for j, o in enumerate(objs):
            col = y[:, j] if len(y) else np.zeros(0)
            lo = float(col.min()) if col.size else 0.0
            hi = float(col.max()) if col.size else 1.0
            ideal.append(lo)
            if o.threshold is not None:
                ref.append(o.threshold if o.goal == "minimize" else -o.threshold)
            elif hi > lo:
                ref.append(hi + margin * (hi - lo))
            else:
                ref.append(lo + 1.0)
        return cls(goals=goals, ideal=tuple(ideal), reference=tuple(ref))

    def apply(self, values: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Normalized, minimized values ``z`` of raw objective values (n, k); an objective whose
        reference is not worse than its ideal maps every point to ``inf`` (nothing counts)."""
        y = to_minimization(values, self.goals)
        ideal = np.asarray(self.ideal)
        scale = np.asarray(self.reference) - ideal
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (y - ideal) / np.where(scale > 0, scale, 1.0)
        z[:, scale <= 0] = math.inf
        return z

    def hypervolume(self, values: np.ndarray | Sequence[Sequence[float]]) -> float:
        """Normalized hypervolume of raw objective values (n, k), in [0, 1]."""
        arr = np.asarray(values, dtype=np.float64).reshape(-1, len(self.goals))
        if len(arr) == 0:
            return 0.0
        return hypervolume(self.apply(arr), np.ones(len(self.goals)))


# -- trials -------------------------------------------------------------------------------------
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
    out, seen = [], []
    current = 0.0
    for t in trials:
        if t.trial_id in values_by_id:
            seen.append(values_by_id[t.trial_id])
            current = norm.hypervolume(seen)
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
