"""Study progress: counts, elapsed time and best-so-far values, and the events that carry them.

The runner keeps one :class:`ProgressTracker` per study and hands every listener a
:class:`StudyEvent` (a trial created / started / reported an epoch / finished, or a periodic
tick) with a :class:`StudyProgress` snapshot. The ``dse run`` progress bar
(:class:`ProgressBar`) and the study service's server-sent events are such listeners.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Literal

from dse.results.records import EVALUATED_STATES, TrialRecord, TrialState

if TYPE_CHECKING:
    from dse.spec import StudySpec

EventKind = Literal["created", "started", "epoch", "finished", "tick", "study_started", "study_finished"]


@dataclasses.dataclass(frozen=True)
class BestValue:
    """The best value of one objective among completed, feasible trials."""

    metric: str
    """The objective's metric."""
    goal: str
    """``minimize`` or ``maximize``."""
    value: float
    """The best value so far."""
    trial_id: str
    """The trial that reached it."""


@dataclasses.dataclass(frozen=True)
class StudyProgress:
    """A snapshot of a running study (all counts include trials of earlier, resumed runs)."""

    study: str
    """Study name."""
    max_trials: int | None
    """The trial budget, if any (else the grid size for finite searchers, if known)."""
    completed: int
    """Trials that finished every repeat."""
    failed: int
    """Trials that raised, diverged or whose worker died."""
    pruned: int
    """Trials the scheduler stopped early."""
    cancelled: int
    """Trials stopped by a cancel, an interrupt or the time budget."""
    running: int
    """Trials started and not finished."""
    resumed: int
    """Finished trials loaded from an earlier run of the study."""
    elapsed_s: float
    """Seconds since this run of the study started."""
    best: tuple[BestValue, ...]
    """Best value per objective among completed trials that satisfy the constraints."""

    @property
    def done(self) -> int:
        """Finished trials of any terminal state."""
        return self.completed + self.failed + self.pruned + self.cancelled


@dataclasses.dataclass(frozen=True)
class StudyEvent:
    """Something that happened in a study, with the progress right after it."""

    kind: EventKind
    """``study_started``, ``created``, ``started``, ``epoch``, ``finished``, ``tick``, ``study_finished``."""
    progress: StudyProgress
    """Counts and best values after the event."""
    record: TrialRecord | None = None
    """The trial the event is about (None for study-level events and ticks)."""
    message: str | None = None
    """Free text for study-level events (e.g. why the study stopped)."""


StudyListener = Callable[[StudyEvent], None]
"""A progress listener: called in the runner's thread, so it must return quickly."""


class ProgressTracker:
    """Counts trial states and best objective values as records arrive."""

    def __init__(self, spec: StudySpec, max_trials: int | None = None) -> None:
        self.spec = spec
        self.max_trials = max_trials
        self.started_at = time.monotonic()
        self._states: dict[str, TrialState] = {}
        self._best: dict[str, BestValue] = {}
        self.resumed = 0

    def load(self, records: Sequence[TrialRecord]) -> None:
        """Take in the records of an earlier run (evaluated ones count as ``resumed``; cancelled
        ones are re-run, not resumed)."""
        for record in records:
            if record.state in EVALUATED_STATES:
                self.resumed += 1
                self.update(record)

    def update(self, record: TrialRecord) -> None:
        """Take in a trial's latest record."""
        self._states[record.trial_id] = record.state
        if record.state is TrialState.COMPLETED and self._feasible(record.metrics):
            for objective in self.spec.objectives:
                value = objective.value(record.metrics)
                if value is None:
                    continue
                best = self._best.get(objective.metric)
                if best is None or objective.better(value, best.value):
                    self._best[objective.metric] = BestValue(objective.metric, objective.goal, value, record.trial_id)

    def _feasible(self, metrics: Mapping[str, float]) -> bool:
        return all(c.satisfied(metrics) for c in self.spec.constraints)

    def snapshot(self) -> StudyProgress:
        """The current counts, elapsed time and best values."""
        counts = {state: 0 for state in TrialState}
        for state in self._states.values():
            counts[state] += 1
        return StudyProgress(
            study=self.spec.name,
            max_trials=self.max_trials,
            completed=counts[TrialState.COMPLETED],
            failed=counts[TrialState.FAILED],
            pruned=counts[TrialState.PRUNED],
            cancelled=counts[TrialState.CANCELLED],
            running=counts[TrialState.RUNNING],
            resumed=self.resumed,
            elapsed_s=time.monotonic() - self.started_at,
            best=tuple(self._best[o.metric] for o in self.spec.objectives if o.metric in self._best),
        )


def format_duration(seconds: float) -> str:
    """``75.2`` -> ``"01:15"``, ``3725`` -> ``"1:02:05"``."""
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_value(value: float) -> str:
    """A metric value in at most ~6 significant characters."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


def progress_line(p: StudyProgress, width: int = 20) -> str:
    """One line: ``[####......] 12/50 done | 2 running | 1 failed | 00:42 | best accuracy=0.953``."""
    done = p.done
    if p.max_trials:
        filled = min(width, round(width * done / p.max_trials))
        bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{p.max_trials} done"
    else:
        bar = f"{done} done"
    parts = [bar, f"{p.running} running", f"{p.failed} failed"]
    if p.pruned:
        parts.append(f"{p.pruned} pruned")
    if p.cancelled:
        parts.append(f"{p.cancelled} cancelled")
    parts.append(format_duration(p.elapsed_s))
    if p.best:
        parts.append("best " + " ".join(
            f"{b.metric}={format_value(b.value)}({'max' if b.goal == 'maximize' else 'min'})" for b in p.best
        ))
    return " | ".join(parts)


class ProgressBar:
    """A live progress line for a terminal (redrawn in place), or a line every ``interval_s``
    seconds and on every finished trial when the output is not a terminal (logs, CI)."""

    def __init__(self, stream: IO[str] | None = None, *, interval_s: float = 10.0, tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval_s = interval_s
        self._last_print = -math.inf
        self._width = 0

    def __call__(self, event: StudyEvent) -> None:
        line = progress_line(event.progress)
        if event.kind == "study_started" and event.message:
            self.stream.write(event.message + "\n")
        if self.tty:
            if event.kind == "finished" and event.record is not None and event.record.state is TrialState.FAILED:
                self._clear()
                first = (event.record.error or "").strip().splitlines()[:1]
                self.stream.write(f"trial {event.record.trial_id} failed: {first[0] if first else ''}\n")
            self._draw(line)
            if event.kind == "study_finished":
                self.stream.write("\n")
        else:
            now = time.monotonic()
            if event.kind in ("finished", "study_started", "study_finished") or now - self._last_print >= self.interval_s:
                self.stream.write(line + "\n")
                self._last_print = now
        self.stream.flush()

    def _draw(self, line: str) -> None:
        pad = max(0, self._width - len(line))
        self.stream.write("\r" + line + " " * pad)
        self._width = len(line)

    def _clear(self) -> None:
        self.stream.write("\r" + " " * self._width + "\r")
        self._width = 0
