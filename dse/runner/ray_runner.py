"""Running a study on Ray Tune: :class:`RayTuneRunner`.

>>> runner = RayTuneRunner(spec, sink=ParquetResults("results/quickstart", spec))
>>> outcome = runner.run()          # blocks; runner.cancel() from another thread stops it

One Tune experiment per run: our searcher behind :class:`~dse.runner.tune_glue.LoopSearcher`,
FIFO or ASHA scheduling, ``reuse_actors=True`` (a worker process runs trial after trial: the
trial function, torch and the dataset are loaded once per worker), trial resources from
``spec.resources``, and ``max_concurrent_trials`` from the budget or the cluster's CPUs. Tune's
own result files and experiment checkpoints go to a temporary directory that is removed
afterwards; the study's results are what the sink receives. Resuming is ours, not Tune's: pass
the records of the earlier run as ``history`` (see :mod:`dse.runner.loop`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from dse.errors import DSEError, SpecError
from dse.results.records import TrialRecord, TrialSink
from dse.runner.loop import StopReason, StudyLoop, dataset_key
from dse.runner.progress import StudyListener, StudyProgress
from dse.runner.trainable import DEFAULT_TRIAL_FN, TrainableSetup
from dse.searchers.base import Searcher
from dse.spec import StudySpec

log = logging.getLogger(__name__)

_QUIET_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no result.json / progress.csv per trial
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # Ctrl-C is handled here (see RayTuneRunner.run)
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0: no experiment banner on the terminal
    # Only the first repeat's epoch results carry ASHA's metric (see dse.runner.trainable).
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
}


@dataclasses.dataclass(frozen=True)
class StudyOutcome:
    """How a run of a study ended."""

    study: str
    """Study name."""
    stop_reason: StopReason
    """``completed`` (the searcher finished), ``max_trials``, ``time_budget``, ``failure_budget``,
    ``cancelled`` (:meth:`RayTuneRunner.cancel`) or ``interrupted`` (Ctrl-C)."""
    message: str | None
    """Details of the stop reason, if any."""
    records: tuple[TrialRecord, ...]
    """Every trial's final record, earlier runs' included, by number."""
    progress: StudyProgress
    """Counts and best values at the end."""
    ray_address: str
    """The Ray cluster the study ran on."""

    @property
    def ok(self) -> bool:
        """True unless the study was cancelled, interrupted or spent its failure budget."""
        return self.stop_reason in ("completed", "max_trials", "time_budget")


class RayTuneRunner:
    """Runs one study on Ray Tune, writing each trial's record to ``sink`` as it changes.

    Parameters:
        spec: the validated study.
        sink: where records go (:class:`~dse.results.ParquetResults`, the API's store, a
            :class:`~dse.results.TeeSink` of several); None keeps them only in the outcome.
        history: records of an earlier run of the same study, to resume it (finished trials are
            not re-run; unfinished ones are).
        listeners: progress callbacks, called with each :class:`~dse.runner.progress.StudyEvent`
            in the runner's thread (the CLI's progress bar, the API's event stream).
        address: Ray cluster to use; None: ``$RAY_ADDRESS``, else a local Ray started on demand
            (see :func:`dse.runner.cluster.connect_ray`); a Ray Client address ``ray://host:port``
            runs the study's driver on that cluster (see :mod:`dse.runner.ray_client`).
        trial_fn: import path of the trial function (default ``dse.trial.run:run_trial``).
        searcher: a searcher to use instead of the one ``spec.searcher`` names.
        num_cpus: CPUs of a local Ray started on demand (default: all of this machine's).
        preload_datasets: load the base config's dataset once in the driver and share it with
            the workers through the Ray object store.
        tick_s: how often listeners get a ``tick`` event while trials run.
        reuse_actors: run trial after trial in the same worker process (the default);
            ``False`` is Ray Tune's own default, a new actor per trial, kept for comparison
            (``benchmarks/dse_overhead.py``).
        max_retries: how often a trial whose worker was lost (a crashed process, a dead node) is
            started again before it is recorded FAILED. Exceptions of the trial function are
            never retried: they are the trial's result.
        write_retry_s: at the end of the study, how long to keep offering the sink records it
            refused (during the study they are retried on every write and tick).
        model_store: directory of the trained models (shared between studies if you like; see
            :mod:`dse.models`); None keeps them in a temporary directory for this run only.
            Trainings are reused when ``spec.reuse`` is on and the trial function takes a
            ``models`` argument (``run_trial`` does).
    """

    def __init__(
        self,
        spec: StudySpec,
        sink: TrialSink | None = None,
        *,
        history: Sequence[TrialRecord] = (),
        listeners: Sequence[StudyListener] = (),
        address: str | None = None,
        trial_fn: str = DEFAULT_TRIAL_FN,
        searcher: Searcher | None = None,
        num_cpus: int | None = None,
        preload_datasets: bool = True,
        tick_s: float = 1.0,
        reuse_actors: bool = True,
        max_retries: int = 2,
        write_retry_s: float = 60.0,
        model_store: str | os.PathLike[str] | None = None,
    ) -> None:
        self.spec = spec
        self.sink = sink
        self.history = tuple(history)
        self.listeners = tuple(listeners)
        self.address = address
        self.trial_fn = trial_fn
        self.num_cpus = num_cpus
        self.preload_datasets = preload_datasets
        self.tick_s = tick_s
        self.reuse_actors = reuse_actors
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries: got {max_retries!r}; accepted: an integer >= 0")
        self.max_retries = max_retries
        self.write_retry_s = write_retry_s
        from dse.metric_names import check_study_metrics

        check_study_metrics(spec.objectives, spec.constraints, trial_fn)
        self.custom_searcher = searcher is not None
        if searcher is None:
            from dse.searchers import make_searcher

            searcher = make_searcher(spec)
        self.model_store = None if model_store is None else os.fspath(model_store)
        self.reuse = bool(spec.reuse) and _takes_models(trial_fn)
        self.loop = StudyLoop(spec, searcher, sink, history=self.history, listeners=self.listeners)
        self._broker: Any = None
        self._ran = False

    # -- control --------------------------------------------------------------------------------
    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the study from any thread: no new trial starts, running ones are cancelled, and
        finished ones stay recorded. :meth:`run` returns soon after."""
        self.loop.stop("cancelled", reason)

    @property
    def progress(self) -> StudyProgress:
        """The current counts and best values."""
        return self.loop.tracker.snapshot()

    # -- running --------------------------------------------------------------------------------
    def run(self) -> StudyOutcome:
        """Run the study to its end (or until cancelled / interrupted); returns how it ended.

        On the main thread, the first Ctrl-C stops the study gracefully (running trials are
        recorded as CANCELLED and re-run by a resume); a second one interrupts at once.
        """
        if self._ran:
            raise DSEError("a RayTuneRunner runs once; create a new one (with history) to resume")
        self._ran = True
        import ray

        from dse.runner.cluster import ADDRESS_ENV, connect_ray
        from dse.runner.ray_client import is_ray_client_address, run_through_ray_client

        target = self.address or os.environ.get(ADDRESS_ENV)
        if is_ray_client_address(target) and (self.address or not ray.is_initialized()):
            return run_through_ray_client(self, target)  # the driver runs on the cluster
        connection = connect_ray(self.address, num_cpus=self.num_cpus)
        storage = tempfile.mkdtemp(prefix="dse-tune-")
        models_dir = self.model_store or os.path.join(storage, "models")
        started = time.monotonic()
        reason: StopReason = "interrupted"  # unless fit() returns
        try:
            self._check_resources()
            if self.reuse:
                self._start_reuse(models_dir)
            self.loop.emit("study_started", f"running on Ray at {connection.address}: "
                                            f"{connection.num_nodes} node(s), {connection.cpus:g} CPUs")
            from dse.runner.tune_glue import attach

            with attach(self.loop) as key, _environment(_QUIET_ENV), self._sigint_stops_study():
                self._build_tuner(key, storage, connection.cpus).fit()
            reason = self._final_reason(time.monotonic() - started)
        finally:
            final = self.loop.finish(reason)
            self._stop_broker()
            shutil.rmtree(storage, ignore_errors=True)
            connection.close()
        self._flush_sink()
        self.loop.emit("study_finished", self.loop.stop_message or final)
        return StudyOutcome(
            study=self.spec.name,
            stop_reason=final,
            message=self.loop.stop_message,
            records=tuple(self.loop.all_records()),
            progress=self.loop.tracker.snapshot(),
            ray_address=connection.address,
        )

    def _start_reuse(self, models_dir: str) -> None:
        """The model broker over ``models_dir`` and the coordinator that keeps a training key
        from being trained twice at once."""
        import ray

        from dse.runner.models import start_broker
        from dse.runner.reuse import TrainingCoordinator

        self._broker = broker = start_broker(models_dir)
        self.loop.coordinator = TrainingCoordinator(lambda key: bool(ray.get(broker.has.remote(key))))

    def _stop_broker(self) -> None:
        if self._broker is None:
            return
        try:
            import ray

            ray.kill(self._broker)
        except Exception as exc:  # noqa: BLE001 - the cluster may be gone already
            log.debug("model broker not stopped: %s", exc)
        self._broker = None

    def _flush_sink(self) -> None:
        """Offer the sink the records it refused until it takes them or ``write_retry_s`` passes."""
        deadline = time.monotonic() + self.write_retry_s
        while not self.loop.flush_writes():
            if time.monotonic() >= deadline:
                left = self.loop.unwritten
                raise DSEError(f"{len(left)} trial records could not be written "
                               f"({', '.join(r.trial_id for r in left[:5])}{' ...' if len(left) > 5 else ''}): "
                               f"{self.loop.write_error}")
            time.sleep(1.0)

    def _final_reason(self, elapsed_s: float) -> StopReason:
        if self.loop.stop_reason is not None:
            return self.loop.stop_reason
        budget = self.spec.budget
        if budget.time_budget_s is not None and elapsed_s >= budget.time_budget_s:
            return "time_budget"
        if budget.max_trials is not None and self.loop.searcher.n_trials >= budget.max_trials:
            return "max_trials"
        return "completed"

    def _check_resources(self) -> None:
        import ray

        cpus = self.spec.resources.cpus
        gpus = self.spec.resources.gpus
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        if not any(n.get("CPU", 0.0) >= cpus for n in nodes):
            most = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
            raise SpecError("resources.cpus", f"got {cpus:g}, but the largest Ray node has {most:g} CPUs; "
                                              f"accepted: at most {most:g}")
        if gpus > 0 and not any(n.get("GPU", 0.0) >= gpus for n in nodes):
            most = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
            raise SpecError("resources.gpus", f"got {gpus:g}, but the largest Ray node has {most:g} GPUs; "
                                              f"accepted: at most {most:g}")

    def _datasets(self) -> dict[str, Any]:
        """Load the base configuration's dataset once and put it in the object store.

        Returns ``{dataset key: ObjectRef}``; empty when preloading is off or the driver cannot
        load the data (then each worker loads it, and a missing file fails the trials with the
        loader's message).
        """
        if not self.preload_datasets:
            return {}
        import ray

        config = self.spec.trial_config(self.spec.default_params())
        try:
            from dse.trial.run import dataset_for

            arrays = dataset_for(config)
        except Exception as exc:  # noqa: BLE001 - trials load (and report) it themselves
            log.warning("dataset %s not preloaded (%s); each worker loads it", dataset_key(config), exc)
            return {}
        return {dataset_key(config): ray.put(arrays)}

    def _scheduler(self) -> tuple[Any, str | None]:
        from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

        sched = self.spec.scheduler
        if sched.type != "asha":
            return FIFOScheduler(), None
        objective = self.spec.objectives[0]
        max_t = sched.max_t or _max_epochs(self.spec)
        scheduler = ASHAScheduler(
            time_attr="_step",
            metric=objective.metric,
            mode="max" if objective.goal == "maximize" else "min",
            max_t=max_t,
            grace_period=min(sched.grace_period, max_t),
            reduction_factor=sched.reduction_factor,
            stop_last_trials=False,  # a trial that reaches max_t finishes its repeats
        )
        return scheduler, objective.metric

    def _build_tuner(self, key: str, storage: str, cluster_cpus: float) -> Any:
        from ray import tune

        from dse.runner.trainable import study_trainable
        from dse.runner.tune_glue import LoopCallback, LoopSearcher, LoopStopper

        datasets = self._datasets()
        self.loop.preloaded = set(datasets)
        scheduler, scheduler_metric = self._scheduler()
        resources = self.spec.resources
        setup = TrainableSetup(self.trial_fn, resources.cpus, datasets, scheduler_metric,
                               models=self._broker, study=self.spec.name)
        trainable = tune.with_resources(
            tune.with_parameters(study_trainable, setup=setup),
            {"cpu": resources.cpus, "gpu": resources.gpus},
        )
        budget = self.spec.budget
        concurrent = budget.max_concurrent_trials or max(1, int(cluster_cpus // resources.cpus))
        return tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=LoopSearcher(key),
                scheduler=scheduler,
                num_samples=-1,  # the searcher says when it is done
                max_concurrent_trials=concurrent,
                time_budget_s=budget.time_budget_s,
                reuse_actors=self.reuse_actors,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=self.spec.name,
                storage_path=storage,
                verbose=0,
                callbacks=[LoopCallback(key, tick_s=self.tick_s)],
                stop=LoopStopper(key),
                failure_config=tune.FailureConfig(max_failures=self.max_retries),
            ),
        )

    @contextlib.contextmanager
    def _sigint_stops_study(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            self.loop.stop("interrupted", "interrupted (Ctrl-C); resume with --resume")
            signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts at once

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _takes_models(trial_fn: str) -> bool:
    """Whether the trial function at ``trial_fn`` accepts a ``models`` keyword (model reuse)."""
    import inspect

    from dse.runner.trainable import resolve_trial_fn

    try:
        return "models" in inspect.signature(resolve_trial_fn(trial_fn)).parameters
    except (ImportError, ValueError, TypeError):
        return False


def _trial_name(trial: Any) -> str:
    return str(trial.config.get("trial_id", trial.trial_id))


def _max_epochs(spec: StudySpec) -> int:
    """The most epochs any trial of the study trains (ASHA's ``max_t`` when not given)."""
    epochs = [int((spec.base.get("training") or {}).get("epochs", 10))]
    for p in spec.parameters:
        if p.target == "training.epochs":
            epochs.extend(int(v) for v in (p.grid_values() if p.is_finite else (p.high,)))
    return max(epochs)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
