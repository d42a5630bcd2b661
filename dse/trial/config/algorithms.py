"""The algorithm section of a trial config: how the network is trained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dse.trial.config._kinded import KindedConfig
from simulator._config import check_range


@dataclass
class AlgorithmConfig(KindedConfig):
    """Training algorithm (polymorphic: ``type`` is analog_sgd, hwa, ha_sgd or detector_retrain)."""


@dataclass
class AnalogSGDAlgorithm(AlgorithmConfig):
    """In-memory training: the hardware's update mode applies (pulsed device updates for the
    pulsed presets, floating-point updates where ``update.mode`` is ``none``)."""

    kind: ClassVar[str] = "analog_sgd"


@dataclass
class HWAAlgorithm(AlgorithmConfig):
    """Hardware-aware training for inference chips: the forward and backward passes see the
    hardware's noise and quantization, the weights get floating-point updates
    (``update.mode`` forced to ``none``)."""

    kind: ClassVar[str] = "hwa"


@dataclass
class HASGDAlgorithm(AlgorithmConfig):
    """Hessian-aware SGD (paper 001, Algorithm 1) on floating-point updates: each step averages
    the gradients of ``samples`` forward/backward passes, each with an independent perturbation
    of every analog weight, ``W + ν`` with ``ν ~ N(mean_shift·s, (std·s)²)`` and ``s`` the layer's
    largest absolute weight."""

    kind: ClassVar[str] = "ha_sgd"
    samples: int = 4
    """L: perturbation samples (forward/backward passes) per step."""
    std: float = 0.05
    """Standard deviation of the perturbation, relative to the layer's max |w|."""
    mean_shift: float = 0.0
    """Mean of the perturbation (device shift, paper 001 fig. 8), relative to the max |w|."""

    def validate(self) -> None:
        check_range("samples", self.samples, 1, 64)
        check_range("std", self.std, 0.0, 10.0)
        check_range("mean_shift", self.mean_shift, -1.0, 1.0)


@dataclass
class DetectorRetrainAlgorithm(AlgorithmConfig):
    """Detector retraining (paper 004): train the whole network, program the feature extractor
    (every layer but the last ``retrain_layers``) with relative programming noise
    ``g(w) = (1 + alpha·N(0, 1))·w``, freeze it, and retrain the detector."""

    kind: ClassVar[str] = "detector_retrain"
    alpha: float = 1.0
    """Relative programming-noise strength of the feature extractor."""
    retrain_layers: int = 1
    """k: number of last layers (the detector) that are retrained."""
    retrain_epochs: int = 5
    """Epochs of detector retraining."""
    retrain_lr: float | None = None
    """Learning rate of the retraining (constant); ``None`` uses ``training.lr``."""

    def validate(self) -> None:
        check_range("alpha", self.alpha, 0.0, 100.0)
        check_range("retrain_layers", self.retrain_layers, 1)
        check_range("retrain_epochs", self.retrain_epochs, 1, 100_000)
        check_range("retrain_lr", self.retrain_lr, 0.0, 100.0, lo_open=True, allow_none=True)


AlgorithmConfig.register(AnalogSGDAlgorithm, HWAAlgorithm, HASGDAlgorithm, DetectorRetrainAlgorithm)
