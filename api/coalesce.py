"""Request coalescing on the event loop: one thread-pool computation shared by the requests of
one server process that ask for the same thing at the same time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

__all__ = ["in_thread_fresh", "in_thread_once"]

_IN_FLIGHT: dict[tuple[int, Any], asyncio.Future] = {}


async def in_thread_once(key: Any, work: Callable[[], Any]) -> Any:
    """``work()`` in the thread pool, run once for all the requests of this event loop that ask
    for ``key`` while it runs: when a running study's new version arrives, fifty clients wait on
    one refresh instead of taking fifty threads to queue on its lock."""
    from starlette.concurrency import run_in_threadpool

    slot = (id(asyncio.get_running_loop()), key)
    future = _IN_FLIGHT.get(slot)
    if future is None:
        future = asyncio.ensure_future(run_in_threadpool(work))
        _IN_FLIGHT[slot] = future
        future.add_done_callback(lambda _: _IN_FLIGHT.pop(slot, None))
    return await asyncio.shield(future)  # a client that goes away does not cancel the others' work


_RUNNING: dict[tuple[int, Any], asyncio.Future] = {}
_NEXT: dict[tuple[int, Any], asyncio.Future] = {}


async def in_thread_fresh(key: Any, work: Callable[[], Any]) -> Any:
    """``work()`` (a read) in the thread pool, shared by the requests of this event loop that ask
    for ``key`` before it starts: a request never joins a read already under way (it could
    predate the request's own write) but the next one, which starts when that one ends."""
    from starlette.concurrency import run_in_threadpool

    slot = (id(asyncio.get_running_loop()), key)
    queued = _NEXT.get(slot)
    if queued is not None:
        return await asyncio.shield(queued)
    running = _RUNNING.get(slot)

    async def read() -> Any:
        if running is not None:
            with contextlib.suppress(BaseException):  # its outcome is its own requests' concern
                await asyncio.shield(running)
            if _NEXT.get(slot) is this:
                del _NEXT[slot]
            _RUNNING[slot] = this
        try:
            return await run_in_threadpool(work)
        finally:
            if _RUNNING.get(slot) is this:
                del _RUNNING[slot]

    this = asyncio.ensure_future(read())
    (_RUNNING if running is None else _NEXT)[slot] = this
    return await asyncio.shield(this)
