"""Results of a study, computed from its trials on request: Pareto front and ranks, best trial
under constraints, hypervolume history; and the study's server-sent events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from api import analysis, engine
from api.deps import ReadAccess, StoreDep
from api.encode import dumps, trial_json
from api.errors import invalid
from api.events import study_events
from api.schemas import MAX_INT, BestOut, HypervolumeOut, ParetoOut, Problem
from api.snapshot import StudySnapshot, body_of, snapshot_of

router = APIRouter(tags=["results"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or unknown bearer token"},
    404: {"model": Problem, "description": "No such study"},
    422: {"model": Problem, "description": "Invalid query parameter; `errors[].path` names it"},
}

ObjectivesQuery = Annotated[
    list[str] | None,
    Query(
        description="Objectives as `metric:min|max[:threshold]` (repeat or comma-separate), or the name "
        "of one of the study's objectives; default: the study's objectives"
    ),
]
ConstraintQuery = Annotated[
    list[str] | None,
    Query(description="Constraints like `n_tiles <= 16` (repeat or comma-separate); default: the study's"),
]


def _spec(snap: StudySnapshot) -> Any:
    return snap.spec


def _objectives(snap: StudySnapshot, texts: list[str] | None, *, max_count: int | None = None,
                path: str = "query.objectives") -> list:
    spec = _spec(snap)
    objs = engine.parse_objectives(texts, spec, path) if texts else list(spec.objectives)
    if not objs:
        raise invalid(path, texts, "at least one objective (the study declares none)")
    if max_count is not None and len(objs) > max_count:
        raise invalid(
            path,
            ",".join(o.metric for o in objs),
            f"at most {max_count} objectives (exact hypervolume is defined for 1 to 3)",
        )
    return objs


def _constraints(snap: StudySnapshot, texts: list[str] | None) -> list:
    return engine.parse_constraints(texts) if texts is not None else list(_spec(snap).constraints)


GZIP_MIN_BYTES = 2048
"""Bodies at least this long are sent gzip-compressed to clients that accept it."""


async def _cached(request: Request, snap: StudySnapshot, key: Any, encode: Callable[[], bytes]) -> Response:
    """A JSON response computed from the snapshot: encoded (and compressed) once per version."""
    headers = {"ETag": f'W/"{snap.version}"', "Vary": "Accept-Encoding"}
    body = await body_of(snap, key, encode, gzipped=False)
    if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        body = await body_of(snap, key, encode, gzipped=True)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/studies/{study_id}/pareto",
    response_model=ParetoOut,
    summary="Pareto front and ranks",
    responses=_ERRORS,
)
async def get_pareto(
    request: Request,
    study_id: str,
    _: ReadAccess,
    objectives: ObjectivesQuery = None,
    constraint: ConstraintQuery = None,
) -> Response:
    """Non-dominated sorting of the completed trials over the study's objectives (or any metrics
    asked for), under the study's constraints (or those asked for): the front (rank 0, best first
    by the first objective) and every ranked trial's rank and objective values."""
    snap = await snapshot_of(request.app.state.results, study_id)
    objs = _objectives(snap, objectives)
    cons = _constraints(snap, constraint)

    def encode() -> bytes:
        result = analysis.pareto(snap, objs, cons)
        head = dumps(
            {
                "objectives": [o.to_dict() | {"threshold": o.threshold} for o in objs],
                "constraints": [str(c) for c in cons],
                "points": {"trial": result["numbers"], "rank": result["ranks"]},
            }
        )
        values = snap.values_json(tuple(o.metric for o in objs), result["shown"].tolist())
        front = b",".join(snap.encoded(int(snap.numbers[p])) for p in result["front"])
        return head[:-2] + b',"values":' + values + b'},"front":[' + front + b"]}"

    # A large study's front and ranks run to hundreds of kB: encoded and compressed once per version.
    return await _cached(request, snap, ("pareto", tuple(objs), tuple(cons)), encode)


@router.get(
    "/studies/{study_id}/best",
    response_model=BestOut,
    summary="Best trial under constraints",
    responses=_ERRORS,
)
async def get_best(
    request: Request,
    study_id: str,
    _: ReadAccess,
    metric: Annotated[
        str | None,
        Query(
            description="`metric:min|max`, or one of the study's objectives "
            "by name; default: the study's first objective"
        ),
    ] = None,
    constraint: ConstraintQuery = None,
) -> Response:
    """The completed trial with the best value of a metric among those satisfying the
    constraints (the lowest trial number on a tie)."""
    snap = await snapshot_of(request.app.state.results, study_id)
    objs = _objectives(snap, [metric] if metric else None, path="query.metric")
    if metric and len(objs) != 1:
        raise invalid("query.metric", metric, "one metric as metric:min|max")
    objective = objs[0]
    cons = _constraints(snap, constraint)

    def encode() -> bytes:
        pos = analysis.best(snap, objective, cons)
        trial = None if pos is None else snap.trials[pos]
        return dumps(
            {
                "metric": objective.metric,
                "goal": objective.goal,
                "constraints": [str(c) for c in cons],
                "value": None if trial is None else float(trial.metrics[objective.metric]),
                "trial": None if trial is None else trial_json(trial),
            }
        )

    return await _cached(request, snap, ("best", objective, tuple(cons)), encode)


@router.get(
    "/studies/{study_id}/hypervolume",
    response_model=HypervolumeOut,
    summary="Hypervolume history by trial count",
    responses=_ERRORS,
)
async def get_hypervolume(
    request: Request,
    study_id: str,
    _: ReadAccess,
    objectives: ObjectivesQuery = None,
    constraint: ConstraintQuery = None,
) -> Response:
    """Normalized hypervolume (see docs/api.md) of the first *n* trials, for each *n* at which an
    eligible trial finished, over 1 to 3 objectives."""
    snap = await snapshot_of(request.app.state.results, study_id)
    objs = _objectives(snap, objectives, max_count=3)
    cons = _constraints(snap, constraint)

    def encode() -> bytes:
        result = analysis.hypervolume_history(snap, objs, cons)
        return dumps(
            {
                "objectives": [o.to_dict() | {"threshold": o.threshold} for o in objs],
                "constraints": [str(c) for c in cons],
                "normalization": result["normalization"],
                "history": result["history"],
            }
        )

    return await _cached(request, snap, ("hypervolume", tuple(objs), tuple(cons)), encode)


@router.get(
    "/studies/{study_id}/events",
    summary="Server-sent events as trials change",
    response_class=StreamingResponse,
    responses={
        **_ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": "`trial`, `study` and a final `end` event (see docs/api.md)",
        },
    },
)
def get_events(
    study_id: str,
    store: StoreDep,
    _: ReadAccess,
    since: Annotated[
        int | None, Query(ge=0, le=MAX_INT, description="Only changes after this event id")
    ] = None,
    last_event_id: Annotated[str | None, Header(description="Set by reconnecting SSE clients")] = None,
) -> StreamingResponse:
    """A `text/event-stream` of the study: every trial write (`trial`), state and count changes
    (`study`) and `end` when the study is over. Reconnect with `Last-Event-ID` to continue."""
    store.get_study(study_id)  # 404 before the stream starts
    cursor = since or 0
    if last_event_id is not None:
        try:
            cursor = max(cursor, int(last_event_id))
        except ValueError:
            raise invalid(
                "header.Last-Event-ID", last_event_id, "an event id (a non-negative integer)"
            ) from None
        if not 0 <= cursor <= MAX_INT:
            raise invalid(
                "header.Last-Event-ID", last_event_id, f"an event id (an integer in [0, {MAX_INT}])"
            )
    return StreamingResponse(
        study_events(store, study_id, since=cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
