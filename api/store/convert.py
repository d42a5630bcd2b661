"""Conversion between the engine's :class:`dse.results.TrialRecord` and the store's rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from api.store.types import TrialInfo
from dse.results import Measurement, TrialRecord


def epoch_s(value: datetime | None) -> float | None:
    """A timezone-aware datetime as seconds since the epoch."""
    return None if value is None else value.timestamp()


def utc(value: float | None) -> datetime | None:
    """Seconds since the epoch as a UTC datetime."""
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def trial_values(record: TrialRecord) -> dict[str, Any]:
    """The trial row's column values for ``record`` (without study id, number and seq)."""
    return {
        "trial_id": record.trial_id,
        "state": record.state.value,
        "params": _json_safe(dict(record.params)),
        "metrics": _finite_or_text(record.metrics),
        "metrics_std": _finite_or_text(record.metrics_std),
        "seeds": list(record.seeds),
        "repeat_metrics": [_finite_or_text(m) for m in record.repeat_metrics],
        "created_at": epoch_s(record.created_at),
        "started_at": epoch_s(record.started_at),
        "finished_at": epoch_s(record.finished_at),
        "node": record.node,
        "error": record.error,
        "attempts": record.attempts,
    }


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
    fields: dict[str, Any] = {}
    if info.repeat_metrics:
        fields["repeat_metrics"] = info.repeat_metrics
    else:
        fields["metrics"] = info.metrics
        fields["metrics_std"] = info.metrics_std
    return TrialRecord(
        trial_id=info.trial_id,
        number=info.number,
        state=info.state,
        params=info.params,
        seeds=info.seeds,
        measurements=measurements,
        created_at=utc(info.created_at),
        started_at=utc(info.started_at),
        finished_at=utc(info.finished_at),
        node=info.node,
        error=info.error,
        details=info.details or (),
        attempts=info.attempts,
        **fields,
    )


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
