"""Device response and the pulsed stochastic update (exact and aggregate).

* :mod:`~simulator.pulsed.devices` — per-device state (device-to-device variation), the
  single-pulse rules of the device kinds;
* :mod:`~simulator.pulsed.management` — per-sample pulse-train length and bit probabilities;
* :mod:`~simulator.pulsed.exact` — bit streams and exact coincidence counts;
* :mod:`~simulator.pulsed.aggregate` — count moments of a mini-batch (the fast mode);
* :mod:`~simulator.pulsed.response` — the closed-form device response to counted pulses;
* :mod:`~simulator.pulsed.reference` — aihwkit's pulse-by-pulse order (slow; tests, benchmarks);
* :class:`PulsedUpdater` — what an analog tile uses.
"""

from __future__ import annotations

from simulator.pulsed.devices import DeviceModel, device_model
from simulator.pulsed.updater import PulsedUpdater

__all__ = ["DeviceModel", "PulsedUpdater", "device_model"]
