"""Pareto ranks and hypervolume against naive oracles; fronts, history and best on trial records."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.pareto import (
    Normalization,
    as_objectives,
    best_trials,
    hypervolume,
    hypervolume_history,
    nondominated_ranks,
    pareto_front,
    rank_trials,
    study_hypervolume,
)
from dse.results import TrialRecord, TrialState
from dse.spec import ConstraintSpec


# -- oracles ------------------------------------------------------------------------------------
def naive_ranks(points: np.ndarray) -> list[int]:
    """O(n²) per front: peel the points no remaining point dominates."""
    n = len(points)
    dom = ((points[:, None, :] <= points[None, :, :]).all(axis=2)
           & (points[:, None, :] < points[None, :, :]).any(axis=2))  # dom[i, j]: i dominates j
    ranks = np.full(n, -1)
    remaining = np.ones(n, dtype=bool)
    r = 0
    while remaining.any():
        front = remaining & ~dom[remaining].any(axis=0)
        ranks[front] = r
        remaining &= ~front
        r += 1
    return ranks.tolist()


def inclusion_exclusion_hv(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact union volume of the boxes [p, ref] by inclusion–exclusion (2^n terms)."""
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(range(len(points)), size):
            corner = points[list(subset)].max(axis=0)
            total += (-1) ** (size + 1) * float(np.prod(np.clip(ref - corner, 0.0, None)))
    return total


def cell_hv(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact union volume by cutting space at every coordinate and summing dominated cells."""
    pts = points[(points < ref).all(axis=1)]
    if len(pts) == 0:
        return 0.0
    cuts = [np.unique(np.append(pts[:, j], ref[j])) for j in range(points.shape[1])]
    lowers = np.stack(np.meshgrid(*(c[:-1] for c in cuts), indexing="ij"), axis=-1).reshape(-1, len(cuts))
    widths = np.stack(np.meshgrid(*(np.diff(c) for c in cuts), indexing="ij"), axis=-1).reshape(-1, len(cuts))
    covered = (pts[None, :, :] <= lowers[:, None, :]).all(axis=2).any(axis=1)
    return float(widths[covered].prod(axis=1).sum())


# -- non-dominated sorting ------------------------------------------------------------------------
def point_sets(k: int, max_size: int, integers: bool) -> st.SearchStrategy[np.ndarray]:
    # Small integer coordinates force ties and duplicates; floats exercise the general case.
    coord = st.integers(0, 4).map(float) if integers else st.floats(-1e3, 1e3, allow_nan=False)
    return st.lists(st.tuples(*[coord] * k), min_size=0, max_size=max_size).map(
        lambda rows: np.array(rows, dtype=np.float64).reshape(-1, k))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("integers", [True, False])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_ranks_match_the_naive_oracle(k: int, integers: bool, data: st.DataObject) -> None:
    pts = data.draw(point_sets(k, 40, integers))
    assert nondominated_ranks(pts).tolist() == naive_ranks(pts)


def test_ranks_on_larger_random_sets_match_the_oracle() -> None:
    rng = np.random.default_rng(1)
    for k in (2, 3):
        pts = rng.integers(0, 30, size=(300, k)).astype(float)
        assert nondominated_ranks(pts).tolist() == naive_ranks(pts)


def test_goals_flip_maximized_objectives() -> None:
    pts = np.array([[0.9, 10.0], [0.8, 5.0], [0.7, 20.0], [0.9, 10.0]])
    assert nondominated_ranks(pts, ["maximize", "minimize"]).tolist() == [0, 0, 1, 0]
    assert nondominated_ranks(pts * [-1, 1]).tolist() == [0, 0, 1, 0]


def test_ranks_reject_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        nondominated_ranks([[1.0, math.nan]])


# -- hypervolume ----------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_hypervolume_matches_inclusion_exclusion(k: int, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 8))
    pts = np.array(data.draw(st.lists(st.tuples(*[st.floats(0, 1.2, allow_nan=False)] * k), min_size=n,
                                      max_size=n)), dtype=np.float64)
    ref = np.ones(k)
    assert hypervolume(pts, ref) == pytest.approx(inclusion_exclusion_hv(pts, ref), abs=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_hypervolume_matches_cell_decomposition_on_bigger_sets(k: int) -> None:
    rng = np.random.default_rng(7)
    for n in (10, 25, 40):
        pts = rng.random((n, k))
        pts = pts / np.linalg.norm(pts, axis=1, keepdims=True) * rng.uniform(0.6, 1.0, size=(n, 1))
        ref = np.full(k, 1.05)
        assert hypervolume(pts, ref) == pytest.approx(cell_hv(pts, ref), rel=1e-12)
    ties = rng.integers(0, 5, size=(30, k)) / 5.0
    assert hypervolume(ties, np.ones(k)) == pytest.approx(cell_hv(ties, np.ones(k)), rel=1e-12)


def test_hypervolume_invariants() -> None:
    pts = np.array([[0.2, 0.6, 0.3], [0.5, 0.1, 0.4], [0.7, 0.7, 0.05]])
    ref = np.ones(3)
    base = hypervolume(pts, ref)
    assert hypervolume(np.vstack([pts, [0.8, 0.8, 0.5]]), ref) == pytest.approx(base)  # dominated point
    assert hypervolume(np.vstack([pts, [1.0, 0.0, 0.0]]), ref) == pytest.approx(base)  # on the reference
    assert hypervolume(pts[:1], ref) == pytest.approx(0.8 * 0.4 * 0.7)
    assert hypervolume(np.zeros((0, 3)), ref) == 0.0
    with pytest.raises(ValueError, match="1, 2 or 3"):
        hypervolume(np.zeros((1, 4)), np.ones(4))


def test_normalization_follows_its_definition() -> None:
    objs = as_objectives(["accuracy:max:0.5", "train_time_s:min"])
    values = np.array([[0.9, 10.0], [0.7, 5.0], [0.6, 20.0]])
    norm = Normalization.from_values(values, objs)
    assert norm.ideal == pytest.approx((-0.9, 5.0))
    assert norm.reference == pytest.approx((-0.5, 20.0 + 0.1 * 15.0))  # threshold; nadir + 10% of the range
    z = norm.apply(values)
    assert z == pytest.approx(np.array([[0.0, 5 / 16.5], [0.5, 0.0], [0.75, 15 / 16.5]]))
    # A at (0, 5/16.5) covers 1 - 5/16.5; B at (0.5, 0) adds 0.5 * 5/16.5; C is dominated by A.
    assert norm.hypervolume(values) == pytest.approx(1 - 0.5 * 5 / 16.5)
    assert norm.hypervolume([[0.45, 1.0]]) == 0.0  # worse than the accuracy threshold
    one = Normalization.from_values([[0.8, 3.0]], objs)
    assert one.hypervolume([[0.8, 3.0]]) == 1.0  # a lone point is the ideal; zero range -> ref = ideal + 1
    impossible = Normalization.from_values([[0.4, 3.0]], objs)  # every point below the threshold
    assert impossible.hypervolume([[0.4, 3.0]]) == 0.0


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("threshold", [False, True])
def test_prefix_hypervolumes_equal_the_volume_of_every_prefix(k: int, threshold: bool) -> None:
    rng = np.random.default_rng(k)
    values = rng.random((60, k)).round(2)  # rounding makes ties and duplicates
    # With a threshold, points worse than it in accuracy count for nothing.
    objs = as_objectives(["accuracy:max" + (":0.4" if threshold else ""), "train_time_s:min", "n_tiles:min"][:k])
    norm = Normalization.from_values(values, objs)
    expected = [norm.hypervolume(values[:n]) for n in range(1, len(values) + 1)]
    assert norm.prefix_hypervolumes(values) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    counts = [1, 2, 2, 17, 60]
    assert norm.prefix_hypervolumes(values, counts) == pytest.approx(
        [expected[n - 1] for n in counts], rel=1e-12, abs=1e-15)
    assert norm.prefix_hypervolumes(values[:0]) == []
    with pytest.raises(ValueError, match="ascending"):
        norm.prefix_hypervolumes(values, [5, 3])
    with pytest.raises(ValueError, match="ascending"):
        norm.prefix_hypervolumes(values, [61])


# -- on trial records -----------------------------------------------------------------------------
def trial(number: int, acc: float | None, time_s: float, tiles: float = 1.0,
          state: TrialState = TrialState.COMPLETED) -> TrialRecord:
    metrics = {"train_time_s": time_s, "n_tiles": tiles}
    if acc is not None:
        metrics["accuracy"] = acc
    return TrialRecord(trial_id=f"t{number}", number=number, state=state, metrics=metrics)


TRIALS = [
    trial(0, 0.80, 10.0),
    trial(1, 0.90, 20.0),
    trial(2, 0.85, 30.0),             # dominated by t1
    trial(3, 0.99, 5.0, tiles=32.0),  # best but infeasible (n_tiles <= 16)
    trial(4, 0.95, 40.0),
    trial(5, None, 1.0),              # completed without accuracy
    trial(6, 0.99, 1.0, state=TrialState.FAILED),
    trial(7, 0.95, 40.0),             # duplicate of t4
]
OBJS = ["accuracy:max", "train_time_s:min"]
TILES = (ConstraintSpec(metric="n_tiles", op="<=", bound=16.0),)


def test_rank_and_front_use_only_eligible_trials() -> None:
    ranks = rank_trials(TRIALS, OBJS, TILES)
    assert ranks == {"t0": 0, "t1": 0, "t2": 1, "t3": None, "t4": 0, "t5": None, "t6": None, "t7": 0}
    assert [t.trial_id for t in pareto_front(TRIALS, OBJS, TILES)] == ["t4", "t7", "t1", "t0"]
    assert [t.trial_id for t in pareto_front(TRIALS, OBJS)] == ["t3"]  # without the constraint t3 wins both


def test_any_metric_pair_can_be_asked_for() -> None:
    front = pareto_front(TRIALS, ["n_tiles:min", "accuracy:max"])
    assert {t.trial_id for t in front} == {"t4", "t7", "t3"}


def test_hypervolume_history_is_monotone_and_ends_at_the_study_value() -> None:
    history = hypervolume_history(TRIALS, OBJS, TILES)
    assert len(history) == len(TRIALS)
    assert all(b >= a for a, b in itertools.pairwise(history))
    assert history[-1] == pytest.approx(study_hypervolume(TRIALS, OBJS, TILES))
    assert history[2] == history[1]  # a dominated trial adds nothing
    assert history[3] == history[2] and history[5] == history[4] and history[6] == history[5]  # ineligible
    assert 0.0 < history[-1] <= 1.0


def test_shared_normalization_makes_studies_comparable() -> None:
    norm = Normalization.from_values([[0.80, 10.0], [0.95, 40.0], [0.5, 50.0]], as_objectives(OBJS))
    partial = study_hypervolume(TRIALS[:2], OBJS, TILES, normalization=norm)
    full = study_hypervolume(TRIALS, OBJS, TILES, normalization=norm)
    assert 0.0 < partial < full < 1.0


def test_best_trial_per_objective_under_constraints() -> None:
    best = best_trials(TRIALS, OBJS, TILES)
    assert best["accuracy"].trial_id == "t4"      # t3 infeasible, t6 failed, t7 ties later
    # Each objective on its own: t5 lacks accuracy but is the fastest completed feasible trial.
    assert best["train_time_s"].trial_id == "t5"
    assert best_trials(TRIALS[:5], OBJS, TILES)["train_time_s"].trial_id == "t0"  # t3 (5 s) is infeasible


def test_best_is_none_without_a_feasible_trial() -> None:
    strict = (ConstraintSpec(metric="n_tiles", op="<=", bound=0.0),)
    assert best_trials(TRIALS, OBJS, strict) == {"accuracy": None, "train_time_s": None}
    assert pareto_front(TRIALS, OBJS, strict) == []
    assert hypervolume_history(TRIALS, OBJS, strict) == [0.0] * len(TRIALS)
