"""``dse submit``, ``dse status``, ``dse watch``, ``dse cancel``, ``dse delete``: studies on a
study service (``dse serve``), through :class:`dse.client.Client`.

The server comes from ``--server URL`` or ``$DSE_SERVER``, the token from ``--token`` or
``$DSE_TOKEN``. ``dse watch`` (and ``dse submit --watch``) draws the same progress line as
``dse run`` and ends with the same front / best table; the exit status is ``dse run``'s: 0 when
the study completed, 1 when it failed or was cancelled, 130 on Ctrl-C (the study goes on on the
server), 2 for an error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dse.client import Client, Study, StudyEvent
    from dse.spec import StudySpec

EXIT_OK = 0
EXIT_STOPPED = 1  # failed or cancelled, as `dse run`
EXIT_INTERRUPTED = 130


def add_server_options(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--server`` and ``--token`` (from ``$DSE_SERVER`` / ``$DSE_TOKEN`` by default)."""
    where = "the study service's URL" if required else "read a study on this service (ID instead of a directory)"
    p.add_argument("--server", default=None, metavar="URL", help=f"{where}; default $DSE_SERVER")
    p.add_argument("--token", default=None, help="bearer token for the service; default $DSE_TOKEN")


def client_for(args: argparse.Namespace) -> Client:
    """The client of ``--server`` / ``$DSE_SERVER``."""
    from dse.client import Client

    return Client(args.server, token=args.token)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="submit a study (YAML / JSON spec) to a study service (dse serve)")
    p.add_argument("study", help="study spec file (the same schema as `dse run`)")
    add_server_options(p)
    p.add_argument("--watch", action="store_true", help="follow it to its end, as `dse watch` does")
    p.add_argument("--idempotency-key", default=None, metavar="KEY",
                   help="request id: resubmitting with the same key returns the first study (default: a new one)")
    p.add_argument("--quiet", action="store_true", help="with --watch: no progress line; only the final summary")
    p.set_defaults(func=_submit)

    p = sub.add_parser("status", help="list the studies on a service, or show one")
    p.add_argument("id", nargs="?", default=None, help="a study id (default: list the studies)")
    add_server_options(p)
    p.add_argument("--state", action="append", default=None, help="list only studies in this state (repeatable)")
    p.add_argument("--label", action="append", default=None, help="list only studies with label key[=value]")
    p.add_argument("--json", action="store_true", help="print the service's JSON")
    p.set_defaults(func=_status)

    p = sub.add_parser("watch", help="follow a study on a service with a live progress line until it ends")
    p.add_argument("id", help="study id")
    add_server_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress line; only the final summary")
    p.set_defaults(func=_watch)

    p = sub.add_parser("cancel", help="cancel a study on a service (finished trials are kept)")
    p.add_argument("id", help="study id")
    add_server_options(p)
    p.set_defaults(func=_cancel)

    p = sub.add_parser("delete", help="delete a finished study and its trials from a service")
    p.add_argument("id", help="study id")
    add_server_options(p)
    p.set_defaults(func=_delete)


# -- handlers -------------------------------------------------------------------------------------
def _submit(args: argparse.Namespace) -> int:
    from pathlib import Path

    path = Path(args.study)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such study file")
    with client_for(args) as client:
        study = client.submit(path, idempotency_key=args.idempotency_key)
        print(f"submitted {study.name} as {study.id} ({study.state}) to {client.url}", file=sys.stderr)
        print(study.id)
        if not args.watch:
            return EXIT_OK
        return watch(client, study.id, quiet=args.quiet)


def _watch(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        return watch(client, args.id, quiet=args.quiet)


def _cancel(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        study = client.cancel(args.id)
    print(f"study {study.name} ({study.id}): {study.state}")
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        client.delete(args.id)
    print(f"deleted study {args.id}")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from dse.commands.results import format_table

    with client_for(args) as client:
        if args.id:
            study = client.study(args.id)
            if args.json:
                print(json.dumps(study.data, indent=2))
            else:
                print_study(study, sys.stdout)
            return EXIT_OK
        studies = client.studies(state=args.state, label=args.label)
    if args.json:
        print(json.dumps([s.data for s in studies], indent=2))
        return EXIT_OK
    if not studies:
        print("no studies" + (" match" if args.state or args.label else f" on {client.url}"))
        return EXIT_OK
    rows = [[s.id, s.name, s.state, _trials_text(s), _progress_text(s), s.data.get("created_at", "")[:19]]
            for s in studies]
    print(format_table(["id", "name", "state", "trials", "progress", "created"], rows))
    return EXIT_OK


# -- printing ---------------------------------------------------------------------------------------
def _trials_text(study: Study) -> str:
    by_state = study.trials.get("by_state") or {}
    shown = ", ".join(f"{n} {s.lower()}" for s, n in by_state.items() if n)
    return f"{study.trials.get('total', 0)}" + (f" ({shown})" if shown else "")


def _progress_text(study: Study) -> str:
    return "-" if study.progress is None else f"{100 * study.progress:.0f}%"


def print_study(study: Study, out: IO[str]) -> None:
    """``dse status ID``: state, trials, elapsed time and best value per objective."""
    from dse.runner.progress import format_duration, format_value

    print(f"study {study.name} ({study.id}): {study.state}", file=out)
    if study.labels:
        print("labels: " + ", ".join(f"{k}={v}" if v else k for k, v in study.labels.items()), file=out)
    budget = study.trials.get("budget")
    print(f"trials: {_trials_text(study)}" + (f" of {budget}" if budget else ""), file=out)
    if study.elapsed_s is not None:
        print(f"elapsed: {format_duration(study.elapsed_s)}", file=out)
    for b in study.best:
        goal = "max" if b.get("goal") == "maximize" else "min"
        print(f"best {b['metric']} ({goal}): {format_value(float(b['value']))} (trial {b['trial']})", file=out)
    if study.error:
        print(f"error: {study.error.strip().splitlines()[0]}", file=out)


# -- watching ---------------------------------------------------------------------------------------
class RemoteProgress:
    """Turns the study's server-sent events into the engine's progress events, so that the
    ``dse run`` progress bar draws them: counts and elapsed time from the ``study`` events, best
    values tracked from the ``trial`` events with the spec's objectives and constraints."""

    def __init__(self, spec: StudySpec, study: Study) -> None:
        self.spec = spec
        self.name = study.name
        self._by_state: dict[str, int] = dict(study.trials.get("by_state") or {})
        self._budget = study.trials.get("budget")
        self._elapsed = (study.elapsed_s or 0.0, time.monotonic())
        self._best: dict[str, Any] = {}
        self._started = False

    def convert(self, event: StudyEvent) -> Any:
        """The :class:`dse.runner.progress.StudyEvent` for a service event (or None)."""
        from dse.runner.progress import StudyEvent as EngineEvent

        record = None
        if event.kind == "trial":
            record = trial_record(event.data)
            self._track(record)
            kind = {"PENDING": "created", "RUNNING": "started"}.get(record.state.value, "finished")
        elif event.kind == "study":
            self._by_state = dict((event.data.get("trials") or {}).get("by_state") or {})
            self._budget = (event.data.get("trials") or {}).get("budget")
            if event.data.get("elapsed_s") is not None:
                self._elapsed = (float(event.data["elapsed_s"]), time.monotonic())
            kind = "tick"
            if not self._started and event.data.get("state") not in ("QUEUED",):
                self._started = True
                return EngineEvent("study_started", self.snapshot(),
                                   message=f"following study {self.name} ({event.data.get('id')}): "
                                           f"{event.data.get('state')}")
        elif event.kind == "end":
            kind = "study_finished"
        else:
            return None
        return EngineEvent(kind, self.snapshot(), record=record)

    def _track(self, record: Any) -> None:
        from dse.runner.progress import BestValue

        if record.state.value != "COMPLETED" or not all(c.satisfied(record.metrics) for c in self.spec.constraints):
            return
        for o in self.spec.objectives:
            value = o.value(record.metrics)
            best = self._best.get(o.metric)
            if value is not None and (best is None or o.better(value, best.value)):
                self._best[o.metric] = BestValue(o.metric, o.goal, value, record.trial_id)

    def snapshot(self) -> Any:
        from dse.runner.progress import StudyProgress

        n = self._by_state
        base, at = self._elapsed
        return StudyProgress(
            study=self.name, max_trials=self._budget, completed=n.get("COMPLETED", 0), failed=n.get("FAILED", 0),
            pruned=n.get("PRUNED", 0), cancelled=n.get("CANCELLED", 0), running=n.get("RUNNING", 0), resumed=0,
            elapsed_s=base + (time.monotonic() - at),
            best=tuple(self._best[o.metric] for o in self.spec.objectives if o.metric in self._best),
        )


def trial_record(data: Mapping[str, Any]) -> Any:
    """A :class:`~dse.results.TrialRecord` (state, params, metrics, error) from a trial's JSON."""
    from dse.results import TrialRecord

    def number(v: Any) -> float | None:
        try:
            return float(v)  # "NaN" / "Infinity" strings included
        except (TypeError, ValueError):
            return None

    metrics = {k: f for k, v in (data.get("metrics") or {}).items() if (f := number(v)) is not None}
    return TrialRecord(trial_id=str(data["trial_id"]), number=int(data["number"]), state=data["state"],
                       params=dict(data.get("params") or {}), metrics=metrics, error=data.get("error"))


def watch(client: Client, study_id: str, *, quiet: bool = False, out: IO[str] | None = None) -> int:
    """Follow a study to its end with the progress line, then print the summary and results."""
    from dse.runner.progress import ProgressBar

    out = out or sys.stdout
    study = client.study(study_id)
    spec = client.spec(study_id)
    progress = RemoteProgress(spec, study)
    bar = None if quiet else ProgressBar(sys.stderr)
    try:
        final = client.wait(study_id, on_event=lambda e: _draw(bar, progress.convert(e)))
    except KeyboardInterrupt:
        print(f"\nstopped watching; study {study_id} goes on on the server "
              f"(dse watch {study_id} to follow it again, dse cancel {study_id} to stop it)", file=sys.stderr)
        return EXIT_INTERRUPTED
    print_remote_summary(client, final, spec, out)
    return EXIT_OK if final.state == "COMPLETED" else EXIT_STOPPED


def _draw(bar: Any, event: Any) -> None:
    if bar is not None and event is not None:
        bar(event)


def print_remote_summary(client: Client, study: Study, spec: StudySpec, out: IO[str]) -> None:
    """What ``dse watch`` prints at the end, in the shape of ``dse run``'s summary."""
    from dse.commands.results import best_report, pareto_report, print_best, print_pareto
    from dse.runner.progress import format_duration

    records = client.records(study.id)
    elapsed = f" ({format_duration(study.elapsed_s)})" if study.elapsed_s is not None else ""
    reason = {"COMPLETED": "completed", "CANCELLED": "cancelled", "FAILED": "failed"}.get(study.state, study.state)
    print(f"\nstudy {spec.name} ({study.id}) {reason}{elapsed}", file=out)
    if study.error:
        print(f"error: {study.error.strip().splitlines()[0]}", file=out)
    if spec.is_multi_objective:
        print_pareto(pareto_report(spec, records, spec.objectives), spec, records, out)
    else:
        print_best(best_report(spec, records, spec.objectives), spec, records, out)
    failed = [r for r in records if r.state.value == "FAILED"]
    if failed:
        first = (failed[-1].error or "").strip().splitlines()
        print(f"{len(failed)} failed trial(s); last: {failed[-1].trial_id}: {first[0] if first else ''}", file=out)
    print(f"results: dse pareto / dse best / dse export {study.id} --server {client.url}", file=out)
