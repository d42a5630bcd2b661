"""The Ray Tune trainable: one study trial (all its repeats) inside a reused Ray actor.

The driver (:mod:`dse.runner.ray_runner`) hands each trial a Tune config whose ``payload`` is
the JSON of the trial's plan (:class:`dse.runner.loop.TrialPlan`)::

    {"trial_id": "t00007", "number": 7, "params": {...},
     "runs": [{"seed": 0, "config": {<trial config>}, "dataset": "<key>" | None}, ...]}

and :func:`study_trainable` runs the trial function once per run (repeat), in order, reporting
to Tune:

- one *epoch* result per epoch of every repeat (``{"_kind": "epoch", "_repeat": r,
  "_values": {...}}``); the first repeat's results also carry ``_step`` (its epoch) and the
  scheduler's metric at the top level, which is what ASHA decides on;
- one *final* result (``{"_kind": "final", "_state": "COMPLETED" | "FAILED", ...}``) with the
  metrics of each finished repeat (the record derives their mean and std), the error if any,
  the worker node and the start / end times.

An exception raised by the trial function is caught and reported as a FAILED final result, so
the actor stays healthy and is reused by the next trial; only a crash of the worker itself
reaches Tune as an error. ``SystemExit`` is not caught: it is how Tune ends a trial that the
scheduler stopped.

Datasets reach the workers through the Ray object store: the driver loads each distinct dataset
once and ``ray.put``\\ s it; a worker fetches a dataset the first time one of its trials needs it
and keeps it for the next trials it runs (actors are reused), so nothing is loaded per trial.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from dse.errors import DSEError, TrialError
from dse.results.records import split_details

TrialFunction = Callable[..., Mapping[str, Any]]

DEFAULT_TRIAL_FN = "dse.trial.run:run_trial"
"""Import path of the trial function studies run unless told otherwise."""

_FUNCTIONS: dict[str, TrialFunction] = {}
_DATASETS: dict[str, Any] = {}
_THREADS: list[int] = []


@dataclasses.dataclass(frozen=True)
class TrainableSetup:
    """What every trial of a study shares; put in the Ray object store once per study."""

    trial_fn: str
    """Import path ``"package.module:function"`` of the trial function."""
    cpus_per_trial: float
    """CPUs Ray reserves for one trial; torch intra-op threads are set to this (at least 1)."""
    datasets: Mapping[str, Any]
    """Dataset key -> Ray ``ObjectRef`` of the dataset loaded once by the driver."""
    scheduler_metric: str | None = None
    """Metric the trial scheduler decides on (exposed per epoch of the first repeat), if any."""
    models: Any = None
    """The study's :class:`~dse.runner.models.ModelBroker` actor when trainings are reused (runs
    that carry a training key get a ``models`` source for it); None otherwise."""
    study: str = ""
    """The study's name (who trained a stored model)."""


def resolve_trial_fn(path: str) -> TrialFunction:
    """The function named by ``"package.module:function"`` (imported once per process)."""
    fn = _FUNCTIONS.get(path)
    if fn is not None:
        return fn
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"trial_fn: {path!r} is not an import path; expected 'package.module:function'"
        )
    module = importlib.import_module(module_name)
    try:
        fn = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"trial_fn: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(fn):
        raise TypeError(f"trial_fn: {path!r} is a {type(fn).__name__}, not a function")
    _FUNCTIONS[path] = fn
    return fn


def study_trainable(config: dict[str, Any], *, setup: TrainableSetup) -> None:
    """Run one study trial inside a Ray Tune function trainable (see the module docstring)."""
    from ray import tune

    from dse.runner.cluster import node_identity

    started = time.time()
    node = node_identity()
    final: dict[str, Any] = {"_kind": "final", "_started": started, **{f"_{k}": v for k, v in node.items()}}
    per_repeat: list[dict[str, Any]] = []
    details: list[dict[str, Any] | None] = []
    error: str | None = None
    try:
        fn = resolve_trial_fn(setup.trial_fn)
        _set_torch_threads(setup.cpus_per_trial)
        payload = json.loads(config["payload"])
        for repeat, run in enumerate(payload["runs"]):
            dataset = _dataset(setup, run.get("dataset"))
            reporter = _EpochReporter(repeat, setup.scheduler_metric if repeat == 0 else None, node.get("node_id"))
            kwargs: dict[str, Any] = {} if dataset is None else {"dataset": dataset}
            if setup.models is not None and run.get("training_key"):
                from dse.runner.models import BrokerSource

                kwargs["models"] = BrokerSource(setup.models, {"study": setup.study, "trial_id": payload["trial_id"],
                                                               "repeat": repeat})
            metrics = fn(run["config"], reporter, **kwargs)
            if not isinstance(metrics, Mapping):
                numeric_metrics(metrics, repeat)  # raises the TrialError that names the problem
            metrics, extra = split_details(metrics)
            per_repeat.append(numeric_metrics(metrics, repeat))
            details.append(extra)
    except TrialError as exc:  # an expected failure mode (divergence, ...): its message says it all
        error = str(exc)
    except DSEError as exc:  # e.g. SpecError: an invalid trial config, named by its path
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - any trial bug is recorded, not fatal to the study
        error = f"{type(exc).__name__}: {exc}\n{_short_traceback(exc)}"
    final.update(
        _state="FAILED" if error is not None else "COMPLETED",
        _error=error,
        _repeats=per_repeat,
        _details=details if any(d is not None for d in details) else None,
        _finished=time.time(),
    )
    tune.report(final)


class _EpochReporter:
    """The ``report`` callback handed to the trial function: forwards each epoch to Tune."""

    def __init__(self, repeat: int, scheduler_metric: str | None, node_id: str | None = None) -> None:
        self.repeat = repeat
        self.scheduler_metric = scheduler_metric
        self.node_id = node_id
        self.count = 0

    def __call__(self, values: Mapping[str, Any]) -> None:
        from ray import tune

        self.count += 1
        clean = {k: _plain(v) for k, v in dict(values).items()}
        epoch = clean.get("epoch", self.count)
        result: dict[str, Any] = {"_kind": "epoch", "_repeat": self.repeat, "_epoch": epoch, "_values": clean,
                                  "_node_id": self.node_id}
        if self.scheduler_metric is not None and isinstance(clean.get(self.scheduler_metric), float | int):
            result["_step"] = epoch
            result[self.scheduler_metric] = clean[self.scheduler_metric]
        tune.report(result)


def numeric_metrics(metrics: Any, repeat: int = 0) -> dict[str, Any]:
    """The numeric leaves of a trial function's result (nested mappings kept, scalars as floats).

    Non-numeric leaves (strings, None, lists) are dropped: metrics are numbers. A result that is
    not a mapping at all is a bug in the trial function and raises :class:`TrialError`.
    """
    if not isinstance(metrics, Mapping):
        raise TrialError(
            f"repeat {repeat}: the trial function returned {type(metrics).__name__}; expected a dict "
            "of metric name -> number"
        )
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, Mapping):
            nested = numeric_metrics(value, repeat)
            if nested:
                out[str(name)] = nested
            continue
        value = _plain(value)
        if isinstance(value, bool | int | float):
            out[str(name)] = float(value)
    return out


def _plain(value: Any) -> Any:
    """Numbers from numpy / torch scalars become Python floats; other values pass through."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def _dataset(setup: TrainableSetup, key: str | None) -> Any:
    if key is None:
        return None
    if key not in _DATASETS:
        import ray

        ref = setup.datasets[key]
        _DATASETS.clear()  # keep one dataset per worker process: studies rarely mix datasets
        _DATASETS[key] = ray.get(ref)
    return _DATASETS[key]


def _set_torch_threads(cpus: float) -> None:
    """Give torch ``max(1, int(cpus))`` intra-op threads in this worker.

    When torch is loaded, ``torch.set_num_threads``; when it is not (yet), the OpenMP / MKL
    environment variables that torch reads when it is first imported, so a trial function that
    never uses torch does not pay for importing it.
    """
    threads = max(1, int(cpus))
    if _THREADS and _THREADS[0] == threads:
        return
    torch = sys.modules.get("torch")
    if torch is None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
        return
    torch.set_num_threads(threads)
    _THREADS[:] = [threads]


def _short_traceback(exc: BaseException, limit: int = 8) -> str:
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-limit)
    return "".join(frames).rstrip()
