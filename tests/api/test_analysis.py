"""The service's vectorized results equal the engine's reference functions (``dse.pareto``) on
random studies: ties, duplicates, NaN, missing metrics, failed trials, constraints, 1-3 objectives."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import analysis
from api.snapshot import StudySnapshot
from api.store import StudyInfo, TrialInfo
from dse import pareto as oracle
from dse.spec import ConstraintSpec, ObjectiveSpec

METRICS = ("a", "b", "c", "cost")
# Few distinct values so that ties and duplicate points are common; NaN and inf included.
VALUES = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 2.0, math.nan, math.inf])


@st.composite
def trials(draw: st.DrawFn) -> list[TrialInfo]:
    n = draw(st.integers(0, 40))
    out = []
    for i in range(n):
        state = draw(st.sampled_from(["COMPLETED"] * 5 + ["FAILED", "RUNNING", "PRUNED"]))
        metrics = {m: draw(VALUES) for m in METRICS if draw(st.booleans()) or m == "a"}
        out.append(
            TrialInfo(
                number=i,
                trial_id=f"t{i}",
                state=state,
                params={},
                metrics=metrics,
                metrics_std={},
                seeds=(),
                repeat_metrics=(),
                created_at=None,
                started_at=None,
                finished_at=None,
                node=None,
                error=None,
                seq=i + 1,
            )
        )
    return out


OBJECTIVES = st.lists(
    st.builds(
        ObjectiveSpec,
        metric=st.sampled_from(METRICS[:3]),
        goal=st.sampled_from(["minimize", "maximize"]),
        threshold=st.sampled_from([None, None, 1.0]),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda o: o.metric,
)
CONSTRAINTS = st.lists(
    st.builds(
        ConstraintSpec,
        metric=st.sampled_from(["cost", "b"]),
        op=st.sampled_from(["<=", ">="]),
        bound=st.sampled_from([0.5, 1.0]),
    ),
    max_size=2,
)


def _snapshot(items: list[TrialInfo]) -> StudySnapshot:
    study = StudyInfo(
        id="s",
        name="s",
        spec={},
        labels={},
        state="RUNNING",
        cancel_requested=False,
        request_id=None,
        created_at=0.0,
        started_at=None,
        finished_at=None,
        error=None,
        runs=1,
        version=len(items),
    )
    return StudySnapshot(study, items)


@settings(max_examples=60, deadline=None)
@given(items=trials(), objectives=OBJECTIVES, constraints=CONSTRAINTS)
def test_ranks_and_front_equal_the_engine(items, objectives, constraints) -> None:  # noqa: ANN001
    snap = _snapshot(items)
    got = analysis.pareto(snap, objectives, constraints)
    expected = oracle.rank_trials(items, objectives, constraints)
    ranked = dict(zip(got["numbers"], got["ranks"]))
    for t in items:
        if expected[t.trial_id] is not None:
            assert ranked[t.number] == expected[t.trial_id]
        elif t.number in ranked:
            # Shown but not ranked: completed with finite objectives, violating a constraint.
            assert ranked[t.number] == analysis.INFEASIBLE
            assert not all(c.satisfied(t.metrics) for c in constraints)
    front = [int(snap.numbers[p]) for p in got["front"]]
    assert front == [t.number for t in oracle.pareto_front(items, objectives, constraints)]


@settings(max_examples=60, deadline=None)
@given(items=trials(), objectives=OBJECTIVES, constraints=CONSTRAINTS)
def test_best_equals_the_engine(items, objectives, constraints) -> None:  # noqa: ANN001
    snap = _snapshot(items)
    expected = oracle.best_trials(items, objectives, constraints)
    for o in objectives:
        pos = analysis.best(snap, o, constraints)
        want = expected[o.metric]
        assert (None if pos is None else snap.trials[pos].number) == (None if want is None else want.number)


@settings(max_examples=50, deadline=None)
@given(items=trials(), objectives=OBJECTIVES, constraints=CONSTRAINTS)
def test_hypervolume_history_equals_the_engine(items, objectives, constraints) -> None:  # noqa: ANN001
    snap = _snapshot(items)
    got = analysis.hypervolume_history(snap, objectives, constraints)
    expected = oracle.hypervolume_history(items, objectives, constraints)
    for point in got["history"]:
        assert point["hypervolume"] == pytest.approx(expected[point["trials"] - 1], rel=1e-9, abs=1e-12)
    if got["history"]:
        assert got["history"][-1]["trials"] == len(items)


def test_long_histories_are_sampled_at_exact_values(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    items = [
        TrialInfo(
            number=i,
            trial_id=f"t{i}",
            state="COMPLETED",
            params={},
            metrics={"a": float(x), "b": float(y)},
            metrics_std={},
            seeds=(),
            repeat_metrics=(),
            created_at=None,
            started_at=None,
            finished_at=None,
            node=None,
            error=None,
            seq=i,
        )
        for i, (x, y) in enumerate(rng.random((300, 2)))
    ]
    monkeypatch.setattr(analysis, "MAX_HISTORY_POINTS", 25)
    objectives = [ObjectiveSpec("a", "maximize"), ObjectiveSpec("b", "minimize")]
    got = analysis.hypervolume_history(_snapshot(items), objectives, [])["history"]
    expected = oracle.hypervolume_history(items, objectives)
    assert len(got) == 25 and got[-1]["trials"] == 300
    for point in got:
        assert point["hypervolume"] == pytest.approx(expected[point["trials"] - 1], rel=1e-9)
