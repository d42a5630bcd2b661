"""Trials: written as they change (forward-only states), read whole, by page or since a version."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NoReturn

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from api.store.convert import details_rows, measurement_rows, to_record, trial_values
from api.store.models import MeasurementRow, StudyRow, TrialDetailsRow, TrialRow
from api.store.rows import TRIAL_COLUMNS, check_study, details_of, measurements_of, trial_info
from api.store.types import TRIAL_STATES, TrialInfo
from dse.errors import ConflictError, NotFoundError
from dse.results import TrialRecord, TrialState, check_transition


def _bump_version(conn: Any, study_id: str, owner: str | None = None) -> int | None:
    """Increment the study's version (only while ``owner`` holds its lease, when given); the new
    version, or None when no such study (or lease) exists."""
    bump = update(StudyRow).where(StudyRow.id == study_id)
    if owner is not None:
        bump = bump.where(StudyRow.lease_owner == owner)
    version = conn.execute(bump.values(version=StudyRow.version + 1).returning(StudyRow.version)).scalar()
    return None if version is None else int(version)


class TrialStore:
    """The trial part of :class:`api.store.SqlStore`."""

    engine: Engine
    _writer: Engine

    def write_trial(self, study_id: str, record: TrialRecord, *, owner: str | None = None) -> int:
        """Insert or replace one trial's record (and its measurements) in one transaction.

        A trial's state only moves forward (:func:`dse.results.check_transition`; rewriting the
        same finished record is a no-op): a backward move raises :class:`ConflictError`. With
        ``owner``, the write is refused (:class:`ConflictError`) unless ``owner`` still holds the
        study's lease, so a runner that lost its study can never write to it. Returns the new
        study version.
        """
        with self._writer.begin() as conn:
            version = _bump_version(conn, study_id, owner)
            if version is None:
                self._raise_missing_or_lost(conn, study_id, owner)
            current = conn.execute(
                select(TrialRow.state, TrialRow.trial_id).where(
                    TrialRow.study_id == study_id, TrialRow.number == record.number
                )
            ).first()
            values = {**trial_values(record), "seq": version}
            if current is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(TrialRow).values(study_id=study_id, number=record.number, **values)
                        )
                except IntegrityError:
                    raise ConflictError(
                        f"trial id {record.trial_id!r} is already recorded in study {study_id} under "
                        f"another number than {record.number}"
                    ) from None
            else:
                old_state, old_id = current
                if old_id != record.trial_id:
                    raise ConflictError(
                        f"trial number {record.number} of study {study_id} is trial "
                        f"{old_id!r}, not {record.trial_id!r}"
                    )
                check_transition(TrialState(old_state), record.state, record.trial_id)
                conn.execute(
                    update(TrialRow)
                    .where(TrialRow.study_id == study_id, TrialRow.number == record.number)
                    .values(**values)
                )
                conn.execute(
                    delete(MeasurementRow).where(
                        MeasurementRow.study_id == study_id, MeasurementRow.number == record.number
                    )
                )
                conn.execute(
                    delete(TrialDetailsRow).where(
                        TrialDetailsRow.study_id == study_id, TrialDetailsRow.number == record.number
                    )
                )
            rows = measurement_rows(study_id, record)
            if rows:
                conn.execute(insert(MeasurementRow), rows)
            details = details_rows(study_id, record)
            if details:
                conn.execute(insert(TrialDetailsRow), details)
        return version

    def import_trials(self, study_id: str, records: Sequence[TrialRecord]) -> int:
        """Add many new trials in one transaction (loading finished results, e.g. a ``dse run``
        results directory); raises :class:`ConflictError` if any number or id is already there.
        Returns the new study version."""
        with self._writer.begin() as conn:
            version = _bump_version(conn, study_id)
            if version is None:
                raise NotFoundError(f"study {study_id!r} does not exist")
            rows = [
                {"study_id": study_id, "number": r.number, **trial_values(r), "seq": version} for r in records
            ]
            try:
                with conn.begin_nested():
                    if rows:
                        conn.execute(insert(TrialRow), rows)
                    meas = [m for r in records for m in measurement_rows(study_id, r)]
                    if meas:
                        conn.execute(insert(MeasurementRow), meas)
                    details = [d for r in records for d in details_rows(study_id, r)]
                    if details:
                        conn.execute(insert(TrialDetailsRow), details)
            except IntegrityError:
                raise ConflictError(
                    f"some of the {len(rows)} trials are already in study {study_id}"
                ) from None
        return version

    def _raise_missing_or_lost(self, conn: Any, study_id: str, owner: str | None) -> NoReturn:
        exists = conn.execute(select(StudyRow.id).where(StudyRow.id == study_id)).first()
        if exists is None:
            raise NotFoundError(f"study {study_id!r} does not exist")
        raise ConflictError(f"runner {owner!r} no longer holds the lease of study {study_id}")

    def abandon_unfinished_trials(self, study_id: str, *, reason: str, now: float | None = None) -> int:
        """Mark the PENDING / RUNNING trials of a study CANCELLED with ``reason`` (done when a
        runner takes over from a dead one: those trials' runs are lost and are re-run under
        their own numbers when the study resumes). Returns how many trials changed."""
        now = time.time() if now is None else now
        with self._writer.begin() as conn:
            stale = conn.execute(
                select(TrialRow.number).where(
                    TrialRow.study_id == study_id, TrialRow.state.in_(["PENDING", "RUNNING"])
                )
            ).all()
            if not stale:
                return 0
            version = _bump_version(conn, study_id)
            conn.execute(
                update(TrialRow)
                .where(TrialRow.study_id == study_id, TrialRow.state.in_(["PENDING", "RUNNING"]))
                .values(state="CANCELLED", error=reason, finished_at=now, seq=version)
            )
        return len(stale)

    def list_trials(
        self, study_id: str, *, since: int = 0, states: Sequence[str] = (), measurements: bool = False
    ) -> list[TrialInfo]:
        """The study's trials by number; with ``since``, only those written after that version
        (``measurements``: with their measurements and details)."""
        where = [TrialRow.study_id == study_id]
        if since:
            where.append(TrialRow.seq > since)
        if states:
            where.append(TrialRow.state.in_(list(states)))
        with self.engine.connect() as conn:
            rows = conn.execute(select(*TRIAL_COLUMNS).where(*where).order_by(TrialRow.number)).all()
            if not rows and not since:
                check_study(conn, study_id)
            # Since a version, only the rows written since (a few hundred at most, else all).
            numbers = [r.number for r in rows] if since and len(rows) <= 500 else None
            by_number = measurements_of(conn, study_id, numbers=numbers) if measurements else {}
            details = details_of(conn, study_id, numbers=numbers) if measurements else {}
        return [trial_info(r, by_number.get(r.number, ()) if measurements else None,
                           details.get(r.number, ()) if measurements else None) for r in rows]

    def records(self, study_id: str) -> list[TrialRecord]:
        """Every trial of the study as the engine's records, measurements and details included (what a
        resumed run starts from, and what the Parquet export is made of)."""
        return [to_record(t) for t in self.list_trials(study_id, measurements=True)]

    def get_trial(self, study_id: str, number: int) -> TrialInfo:
        """One trial with its measurements, or :class:`NotFoundError`."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*TRIAL_COLUMNS).where(TrialRow.study_id == study_id, TrialRow.number == number)
            ).first()
            if row is None:
                check_study(conn, study_id)
                raise NotFoundError(f"trial {number} of study {study_id} does not exist")
            meas = measurements_of(conn, study_id, number).get(number, ())
            details = details_of(conn, study_id, number).get(number, ())
        return trial_info(row, meas, details)

    def trial_counts(self, study_id: str) -> dict[str, int]:
        """Number of trials per state (every state present, zero when none)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TrialRow.state, func.count())
                .where(TrialRow.study_id == study_id)
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
            top = conn.execute(
                select(func.max(TrialRow.number)).where(TrialRow.study_id == study_id)
            ).scalar()
        return 0 if top is None else int(top) + 1
