"""Errors of the study service client, grouped by what the caller should do about them.

Every error the service answers is an RFC 9457 problem (``docs/api.md``); :func:`error_from_problem`
turns it into one of the classes below, which keep the server's ``type``, ``title``, ``detail``
and, for invalid input, ``errors`` (a list of :class:`FieldError` naming the dotted path of the
field, e.g. ``objectives[0].goal``, and what is accepted). The classes also derive from the
engine's own errors (:class:`~dse.errors.NotFoundError`, :class:`~dse.errors.ConflictError`,
``ValueError`` for invalid input), so code written against a local study catches them too.

===========================================  ======  =================================================
class                                        status  what to do
===========================================  ======  =================================================
:class:`InvalidRequestError`                 422     fix the input (``errors[].path`` names the field)
:class:`BadRequestError`                     400     fix the request
:class:`AuthenticationError`                 401     pass a (known) token: ``token=`` / ``DSE_TOKEN``
:class:`PermissionDeniedError`               403     use a read-write token
:class:`StudyNotFoundError`                  404     check the study id
:class:`StudyConflictError`                  409     the study's state forbids it (finished, running)
:class:`RateLimitedError`                    429     retry later (retried automatically when safe)
:class:`ServiceUnavailableError`             503     retry later (retried automatically when safe)
:class:`ServerError`                         5xx     a bug in the service; see its log
:class:`ServerUnreachableError`              —       no answer (network, server down); retry later
===========================================  ======  =================================================
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from dse.errors import ConflictError, DSEError, NotFoundError


class ClientError(DSEError):
    """Base class of every error of :mod:`dse.client`."""


class ClientConfigError(ClientError, ValueError):
    """The client is misconfigured (no server URL, a bad argument); fix the call."""


class RetryableError(ClientError):
    """The service could not answer now; the same call may succeed later."""


class ServerUnreachableError(RetryableError, ConnectionError):
    """No answer from the service (connection refused or dropped, timeout), after the retries
    allowed for the call."""


class WaitTimeoutError(ClientError, TimeoutError):
    """:meth:`Client.wait` gave up before the study finished (the study goes on)."""


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One invalid field of a request, as the service names it."""

    path: str
    """Dotted path of the field: ``objectives[0].goal``, ``query.limit``, ``header.Idempotency-Key``."""
    message: str
    """What was wrong and what is accepted."""


class ApiError(ClientError):
    """The service answered with an error (a problem-details response)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str = "about:blank",
        title: str = "",
        instance: str | None = None,
        errors: Sequence[FieldError] = (),
        method: str = "",
        url: str = "",
        body: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        """HTTP status code."""
        self.type = type
        """The problem type URI, e.g. ``urn:analog-dse:problem:invalid-spec``."""
        self.title = title
        """Short summary of the kind of problem."""
        self.detail = detail
        """What went wrong in this request (the server's words)."""
        self.instance = instance
        """The request path the problem is about."""
        self.errors = tuple(errors)
        """For invalid input: each bad field's path and message."""
        self.method = method
        self.url = url
        self.body = dict(body or {})
        """The problem body as received."""
        where = f" ({method} {url})" if method else ""
        super().__init__(f"{status} {title or 'error'}: {detail}{where}")

    @property
    def path(self) -> str | None:
        """The first invalid field's path, if the problem names one."""
        return self.errors[0].path if self.errors else None

    @property
    def kind(self) -> str:
        """The problem type without its prefix: ``invalid-spec``, ``not-found``, ..."""
        return self.type.rsplit(":", 1)[-1]


class BadRequestError(ApiError, ValueError):
    """400: the service refused the request as it stands."""


class InvalidRequestError(ApiError, ValueError):
    """422: an invalid spec, query parameter or header; :attr:`errors` names each field."""


class AuthenticationError(ApiError):
    """401: no token, or one the service does not know."""


class PermissionDeniedError(ApiError):
    """403: a read-only token on a write."""


class StudyNotFoundError(ApiError, NotFoundError):
    """404: no such study (or trial)."""


class StudyConflictError(ApiError, ConflictError):
    """409: the study's state forbids the operation (cancel a finished study, delete a running one)."""


class RateLimitedError(ApiError, RetryableError):
    """429: too many requests; ``retry_after_s`` says when to come back, if the service said."""

    retry_after_s: float | None = None


class ServiceUnavailableError(ApiError, RetryableError):
    """503: the service or its store cannot answer now."""

    retry_after_s: float | None = None


class ServerError(ApiError):
    """500 and other 5xx: a bug in the service (its log has the details)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: StudyNotFoundError,
    409: StudyConflictError,
    413: BadRequestError,
    415: BadRequestError,
    422: InvalidRequestError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def error_from_problem(
    status: int, content: bytes, *, method: str = "", url: str = "", retry_after: str | None = None
) -> ApiError:
    """The :class:`ApiError` subclass for a response's status, with its problem details."""
    body: dict[str, Any] = {}
    try:
        parsed = json.loads(content.decode("utf-8")) if content else {}
        if isinstance(parsed, dict):
            body = parsed
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    detail = body.get("detail")
    if not isinstance(detail, str) or not detail:
        text = content.decode("utf-8", "replace").strip()
        detail = text[:500] if text else "no details in the response"
    errors = [
        FieldError(str(e.get("path", "")), str(e.get("message", "")))
        for e in body.get("errors") or ()
        if isinstance(e, Mapping)
    ]
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    err = cls(
        status,
        detail,
        type=str(body.get("type", "about:blank")),
        title=str(body.get("title", "")),
        instance=body.get("instance"),
        errors=errors,
        method=method,
        url=url,
        body=body,
    )
    if isinstance(err, (RateLimitedError, ServiceUnavailableError)):
        err.retry_after_s = parse_retry_after(retry_after)
    return err


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (dates are ignored: None)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
