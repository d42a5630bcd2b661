"""Server-sent events of a study: one ``trial`` event per trial write, ``study`` events when the
study's state or counts change, and a final ``end`` event when the study is over.

The runner writes to the store from its own process, so the stream follows the store: it reads
the study's version (one primary-key lookup) every ``poll_s`` and, when it moved, the trials
written since the last event (``seq > cursor``). Each event's ``id`` is the study version it
reflects, so a client that reconnects with ``Last-Event-ID`` (or ``?since=``) misses nothing and
sees nothing twice.

Event stream (``text/event-stream``)::

    event: trial
    id: 17
    data: {"number": 3, "state": "COMPLETED", "metrics": {...}, ...}

    event: study
    id: 17
    data: {"id": "...", "state": "RUNNING", "trials": {...}, "progress": 0.4, ...}

    event: end
    id: 42
    data: {"state": "COMPLETED"}
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from api.encode import trial_json
from api.results_views import study_summary
from api.store import SqlStore
from api.store.models import TERMINAL_STUDY_STATES
from dse.errors import NotFoundError

KEEPALIVE_S = 15.0
"""Seconds between comment lines that keep idle connections (and proxies) open."""


def format_event(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One SSE message."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    lines.extend(f"data: {line}" for line in payload.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode()


async def study_events(
    store: SqlStore, study_id: str, *, since: int = 0, poll_s: float = 0.5, retry_ms: int = 2000
) -> AsyncIterator[bytes]:
    """The event stream of one study, from version ``since`` on, until the study is over."""
    yield f"retry: {retry_ms}\n\n".encode()
    cursor = since
    last_version: int | None = None
    last_summary: dict[str, Any] | None = None
    last_sent = time.monotonic()
    while True:
        try:
            version, _state = await run_in_threadpool(store.study_version, study_id)
        except NotFoundError:
            yield format_event("end", {"state": "DELETED"}, cursor)
            return
        if version != last_version:
            try:
                # The study first: every trial written up to its version is then in the list.
                study = await run_in_threadpool(store.get_study, study_id)
                trials = await run_in_threadpool(store.list_trials, study_id, since=cursor)
                counts = await run_in_threadpool(store.trial_counts, study_id)
            except NotFoundError:
                yield format_event("end", {"state": "DELETED"}, cursor)
                return
            for t in sorted(trials, key=lambda t: t.seq):
                yield format_event("trial", trial_json(t), t.seq)
                cursor = max(cursor, t.seq)
            cursor = max(cursor, study.version)
            summary = study_summary(study, counts)
            comparable = {k: v for k, v in summary.items() if k != "elapsed_s"}
            if comparable != last_summary:
                yield format_event("study", summary, cursor)
                last_summary = comparable
            last_version = study.version
            last_sent = time.monotonic()
            if study.state in TERMINAL_STUDY_STATES:
                yield format_event("end", {"state": study.display_state}, cursor)
                return
        elif time.monotonic() - last_sent >= KEEPALIVE_S:
            yield b": keepalive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(poll_s)
