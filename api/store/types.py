"""What the store hands out: immutable views of studies and trials (no SQLAlchemy objects leak)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dse.results.records import TERMINAL_STATES, TrialState

TRIAL_STATES = tuple(s.value for s in TrialState)
"""Trial states, as the DSE engine writes them (PENDING -> RUNNING -> a finished state)."""

FINISHED_TRIAL_STATES = frozenset(s.value for s in TERMINAL_STATES)


@dataclass(frozen=True)
class StudyInfo:
    """A study as stored (spec, state, timestamps, lease)."""

    id: str
    """Service-assigned identifier."""
    name: str
    """The spec's name."""
    spec: dict[str, Any]
    """The validated spec in its dict form (what ``dse.spec.load_spec`` accepts)."""
    labels: dict[str, str]
    """Labels from the spec, for filtering."""
    state: str
    """Stored state: QUEUED, RUNNING, COMPLETED, FAILED or CANCELLED."""
    cancel_requested: bool
    """A cancel was asked for; a RUNNING study then shows as CANCELLING."""
    request_id: str | None
    """Client-supplied idempotency key of the submission, if any."""
    created_at: float
    """Submission time (seconds since the epoch)."""
    started_at: float | None
    """When a runner first took the study."""
    finished_at: float | None
    """When the study reached a terminal state."""
    error: str | None
    """Why the study failed, for FAILED studies."""
    runs: int
    """How many times a runner took the study (more than 1 after resumes)."""
    version: int
    """Bumped by every write to the study or its trials (cache key, event cursor)."""
    lease_owner: str | None = None
    """Identifier of the runner that holds the study, while one does."""
    lease_expires_at: float | None = None
    """When that runner's lease lapses unless renewed."""

    @property
    def display_state(self) -> str:
        """The state shown to users: CANCELLING while a running study is being cancelled."""
        if self.state in ("RUNNING", "QUEUED") and self.cancel_requested:
            return "CANCELLING"
        return self.state


@dataclass(frozen=True)
class TrialInfo:
    """A trial as stored: the fields of :class:`dse.results.TrialRecord` plus the write cursor."""

    number: int
    """0-based creation order of the trial in its study; stable across resumes."""
    trial_id: str
    """The engine's identifier of the trial (unique within the study)."""
    state: str
    """One of :data:`TRIAL_STATES`."""
    params: dict[str, Any]
    """Parameter values by parameter name."""
    metrics: dict[str, float]
    """Final metrics (mean over repeats) by name; units in the names."""
    metrics_std: dict[str, float]
    """Sample standard deviation of each metric over the repeats (two or more repeats)."""
    seeds: tuple[int, ...]
    """The seed of each repeat."""
    repeat_metrics: tuple[dict[str, float], ...]
    """Final metrics of each finished repeat."""
    created_at: float | None
    """Creation time (seconds since the epoch)."""
    started_at: float | None
    """Start time (seconds since the epoch)."""
    finished_at: float | None
    """End time (seconds since the epoch)."""
    node: str | None
    """The worker node that ran the trial."""
    error: str | None
    """Why the trial failed, was pruned or cancelled."""
    seq: int
    """The study version at this trial's last write."""
    measurements: tuple[dict[str, Any], ...] | None = field(default=None)
    """Per-epoch reports (``repeat``, ``epoch``, ``reported_at``, ``metrics``), when loaded."""
    details: tuple[Any, ...] | None = field(default=None)
    """Non-metric data of each repeat (``TrialRecord.details``), when loaded."""
    attempts: int = 0
    """Starts of the trial (1 + restarts after a lost worker and re-runs after an interruption)."""
