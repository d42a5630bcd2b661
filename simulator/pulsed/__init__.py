"""Device response and the pulsed stochastic update (exact and aggregate).

* :mod:`~simulator.pulsed.devices` — per-device state (device-to-device variation), the
  single-pulse rules of the device kinds;
* :mod:`~simulator.pulsed.management` — per-sample pulse-train length and bit probabilities;
* :mod:`~simulator.pulsed.exact` — bit streams and exact coincidence counts;
* :mod:`~simulator.pulsed.aggregate` — count moments of a mini-batch (the fast mode);
* :mod:`~simulator.pulsed.fused` — the aggregate update, eager or compiled into one kernel;
* :mod:`~simulator.pulsed.response` — the closed-form device response to counted pulses;
* :mod:`~simulator.pulsed.reference` — aihwkit's pulse-by-pulse order (slow; tests, benchmarks);
* :mod:`~simulator.pulsed.transfer` — compound devices (Tiki-Taka, TTv2, c-TTv2, AGAD);
* :class:`PulsedUpdater` — what an analog tile uses (:func:`make_updater` picks it or the
  compound's :class:`TransferUpdater`).
"""

from __future__ import annotations

from typing import Any

import torch

from simulator.configs.devices import DeviceConfig
from simulator.configs.update import UpdateConfig
from simulator.pulsed.devices import DeviceModel, device_model
from simulator.pulsed.transfer import TransferUpdater
from simulator.pulsed.updater import PulsedUpdater
from simulator.rng import RandomSource

__all__ = ["DeviceModel", "PulsedUpdater", "TransferUpdater", "device_model", "make_updater"]


def make_updater(device_cfg: DeviceConfig, update_cfg: UpdateConfig, out_size: int, in_size: int,
                 rng: RandomSource, dtype: torch.dtype = torch.float32, bias_column: bool = False) -> Any:
    """The updater of a tile: a :class:`TransferUpdater` for compound devices, else a
    :class:`PulsedUpdater`. ``bias_column``: the tile's last input column holds the layer's analog
    bias (a single device's ``perfect_bias`` makes it ideal; the devices of a compound are sampled
    alike, bias column included)."""
    if device_cfg.is_compound:
        return TransferUpdater(device_cfg, update_cfg, out_size, in_size, rng, dtype)  # type: ignore[arg-type]
    return PulsedUpdater(device_cfg, update_cfg, out_size, in_size, rng, dtype, bias_column=bias_column)
