"""Studies: submit, list, show, cancel, delete."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api import engine
from api.coalesce import in_thread_fresh
from api.deps import ReadAccess, StoreDep, WriteAccess
from api.encode import dumps
from api.results_views import study_detail, study_detail_body, study_summary
from api.schemas import MAX_INT, MAX_PAGE_SIZE, Problem, StudyDetail, StudyPage
from api.snapshot import snapshot_of
from dse.spec import MAX_CONCURRENT_TRIALS, MAX_CPUS, MAX_REPEATS, MAX_TIME_BUDGET_S, MAX_TRIALS

router = APIRouter(tags=["studies"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or unknown bearer token"},
}
StudyState = Literal["QUEUED", "RUNNING", "CANCELLING", "COMPLETED", "FAILED", "CANCELLED"]

_SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "StudySpec",
    "description": "The study spec (docs/study-spec.md). Beyond this outline, values are checked against "
    "each other and target paths against the trial config; errors name the field.",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"},
        "description": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "base": {"type": "object", "description": "The fixed part of every trial config"},
        "parameters": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "target", "type"],
                "properties": {
                    "name": {"type": "string"},
                    "target": {"type": "string"},
                    "type": {"enum": ["float", "int", "discrete", "categorical"]},
                },
            },
        },
        "objectives": {
            "type": "array",
            "items": {
                "oneOf": [
                    {"type": "string", "description": "metric:min|max[:threshold]"},
                    {
                        "type": "object",
                        "required": ["metric", "goal"],
                        "properties": {
                            "metric": {"type": "string"},
                            "goal": {"enum": ["minimize", "maximize", "min", "max"]},
                            "threshold": {"type": "number"},
                        },
                    },
                ]
            },
        },
        "constraints": {
            "type": "array",
            "items": {
                "oneOf": [
                    {"type": "string", "description": "METRIC <= NUMBER or METRIC >= NUMBER"},
                    {"type": "object", "required": ["metric", "op", "bound"]},
                ]
            },
        },
        "searcher": {"oneOf": [{"type": "string"}, {"type": "object"}]},
        "scheduler": {"oneOf": [{"type": "string"}, {"type": "object"}]},
        "budget": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_trials": {"type": "integer", "minimum": 1, "maximum": MAX_TRIALS},
                "max_concurrent_trials": {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENT_TRIALS},
                "time_budget_s": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIME_BUDGET_S},
                "max_failed_trials": {"type": "integer", "minimum": 0, "maximum": MAX_TRIALS},
            },
        },
        "repeats": {
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_REPEATS},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "count": {"type": "integer", "minimum": 1, "maximum": MAX_REPEATS},
                        "seeds": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_REPEATS,
                            "uniqueItems": True,
                            "items": {"type": "integer", "minimum": 0},
                        },
                    },
                },
            ]
        },
        "resources": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "cpus": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_CPUS},
                "gpus": {"type": "number", "minimum": 0, "maximum": MAX_CPUS},
            },
        },
    },
}

_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "description": "A study spec, the same schema as `dse run STUDY.yaml` (see docs/study-spec.md).",
        "content": {
            "application/json": {"schema": _SPEC_SCHEMA},
            "application/yaml": {"schema": {"type": "string", "description": "The spec as YAML text"}},
        },
    }
}


@router.post(
    "/studies",
    status_code=status.HTTP_201_CREATED,
    response_model=StudyDetail,
    summary="Submit a study",
    openapi_extra=_SPEC_BODY,
    responses={
        **_ERRORS,
        200: {"model": StudyDetail, "description": "Retry of an earlier submission (same Idempotency-Key)"},
        403: {"model": Problem, "description": "Read-only token"},
        413: {"model": Problem, "description": "Body over the size limit"},
        415: {"model": Problem, "description": "Body neither JSON nor YAML"},
        422: {"model": Problem, "description": "Invalid spec; `errors[].path` names the field"},
    },
)
async def submit_study(
    request: Request,
    response: Response,
    store: StoreDep,
    _: WriteAccess,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Client-chosen request id: a retry with the same key and spec "
            "returns the first submission's study instead of a new one",
        ),
    ] = None,
) -> Any:
    """Queue a study. The body is the study spec as JSON (`application/json`) or YAML
    (`application/yaml`). With an `Idempotency-Key`, retries are safe."""
    body = await request.body()
    settings = request.app.state.settings
    spec = engine.parse_spec_body(body, request.headers.get("content-type"), settings.trial_function)
    engine.check_resources(spec, settings.node_cpus, settings.node_gpus)
    study, created = store.create_study(
        engine.spec_dict(spec),
        name=spec.name,
        labels=engine.spec_labels(spec),
        request_id=idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    elif request.app.state.scheduler is not None:
        request.app.state.scheduler.wake()  # start it now rather than at the next pass
    response.headers["Location"] = f"/v1/studies/{study.id}"
    return study_detail(study, request.app.state.results.snapshot(study.id))


@router.get("/studies", response_model=StudyPage, summary="List studies", responses=_ERRORS)
async def list_studies(
    request: Request,
    store: StoreDep,
    _: ReadAccess,
    state: Annotated[list[StudyState] | None, Query(description="Keep studies in these states")] = None,
    label: Annotated[
        list[str] | None, Query(description="Keep studies with this label: `key` or `key=value`")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT, description="Studies to skip")] = 0,
) -> Any:
    """Studies, newest first, one page at a time."""
    states = list(state or ())
    labels: dict[str, str | None] = {}
    for item in label or ():
        key, sep, value = item.partition("=")
        labels[key] = value if sep else None
    results = request.app.state.results

    def page() -> bytes:
        items, total = store.list_studies(states=states, labels=labels, limit=limit, offset=offset)
        # Counted again only for the studies written since the last listing.
        counts = results.counts_many(items)
        now = time.time()
        summaries = [study_summary(s, counts[s.id], now=now) for s in items]
        next_offset = offset + limit if offset + limit < total else None
        return dumps(
            {"items": summaries, "total": total, "limit": limit, "offset": offset, "next_offset": next_offset}
        )

    # One read for all the same listings asked for before it starts (each answer is read after
    # its request arrived).
    key = ("studies", id(store), tuple(states), tuple(sorted(labels.items())), limit, offset)
    return Response(await in_thread_fresh(key, page), media_type="application/json")


@router.get(
    "/studies/{study_id}",
    response_model=StudyDetail,
    summary="Show a study",
    responses={**_ERRORS, 404: {"model": Problem}},
)
async def get_study(request: Request, study_id: str, _: ReadAccess) -> Any:
    """The study's spec, state, trial counts by state, elapsed time and best trial per objective."""
    snap = await snapshot_of(request.app.state.results, study_id)
    if snap.peek(("body", "study-detail")) is None:
        return Response(await run_in_threadpool(study_detail_body, snap), media_type="application/json")
    return Response(study_detail_body(snap), media_type="application/json")


@router.post(
    "/studies/{study_id}:cancel",
    response_model=StudyDetail,
    summary="Cancel a study",
    responses={
        **_ERRORS,
        403: {"model": Problem},
        404: {"model": Problem},
        409: {"model": Problem, "description": "The study already finished"},
    },
)
def cancel_study(request: Request, study_id: str, store: StoreDep, _: WriteAccess) -> Any:
    """Cancel a queued study at once, or a running one: its runner stops the running trials
    (recorded CANCELLED) and keeps every finished trial. Returns the study (CANCELLING while
    the runner stops)."""
    store.request_cancel(study_id)
    snap = request.app.state.results.snapshot(study_id)
    return study_detail(snap.study, snap)


@router.delete(
    "/studies/{study_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a study",
    responses={
        **_ERRORS,
        403: {"model": Problem},
        404: {"model": Problem},
        409: {"model": Problem, "description": "The study is running; cancel it first"},
    },
)
def delete_study(request: Request, study_id: str, store: StoreDep, _: WriteAccess) -> Response:
    """Delete a study that is not running, with its trials."""
    store.delete_study(study_id)
    request.app.state.results.forget(study_id)
    request.app.state.exports.forget(study_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
