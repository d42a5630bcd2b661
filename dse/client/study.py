"""A study as the service describes it (``GET /v1/studies/{id}``), as a small read-only object."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

FINISHED_STATES = ("COMPLETED", "FAILED", "CANCELLED")
"""Study states after which nothing changes any more."""


@dataclasses.dataclass(frozen=True)
class Study:
    """One study on the service. :attr:`data` keeps the whole response; the fields below are its
    most used members (see ``docs/api.md`` for the rest: ``objectives``, ``runs``, ...)."""

    id: str
    """The service's id of the study."""
    name: str
    """The spec's name."""
    state: str
    """QUEUED, RUNNING, CANCELLING, COMPLETED, FAILED or CANCELLED."""
    labels: Mapping[str, str]
    """The spec's labels."""
    trials: Mapping[str, Any]
    """``{"total": n, "by_state": {...}, "budget": max_trials or None}``."""
    progress: float | None
    """Finished trials / budget in [0, 1]; None without a budget."""
    elapsed_s: float | None
    """Seconds from start to finish (or to now)."""
    error: str | None
    """Why the study FAILED, if it did."""
    data: Mapping[str, Any]
    """The service's whole answer (a study summary or detail)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Study:
        """A study from the service's JSON (a summary from a listing or a detail)."""
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            state=str(data.get("state", "")),
            labels=dict(data.get("labels") or {}),
            trials=dict(data.get("trials") or {}),
            progress=data.get("progress"),
            elapsed_s=data.get("elapsed_s"),
            error=data.get("error"),
            data=dict(data),
        )

    @property
    def finished(self) -> bool:
        """True once the study is COMPLETED, FAILED or CANCELLED."""
        return self.state in FINISHED_STATES

    @property
    def spec(self) -> dict[str, Any]:
        """The study spec as stored (detail responses only; empty for a listing's summary)."""
        return dict(self.data.get("spec") or {})

    @property
    def best(self) -> list[dict[str, Any]]:
        """Best value per objective so far: ``[{"metric", "goal", "value", "trial"}]`` (detail only)."""
        return list(self.data.get("best") or [])

    def count(self, state: str) -> int:
        """Trials in ``state`` (PENDING, RUNNING, COMPLETED, FAILED, PRUNED, CANCELLED)."""
        return int((self.trials.get("by_state") or {}).get(state, 0))
