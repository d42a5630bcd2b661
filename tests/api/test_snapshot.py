"""Snapshots refreshed in place equal snapshots built anew; reads shared by waiting requests are
never older than the request; the study list counts follow the writes."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import time

import numpy as np
import pytest

from api.coalesce import in_thread_fresh, in_thread_once
from api.snapshot import ResultsCache, StudySnapshot
from api.store import SqlStore, StudyInfo, TrialInfo
from tests.api.factories import spec_dict, synthetic_records


def _trial(number: int, seq: int, rng: random.Random) -> TrialInfo:
    state = rng.choice(["COMPLETED"] * 4 + ["RUNNING", "FAILED"])
    metrics = {} if state == "RUNNING" else {"a": rng.random(), "b": rng.choice([0.5, 1.0, 2.0])}
    if rng.random() < 0.1:
        metrics["rare"] = rng.random()
    return TrialInfo(
        number=number, trial_id=f"t{number}", state=state, params={}, metrics=metrics, metrics_std={},
        seeds=(), repeat_metrics=(), created_at=None, started_at=1.0, finished_at=1.0 + rng.random(),
        node=None, error=None, seq=seq,
    )


def _study(version: int) -> StudyInfo:
    return StudyInfo(
        id="s", name="s", spec={}, labels={}, state="RUNNING", cancel_requested=False, request_id=None,
        created_at=0.0, started_at=None, finished_at=None, error=None, runs=1, version=version,
    )


@pytest.mark.parametrize("seed", range(4))
def test_a_refreshed_snapshot_equals_one_built_anew(seed: int) -> None:
    rng = random.Random(seed)
    latest = {n: _trial(n, 1, rng) for n in range(0, 60, 2)}
    snap = StudySnapshot(_study(1), list(latest.values()))
    for version in range(2, 30):
        snap.column("a"), snap.column("rare"), snap.column("duration_s")  # columns carried over
        snap.encoded(int(snap.numbers[0]))
        changed = []
        for _ in range(rng.randint(0, 4)):
            if rng.random() < 0.5:
                number = rng.choice(sorted(latest))  # a stored trial written again
            elif rng.random() < 0.85:
                number = max(latest) + rng.randint(1, 3)  # a new trial, after the others
            else:
                number = rng.choice(sorted(set(range(max(latest))) - set(latest)))  # among them
            latest[number] = _trial(number, version, rng)
            changed.append(latest[number])
        changed = list({t.number: t for t in changed}.values())
        snap = StudySnapshot.refreshed(snap, _study(version), changed)
        fresh = StudySnapshot(_study(version), list(latest.values()))
        assert [t.number for t in snap.trials] == [t.number for t in fresh.trials]
        assert all(a is b for a, b in zip(snap.trials, sorted(latest.values(), key=lambda t: t.number)))
        assert snap.numbers.tolist() == fresh.numbers.tolist()
        assert snap.states.tolist() == fresh.states.tolist()
        assert snap.metric_names == fresh.metric_names
        assert snap.counts() == fresh.counts()
        for name in ("a", "rare", "duration_s", "b"):
            np.testing.assert_array_equal(snap.column(name), fresh.column(name))
        for number in snap.numbers.tolist():
            assert snap.encoded(number) == fresh.encoded(number)
        assert snap.order("a", True, ()).tolist() == fresh.order("a", True, ()).tolist()


def test_encodings_carry_over_only_for_trials_not_written_again() -> None:
    rng = random.Random(0)
    trials = [_trial(n, 1, rng) for n in range(5)]
    snap = StudySnapshot(_study(1), trials)
    before = {n: snap.encoded(n) for n in range(5)}
    values = snap.values_json(("a",), [0, 1])
    rewritten = dataclasses.replace(trials[1], state="COMPLETED", metrics={"a": 42.0}, seq=2)
    snap2 = StudySnapshot.refreshed(snap, _study(2), [rewritten])
    assert snap2.encoded(0) is before[0]  # the same bytes: not encoded again
    assert b"42.0" in snap2.encoded(1) and snap2.encoded(1) != before[1]
    assert snap2.values_json(("a",), [0, 1]) != values and b"42.0" in snap2.values_json(("a",), [0, 1])


def test_a_shared_read_never_predates_the_request() -> None:
    """A request that arrives while a read is under way waits for the next read, which starts
    after it; requests arriving together share that one read."""
    started: list[float] = []
    gate = threading.Event()

    def read() -> float:
        started.append(time.monotonic())
        gate.wait(5)
        return started[-1]

    async def main() -> None:
        first = asyncio.ensure_future(in_thread_fresh("k", read))
        while not started:
            await asyncio.sleep(0.001)
        arrived = time.monotonic()
        later = [asyncio.ensure_future(in_thread_fresh("k", read)) for _ in range(5)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, *later)
        assert results[0] < arrived
        assert all(r >= arrived for r in results[1:]) and len(set(results[1:])) == 1
        assert len(started) == 2  # six requests, two reads

    asyncio.run(main())


def test_one_computation_for_requests_waiting_together() -> None:
    calls = []

    def work() -> int:
        calls.append(1)
        time.sleep(0.05)
        return 7

    async def main() -> list[int]:
        return await asyncio.gather(*(in_thread_once("w", work) for _ in range(10)))

    assert asyncio.run(main()) == [7] * 10 and len(calls) == 1


def test_study_counts_follow_the_writes(sqlite_store: SqlStore) -> None:
    study, _ = sqlite_store.create_study(spec_dict(), name="counts")
    cache = ResultsCache(sqlite_store)
    assert sqlite_store.acquire_lease(study.id, "runner", 60)
    for n in range(3):
        sqlite_store.write_trial(study.id, synthetic_records(1, start=n)[0], owner="runner")
        info = sqlite_store.get_study(study.id)
        assert cache.counts_many([info])[study.id]["COMPLETED"] == n + 1
        assert cache.counts_many([info])[study.id] == sqlite_store.trial_counts(study.id)
    cache.snapshot(study.id)  # a current snapshot answers too
    running = synthetic_records(1, start=3, state="RUNNING")[0]
    sqlite_store.write_trial(study.id, running, owner="runner")
    info = sqlite_store.get_study(study.id)
    assert cache.counts_many([info])[study.id] == {**sqlite_store.trial_counts(study.id)}
    assert cache.counts_many([info])[study.id]["RUNNING"] == 1
