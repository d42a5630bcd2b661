"""``dse run STUDY.yaml``: run a study on Ray Tune, writing its results directory as trials finish."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dse.results import TrialRecord
    from dse.runner import StudyOutcome
    from dse.spec import StudySpec

DEFAULT_RESULTS_ROOT = "results"
"""Results go to ``results/<study name>`` under the working directory unless ``--results``."""

EXIT_OK = 0
EXIT_STOPPED = 1  # failure budget spent or cancelled
EXIT_INTERRUPTED = 130  # Ctrl-C, as the shell reports it


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a study (YAML / JSON spec) on Ray Tune with a live progress bar")
    p.add_argument("study", help="study spec file (see docs/study-spec.md and configs/)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to run on (host:port, 'auto', or ray://HOST:PORT for Ray Client); default "
                        "$RAY_ADDRESS, else a local Ray started for this study ('local' forces that)")
    p.add_argument("--resume", action="store_true",
                   help="continue the study in its results directory: finished trials are kept and not "
                        "re-run, unfinished ones are re-run")
    p.add_argument("--results", default=None, metavar="DIR",
                   help=f"results directory (default {DEFAULT_RESULTS_ROOT}/<study name>)")
    p.add_argument("--trial-fn", default=None, metavar="MODULE:FUNCTION",
                   help="trial function to run instead of dse.trial.run:run_trial (e.g. "
                        "dse.runner.synthetic:instant_trial to measure the engine)")
    p.add_argument("--num-cpus", type=int, default=None,
                   help="CPUs of a locally started Ray (default: all of this machine's)")
    p.add_argument("--model-store", default=None, metavar="DIR",
                   help="directory of trained models, shared between studies (default: the results "
                        "directory's models/); a trial whose training is stored there only evaluates")
    p.add_argument("--quiet", action="store_true", help="no progress bar; only the final summary")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from dse.runner.cluster import protect_local_ray

    protect_local_ray(args.address)  # before Ray is imported
    from dse.models import model_store_for
    from dse.results import ParquetResults
    from dse.results.records import EVALUATED_STATES
    from dse.runner import RayTuneRunner
    from dse.runner.progress import ProgressBar
    from dse.runner.trainable import DEFAULT_TRIAL_FN
    from dse.spec import load_spec

    spec = load_spec(Path(args.study))
    from dse.metric_names import check_study_metrics

    check_study_metrics(spec.objectives, spec.constraints, args.trial_fn or DEFAULT_TRIAL_FN)
    directory = Path(args.results) if args.results else Path(DEFAULT_RESULTS_ROOT) / spec.name
    with ParquetResults(directory, spec, resume=args.resume) as results:
        history = results.records()
        if history:
            finished = sum(1 for r in history if r.state in EVALUATED_STATES)
            print(f"resuming {spec.name} from {directory}: {finished} finished trials kept, "
                  f"{len(history) - finished} unfinished re-run", file=sys.stderr)
        listeners = [] if args.quiet else [ProgressBar(sys.stderr)]
        runner = RayTuneRunner(spec, results, history=history, listeners=listeners, address=args.address,
                               trial_fn=args.trial_fn or DEFAULT_TRIAL_FN, num_cpus=args.num_cpus,
                               model_store=model_store_for(directory, args.model_store).root)
        outcome = runner.run()
        records = list(outcome.records)
    print_summary(spec, records, outcome, directory)
    if outcome.stop_reason == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if outcome.ok else EXIT_STOPPED


def print_summary(spec: StudySpec, records: Sequence[TrialRecord], outcome: StudyOutcome, directory: Path) -> None:
    """What ``dse run`` prints at the end: why it stopped, the front (or best) and where results are."""
    from dse.commands.results import best_report, pareto_report, print_best, print_pareto

    out = sys.stdout
    reason = {
        "completed": "the searcher finished",
        "max_trials": f"budget.max_trials = {spec.budget.max_trials} reached",
        "time_budget": f"budget.time_budget_s = {spec.budget.time_budget_s:g} s spent" if spec.budget.time_budget_s else "",
        "failure_budget": outcome.message or "failure budget spent",
        "cancelled": outcome.message or "cancelled",
        "interrupted": "interrupted; run again with --resume to continue",
    }[outcome.stop_reason]
    print(f"\nstudy {spec.name} stopped: {reason} ({outcome.progress.elapsed_s:.1f} s)", file=out)
    if spec.is_multi_objective:
        print_pareto(pareto_report(spec, records, spec.objectives), spec, records, out)
    else:
        print_best(best_report(spec, records, spec.objectives), spec, records, out)
    clipped = [r for r in records if (r.metrics or {}).get("clipped_update_fraction")]
    if clipped:
        worst = max(clipped, key=lambda r: r.metrics["clipped_update_fraction"])
        print(f"warning: {len(clipped)} trial(s) saturated the pulse train in some updates (metric "
              f"clipped_update_fraction > 0; worst {worst.trial_id}: "
              f"{worst.metrics['clipped_update_fraction']:.2%}): those updates were capped at the "
              "bit length (docs/simulator.md)", file=out)
    failed = [r for r in records if r.state.value == "FAILED"]
    if failed:
        first = (failed[-1].error or "").strip().splitlines()
        print(f"{len(failed)} failed trial(s); last: {failed[-1].trial_id}: {first[0] if first else ''}", file=out)
    print(f"results: {directory}  (dse pareto / dse best / dse export {directory})", file=out)
