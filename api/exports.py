"""Parquet downloads of a study's trials, kept up to date as the study runs.

A download is the engine's Parquet schema (:mod:`dse.results.schema`) of every trial. Building it
from scratch reads and converts every trial (seconds for 10,000 trials), so the service keeps, per
study, the records and their tables (:class:`dse.results.IncrementalTables`): each new version of
the study reads only the trials written since the last download, and the file is written once per
version (memoized on the study's snapshot). A cache of computations: the store stays the only
record of the trials.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import Literal

from api.snapshot import StudySnapshot, settle_heap
from api.store import SqlStore
from api.store.convert import to_record

Table = Literal["trials", "measurements"]


class _Export:
    def __init__(self, spec: object) -> None:
        from dse.results import IncrementalTables

        self.tables = IncrementalTables(spec)  # type: ignore[arg-type]
        self.version = 0
        """The study version the records were read at (at least)."""
        self.lock = threading.Lock()


class StudyExports:
    """The Parquet files of the most recently downloaded studies (``capacity`` of them)."""

    def __init__(self, store: SqlStore, capacity: int = 4) -> None:
        self.store = store
        self.capacity = capacity
        self._exports: OrderedDict[str, _Export] = OrderedDict()
        self._guard = threading.Lock()

    def parquet(self, snap: StudySnapshot, table: Table) -> bytes:
        """The study's ``table`` as a Parquet file, at (at least) the snapshot's version."""
        return snap.memo(("parquet", table), lambda: self._write(snap, table))

    def cached(self, snap: StudySnapshot, table: Table) -> bytes | None:
        """The file when already written for this snapshot, else None."""
        return snap.peek(("parquet", table))

    def _write(self, snap: StudySnapshot, table: Table) -> bytes:
        import pyarrow.parquet as pq

        study_id = snap.study.id
        with self._guard:
            export = self._exports.get(study_id)
            if export is None:
                export = self._exports[study_id] = _Export(snap.spec)
            self._exports.move_to_end(study_id)
            while len(self._exports) > self.capacity:
                self._exports.popitem(last=False)
        with export.lock:
            if export.version < snap.version:
                # The trials written since the last download (all of them the first time); read
                # after the snapshot's version, so at least as new.
                first = export.version == 0
                changed = self.store.list_trials(study_id, since=export.version, measurements=True)
                export.tables.update(to_record(t) for t in changed)
                export.version = snap.version
                if first:
                    settle_heap(len(export.tables))
            arrow = export.tables.trials() if table == "trials" else export.tables.measurements()
        buffer = io.BytesIO()
        pq.write_table(arrow, buffer)
        return buffer.getvalue()

    def forget(self, study_id: str) -> None:
        """Drop a study's export (after it was deleted)."""
        with self._guard:
            self._exports.pop(study_id, None)
