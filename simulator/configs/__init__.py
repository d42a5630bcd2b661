"""Torch-free simulator configs (small validated dataclasses; see ``simulator._config``)."""

from __future__ import annotations

from simulator.configs.compounds import (
    BufferedTransferCompound,
    ChoppedTransferCompound,
    DynamicTransferCompound,
    TransferCompound,
)
from simulator.configs.cost import CostConfig
from simulator.configs.devices import (
    ConstantStepDevice,
    DeviceConfig,
    ExpStepDevice,
    IdealDevice,
    LinearStepDevice,
    PowStepDevice,
    PowStepReferenceDevice,
    PulsedDeviceConfig,
    SoftBoundsDevice,
    SoftBoundsReferenceDevice,
)
from simulator.configs.io import IOConfig, perfect_io
from simulator.configs.mapping import MappingConfig
from simulator.configs.noise import (
    AdditiveProgNoise,
    DriftConfig,
    NoiseConfig,
    NoProgNoise,
    PCMLikeProgNoise,
    ProgNoise,
    ReadNoiseConfig,
    RelativeProgNoise,
)
from simulator.configs.presets import PRESETS, get_preset, preset_names
from simulator.configs.rpu import ModifierConfig, RPUConfig
from simulator.configs.update import UpdateConfig, snr_db_to_std

__all__ = [
    "PRESETS",
    "AdditiveProgNoise",
    "BufferedTransferCompound",
    "ChoppedTransferCompound",
    "ConstantStepDevice",
    "CostConfig",
    "DeviceConfig",
    "DriftConfig",
    "DynamicTransferCompound",
    "ExpStepDevice",
    "IOConfig",
    "IdealDevice",
    "LinearStepDevice",
    "MappingConfig",
    "ModifierConfig",
    "NoProgNoise",
    "NoiseConfig",
    "PCMLikeProgNoise",
    "PowStepDevice",
    "PowStepReferenceDevice",
    "ProgNoise",
    "PulsedDeviceConfig",
    "RPUConfig",
    "ReadNoiseConfig",
    "RelativeProgNoise",
    "SoftBoundsDevice",
    "SoftBoundsReferenceDevice",
    "TransferCompound",
    "UpdateConfig",
    "get_preset",
    "perfect_io",
    "preset_names",
    "snr_db_to_std",
]
