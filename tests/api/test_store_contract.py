"""The store contract: every backend (SQLite WAL, PostgreSQL) passes the same tests.

The ``store`` fixture is parametrized over both backends (PostgreSQL from
``DSE_TEST_POSTGRES_URL``, a schema per test).
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from api.store import IdempotencyError, SqlStore
from dse.errors import ConflictError, NotFoundError
from dse.results import Measurement, TrialRecord
from tests.api.factories import spec_dict, synthetic_records

ROOT = Path(__file__).resolve().parents[2]


class TestStudies:
    def test_create_get_round_trip(self, store: SqlStore) -> None:
        spec = spec_dict()
        study, created = store.create_study(spec, name="a", labels={"team": "api"})
        assert created
        got = store.get_study(study.id)
        assert got.spec == spec and got.name == "a" and got.labels == {"team": "api"}
        assert got.state == "QUEUED" and got.display_state == "QUEUED" and got.runs == 0
        assert got.started_at is None and got.finished_at is None

    def test_unknown_study_is_not_found(self, store: SqlStore) -> None:
        with pytest.raises(NotFoundError, match="nope"):
            store.get_study("nope")
        with pytest.raises(NotFoundError):
            store.list_trials("nope")
        with pytest.raises(NotFoundError):
            store.study_version("nope")

    def test_list_newest_first_with_pagination_and_filters(self, store: SqlStore) -> None:
        ids = []
        for i in range(5):
            study, _ = store.create_study(
                spec_dict(name=f"s{i}"),
                name=f"s{i}",
                labels={"team": "a" if i % 2 else "b", "n": str(i)},
                now=1000.0 + i,
            )
            ids.append(study.id)
        page, total = store.list_studies(limit=2, offset=1)
        assert total == 5 and [s.id for s in page] == [ids[3], ids[2]]
        only_a, total_a = store.list_studies(labels={"team": "a"})
        assert total_a == 2 and {s.id for s in only_a} == {ids[1], ids[3]}
        any_n, total_n = store.list_studies(labels={"n": None})
        assert total_n == 5
        both, _ = store.list_studies(labels={"team": "a", "n": "3"})
        assert [s.id for s in both] == [ids[3]]
        store.request_cancel(ids[0])
        cancelled, total_c = store.list_studies(states=["CANCELLED"])
        assert total_c == 1 and cancelled[0].id == ids[0]
        queued, total_q = store.list_studies(states=["QUEUED", "CANCELLED"])
        assert total_q == 5

    def test_running_and_cancelling_are_told_apart(self, store: SqlStore) -> None:
        a, _ = store.create_study(spec_dict(), name="a")
        b, _ = store.create_study(spec_dict(), name="b")
        assert store.acquire_lease(a.id, "o1", 60) and store.acquire_lease(b.id, "o2", 60)
        store.request_cancel(b.id)
        assert [s.id for s in store.list_studies(states=["RUNNING"])[0]] == [a.id]
        cancelling = store.list_studies(states=["CANCELLING"])[0]
        assert [s.id for s in cancelling] == [b.id] and cancelling[0].display_state == "CANCELLING"

    def test_request_id_makes_creation_idempotent(self, store: SqlStore) -> None:
        first, created = store.create_study(spec_dict(), name="x", request_id="req-1")
        again, created_again = store.create_study(spec_dict(), name="x", request_id="req-1")
        assert created and not created_again and again.id == first.id
        with pytest.raises(IdempotencyError, match="req-1"):
            store.create_study(spec_dict(name="other"), name="other", request_id="req-1")
        assert store.list_studies()[1] == 1

    def test_concurrent_submissions_with_one_request_id_make_one_study(self, store: SqlStore) -> None:
        results: list[str] = []
        errors: list[BaseException] = []

        def submit() -> None:
            try:
                results.append(store.create_study(spec_dict(), name="race", request_id="same")[0].id)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=submit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(set(results)) == 1 and store.list_studies()[1] == 1

    def test_cancel_queued_running_and_finished(self, store: SqlStore) -> None:
        queued, _ = store.create_study(spec_dict(), name="q")
        assert store.request_cancel(queued.id).state == "CANCELLED"
        running, _ = store.create_study(spec_dict(), name="r")
        assert store.acquire_lease(running.id, "owner", 60)
        after = store.request_cancel(running.id)
        assert after.state == "RUNNING" and after.cancel_requested and after.display_state == "CANCELLING"
        assert store.renew_lease(running.id, "owner", 60) is True  # the runner learns of it
        assert store.finish(running.id, "owner", "CANCELLED")
        with pytest.raises(ConflictError, match="already CANCELLED"):
            store.request_cancel(running.id)
        with pytest.raises(NotFoundError):
            store.request_cancel("missing")

    def test_delete_removes_trials_but_not_while_running(self, store: SqlStore) -> None:
        study, _ = store.create_study(spec_dict(), name="d", labels={"k": "v"})
        assert store.acquire_lease(study.id, "o", 60)
        for rec in synthetic_records(3):
            store.write_trial(study.id, rec, owner="o")
        with pytest.raises(ConflictError, match="cancel it first"):
            store.delete_study(study.id)
        store.finish(study.id, "o", "COMPLETED")
        store.delete_study(study.id)
        with pytest.raises(NotFoundError):
            store.get_study(study.id)
        with store.engine.connect() as conn:
            for table in ("trials", "measurements", "study_labels"):
                assert conn.execute(text(f"select count(*) from {table}")).scalar() == 0
        with pytest.raises(NotFoundError):
            store.delete_study(study.id)


class TestLeases:
    def test_one_owner_at_a_time_and_takeover_after_lapse(self, store: SqlStore) -> None:
        study, _ = store.create_study(spec_dict(), name="l")
        assert store.acquire_lease(study.id, "a", 10, now=100.0)
        assert not store.acquire_lease(study.id, "b", 10, now=105.0)
        assert store.renew_lease(study.id, "b", 10, now=105.0) is None
        assert store.renew_lease(study.id, "a", 10, now=105.0) is False  # renewed until 115
        assert not store.acquire_lease(study.id, "b", 10, now=114.0)
        assert store.acquire_lease(study.id, "b", 10, now=116.0)  # a's lease lapsed
        s = store.get_study(study.id)
        assert s.lease_owner == "b" and s.runs == 2 and s.state == "RUNNING" and s.started_at == 100.0
        assert store.renew_lease(study.id, "a", 10) is None
        assert not store.finish(study.id, "a", "COMPLETED")
        assert store.finish(study.id, "b", "COMPLETED")
        assert not store.acquire_lease(study.id, "c", 10)  # finished studies are never taken

    def test_concurrent_acquires_have_exactly_one_winner(self, store: SqlStore) -> None:
        study, _ = store.create_study(spec_dict(), name="race")
        wins: list[str] = []

        def grab(owner: str) -> None:
            if store.acquire_lease(study.id, owner, 60):
                wins.append(owner)

        threads = [threading.Thread(target=grab, args=(f"o{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1 and store.get_study(study.id).lease_owner == wins[0]

    def test_release_requeues_and_queue_is_oldest_first(self, store: SqlStore) -> None:
        old, _ = store.create_study(spec_dict(), name="old", now=1.0)
        new, _ = store.create_study(spec_dict(), name="new", now=2.0)
        assert store.queued_studies(10) == [old.id, new.id]
        assert store.acquire_lease(old.id, "o", 60)
        assert store.queued_studies(10) == [new.id]
        assert [s.id for s in store.running_studies()] == [old.id]
        assert store.release_lease(old.id, "o")
        assert store.get_study(old.id).state == "QUEUED" and store.queued_studies(1) == [old.id]

    def test_named_lock(self, store: SqlStore) -> None:
        assert store.acquire_lock("scheduler", "s1", 10, now=0.0)
        assert not store.acquire_lock("scheduler", "s2", 10, now=5.0)
        assert store.acquire_lock("scheduler", "s1", 10, now=5.0)  # renewal
        assert store.acquire_lock("scheduler", "s2", 10, now=16.0)  # lapsed
        store.release_lock("scheduler", "s2")
        assert store.acquire_lock("scheduler", "s3", 10, now=16.0)


class TestTrials:
    def _running(self, store: SqlStore, owner: str = "o") -> str:
        study, _ = store.create_study(spec_dict(), name="t")
        assert store.acquire_lease(study.id, owner, 600)
        return study.id

    def test_record_round_trip_with_repeats_measurements_and_non_finite_metrics(
        self, store: SqlStore
    ) -> None:
        sid = self._running(store)
        rec = TrialRecord.pending("t-1", 0, {"lr": 0.01, "hidden": [32, 16], "act": "relu"}, seeds=(5, 6))
        rec = rec.start(node="node-a")
        rec = rec.add_measurement(
            Measurement.from_report({"epoch": 1, "accuracy": 0.5, "loss": float("inf")})
        )
        rec = rec.add_measurement(Measurement.from_report({"epoch": 1, "accuracy": 0.6}, repeat=1))
        rec = rec.complete([{"accuracy": 0.9, "loss": float("nan")}, {"accuracy": 0.8, "loss": 1.0}])
        store.write_trial(sid, rec, owner="o")
        (back,) = store.records(sid)
        assert back.trial_id == rec.trial_id and back.number == 0 and back.state == rec.state
        assert back.params == rec.params and back.seeds == (5, 6) and back.node == "node-a"
        assert back.metrics["accuracy"] == pytest.approx(0.85) and math.isnan(back.metrics["loss"])
        assert back.metrics_std["accuracy"] == pytest.approx(rec.metrics_std["accuracy"])
        assert [m.repeat for m in back.measurements] == [0, 1]
        assert math.isinf(back.measurements[0].metrics["loss"])
        for name in ("created_at", "started_at", "finished_at"):
            assert abs((getattr(back, name) - getattr(rec, name)).total_seconds()) < 1e-5
        info = store.get_trial(sid, 0)
        assert info.measurements is not None and len(info.measurements) == 2

    def test_details_round_trip_and_stay_out_of_trial_lists(self, store: SqlStore) -> None:
        sid = self._running(store)
        breakdown = {"cost": {"energy_per_inference_nj": 1.5, "layers": [{"name": "fc1", "energy_pj": {"adc": 2.0}}],
                              "notes": []}, "training_cost": None}
        rec = TrialRecord.pending("t-d", 0, {"lr": 0.1}).start()
        store.write_trial(sid, rec.complete([{"accuracy": 0.9}], details=[breakdown]), owner="o")
        assert store.get_trial(sid, 0).details == (breakdown,)
        (back,) = store.records(sid)
        assert back.details == (breakdown,)
        (listed,) = store.list_trials(sid)
        assert listed.details is None  # lists do not load them
        plain = TrialRecord.pending("t-p", 1, {"lr": 0.2}).start().complete([{"accuracy": 0.5}])
        store.write_trial(sid, plain, owner="o")
        assert store.get_trial(sid, 1).details == ()
        other, _ = store.create_study(spec_dict(), name="import")
        store.import_trials(other.id, [back])
        assert store.get_trial(other.id, 0).details == (breakdown,)
        store.delete_study(other.id)

    def test_states_only_move_forward(self, store: SqlStore) -> None:
        sid = self._running(store)
        pending = TrialRecord.pending("t-1", 0, {"lr": 0.1})
        store.write_trial(sid, pending)
        running = pending.start()
        store.write_trial(sid, running)
        store.write_trial(sid, running)  # same state again: allowed (new measurements)
        done = running.complete([{"accuracy": 0.7}])
        store.write_trial(sid, done)
        store.write_trial(sid, done)  # rewriting the same finished record is idempotent
        with pytest.raises(ConflictError, match="COMPLETED to RUNNING"):
            store.write_trial(sid, running)
        with pytest.raises(ConflictError):
            store.write_trial(sid, running.fail("late failure"))
        assert store.get_trial(sid, 0).state == "COMPLETED"

    def test_an_interrupted_trial_is_re_run_under_its_number_and_counts_its_attempts(
        self, store: SqlStore
    ) -> None:
        sid = self._running(store)
        first = TrialRecord.pending("t-1", 0, {"lr": 0.1}).start()
        store.write_trial(sid, first.cancel("study interrupted; resume to re-run"))
        rerun = TrialRecord.pending("t-1", 0, {"lr": 0.1}, attempts=first.attempts + 1).start()
        store.write_trial(sid, rerun)  # CANCELLED -> RUNNING: the resume re-opens it
        store.write_trial(sid, rerun.restart().complete([{"accuracy": 0.7}]))
        (back,) = store.records(sid)
        assert back.state.value == "COMPLETED" and back.attempts == 3
        assert store.get_trial(sid, 0).attempts == 3
        with pytest.raises(ConflictError, match="COMPLETED to RUNNING"):
            store.write_trial(sid, rerun)

    def test_trial_id_and_number_stay_paired(self, store: SqlStore) -> None:
        sid = self._running(store)
        store.write_trial(sid, TrialRecord.pending("t-1", 0, {}))
        with pytest.raises(ConflictError, match="another number"):
            store.write_trial(sid, TrialRecord.pending("t-1", 1, {}))
        with pytest.raises(ConflictError, match="not 't-2'"):
            store.write_trial(sid, TrialRecord.pending("t-2", 0, {}))

    def test_writes_need_the_lease_when_an_owner_is_given(self, store: SqlStore) -> None:
        sid = self._running(store, owner="first")
        rec = synthetic_records(2)
        store.write_trial(sid, rec[0], owner="first")
        store.release_lease(sid, "first")
        assert store.acquire_lease(sid, "second", 60)
        with pytest.raises(ConflictError, match="no longer holds the lease"):
            store.write_trial(sid, rec[1], owner="first")
        store.write_trial(sid, rec[1], owner="second")
        assert [t.number for t in store.list_trials(sid)] == [0, 1]
        with pytest.raises(NotFoundError):
            store.write_trial("missing", rec[0], owner="second")

    def test_versions_and_incremental_reads(self, store: SqlStore) -> None:
        sid = self._running(store)
        v0, _ = store.study_version(sid)
        recs = synthetic_records(4)
        for rec in recs[:2]:
            store.write_trial(sid, rec)
        v2, _ = store.study_version(sid)
        assert v2 == v0 + 2
        for rec in recs[2:]:
            store.write_trial(sid, rec)
        changed = store.list_trials(sid, since=v2)
        assert [t.number for t in changed] == [2, 3]
        assert all(t.seq > v2 for t in changed)
        assert [t.number for t in store.list_trials(sid, states=["COMPLETED"])] == [0, 1, 2, 3]

    def test_counts_and_unfinished_trials(self, store: SqlStore) -> None:
        sid = self._running(store)
        for rec in synthetic_records(3):
            store.write_trial(sid, rec)
        store.write_trial(sid, synthetic_records(1, start=3, state="FAILED")[0])
        store.write_trial(sid, TrialRecord.pending("t-run", 4, {}).start())
        store.write_trial(sid, TrialRecord.pending("t-pend", 5, {}))
        counts = store.trial_counts(sid)
        assert counts == {
            "PENDING": 1,
            "RUNNING": 1,
            "COMPLETED": 3,
            "FAILED": 1,
            "PRUNED": 0,
            "CANCELLED": 0,
        }
        other, _ = store.create_study(spec_dict(), name="empty")
        many = store.trial_counts_many([sid, other.id])
        assert many[sid] == counts and sum(many[other.id].values()) == 0
        assert store.next_trial_number(sid) == 6 and store.next_trial_number(other.id) == 0
        assert store.abandon_unfinished_trials(sid, reason="runner lost") == 2
        after = store.trial_counts(sid)
        assert after["CANCELLED"] == 2 and after["RUNNING"] == after["PENDING"] == 0
        assert store.get_trial(sid, 4).error == "runner lost"
        assert store.abandon_unfinished_trials(sid, reason="again") == 0


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'w.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    store.close()


def test_a_store_from_before_the_attempts_column_gains_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = SqlStore(url)
    study, _ = store.create_study(spec_dict(), name="old")
    store.write_trial(study.id, TrialRecord.pending("t-1", 0, {"lr": 0.1}).start().complete([{"accuracy": 0.5}]))
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE trials DROP COLUMN attempts"))
    store.close()
    reopened = SqlStore(url)
    (back,) = reopened.records(study.id)
    assert back.attempts == 0 and back.metrics["accuracy"] == 0.5  # the old row reads as never counted
    reopened.close()


_WRITER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from api.store import SqlStore
    from tests.api.factories import synthetic_records
    store = SqlStore({url!r})
    for rec in synthetic_records(5):
        store.write_trial({sid!r}, rec, owner="writer")
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no flush, no atexit
""")


def test_written_trials_survive_sigkill_of_the_writer(store: SqlStore) -> None:
    study, _ = store.create_study(spec_dict(), name="durable")
    assert store.acquire_lease(study.id, "writer", 600)
    code = _WRITER.format(root=str(ROOT), url=store.url, sid=study.id)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    fresh = SqlStore(store.url, create=False)
    try:
        assert [t.number for t in fresh.list_trials(study.id)] == [0, 1, 2, 3, 4]
        assert all(t.state == "COMPLETED" for t in fresh.list_trials(study.id))
    finally:
        fresh.close()
