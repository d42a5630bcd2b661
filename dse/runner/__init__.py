"""Running studies on Ray Tune.

Public surface (what the CLI and the study service use)::

    from dse.runner import RayTuneRunner, StudyOutcome, StudyEvent, StudyProgress, connect_ray

    runner = RayTuneRunner(spec, sink, history=previous_records, listeners=[on_event])
    outcome = runner.run()        # blocking; runner.cancel() from another thread stops it
    run_study(spec, "results/quickstart", resume=True)   # the same with a Parquet results directory

Modules: :mod:`~dse.runner.ray_runner` (the runner), :mod:`~dse.runner.loop` (backend-neutral
trial bookkeeping: budgets, resume, records), :mod:`~dse.runner.tune_glue` (search algorithm,
callback and stopper that plug the loop into Tune), :mod:`~dse.runner.trainable` (the code that
runs in the Ray workers), :mod:`~dse.runner.progress` (events, progress bar),
:mod:`~dse.runner.cluster` (connecting to Ray), :mod:`~dse.runner.synthetic` (closed-form trial
functions for measuring the engine). Ray is imported only when a study runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dse.runner.loop import StopReason, StudyLoop, TrialOutcome, TrialPlan
from dse.runner.progress import BestValue, ProgressBar, StudyEvent, StudyListener, StudyProgress

if TYPE_CHECKING:
    from dse.runner.cluster import RayConnection
    from dse.runner.ray_runner import RayTuneRunner, StudyOutcome
    from dse.spec import StudySpec

__all__ = [
    "BestValue", "ProgressBar", "RayConnection", "RayTuneRunner", "StopReason", "StudyEvent", "StudyListener",
    "StudyLoop", "StudyOutcome", "StudyProgress", "TrialOutcome", "TrialPlan", "connect_ray", "run_study",
]

_LAZY = {
    "RayTuneRunner": "dse.runner.ray_runner",
    "StudyOutcome": "dse.runner.ray_runner",
    "RayConnection": "dse.runner.cluster",
    "connect_ray": "dse.runner.cluster",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dse.runner' has no attribute {name!r}")


def run_study(
    spec: StudySpec,
    results_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    listeners: Sequence[StudyListener] = (),
    model_store: str | os.PathLike[str] | None = None,
    **runner_options: Any,
) -> StudyOutcome:
    """Run ``spec`` writing ``results_dir`` (``trials.parquet``, ``measurements.parquet``,
    ``study.json``, trained models under ``models/`` unless ``model_store`` names a shared
    directory); with ``resume`` continue the study found there. ``runner_options`` go to
    :class:`RayTuneRunner` (``address``, ``trial_fn``, ``num_cpus`` ...)."""
    from dse.models import model_store_for
    from dse.results import ParquetResults
    from dse.runner.ray_runner import RayTuneRunner

    store = model_store_for(results_dir, model_store)
    with ParquetResults(results_dir, spec, resume=resume) as results:
        runner = RayTuneRunner(spec, results, history=results.records(), listeners=listeners,
                               model_store=None if store is None else store.root, **runner_options)
        return runner.run()
