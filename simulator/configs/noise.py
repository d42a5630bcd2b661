"""Inference non-idealities: programming noise, conductance drift, 1/f read noise, compensation.

A trained weight matrix is *programmed* onto the devices of its tile (with programming noise);
afterwards the conductances *drift* and accumulate *read noise* until the time of inference, and
a *drift compensation* may rescale the outputs. The models:

* programming noise (``programming``, one kind per model):

  - :class:`RelativeProgNoise`: ``g(w) = (1 + mean_shift + alpha N(0, 1)) w`` (paper 004 eq. 1;
    the mean shift is paper 001's device shift, fig. 8);
  - :class:`AdditiveProgNoise`: ``w + (mean_shift + std N(0, 1)) w_range`` with ``w_range`` the
    tile's ``max |w|`` (paper 001: the error is proportional to the device's dynamic range);
  - :class:`PCMLikeProgNoise`: aihwkit's ``PCMLikeNoiseModel``: each weight maps onto a pair of
    conductances (``g+ = max(w, 0) s``, ``g- = max(-w, 0) s``, ``s = g_max / max |w|``), each
    programmed with ``N(0, sigma(g)**2)`` noise, ``sigma(g) = sum_i c_i (g / g_max)**i`` (µS,
    coefficients fitted at ``g_max = coeff_g_max_reference``, scaled by ``g_max`` / reference);

* drift (``drift``): ``g(t) = g_prog ((t + t0) / t0) ** (-nu)`` with one exponent per device,
  ``nu ~ |N(mu, sigma)|`` where ``mu``, ``sigma`` are aihwkit's PCM fit in ``log(g / g_max)``
  (``model="pcm"``) or given (``model="gaussian"``); ``t`` counts from the end of programming;
* read noise (``read_noise``, ``model="pcm"``): accumulated 1/f noise at time ``t``,
  ``g += |g| q(g) sqrt(log((t + t0 + t_read) / (2 t_read))) N(0, 1)``,
  ``q(g) = min(0.0088 / max((g / g_max)**0.65, 1e-3), 0.2)`` (aihwkit's PCM fit);
* compensation (``compensation="global"``): aihwkit's ``GlobalDriftCompensation``: at
  programming time and at each drift time the tile reads out the identity matrix through its
  (noisy) forward pass; outputs are multiplied by ``mean|readout(0)| / mean|readout(t)|``.

This module is torch-free; the implementation is :mod:`simulator.inference`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from simulator._config import Config, check_range
from simulator.errors import ConfigError

__all__ = [
    "AdditiveProgNoise",
    "DriftConfig",
    "NoProgNoise",
    "NoiseConfig",
    "PCMLikeProgNoise",
    "ProgNoise",
    "ReadNoiseConfig",
    "RelativeProgNoise",
]


def _non_negative(name: str, value: float) -> None:
    check_range(name, value, 0.0, math.inf, hi_open=True)


@dataclass
class ProgNoise(Config):
    """A programming-noise model (polymorphic: the dict form names the kind under ``"type"``)."""


@dataclass
class NoProgNoise(ProgNoise):
    """Exact programming: the programmed weights equal the trained ones."""


@dataclass
class RelativeProgNoise(ProgNoise):
    """Noise proportional to the weight (paper 004): ``g(w) = (1 + mean_shift + alpha N(0, 1)) w``."""

    alpha: float = 0.0
    """Relative std of the programmed weight (paper 004's alpha; 1.0 spreads ``w`` over ``[-2w, 4w]``
    at 3 sigma)."""

    mean_shift: float = 0.0
    """Systematic relative shift of every programmed weight (paper 001 fig. 8)."""

    def validate(self) -> None:
        _non_negative("alpha", self.alpha)
        check_range("mean_shift", self.mean_shift, -1.0, 1.0)


@dataclass
class AdditiveProgNoise(ProgNoise):
    """Noise proportional to the tile's weight range (paper 001's perturbation model)."""

    std: float = 0.0
    """Std of the additive perturbation, relative to the tile's ``max |w|`` (0.05: 5% noise)."""

    mean_shift: float = 0.0
    """Mean of the perturbation, relative to the tile's ``max |w|`` (paper 001 fig. 8)."""

    def validate(self) -> None:
        _non_negative("std", self.std)
        check_range("mean_shift", self.mean_shift, -1.0, 1.0)


@dataclass
class PCMLikeProgNoise(ProgNoise):
    """aihwkit's ``PCMLikeNoiseModel`` programming noise on a differential conductance pair."""

    coeffs: tuple[float, ...] = (0.26348, 1.9650, -1.1731)
    """Polynomial coefficients ``c_0, c_1, ...`` of the programming-noise std in µS, in powers of
    ``g / g_max`` (aihwkit's fit to PCM measurements)."""

    coeff_g_max_reference: float = 25.0
    """``g_max`` (µS) at which ``coeffs`` were fitted; the std scales with ``g_max`` / this."""

    scale: float = 1.0
    """Multiplier of the programming-noise std (aihwkit ``prog_noise_scale``)."""

    def validate(self) -> None:
        if not self.coeffs:
            raise ConfigError("coeffs", "got an empty list; accepted: at least one coefficient")
        for i, c in enumerate(self.coeffs):
            check_range(f"coeffs[{i}]", c, -math.inf, math.inf, lo_open=True, hi_open=True)
        check_range("coeff_g_max_reference", self.coeff_g_max_reference, 0.0, math.inf,
                    lo_open=True, hi_open=True)
        _non_negative("scale", self.scale)


ProgNoise.register_kinds(NoProgNoise, RelativeProgNoise, AdditiveProgNoise, PCMLikeProgNoise)


@dataclass
class DriftConfig(Config):
    """Power-law conductance drift with one exponent ``nu`` per device (drawn when programming)."""

    model: Literal["none", "pcm", "gaussian"] = "none"
    """``pcm``: ``nu ~ |N(mu(g), sigma(g))|`` from aihwkit's PCM fit (``mu`` in [0.049, 0.1]);
    ``gaussian``: ``nu ~ |N(nu_mean, nu_std)|`` for every device; ``none``: no drift."""

    nu_mean: float = 0.05
    """Mean drift exponent of the ``gaussian`` model."""

    nu_std: float = 0.0
    """Device-to-device std of the drift exponent of the ``gaussian`` model."""

    scale: float = 1.0
    """Multiplier of every drift exponent (aihwkit ``drift_scale``)."""

    def validate(self) -> None:
        check_range("nu_mean", self.nu_mean, 0.0, 1.0)
        check_range("nu_std", self.nu_std, 0.0, 1.0)
        _non_negative("scale", self.scale)


@dataclass
class ReadNoiseConfig(Config):
    """Accumulated 1/f read noise of the conductances at the time of inference."""

    model: Literal["none", "pcm"] = "none"
    """``pcm``: aihwkit's PCM fit (std relative to the conductance, see the module doc); ``none``."""

    scale: float = 1.0
    """Multiplier of the read-noise std (aihwkit ``read_noise_scale``)."""

    t_read: float = 250.0e-9
    """Duration of one read in seconds (parameter of the 1/f integral)."""

    def validate(self) -> None:
        _non_negative("scale", self.scale)
        check_range("t_read", self.t_read, 0.0, math.inf, lo_open=True, hi_open=True)


@dataclass
class NoiseConfig(Config):
    """Inference non-idealities of a tile: programming, drift, read noise and compensation."""

    programming: ProgNoise = field(default_factory=NoProgNoise)
    """Programming-noise model applied when the trained weights are programmed."""

    drift: DriftConfig = field(default_factory=DriftConfig)
    """Conductance drift after programming."""

    read_noise: ReadNoiseConfig = field(default_factory=ReadNoiseConfig)
    """Accumulated read noise at the time of inference."""

    compensation: Literal["none", "global"] = "global"
    """Drift compensation: ``global`` rescales each tile's outputs by a readout ratio (aihwkit
    ``GlobalDriftCompensation``); ``none``."""

    g_max: float = 25.0
    """Conductance (µS) the tile's ``max |w|`` maps to (single device pair per weight)."""

    t0: float = 20.0
    """Time (s) between the end of programming and the first read; drift is relative to it."""

    @property
    def is_ideal(self) -> bool:
        """Whether programming, drift and reads leave the weights exactly as trained."""
        return (isinstance(self.programming, NoProgNoise) and self.drift.model == "none"
                and self.read_noise.model == "none")

    def validate(self) -> None:
        check_range("g_max", self.g_max, 0.0, math.inf, lo_open=True, hi_open=True)
        check_range("t0", self.t0, 0.0, math.inf, lo_open=True, hi_open=True)
