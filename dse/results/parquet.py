"""A study's results directory: ``study.json``, ``trials.parquet`` and ``measurements.parquet``.

Both Parquet files are rewritten as a whole, atomically (temporary file in the same directory,
``fsync``, ``os.replace``), each time a trial's record changes, so a reader (pyarrow, pandas,
DuckDB) always sees a complete file and a crash mid-write leaves the previous file in place. The
schemas are described in :mod:`dse.results.schema`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from dse.errors import ConflictError, NotFoundError
from dse.results.records import EVALUATED_STATES, TrialRecord, TrialState, merge_record
from dse.results.schema import (  # noqa: F401 - re-exported through dse.results
    FORMAT_VERSION,
    METRIC_PREFIX,
    IncrementalTables,
    RowCache,
    measurements_schema,
    measurements_table,
    records_from_tables,
    trials_schema,
    trials_table,
)

if TYPE_CHECKING:
    from dse.spec import StudySpec

TRIALS_FILE = "trials.parquet"
MEASUREMENTS_FILE = "measurements.parquet"
STUDY_FILE = "study.json"
LOCK_FILE = ".lock"


# -- atomic files ---------------------------------------------------------------------------------
def _atomic_replace(path: Path, write: Any, fsync: bool = True) -> None:
    """Call ``write(tmp_path)`` then move the finished file over ``path`` in one step.

    ``os.replace`` is atomic, so readers and a crashed writer only ever leave the old or the new
    file; ``fsync`` of the new file first also keeps that true across a power loss (the rename
    itself may then be lost, which leaves the previous, valid file).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_table_atomic(table: pa.Table, path: Path, fsync: bool = True) -> None:
    """Write ``table`` to ``path`` as Parquet so that readers never see a partial file."""
    _atomic_replace(Path(path), lambda tmp: pq.write_table(table, tmp), fsync)


def write_json_atomic(data: Any, path: Path, fsync: bool = True) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    _atomic_replace(Path(path), lambda tmp: Path(tmp).write_text(text), fsync)


# -- reading --------------------------------------------------------------------------------------
def _require_dir(directory: Path) -> Path:
    directory = Path(directory)
    if not (directory / STUDY_FILE).is_file():
        raise NotFoundError(f"{directory}: not a results directory (no {STUDY_FILE})")
    return directory


def read_study(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The spec dict stored in ``study.json`` (raises NotFoundError when absent)."""
    data = json.loads((_require_dir(Path(directory)) / STUDY_FILE).read_text())
    return data["spec"]


def read_trials_table(directory: str | os.PathLike[str]) -> pa.Table:
    """``trials.parquet`` of a results directory."""
    path = _require_dir(Path(directory)) / TRIALS_FILE
    if not path.is_file():
        raise NotFoundError(f"{path}: missing; the results directory is incomplete")
    return pq.read_table(path)


def read_measurements_table(directory: str | os.PathLike[str]) -> pa.Table:
    """``measurements.parquet`` of a results directory (empty when no trial reported)."""
    path = _require_dir(Path(directory)) / MEASUREMENTS_FILE
    return pq.read_table(path) if path.is_file() else measurements_table([])


def read_trials(directory: str | os.PathLike[str]) -> list[TrialRecord]:
    """Every trial's record in a results directory, by trial number."""
    return records_from_tables(read_trials_table(directory), read_measurements_table(directory))


# -- the directory as a sink ----------------------------------------------------------------------
class ParquetResults:
    """A results directory that a study writes as each trial changes (a :class:`TrialSink`).

    ``ParquetResults(directory, spec)`` creates the directory (or, with ``resume=True``, loads
    what an interrupted run left there, refusing a different spec). Results that exist without
    ``resume`` are a :class:`ConflictError`, so a finished study is never overwritten by accident.
    ``overwrite=True`` replaces whatever results are there. One writer at a time holds an
    advisory lock on ``.lock``; a second one gets ConflictError. ``fsync=False`` skips flushing
    each new file to disk before it replaces the old one: still atomic for readers and for a
    crashed process, but a power loss may then leave an empty file. Read a directory without
    writing with :func:`read_trials` / :func:`read_trials_table`.
    """

    def __init__(self, directory: str | os.PathLike[str], spec: StudySpec, *, resume: bool = False,
                 overwrite: bool = False, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.spec = spec
        self.fsync = fsync
        self._records: dict[str, TrialRecord] = {}
        self._cache = RowCache()
        self._measurements_stale = True
        self._lock_fd: int | None = None
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._init_contents(resume, overwrite)
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConflictError(f"{self.directory}: another process is writing these results") from None
        self._lock_fd = fd

    def _init_contents(self, resume: bool, overwrite: bool) -> None:
        study = self.directory / STUDY_FILE
        spec_dict = self.spec.to_dict()
        stored_records: list[TrialRecord] = []
        if study.is_file() and not overwrite:
            stored = json.loads(study.read_text())["spec"]
            stored_records = read_trials(self.directory)
            if stored_records and not resume:
                raise ConflictError(f"{self.directory}: results of study {stored.get('name')!r} exist "
                                    f"({len(stored_records)} trials); resume them (--resume) or choose "
                                    "another results directory")
            if resume and stored != spec_dict:
                changed = sorted(k for k in set(stored) | set(spec_dict) if stored.get(k) != spec_dict.get(k))
                raise ConflictError(f"{self.directory}: the stored study differs from this one in "
                                    f"{', '.join(changed)}; resume with the same spec or use another directory")
        elif (self.directory / TRIALS_FILE).is_file() and not overwrite:
            raise ConflictError(f"{self.directory}: {TRIALS_FILE} exists without {STUDY_FILE}; "
                                "not a results directory this version can resume or overwrite")
        for record in stored_records:
            self._records[record.trial_id] = record
        self._clean_temporaries()
        write_json_atomic({"format": FORMAT_VERSION, "spec": spec_dict}, study, self.fsync)
        self.flush()

    def _clean_temporaries(self) -> None:
        # Left by a process killed mid-write; harmless to readers, removed for tidiness.
        for tmp in self.directory.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    # -- TrialSink ------------------------------------------------------------------------------
    def write_trial(self, record: TrialRecord) -> None:
        """Store ``record`` and rewrite both Parquet files atomically."""
        if self._lock_fd is None:
            raise ConflictError(f"{self.directory}: results are closed")
        self._put(record)
        self.flush()

    def _put(self, record: TrialRecord) -> None:
        old = self._records.get(record.trial_id)
        self._records[record.trial_id] = merge_record(old, record)
        if old is None or old.measurements != record.measurements:
            self._measurements_stale = True

    def flush(self) -> None:
        """Rewrite ``trials.parquet`` (and ``measurements.parquet`` when a trial's measurements
        changed) from the records held."""
        records = list(self._records.values())
        write_table_atomic(trials_table(records, self.spec, self._cache), self.directory / TRIALS_FILE, self.fsync)
        if self._measurements_stale:
            write_table_atomic(measurements_table(records, self._cache), self.directory / MEASUREMENTS_FILE,
                               self.fsync)
            self._measurements_stale = False

    # -- views ----------------------------------------------------------------------------------
    def records(self, states: Iterable[TrialState | str] | None = None) -> list[TrialRecord]:
        """Latest record of each trial, by number; only those in ``states`` when given."""
        wanted = None if states is None else {TrialState(str(s).upper()) for s in states}
        return sorted((r for r in self._records.values() if wanted is None or r.state in wanted),
                      key=lambda r: r.number)

    def finished(self) -> list[TrialRecord]:
        """Trials evaluated (COMPLETED, FAILED, PRUNED: what a resumed study must not re-run)."""
        return [r for r in self.records() if r.state in EVALUATED_STATES]

    def unfinished(self) -> list[TrialRecord]:
        """Trials left PENDING, RUNNING or CANCELLED by an interrupted run (re-run on resume)."""
        return [r for r in self.records() if r.state not in EVALUATED_STATES]

    def next_number(self) -> int:
        """The number the next new trial gets (one past the highest stored)."""
        return 1 + max((r.number for r in self._records.values()), default=-1)

    def get(self, trial_id: str) -> TrialRecord | None:
        """The latest record of ``trial_id``, or None."""
        return self._records.get(trial_id)

    def table(self) -> pa.Table:
        """The trials table as written (for Pareto / best queries)."""
        return trials_table(list(self._records.values()), self.spec)

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the writer lock (records stay readable from disk)."""
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> ParquetResults:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def export_results(directory: str | os.PathLike[str], records: Iterable[TrialRecord],
                   spec: StudySpec) -> Path:
    """Write a complete results directory from records held elsewhere (e.g. the API's store).

    Results already in ``directory`` are replaced; the writer lock is held while writing.
    """
    with ParquetResults(directory, spec, overwrite=True) as results:
        for record in records:
            results._put(record)
        results.flush()
        return results.directory


def metric_column(name: str) -> str:
    """Column name of a metric's mean in ``trials.parquet``."""
    return METRIC_PREFIX + name
