"""Conversion between the engine's :class:`dse.results.TrialRecord` and the store's rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from api.store.types import TrialInfo
from dse.results import Measurement, TrialRecord, record_from_plain, record_to_plain


def epoch_s(value: datetime | None) -> float | None:
    """A timezone-aware datetime as seconds since the epoch."""
    return None if value is None else value.timestamp()


def utc(value: float | None) -> datetime | None:
    """Seconds since the epoch as a UTC datetime."""
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def trial_values(record: TrialRecord) -> dict[str, Any]:
    """The trial row's column values for ``record`` (without study id, number and seq): the
    record's plain form (:func:`dse.results.record_to_plain`, shared with the Parquet writer)
    with non-finite numbers as text for the JSON columns. Details go to their own table."""
    plain = record_to_plain(record)
    values = {name: plain[name] for name in _TRIAL_COLUMNS}
    values["params"] = _json_safe(plain["params"])
    values["metrics"] = _finite_or_text(plain["metrics"])
    values["metrics_std"] = _finite_or_text(plain["metrics_std"])
    values["repeat_metrics"] = [_finite_or_text(m) for m in plain["repeat_metrics"]]
    return values


_TRIAL_COLUMNS = ("trial_id", "state", "params", "metrics", "metrics_std", "seeds", "repeat_metrics",
                  "created_at", "started_at", "finished_at", "node", "error", "attempts")


def measurement_rows(study_id: str, record: TrialRecord) -> list[dict[str, Any]]:
    """One measurement row per per-epoch report of ``record``."""
    return [
        {
            "study_id": study_id,
            "number": record.number,
            "idx": i,
            "repeat": m.repeat,
            "epoch": m.epoch,
            "reported_at": epoch_s(m.reported_at),
            "values": _finite_or_text(m.metrics),
        }
        for i, m in enumerate(record.measurements)
    ]


def details_rows(study_id: str, record: TrialRecord) -> list[dict[str, Any]]:
    """The trial-details row of ``record`` (none when it has no details)."""
    if not record.details:
        return []
    return [{"study_id": study_id, "number": record.number, "details": list(record.details)}]


def to_record(info: TrialInfo) -> TrialRecord:
    """The engine's record of a stored trial (measurements included when they were loaded)."""
    measurements = tuple(
        Measurement(
            epoch=m["epoch"], metrics=m["metrics"], repeat=m["repeat"], reported_at=utc(m["reported_at"])
        )
        for m in info.measurements or ()
    )
    plain = {name: getattr(info, name) for name in (*_TRIAL_COLUMNS, "number")}
    plain["details"] = info.details or ()
    return record_from_plain(plain, measurements)


_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def json_number(value: float) -> float | str:
    """A float for JSON: NaN and infinities become the strings ``NaN`` / ``Infinity`` / ``-Infinity``
    (JSON, and PostgreSQL's JSONB in particular, holds no non-finite numbers)."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _finite_or_text(metrics: Any) -> dict[str, Any]:
    """Metrics with non-finite values as text (:func:`json_number`), for the JSON columns."""
    return {name: json_number(float(value)) for name, value in metrics.items()}


def metrics_from_json(data: dict[str, Any] | None) -> dict[str, float]:
    """Inverse of the non-finite encoding above."""
    return {k: (_NON_FINITE[v] if isinstance(v, str) else float(v)) for k, v in (data or {}).items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
