"""Retries and problem details, against a scripted HTTP server on a loopback port (stdlib
``http.server`` answering a fixed sequence of statuses): safe calls are retried after 429, 503
and connection errors with backoff (honouring ``Retry-After``), non-idempotent ones never."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dse.client import (
    Client,
    ClientConfigError,
    InvalidRequestError,
    RetryPolicy,
    ServerError,
    ServerUnreachableError,
    ServiceUnavailableError,
    StudyConflictError,
)
from dse.client.events import SSEParser

STUDY = {"id": "s1", "name": "x", "state": "QUEUED", "labels": {}, "trials": {"total": 0, "by_state": {}},
         "progress": None, "elapsed_s": None, "error": None}


class Scripted:
    """An HTTP server that answers each request with the next (status, body, headers) of a script
    and records (method, path, headers) of every request."""

    def __init__(self, script: list[tuple[int, Any, dict[str, str]]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests.append((self.command, self.path, dict(self.headers)))
                status, body, headers = owner.script.pop(0) if owner.script else (500, {"detail": "script over"}, {})
                data = json.dumps(body).encode()
                self.send_response(status)
                kind = "application/json" if status < 400 else "application/problem+json"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def make(*script: tuple[int, Any, dict[str, str]]) -> Scripted:
        servers.append(Scripted(list(script)))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def client_of(url: str, delays: list[float], attempts: int = 4) -> Client:
    client = Client(url, token="t", retry=RetryPolicy(attempts=attempts, base_delay_s=0.01, max_delay_s=5.0))
    client._t._sleep = delays.append  # record the backoff instead of sleeping
    return client


def unavailable(retry_after: str | None = None) -> tuple[int, Any, dict[str, str]]:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return 503, {"type": "urn:analog-dse:problem:store-unavailable", "title": "Store unavailable", "status": 503,
                 "detail": "the study store is unavailable; retry later"}, headers


def test_safe_calls_are_retried_after_503_and_429_honouring_retry_after(scripted: Any) -> None:
    server = scripted(unavailable("3"), (429, {"detail": "slow down"}, {}), (200, STUDY, {}))
    delays: list[float] = []
    with client_of(server.url, delays) as client:
        assert client.study("s1").id == "s1"
    assert len(server.requests) == 3
    assert delays[0] == 3.0  # the server's Retry-After
    assert 0.005 <= delays[1] <= 0.02  # base 0.01 s · 2^1 with jitter in [0.5, 1]
    assert all(h.get("Authorization") == "Bearer t" for _, _, h in server.requests)


def test_a_retried_submit_sends_the_same_idempotency_key(scripted: Any) -> None:
    server = scripted(unavailable(), unavailable(), (201, STUDY, {}))
    with client_of(server.url, []) as client:
        assert client.submit({"name": "x"}).id == "s1"
    keys = {h.get("Idempotency-Key") for _, _, h in server.requests}
    assert len(server.requests) == 3 and len(keys) == 1 and None not in keys
    server2 = scripted((201, STUDY, {}), (201, STUDY, {}))
    with client_of(server2.url, []) as client:
        client.submit({"name": "x"})
        client.submit({"name": "x"})
    assert len({h["Idempotency-Key"] for _, _, h in server2.requests}) == 2  # one key per call


def test_cancel_and_delete_are_never_retried(scripted: Any) -> None:
    server = scripted(unavailable(), unavailable())
    delays: list[float] = []
    with client_of(server.url, delays) as client:
        with pytest.raises(ServiceUnavailableError) as info:
            client.cancel("s1")
        assert info.value.retry_after_s is None and info.value.kind == "store-unavailable"
        with pytest.raises(ServiceUnavailableError):
            client.delete("s1")
    assert [m for m, _, _ in server.requests] == ["POST", "DELETE"] and delays == []


def test_errors_that_a_retry_cannot_fix_are_raised_at_once(scripted: Any) -> None:
    problem = {"type": "urn:analog-dse:problem:invalid-request", "title": "Invalid request", "status": 422,
               "detail": "query.limit: got 0", "instance": "/v1/studies",
               "errors": [{"path": "query.limit", "message": "got 0; accepted: 1..1000"}]}
    server = scripted((422, problem, {}), (409, {"detail": "already COMPLETED"}, {}), (500, {"detail": "bug"}, {}))
    delays: list[float] = []
    with client_of(server.url, delays) as client:
        with pytest.raises(InvalidRequestError) as info:
            client.studies()
        assert info.value.path == "query.limit" and info.value.errors[0].message.endswith("1..1000")
        with pytest.raises(StudyConflictError, match="already COMPLETED"):
            client.study("s1")
        with pytest.raises(ServerError):
            client.study("s1")
    assert len(server.requests) == 3 and delays == []


def test_no_server_is_unreachable_after_the_retries() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    delays: list[float] = []
    with client_of(f"http://127.0.0.1:{port}", delays, attempts=3) as client:
        with pytest.raises(ServerUnreachableError, match="after 3 tries"):
            client.study("s1")
        assert len(delays) == 2
        with pytest.raises(ServerUnreachableError):
            client.cancel("s1")  # not retried: no further delay
        assert len(delays) == 2


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSE_SERVER", raising=False)
    with pytest.raises(ClientConfigError, match="DSE_SERVER"):
        Client()
    with pytest.raises(ClientConfigError, match="http:// or https://"):
        Client("localhost:8000")
    monkeypatch.setenv("DSE_SERVER", "http://127.0.0.1:1")
    monkeypatch.setenv("DSE_TOKEN", "from-env")
    client = Client()
    assert client.url == "http://127.0.0.1:1"
    assert client._t.http.headers["Authorization"] == "Bearer from-env"
    with pytest.raises(ClientConfigError, match="study_id"):
        client.study("a/b")
    with pytest.raises(ClientConfigError, match="attempts"):
        RetryPolicy(attempts=0)
    client.close()


def test_event_stream_parsing() -> None:
    parser = SSEParser()
    lines = ["retry: 2000", "", ": keepalive", "", "event: trial", "id: 7", 'data: {"number": 3,',
             'data: "state": "COMPLETED"}', "", "event: end", "id: 9", 'data: {"state": "COMPLETED"}', ""]
    events = list(parser.feed(lines))
    assert parser.retry_ms == 2000
    assert [(e.kind, e.id, e.data) for e in events] == [
        ("trial", 7, {"number": 3, "state": "COMPLETED"}), ("end", 9, {"state": "COMPLETED"})]
