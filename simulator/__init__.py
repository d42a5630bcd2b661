"""Analog crossbar simulator in pure PyTorch.

The configs (:mod:`simulator.configs`) are torch-free; the torch classes and functions listed in
``__all__`` are imported on first access, so ``import simulator.configs`` never loads torch::

    from simulator import AnalogSGD, convert_to_analog, get_preset
    from simulator import inference

    model = convert_to_analog(torch_model, get_preset("gokmen_vlasov"), seed=0)
    opt = AnalogSGD(model.parameters(), lr=0.05)
"""

from __future__ import annotations

import importlib
from typing import Any

from simulator.errors import ConfigError, SimulatorError

_LAZY = {
    # configs (torch-free)
    "RPUConfig": "simulator.configs",
    "get_preset": "simulator.configs",
    "preset_names": "simulator.configs",
    "PRESETS": "simulator.configs",
    # torch implementation
    "AnalogIO": "simulator.io",
    "AnalogTile": "simulator.tile",
    "TileArray": "simulator.mapping",
    "AnalogLinear": "simulator.layers",
    "AnalogConv2d": "simulator.layers",
    "convert_to_analog": "simulator.layers",
    "analog_layers": "simulator.layers",
    "n_tiles": "simulator.layers",
    "AnalogSGD": "simulator.optim",
    "RandomSource": "simulator.rng",
    "load_analog_model": "simulator.checkpoint",
    "save_analog_model": "simulator.checkpoint",
}

__all__ = [
    "PRESETS",
    "AnalogConv2d",
    "AnalogIO",
    "AnalogLinear",
    "AnalogSGD",
    "AnalogTile",
    "ConfigError",
    "RPUConfig",
    "RandomSource",
    "SimulatorError",
    "TileArray",
    "analog_layers",
    "convert_to_analog",
    "get_preset",
    "load_analog_model",
    "n_tiles",
    "preset_names",
    "save_analog_model",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
