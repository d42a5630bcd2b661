"""Errors as RFC 9457 problem details: the one place that maps errors to HTTP status codes.

Every error response of the service has ``Content-Type: application/problem+json`` and a body
``{"type", "title", "status", "detail", "instance"}``, plus ``errors`` (a list of
``{"path", "message"}`` with dotted field paths) for invalid input. The mapping:

=================================================  ======  ===============================
raised                                             status  type
=================================================  ======  ===============================
``dse.errors.SpecError``                           422     ``urn:analog-dse:problem:invalid-spec``
request parameters failing validation              422     ``...:invalid-request``
``api.store.IdempotencyError``                     422     ``...:request-id-reuse``
``dse.errors.NotFoundError``                       404     ``...:not-found``
``dse.errors.ConflictError``                       409     ``...:conflict``
other ``dse.errors.DSEError``                      400     ``...:bad-request``
missing / unknown token                            401     ``...:unauthorized``
read-only token on a write                         403     ``...:forbidden``
body over the size limit                           413     ``...:body-too-large``
database unreachable (SQLAlchemy ``DBAPIError``)   503     ``...:store-unavailable``
HTTP errors of the framework (404 route, 405)      status  ``about:blank``
anything else                                      500     ``...:internal`` (no internals leak)
=================================================  ======  ===============================
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.store import IdempotencyError
from dse.errors import ConflictError, DSEError, NotFoundError, SpecError

log = logging.getLogger("api.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:analog-dse:problem:"


class ProblemError(Exception):
    """An error the service raises on purpose, with its status and problem type."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})


def invalid(path: str, value: Any, accepted: str) -> ProblemError:
    """A 422 for one bad request field: names the dotted path, the value and what is accepted."""
    message = f"got {value!r}; accepted: {accepted}"
    return ProblemError(
        422, "invalid-request", f"{path}: {message}", errors=[{"path": path, "message": message}]
    )


def problem(
    status: int,
    slug: str | None,
    detail: str,
    *,
    instance: str | None = None,
    errors: Iterable[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem-details response (``slug`` None: ``about:blank`` with the status phrase)."""
    body: dict[str, Any] = {
        "type": f"{TYPE_PREFIX}{slug}" if slug else "about:blank",
        "title": _title(status, slug),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    errors = list(errors)
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def _title(status: int, slug: str | None) -> str:
    if slug is None:
        try:
            return HTTPStatus(status).phrase
        except ValueError:
            return "Error"
    return slug.replace("-", " ").capitalize()


def dotted(loc: Sequence[Any]) -> str:
    """A validation location ``("body", "parameters", 2, "target")`` as
    ``body.parameters[2].target``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on ``app``."""

    def _instance(request: Request) -> str:
        return request.url.path

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem(
            exc.status,
            exc.slug,
            exc.detail,
            instance=_instance(request),
            errors=exc.errors,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            path = dotted(err.get("loc", ()))
            value = err.get("input")
            message = f"{err.get('msg', 'invalid')}; got {_short(value)}"
            errors.append({"path": path, "message": message})
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors) or "invalid request"
        return problem(422, "invalid-request", detail, instance=_instance(request), errors=errors)

    @app.exception_handler(IdempotencyError)
    async def _idempotency(request: Request, exc: IdempotencyError) -> JSONResponse:
        return problem(
            422,
            "request-id-reuse",
            str(exc),
            instance=_instance(request),
            errors=[{"path": "header.Idempotency-Key", "message": str(exc)}],
        )

    @app.exception_handler(SpecError)
    async def _spec(request: Request, exc: SpecError) -> JSONResponse:
        return problem(
            422,
            "invalid-spec",
            str(exc),
            instance=_instance(request),
            errors=[{"path": exc.path, "message": exc.reason}],
        )

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return problem(404, "not-found", str(exc), instance=_instance(request))

    @app.exception_handler(ConflictError)
    async def _conflict(request: Request, exc: ConflictError) -> JSONResponse:
        return problem(409, "conflict", str(exc), instance=_instance(request))

    @app.exception_handler(DSEError)
    async def _dse(request: Request, exc: DSEError) -> JSONResponse:
        return problem(400, "bad-request", str(exc), instance=_instance(request))

    @app.exception_handler(DBAPIError)
    async def _store(request: Request, exc: DBAPIError) -> JSONResponse:
        log.error("store error on %s: %s", request.url.path, exc)
        return problem(
            503,
            "store-unavailable",
            "the study store is unavailable; retry later",
            instance=_instance(request),
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # The router stops at the first route whose path matches: list every route's methods.
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem(exc.status_code, None, detail, instance=_instance(request), headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500, "internal", "internal error; the service log has the details", instance=_instance(request)
        )


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's (what a 405's ``Allow``
    header lists), sorted."""
    app = request.app
    table = getattr(app.state, "allow_table", None)
    if table is None:
        table = app.state.allow_table = _route_table(app.router.routes, "")
    path = request.scope.get("path", "")
    return sorted({m for regex, methods in table if regex.match(path) for m in methods})


def _route_table(routes: Any, prefix: str) -> list[tuple[Any, frozenset[str]]]:
    """(path regex, methods) of every route, included routers' routes under their prefix."""
    from starlette.routing import compile_path

    out: list[tuple[Any, frozenset[str]]] = []
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router
        if inner is not None:
            out += _route_table(inner.routes, prefix + getattr(route.include_context, "prefix", ""))
        elif getattr(route, "methods", None) and isinstance(getattr(route, "path", None), str):
            out.append((compile_path(prefix + route.path)[0], frozenset(route.methods)))
    return out


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
