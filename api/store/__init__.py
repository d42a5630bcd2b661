"""The durable study store: SQLAlchemy tables and :class:`SqlStore` (SQLite WAL or PostgreSQL)."""

from __future__ import annotations

from api.store.convert import to_record
from api.store.sql import IdempotencyError, SqlStore, spec_digest
from api.store.types import (
    FINISHED_TRIAL_STATES,
    TRIAL_STATES,
    StudyInfo,
    TrialInfo,
)

__all__ = [
    "FINISHED_TRIAL_STATES",
    "TRIAL_STATES",
    "IdempotencyError",
    "SqlStore",
    "StudyInfo",
    "TrialInfo",
    "spec_digest",
    "to_record",
]
