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

import collections
import gc
import gzip
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from api.coalesce import in_thread_once
from api.encode import dumps, trial_json
from api.engine import load_stored_spec
from api.store import SqlStore, StudyInfo, TrialInfo

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
        self._name_uses: dict[str, int] = {}
        for t in self.trials:
            for name in t.metrics:
                self._name_uses[name] = self._name_uses.get(name, 0) + 1
        self.metric_names: list[str] = sorted(self._name_uses)
        self._position = {t.number: i for i, t in enumerate(self.trials)}
        self._init_caches()

    def _init_caches(self) -> None:
        self._columns: dict[str, np.ndarray] = {}
        self._memo: dict[Any, Any] = {}
        self._encoded: dict[int, bytes] = {}
        self._detail: dict[int, bytes] = {}
        self._values: dict[tuple[str, ...], dict[int, bytes]] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[Any, threading.Lock] = {}

    @classmethod
    def refreshed(cls, previous: StudySnapshot, study: StudyInfo, changed: Sequence[TrialInfo]) -> StudySnapshot:
        """The snapshot at ``study``'s version: ``previous`` with the trials written since
        (``changed``). While a study runs, new trials come after the stored ones, so the rows,
        columns and encodings of the unchanged trials carry over and only the changed ones are
        read; otherwise (a trial inserted among the stored ones) the snapshot is built anew."""
        top = int(previous.numbers[-1]) if len(previous.numbers) else -1
        replaced = [t for t in changed if t.number in previous._position]
        added = sorted((t for t in changed if t.number not in previous._position), key=lambda t: t.number)
        if added and added[0].number <= top:
            by_number = {t.number: t for t in changed}
            snap = cls(study, [by_number.pop(t.number, t) for t in previous.trials] + list(by_number.values()),
                       previous.spec)
            snap._inherit(previous, changed)
            return snap
        snap = cls.__new__(cls)
        snap.study, snap.spec, snap.version = study, previous.spec, study.version
        snap.trials = list(previous.trials)
        snap.states = np.concatenate([previous.states, np.array([t.state for t in added], dtype=object)])
        snap.numbers = np.concatenate([previous.numbers, np.array([t.number for t in added], dtype=np.int64)])
        snap._position = dict(previous._position)
        snap._name_uses = dict(previous._name_uses)
        positions = []
        for t in replaced:
            i = previous._position[t.number]
            for name in snap.trials[i].metrics:
                snap._name_uses[name] -= 1
            snap.trials[i] = t
            snap.states[i] = t.state
            positions.append(i)
        for t in added:
            snap._position[t.number] = len(snap.trials)
            positions.append(len(snap.trials))
            snap.trials.append(t)
        for t in changed:
            for name in t.metrics:
                snap._name_uses[name] = snap._name_uses.get(name, 0) + 1
        snap._name_uses = {k: n for k, n in snap._name_uses.items() if n > 0}
        snap.metric_names = sorted(snap._name_uses)
        snap._init_caches()
        # Columns: the previous values, the changed trials' patched in and the new ones appended.
        fresh = [snap.trials[i] for i in positions]
        for name, old in previous._columns.items():
            col = np.concatenate([old, np.full(len(added), math.nan)])
            col[positions] = [_column_value(t, name) for t in fresh]
            snap._columns[name] = col
        snap._inherit(previous, changed)
        counts = previous.peek("counts")
        if counts is not None:  # one pass over the changed trials, not over all of them
            counts = dict(counts)
            for t in replaced:
                counts[previous.trials[previous._position[t.number]].state] -= 1
            for t in changed:
                counts[t.state] = counts.get(t.state, 0) + 1
            snap._memo["counts"] = counts
        return snap

    def _inherit(self, previous: StudySnapshot, changed: Sequence[TrialInfo]) -> None:
        """Keep the encodings of every trial but the ``changed`` ones (written since
        ``previous``): while a study runs, each new version re-encodes only those."""
        self._encoded = dict(previous._encoded)
        self._detail = dict(previous._detail)
        self._values = {key: dict(old) for key, old in previous._values.items()}
        for cache in (self._encoded, self._detail, *self._values.values()):
            for t in changed:
                cache.pop(t.number, None)

    # -- columns ------------------------------------------------------------------------------
    def column(self, name: str) -> np.ndarray:
        """Values of a metric (or a sortable trial field) per trial, NaN where absent."""
        col = self._columns.get(name)
        if col is None:
            col = np.array([_column_value(t, name) for t in self.trials], dtype=np.float64)
            self._columns[name] = col
        return col

    def values_json(self, metrics: tuple[str, ...], positions: Sequence[int]) -> bytes:
        """``[[v1, v2, ...], ...]``: the ``metrics`` of the trials at ``positions`` as JSON, each
        trial's values encoded once per write of the trial (a float's shortest repr is the
        costly part of a large front's JSON)."""
        cache = self._values.setdefault(metrics, {})
        parts = []
        for i in positions:
            t = self.trials[i]
            data = cache.get(t.number)
            if data is None:
                data = dumps([float(t.metrics.get(m, math.nan)) for m in metrics])
                cache[t.number] = data
            parts.append(data)
        return b"[" + b",".join(parts) + b"]"

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
        with self._lock:  # one lock per key: a slow computation does not hold up the others
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]

    def counts(self) -> dict[str, int]:
        """Trials per state (every state present, zero when none)."""
        from api.store import TRIAL_STATES

        def compute() -> dict[str, int]:
            out = dict.fromkeys(TRIAL_STATES, 0)
            out.update(collections.Counter(self.states.tolist()))
            return out

        return dict(self.memo("counts", compute))

    # -- encoding -----------------------------------------------------------------------------
    def encoded(self, number: int) -> bytes:
        """The trial's JSON (the ``TrialOut`` shape), encoded once per snapshot."""
        data = self._encoded.get(number)
        if data is None:
            data = dumps(trial_json(self.trials[self._position[number]]))
            self._encoded[number] = data
        return data

    def peek_detail(self, number: int) -> bytes | None:
        """The trial's encoded ``TrialDetail`` when already encoded, else None."""
        return self._detail.get(number)

    def detail(self, number: int, load: Callable[[], TrialInfo]) -> bytes:
        """The trial's ``TrialDetail`` JSON: ``load()`` reads the trial with its measurements
        (the snapshot's rows carry none), encoded once per write of the trial."""
        data = self._detail.get(number)
        if data is None:
            data = dumps(trial_json(load(), detail=True))
            self._detail[number] = data
        return data

    def body(self, key: Any, encode: Callable[[], bytes], *, gzipped: bool = False) -> bytes:
        """A response body: ``encode()`` once per snapshot for ``key``, and gzip-compressed once
        more when ``gzipped``."""
        if not gzipped:
            return self.memo(("body", key), encode)
        # Level 1: for these bodies (numbers as JSON) within a few % of level 5's size, 3-4x faster.
        return self.memo(("gzip", key), lambda: gzip.compress(self.memo(("body", key), encode), 1, mtime=0))

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


SETTLE_TRIALS = 2000
"""Studies at least this large are exempted from full garbage collections once read."""


def settle_heap(trials: int) -> None:
    """Exempt the objects alive now from the cyclic garbage collector (``gc.freeze``) after a
    large study's ``trials`` were read into memory: tens of thousands of long-lived rows would
    otherwise be traversed by every full collection, a pause of 50-190 ms in the middle of some
    request. Frozen objects are still freed when no longer referenced (snapshots hold no
    reference cycles); only cyclic garbage alive at this moment is kept. Smaller studies do not
    need it."""
    if trials >= SETTLE_TRIALS:
        gc.freeze()


def _column_value(t: TrialInfo, name: str) -> float:
    return _field_value(t, name) if name in SORT_FIELDS else t.metrics.get(name, math.nan)


def _field_value(t: TrialInfo, name: str) -> float:
    if name == "number":
        return float(t.number)
    if name == "duration_s":
        if t.started_at is None or t.finished_at is None:
            return math.nan
        return t.finished_at - t.started_at
    value = getattr(t, name)
    return math.nan if value is None else float(value)


async def snapshot_of(cache: ResultsCache, study_id: str) -> StudySnapshot:
    """The study's current snapshot: served on the event loop when cached, else built in the
    thread pool (reading trials can take a while for a large study), once for all the requests
    waiting for it, and never older than the version this request saw."""
    version = cache.version(study_id)
    snap = cache.cached(study_id)
    while snap is None or snap.version < version:
        snap = await in_thread_once(("snapshot", id(cache), study_id), lambda: cache.snapshot(study_id))
    return snap


async def body_of(snap: StudySnapshot, key: Any, encode: Callable[[], bytes], *, gzipped: bool) -> bytes:
    """``snap.body(key, encode, gzipped=...)``, computed in the thread pool the first time."""
    hit = snap.peek(("gzip" if gzipped else "body", key))
    if hit is not None:
        return hit
    return await in_thread_once(("body", id(snap), key, gzipped), lambda: snap.body(key, encode, gzipped=gzipped))


class ResultsCache:
    """Latest snapshot per study (least recently used ones dropped past ``capacity``)."""

    def __init__(self, store: SqlStore, capacity: int = 16) -> None:
        self.store = store
        self.capacity = capacity
        self._snapshots: OrderedDict[str, StudySnapshot] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._counts: dict[str, tuple[int, dict[str, int]]] = {}
        """Trial counts per study at a version, for study lists (only changed studies are counted)."""

    def counts_many(self, studies: Sequence[StudyInfo]) -> dict[str, dict[str, int]]:
        """Trials per state of each study, at (at least) the version each ``StudyInfo`` carries:
        from the study's snapshot or the last count at that version, else counted in one query."""
        out: dict[str, dict[str, int]] = {}
        missing = []
        for study in studies:
            snap = self._snapshots.get(study.id)
            cached = self._counts.get(study.id)
            if snap is not None and snap.version == study.version:
                out[study.id] = snap.counts()
            elif cached is not None and cached[0] == study.version:
                out[study.id] = dict(cached[1])
            else:
                missing.append(study)
        if missing:
            counted = self.store.trial_counts_many([s.id for s in missing])
            with self._guard:
                for study in missing:
                    # Counted after the version was read: at least that version, so keyed by it (a
                    # newer version is counted again).
                    self._counts[study.id] = (study.version, counted[study.id])
                    out[study.id] = dict(counted[study.id])
        return out

    def version(self, study_id: str) -> int:
        """The study's current version (one cheap query; raises NotFoundError for no study)."""
        return self.store.study_version(study_id)[0]

    def cached(self, study_id: str) -> StudySnapshot | None:
        """The snapshot held for the study, whatever its version (no query)."""
        return self._snapshots.get(study_id)

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
            # A write between reading the study and the trials is caught by the next request
            # (the snapshot keeps the older version number, so it refreshes again).
            if snap is None:
                snap = StudySnapshot(study, self.store.list_trials(study_id), load_stored_spec(study.spec))
                settle_heap(len(snap.trials))
            else:
                snap = StudySnapshot.refreshed(snap, study, self.store.list_trials(study_id, since=snap.version))
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
            self._counts.pop(study_id, None)
