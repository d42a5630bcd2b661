"""Trial records, the sink protocol the runner writes to, and the Parquet results directory.

``TrialRecord`` / ``TrialState`` / ``TrialSink`` live in :mod:`dse.results.records` (plain Python);
the Parquet side (:class:`ParquetResults`, readers, ``export_results``) in
:mod:`dse.results.parquet` and is imported on first use, so searchers and the API can use records
without loading pyarrow.
"""

from __future__ import annotations

import importlib
from typing import Any

from dse.results.records import (
    DETAILS_KEY,
    EVALUATED_STATES,
    TERMINAL_STATES,
    Measurement,
    MemorySink,
    TeeSink,
    TrialRecord,
    TrialSink,
    TrialState,
    aggregate_repeats,
    check_transition,
    json_safe,
    merge_record,
    normalize_metrics,
    record_from_plain,
    record_to_plain,
    split_details,
    utc_now,
)

_PARQUET = {
    "IncrementalTables", "ParquetResults", "export_results", "read_trials", "read_trials_table", "read_measurements_table",
    "read_study", "trials_table", "measurements_table", "records_from_tables", "trials_schema",
    "measurements_schema", "metric_column", "TRIALS_FILE", "MEASUREMENTS_FILE", "STUDY_FILE",
}

__all__ = [
    "DETAILS_KEY", "EVALUATED_STATES", "TERMINAL_STATES", "Measurement", "MemorySink", "TeeSink", "TrialRecord", "TrialSink", "TrialState",
    "aggregate_repeats", "check_transition", "json_safe", "merge_record", "normalize_metrics",
    "record_from_plain", "record_to_plain", "split_details", "utc_now", *sorted(_PARQUET),
]


def __getattr__(name: str) -> Any:
    if name in _PARQUET:
        return getattr(importlib.import_module("dse.results.parquet"), name)
    raise AttributeError(f"module 'dse.results' has no attribute {name!r}")
