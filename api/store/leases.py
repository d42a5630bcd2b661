"""Runner leases on studies and named locks: one runner per study, one acting scheduler."""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from api.store.models import TERMINAL_STUDY_STATES, LockRow, StudyRow
from api.store.rows import labels_of, study_info
from api.store.types import StudyInfo


class LeaseStore:
    """The lease and lock part of :class:`api.store.SqlStore`."""

    engine: Engine
    _writer: Engine

    def queued_studies(self, limit: int) -> list[str]:
        """Ids of QUEUED studies, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(StudyRow.id)
                .where(StudyRow.state == "QUEUED")
                .order_by(StudyRow.created_at, StudyRow.id)
                .limit(limit)
            ).all()
        return [r[0] for r in rows]

    def running_studies(self) -> list[StudyInfo]:
        """Every RUNNING study (with a live or a lapsed lease)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(StudyRow).where(StudyRow.state == "RUNNING")).all()
            labels = labels_of(conn, [r.id for r in rows])
        return [study_info(r, labels[r.id]) for r in rows]

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
                    state="RUNNING",
                    lease_owner=owner,
                    lease_expires_at=now + lease_s,
                    started_at=func.coalesce(StudyRow.started_at, now),
                    runs=StudyRow.runs + 1,
                    version=StudyRow.version + 1,
                )
            )
            return result.rowcount == 1

    def renew_lease(
        self, study_id: str, owner: str, lease_s: float, *, now: float | None = None
    ) -> bool | None:
        """Extend ``owner``'s lease. Returns whether a cancel was requested, or ``None`` when the
        lease is no longer ``owner``'s (the runner must stop at once)."""
        now = time.time() if now is None else now
        with self._writer.begin() as conn:
            row = conn.execute(
                update(StudyRow)
                .where(StudyRow.id == study_id, StudyRow.lease_owner == owner, StudyRow.state == "RUNNING")
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
                .values(
                    state=state,
                    finished_at=now,
                    error=error,
                    lease_owner=None,
                    lease_expires_at=None,
                    version=StudyRow.version + 1,
                )
            )
            return result.rowcount == 1

    def release_lease(self, study_id: str, owner: str) -> bool:
        """Give a study back to the queue without finishing it (a runner that could not start)."""
        with self._writer.begin() as conn:
            result = conn.execute(
                update(StudyRow)
                .where(StudyRow.id == study_id, StudyRow.lease_owner == owner, StudyRow.state == "RUNNING")
                .values(state="QUEUED", lease_owner=None, lease_expires_at=None, version=StudyRow.version + 1)
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
