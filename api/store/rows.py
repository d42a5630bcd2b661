"""Rows to the store's immutable views (shared by the store's parts)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from api.store.convert import metrics_from_json
from api.store.models import LabelRow, MeasurementRow, StudyRow, TrialDetailsRow, TrialRow
from api.store.types import StudyInfo, TrialInfo

TRIAL_COLUMNS = (
    TrialRow.number,
    TrialRow.trial_id,
    TrialRow.state,
    TrialRow.params,
    TrialRow.metrics,
    TrialRow.metrics_std,
    TrialRow.seeds,
    TrialRow.repeat_metrics,
    TrialRow.created_at,
    TrialRow.started_at,
    TrialRow.finished_at,
    TrialRow.node,
    TrialRow.error,
    TrialRow.attempts,
    TrialRow.seq,
)


def study_info(row: Any, labels: dict[str, str]) -> StudyInfo:
    return StudyInfo(
        id=row.id,
        name=row.name,
        spec=row.spec,
        labels=labels,
        state=row.state,
        cancel_requested=bool(row.cancel_requested),
        request_id=row.request_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        runs=row.runs,
        version=row.version,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
    )


def trial_info(row: Any, measurements: tuple[dict, ...] | None,
               details: tuple[Any, ...] | None = None) -> TrialInfo:
    return TrialInfo(
        number=row.number,
        trial_id=row.trial_id,
        state=row.state,
        params=row.params or {},
        metrics=metrics_from_json(row.metrics),
        metrics_std=metrics_from_json(row.metrics_std),
        seeds=tuple(row.seeds or ()),
        repeat_metrics=tuple(metrics_from_json(m) for m in row.repeat_metrics or ()),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        node=row.node,
        error=row.error,
        attempts=row.attempts or 0,
        seq=row.seq,
        measurements=measurements,
        details=details,
    )


def labels_of(conn: Any, ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """Labels of several studies, by study id."""
    ids = list(ids)
    out: dict[str, dict[str, str]] = {i: {} for i in ids}
    if ids:
        for study_id, key, value in conn.execute(
            select(LabelRow.study_id, LabelRow.key, LabelRow.value).where(LabelRow.study_id.in_(ids))
        ):
            out[study_id][key] = value
    return out


def measurements_of(conn: Any, study_id: str, number: int | None = None,
                    numbers: Sequence[int] | None = None) -> dict[int, tuple[dict, ...]]:
    """Per-epoch measurements of a study's trials (or of one trial, or of those ``numbers``), by
    trial number."""
    where = [MeasurementRow.study_id == study_id]
    if number is not None:
        where.append(MeasurementRow.number == number)
    if numbers is not None:
        where.append(MeasurementRow.number.in_(list(numbers)))
    out: dict[int, list[dict]] = {}
    for n, repeat, epoch, reported_at, values in conn.execute(
        select(
            MeasurementRow.number,
            MeasurementRow.repeat,
            MeasurementRow.epoch,
            MeasurementRow.reported_at,
            MeasurementRow.values,
        )
        .where(*where)
        .order_by(MeasurementRow.number, MeasurementRow.idx)
    ):
        out.setdefault(n, []).append(
            {
                "repeat": repeat,
                "epoch": epoch,
                "reported_at": reported_at,
                "metrics": metrics_from_json(values),
            }
        )
    return {n: tuple(v) for n, v in out.items()}


def details_of(conn: Any, study_id: str, number: int | None = None,
               numbers: Sequence[int] | None = None) -> dict[int, tuple[Any, ...]]:
    """Non-metric data of a study's trials (or of one trial, or of those ``numbers``), by trial
    number."""
    where = [TrialDetailsRow.study_id == study_id]
    if number is not None:
        where.append(TrialDetailsRow.number == number)
    if numbers is not None:
        where.append(TrialDetailsRow.number.in_(list(numbers)))
    return {n: tuple(d or ()) for n, d in conn.execute(
        select(TrialDetailsRow.number, TrialDetailsRow.details).where(*where))}


def check_study(conn: Any, study_id: str) -> None:
    """Raise :class:`NotFoundError` unless the study exists."""
    from dse.errors import NotFoundError

    if conn.execute(select(StudyRow.id).where(StudyRow.id == study_id)).first() is None:
        raise NotFoundError(f"study {study_id!r} does not exist")
