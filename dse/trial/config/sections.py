"""The dataset, model and evaluation sections of a trial config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dse.trial import architectures as arch
from simulator._config import Config, check_range
from simulator.errors import ConfigError

DatasetName = Literal["digits", "mnist", "fashion-mnist", "cifar10", "svhn"]
ModelName = Literal["fcnn", "lenet5", "vgg8", "resnet18"]
Activation = Literal["relu", "tanh", "sigmoid", "rrelu"]


@dataclass
class DatasetConfig(Config):
    """Which data a trial trains and evaluates on, and how the training set is split."""

    name: DatasetName = "digits"
    """Dataset: ``digits`` (scikit-learn's 8×8 digits, embedded), ``mnist``, ``fashion-mnist``
    (IDX .gz files), ``cifar10`` (python pickle batches), ``svhn`` (cropped-digits .mat files)."""
    data_dir: str | None = field(default=None, metadata={"stage": "location"})
    """Directory holding the dataset's files; ``None`` searches ``$DSE_DATA_DIR`` and then the
    per-user cache (see ``dse data download``)."""
    validation_fraction: float = 0.1
    """Fraction of the training set held out (seeded by ``seed``) as the validation set that
    drives a search; the test set is reported separately."""
    max_train_samples: int | None = None
    """Use at most this many training examples (a seeded subset, drawn before the validation
    split) for reduced-scale studies; ``None`` uses all."""
    max_test_samples: int | None = None
    """Evaluate on at most this many test examples (a seeded subset); ``None`` uses all."""

    def validate(self) -> None:
        check_range("validation_fraction", self.validation_fraction, 0.0, 0.9, lo_open=True)
        check_range("max_train_samples", self.max_train_samples, 20, allow_none=True)
        check_range("max_test_samples", self.max_test_samples, 1, allow_none=True)


# -- model ---------------------------------------------------------------------------------------
@dataclass
class ModelConfig(Config):
    """The network architecture; its linear and convolution layers are analog unless kept digital."""

    name: ModelName = "fcnn"
    """Architecture: ``fcnn`` (fully connected, paper 000), ``lenet5``, ``vgg8``, ``resnet18``
    (CIFAR variant: 3×3 stem, no max-pool), the last three as in paper 002."""
    hidden: tuple[int, ...] = (256, 128)
    """Hidden layer widths of ``fcnn`` (input to output; ``[]`` is a single linear layer).
    Ignored by the convolutional models."""
    activation: Activation | None = None
    """Activation of ``fcnn`` and ``lenet5`` (paper 000 compares relu, tanh, sigmoid, rrelu);
    ``None`` uses the architecture's own (relu; tanh for lenet5). vgg8 and resnet18 use relu."""
    width: float = 1.0
    """Channel multiplier of the convolutional models (0.25 gives a quarter of the channels)."""
    keep_digital: tuple[str, ...] = ()
    """Layers kept digital (floating point), by name: ``fc1`` ... for fcnn; ``conv1``, ``conv2``,
    ``fc1``, ``fc2`` for lenet5; ``conv1`` ... ``conv6``, ``fc1``, ``fc2`` for vgg8;
    ``conv1``, ``layer1.0.conv1`` ... ``fc`` for resnet18 (paper 004's digital detector)."""

    def validate(self) -> None:
        for i, width in enumerate(self.hidden):
            check_range(f"hidden[{i}]", width, 1)
        check_range("width", self.width, 0.0, 4.0, lo_open=True)
        names = arch.layer_names(self.name, self.hidden)
        for i, name in enumerate(self.keep_digital):
            if name not in names:
                raise ConfigError(f"keep_digital[{i}]", f"got {name!r}, not a layer of {self.name}; "
                                                        f"accepted: {', '.join(names)}")

    @property
    def layer_names(self) -> list[str]:
        """Names of the model's analog-capable layers, input to output."""
        return arch.layer_names(self.name, self.hidden)


# -- training ------------------------------------------------------------------------------------


@dataclass
class EvaluationConfig(Config):
    """What is measured after training, beyond the clean validation and test accuracy."""

    repeats: int = 5
    """R: independent programming / read-noise realizations behind ``analog_accuracy_mean`` /
    ``analog_accuracy_std`` and the drift accuracies."""
    drift_times_s: tuple[float, ...] = (1.0, 3600.0, 86400.0, 31_536_000.0)
    """Times after programming (seconds) at which accuracy is measured with and without drift
    compensation (``accuracy_drift_1h``, ``accuracy_drift_1h_compensated``, ...); ``[]`` skips."""
    snr_db: tuple[float, ...] = ()
    """Forward signal-to-noise ratios (dB, paper 000 fig. 5) at which the trained network is
    evaluated (``accuracy_snr_18db``, ...); ``[]`` skips."""
    batch_size: int = 1000
    """Mini-batch size for evaluation."""

    def validate(self) -> None:
        check_range("repeats", self.repeats, 1, 10_000)
        for i, t in enumerate(self.drift_times_s):
            check_range(f"drift_times_s[{i}]", t, 0.0, 1e12, lo_open=True)
        for i, snr in enumerate(self.snr_db):
            check_range(f"snr_db[{i}]", snr, -20.0, 200.0)
        check_range("batch_size", self.batch_size, 1, 1_000_000)
