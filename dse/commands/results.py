"""``dse pareto``, ``dse best``, ``dse export``: queries over a study's results directory, or over
a study on a study service (``STUDY_ID --server URL``).

Everything is computed from ``trials.parquet`` (and the spec in ``study.json``) each time:
ranks, fronts, hypervolume and best trials are never stored. A study on a service is read the
same way (its spec and its ``trials.parquet`` endpoint), so both print the same tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any


def register(sub: argparse._SubParsersAction) -> None:
    from dse.commands.remote import add_server_options

    objective_help = ("objective as METRIC:min|max[:THRESHOLD]; repeat for 2 or 3 (default: the study's "
                      "objectives)")
    source_help = "results directory (written by `dse run`), or a study id with --server"
    p = sub.add_parser("pareto", help="print the Pareto front (and hypervolume) of a study's results")
    p.add_argument("results", help=source_help)
    add_server_options(p, required=False)
    p.add_argument("--objective", "-o", action="append", default=None, metavar="METRIC:GOAL", help=objective_help)
    p.add_argument("--ranks", type=int, default=1, metavar="N",
                   help="print the first N non-dominated fronts (default 1: the Pareto front)")
    p.add_argument("--no-constraints", action="store_true", help="ignore the study's constraints")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="also draw the front and the dominated points to FILE (.png, .svg or .pdf; "
                        "2 objectives: a scatter with the front's step line, 3: a scatter matrix)")
    p.set_defaults(func=_pareto)

    p = sub.add_parser("best", help="print the best trial per objective, under the study's constraints")
    p.add_argument("results", help=source_help)
    add_server_options(p, required=False)
    p.add_argument("--objective", "-o", action="append", default=None, metavar="METRIC:GOAL", help=objective_help)
    p.add_argument("--no-constraints", action="store_true", help="ignore the study's constraints")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_best)

    p = sub.add_parser("export", help="write the trials table (with rank and feasibility) as CSV, JSON or Parquet")
    p.add_argument("results", help=source_help)
    add_server_options(p, required=False)
    p.add_argument("--format", choices=("csv", "json", "parquet"), default=None,
                   help="output format (default: from --output's suffix, else csv)")
    p.add_argument("--output", default=None, help="file to write (default: standard output; parquet needs a file)")
    p.add_argument("--measurements", action="store_true",
                   help="export measurements.parquet (one row per trial, repeat and epoch) instead")
    p.set_defaults(func=_export)


# -- loading ------------------------------------------------------------------------------------
def load_results(directory: str) -> tuple[Any, list[Any]]:
    """The stored spec and every trial record of a results directory."""
    from dse.results import read_study, read_trials
    from dse.spec import load_spec

    spec = load_spec(read_study(directory), validate_targets=False)
    return spec, read_trials(directory)


@dataclasses.dataclass
class ResultsSource:
    """A study's results, read from a results directory or from a study service: the same
    spec, records and Parquet tables either way, so every command prints the same."""

    spec: Any
    """The study's :class:`~dse.spec.StudySpec`."""
    records: list[Any]
    """Every trial's :class:`~dse.results.TrialRecord`, by number."""
    trials_table: Callable[[], Any]
    """``trials.parquet`` as a pyarrow Table."""
    measurements_table: Callable[[], Any]
    """``measurements.parquet`` as a pyarrow Table."""


def open_results(ref: str, server: str | None = None, token: str | None = None) -> ResultsSource:
    """The results of ``ref``: a study id on ``server`` when one is given, else a results
    directory, else a study id on ``$DSE_SERVER`` when that is set."""
    import os

    from dse.client import SERVER_ENV

    if server or (not Path(ref).is_dir() and os.environ.get(SERVER_ENV)):
        from dse.client import Client

        client = Client(server, token=token)
        spec = client.spec(ref)
        trials = client.trials_table(ref)
        measurements = client.trials_table(ref, "measurements")
        client.close()
        from dse.results import records_from_tables

        return ResultsSource(spec, records_from_tables(trials, measurements), lambda: trials, lambda: measurements)
    from dse.results import read_measurements_table, read_trials_table

    spec, records = load_results(ref)
    return ResultsSource(spec, records, lambda: read_trials_table(ref), lambda: read_measurements_table(ref))


def _source(args: argparse.Namespace) -> ResultsSource:
    return open_results(args.results, getattr(args, "server", None), getattr(args, "token", None))


def _objectives(spec: Any, given: Sequence[str] | None, records: Sequence[Any] = ()) -> tuple[Any, ...]:
    """The objectives of ``--objective`` (each must name a metric some trial recorded), else the
    study's."""
    from dse.errors import SpecError
    from dse.pareto import as_objectives

    if not given:
        return tuple(spec.objectives)
    objectives = as_objectives(given)
    known = {m for r in records for m in r.metrics}
    for i, o in enumerate(objectives):
        if known and o.metric not in known:
            raise SpecError(f"--objective[{i}]", f"got {o.metric!r}, a metric no trial of this study recorded; "
                                                 f"accepted: one of {', '.join(sorted(known))}")
    return objectives


# -- formatting ---------------------------------------------------------------------------------
def format_cell(value: Any) -> str:
    """A table cell: numbers in ~4 significant digits, data as compact JSON, None as ``-``."""
    from dse.runner.progress import format_value

    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows under headers in aligned columns (numbers right-aligned)."""
    cells = [[format_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) or row[i] is None
                   for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _value_with_std(record: Any, metric: str) -> str:
    value = record.metrics.get(metric)
    if value is None:
        return "-"
    std = record.metrics_std.get(metric)
    return format_cell(value) + (f" ± {format_cell(std)}" if std is not None else "")


def summary_line(spec: Any, records: Sequence[Any]) -> str:
    """``study quickstart: 24 trials (22 completed, 2 failed)``."""
    from dse.results import TrialState

    order = [TrialState.COMPLETED, TrialState.FAILED, TrialState.PRUNED, TrialState.CANCELLED,
             TrialState.RUNNING, TrialState.PENDING]
    counts = {state: sum(1 for r in records if r.state is state) for state in order}
    detail = ", ".join(f"{n} {state.value.lower()}" for state, n in counts.items() if n)
    return f"study {spec.name}: {len(records)} trials" + (f" ({detail})" if detail else "")


# -- pareto -------------------------------------------------------------------------------------
def pareto_report(spec: Any, records: Sequence[Any], objectives: Sequence[Any], *,
                  ranks: int = 1, constraints: bool = True) -> dict[str, Any]:
    """The data ``dse pareto`` prints: ranked trials up to ``ranks`` fronts and the hypervolume."""
    from dse.pareto import rank_trials, study_hypervolume

    cons = tuple(spec.constraints) if constraints else ()
    rank = rank_trials(records, objectives, cons)
    chosen = [r for r in records if rank[r.trial_id] is not None and rank[r.trial_id] < ranks]
    first = objectives[0]
    chosen.sort(key=lambda r: (rank[r.trial_id], first.loss(r.metrics), r.number))
    hv = study_hypervolume(records, objectives, cons) if 1 <= len(objectives) <= 3 else None
    return {
        "study": spec.name,
        "objectives": [o.to_dict() for o in objectives],
        "constraints": [str(c) for c in cons],
        "eligible": sum(1 for v in rank.values() if v is not None),
        "hypervolume": hv,
        "trials": [
            {"rank": rank[r.trial_id], "trial_id": r.trial_id, "number": r.number, "params": dict(r.params),
             "metrics": {m: r.metrics.get(m) for m in _shown_metrics(objectives, cons)},
             "metrics_std": {m: r.metrics_std[m] for m in _shown_metrics(objectives, cons) if m in r.metrics_std}}
            for r in chosen
        ],
    }


def _shown_metrics(objectives: Sequence[Any], constraints: Sequence[Any]) -> list[str]:
    return list(dict.fromkeys([o.metric for o in objectives] + [c.metric for c in constraints]))


def _pareto(args: argparse.Namespace) -> int:
    if args.ranks < 1:
        raise ValueError(f"--ranks: got {args.ranks}; accepted: an integer >= 1")
    if args.plot:
        from dse.results.plots import FILE_FORMATS

        if Path(args.plot).suffix.lstrip(".").lower() not in FILE_FORMATS:
            raise ValueError(f"--plot: got {args.plot!r}; accepted: a file name ending in .png, .svg or .pdf")
    source = _source(args)
    spec, records = source.spec, source.records
    objectives = _objectives(spec, args.objective, records)
    report = pareto_report(spec, records, objectives, ranks=args.ranks, constraints=not args.no_constraints)
    if args.plot:
        from dse.results.plots import pareto_figure, save_figure

        cons = () if args.no_constraints else tuple(spec.constraints)
        save_figure(pareto_figure(records, objectives, cons, title=spec.name), args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print_pareto(report, spec, records, sys.stdout)
    return 0


def print_pareto(report: Mapping[str, Any], spec: Any, records: Sequence[Any], out: IO[str]) -> None:
    """Print a :func:`pareto_report` as a summary and a table."""
    by_id = {r.trial_id: r for r in records}
    names = " vs ".join(f"{o['metric']} ({'max' if o['goal'] == 'maximize' else 'min'})" for o in report["objectives"])
    print(summary_line(spec, records), file=out)
    cons = f"; constraints {', '.join(report['constraints'])}" if report["constraints"] else ""
    print(f"front over {names}{cons}: {sum(1 for t in report['trials'] if t['rank'] == 0)} of "
          f"{report['eligible']} eligible trials", file=out)
    if report["hypervolume"] is not None:
        print(f"hypervolume (normalized, reference from thresholds or the worst values + 10%): "
              f"{report['hypervolume']:.4f}", file=out)
    if not report["trials"]:
        print("no completed trial has every objective" + (" and meets the constraints" if report["constraints"] else ""),
              file=out)
        return
    params = list(spec.param_names)
    metrics = list(report["trials"][0]["metrics"])
    headers = ["rank", "trial", *params, *metrics]
    rows = []
    for t in report["trials"]:
        rec = by_id[t["trial_id"]]
        rows.append([t["rank"], t["trial_id"], *[t["params"].get(p) for p in params],
                     *[_value_with_std(rec, m) for m in metrics]])
    print(format_table(headers, rows), file=out)


# -- best ---------------------------------------------------------------------------------------
def best_report(spec: Any, records: Sequence[Any], objectives: Sequence[Any], *,
                constraints: bool = True) -> list[dict[str, Any]]:
    """The data ``dse best`` prints: per objective, its best trial under the constraints."""
    from dse.pareto import best_trials

    cons = tuple(spec.constraints) if constraints else ()
    best = best_trials(records, objectives, cons)
    out = []
    for o in objectives:
        r = best[o.metric]
        out.append({
            "metric": o.metric, "goal": o.goal,
            "trial_id": None if r is None else r.trial_id,
            "value": None if r is None else r.metrics.get(o.metric),
            "std": None if r is None else r.metrics_std.get(o.metric),
            "params": None if r is None else dict(r.params),
            "metrics": None if r is None else {m: r.metrics.get(m) for m in _shown_metrics(objectives, cons)},
        })
    return out


def _best(args: argparse.Namespace) -> int:
    source = _source(args)
    spec, records = source.spec, source.records
    objectives = _objectives(spec, args.objective, records)
    report = best_report(spec, records, objectives, constraints=not args.no_constraints)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print_best(report, spec, records, sys.stdout, constraints=not args.no_constraints)
    return 0


def print_best(report: Sequence[Mapping[str, Any]], spec: Any, records: Sequence[Any], out: IO[str], *,
               constraints: bool = True) -> None:
    """Print a :func:`best_report` as a summary and a table."""
    by_id = {r.trial_id: r for r in records}
    print(summary_line(spec, records), file=out)
    if constraints and spec.constraints:
        print(f"under constraints {', '.join(str(c) for c in spec.constraints)}", file=out)
    params = list(spec.param_names)
    headers = ["objective", "goal", "best", "trial", *params]
    rows = []
    for b in report:
        rec = by_id.get(b["trial_id"]) if b["trial_id"] else None
        rows.append([b["metric"], "max" if b["goal"] == "maximize" else "min",
                     _value_with_std(rec, b["metric"]) if rec else "-", b["trial_id"],
                     *[(b["params"] or {}).get(p) for p in params]])
    print(format_table(headers, rows), file=out)


# -- export -------------------------------------------------------------------------------------
def export_table(source: str | ResultsSource, *, measurements: bool = False) -> Any:
    """The trials table with ``rank`` (over the study's objectives, under its constraints) and
    ``feasible`` columns added, or the measurements table (of a results directory or a source)."""
    import pyarrow as pa

    from dse.pareto import rank_trials

    if isinstance(source, str):
        source = open_results(source)
    if measurements:
        return source.measurements_table()
    spec, records = source.spec, source.records
    table = source.trials_table()
    ranks = rank_trials(records, spec.objectives, spec.constraints)
    feasible = {r.trial_id: r.state.value == "COMPLETED" and all(c.satisfied(r.metrics) for c in spec.constraints)
                for r in records}
    ids = table.column("trial_id").to_pylist()
    table = table.append_column("rank", pa.array([ranks.get(i) for i in ids], pa.int64()))
    return table.append_column("feasible", pa.array([feasible.get(i, False) for i in ids], pa.bool_()))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


def _export(args: argparse.Namespace) -> int:
    fmt = args.format or (Path(args.output).suffix.lstrip(".").lower() if args.output else "csv")
    if fmt not in ("csv", "json", "parquet"):
        raise ValueError(f"--format: got {fmt!r} (from --output's suffix); accepted: csv, json, parquet")
    table = export_table(_source(args), measurements=args.measurements)
    if fmt == "parquet":
        if not args.output:
            raise ValueError("--output: required for --format parquet (binary output)")
        from dse.results.parquet import write_table_atomic

        write_table_atomic(table, Path(args.output))
        print(f"wrote {table.num_rows} rows to {args.output}", file=sys.stderr)
        return 0
    rows = [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()]
    out = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        if fmt == "json":
            json.dump(rows, out, indent=2)
            out.write("\n")
        else:
            import csv

            writer = csv.writer(out)
            writer.writerow(table.column_names)
            for row in rows:
                writer.writerow(["" if v is None else json.dumps(v) if isinstance(v, (list, dict)) else v
                                 for v in row.values()])
    finally:
        if args.output:
            out.close()
    if args.output:
        print(f"wrote {table.num_rows} rows to {args.output}", file=sys.stderr)
    return 0
