"""``SqlStore``: the durable study store on SQLite (WAL, the embedded default) or PostgreSQL.

Every write is one short transaction, so a trial written by a runner survives a crash of any
process the moment ``write_trial`` returns. Each write to a study or its trials bumps the study's
``version``; trial rows keep the version of their last write in ``seq``, which is how the service
finds what changed since a given moment (server-sent events, cache refresh) with one indexed query.

Runner leases (``acquire_lease`` / ``renew_lease`` / ``finish``) make sure one runner at a time
drives a study, across processes and machines: a lease lapses unless renewed, and a study whose
runner died is taken over by the next scheduler pass, which resumes it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from api.store.models import (
    TERMINAL_STUDY_STATES,
    Base,
    LabelRow,
    LockRow,
    MeasurementRow,
    StudyRow,
    TrialRow,
)
from api.store.convert import measurement_rows, metrics_from_json, to_record, trial_values
from api.store.types import TRIAL_STATES, StudyInfo, TrialInfo
from dse.errors import ConflictError, NotFoundError
from dse.results import TrialRecord, TrialState, check_transition


class IdempotencyError(ConflictError):
    """A request id was reused with a different spec."""


def spec_digest(spec: Mapping[str, Any]) -> str:
    """SHA-256 of a spec's canonical JSON: equal for specs that are equal as data."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def new_study_id() -> str:
    """A fresh, URL-safe study identifier (16 hex characters, 64 random bits)."""
    return secrets.token_hex(8)


class SqlStore:
    """Studies and trials in a SQL database given by a SQLAlchemy URL."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = _make_engine(url)
        # Write transactions go through this view of the engine: on SQLite they start with
        # BEGIN IMMEDIATE (see _make_engine), reads with a plain BEGIN.
        self._writer = self.engine.execution_options(dse_write=True)
        self._local = threading.local()
        self._raw: list[Any] = []
        self._guard = threading.Lock()
        if create:
            Base.metadata.create_all(self.engine)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Release the connection pool (and the per-thread version-check connections)."""
        with self._guard:
            raw, self._raw = self._raw, []
        for conn in raw:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a connection of another thread may be busy or gone
                pass
        self._local = threading.local()
        self.engine.dispose()

    def ping(self) -> None:
        """Run a trivial query; raises when the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(select(1)).scalar_one()

    # -- studies ----------------------------------------------------------------------------
    def create_study(
        self,
        spec: Mapping[str, Any],
        *,
        name: str,
        labels: Mapping[str, str] | None = None,
        request_id: str | None = None,
        now: float | None = None,
    ) -> tuple[StudyInfo, bool]:
        """Add a QUEUED study; returns it and whether it was created.

        With a ``request_id`` already used for the same spec, the earlier study is returned
        (``created`` false): retries are idempotent. The same id with a different spec raises
        :class:`IdempotencyError`.
        """
        digest = spec_digest(spec)
        if request_id is not None:
            existing = self._by_request_id(request_id, digest)
            if existing is not None:
                return existing, False
        study_id = new_study_id()
        now = time.time() if now is None else now
        try:
            with self._writer.begin() as conn:
                conn.execute(insert(StudyRow).values(
                    id=study_id, name=name, spec=dict(spec), spec_digest=digest, request_id=request_id,
                    state="QUEUED", created_at=now, cancel_requested=False, runs=0, version=0,
                ))
                if labels:
                    conn.execute(insert(LabelRow), [
                        {"study_id": study_id, "key": str(k), "value": str(v)} for k, v in labels.items()
                    ])
        except IntegrityError:
            if request_id is None:
                raise
            # A concurrent submission with the same request id won the race.
            existing = self._by_request_id(request_id, digest)
            if existing is None:
                raise
            return existing, False
        return self.get_study(study_id), True

    def _by_request_id(self, request_id: str, digest: str) -> StudyInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(StudyRow).where(StudyRow.request_id == request_id)).first()
            if row is None:
                return None
            if row.spec_digest != digest:
                raise IdempotencyError(
                    f"request id {request_id!r} was already used for study {row.id} with a different "
                    "spec; accepted: the same spec for a retry, or a new request id"
                )
            return _study(row, self._labels(conn, [row.id])[row.id])

    def get_study(self, study_id: str) -> StudyInfo:
        """The study, or :class:`NotFoundError`."""
        with self.engine.connect() as conn:
            row = conn.execute(select(StudyRow).where(StudyRow.id == study_id)).first()
            if row is None:
                raise NotFoundError(f"study {study_id!r} does not exist")
            return _study(row, self._labels(conn, [study_id])[study_id])

    def study_version(self, study_id: str) -> tuple[int, str]:
        """``(version, state)`` of a study: the cheap check before serving cached results.

        Asked before every result request, so it skips the pool and SQLAlchemy's statement
        machinery: one autocommit DBAPI connection per thread, one indexed primary-key SELECT
        (each one sees the latest committed data: no transaction stays open between calls).
        """
        conn = getattr(self._local, "conn", None)
        if conn is None:
            fairy = self.engine.raw_connection()
            fairy.detach()  # ours for the thread's life, never handed back to the pool
            conn = fairy.dbapi_connection
            if self.dialect != "sqlite":
                conn.autocommit = True
            self._local.conn = conn
            with self._guard:
                self._raw.append(conn)
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        statement = f"SELECT version, state FROM studies WHERE id = {mark}"
        try:
            cur = conn.cursor()
            try:
                cur.execute(statement, (study_id,))
                row = cur.fetchone()
            finally:
                cur.close()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            # A broken connection (database restarted, network gone): drop it so the next call
            # reconnects, and raise what every other store call raises for database errors.
            self._local.conn = None
            raise OperationalError(statement, (study_id,), exc) from exc
        if row is None:
            raise NotFoundError(f"study {study_id!r} does not exist")
        return int(row[0]), str(row[1])

    def list_studies(
        self,
        *,
        states: Sequence[str] = (),
        labels: Mapping[str, str | None] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[StudyInfo], int]:
        """Studies newest first, filtered by displayed state (``CANCELLING`` is a RUNNING study
        with a cancel request) and labels (a ``None`` value matches any value of that key);
        returns one page and the total count."""
        where = []
        if states:
            wanted = set(states)
            plain = sorted(wanted - {"RUNNING", "CANCELLING"})
            alternatives = [StudyRow.state.in_(plain)] if plain else []
            if "RUNNING" in wanted:
                alternatives.append((StudyRow.state == "RUNNING") & ~StudyRow.cancel_requested)
            if "CANCELLING" in wanted:
                alternatives.append(StudyRow.state.in_(["RUNNING", "QUEUED"]) & StudyRow.cancel_requested)
            where.append(or_(*alternatives))
        for key, value in (labels or {}).items():
            sub = select(LabelRow.study_id).where(LabelRow.key == key)
            if value is not None:
                sub = sub.where(LabelRow.value == value)
            where.append(StudyRow.id.in_(sub))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(StudyRow).where(*where)).scalar_one()
            rows = conn.execute(
                select(StudyRow).where(*where)
                .order_by(StudyRow.created_at.desc(), StudyRow.id).limit(limit).offset(offset)
            ).all()
            labels_by_id = self._labels(conn, [r.id for r in rows])
        return [_study(r, labels_by_id[r.id]) for r in rows], int(total)

    def request_cancel(self, study_id: str, *, now: float | None = None) -> StudyInfo:
        """Cancel a study: a QUEUED one at once, a RUNNING one through its runner (which stops
        the running trials and keeps the finished ones). Raises :class:`ConflictError` for a
        study that already finished."""
        now = time.time() if now is None else now
        with self._writer.begin() as conn:
            row = conn.execute(
                select(StudyRow.state).where(StudyRow.id == study_id).with_for_update()
            ).first()
            if row is None:
                raise NotFoundError(f"study {study_id!r} does not exist")
            state = row[0]
            if state in TERMINAL_STUDY_STATES:
                raise ConflictError(f"study {study_id} is already {state}; only QUEUED or RUNNING "
                                    "studies can be cancelled")
            values: dict[str, Any] = {"cancel_requested": True, "version": StudyRow.version + 1}
            if state == "QUEUED":
                values.update(state="CANCELLED", finished_at=now)
            conn.execute(update(StudyRow).where(StudyRow.id == study_id).values(**values))
        return self.get_study(study_id)

    def delete_study(self, study_id: str) -> None:
        """Delete a study with its trials; a RUNNING study must be cancelled first."""
        with self._writer.begin() as conn:
            row = conn.execute(
                select(StudyRow.state).where(StudyRow.id == study_id).with_for_update()
            ).first()
            if row is None:
                raise NotFoundError(f"study {study_id!r} does not exist")
            if row[0] == "RUNNING":
                raise ConflictError(f"study {study_id} is RUNNING; cancel it first "
                                    f"(POST /v1/studies/{study_id}:cancel), then delete it")
            # Explicit child deletes: SQLite enforces ON DELETE CASCADE only with foreign keys
            # on, and this keeps both databases on the same path.
            conn.execute(delete(MeasurementRow).where(MeasurementRow.study_id == study_id))
            conn.execute(delete(TrialRow).where(TrialRow.study_id == study_id))
            conn.execute(delete(LabelRow).where(LabelRow.study_id == study_id))
            conn.execute(delete(StudyRow).where(StudyRow.id == study_id))

    # -- runner leases ----------------------------------------------------------------------
    def queued_studies(self, limit: int) -> list[str]:
        """Ids of QUEUED studies, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(StudyRow.id).where(StudyRow.state == "QUEUED")
                .order_by(StudyRow.created_at, StudyRow.id).limit(limit)
            ).all()
        return [r[0] for r in rows]

    def running_studies(self) -> list[StudyInfo]:
        """Every RUNNING study (with a live or a lapsed lease)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(StudyRow).where(StudyRow.state == "RUNNING")).all()
            labels = self._labels(conn, [r.id for r in rows])
        return [_study(r, labels[r.id]) for r in rows]

    def acquire_lease(self, study_id: str, owner: str, lease_s: float, *, now: float | None = None) -> bool:
        """Take a QUEUED study, or a RUNNING one whose lease lapsed, for ``owner``; the study
        becomes RUNNING. Returns false when another owner holds a live lease or the study is
        finished or gone. Atomic: of concurrent callers, one wins."""
        now = time.time() if now is None else now
        with self._writer.begin() as conn:
            result = conn.execute(
                update(StudyRow)
                .where(
                    StudyRow.id == study_id,
                    StudyRow.state.in_(["QUEUED", "RUNNING"]),
                    (StudyRow.lease_owner.is_(None)) | (StudyRow.lease_expires_at < now),
                )
                .values(
                    state="RUNNING", lease_owner=owner, lease_expires_at=now + lease_s,
                    started_at=func.coalesce(StudyRow.started_at, now), runs=StudyRow.runs + 1,
                    version=StudyRow.version + 1,
                )
            )
            return result.rowcount == 1

    def renew_lease(self, study_id: str, owner: str, lease_s: float, *, now: float | None = None) -> bool | None:
        """Extend ``owner``'s lease. Returns whether a cancel was requested, or ``None`` when the
        lease is no longer ``owner``'s (the runner must stop at once)."""
        now = time.time() if now is None else now
        with self._writer.begin() as conn:
            row = conn.execute(
                update(StudyRow)
                .where(StudyRow.id == study_id, StudyRow.lease_owner == owner,
                       StudyRow.state == "RUNNING")
                .values(lease_expires_at=now + lease_s)
                .returning(StudyRow.cancel_requested)
            ).first()
        return None if row is None else bool(row[0])

    def finish(
        self, study_id: str, owner: str, state: str, *, error: str | None = None, now: float | None = None
    ) -> bool:
        """Record the end of ``owner``'s run (COMPLETED, FAILED or CANCELLED) and drop the
        lease; false when ``owner`` no longer held it (nothing is changed then)."""
        if state not in TERMINAL_STUDY_STATES:
            raise ValueError(f"state: got {state!r}; accepted: one of {sorted(TERMINAL_STUDY_STATES)}")
        now = time.time() if now is None else now
        with self._writer.begin() as conn:
            result = conn.execute(
                update(StudyRow)
                .where(StudyRow.id == study_id, StudyRow.lease_owner == owner)
                .values(state=state, finished_at=now, error=error, lease_owner=None,
                        lease_expires_at=None, version=StudyRow.version + 1)
            )
            return result.rowcount == 1

    def release_lease(self, study_id: str, owner: str) -> bool:
        """Give a study back to the queue without finishing it (a runner that could not start)."""
        with self._writer.begin() as conn:
            result = conn.execute(
                update(StudyRow)
                .where(StudyRow.id == study_id, StudyRow.lease_owner == owner, StudyRow.state == "RUNNING")
                .values(state="QUEUED", lease_owner=None, lease_expires_at=None,
                        version=StudyRow.version + 1)
            )
            return result.rowcount == 1

    def acquire_lock(self, name: str, owner: str, lease_s: float, *, now: float | None = None) -> bool:
        """Take or renew the named lock for ``owner`` (free, lapsed, or already ``owner``'s)."""
        now = time.time() if now is None else now
        with self._writer.begin() as conn:
            result = conn.execute(
                update(LockRow)
                .where(LockRow.name == name, (LockRow.owner == owner) | (LockRow.expires_at < now))
                .values(owner=owner, expires_at=now + lease_s)
            )
            if result.rowcount == 1:
                return True
            if conn.execute(select(LockRow.name).where(LockRow.name == name)).first() is not None:
                return False
            try:
                with conn.begin_nested():
                    conn.execute(insert(LockRow).values(name=name, owner=owner, expires_at=now + lease_s))
            except IntegrityError:
                return False
            return True

    def release_lock(self, name: str, owner: str) -> None:
        """Drop the named lock if ``owner`` holds it."""
        with self._writer.begin() as conn:
            conn.execute(delete(LockRow).where(LockRow.name == name, LockRow.owner == owner))

    # -- trials -----------------------------------------------------------------------------
    def write_trial(self, study_id: str, record: TrialRecord, *, owner: str | None = None) -> int:
        """Insert or replace one trial's record (and its measurements) in one transaction.

        A trial's state only moves forward (:func:`dse.results.check_transition`; rewriting the
        same finished record is a no-op): a backward move raises :class:`ConflictError`. With
        ``owner``, the write is refused (:class:`ConflictError`) unless ``owner`` still holds the
        study's lease, so a runner that lost its study can never write to it. Returns the new
        study version.
        """
        with self._writer.begin() as conn:
            bump = update(StudyRow).where(StudyRow.id == study_id)
            if owner is not None:
                bump = bump.where(StudyRow.lease_owner == owner)
            row = conn.execute(
                bump.values(version=StudyRow.version + 1).returning(StudyRow.version)
            ).first()
            if row is None:
                self._raise_missing_or_lost(conn, study_id, owner)
            version = int(row[0])
            current = conn.execute(
                select(TrialRow.state, TrialRow.trial_id)
                .where(TrialRow.study_id == study_id, TrialRow.number == record.number)
            ).first()
            values = {**trial_values(record), "seq": version}
            if current is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(TrialRow).values(study_id=study_id, number=record.number, **values))
                except IntegrityError:
                    raise ConflictError(
                        f"trial id {record.trial_id!r} is already recorded in study {study_id} under "
                        f"another number than {record.number}"
                    ) from None
            else:
                old_state, old_id = current
                if old_id != record.trial_id:
                    raise ConflictError(f"trial number {record.number} of study {study_id} is trial "
                                        f"{old_id!r}, not {record.trial_id!r}")
                check_transition(TrialState(old_state), record.state, record.trial_id)
                conn.execute(update(TrialRow).where(
                    TrialRow.study_id == study_id, TrialRow.number == record.number).values(**values))
                conn.execute(delete(MeasurementRow).where(
                    MeasurementRow.study_id == study_id, MeasurementRow.number == record.number))
            rows = measurement_rows(study_id, record)
            if rows:
                conn.execute(insert(MeasurementRow), rows)
        return version

    def import_trials(self, study_id: str, records: Sequence[TrialRecord]) -> int:
        """Add many new trials in one transaction (loading finished results, e.g. a ``dse run``
        results directory); raises :class:`ConflictError` if any number or id is already there.
        Returns the new study version."""
        with self._writer.begin() as conn:
            version = conn.execute(
                update(StudyRow).where(StudyRow.id == study_id)
                .values(version=StudyRow.version + 1).returning(StudyRow.version)
            ).scalar()
            if version is None:
                raise NotFoundError(f"study {study_id!r} does not exist")
            rows = [{"study_id": study_id, "number": r.number, **trial_values(r), "seq": version} for r in records]
            try:
                with conn.begin_nested():
                    if rows:
                        conn.execute(insert(TrialRow), rows)
                    meas = [m for r in records for m in measurement_rows(study_id, r)]
                    if meas:
                        conn.execute(insert(MeasurementRow), meas)
            except IntegrityError:
                raise ConflictError(f"some of the {len(rows)} trials are already in study {study_id}") from None
        return int(version)

    def _raise_missing_or_lost(self, conn: Any, study_id: str, owner: str | None) -> None:
        exists = conn.execute(select(StudyRow.id).where(StudyRow.id == study_id)).first()
        if exists is None:
            raise NotFoundError(f"study {study_id!r} does not exist")
        raise ConflictError(f"runner {owner!r} no longer holds the lease of study {study_id}")

    def abandon_unfinished_trials(self, study_id: str, *, reason: str, now: float | None = None) -> int:
        """Mark the PENDING / RUNNING trials of a study CANCELLED with ``reason`` (done when a
        runner takes over from a dead one: those trials' runs are lost and will be re-run under
        new numbers). Returns how many trials changed."""
        now = time.time() if now is None else now
        with self._writer.begin() as conn:
            stale = conn.execute(
                select(TrialRow.number).where(
                    TrialRow.study_id == study_id, TrialRow.state.in_(["PENDING", "RUNNING"]))
            ).all()
            if not stale:
                return 0
            version = conn.execute(
                update(StudyRow).where(StudyRow.id == study_id)
                .values(version=StudyRow.version + 1).returning(StudyRow.version)
            ).scalar_one()
            conn.execute(
                update(TrialRow)
                .where(TrialRow.study_id == study_id, TrialRow.state.in_(["PENDING", "RUNNING"]))
                .values(state="CANCELLED", error=reason, finished_at=now, seq=version)
            )
        return len(stale)

    def list_trials(
        self, study_id: str, *, since: int = 0, states: Sequence[str] = (), measurements: bool = False
    ) -> list[TrialInfo]:
        """The study's trials by number; with ``since``, only those written after that version."""
        where = [TrialRow.study_id == study_id]
        if since:
            where.append(TrialRow.seq > since)
        if states:
            where.append(TrialRow.state.in_(list(states)))
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_TRIAL_COLUMNS).where(*where).order_by(TrialRow.number)).all()
            if not rows and not since:
                self._check_study(conn, study_id)
            by_number = self._measurements(conn, study_id) if measurements else {}
        return [_trial(r, by_number.get(r.number, ()) if measurements else None) for r in rows]

    def records(self, study_id: str) -> list[TrialRecord]:
        """Every trial of the study as the engine's records, measurements included (what a
        resumed run starts from, and what the Parquet export is made of)."""
        return [to_record(t) for t in self.list_trials(study_id, measurements=True)]

    def get_trial(self, study_id: str, number: int) -> TrialInfo:
        """One trial with its measurements, or :class:`NotFoundError`."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*_TRIAL_COLUMNS).where(
                TrialRow.study_id == study_id, TrialRow.number == number)).first()
            if row is None:
                self._check_study(conn, study_id)
                raise NotFoundError(f"trial {number} of study {study_id} does not exist")
            meas = self._measurements(conn, study_id, number).get(number, ())
        return _trial(row, meas)

    def trial_counts(self, study_id: str) -> dict[str, int]:
        """Number of trials per state (every state present, zero when none)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TrialRow.state, func.count()).where(TrialRow.study_id == study_id)
                .group_by(TrialRow.state)
            ).all()
        counts = dict.fromkeys(TRIAL_STATES, 0)
        counts.update({state: int(n) for state, n in rows})
        return counts

    def trial_counts_many(self, study_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """:meth:`trial_counts` of several studies in one query."""
        out = {i: dict.fromkeys(TRIAL_STATES, 0) for i in study_ids}
        if study_ids:
            with self.engine.connect() as conn:
                for study_id, state, n in conn.execute(
                    select(TrialRow.study_id, TrialRow.state, func.count())
                    .where(TrialRow.study_id.in_(list(study_ids)))
                    .group_by(TrialRow.study_id, TrialRow.state)
                ):
                    out[study_id][state] = int(n)
        return out

    def next_trial_number(self, study_id: str) -> int:
        """One more than the highest trial number of the study (0 for none)."""
        with self.engine.connect() as conn:
            top = conn.execute(select(func.max(TrialRow.number)).where(TrialRow.study_id == study_id)).scalar()
        return 0 if top is None else int(top) + 1

    # -- helpers ----------------------------------------------------------------------------
    def _check_study(self, conn: Any, study_id: str) -> None:
        if conn.execute(select(StudyRow.id).where(StudyRow.id == study_id)).first() is None:
            raise NotFoundError(f"study {study_id!r} does not exist")

    @staticmethod
    def _labels(conn: Any, ids: Iterable[str]) -> dict[str, dict[str, str]]:
        ids = list(ids)
        out: dict[str, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for study_id, key, value in conn.execute(
                select(LabelRow.study_id, LabelRow.key, LabelRow.value).where(LabelRow.study_id.in_(ids))
            ):
                out[study_id][key] = value
        return out

    @staticmethod
    def _measurements(conn: Any, study_id: str, number: int | None = None) -> dict[int, tuple[dict, ...]]:
        where = [MeasurementRow.study_id == study_id]
        if number is not None:
            where.append(MeasurementRow.number == number)
        out: dict[int, list[dict]] = {}
        for n, repeat, epoch, reported_at, values in conn.execute(
            select(MeasurementRow.number, MeasurementRow.repeat, MeasurementRow.epoch,
                   MeasurementRow.reported_at, MeasurementRow.values)
            .where(*where).order_by(MeasurementRow.number, MeasurementRow.idx)
        ):
            out.setdefault(n, []).append({"repeat": repeat, "epoch": epoch, "reported_at": reported_at,
                                          "metrics": metrics_from_json(values)})
        return {n: tuple(v) for n, v in out.items()}


_TRIAL_COLUMNS = (
    TrialRow.number, TrialRow.trial_id, TrialRow.state, TrialRow.params, TrialRow.metrics,
    TrialRow.metrics_std, TrialRow.seeds, TrialRow.repeat_metrics, TrialRow.created_at,
    TrialRow.started_at, TrialRow.finished_at, TrialRow.node, TrialRow.error, TrialRow.seq,
)


def _study(row: Any, labels: dict[str, str]) -> StudyInfo:
    return StudyInfo(
        id=row.id, name=row.name, spec=row.spec, labels=labels, state=row.state,
        cancel_requested=bool(row.cancel_requested), request_id=row.request_id,
        created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at,
        error=row.error, runs=row.runs, version=row.version, lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
    )


def _trial(row: Any, measurements: tuple[dict, ...] | None) -> TrialInfo:
    return TrialInfo(
        number=row.number, trial_id=row.trial_id, state=row.state, params=row.params or {},
        metrics=metrics_from_json(row.metrics), metrics_std=metrics_from_json(row.metrics_std),
        seeds=tuple(row.seeds or ()), repeat_metrics=tuple(metrics_from_json(m) for m in row.repeat_metrics or ()),
        created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at,
        node=row.node, error=row.error, seq=row.seq, measurements=measurements,
    )


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **({"poolclass": StaticPool} if memory else {"pool_size": 8, "max_overflow": 16}),
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed transaction is on disk before commit returns, so a trial that
            # was written survives even a power cut, not only a killed process.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the write lock at BEGIN so that a read-then-write transaction never
            # fails with "database is locked" halfway through; readers get a deferred BEGIN
            # (a consistent snapshot that never blocks writers, thanks to WAL).
            write = conn.get_execution_options().get("dse_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        # pysqlite's own transaction handling must be off for the BEGIN above to apply.
        @event.listens_for(engine, "connect", insert=True)
        def _sqlite_autocommit_driver(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
