"""The whole trial config and its validation entry points."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dse.errors import SpecError
from dse.trial import architectures as arch
from dse.trial.config.algorithms import AlgorithmConfig, AnalogSGDAlgorithm, DetectorRetrainAlgorithm
from dse.trial.config.hardware import normalize_hardware, resolve_hardware
from dse.trial.config.inference import normalize_inference, resolve_inference
from dse.trial.config.sections import DatasetConfig, EvaluationConfig, ModelConfig
from dse.trial.config.training import TrainingConfig
from simulator._config import Config, check_range
from simulator.errors import ConfigError

SECTIONS = ("dataset", "model", "hardware", "training", "algorithm", "evaluation", "inference", "seed")
"""Top-level keys of a trial config, in document order."""


@dataclass
class TrialConfig(Config):
    """One trial: dataset, model, hardware, training, algorithm, evaluation, inference and seed.

    Each field's ``metadata["stage"]`` says which stage of the trial it belongs to (see
    :mod:`dse.trial.config.stages`): ``training`` (what the trained network depends on; the
    default) or ``evaluation`` (what only measures it)."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    """The data (see :class:`DatasetConfig`)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The network (see :class:`ModelConfig`)."""
    hardware: Any = None
    """A simulator preset plus ``RPUConfig`` overrides: ``{preset: NAME, <path>: value, ...}``
    (nested or dotted keys; normalized to nested); a bare string is a preset name. Default:
    ``{preset: ideal}``."""
    training: TrainingConfig = field(default_factory=TrainingConfig)
    """Optimizer, loss, batches, epochs and schedule (see :class:`TrainingConfig`)."""
    algorithm: AlgorithmConfig = field(default_factory=AnalogSGDAlgorithm)
    """Training algorithm: ``analog_sgd`` (default), ``hwa``, ``ha_sgd``, ``detector_retrain``."""
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig, metadata={"stage": "evaluation"})
    """Post-training measurements (see :class:`EvaluationConfig`)."""
    inference: Any = field(default=None, metadata={"stage": "evaluation"})
    """``RPUConfig`` overrides of the hardware the trained weights are programmed onto for
    evaluation (``forward.*``, ``noise.*``, ``cost.*``; nested or dotted, normalized to nested);
    ``{}``: evaluate on the training hardware (see :mod:`dse.trial.config.inference`)."""
    seed: int = 0
    """Seed of everything random in the trial (split, initialization, noise, batches)."""

    def validate(self) -> None:
        check_range("seed", self.seed, 0, 2**63 - 1)
        self.hardware = normalize_hardware(self.hardware)
        resolve_hardware(self.hardware, self.algorithm)
        self.inference = normalize_inference(self.inference)
        resolve_inference(self.hardware, self.algorithm, self.inference)
        info = arch.DATASETS[self.dataset.name]
        need = arch.min_input_size(self.model.name)
        if min(info.height, info.width) < need:
            raise ConfigError("model.name", f"got {self.model.name!r}, which needs images of at least "
                                            f"{need}×{need}, but {self.dataset.name} has "
                                            f"{info.height}×{info.width}; accepted for this dataset: "
                                            + ", ".join(m for m in arch.MODELS
                                                        if arch.min_input_size(m) <= info.height))
        if isinstance(self.algorithm, DetectorRetrainAlgorithm):
            n = len(self.model.layer_names)
            if self.algorithm.retrain_layers >= n:
                raise ConfigError("algorithm.retrain_layers",
                                  f"got {self.algorithm.retrain_layers}, but {self.model.name} has {n} "
                                  f"layers and the feature extractor needs at least one; "
                                  f"accepted: 1 .. {n - 1}")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["hardware"] = copy.deepcopy(self.hardware)
        out["inference"] = copy.deepcopy(self.inference)
        return out


# -- public entry points -------------------------------------------------------------------------
def parse_trial_config(config: Mapping[str, Any] | None) -> TrialConfig:
    """Build and validate a :class:`TrialConfig`; raises :class:`SpecError` with the key's path."""
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise SpecError("", f"a trial config must be a mapping with keys {', '.join(SECTIONS)}; "
                            f"got {type(config).__name__}")
    unknown = [k for k in config if k not in SECTIONS]
    if unknown:
        raise SpecError(str(unknown[0]), f"unknown section; accepted: {', '.join(SECTIONS)}")
    try:
        return TrialConfig.from_dict(config)
    except ConfigError as exc:
        raise SpecError(exc.path, exc.reason) from None


def validate_trial_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A normalized copy of ``config`` with every default filled in.

    Raises :class:`~dse.errors.SpecError` whose ``path`` is the dotted path of the offending key
    (``training.lr``, ``hardware.device.dw_min``, ``model.hidden[1]``) for unknown keys and
    invalid values. Idempotent: validating the result returns an equal dict.
    """
    return parse_trial_config(config).to_dict()
