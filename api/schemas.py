"""Response bodies of the API (pydantic models: they make the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

MAX_INT = 2**31 - 1
"""Largest trial number, offset or event id accepted (the store's integer columns)."""

MAX_PAGE_SIZE = 1000
"""Largest ``limit`` of the paginated endpoints."""


def iso(ts: float | None) -> str | None:
    """Seconds since the epoch as an RFC 3339 UTC timestamp (``2026-01-31T12:00:00.5Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = Field(description="URI naming the kind of problem (about:blank: see the status)")
    title: str = Field(description="Short summary of the kind of problem")
    status: int = Field(description="HTTP status code")
    detail: str = Field(description="What went wrong in this request")
    instance: str | None = Field(default=None, description="The request path")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For invalid input: [{path, message}] with dotted field paths"
    )


class BestValue(BaseModel):
    """The best trial found so far for one objective (under the study's constraints)."""

    metric: str
    goal: str
    value: float
    trial: int = Field(description="Trial number")


class TrialCounts(BaseModel):
    """Trials of a study by state."""

    total: int
    by_state: dict[str, int]
    budget: int | None = Field(description="The spec's maximum number of trials, if bounded")


class StudySummary(BaseModel):
    """A study in a listing."""

    id: str
    name: str
    labels: dict[str, str]
    state: str = Field(description="QUEUED, RUNNING, CANCELLING, COMPLETED, FAILED or CANCELLED")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    elapsed_s: float | None = Field(description="Seconds from start to finish (or to now)")
    trials: TrialCounts
    progress: float | None = Field(description="Finished trials / budget, 0-1 (None without a budget)")
    error: str | None = None


class StudyDetail(StudySummary):
    """A study with its spec and the best trial per objective so far."""

    spec: dict[str, Any]
    objectives: list[dict[str, Any]]
    metrics: list[str] = Field(description="Names of every metric the trials reported")
    best: list[BestValue]
    runs: int = Field(description="How many times a runner took the study (1 + resumes)")
    request_id: str | None


class StudyPage(BaseModel):
    """One page of studies."""

    items: list[StudySummary]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class MeasurementOut(BaseModel):
    """One per-epoch report."""

    repeat: int
    epoch: int
    reported_at: datetime | None
    metrics: dict[str, float | str]


class TrialOut(BaseModel):
    """One trial."""

    number: int
    trial_id: str
    state: str
    params: dict[str, Any]
    metrics: dict[str, float | str | None] = Field(description="Mean over repeats; NaN/Infinity as strings")
    metrics_std: dict[str, float | str | None]
    seeds: list[int]
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    node: str | None
    error: str | None
    attempts: int = Field(0, description="Starts of the trial: 1 for a trial that ran once, one more for "
                                         "each restart after its worker was lost and each re-run after "
                                         "its study was interrupted")


class TrialDetail(TrialOut):
    """One trial with its per-repeat metrics and per-epoch measurements."""

    repeat_metrics: list[dict[str, float | str | None]]
    measurements: list[MeasurementOut]
    details: list[dict[str, Any] | None] = Field(
        default_factory=list,
        description="Non-metric data of each repeat: under 'cost' the per-layer, per-component cost "
                    "breakdown (see docs/cost-model.md), under 'training_cost' that of pulsed training, "
                    "under 'training' how its network was trained")
    training: list[dict[str, Any] | None] = Field(
        default_factory=list,
        description="Per repeat: training_key, reused_training (the stored model of an earlier trial was "
                    "loaded) and trained_by (study, trial_id, repeat of the trial that trained it)")


class TrialPage(BaseModel):
    """One page of trials."""

    items: list[TrialOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None
    sort: str
    order: str


class Objective(BaseModel):
    """A metric and its goal."""

    metric: str
    goal: str = Field(description="minimize or maximize")
    threshold: float | None = None


class ParetoPoints(BaseModel):
    """Every completed trial with finite objective values, as parallel lists."""

    trial: list[int] = Field(description="Trial numbers")
    rank: list[int] = Field(description="Non-dominated rank (0 = front); -1 = violates a constraint")
    values: list[list[float]] = Field(description="Objective values per trial, in the objectives' order")


class ParetoOut(BaseModel):
    """The Pareto front of a study over some objectives, and every trial's rank."""

    objectives: list[Objective]
    constraints: list[str]
    points: ParetoPoints
    front: list[TrialOut] = Field(description="Rank-0 trials, best first by the first objective")


class BestOut(BaseModel):
    """The best trial for a metric under constraints."""

    metric: str
    goal: str
    constraints: list[str]
    value: float | None
    trial: TrialOut | None = Field(description="None when no trial satisfies the constraints")


class HypervolumePoint(BaseModel):
    """The hypervolume of the front of the first ``trials`` finished trials."""

    trials: int = Field(description="Number of trials (by trial number) counted")
    hypervolume: float = Field(description="Normalized hypervolume of their eligible trials, in [0, 1]")


class HypervolumeOut(BaseModel):
    """Hypervolume history by trial count."""

    objectives: list[Objective]
    constraints: list[str]
    normalization: dict[str, Any] = Field(
        description="goals, ideal and reference per objective, in the minimized orientation "
        "(maximized metrics negated): z = (y - ideal) / (reference - ideal)"
    )
    history: list[HypervolumePoint]
