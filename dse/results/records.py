"""Trial records: what a study knows about one trial, and the sink the runner writes them to.

A :class:`TrialRecord` is immutable; a trial's life is a sequence of records for the same
``trial_id`` whose :class:`TrialState` only moves forward::

    PENDING -> RUNNING -> COMPLETED | FAILED | PRUNED | CANCELLED

(``PENDING`` may also go straight to a terminal state, e.g. a trial cancelled before it started).
COMPLETED, FAILED and PRUNED never change again. CANCELLED is final too, except that a trial
its study's interruption or cancel left CANCELLED is re-run under its own number when the study
resumes (CANCELLED -> PENDING | RUNNING): a resumed study keeps one row per trial and its
budget exact. :func:`check_transition` enforces this and every store (:class:`MemorySink`,
:class:`dse.results.ParquetResults`, the API's SQL store) calls it.

Repeats: a trial runs its configuration once per seed. ``repeat_metrics`` holds each repeat's
final metrics; ``metrics`` and ``metrics_std`` are derived from them by :func:`aggregate_repeats`
(mean, and sample standard deviation with ``ddof = 1`` over the repeats that reported the metric;
no std entry when fewer than two did).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from dse.errors import ConflictError


class TrialState(enum.StrEnum):
    """Where a trial is in its life; values only ever move forward (see the module docstring)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PRUNED = "PRUNED"
    CANCELLED = "CANCELLED"

    @property
    def is_finished(self) -> bool:
        """True for the terminal states (COMPLETED, FAILED, PRUNED, CANCELLED)."""
        return self in TERMINAL_STATES

    def __str__(self) -> str:
        return self.value


TERMINAL_STATES = frozenset({TrialState.COMPLETED, TrialState.FAILED, TrialState.PRUNED, TrialState.CANCELLED})
"""States a trial's run ends in."""

EVALUATED_STATES = frozenset({TrialState.COMPLETED, TrialState.FAILED, TrialState.PRUNED})
"""States a trial never leaves: it was evaluated (a CANCELLED trial was not; it is re-run when
its study resumes)."""

_ORDER = {TrialState.PENDING: 0, TrialState.RUNNING: 1}


def as_state(value: TrialState | str, path: str = "state") -> TrialState:
    """``value`` as a :class:`TrialState` (accepts the state's name, any case)."""
    if isinstance(value, TrialState):
        return value
    if isinstance(value, str) and value.upper() in TrialState.__members__:
        return TrialState[value.upper()]
    raise ValueError(f"{path}: got {value!r}; accepted: one of {', '.join(s.value for s in TrialState)}")


def check_transition(old: TrialState, new: TrialState, trial_id: str = "") -> None:
    """Raise :class:`ConflictError` unless a trial may go from ``old`` to ``new``.

    Staying in the same state is allowed (a RUNNING trial gains measurements; rewriting a
    finished record is idempotent); moving backwards or between terminal states is not, except
    that a CANCELLED trial may be re-opened (PENDING or RUNNING) by the resume that re-runs it.
    """
    if old == new:
        return
    if old is TrialState.CANCELLED and new in _ORDER:
        return
    if old in TERMINAL_STATES or (new not in TERMINAL_STATES and _ORDER[new] < _ORDER[old]):
        who = f"trial {trial_id!r}" if trial_id else "trial"
        raise ConflictError(f"{who}: state cannot go from {old.value} to {new.value}; "
                            "states only move PENDING -> RUNNING -> a terminal state")


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (what records store)."""
    return datetime.now(UTC)


def _as_utc(value: datetime | None, path: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValueError(f"{path}: got {value!r}; accepted: a datetime or None")
    if value.tzinfo is None:
        raise ValueError(f"{path}: got a naive datetime {value.isoformat()}; accepted: a timezone-aware datetime")
    return value.astimezone(UTC)


def normalize_metrics(metrics: Mapping[str, Any] | None, path: str = "metrics") -> dict[str, float]:
    """A flat ``{name: float}`` copy of a metrics mapping.

    Nested mappings are flattened with dots (``{"drift": {"1h": 0.9}}`` -> ``drift.1h``), numbers
    (and booleans) become floats, NaN and infinities are kept (a diverged metric is data).
    Anything else raises ``ValueError`` naming the key.
    """
    out: dict[str, float] = {}
    _flatten(metrics or {}, "", out, path)
    return out


def _flatten(node: Mapping[str, Any], prefix: str, out: dict[str, float], path: str) -> None:
    if not isinstance(node, Mapping):
        raise ValueError(f"{path}: got {node!r}; accepted: a mapping of metric names to numbers")
    for key, value in node.items():
        name = f"{prefix}{key}"
        if not isinstance(key, str) or not key:
            raise ValueError(f"{path}: metric name {key!r} is not a non-empty string")
        if isinstance(value, Mapping):
            _flatten(value, f"{name}.", out, path)
        elif isinstance(value, numbers.Real):
            out[name] = float(value)
        else:
            raise ValueError(f"{path}.{name}: got {value!r}; accepted: a number or a mapping of numbers")


DETAILS_KEY = "_details"
"""Key under which a trial function may return non-metric data with its metrics (the cost
breakdown, ...): JSON-safe, stored with the trial as :attr:`TrialRecord.details`, never a metric."""


def split_details(result: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A trial function's result as (metrics, details): the :data:`DETAILS_KEY` entry taken out
    and made JSON-safe (:func:`json_safe`)."""
    metrics = dict(result)
    details = metrics.pop(DETAILS_KEY, None)
    if details is None:
        return metrics, None
    if not isinstance(details, Mapping):
        raise ValueError(f"{DETAILS_KEY}: got {type(details).__name__}; accepted: a mapping")
    return metrics, json_safe(details, DETAILS_KEY)


def json_safe(value: Any, path: str = "details") -> Any:
    """``value`` as plain JSON data: mappings with string keys, lists, strings, booleans, None and
    finite numbers (a non-finite float becomes None); anything else raises ``ValueError``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{path}: key {k!r} is not a string")
            out[k] = json_safe(v, f"{path}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [json_safe(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"{path}: got {type(value).__name__}; accepted: JSON data (mappings, lists, "
                     "strings, numbers, booleans, null)")


def aggregate_repeats(repeat_metrics: Sequence[Mapping[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and sample standard deviation (``ddof = 1``) of each metric over the repeats.

    A metric counts over the repeats that reported it; its std is present only when at least two
    did. NaN in any repeat makes the mean and std NaN (a diverged repeat is not hidden).
    """
    names: dict[str, None] = {}
    for rep in repeat_metrics:
        names.update(dict.fromkeys(rep))
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for name in names:
        values = [float(rep[name]) for rep in repeat_metrics if name in rep]
        mu = math.fsum(values) / len(values)
        mean[name] = mu
        if len(values) >= 2:
            std[name] = math.sqrt(math.fsum((v - mu) ** 2 for v in values) / (len(values) - 1))
    return mean, std


@dataclass(frozen=True)
class Measurement:
    """Metrics a trial reported at the end of one epoch of one repeat."""

    epoch: int
    """Epoch number as reported by the trial (1 for the first epoch)."""
    metrics: Mapping[str, float]
    """Metrics so far, flat ``{name: value}`` (see :func:`normalize_metrics`)."""
    repeat: int = 0
    """Index of the repeat (seed) this epoch belongs to, 0-based."""
    reported_at: datetime | None = None
    """When the report arrived (UTC), if known."""

    def __post_init__(self) -> None:
        if not isinstance(self.epoch, int) or isinstance(self.epoch, bool) or self.epoch < 0:
            raise ValueError(f"measurement.epoch: got {self.epoch!r}; accepted: an integer >= 0")
        if not isinstance(self.repeat, int) or isinstance(self.repeat, bool) or self.repeat < 0:
            raise ValueError(f"measurement.repeat: got {self.repeat!r}; accepted: an integer >= 0")
        object.__setattr__(self, "metrics", normalize_metrics(self.metrics, "measurement.metrics"))
        object.__setattr__(self, "reported_at", _as_utc(self.reported_at, "measurement.reported_at"))

    @classmethod
    def from_report(cls, report: Mapping[str, Any], repeat: int = 0, reported_at: datetime | None = None) -> Measurement:
        """Build from a trial's per-epoch report ``{"epoch": n, <metrics>}``."""
        data = dict(report)
        if "epoch" not in data:
            raise ValueError(f"report: missing 'epoch'; got keys {sorted(data)}")
        epoch = data.pop("epoch")
        if isinstance(epoch, float) and epoch.is_integer():
            epoch = int(epoch)
        return cls(epoch=epoch, metrics=data, repeat=repeat, reported_at=reported_at or utc_now())


@dataclass(frozen=True)
class TrialRecord:
    """Everything a study stores about one trial (one configuration, run once per seed)."""

    trial_id: str
    """Unique id of the trial within its study."""
    number: int
    """0-based order in which the trial was created; stable across resumes."""
    state: TrialState = TrialState.PENDING
    """Where the trial is; only moves forward (see :func:`check_transition`)."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Parameter values by parameter name (inactive conditional parameters are absent)."""
    seeds: tuple[int, ...] = ()
    """The seed of each repeat, in order."""
    repeat_metrics: tuple[Mapping[str, float], ...] = ()
    """Final metrics of each finished repeat, in repeat order."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Mean of each metric over ``repeat_metrics`` (derived; see :func:`aggregate_repeats`)."""
    metrics_std: Mapping[str, float] = field(default_factory=dict)
    """Sample std (ddof = 1) of each metric over the repeats; only with two or more repeats."""
    measurements: tuple[Measurement, ...] = ()
    """Per-epoch reports of every repeat, in arrival order."""
    created_at: datetime | None = None
    """When the trial was created (UTC)."""
    started_at: datetime | None = None
    """When the trial started running (UTC)."""
    finished_at: datetime | None = None
    """When the trial reached a terminal state (UTC)."""
    node: str | None = None
    """The worker node that ran the trial (Ray node id or host), if known."""
    error: str | None = None
    """Why the trial failed, was pruned or was cancelled; None when it completed."""
    details: tuple[Mapping[str, Any] | None, ...] = ()
    """Non-metric data of each finished repeat, in repeat order (what the trial function returned
    under :data:`DETAILS_KEY`, e.g. the per-layer cost breakdown; None for a repeat without)."""
    attempts: int = 0
    """How often the trial was started: 0 before it starts, 1 for a trial that ran once, one more
    for each restart after its worker was lost (a crashed process, a dead node) and for each
    re-run after its study was interrupted."""

    def __post_init__(self) -> None:
        if not isinstance(self.trial_id, str) or not self.trial_id:
            raise ValueError(f"trial_id: got {self.trial_id!r}; accepted: a non-empty string")
        if not isinstance(self.number, int) or isinstance(self.number, bool) or self.number < 0:
            raise ValueError(f"number: got {self.number!r}; accepted: an integer >= 0")
        object.__setattr__(self, "state", as_state(self.state))
        if not isinstance(self.params, Mapping):
            raise ValueError(f"params: got {self.params!r}; accepted: a mapping of parameter names to values")
        object.__setattr__(self, "params", dict(self.params))
        seeds = tuple(self.seeds)
        for i, s in enumerate(seeds):
            if not isinstance(s, int) or isinstance(s, bool):
                raise ValueError(f"seeds[{i}]: got {s!r}; accepted: an integer")
        object.__setattr__(self, "seeds", seeds)
        reps = tuple(normalize_metrics(m, f"repeat_metrics[{i}]") for i, m in enumerate(self.repeat_metrics))
        object.__setattr__(self, "repeat_metrics", reps)
        if reps:
            mean, std = aggregate_repeats(reps)
        else:
            mean = normalize_metrics(self.metrics)
            std = normalize_metrics(self.metrics_std, "metrics_std")
        object.__setattr__(self, "metrics", mean)
        object.__setattr__(self, "metrics_std", std)
        ms = tuple(self.measurements)
        for i, m in enumerate(ms):
            if not isinstance(m, Measurement):
                raise ValueError(f"measurements[{i}]: got {type(m).__name__}; accepted: a Measurement")
        object.__setattr__(self, "measurements", ms)
        object.__setattr__(self, "details", tuple(
            None if d is None else json_safe(d, f"details[{i}]") for i, d in enumerate(self.details)))
        for name in ("created_at", "started_at", "finished_at"):
            object.__setattr__(self, name, _as_utc(getattr(self, name), name))
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool) or self.attempts < 0:
            raise ValueError(f"attempts: got {self.attempts!r}; accepted: an integer >= 0")
        for name in ("node", "error"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name}: got {value!r}; accepted: a string or None")

    # -- life cycle: each returns a new record and checks the state transition ------------------
    @classmethod
    def pending(cls, trial_id: str, number: int, params: Mapping[str, Any], seeds: Iterable[int] = (0,),
                created_at: datetime | None = None, attempts: int = 0) -> TrialRecord:
        """A new trial that has been suggested but not started (``attempts``: starts so far, for
        a trial re-run on resume)."""
        return cls(trial_id=trial_id, number=number, params=params, seeds=tuple(seeds),
                   created_at=created_at or utc_now(), attempts=attempts)

    def advance(self, state: TrialState | str, **changes: Any) -> TrialRecord:
        """A copy in ``state`` with ``changes`` applied; raises ConflictError on a backward move."""
        new_state = as_state(state)
        check_transition(self.state, new_state, self.trial_id)
        if new_state.is_finished and changes.get("finished_at") is None and self.finished_at is None:
            changes["finished_at"] = utc_now()
        if "repeat_metrics" in changes:
            changes.setdefault("metrics", {})
            changes.setdefault("metrics_std", {})
        return dataclasses.replace(self, state=new_state, **changes)

    def start(self, node: str | None = None, at: datetime | None = None) -> TrialRecord:
        """The trial started running on ``node`` (its first start counts one attempt)."""
        return self.advance(TrialState.RUNNING, node=node if node is not None else self.node,
                            started_at=at or self.started_at or utc_now(), attempts=max(self.attempts, 1))

    def restart(self) -> TrialRecord:
        """The trial starts again after its worker was lost: one more attempt, and the partial
        measurements of the lost one go."""
        return dataclasses.replace(self, measurements=(), attempts=self.attempts + 1)

    def add_measurement(self, measurement: Measurement) -> TrialRecord:
        """A copy with one more per-epoch measurement (state unchanged)."""
        return dataclasses.replace(self, measurements=self.measurements + (measurement,))

    def complete(self, repeat_metrics: Sequence[Mapping[str, Any]], at: datetime | None = None,
                 details: Sequence[Mapping[str, Any] | None] = ()) -> TrialRecord:
        """The trial finished every repeat; ``repeat_metrics`` holds each repeat's final metrics
        (``details`` its non-metric data)."""
        if not repeat_metrics:
            raise ValueError("repeat_metrics: got no repeats; accepted: one metrics mapping per repeat")
        return self.advance(TrialState.COMPLETED, repeat_metrics=tuple(repeat_metrics), finished_at=at, error=None,
                            details=tuple(details))

    def fail(self, error: str, repeat_metrics: Sequence[Mapping[str, Any]] = (), at: datetime | None = None,
             details: Sequence[Mapping[str, Any] | None] = ()) -> TrialRecord:
        """The trial failed (exception or divergence); metrics of finished repeats are kept."""
        return self.advance(TrialState.FAILED, error=str(error), repeat_metrics=tuple(repeat_metrics), finished_at=at,
                            details=tuple(details))

    def prune(self, reason: str = "stopped early by the scheduler", repeat_metrics: Sequence[Mapping[str, Any]] = (),
              at: datetime | None = None) -> TrialRecord:
        """The scheduler stopped the trial early (its last measurements stay in the record)."""
        return self.advance(TrialState.PRUNED, error=reason, repeat_metrics=tuple(repeat_metrics), finished_at=at)

    def cancel(self, reason: str = "cancelled", at: datetime | None = None) -> TrialRecord:
        """The study was cancelled or interrupted before the trial finished."""
        return self.advance(TrialState.CANCELLED, error=reason, finished_at=at)

    # -- derived views --------------------------------------------------------------------------
    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish, when both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def n_repeats(self) -> int:
        """Number of repeats that reported final metrics."""
        return len(self.repeat_metrics)

    @property
    def training(self) -> tuple[Mapping[str, Any] | None, ...]:
        """Per finished repeat, how its network was trained (``details[r]["training"]``):
        ``training_key``, ``reused_training`` (loaded from the model store rather than trained
        by this trial) and ``trained_by`` (``{"study", "trial_id", "repeat"}`` of the trial that
        trained it); None for a repeat that recorded none."""
        return tuple(d.get("training") if isinstance(d, Mapping) else None for d in self.details)

    @property
    def training_keys(self) -> tuple[str | None, ...]:
        """The training key of each finished repeat (None where none was recorded)."""
        return tuple(None if t is None else t.get("training_key") for t in self.training)

    @property
    def reused_training(self) -> bool | None:
        """True when every finished repeat loaded a stored model, False when any trained; None
        when no repeat recorded how it was trained."""
        flags = [bool(t.get("reused_training")) for t in self.training if t is not None]
        return all(flags) if flags else None


def record_to_plain(record: TrialRecord) -> dict[str, Any]:
    """A record's fields as plain data: the one conversion the SQL store and the Parquet writer
    share (each then encodes the values for its columns).

    State by name; params, metrics and metrics_std as dicts; seeds, repeat_metrics and details as
    lists; ``created_at`` / ``started_at`` / ``finished_at`` as seconds since the epoch (None
    when unknown); ``n_repeats`` and ``duration_s`` derived. Measurements are left out: every
    store keeps them in a table of their own (:func:`record_from_plain` takes them back).
    """
    return {
        "trial_id": record.trial_id,
        "number": record.number,
        "state": record.state.value,
        "params": dict(record.params),
        "seeds": list(record.seeds),
        "repeat_metrics": [dict(m) for m in record.repeat_metrics],
        "metrics": dict(record.metrics),
        "metrics_std": dict(record.metrics_std),
        "n_repeats": record.n_repeats,
        "created_at": _seconds(record.created_at),
        "started_at": _seconds(record.started_at),
        "finished_at": _seconds(record.finished_at),
        "duration_s": record.duration_s,
        "node": record.node,
        "error": record.error,
        "details": list(record.details),
        "attempts": record.attempts,
    }


def record_from_plain(data: Mapping[str, Any], measurements: Iterable[Measurement] = ()) -> TrialRecord:
    """The record of :func:`record_to_plain`'s data (``metrics`` / ``metrics_std`` are only read
    when there are no ``repeat_metrics`` to derive them from); derived and unknown keys are
    ignored, missing optional ones take their defaults (older stores)."""
    fields: dict[str, Any] = {}
    if data.get("repeat_metrics"):
        fields["repeat_metrics"] = tuple(data["repeat_metrics"])
    else:
        fields["metrics"] = data.get("metrics") or {}
        fields["metrics_std"] = data.get("metrics_std") or {}
    return TrialRecord(
        trial_id=data["trial_id"], number=data["number"], state=data["state"], params=data.get("params") or {},
        seeds=tuple(data.get("seeds") or ()), measurements=tuple(measurements),
        created_at=_moment(data.get("created_at")), started_at=_moment(data.get("started_at")),
        finished_at=_moment(data.get("finished_at")), node=data.get("node"), error=data.get("error"),
        details=tuple(data.get("details") or ()), attempts=int(data.get("attempts") or 0), **fields,
    )


def _seconds(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _moment(value: float | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(value, tz=UTC)


def merge_record(old: TrialRecord | None, new: TrialRecord) -> TrialRecord:
    """Check that ``new`` may replace ``old`` (same trial, forward state, same number)."""
    if old is None:
        return new
    if old.trial_id != new.trial_id:
        raise ConflictError(f"trial ids differ: {old.trial_id!r} vs {new.trial_id!r}")
    if old.number != new.number:
        raise ConflictError(f"trial {new.trial_id!r}: number cannot change from {old.number} to {new.number}")
    check_transition(old.state, new.state, new.trial_id)
    return new


@runtime_checkable
class TrialSink(Protocol):
    """Where the runner writes each trial's record as it changes (created, started, finished).

    Implementations: :class:`dse.results.ParquetResults` (a results directory),
    :class:`MemorySink`, :class:`TeeSink`, and the API's SQL store. A sink must reject a backward
    state move (:func:`merge_record`) and must be safe to call again with the same record.
    """

    def write_trial(self, record: TrialRecord) -> None:
        """Store ``record``, replacing the previous record of the same ``trial_id``."""


class MemorySink:
    """A sink that keeps the latest record of each trial in memory (ordered by trial number)."""

    def __init__(self, records: Iterable[TrialRecord] = ()) -> None:
        self._records: dict[str, TrialRecord] = {}
        for record in records:
            self.write_trial(record)

    def write_trial(self, record: TrialRecord) -> None:
        """Store ``record`` (state transitions are checked)."""
        self._records[record.trial_id] = merge_record(self._records.get(record.trial_id), record)

    def records(self) -> list[TrialRecord]:
        """Every trial's latest record, by trial number."""
        return sorted(self._records.values(), key=lambda r: r.number)

    def get(self, trial_id: str) -> TrialRecord | None:
        """The latest record of ``trial_id``, or None."""
        return self._records.get(trial_id)

    def __len__(self) -> int:
        return len(self._records)


class TeeSink:
    """Writes every record to several sinks in order (e.g. Parquet files and a progress view)."""

    def __init__(self, *sinks: TrialSink) -> None:
        self.sinks = tuple(sinks)

    def write_trial(self, record: TrialRecord) -> None:
        """Write ``record`` to each sink; the first error stops the fan-out and propagates."""
        for sink in self.sinks:
            sink.write_trial(record)
