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
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from api.store.engine import make_engine
from api.store.leases import LeaseStore
from api.store.models import (
    TERMINAL_STUDY_STATES,
    Base,
    LabelRow,
    MeasurementRow,
    StudyRow,
    TrialDetailsRow,
    TrialRow,
)
from api.store.rows import labels_of, study_info
from api.store.trials import TrialStore
from api.store.types import StudyInfo
from dse.errors import ConflictError, NotFoundError


class IdempotencyError(ConflictError):
    """A request id was reused with a different spec."""


def spec_digest(spec: Mapping[str, Any]) -> str:
    """SHA-256 of a spec's canonical JSON: equal for specs that are equal as data."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def new_study_id() -> str:
    """A fresh, URL-safe study identifier (16 hex characters, 64 random bits)."""
    return secrets.token_hex(8)


class SqlStore(LeaseStore, TrialStore):
    """Studies and trials in a SQL database given by a SQLAlchemy URL."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        # Write transactions go through this view of the engine: on SQLite they start with
        # BEGIN IMMEDIATE (see _make_engine), reads with a plain BEGIN.
        self._writer = self.engine.execution_options(dse_write=True)
        self._local = threading.local()
        self._raw: list[Any] = []
        self._guard = threading.Lock()
        if create:
            Base.metadata.create_all(self.engine)
            _add_missing_columns(self.engine)

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
                conn.execute(
                    insert(StudyRow).values(
                        id=study_id,
                        name=name,
                        spec=dict(spec),
                        spec_digest=digest,
                        request_id=request_id,
                        state="QUEUED",
                        created_at=now,
                        cancel_requested=False,
                        runs=0,
                        version=0,
                    )
                )
                if labels:
                    conn.execute(
                        insert(LabelRow),
                        [{"study_id": study_id, "key": str(k), "value": str(v)} for k, v in labels.items()],
                    )
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
            return study_info(row, labels_of(conn, [row.id])[row.id])

    def get_study(self, study_id: str) -> StudyInfo:
        """The study, or :class:`NotFoundError`."""
        with self.engine.connect() as conn:
            row = conn.execute(select(StudyRow).where(StudyRow.id == study_id)).first()
            if row is None:
                raise NotFoundError(f"study {study_id!r} does not exist")
            return study_info(row, labels_of(conn, [study_id])[study_id])

    def study_version(self, study_id: str) -> tuple[int, str]:
        """``(version, state)`` of a study: the cheap check before serving cached results.

        Asked before every result request, so it skips SQLAlchemy's statement machinery. On
        SQLite it also skips the pool: one autocommit DBAPI connection per thread (each query sees
        the latest committed data: no transaction stays open between calls). On a database server
        it borrows a pooled connection, keeping the server's connection count bounded by the pool.
        """
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        statement = f"SELECT version, state FROM studies WHERE id = {mark}"
        if self.dialect != "sqlite":
            with self.engine.connect() as pooled:
                row = pooled.exec_driver_sql(statement, (study_id,)).first()
            if row is None:
                raise NotFoundError(f"study {study_id!r} does not exist")
            return int(row[0]), str(row[1])
        try:
            conn = self._version_connection()
            cur = conn.cursor()
            try:
                cur.execute(statement, (study_id,))
                row = cur.fetchone()
            finally:
                cur.close()
        except (self.engine.dialect.loaded_dbapi.Error, DBAPIError) as exc:
            # A broken connection (database restarted, network gone): drop it so the next call
            # reconnects, and raise what every other store call raises for database errors.
            self._local.conn = None
            if isinstance(exc, DBAPIError):
                raise
            raise OperationalError(statement, (study_id,), exc) from exc
        if row is None:
            raise NotFoundError(f"study {study_id!r} does not exist")
        return int(row[0]), str(row[1])

    def _version_connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            fairy = self.engine.raw_connection()
            fairy.detach()  # ours for the thread's life, never handed back to the pool
            conn = fairy.dbapi_connection
            self._local.conn = conn
            with self._guard:
                self._raw.append(conn)
        return conn

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
                select(StudyRow)
                .where(*where)
                .order_by(StudyRow.created_at.desc(), StudyRow.id)
                .limit(limit)
                .offset(offset)
            ).all()
            labels_by_id = labels_of(conn, [r.id for r in rows])
        return [study_info(r, labels_by_id[r.id]) for r in rows], int(total)

    def request_cancel(self, study_id: str, *, now: float | None = None) -> StudyInfo:
        """Cancel a study: a QUEUED one at once, a RUNNING one through its runner (which stops
        the running trials and keeps the finished ones). Raises :class:`ConflictError` for a
        study that already finished."""
        now = time.time() if now is None else now
        with self._writer.begin() as conn:
            state = _locked_state(conn, study_id)
            if state in TERMINAL_STUDY_STATES:
                raise ConflictError(
                    f"study {study_id} is already {state}; only QUEUED or RUNNING studies can be cancelled"
                )
            values: dict[str, Any] = {"cancel_requested": True, "version": StudyRow.version + 1}
            if state == "QUEUED":
                values.update(state="CANCELLED", finished_at=now)
            conn.execute(update(StudyRow).where(StudyRow.id == study_id).values(**values))
        return self.get_study(study_id)

    def delete_study(self, study_id: str) -> None:
        """Delete a study with its trials; a RUNNING study must be cancelled first."""
        with self._writer.begin() as conn:
            if _locked_state(conn, study_id) == "RUNNING":
                raise ConflictError(
                    f"study {study_id} is RUNNING; cancel it first "
                    f"(POST /v1/studies/{study_id}:cancel), then delete it"
                )
            # Explicit child deletes: SQLite enforces ON DELETE CASCADE only with foreign keys
            # on, and this keeps both databases on the same path.
            conn.execute(delete(MeasurementRow).where(MeasurementRow.study_id == study_id))
            conn.execute(delete(TrialDetailsRow).where(TrialDetailsRow.study_id == study_id))
            conn.execute(delete(TrialRow).where(TrialRow.study_id == study_id))
            conn.execute(delete(LabelRow).where(LabelRow.study_id == study_id))
            conn.execute(delete(StudyRow).where(StudyRow.id == study_id))


def _locked_state(conn: Any, study_id: str) -> str:
    """The study's state, its row locked for the rest of the transaction (NotFoundError if none)."""
    row = conn.execute(select(StudyRow.state).where(StudyRow.id == study_id).with_for_update()).first()
    if row is None:
        raise NotFoundError(f"study {study_id!r} does not exist")
    return str(row[0])


def _add_missing_columns(engine: Any) -> None:
    """Columns added to the tables since a store was created (``trials.attempts``)."""
    from sqlalchemy import inspect, text

    columns = {c["name"] for c in inspect(engine).get_columns("trials")}
    if "attempts" not in columns:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE trials ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0"))
