"""Server-sent events of a study: parsing ``text/event-stream`` and the event type.

The service sends ``trial`` events (one per write of a trial), ``study`` events (state or counts
changed) and one ``end`` event when the study is over; every event's ``id`` is the study version
it reflects, so reconnecting with ``Last-Event-ID: <last id>`` continues exactly after it, across
dropped connections and server restarts (``docs/api.md``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from typing import Any


@dataclasses.dataclass(frozen=True)
class StudyEvent:
    """One server-sent event of a study."""

    kind: str
    """``trial``, ``study`` or ``end``."""
    id: int | None
    """The event id (the study version it reflects); None for events without one."""
    data: dict[str, Any]
    """The event's JSON: a trial (``number``, ``state``, ``metrics``, ...), a study summary
    (``state``, ``trials``, ``progress``, ...) or ``{"state": ...}`` for ``end``."""


@dataclasses.dataclass
class SSEParser:
    """Incremental parser of an event stream (the WHATWG rules the service's stream needs:
    ``event``, ``id``, ``data`` and ``retry`` fields, comments, blank-line dispatch)."""

    retry_ms: int | None = None
    """The reconnection delay the server asked for (``retry:``), if any."""
    _event: str = ""
    _id: str | None = None
    _data: list[str] = dataclasses.field(default_factory=list)

    def feed(self, lines: Iterable[str]) -> Iterator[StudyEvent]:
        """Events completed by ``lines`` (without their line endings)."""
        for line in lines:
            if line == "":
                event = self._dispatch()
                if event is not None:
                    yield event
                continue
            if line.startswith(":"):
                continue  # a comment (keep-alive)
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
            elif name == "id":
                self._id = value
            elif name == "retry" and value.isdigit():
                self.retry_ms = int(value)

    def _dispatch(self) -> StudyEvent | None:
        kind, data, raw_id = self._event or "message", self._data, self._id
        self._event, self._data, self._id = "", [], None
        if not data:
            return None
        try:
            payload = json.loads("\n".join(data))
        except json.JSONDecodeError:
            payload = {"text": "\n".join(data)}
        event_id = int(raw_id) if raw_id is not None and raw_id.isdigit() else None
        return StudyEvent(kind, event_id, payload if isinstance(payload, dict) else {"value": payload})
