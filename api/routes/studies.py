"""Studies: submit, list, show, cancel, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status

from api import engine
from api.deps import ReadAccess, SettingsDep, StoreDep, WriteAccess
from api.errors import invalid
from api.results_views import study_detail, study_summary
from api.schemas import Problem, StudyDetail, StudyPage

router = APIRouter(tags=["studies"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or unknown bearer token"},
}
_STUDY_STATES = ("QUEUED", "RUNNING", "CANCELLING", "COMPLETED", "FAILED", "CANCELLED")

_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "description": "A study spec, the same schema as `dse run STUDY.yaml` (see docs/study-spec.md).",
        "content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": True,
                                            "properties": {"name": {"type": "string"}}}},
            "application/yaml": {"schema": {"type": "string"}},
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
    idempotency_key: Annotated[str | None, Header(
        max_length=200, description="Client-chosen request id: a retry with the same key and spec "
                                    "returns the first submission's study instead of a new one")] = None,
) -> Any:
    """Queue a study. The body is the study spec as JSON (`application/json`) or YAML
    (`application/yaml`). With an `Idempotency-Key`, retries are safe."""
    body = await request.body()
    spec = engine.parse_spec_body(body, request.headers.get("content-type"))
    study, created = store.create_study(
        engine.spec_dict(spec), name=spec.name, labels=engine.spec_labels(spec), request_id=idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/studies/{study.id}"
    return study_detail(study, request.app.state.results.snapshot(study.id))


@router.get("/studies", response_model=StudyPage, summary="List studies", responses=_ERRORS)
def list_studies(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    _: ReadAccess,
    state: Annotated[list[str] | None, Query(description=f"Keep studies in these states ({', '.join(_STUDY_STATES)})")] = None,
    label: Annotated[list[str] | None, Query(description="Keep studies with this label: `key` or `key=value`")] = None,
    limit: Annotated[int, Query(ge=1, description="Page size")] = 50,
    offset: Annotated[int, Query(ge=0, description="Studies to skip")] = 0,
) -> Any:
    """Studies, newest first, one page at a time."""
    if limit > settings.max_page_size:
        raise invalid("query.limit", limit, f"an integer in [1, {settings.max_page_size}]")
    states: list[str] = []
    for i, s in enumerate(state or ()):
        s = s.upper()
        if s not in _STUDY_STATES:
            raise invalid(f"query.state[{i}]", s, f"one of {', '.join(_STUDY_STATES)}")
        states.append(s)
    labels: dict[str, str | None] = {}
    for item in label or ():
        key, sep, value = item.partition("=")
        labels[key] = value if sep else None
    items, total = store.list_studies(states=states, labels=labels, limit=limit, offset=offset)
    counts = store.trial_counts_many([s.id for s in items])
    summaries = [study_summary(s, counts[s.id]) for s in items]
    next_offset = offset + limit if offset + limit < total else None
    return {"items": summaries, "total": total, "limit": limit, "offset": offset, "next_offset": next_offset}


@router.get("/studies/{study_id}", response_model=StudyDetail, summary="Show a study",
            responses={**_ERRORS, 404: {"model": Problem}})
def get_study(request: Request, study_id: str, _: ReadAccess) -> Any:
    """The study's spec, state, trial counts by state, elapsed time and best trial per objective."""
    snap = request.app.state.results.snapshot(study_id)
    return study_detail(snap.study, snap)


@router.post("/studies/{study_id}:cancel", response_model=StudyDetail, summary="Cancel a study",
             responses={**_ERRORS, 403: {"model": Problem}, 404: {"model": Problem},
                        409: {"model": Problem, "description": "The study already finished"}})
def cancel_study(request: Request, study_id: str, store: StoreDep, _: WriteAccess) -> Any:
    """Cancel a queued study at once, or a running one: its runner stops the running trials
    (recorded CANCELLED) and keeps every finished trial. Returns the study (CANCELLING while
    the runner stops)."""
    store.request_cancel(study_id)
    snap = request.app.state.results.snapshot(study_id)
    return study_detail(snap.study, snap)


@router.delete("/studies/{study_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a study",
               responses={**_ERRORS, 403: {"model": Problem}, 404: {"model": Problem},
                          409: {"model": Problem, "description": "The study is running; cancel it first"}})
def delete_study(request: Request, study_id: str, store: StoreDep, _: WriteAccess) -> Response:
    """Delete a study that is not running, with its trials."""
    store.delete_study(study_id)
    request.app.state.results.forget(study_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
