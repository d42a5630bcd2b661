"""The Arrow schemas of ``trials.parquet`` and ``measurements.parquet``, and records <-> tables.

``trials.parquet`` has one row per trial and ``measurements.parquet`` one row per trial, repeat
and epoch (columns ``trial_id``, ``number``, ``repeat``, ``epoch``, ``reported_at``, then
``metric.*``).

Schema of ``trials.parquet`` (column order is fixed; see :func:`trials_schema`):

====================  ==========================  =============================================
column                type                        meaning
====================  ==========================  =============================================
trial_id              string, not null            unique id within the study
number                int64, not null             0-based creation order
state                 string, not null            PENDING, RUNNING, COMPLETED, FAILED, ...
param.<name>          per parameter (see below)   value, null when the parameter was inactive
metric.<name>         float64                     mean over repeats
metric_std.<name>     float64                     sample std over repeats (null below 2)
n_repeats             int64, not null             repeats that reported final metrics
seeds                 list<int64>                 seed of each repeat
repeat_metrics        string (JSON)               final metrics of each repeat
details               string (JSON)               non-metric data of each repeat (the cost breakdown)
created_at ...        timestamp[us, UTC]          created_at, started_at, finished_at
duration_s            float64                     finished_at - started_at
node                  string                      worker node that ran the trial
error                 string                      why it failed / was pruned / cancelled
attempts              int64, not null             starts of the trial (restarts after a lost worker)
====================  ==========================  =============================================

Parameter columns come in the spec's declaration order; their type follows the parameter:
``float`` -> float64, ``int`` -> int64, ``discrete`` / ``categorical`` -> int64, float64, bool or
string when every value is of that kind, else a JSON string (e.g. a list of layer widths).
``metric.*`` columns are the spec's objective and constraint metrics plus every metric any
trial reported, sorted by name. The encodings are kept in the schema metadata
(``dse.param_encodings``) so that reading back restores the original values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dse.results.records import Measurement, TrialRecord, record_from_plain, record_to_plain

if TYPE_CHECKING:
    from dse.spec import StudySpec

FORMAT_VERSION = 1
"""Version of the results directory layout, stored in ``study.json`` and the Parquet metadata."""

PARAM_PREFIX = "param."
METRIC_PREFIX = "metric."
STD_PREFIX = "metric_std."

TIMESTAMP = pa.timestamp("us", tz="UTC")
_ENCODING_TYPES = {"float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_(), "string": pa.string(),
                   "json": pa.string()}


# -- parameter encodings --------------------------------------------------------------------------
def infer_encoding(values: Iterable[Any]) -> str:
    """The column encoding that holds every value exactly: int64, float64, bool, string or json."""
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int64")
        elif isinstance(v, float):
            kinds.add("float64")
        elif isinstance(v, str):
            kinds.add("string")
        else:
            kinds.add("json")
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {"int64", "float64"}:
        return "float64"
    return "json" if kinds else "float64"


def spec_param_encodings(spec: StudySpec | None) -> dict[str, str]:
    """Column encoding of each parameter declared in ``spec``, in declaration order."""
    if spec is None:
        return {}
    out = {}
    for p in spec.parameters:
        if p.type == "float":
            out[p.name] = "float64"
        elif p.type == "int":
            out[p.name] = "int64"
        else:
            out[p.name] = infer_encoding(p.values)
    return out


def _encode_param(value: Any, encoding: str) -> Any:
    if value is None:
        return None
    if encoding == "json":
        return json.dumps(value, sort_keys=True)
    if encoding == "float64":
        return float(value)
    return value


def _decode_param(value: Any, encoding: str) -> Any:
    if value is None:
        return None
    if encoding == "json":
        return json.loads(value)
    return value


# -- schemas --------------------------------------------------------------------------------------
def trials_schema(param_encodings: Mapping[str, str], metric_names: Iterable[str]) -> pa.Schema:
    """The explicit Arrow schema of ``trials.parquet`` for these parameters and metrics."""
    metrics = sorted(set(metric_names))
    fields = [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("number", pa.int64(), nullable=False),
        pa.field("state", pa.string(), nullable=False),
    ]
    fields += [pa.field(PARAM_PREFIX + name, _ENCODING_TYPES[enc]) for name, enc in param_encodings.items()]
    fields += [pa.field(METRIC_PREFIX + m, pa.float64()) for m in metrics]
    fields += [pa.field(STD_PREFIX + m, pa.float64()) for m in metrics]
    fields += [
        pa.field("n_repeats", pa.int64(), nullable=False),
        pa.field("seeds", pa.list_(pa.int64())),
        pa.field("repeat_metrics", pa.string()),
        pa.field("details", pa.string()),
        pa.field("created_at", TIMESTAMP),
        pa.field("started_at", TIMESTAMP),
        pa.field("finished_at", TIMESTAMP),
        pa.field("duration_s", pa.float64()),
        pa.field("node", pa.string()),
        pa.field("error", pa.string()),
        pa.field("attempts", pa.int64(), nullable=False),
    ]
    meta = {"dse.format": str(FORMAT_VERSION), "dse.param_encodings": json.dumps(dict(param_encodings))}
    return pa.schema(fields, metadata=meta)


def measurements_schema(metric_names: Iterable[str]) -> pa.Schema:
    """The explicit Arrow schema of ``measurements.parquet`` for these metrics."""
    fields = [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("number", pa.int64(), nullable=False),
        pa.field("repeat", pa.int64(), nullable=False),
        pa.field("epoch", pa.int64(), nullable=False),
        pa.field("reported_at", TIMESTAMP),
    ]
    fields += [pa.field(METRIC_PREFIX + m, pa.float64()) for m in sorted(set(metric_names))]
    return pa.schema(fields, metadata={"dse.format": str(FORMAT_VERSION)})


def _spec_metrics(spec: StudySpec | None) -> list[str]:
    if spec is None:
        return []
    return [o.metric for o in spec.objectives] + [c.metric for c in spec.constraints]


def _param_encodings(spec: StudySpec | None, records: Sequence[TrialRecord]) -> dict[str, str]:
    enc = spec_param_encodings(spec)
    extra: dict[str, list[Any]] = {}
    for r in records:
        for name, value in r.params.items():
            if name not in enc:
                extra.setdefault(name, []).append(value)
    for name in sorted(extra):
        enc[name] = infer_encoding(extra[name])
    return enc


def _trial_row(r: TrialRecord, encodings: Mapping[str, str]) -> dict[str, Any]:
    """The Parquet row of ``r``: its plain form (:func:`~dse.results.records.record_to_plain`,
    shared with the SQL store) in this file's columns."""
    plain = record_to_plain(r)
    row: dict[str, Any] = {"trial_id": plain["trial_id"], "number": plain["number"], "state": plain["state"]}
    for name, enc in encodings.items():
        row[PARAM_PREFIX + name] = _encode_param(plain["params"].get(name), enc)
    for name, value in plain["metrics"].items():
        row[METRIC_PREFIX + name] = value
    for name, value in plain["metrics_std"].items():
        row[STD_PREFIX + name] = value
    row.update(
        n_repeats=plain["n_repeats"],
        seeds=plain["seeds"],
        repeat_metrics=json.dumps(plain["repeat_metrics"]) if plain["repeat_metrics"] else None,
        details=json.dumps(plain["details"], sort_keys=True, allow_nan=False) if plain["details"] else None,
        created_at=r.created_at,  # timestamp columns take the datetimes themselves
        started_at=r.started_at,
        finished_at=r.finished_at,
        duration_s=plain["duration_s"],
        node=plain["node"],
        error=plain["error"],
        attempts=plain["attempts"],
    )
    return row


class RowCache:
    """Rows already built for unchanged records (same record object), so that rewriting the
    tables after each trial costs one new row rather than one per trial."""

    def __init__(self) -> None:
        self.trials: dict[str, tuple[TrialRecord, str, dict[str, Any]]] = {}
        self.measurements: dict[str, tuple[TrialRecord, list[dict[str, Any]]]] = {}

    def trial_row(self, r: TrialRecord, encodings: Mapping[str, str], key: str) -> dict[str, Any]:
        hit = self.trials.get(r.trial_id)
        if hit is not None and hit[0] is r and hit[1] == key:
            return hit[2]
        row = _trial_row(r, encodings)
        self.trials[r.trial_id] = (r, key, row)
        return row

    def measurement_rows(self, r: TrialRecord) -> list[dict[str, Any]]:
        hit = self.measurements.get(r.trial_id)
        if hit is not None and hit[0] is r:
            return hit[1]
        rows = _measurement_rows(r)
        self.measurements[r.trial_id] = (r, rows)
        return rows


def trials_table(records: Sequence[TrialRecord], spec: StudySpec | None = None,
                 cache: RowCache | None = None, *, encodings: Mapping[str, str] | None = None,
                 metrics: Iterable[str] | None = None) -> pa.Table:
    """The ``trials.parquet`` table of ``records`` (sorted by trial number); ``encodings`` and
    ``metrics`` give the columns when the records are part of a larger table."""
    records = sorted(records, key=lambda r: r.number)
    if encodings is None:
        encodings = _param_encodings(spec, records)
    if metrics is None:
        metrics = set(_spec_metrics(spec))
        for r in records:
            metrics.update(r.metrics)
    schema = trials_schema(encodings, metrics)
    if cache is None:
        rows = [_trial_row(r, encodings) for r in records]
    else:
        key = json.dumps(encodings)
        rows = [cache.trial_row(r, encodings, key) for r in records]
    return pa.Table.from_pylist(rows, schema=schema)


def _measurement_rows(r: TrialRecord) -> list[dict[str, Any]]:
    rows = []
    for m in r.measurements:
        row = {"trial_id": r.trial_id, "number": r.number, "repeat": m.repeat, "epoch": m.epoch,
               "reported_at": m.reported_at}
        row.update({METRIC_PREFIX + k: v for k, v in m.metrics.items()})
        rows.append(row)
    return rows


def measurements_table(records: Sequence[TrialRecord], cache: RowCache | None = None, *,
                       metrics: Iterable[str] | None = None) -> pa.Table:
    """The ``measurements.parquet`` table: one row per trial, repeat and epoch (``metrics``: the
    metric columns, when the records are part of a larger table)."""
    records = sorted(records, key=lambda r: r.number)
    if metrics is None:
        metrics = set()
        for r in records:
            for m in r.measurements:
                metrics.update(m.metrics)
    rows: list[dict[str, Any]] = []
    for r in records:
        rows.extend(cache.measurement_rows(r) if cache is not None else _measurement_rows(r))
    return pa.Table.from_pylist(rows, schema=measurements_schema(metrics))


class IncrementalTables:
    """The two tables of a changing set of records (a running study's), rebuilt in part: rows of
    the records replaced since the last full build are cut out of it and the new rows appended
    (then sorted by number), so that one more trial costs a few rows, not a whole table. A full
    build happens when the columns change (a new metric, a parameter outside the spec) or when
    the replaced rows pass :attr:`REBUILD_FRACTION` of the table. Same tables as
    :func:`trials_table` / :func:`measurements_table` of all the records."""

    REBUILD_FRACTION = 1 / 16
    """Share of replaced records past which the next table is built whole."""

    def __init__(self, spec: StudySpec | None = None) -> None:
        self.spec = spec
        self._records: dict[int, TrialRecord] = {}
        self._rows = RowCache()
        self._metric_uses: dict[str, int] = dict.fromkeys(_spec_metrics(spec), 1)
        self._measured_uses: dict[str, int] = {}
        self._spec_encodings = spec_param_encodings(spec)
        self._extra_params = 0
        """Records with a parameter the spec does not declare (their encodings are inferred)."""
        self._encodings = dict(self._spec_encodings)
        self._built: dict[str, tuple[pa.Table, Any, set[int]]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def update(self, records: Iterable[TrialRecord]) -> None:
        """Add records, or replace the stored ones of the same trial numbers."""
        infer = False
        for r in records:
            old = self._records.get(r.number)
            if old is not None:
                self._count(old, -1)
            self._count(r, +1)
            infer = infer or any(name not in self._spec_encodings for name in r.params)
            self._records[r.number] = r
            for _table, _key, changed in self._built.values():
                changed.add(r.number)
        if infer or (self._extra_params == 0 and self._encodings != self._spec_encodings):
            self._encodings = _param_encodings(self.spec, list(self._records.values()))

    def _count(self, r: TrialRecord, sign: int) -> None:
        for name in r.metrics:
            self._metric_uses[name] = self._metric_uses.get(name, 0) + sign
        for name in {k for m in r.measurements for k in m.metrics}:
            self._measured_uses[name] = self._measured_uses.get(name, 0) + sign
        if any(name not in self._spec_encodings for name in r.params):
            self._extra_params += sign

    def trials(self) -> pa.Table:
        """``trials.parquet``'s table of the records."""
        metrics = sorted(k for k, n in self._metric_uses.items() if n > 0)
        encodings = dict(self._encodings)

        def build(records: Sequence[TrialRecord]) -> pa.Table:
            return trials_table(records, self.spec, self._rows, encodings=encodings, metrics=metrics)

        return self._table("trials", (json.dumps(encodings), metrics), build)

    def measurements(self) -> pa.Table:
        """``measurements.parquet``'s table of the records."""
        metrics = sorted(k for k, n in self._measured_uses.items() if n > 0)
        return self._table("measurements", metrics,
                           lambda records: measurements_table(records, self._rows, metrics=metrics))

    def _table(self, name: str, key: Any, build: Any) -> pa.Table:
        import pyarrow.compute as pc

        built = self._built.get(name)
        if built is not None and built[1] == key and not built[2]:
            return built[0]
        if built is None or built[1] != key or len(built[2]) > self.REBUILD_FRACTION * max(len(self._records), 64):
            table = build(list(self._records.values()))
        else:
            base, _key, changed = built
            numbers = pa.array(sorted(changed), type=pa.int64())
            kept = base.filter(pc.invert(pc.is_in(base["number"], value_set=numbers)))
            fresh = build([self._records[n] for n in changed if n in self._records])
            # A stable sort: a trial's measurement rows keep their order.
            table = pa.concat_tables([kept, fresh]).sort_by("number")
        self._built[name] = (table, key, set())
        return table


def records_from_tables(trials: pa.Table, measurements: pa.Table | None = None) -> list[TrialRecord]:
    """Rebuild :class:`TrialRecord` objects from the two tables (inverse of the writers)."""
    meta = trials.schema.metadata or {}
    encodings = json.loads(meta.get(b"dse.param_encodings", b"{}"))
    by_trial: dict[str, list[Measurement]] = {}
    if measurements is not None:
        for row in measurements.to_pylist():
            metrics = {k[len(METRIC_PREFIX):]: v for k, v in row.items()
                       if k.startswith(METRIC_PREFIX) and v is not None}
            by_trial.setdefault(row["trial_id"], []).append(
                Measurement(epoch=row["epoch"], metrics=metrics, repeat=row["repeat"], reported_at=row["reported_at"]))
    out = []
    for row in trials.to_pylist():
        params = {}
        for key, value in row.items():
            if key.startswith(PARAM_PREFIX) and value is not None:
                name = key[len(PARAM_PREFIX):]
                params[name] = _decode_param(value, encodings.get(name, "string"))
        plain = {
            **{k: row.get(k) for k in ("trial_id", "number", "state", "seeds", "created_at", "started_at",
                                       "finished_at", "node", "error", "attempts")},
            "params": params,
            "repeat_metrics": json.loads(row["repeat_metrics"]) if row.get("repeat_metrics") else [],
            "details": json.loads(row["details"]) if row.get("details") else [],
            "metrics": {k[len(METRIC_PREFIX):]: v for k, v in row.items() if k.startswith(METRIC_PREFIX) and v is not None},
            "metrics_std": {k[len(STD_PREFIX):]: v for k, v in row.items() if k.startswith(STD_PREFIX) and v is not None},
        }
        out.append(record_from_plain(plain, by_trial.get(row["trial_id"], ())))
    return out
