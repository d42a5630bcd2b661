"""HTTP to the study service: bearer token, problem details as typed errors, and retries.

A call is *safe to retry* when repeating it cannot change what happens on the server: every
``GET``, and a submit carrying an ``Idempotency-Key`` (the service returns the first submission's
study for a repeated key). Only safe calls are retried, with exponential backoff (honouring
``Retry-After``), after a connection error, a timeout, 429 or 503. Cancel and delete are never
retried: the error reaches the caller, who knows whether repeating makes sense.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from dse.client.errors import ClientConfigError, ServerUnreachableError, error_from_problem

RETRY_STATUSES = (429, 503)
"""Statuses after which a safe call is retried."""


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How safe calls are retried: attempt ``n`` (1-based) waits
    ``min(max_delay_s, base_delay_s * 2**(n-1))`` times a random factor in [0.5, 1], or the
    server's ``Retry-After`` when it gives one (capped at ``max_delay_s``)."""

    attempts: int = 5
    """Tries in all (1: no retry)."""
    base_delay_s: float = 0.5
    """Delay before the first retry (before jitter)."""
    max_delay_s: float = 10.0
    """Longest delay between two tries."""

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ClientConfigError(f"retry.attempts: got {self.attempts!r}; accepted: an integer >= 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ClientConfigError(
                f"retry delays: got base_delay_s={self.base_delay_s!r}, max_delay_s={self.max_delay_s!r}; "
                "accepted: numbers >= 0"
            )

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        if retry_after_s is not None:
            return min(self.max_delay_s, retry_after_s)
        return min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


NO_RETRY = RetryPolicy(attempts=1)


class Transport:
    """An ``httpx.Client`` bound to one service, turning error responses into typed errors."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout_s: float,
        retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ClientConfigError(f"url: got {url!r}; accepted: an http:// or https:// URL of a `dse serve`")
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "analog-dse-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.retry = retry
        self.timeout_s = timeout_s
        self._sleep = sleep
        self.http = http or httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        if http is not None:
            self.http.headers.update(headers)

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        safe: bool,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (retried per :attr:`retry` when ``safe``); raise on an error status."""
        policy = self.retry if safe else NO_RETRY
        url = self.url + path
        for attempt in range(1, policy.attempts + 1):
            try:
                response = self.http.request(
                    method, path, params=params, json=json, content=content, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt < policy.attempts:
                    self._sleep(policy.delay_s(attempt))
                    continue
                tries = f" after {attempt} tries" if attempt > 1 else ""
                raise ServerUnreachableError(
                    f"{method} {url}: no answer from the service{tries} ({type(exc).__name__}: {exc}); "
                    "is `dse serve` running there?"
                ) from exc
            if response.status_code < 400:
                return response
            error = error_from_problem(
                response.status_code,
                response.content,
                method=method,
                url=url,
                retry_after=response.headers.get("Retry-After"),
            )
            if response.status_code in RETRY_STATUSES and attempt < policy.attempts:
                self._sleep(policy.delay_s(attempt, getattr(error, "retry_after_s", None)))
                continue
            raise error
        raise ServerUnreachableError(f"{method} {url}: no attempt made")  # attempts >= 1: not reached
