"""``run_trial``: train and evaluate one trial config on the simulator and return its metrics.

The metrics (names carry units; accuracies are fractions in [0, 1]):

- ``accuracy``: clean validation accuracy after training (what a search ranks designs by);
  ``test_accuracy``: clean test accuracy. *Clean* means the trained weights read through the
  hardware's forward periphery (DAC/ADC, output noise), without programming noise or drift;
- ``analog_accuracy_mean`` / ``analog_accuracy_std``: test accuracy after programming the
  weights onto the devices, over ``evaluation.repeats`` noise realizations;
- ``accuracy_drift_<t>`` / ``accuracy_drift_<t>_compensated``: test accuracy after drift to
  ``t`` (``1s``, ``1h``, ``1d``, ``1y`` by default), mean over the realizations;
  ``accuracy_drift`` / ``accuracy_drift_compensated``: the same at the latest of those times
  (one metric name for a study that sweeps the drift time);
- ``accuracy_snr_<x>db``: test accuracy with the forward noise at SNR ``x`` dB;
- ``train_time_s``, ``epoch_time_s`` (mean per training epoch), ``eval_time_s``;
- ``n_params`` (trainable parameters), ``n_layers`` (linear / convolution layers),
  ``n_analog_layers``, ``n_tiles`` (physical tiles), ``macs`` (multiply-accumulates per example);
- ``train_loss``, ``val_loss``, ``test_loss``, ``epochs``;
- the cost of the design (``docs/cost-model.md``), priced by the hardware's ``cost`` section with
  the input activity measured on the test set: ``energy_per_inference_nj``,
  ``latency_per_inference_us``, ``area_mm2``, ``tops_per_w``, ``tops``, ``tops_per_mm2``,
  ``inferences_per_s``; for pulsed (in-situ) training also ``train_energy_mj``,
  ``train_update_time_s`` and ``train_transfer_time_s`` (the transfer reads of compound
  devices, 0 without them), and ``clipped_update_fraction`` (0-1): the fraction of the pulsed
  update vectors, over all pulsed layers and the whole training, whose pulse train saturated
  (``lr max|x| max|d| > desired_bl dw_min``: the pulse count capped at the bit length; see
  ``docs/simulator.md``); a trial where it is above 0 logs a warning. The per-layer, per-component breakdown is returned under
  ``_details`` (``{"cost": ..., "training_cost": ...}``), which the study stores with the trial;
- ``detector_retrain`` adds ``pretrained_test_accuracy`` (before programming),
  ``programmed_test_accuracy`` (feature extractor programmed, before retraining) and
  ``retrain_gain`` (``test_accuracy - programmed_test_accuracy``).

Two stages (``docs/trials.md``): the *training* stage trains the network on the ``hardware``;
the *evaluation* stage reads it on the evaluation chip (the hardware with the ``inference``
overrides: converters, inference noise, cost technology), so every accuracy above and the cost
are those of the evaluation chip, while ``train_*``, ``epochs``, the sizes and the detector's
``pretrained_`` / ``programmed_test_accuracy`` are the training's. With a model store
(``models``), a training stored under the config's training key is loaded instead of trained
(``train_time_s`` is then that training's own time; ``eval_time_s`` is always this trial's), and
``_details["training"]`` records ``training_key``, ``reused_training`` and ``trained_by``.

``report`` (if given) is called once per epoch with ``{"epoch": n, ...}``: ``train_loss``,
``train_accuracy``, ``accuracy`` (validation), ``val_loss``, ``lr``, ``momentum``,
``epoch_time_s``, ``elapsed_s``. A loss that becomes NaN or infinite ends the trial with
:class:`~dse.trial.training.DivergedError` (a :class:`~dse.errors.TrialError`,
``"diverged at epoch 3: loss=nan"``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dse.errors import SpecError
from dse.metric_names import MetricNames
from dse.results.records import DETAILS_KEY
from dse.trial.config import DetectorRetrainAlgorithm, HASGDAlgorithm, TrialConfig, parse_trial_config

if TYPE_CHECKING:
    from dse.models import ModelSource

Report = Callable[[dict[str, Any]], None]

log = logging.getLogger(__name__)


def dataset_for(config: Mapping[str, Any]) -> Any:
    """The :class:`~dse.trial.data.DatasetArrays` a trial config trains on (cached per process);
    what the DSE runner loads once per worker and passes to :func:`run_trial` as ``dataset``."""
    from dse.trial.data import load_dataset

    trial = parse_trial_config(config)
    return load_dataset(trial.dataset.name, trial.dataset.data_dir)


def run_trial(config: Mapping[str, Any], report: Report | None = None, *, dataset: Any = None,
              num_threads: int | None = None, models: ModelSource | None = None) -> dict[str, Any]:
    """Train and evaluate the trial ``config``; return its final metrics (see the module doc).

    ``dataset``: the trial's :class:`~dse.trial.data.DatasetArrays` when the caller already holds
    them (otherwise loaded, with an in-process cache). ``num_threads``: torch intra-op threads
    for this trial (left as is when ``None``). ``models``: where trained models are kept
    (:class:`~dse.models.ModelSource`): a model stored under the config's training key is loaded
    and only evaluated (its per-epoch reports replayed to ``report``); otherwise the network is
    trained and its model kept there. Raises :class:`~dse.errors.SpecError` for an invalid config
    and :class:`~dse.errors.TrialError` when training diverges.
    """
    trial = parse_trial_config(config)
    import torch

    if num_threads is not None:
        torch.set_num_threads(max(1, int(num_threads)))
    return prepare(trial, dataset, report, build=models is None).run(models)


run_trial.metric_names = MetricNames(  # type: ignore[attr-defined]
    names=frozenset({
        "accuracy", "val_loss", "test_accuracy", "test_loss", "analog_accuracy_mean", "analog_accuracy_std",
        "train_loss", "train_time_s", "epoch_time_s", "eval_time_s", "epochs",
        "n_params", "n_layers", "n_analog_layers", "n_tiles", "macs",
        "energy_per_inference_nj", "latency_per_inference_us", "area_mm2", "tops_per_w", "tops", "tops_per_mm2",
        "inferences_per_s", "train_energy_mj", "train_update_time_s", "train_transfer_time_s",
        "clipped_update_fraction",
        "pretrained_test_accuracy", "programmed_test_accuracy", "retrain_gain",
        "accuracy_drift", "accuracy_drift_compensated",
    }),
    patterns=(r"accuracy_drift_[0-9p]+(y|d|h|min|s)(_compensated)?", r"accuracy_snr_m?[0-9p]+db"),
    examples=("accuracy_drift_1h_compensated", "accuracy_snr_18db"),
)
"""Every metric :func:`run_trial` returns (the module docstring lists them)."""


def clipped_update_fraction(epochs: list[dict[str, Any]]) -> float | None:
    """The fraction of saturated update vectors in a :class:`~simulator.cost.PulseLog`'s epochs
    (``clipped_vectors / vectors`` summed over layers and epochs; None without any vector)."""
    vectors = clipped = 0.0
    for entry in epochs:
        for counts in entry["layers"].values():
            vectors += counts["vectors"]
            clipped += counts.get("clipped_vectors", 0.0)
    return clipped / vectors if vectors > 0 else None


def static_cost(config: Mapping[str, Any]) -> Any:
    """The :class:`~simulator.cost.CostReport` of a trial config's design without training: the
    network built on its evaluation chip (the hardware with the ``inference`` overrides; initial
    weights) and priced with the technology's static activity; no data is loaded."""
    import torch

    from dse.trial import analog
    from dse.trial.architectures import DATASETS
    from dse.trial.config import resolve_inference
    from dse.trial.models import build_model

    trial = parse_trial_config(config)
    info = DATASETS[trial.dataset.name]
    shape = (info.channels, info.height, info.width)
    torch.manual_seed(_seed(trial.seed, 1))
    net = build_model(trial.model, shape, info.classes)
    rpu = resolve_inference(trial.hardware, trial.algorithm, trial.inference)
    if rpu.update.mode != "none":  # the update does not change what an inference costs; its
        rpu = rpu.with_overrides({"update.mode": "none"})  # device states need not be drawn
    model = analog.convert(net, rpu, keep_digital=list(trial.model.keep_digital), seed=_seed(trial.seed, 2))
    report, _ = analog.cost_of(model, shape)
    return report


def prepare(trial: TrialConfig, dataset: Any = None, report: Report | None = None, *,
            build: bool = True) -> TrialRun:
    """The trial set up and ready to train: data split, analog model, seeds (used by
    :func:`run_trial` and the learning-rate range test). ``build=False`` leaves the analog model
    to be built (:meth:`TrialRun.build`) or loaded later."""
    if dataset is None:
        from dse.trial.data import load_dataset

        dataset = load_dataset(trial.dataset.name, trial.dataset.data_dir)
    elif getattr(dataset, "name", trial.dataset.name) != trial.dataset.name:
        raise SpecError("dataset.name", f"the trial names {trial.dataset.name!r} but the arrays passed "
                                        f"are {dataset.name!r}")
    return TrialRun(trial, dataset, report, build=build)


class TrialRun:
    """The state of one trial while it runs: split tensors (``train``, ``val``, ``test``), the
    analog ``model``, the batch-order ``generator``, epoch count and timings."""

    def __init__(self, trial: TrialConfig, dataset: Any, report: Report | None, *, build: bool = True) -> None:
        import torch

        from dse.trial.architectures import layer_names
        from dse.trial.data import split
        from dse.trial.training import to_batches

        self.trial, self.report = trial, report
        self.started = time.perf_counter()
        ds = trial.dataset
        parts = split(dataset, ds.validation_fraction, trial.seed,
                      max_train_samples=ds.max_train_samples, max_test_samples=ds.max_test_samples)
        self.train = to_batches(dataset.train_x[parts.train], dataset.train_y[parts.train], dataset.scale)
        self.val = to_batches(dataset.train_x[parts.validation], dataset.train_y[parts.validation], dataset.scale)
        self.test = to_batches(dataset.test_x[parts.test], dataset.test_y[parts.test], dataset.scale)
        self.input_shape = tuple(dataset.train_x.shape[1:])
        self.classes = int(max(dataset.train_y.max(), dataset.test_y.max())) + 1
        self.names = layer_names(trial.model.name, trial.model.hidden)
        self.generator = torch.Generator().manual_seed(_seed(trial.seed, 3))
        self.epoch = 0
        self.epoch_times: list[float] = []
        self.last_train_loss = float("nan")
        self.reports: list[dict[str, Any]] = []
        self.record_epochs = report is not None
        """Measure the validation set after every epoch (for ``report`` and a kept model)."""
        self.model: Any = None
        if build:
            self.build()

    def build(self) -> None:
        """Build the untrained analog network on the training hardware (seeded)."""
        import torch

        from dse.trial import analog
        from dse.trial.config import resolve_hardware
        from dse.trial.models import build_model, count_macs

        trial, shape = self.trial, self.input_shape
        rpu = resolve_hardware(trial.hardware, trial.algorithm)
        torch.manual_seed(_seed(trial.seed, 1))  # initialization and RReLU noise
        net = build_model(trial.model, shape, self.classes)
        self.static = {
            "n_params": sum(p.numel() for p in net.parameters() if p.requires_grad),
            "n_layers": len(self.names),
            "n_analog_layers": len(self.names) - len(trial.model.keep_digital),
            "macs": count_macs(net, shape),
        }
        self.model = analog.convert(net, rpu, keep_digital=list(trial.model.keep_digital),
                                    seed=_seed(trial.seed, 2))
        self.static["n_tiles"] = analog.n_tiles(self.model)
        self.pulse_log = analog.pulse_log(self.model)

    # -- phases ----------------------------------------------------------------------------------
    def run(self, models: ModelSource | None = None) -> dict[str, Any]:
        """Both stages: train (or load the model stored under the training key) and evaluate."""
        from dse.trial.config import training_key

        key = training_key(self.trial)
        self.record_epochs = self.record_epochs or models is not None  # a kept model carries them
        loaded = self.load(models, key) if models is not None else None
        if loaded is None:
            training = self.train_stage(models)
            origin = dict(models.origin) if models is not None else {}
            if models is not None:
                self.keep(models, key, training, origin)
            trained_by, reused = origin, False
        else:
            self.model, training, trained_by = loaded.model, loaded.training, loaded.trained_by
            self._replay(training.get("reports") or ())
            reused = True
        metrics = self.evaluate_stage(training)
        metrics[DETAILS_KEY]["training"] = {"training_key": key, "reused_training": reused,
                                            "trained_by": trained_by}
        pretraining = training.get("pretraining")
        if pretraining:
            metrics[DETAILS_KEY]["training"]["pretraining"] = pretraining
        return metrics

    def train_stage(self, models: ModelSource | None = None) -> dict[str, Any]:
        """Train the network; returns what the training measured (the training stage's part of
        the metrics, the per-epoch reports, the in-situ training cost and the random state at its
        end), all JSON data. Detector retraining starts from the stored pretraining when
        ``models`` holds it (see :meth:`pretrain`)."""
        t = self.trial
        if isinstance(t.algorithm, DetectorRetrainAlgorithm):
            pretraining = self.pretrain(models)
            summary = self.summary(self.retrain_detector(t.algorithm))
            if pretraining is not None:
                summary["pretraining"] = pretraining
            return summary
        if self.model is None:
            self.build()
        self.fit()
        return self.summary({})

    def summary(self, extra: Mapping[str, Any]) -> dict[str, Any]:
        """What the training so far measured (see :meth:`train_stage`)."""
        from dse.trial import analog
        from dse.trial.training import evaluate

        t = self.trial
        metrics: dict[str, Any] = dict(extra)
        train_time = sum(self.epoch_times)
        training_cost = None
        if self.pulse_log.epochs:  # in-situ training, priced on the hardware it ran on
            fraction = clipped_update_fraction(self.pulse_log.epochs)
            if fraction is not None:
                metrics["clipped_update_fraction"] = fraction
                if fraction > 0.0:
                    log.warning("%s of the pulsed update vectors saturated the pulse train (lr max|x| "
                                "max|d| > desired_bl dw_min): those updates were capped at the bit "
                                "length (clipped_update_fraction=%.4g)", f"{fraction:.2%}", fraction)
            with analog.rng_preserved(self.model), analog.activity_of(self.model) as meter:
                evaluate(self.model, self.test, t.evaluation.batch_size)
            _, cost = analog.cost_of(self.model, self.input_shape, meter.result(), self.pulse_log)
            if cost is not None:
                metrics["train_energy_mj"] = cost.train_energy_mj
                metrics["train_update_time_s"] = cost.update_time_s
                metrics["train_transfer_time_s"] = cost.transfer_time_s
                training_cost = cost.to_dict()
        metrics.update({
            "train_loss": self.last_train_loss,
            "train_time_s": train_time,
            "epoch_time_s": train_time / max(1, len(self.epoch_times)),
            "epochs": self.epoch,
            **self.static,
        })
        return {"metrics": metrics, "reports": list(self.reports), "details": {"training_cost": training_cost},
                "resume": self._random_state()}

    def pretrain(self, models: ModelSource | None) -> dict[str, Any] | None:
        """Detector retraining's first part: the network trained as with ``analog_sgd``, loaded
        from ``models`` under its pretraining key when stored there (its per-epoch reports
        replayed, the random state restored), else trained and kept there. Pulsed hardware always
        trains: the pulse counts behind the training cost are not in a model file. Returns
        ``{"training_key", "reused_training", "trained_by"}`` of the pretraining (None without
        a store)."""
        from dse.trial.config import pretraining_config, resolve_hardware, training_key

        pre = pretraining_config(self.trial)
        pulsed = resolve_hardware(self.trial.hardware, self.trial.algorithm).is_pulsed
        if models is None or pre is None or pulsed:
            if self.model is None:
                self.build()
            self.fit()
            return None
        key = training_key(pre)
        loaded = self.load(models, key)
        if loaded is not None and loaded.training.get("resume"):
            self.model = loaded.model
            self._restore(loaded.training)
            return {"training_key": key, "reused_training": True, "trained_by": loaded.trained_by}
        if self.model is None:
            self.build()
        self.fit()
        self.keep(models, key, self.summary({}), dict(models.origin), trial=pre)
        return {"training_key": key, "reused_training": False, "trained_by": dict(models.origin)}

    def _restore(self, training: Mapping[str, Any]) -> None:
        import torch

        from dse.trial import analog

        metrics = training["metrics"]
        resume = training["resume"]
        self.static = {k: metrics[k] for k in ("n_params", "n_layers", "n_analog_layers", "macs", "n_tiles")}
        self.epoch = int(metrics["epochs"])
        self.epoch_times = [float(x) for x in resume["epoch_times"]]
        self.last_train_loss = float(metrics["train_loss"])
        self.pulse_log = analog.pulse_log(self.model)
        self.generator.set_state(_bytes_tensor(resume["generator"]))
        torch.set_rng_state(_bytes_tensor(resume["torch_rng"]))
        self.reports.extend(dict(values) for values in training.get("reports") or ())
        self._replay(training.get("reports") or ())

    def _replay(self, reports: Any) -> None:
        """Hand a stored training's per-epoch reports to ``report`` (at once, through its
        ``replay`` method when it has one)."""
        if self.report is None or not reports:
            return
        replay = getattr(self.report, "replay", None)
        if callable(replay):
            replay([dict(values) for values in reports])
        else:
            for values in reports:
                self.report(dict(values))

    def _random_state(self) -> dict[str, Any]:
        import torch

        return {"generator": _b64(self.generator.get_state()), "torch_rng": _b64(torch.get_rng_state()),
                "epoch_times": list(self.epoch_times)}

    def keep(self, models: ModelSource, key: str, training: Mapping[str, Any], origin: Mapping[str, Any], *,
             trial: TrialConfig | None = None) -> None:
        """Hand the trained model to ``models`` (a failure to keep it does not fail the trial);
        ``trial``: the config it was trained as (default this trial's)."""
        from dse.trial import stored
        from dse.trial.config import resolve_hardware

        t = trial or self.trial
        data = stored.encode(self.model, trial=t, key=key, training=training, input_shape=self.input_shape,
                             classes=self.classes, rpu=resolve_hardware(t.hardware, t.algorithm),
                             seed=_seed(t.seed, 2), origin=origin)
        try:
            models.keep(key, data)
        except Exception as exc:  # noqa: BLE001 - the trial's result does not depend on it
            log.warning("trained model %s not kept (%s: %s); later trials train it again", key,
                        type(exc).__name__, exc)

    def load(self, models: ModelSource, key: str) -> Any:
        """The stored model of ``key`` (:class:`~dse.trial.stored.StoredTraining`), or None when
        there is none or its file is corrupt (then the trial trains)."""
        from dse.trial import stored
        from simulator.errors import SimulatorError

        data = models.fetch(key)
        if data is None:
            return None
        try:
            loaded = stored.decode(data)
        except SimulatorError as exc:
            log.warning("stored model %s cannot be used (%s); training it again", key, exc)
            return None
        if loaded.metadata.get("training_key") != key:
            log.warning("stored model %s names training key %s; training it again", key,
                        loaded.metadata.get("training_key"))
            return None
        return loaded

    def evaluate_stage(self, training: Mapping[str, Any]) -> dict[str, Any]:
        """Evaluate the trained network on the evaluation hardware (the training hardware with
        the ``inference`` overrides), from a fixed random state: the same metrics whether the
        model was trained now or loaded."""
        from dse.trial import analog
        from dse.trial.config import inference_overrides
        from dse.trial.evaluation import analog_metrics
        from dse.trial.training import evaluate

        t = self.trial
        eval_start = time.perf_counter()
        analog.for_evaluation(self.model, inference_overrides(t.inference), seed=_seed(t.seed, 5))
        metrics: dict[str, Any] = {}
        bs = t.evaluation.batch_size
        metrics["accuracy"], metrics["val_loss"] = evaluate(self.model, self.val, bs)
        with analog.activity_of(self.model) as meter:  # the cost model's activity, on the test set
            metrics["test_accuracy"], metrics["test_loss"] = evaluate(self.model, self.test, bs)
        cost, _ = analog.cost_of(self.model, self.input_shape, meter.result())
        metrics.update(analog_metrics(self.model, self.test, t.evaluation, _seed(t.seed, 4)))
        trained = dict(training.get("metrics") or {})
        if "programmed_test_accuracy" in trained:
            metrics["retrain_gain"] = metrics["test_accuracy"] - trained["programmed_test_accuracy"]
        metrics.update(trained)
        metrics["eval_time_s"] = time.perf_counter() - eval_start
        metrics.update(cost.metrics())
        details = dict(training.get("details") or {})
        metrics[DETAILS_KEY] = {"cost": cost.to_dict(), "training_cost": details.get("training_cost")}
        return metrics

    def fit(self) -> None:
        """Train every parameter as the training section says (epochs, lr, schedule)."""
        tr = self.trial.training
        self.train_epochs(self.model.parameters(), tr.lr, tr.schedule, tr.epochs)

    def train_epochs(self, params: Any, lr: float, schedule_cfg: Any, epochs: int,
                     frozen: list[Any] | None = None) -> None:
        """Train ``params`` for ``epochs`` with a schedule (peak / base ``lr``), reporting each
        epoch; ``frozen`` modules stay in eval mode."""
        from dse.trial import analog
        from dse.trial.schedules import build_schedule
        from dse.trial.training import Trainer, evaluate, ha_sgd_step

        t = self.trial
        tr = t.training
        optimizer = analog.optimizer(self.model, params, lr=lr, momentum=tr.momentum, weight_decay=tr.weight_decay)
        steps = -(-len(self.train) // tr.batch_size)
        schedule = build_schedule(schedule_cfg, lr, tr.momentum, epochs, steps)
        trainer = Trainer(self.model, optimizer, tr, schedule, self.train, self.generator, frozen=frozen or [])
        if isinstance(t.algorithm, HASGDAlgorithm):
            trainer.step_fn = ha_sgd_step(t.algorithm)
        for e in range(epochs):
            self.epoch += 1
            stats = trainer.run_epoch(self.epoch, schedule_epoch=e)
            self.pulse_log.end_epoch(len(self.train))
            self.epoch_times.append(stats.time_s)
            self.last_train_loss = stats.train_loss
            if self.record_epochs:
                with analog.rng_preserved(self.model):  # the training does not depend on it
                    val_acc, val_loss = evaluate(self.model, self.val, t.evaluation.batch_size)
                values = {
                    "epoch": self.epoch, "train_loss": stats.train_loss, "train_accuracy": stats.train_accuracy,
                    "accuracy": val_acc, "val_loss": val_loss, "lr": stats.lr, "momentum": stats.momentum,
                    "epoch_time_s": stats.time_s, "elapsed_s": time.perf_counter() - self.started,
                }
                self.reports.append(values)
                if self.report is not None:
                    self.report(values)

    def retrain_detector(self, algo: DetectorRetrainAlgorithm, *, seed: int | None = None) -> dict[str, float]:
        """Paper 004: program the feature extractor with relative noise alpha, freeze it, retrain
        the last ``retrain_layers`` layers (constant learning rate). ``seed`` picks the
        programming realization (default: derived from the trial's seed)."""
        import torch

        from dse.trial import analog
        from dse.trial.config import ConstantSchedule
        from dse.trial.models import layer_modules
        from dse.trial.training import evaluate

        bs = self.trial.evaluation.batch_size
        with analog.rng_preserved(self.model):
            out = {"pretrained_test_accuracy": evaluate(self.model, self.test, bs)[0]}
        extractor = self.names[: len(self.names) - algo.retrain_layers]
        analog.program_and_freeze(self.model, extractor, alpha=algo.alpha,
                                  seed=_seed(self.trial.seed, 6) if seed is None else seed)
        with analog.rng_preserved(self.model):
            out["programmed_test_accuracy"] = evaluate(self.model, self.test, bs)[0]
        detector = layer_modules(self.model, self.names[len(extractor):])
        params = [p for m in detector.values() for p in m.parameters() if p.requires_grad]
        inside = {id(m) for d in detector.values() for m in d.modules()}
        frozen = [m for m in self.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                  and id(m) not in inside]  # the extractor's batch norms keep their statistics
        self.train_epochs(params, algo.retrain_lr or self.trial.training.lr, ConstantSchedule(), algo.retrain_epochs,
                    frozen=frozen)
        return out


def _b64(state: Any) -> str:
    import base64

    return base64.b64encode(state.numpy().tobytes()).decode("ascii")


def _bytes_tensor(text: str) -> Any:
    import base64

    import torch

    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def _seed(seed: int, stream: int) -> int:
    """Independent seeds for the trial's random streams (init, tiles, batches, evaluation ...)."""
    return (seed * 0x9E3779B1 + stream * 0x85EBCA77) % (2**63 - 1)
