"""SQLAlchemy tables of the study store: studies, their labels, trials and per-epoch measurements.

Timestamps are seconds since the epoch (``float``), the same in SQLite and PostgreSQL. JSON
columns are ``JSONB`` on PostgreSQL and JSON text on SQLite. Nothing derived (Pareto fronts,
best trials, hypervolume) is stored: those are computed from the trials on request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = JSON().with_variant(JSONB(), "postgresql")

STUDY_STATES = ("QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
"""Stored study states; ``CANCELLING`` is derived (RUNNING with a cancel request)."""

TERMINAL_STUDY_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class StudyRow(Base):
    """One submitted study: its immutable spec, its state and its runner lease."""

    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    spec_digest: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[float] = mapped_column(Double, index=True)
    started_at: Mapped[float | None] = mapped_column(Double)
    finished_at: Mapped[float | None] = mapped_column(Double)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[float | None] = mapped_column(Double)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)


class LabelRow(Base):
    """A study label (``key: value``); a separate table so that filters are plain SQL."""

    __tablename__ = "study_labels"

    study_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))

    __table_args__ = (Index("ix_study_labels_key_value", "key", "value"),)


class TrialRow(Base):
    """One trial of a study (the latest :class:`dse.results.TrialRecord` written for it)."""

    __tablename__ = "trials"

    study_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType)
    metrics_std: Mapped[dict[str, Any]] = mapped_column(JSONType)
    seeds: Mapped[list[int]] = mapped_column(JSONType)
    repeat_metrics: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_at: Mapped[float | None] = mapped_column(Double)
    started_at: Mapped[float | None] = mapped_column(Double)
    finished_at: Mapped[float | None] = mapped_column(Double)
    node: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Starts of the trial (``TrialRecord.attempts``); added to older stores on open."""
    seq: Mapped[int] = mapped_column(Integer)
    """The study's ``version`` at this row's last write: what changed since a given version."""

    __table_args__ = (
        UniqueConstraint("study_id", "trial_id", name="uq_trials_study_trial_id"),
        Index("ix_trials_study_seq", "study_id", "seq"),
    )


class MeasurementRow(Base):
    """One per-epoch report of one repeat of a trial (``idx``: its position in arrival order)."""

    __tablename__ = "measurements"

    study_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    repeat: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[float | None] = mapped_column(Double)
    values: Mapped[dict[str, Any]] = mapped_column(JSONType)

    __table_args__ = (
        ForeignKeyConstraint(
            ["study_id", "number"], ["trials.study_id", "trials.number"], ondelete="CASCADE"
        ),
    )


class TrialDetailsRow(Base):
    """Non-metric data of a trial's repeats (``TrialRecord.details``: the cost breakdown, ...),
    in a table of its own so that trial lists stay light and older stores gain it unchanged."""

    __tablename__ = "trial_details"

    study_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    details: Mapped[list[Any]] = mapped_column(JSONType)

    __table_args__ = (
        ForeignKeyConstraint(
            ["study_id", "number"], ["trials.study_id", "trials.number"], ondelete="CASCADE"
        ),
    )


class LockRow(Base):
    """A named lease held by one process at a time (the scheduler's leadership)."""

    __tablename__ = "service_locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Double)
