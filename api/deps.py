"""FastAPI dependencies and their ``Annotated`` aliases (settings, store, results cache, auth).

They are ``async`` because none of them blocks: FastAPI then runs them on the event loop instead
of handing each to the thread pool (a measurable cost per request under load).

Nothing here is a module-level global: the settings are the app's (``create_app(settings)``, the
environment's cached :func:`api.settings.get_settings` by default), the store and caches live on
``app.state``, created by the app factory's lifespan; tests may swap any of these dependencies
with ``app.dependency_overrides``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ProblemError
from api.settings import Settings
from api.store import SqlStore


async def app_settings(request: Request) -> Settings:
    """The settings the app was created with (``create_app(settings)``; the environment's,
    :func:`api.settings.get_settings`, by default)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def get_store(request: Request) -> SqlStore:
    """The app's store (opened by the lifespan from ``settings.database_url``)."""
    return request.app.state.store


StoreDep = Annotated[SqlStore, Depends(get_store)]

_bearer = HTTPBearer(
    auto_error=False,
    description="A read-only or read-write token from the "
    "service configuration (DSE_READ_TOKENS / DSE_WRITE_TOKENS).",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the access level granted by the presented token (or by anonymity)."""

    access: Literal["read", "write"]
    """``read`` for read-only tokens, ``write`` for read-write ones."""
    token_index: int | None
    """Position of the token in its configured list (for logs; never the token itself)."""


def _lookup(token: str, tokens: tuple[str, ...]) -> int | None:
    found = None
    for i, candidate in enumerate(tokens):
        # Constant-time comparison against every token, so timing reveals nothing.
        if hmac.compare_digest(token.encode(), candidate.encode()):
            found = i
    return found


async def authenticate(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller's access level; 401 without a (known) token unless anonymous access is on."""
    if credentials is None or not credentials.credentials:
        if settings.anonymous_access != "none":
            return Principal(settings.anonymous_access, None)
        raise ProblemError(
            401,
            "unauthorized",
            "missing bearer token; send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="dse"'},
        )
    token = credentials.credentials
    index = _lookup(token, settings.write_tokens)
    if index is not None:
        return Principal("write", index)
    index = _lookup(token, settings.read_tokens)
    if index is not None:
        return Principal("read", index)
    raise ProblemError(
        401,
        "unauthorized",
        "unknown bearer token",
        headers={"WWW-Authenticate": 'Bearer realm="dse", error="invalid_token"'},
    )


async def require_read(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """Any valid token (read-only or read-write)."""
    return principal


async def require_write(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """A read-write token; 403 for a read-only one."""
    if principal.access != "write":
        raise ProblemError(
            403, "forbidden", "this token is read-only; the operation needs a read-write token"
        )
    return principal


ReadAccess = Annotated[Principal, Depends(require_read)]
WriteAccess = Annotated[Principal, Depends(require_write)]
