"""``run_trial``: train and evaluate one trial config on the simulator and return its metrics.

The metrics (names carry units; accuracies are fractions in [0, 1]):

- ``accuracy``: clean validation accuracy after training (what a search ranks designs by);
  ``test_accuracy``: clean test accuracy. *Clean* means the trained weights read through the
  hardware's forward periphery (DAC/ADC, output noise), without programming noise or drift;
- ``analog_accuracy_mean`` / ``analog_accuracy_std``: test accuracy after programming the
  weights onto the devices, over ``evaluation.repeats`` noise realizations;
- ``accuracy_drift_<t>`` / ``accuracy_drift_<t>_compensated``: test accuracy after drift to
  ``t`` (``1s``, ``1h``, ``1d``, ``1y`` by default), mean over the realizations;
- ``accuracy_snr_<x>db``: test accuracy with the forward noise at SNR ``x`` dB;
- ``train_time_s``, ``epoch_time_s`` (mean per training epoch), ``eval_time_s``;
- ``n_params`` (trainable parameters), ``n_layers`` (linear / convolution layers),
  ``n_analog_layers``, ``n_tiles`` (physical tiles), ``macs`` (multiply-accumulates per example);
- ``train_loss``, ``val_loss``, ``test_loss``, ``epochs``;
- the cost of the design (``docs/cost-model.md``), priced by the hardware's ``cost`` section with
  the input activity measured on the test set: ``energy_per_inference_nj``,
  ``latency_per_inference_us``, ``area_mm2``, ``tops_per_w``, ``tops``, ``tops_per_mm2``,
  ``inferences_per_s``; for pulsed (in-situ) training also ``train_energy_mj`` and
  ``train_update_time_s``. The per-layer, per-component breakdown is returned under
  ``_details`` (``{"cost": ..., "training_cost": ...}``), which the study stores with the trial;
- ``detector_retrain`` adds ``pretrained_test_accuracy`` (before programming),
  ``programmed_test_accuracy`` (feature extractor programmed, before retraining) and
  ``retrain_gain`` (``test_accuracy - programmed_test_accuracy``).

``report`` (if given) is called once per epoch with ``{"epoch": n, ...}``: ``train_loss``,
``train_accuracy``, ``accuracy`` (validation), ``val_loss``, ``lr``, ``momentum``,
``epoch_time_s``, ``elapsed_s``. A loss that becomes NaN or infinite ends the trial with
:class:`~dse.trial.training.DivergedError` (a :class:`~dse.errors.TrialError`,
``"diverged at epoch 3: loss=nan"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from dse.errors import SpecError
from dse.metric_names import MetricNames
from dse.results.records import DETAILS_KEY
from dse.trial.config import DetectorRetrainAlgorithm, HASGDAlgorithm, TrialConfig, parse_trial_config

Report = Callable[[dict[str, Any]], None]


def dataset_for(config: Mapping[str, Any]) -> Any:
    """The :class:`~dse.trial.data.DatasetArrays` a trial config trains on (cached per process);
    what the DSE runner loads once per worker and passes to :func:`run_trial` as ``dataset``."""
    from dse.trial.data import load_dataset

    trial = parse_trial_config(config)
    return load_dataset(trial.dataset.name, trial.dataset.data_dir)


def run_trial(config: Mapping[str, Any], report: Report | None = None, *, dataset: Any = None,
              num_threads: int | None = None) -> dict[str, Any]:
    """Train and evaluate the trial ``config``; return its final metrics (see the module doc).

    ``dataset``: the trial's :class:`~dse.trial.data.DatasetArrays` when the caller already holds
    them (otherwise loaded, with an in-process cache). ``num_threads``: torch intra-op threads
    for this trial (left as is when ``None``). Raises :class:`~dse.errors.SpecError` for an
    invalid config and :class:`~dse.errors.TrialError` when training diverges.
    """
    trial = parse_trial_config(config)
    import torch

    if num_threads is not None:
        torch.set_num_threads(max(1, int(num_threads)))
    return prepare(trial, dataset, report).run()


run_trial.metric_names = MetricNames(  # type: ignore[attr-defined]
    names=frozenset({
        "accuracy", "val_loss", "test_accuracy", "test_loss", "analog_accuracy_mean", "analog_accuracy_std",
        "train_loss", "train_time_s", "epoch_time_s", "eval_time_s", "epochs",
        "n_params", "n_layers", "n_analog_layers", "n_tiles", "macs",
        "energy_per_inference_nj", "latency_per_inference_us", "area_mm2", "tops_per_w", "tops", "tops_per_mm2",
        "inferences_per_s", "train_energy_mj", "train_update_time_s",
        "pretrained_test_accuracy", "programmed_test_accuracy", "retrain_gain",
    }),
    patterns=(r"accuracy_drift_[0-9p]+(y|d|h|min|s)(_compensated)?", r"accuracy_snr_m?[0-9p]+db"),
    examples=("accuracy_drift_1h_compensated", "accuracy_snr_18db"),
)
"""Every metric :func:`run_trial` returns (the module docstring lists them)."""


def static_cost(config: Mapping[str, Any]) -> Any:
    """The :class:`~simulator.cost.CostReport` of a trial config's design without training: the
    network built on its hardware (initial weights) and priced with the technology's static
    activity; no data is loaded."""
    import torch

    from dse.trial import analog
    from dse.trial.architectures import DATASETS
    from dse.trial.config import resolve_hardware
    from dse.trial.models import build_model

    trial = parse_trial_config(config)
    info = DATASETS[trial.dataset.name]
    shape = (info.channels, info.height, info.width)
    torch.manual_seed(_seed(trial.seed, 1))
    net = build_model(trial.model, shape, info.classes)
    rpu = resolve_hardware(trial.hardware, trial.algorithm)
    if rpu.update.mode != "none":  # the update does not change what an inference costs; its
        rpu = rpu.with_overrides({"update.mode": "none"})  # device states need not be drawn
    model = analog.convert(net, rpu, keep_digital=list(trial.model.keep_digital), seed=_seed(trial.seed, 2))
    report, _ = analog.cost_of(model, shape)
    return report


def prepare(trial: TrialConfig, dataset: Any = None, report: Report | None = None) -> TrialRun:
    """The trial set up and ready to train: data split, analog model, seeds (used by
    :func:`run_trial` and the learning-rate range test)."""
    if dataset is None:
        from dse.trial.data import load_dataset

        dataset = load_dataset(trial.dataset.name, trial.dataset.data_dir)
    elif getattr(dataset, "name", trial.dataset.name) != trial.dataset.name:
        raise SpecError("dataset.name", f"the trial names {trial.dataset.name!r} but the arrays passed "
                                        f"are {dataset.name!r}")
    return TrialRun(trial, dataset, report)


class TrialRun:
    """The state of one trial while it runs: split tensors (``train``, ``val``, ``test``), the
    analog ``model``, the batch-order ``generator``, epoch count and timings."""

    def __init__(self, trial: TrialConfig, dataset: Any, report: Report | None) -> None:
        import torch

        from dse.trial import analog
        from dse.trial.architectures import layer_names
        from dse.trial.config import resolve_hardware
        from dse.trial.data import split
        from dse.trial.models import build_model, count_macs
        from dse.trial.training import to_batches

        self.trial, self.report = trial, report
        self.started = time.perf_counter()
        ds = trial.dataset
        parts = split(dataset, ds.validation_fraction, trial.seed,
                      max_train_samples=ds.max_train_samples, max_test_samples=ds.max_test_samples)
        self.train = to_batches(dataset.train_x[parts.train], dataset.train_y[parts.train], dataset.scale)
        self.val = to_batches(dataset.train_x[parts.validation], dataset.train_y[parts.validation], dataset.scale)
        self.test = to_batches(dataset.test_x[parts.test], dataset.test_y[parts.test], dataset.scale)
        shape = tuple(dataset.train_x.shape[1:])
        classes = int(max(dataset.train_y.max(), dataset.test_y.max())) + 1
        rpu = resolve_hardware(trial.hardware, trial.algorithm)
        torch.manual_seed(_seed(trial.seed, 1))  # initialization and RReLU noise
        net = build_model(trial.model, shape, classes)
        self.names = layer_names(trial.model.name, trial.model.hidden)
        self.static = {
            "n_params": sum(p.numel() for p in net.parameters() if p.requires_grad),
            "n_layers": len(self.names),
            "n_analog_layers": len(self.names) - len(trial.model.keep_digital),
            "macs": count_macs(net, shape),
        }
        self.model = analog.convert(net, rpu, keep_digital=list(trial.model.keep_digital),
                                    seed=_seed(trial.seed, 2))
        self.static["n_tiles"] = analog.n_tiles(self.model)
        self.input_shape = shape
        self.pulse_log = analog.pulse_log(self.model)
        self.generator = torch.Generator().manual_seed(_seed(trial.seed, 3))
        self.epoch = 0
        self.epoch_times: list[float] = []
        self.last_train_loss = float("nan")

    # -- phases ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from dse.trial import analog
        from dse.trial.evaluation import analog_metrics
        from dse.trial.training import evaluate

        t = self.trial
        metrics: dict[str, Any] = {}
        self.fit()
        if isinstance(t.algorithm, DetectorRetrainAlgorithm):
            metrics.update(self.retrain_detector(t.algorithm))
        train_time = sum(self.epoch_times)
        eval_start = time.perf_counter()
        bs = t.evaluation.batch_size
        metrics["accuracy"], metrics["val_loss"] = evaluate(self.model, self.val, bs)
        with analog.activity_of(self.model) as meter:  # the cost model's activity, on the test set
            metrics["test_accuracy"], metrics["test_loss"] = evaluate(self.model, self.test, bs)
        cost, training = analog.cost_of(self.model, self.input_shape, meter.result(), self.pulse_log)
        metrics.update(analog_metrics(self.model, self.test, t.evaluation, _seed(t.seed, 4)))
        if "programmed_test_accuracy" in metrics:
            metrics["retrain_gain"] = metrics["test_accuracy"] - metrics["programmed_test_accuracy"]
        metrics.update({
            "train_loss": self.last_train_loss,
            "train_time_s": train_time,
            "epoch_time_s": train_time / max(1, len(self.epoch_times)),
            "eval_time_s": time.perf_counter() - eval_start,
            "epochs": self.epoch,
            **self.static,
            **cost.metrics(),
        })
        if training is not None:
            metrics["train_energy_mj"] = training.train_energy_mj
            metrics["train_update_time_s"] = training.update_time_s
        metrics[DETAILS_KEY] = {"cost": cost.to_dict(),
                                "training_cost": None if training is None else training.to_dict()}
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
            if self.report is not None:
                val_acc, val_loss = evaluate(self.model, self.val, t.evaluation.batch_size)
                self.report({
                    "epoch": self.epoch, "train_loss": stats.train_loss, "train_accuracy": stats.train_accuracy,
                    "accuracy": val_acc, "val_loss": val_loss, "lr": stats.lr, "momentum": stats.momentum,
                    "epoch_time_s": stats.time_s, "elapsed_s": time.perf_counter() - self.started,
                })

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
        out = {"pretrained_test_accuracy": evaluate(self.model, self.test, bs)[0]}
        extractor = self.names[: len(self.names) - algo.retrain_layers]
        analog.program_and_freeze(self.model, extractor, alpha=algo.alpha,
                                  seed=_seed(self.trial.seed, 6) if seed is None else seed)
        out["programmed_test_accuracy"] = evaluate(self.model, self.test, bs)[0]
        detector = layer_modules(self.model, self.names[len(extractor):])
        params = [p for m in detector.values() for p in m.parameters() if p.requires_grad]
        inside = {id(m) for d in detector.values() for m in d.modules()}
        frozen = [m for m in self.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                  and id(m) not in inside]  # the extractor's batch norms keep their statistics
        self.train_epochs(params, algo.retrain_lr or self.trial.training.lr, ConstantSchedule(), algo.retrain_epochs,
                    frozen=frozen)
        return out


def _seed(seed: int, stream: int) -> int:
    """Independent seeds for the trial's random streams (init, tiles, batches, evaluation ...)."""
    return (seed * 0x9E3779B1 + stream * 0x85EBCA77) % (2**63 - 1)
