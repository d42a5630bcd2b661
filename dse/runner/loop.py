"""The study loop's state, independent of the execution backend (no Ray imports).

:class:`StudyLoop` is what the Ray Tune glue (:mod:`dse.runner.tune_glue`) talks to. It decides
which trial comes next (a re-run of an interrupted trial, or the searcher's suggestion), turns
parameters into trial configs (one per repeat seed), keeps each trial's :class:`TrialRecord`
moving forward as the backend reports, writes records to the sink, tells the searcher how each
trial ended, enforces the failure budget, and notifies progress listeners.

Resume. A study started with the records of an earlier run (``history``) rebuilds its searcher
from them and never repeats a trial. Every stored trial is replayed to the searcher in the order
it was suggested (:meth:`~dse.searchers.base.Searcher.replay`: its generators move on as they
did), and each finished one is told to it at the point it finished (by ``finished_at`` against
the next trial's ``created_at``), so the searcher suggests next what the uninterrupted study
would have. COMPLETED, FAILED and PRUNED trials are never re-run. Trials the earlier run left
unfinished (RUNNING / PENDING after a kill, CANCELLED after an interrupt or a cancel) are re-run
with their parameters under their own id and number, so the study keeps one row per trial and
``budget.max_trials`` is exact. Re-runs go first, and the searcher is asked for new trials only
once every re-run has ended, as in the uninterrupted study.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from dse.results.records import EVALUATED_STATES, Measurement, TrialRecord, TrialSink, TrialState
from dse.runner.progress import ProgressTracker, StudyEvent, StudyListener
from dse.runner.reuse import TrainingCoordinator, run_keys
from dse.searchers.base import FINISHED, Searcher
from dse.spec import StudySpec

log = logging.getLogger(__name__)

StopReason = Literal["completed", "max_trials", "time_budget", "failure_budget", "cancelled", "interrupted"]


@dataclasses.dataclass(frozen=True)
class TrialPlan:
    """What the backend runs for one trial."""

    trial_id: str
    """The study's id of the trial."""
    number: int
    """Its creation number."""
    params: dict[str, Any]
    """Parameter values by name."""
    runs: tuple[dict[str, Any], ...]
    """One ``{"seed", "config", "dataset"}`` per repeat (``dataset``: key of a preloaded dataset
    or None)."""

    def payload(self) -> dict[str, Any]:
        """The JSON-safe dict the trainable receives."""
        return {"trial_id": self.trial_id, "number": self.number, "params": self.params, "runs": list(self.runs)}


@dataclasses.dataclass(frozen=True)
class TrialOutcome:
    """How a trial that ran to its end finished (the trainable's final report)."""

    state: TrialState
    """COMPLETED or FAILED."""
    repeat_metrics: tuple[Mapping[str, Any], ...] = ()
    """Final metrics of each repeat that finished."""
    error: str | None = None
    """Why it failed."""
    node: str | None = None
    """The worker node that ran it."""
    started_at: datetime | None = None
    """When the trainable started it."""
    finished_at: datetime | None = None
    """When the trainable finished it."""
    details: tuple[Mapping[str, Any] | None, ...] = ()
    """Non-metric data of each repeat that finished (``TrialRecord.details``)."""


def dataset_key(config: Mapping[str, Any]) -> str:
    """A key naming the data a trial config loads: ``"digits"``, ``"mnist@/data"``."""
    section = config.get("dataset") or {}
    name = str(section.get("name", "digits"))
    data_dir = section.get("data_dir")
    return f"{name}@{data_dir}" if data_dir else name


def _seconds(moment: datetime | None, default: float) -> float:
    return default if moment is None else moment.timestamp()


def timestamp(seconds: float | None) -> datetime | None:
    """A POSIX time as an aware UTC datetime (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


class StudyLoop:
    """Trial bookkeeping of one run of a study (see the module docstring)."""

    def __init__(
        self,
        spec: StudySpec,
        searcher: Searcher,
        sink: TrialSink | None = None,
        *,
        history: Sequence[TrialRecord] = (),
        listeners: Sequence[StudyListener] = (),
        preloaded_datasets: Sequence[str] = (),
        coordinator: TrainingCoordinator | None = None,
    ) -> None:
        self.spec = spec
        self.coordinator = coordinator
        self._waiting: list[TrialPlan] = []  # plans whose training another running trial does
        self.searcher = searcher
        self.sink = sink
        self.listeners = list(listeners)
        self.preloaded = set(preloaded_datasets)
        self.tracker = ProgressTracker(spec, spec.budget.max_trials or spec.grid_size())
        self.records: dict[str, TrialRecord] = {}
        self._searcher_ids: set[str] = set()
        self._rerun_queue: list[TrialRecord] = []
        self._reruns_open: set[str] = set()
        self._lock = threading.RLock()
        self._stop: StopReason | None = None
        self._stop_message: str | None = None
        self._searcher_done = False
        self._next_number = 0
        self._unwritten: dict[str, TrialRecord] = {}
        self.write_error: str | None = None  # the sink's last error while records wait
        self._load_history(history)

    # -- resume ---------------------------------------------------------------------------------
    def _load_history(self, history: Sequence[TrialRecord]) -> None:
        history = sorted(history, key=lambda r: r.number)
        self._next_number = 1 + max((r.number for r in history), default=-1)
        told: list[tuple[float, int, TrialRecord]] = []  # finished trials waiting to be told, by finish time

        def tell_until(moment: float) -> None:
            while told and told[0][0] <= moment:
                record = heapq.heappop(told)[2]
                self.searcher.on_trial_complete(record.trial_id, record.metrics, record.state)

        for record in history:
            self.records[record.trial_id] = record
            tell_until(_seconds(record.created_at, default=float("inf")))
            self.searcher.replay(record.trial_id, record.params)
            self._searcher_ids.add(record.trial_id)
            if record.state in EVALUATED_STATES:
                finished = max(_seconds(record.finished_at, default=float("-inf")),
                               _seconds(record.created_at, default=float("-inf")))
                heapq.heappush(told, (finished, record.number, record))
            else:  # RUNNING / PENDING after a kill, CANCELLED after an interrupt: re-run it
                self._rerun_queue.append(record)
        tell_until(float("inf"))
        self.tracker.load(history)

    @property
    def resumed(self) -> int:
        """Finished trials taken over from an earlier run."""
        return self.tracker.resumed

    # -- suggestions ----------------------------------------------------------------------------
    def next_trial(self) -> TrialPlan | None | Literal["FINISHED"]:
        """The next trial to start: a plan, None (ask again later) or FINISHED.

        With a :class:`~dse.runner.reuse.TrainingCoordinator`, a trial whose training a running
        trial is doing waits (parked) until that trial ends; parked trials go first once free.
        """
        with self._lock:
            if self._stop is not None:
                return FINISHED
            coordinator = self.coordinator
            if coordinator is None:
                return self._next_plan()
            for i, waiting in enumerate(self._waiting):
                if coordinator.admit(waiting.trial_id, waiting.runs):
                    del self._waiting[i]
                    return waiting
            if len(self._waiting) >= coordinator.max_waiting:
                return None
            plan = self._next_plan()
            if plan is None or plan == FINISHED:
                return None if self._waiting else plan
            if not coordinator.admit(plan.trial_id, plan.runs):  # type: ignore[union-attr]
                self._waiting.append(plan)  # type: ignore[arg-type]
                return None
            return plan

    def _next_plan(self) -> TrialPlan | None | Literal["FINISHED"]:
        with self._lock:
            if self._rerun_queue:
                return self._plan_rerun(self._rerun_queue.pop(0))
            if self._reruns_open:
                return None  # the searcher waits until re-runs are added to it
            if self._searcher_done:
                return FINISHED
            trial_id = self._new_id()
            params = self.searcher.suggest(trial_id)
            if params is None:
                return None
            if params == FINISHED:
                self._searcher_done = True
                return FINISHED
            self._searcher_ids.add(trial_id)
            number = self._take_number()
            record = TrialRecord.pending(trial_id, number, params, self.spec.seeds)
            return self._plan(record)

    def _plan_rerun(self, old: TrialRecord) -> TrialPlan:
        attempts = old.attempts + 1 if old.started_at is not None else old.attempts
        record = TrialRecord.pending(old.trial_id, old.number, old.params, self.spec.seeds,
                                     created_at=old.created_at, attempts=attempts)
        self._reruns_open.add(record.trial_id)
        return self._plan(record)

    def _plan(self, record: TrialRecord) -> TrialPlan:
        configs = self.spec.trial_configs(record.params)
        runs = tuple(
            {"seed": seed, "config": cfg, "dataset": key if (key := dataset_key(cfg)) in self.preloaded else None}
            for seed, cfg in zip(self.spec.seeds, configs)
        )
        if self.coordinator is not None:
            runs = tuple({**run, **run_keys(run["config"])} for run in runs)
        self.records[record.trial_id] = record
        self._emit("created", record)
        return TrialPlan(record.trial_id, record.number, dict(record.params), runs)

    def _new_id(self) -> str:
        return self._id_for(self._next_number)

    def _take_number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number

    @staticmethod
    def _id_for(number: int) -> str:
        return f"t{number:05d}"

    # -- events from the backend ----------------------------------------------------------------
    def trial_started(self, trial_id: str, node: str | None = None) -> None:
        """The backend started the trial."""
        with self._lock:
            record = self.records[trial_id].start(node=node)
            self._write(record)
            self._emit("started", record)

    def trial_epoch(self, trial_id: str, repeat: int, values: Mapping[str, Any]) -> None:
        """The trial reported an epoch (``{"epoch": n, <metrics>}``)."""
        with self._lock:
            record = self.records.get(trial_id)
            if record is None or record.state.is_finished:
                return
            try:
                measurement = Measurement.from_report(_numeric_report(values), repeat=repeat)
            except ValueError as exc:
                log.warning("trial %s: ignoring an epoch report: %s", trial_id, exc)
                return
            record = record.add_measurement(measurement)
            self.records[trial_id] = record
            self._emit("epoch", record)

    def trial_finished(self, trial_id: str, outcome: TrialOutcome) -> None:
        """The trial ran to its end (completed or failed in the trial function)."""
        with self._lock:
            record = self.records[trial_id]
            if record.state.is_finished:
                return
            if record.state is TrialState.PENDING:
                record = record.start(node=outcome.node, at=outcome.started_at)
            changes = {"node": outcome.node or record.node, "started_at": outcome.started_at or record.started_at}
            record = dataclasses.replace(record, **changes)
            if outcome.state is TrialState.COMPLETED:
                record = record.complete(outcome.repeat_metrics, at=outcome.finished_at, details=outcome.details)
            else:
                record = record.fail(outcome.error or "failed", outcome.repeat_metrics, at=outcome.finished_at,
                                     details=outcome.details)
            self._close(record)

    def trial_ended(self, trial_id: str, state: TrialState, reason: str) -> None:
        """The trial ended without a final report: PRUNED (scheduler), FAILED (worker died) or
        CANCELLED (the study stopped)."""
        with self._lock:
            record = self.records.get(trial_id)
            if record is None or record.state.is_finished:
                return
            if state is TrialState.PRUNED:
                record = record.prune(reason)
            elif state is TrialState.FAILED:
                record = record.fail(reason)
            else:
                record = record.cancel(reason)
            self._close(record)

    def _close(self, record: TrialRecord) -> None:
        self._write(record)
        trial_id = record.trial_id
        self._reruns_open.discard(trial_id)
        if self.coordinator is not None:
            self.coordinator.finished(trial_id, record.state)
        if trial_id in self._searcher_ids:
            self.searcher.on_trial_complete(trial_id, record.metrics, record.state)
        self._emit("finished", record)
        budget = self.spec.budget.max_failed_trials
        failed = self.tracker.snapshot().failed
        if budget is not None and failed > budget and self._stop is None:
            self.stop("failure_budget", f"{failed} trials failed, more than budget.max_failed_trials = {budget}")

    # -- stopping -------------------------------------------------------------------------------
    def stop(self, reason: StopReason, message: str | None = None) -> None:
        """Start no new trial; the backend stops the running ones (thread-safe)."""
        with self._lock:
            if self._stop is None:
                self._stop = reason
                self._stop_message = message

    @property
    def stop_reason(self) -> StopReason | None:
        """Why the study is stopping, or None while it runs."""
        return self._stop

    @property
    def stop_message(self) -> str | None:
        """Details of the stop reason, if any."""
        return self._stop_message

    def finish(self, reason: StopReason) -> StopReason:
        """The backend is done: cancel what is still open and return the final stop reason."""
        with self._lock:
            final = self._stop or reason
            why = {
                "cancelled": "study cancelled",
                "interrupted": "study interrupted; resume to re-run",
                "time_budget": "time budget spent",
                "failure_budget": "failure budget spent",
            }.get(final, "study stopped")
            for trial_id, record in list(self.records.items()):
                if not record.state.is_finished:
                    self.trial_ended(trial_id, TrialState.CANCELLED, why)
            return final

    # -- outputs --------------------------------------------------------------------------------
    def _write(self, record: TrialRecord) -> None:
        self.records[record.trial_id] = record
        self.tracker.update(record)
        if self.sink is not None:
            self._unwritten[record.trial_id] = record
            self.flush_writes()

    def flush_writes(self) -> bool:
        """Hand the sink the records it has not taken yet (in trial-number order).

        A sink that raises (a database restarting, a full disk) does not fail the trial: its
        latest record waits here and every later write, tick and the end of the study try again.
        Returns True when nothing is left waiting.
        """
        with self._lock:
            if self.sink is None:
                return True
            for trial_id in sorted(self._unwritten, key=lambda t: self._unwritten[t].number):
                try:
                    self.sink.write_trial(self._unwritten[trial_id])
                except Exception as exc:  # noqa: BLE001 - any sink failure is retried
                    if self.write_error is None:
                        log.warning("the sink refused trial %s (%s: %s); retrying", trial_id, type(exc).__name__, exc)
                    self.write_error = f"{type(exc).__name__}: {exc}"
                    return False
                del self._unwritten[trial_id]
            if self.write_error is not None:
                log.warning("the sink accepts records again")
                self.write_error = None
            return True

    @property
    def unwritten(self) -> list[TrialRecord]:
        """Records the sink has not accepted yet."""
        return sorted(self._unwritten.values(), key=lambda r: r.number)

    def trial_restarted(self, trial_id: str, reason: str) -> None:
        """The backend restarts a trial whose worker was lost: its partial measurements go."""
        with self._lock:
            record = self.records.get(trial_id)
            if record is None or record.state.is_finished:
                return
            log.warning("trial %s restarts: %s", trial_id, reason)
            self.records[trial_id] = record.restart()

    def _emit(self, kind: str, record: TrialRecord | None = None, message: str | None = None) -> None:
        if not self.listeners:
            return
        event = StudyEvent(kind, self.tracker.snapshot(), record, message)  # type: ignore[arg-type]
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("progress listener %r failed on %s", listener, kind)

    def emit(self, kind: str, message: str | None = None) -> None:
        """Send a study-level event (``study_started``, ``tick``, ``study_finished``); a tick
        also retries records the sink refused."""
        with self._lock:
            if kind == "tick" and self._unwritten:
                self.flush_writes()
            self._emit(kind, None, message)

    def all_records(self) -> list[TrialRecord]:
        """Every trial's latest record (earlier runs' included), by number."""
        return sorted(self.records.values(), key=lambda r: r.number)


def _numeric_report(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keep ``epoch`` and the numeric leaves of a per-epoch report."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            nested = _numeric_report(value)
            if nested:
                out[key] = nested
        elif isinstance(value, bool | int | float):
            out[key] = value
    return out
