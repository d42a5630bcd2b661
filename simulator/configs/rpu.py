"""The complete description of an analog tile: :class:`RPUConfig`.

``RPUConfig`` bundles the forward and backward periphery, the update, the device, the inference
non-idealities, the tile mapping, the training-time weight noise of hardware-aware training and
the technology its cost is priced with.
Every field can be set by a dotted path (``rpu.with_overrides({"forward.out_bits": 7})``), which
is how a design-space study sweeps hardware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import simulator.configs.compounds  # noqa: F401  (registers the compound kinds)
from simulator._config import Config, check_range
from simulator.configs.cost import CostConfig
from simulator.configs.devices import ConstantStepDevice, DeviceConfig
from simulator.configs.io import IOConfig
from simulator.configs.mapping import MappingConfig
from simulator.configs.noise import NoiseConfig
from simulator.configs.update import UpdateConfig
from simulator.errors import ConfigError

__all__ = ["ModifierConfig", "RPUConfig"]


@dataclass
class ModifierConfig(Config):
    """Weight noise during hardware-aware training (aihwkit ``WeightModifierParameter``).

    In training mode every forward pass of a tile reads ``W + dW`` (fresh noise each pass); the
    gradient reaches ``W`` unchanged (straight-through), so training learns weights that stay
    accurate under the noise. Evaluation mode reads ``W``.
    """

    noise_type: Literal["none", "add_normal", "mult_normal"] = "none"
    """aihwkit's modifier ``type``: ``add_normal``: ``dW = std_dev * w_ref * N(0, 1)``; ``mult_normal``: ``dW = std_dev * W *
    N(0, 1)``; ``none``: off."""

    std_dev: float = 0.0
    """Std of the weight noise (relative, see ``type``)."""

    rel_to_actual_wmax: bool = True
    """``w_ref`` of ``add_normal`` is the tile's actual ``max |W|`` (else ``assumed_wmax``)."""

    assumed_wmax: float = 1.0
    """``w_ref`` of ``add_normal`` when ``rel_to_actual_wmax`` is false."""

    @property
    def active(self) -> bool:
        """Whether any training-time weight noise is applied."""
        return self.noise_type != "none" and self.std_dev > 0.0

    def validate(self) -> None:
        check_range("std_dev", self.std_dev, 0.0, math.inf, hi_open=True)
        check_range("assumed_wmax", self.assumed_wmax, 0.0, math.inf, lo_open=True, hi_open=True)


@dataclass
class RPUConfig(Config):
    """Everything that defines an analog tile (aihwkit's ``SingleRPUConfig`` / ``InferenceRPUConfig``)."""

    forward: IOConfig = field(default_factory=IOConfig)
    """Periphery of the forward pass."""

    backward: IOConfig = field(default_factory=lambda: IOConfig(bound_management="none"))
    """Periphery of the backward pass (bound management is forward-only)."""

    update: UpdateConfig = field(default_factory=UpdateConfig)
    """How gradients update the tile: pulsed (``exact`` / ``aggregate``) or floating point."""

    device: DeviceConfig = field(default_factory=ConstantStepDevice)
    """Device model of the pulsed update (ignored by ``update.mode = "none"``)."""

    noise: NoiseConfig = field(default_factory=NoiseConfig)
    """Inference non-idealities: programming noise, drift, read noise, drift compensation."""

    mapping: MappingConfig = field(default_factory=MappingConfig)
    """Tile size, bias placement and weight scaling."""

    modifier: ModifierConfig = field(default_factory=ModifierConfig)
    """Training-time weight noise (hardware-aware training)."""

    cost: CostConfig = field(default_factory=CostConfig)
    """The technology and architecture the cost model prices this tile with (energy, latency,
    area; see :mod:`simulator.cost`)."""

    @property
    def is_pulsed(self) -> bool:
        """Whether the tile weights are updated by device pulses (not by the optimizer's SGD)."""
        return self.update.mode != "none" and self.device.is_pulsed

    @property
    def is_ideal(self) -> bool:
        """Floating point end to end: perfect MVMs, no training noise, no inference noise."""
        return (self.forward.is_perfect and self.backward.is_perfect and not self.is_pulsed
                and not self.modifier.active and self.noise.is_ideal)

    def validate(self) -> None:
        if self.device.is_compound and self.update.mode == "none":
            raise ConfigError("update.mode", f"got 'none' with device.type = "
                                             f"{type(self.device).__name__!r}; accepted: 'exact' or "
                                             "'aggregate' (a compound device is trained by pulses)")
        if not self.backward.is_perfect and self.backward.bound_management != "none":
            raise ConfigError("backward.bound_management",
                              f"got {self.backward.bound_management!r}; accepted: 'none' (bound "
                              "management exists for the forward pass only)")
        if self.mapping.weight_scaling_omega is not None and self.is_pulsed:
            raise ConfigError("mapping.weight_scaling_omega",
                              f"got {self.mapping.weight_scaling_omega!r} with update.mode = "
                              f"{self.update.mode!r}; accepted: None, or update.mode = 'none' "
                              "(pulsed devices store the weights unscaled)")
