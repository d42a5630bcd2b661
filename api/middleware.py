"""ASGI middleware: the request body size limit, and text no store can hold in the URL."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON, TYPE_PREFIX


class BodyTooLarge(Exception):
    """The request body exceeded the configured limit while being read."""


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413: at once from ``Content-Length``, or
    while a chunked body streams in (the handler never sees more than the limit)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._reject(scope, send, declared)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(scope, send, seen)

    async def _reject(self, scope: Scope, send: Send, size: int) -> None:
        detail = (
            f"body: got {size} bytes; accepted: at most {self.max_bytes} bytes"
            if size >= 0
            else "content-length: not a number"
        )
        body: dict[str, Any] = {
            "type": f"{TYPE_PREFIX}body-too-large",
            "title": "Body too large",
            "status": 413,
            "detail": detail,
            "instance": scope.get("path", ""),
        }
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class UrlTextMiddleware:
    """Refuse with 422 a path or query parameter holding text that a store cannot hold (a NUL
    character, a lone surrogate: PostgreSQL refuses both), naming the parameter. Without it such
    a value reaches the database, which fails the same way on every retry."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            bad = self._bad_part(scope)
            if bad is not None:
                await self._reject(scope, send, *bad)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _bad_part(scope: Scope) -> tuple[str, str] | None:
        from api.engine import text_problem

        why = text_problem(scope.get("path", ""))
        if why is not None:
            return "path", why
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True, errors="surrogateescape"):
            if (why := text_problem(name)) is not None:
                return "query (a parameter name)", why
            if (why := text_problem(value)) is not None:
                return f"query.{name}", why
        return None

    async def _reject(self, scope: Scope, send: Send, field: str, why: str) -> None:
        message = f"{why}; accepted: text without NUL characters or lone surrogates"
        body = {
            "type": f"{TYPE_PREFIX}invalid-request",
            "title": "Invalid request",
            "status": 422,
            "detail": f"{field}: {message}",
            "instance": scope.get("path", ""),
            "errors": [{"path": field, "message": message}],
        }
        payload = json.dumps(body).encode()  # ASCII: NULs and surrogates are escaped
        await send({
            "type": "http.response.start",
            "status": 422,
            "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(payload)).encode())],
        })
        await send({"type": "http.response.body", "body": payload})
