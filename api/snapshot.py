"""In-memory, read-only snapshots of a study's trials, keyed by the study's version.

Every result the API serves (trial pages sorted by a metric, Pareto fronts, best trials,
hypervolume) is computed from the trials. To serve many readers of a large study without
re-reading 10,000 rows per request, :class:`ResultsCache` keeps one :class:`StudySnapshot` per
study: the trials as columns (one ``float64`` array per metric, NaN where a trial lacks it).
Each request first reads the study's ``version`` (one primary-key lookup); an unchanged version
serves the snapshot, a newer one refreshes it by reading only the trials written since
(``seq > version``). Derived values are memoized on the snapshot, so they are computed once per
version: a cache of computations, never a second store of results.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from api.engine import load_stored_spec
from api.schemas import iso
from api.store import SqlStore, StudyInfo, TrialInfo
from api.store.convert import json_number

SORT_FIELDS = ("number", "started_at", "finished_at", "duration_s")
"""Trial fields the trial list can be sorted by, besides any metric name."""


class StudySnapshot:
    """The trials of one study at one version, as rows and as columns."""

    def __init__(self, study: StudyInfo, trials: Sequence[TrialInfo], spec: Any = None) -> None:
        self.study = study
        self.spec = spec
        """The study's parsed spec (``dse.spec.StudySpec``; specs never change)."""
        self.version = study.version
        self.trials: list[TrialInfo] = sorted(trials, key=lambda t: t.number)
        self.numbers = np.array([t.number for t in self.trials], dtype=np.int64)
        self.states = np.array([t.state for t in self.trials], dtype=object)
        names: dict[str, None] = {}
        for t in self.trials:
            names.update(dict.fromkeys(t.metrics))
        self.metric_names: list[str] = sorted(names)
        self._columns: dict[str, np.ndarray] = {}
        self._memo: dict[Any, Any] = {}
        self._encoded: dict[int, bytes] = {}
        self._position = {t.number: i for i, t in enumerate(self.trials)}
        self._lock = threading.RLock()

    # -- columns ------------------------------------------------------------------------------
    def column(self, name: str) -> np.ndarray:
        """Values of a metric (or a sortable trial field) per trial, NaN where absent."""
        col = self._columns.get(name)
        if col is None:
            if name in SORT_FIELDS:
                col = np.array([_field_value(t, name) for t in self.trials], dtype=np.float64)
            else:
                col = np.array([t.metrics.get(name, math.nan) for t in self.trials], dtype=np.float64)
            self._columns[name] = col
        return col

    def trial(self, number: int) -> TrialInfo | None:
        """The trial with that number, or None."""
        i = self._position.get(number)
        return None if i is None else self.trials[i]

    def peek(self, key: Any) -> Any:
        """The memoized value for ``key``, or None when not computed yet."""
        return self._memo.get(key)

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per snapshot for ``key`` (results depend only on the trials)."""
        try:
            return self._memo[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]

    def counts(self) -> dict[str, int]:
        """Trials per state."""
        from api.store import TRIAL_STATES

        out = dict.fromkeys(TRIAL_STATES, 0)
        for s in self.states:
            out[s] = out.get(s, 0) + 1
        return out

    # -- encoding -----------------------------------------------------------------------------
    def encoded(self, number: int) -> bytes:
        """The trial's JSON (the ``TrialOut`` shape), encoded once per snapshot."""
        data = self._encoded.get(number)
        if data is None:
            data = json.dumps(
                trial_json(self.trials[self._position[number]]), separators=(",", ":"), allow_nan=False
            ).encode()
            self._encoded[number] = data
        return data

    # -- ordering -----------------------------------------------------------------------------
    def order(self, sort: str, descending: bool, states: tuple[str, ...]) -> np.ndarray:
        """Positions of the trials in the requested order (absent values last, ties by number)."""

        def compute() -> np.ndarray:
            keep = np.ones(len(self.trials), dtype=bool)
            if states:
                keep = np.isin(self.states, list(states))
            idx = np.flatnonzero(keep)
            if sort == "number":
                values = self.numbers[idx].astype(np.float64)
            else:
                values = self.column(sort)[idx]
            missing = np.isnan(values)
            key = np.where(missing, 0.0, -values if descending else values)
            # lexsort: last key is primary -> (missing last, value, number).
            ordered = np.lexsort((self.numbers[idx], key, missing))
            return idx[ordered]

        return self.memo(("order", sort, descending, states), compute)


def _field_value(t: TrialInfo, name: str) -> float:
    if name == "number":
        return float(t.number)
    if name == "duration_s":
        if t.started_at is None or t.finished_at is None:
            return math.nan
        return t.finished_at - t.started_at
    value = getattr(t, name)
    return math.nan if value is None else float(value)


def _metrics_json(metrics: dict[str, float]) -> dict[str, float | str]:
    return {k: json_number(v) for k, v in metrics.items()}


def trial_json(t: TrialInfo, *, detail: bool = False) -> dict[str, Any]:
    """A trial as the API shows it (``TrialOut``; with ``detail``, ``TrialDetail``)."""
    out: dict[str, Any] = {
        "number": t.number,
        "trial_id": t.trial_id,
        "state": t.state,
        "params": t.params,
        "metrics": _metrics_json(t.metrics),
        "metrics_std": _metrics_json(t.metrics_std),
        "seeds": list(t.seeds),
        "created_at": iso(t.created_at),
        "started_at": iso(t.started_at),
        "finished_at": iso(t.finished_at),
        "duration_s": None if t.started_at is None or t.finished_at is None else t.finished_at - t.started_at,
        "node": t.node,
        "error": t.error,
        "attempts": t.attempts,
    }
    if detail:
        out["repeat_metrics"] = [_metrics_json(m) for m in t.repeat_metrics]
        out["measurements"] = [
            {
                "repeat": m["repeat"],
                "epoch": m["epoch"],
                "reported_at": iso(m["reported_at"]),
                "metrics": _metrics_json(m["metrics"]),
            }
            for m in t.measurements or ()
        ]
        out["details"] = list(t.details or ())
        out["training"] = [d.get("training") if isinstance(d, dict) else None for d in out["details"]]
    return out


async def snapshot_of(cache: ResultsCache, study_id: str) -> StudySnapshot:
    """The study's current snapshot: served on the event loop when cached, else built in the
    thread pool (reading trials can take a while for a large study)."""
    from starlette.concurrency import run_in_threadpool

    snap = cache.current(study_id)
    return snap if snap is not None else await run_in_threadpool(cache.snapshot, study_id)


async def computed(snap: StudySnapshot, key: Any, compute: Callable[[], Any]) -> Any:
    """``snap.memo(key, compute)``, computed in the thread pool the first time."""
    from starlette.concurrency import run_in_threadpool

    hit = snap.peek(key)
    return hit if hit is not None else await run_in_threadpool(snap.memo, key, compute)


class ResultsCache:
    """Latest snapshot per study (least recently used ones dropped past ``capacity``)."""

    def __init__(self, store: SqlStore, capacity: int = 16) -> None:
        self.store = store
        self.capacity = capacity
        self._snapshots: OrderedDict[str, StudySnapshot] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def current(self, study_id: str) -> StudySnapshot | None:
        """The cached snapshot if it is at the study's current version, else None (one cheap
        query; raises NotFoundError for no study). Safe to call on the event loop."""
        version, _state = self.store.study_version(study_id)
        snap = self._snapshots.get(study_id)
        return snap if snap is not None and snap.version == version else None

    def snapshot(self, study_id: str) -> StudySnapshot:
        """The study's snapshot at its current version (raises NotFoundError for no study)."""
        version, _state = self.store.study_version(study_id)
        snap = self._snapshots.get(study_id)
        if snap is not None and snap.version == version:
            return snap
        with self._guard:
            lock = self._locks.setdefault(study_id, threading.Lock())
        with lock:
            snap = self._snapshots.get(study_id)
            if snap is not None and snap.version >= version:
                return snap
            study = self.store.get_study(study_id)
            if snap is None:
                trials = self.store.list_trials(study_id)
            else:
                changed = {t.number: t for t in self.store.list_trials(study_id, since=snap.version)}
                trials = [changed.pop(t.number, t) for t in snap.trials] + list(changed.values())
            # A write between reading the study and the trials is caught by the next request
            # (the snapshot keeps the older version number, so it refreshes again).
            spec = snap.spec if snap is not None else load_stored_spec(study.spec)
            snap = StudySnapshot(study, trials, spec)
            with self._guard:
                self._snapshots[study_id] = snap
                self._snapshots.move_to_end(study_id)
                while len(self._snapshots) > self.capacity:
                    old, _ = self._snapshots.popitem(last=False)
                    self._locks.pop(old, None)
            return snap

    def forget(self, study_id: str) -> None:
        """Drop a study's snapshot (after it was deleted)."""
        with self._guard:
            self._snapshots.pop(study_id, None)
