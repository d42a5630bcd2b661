"""Exact hypervolume (1 to 3 objectives) and the normalization that makes it comparable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dse.pareto.objectives import ObjectivesArg, as_objectives, to_minimization
from dse.pareto.sorting import _Staircase, nondominated_ranks

REFERENCE_MARGIN = 0.1
"""Fraction of the range added beyond the worst value when an objective has no threshold."""

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

    def prefix_hypervolumes(self, values: np.ndarray | Sequence[Sequence[float]],
                            counts: Sequence[int] | None = None) -> list[float]:
        """Normalized hypervolume of the first ``n`` points of ``values`` (n, k) for each ``n``
        in ``counts`` (ascending; default every ``n`` from 1).

        The running non-dominated front is carried forward (a set has the volume of its
        non-dominated subset), so a history of ``n`` points costs ``n`` volumes of a front, not
        ``n`` volumes of ever longer prefixes.
        """
        arr = np.asarray(values, dtype=np.float64).reshape(-1, len(self.goals))
        steps = range(1, len(arr) + 1) if counts is None else counts
        if len(self.goals) <= 2:
            return self._prefix_hypervolumes_2d(arr, steps)
        goals = list(self.goals)
        front, done, out = arr[:0], 0, []
        for upto in steps:
            upto = int(upto)
            if upto < done or upto > len(arr):
                raise ValueError(f"counts must be ascending within 1..{len(arr)}; got {upto} after {done}")
            if upto > done:
                batch = np.vstack([front, arr[done:upto]])
                front = batch[nondominated_ranks(batch, goals) == 0]
                done = upto
            out.append(self.hypervolume(front))
        return out

    def _prefix_hypervolumes_2d(self, arr: np.ndarray, steps: Sequence[int] | range) -> list[float]:
        # One sweep: each point joins a staircase that keeps the dominated area up to the
        # reference (1, 1) of the normalized space, so a history costs O(n log n) in all.
        z = self.apply(arr) if len(arr) else np.zeros((0, len(self.goals)))
        if z.shape[1] == 1:
            z = np.hstack([z, np.zeros((len(z), 1))])  # one objective: a length, as a unit-high box
        stair = _Staircase((1.0, 1.0))
        xs, ys = z[:, 0].tolist(), z[:, 1].tolist()
        done, out = 0, []
        for upto in steps:
            upto = int(upto)
            if upto < done or upto > len(arr):
                raise ValueError(f"counts must be ascending within 1..{len(arr)}; got {upto} after {done}")
            for i in range(done, upto):
                if xs[i] < 1.0 and ys[i] < 1.0:
                    stair.insert(xs[i], ys[i])
            done = upto
            out.append(float(stair.area))
        return out
