"""Trials of a study: a sorted, filtered page, one trial with its measurements, Parquet export."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.coalesce import in_thread_once
from api.deps import ReadAccess
from api.errors import invalid
from api.schemas import MAX_INT, MAX_PAGE_SIZE, Problem, TrialDetail, TrialPage
from api.snapshot import SORT_FIELDS, snapshot_of

router = APIRouter(tags=["trials"])

TrialState = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "PRUNED", "CANCELLED"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or unknown bearer token"},
    404: {"model": Problem, "description": "No such study or trial"},
    422: {"model": Problem, "description": "Invalid query parameter; `errors[].path` names it"},
}


@router.get(
    "/studies/{study_id}/trials", response_model=TrialPage, summary="List a study's trials", responses=_ERRORS
)
async def list_trials(
    request: Request,
    study_id: str,
    _: ReadAccess,
    state: Annotated[list[TrialState] | None, Query(description="Keep trials in these states")] = None,
    sort: Annotated[
        str,
        Query(
            description="`number`, `started_at`, `finished_at`, `duration_s`, or any "
            "metric name (trials without it come last)"
        ),
    ] = "number",
    order: Annotated[Literal["asc", "desc"], Query(description="Sort direction")] = "asc",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT, description="Trials to skip")] = 0,
) -> Response:
    """One page of the study's trials, filtered by state and sorted by a field or metric."""
    states = list(state or ())
    snap = await snapshot_of(request.app.state.results, study_id)
    if sort not in SORT_FIELDS and sort not in snap.metric_names:
        raise invalid("query.sort", sort, "one of " + ", ".join([*SORT_FIELDS, *snap.metric_names]))
    positions = snap.order(sort, order == "desc", tuple(sorted(set(states))))
    total = int(len(positions))
    page = positions[offset : offset + limit]
    items = b",".join(snap.encoded(n) for n in snap.numbers[page].tolist())
    head = {
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
        "sort": sort,
        "order": order,
    }
    body = b'{"items":[' + items + b"]," + json.dumps(head, separators=(",", ":")).encode()[1:]
    return Response(body, media_type="application/json", headers={"ETag": f'W/"{snap.version}"'})


@router.get(
    "/studies/{study_id}/trials/{number}",
    response_model=TrialDetail,
    summary="Show a trial",
    responses=_ERRORS,
)
async def get_trial(
    request: Request,
    study_id: str,
    number: Annotated[int, Path(ge=0, le=MAX_INT, description="Trial number")],
    _: ReadAccess,
) -> Response:
    """One trial with its per-repeat metrics and per-epoch measurements."""
    store = request.app.state.store
    snap = await snapshot_of(request.app.state.results, study_id)
    if snap.trial(number) is None:
        await run_in_threadpool(store.get_trial, study_id, number)  # raises the 404
    body = snap.peek_detail(number)
    if body is None:
        # Read once per write of the trial: later versions of the study keep the encoding.
        body = await in_thread_once(
            ("detail", id(snap), number), lambda: snap.detail(number, lambda: store.get_trial(study_id, number))
        )
    return Response(body, media_type="application/json", headers={"ETag": f'W/"{snap.version}"'})


@router.get(
    "/studies/{study_id}/trials.parquet",
    summary="Download the trials as Parquet",
    response_class=Response,
    responses={
        **_ERRORS,
        200: {
            "content": {"application/vnd.apache.parquet": {}},
            "description": "trials.parquet (the engine's schema: param.*, metric.*, ...)",
        },
    },
)
async def trials_parquet(
    request: Request,
    study_id: str,
    _: ReadAccess,
    table: Annotated[
        Literal["trials", "measurements"],
        Query(
            description="`trials` (one row per trial) or `measurements` (one row per trial, repeat and epoch)"
        ),
    ] = "trials",
) -> Response:
    """The study's trials in the engine's Parquet schema (readable by pyarrow, pandas, DuckDB)."""
    exports = request.app.state.exports
    snap = await snapshot_of(request.app.state.results, study_id)
    body = exports.cached(snap, table)
    if body is None:
        # Written once per version of the study, from the trials written since the last one.
        body = await in_thread_once(("parquet", id(snap), table), lambda: exports.parquet(snap, table))
    return Response(
        body,
        media_type="application/vnd.apache.parquet",
        headers={
            "Content-Disposition": f'attachment; filename="{study_id}-{table}.parquet"',
            "ETag": f'W/"{snap.version}"',
        },
    )
