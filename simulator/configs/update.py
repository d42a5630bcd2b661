"""How the weight gradient reaches the devices: the pulsed stochastic update and its management.

In the pulsed update of paper 000 eq. (1) (aihwkit's default ``StochasticCompressed`` pulse type),
every sample turns each input ``x_j`` and each error ``d_i`` into a stochastic bit stream of
length ``BL``: bit ``k`` is 1 with probability ``p_x = min(|x_j| B, 1)`` (resp. ``p_d = min(|d_i| A,
1)``), and every coincidence of a row and a column bit fires one pulse at device ``(i, j)`` in the
direction ``-sign(x_j d_i)``. The expected number of pulses is ``BL p_x p_d``, so with
``A B BL dw_min = lr`` the expected weight change is ``-lr d_i x_j`` per sample.

``BL``, ``A`` and ``B`` are set per sample as in aihwkit (``PulsedUpdateMetaParameter``), with
``g`` the device's weight granularity (``dw_min`` for most kinds), ``x_max = max_j |x_j|`` and
``d_max = max_i |d_i|`` (both at least ``g**2``):

* base: ``BL = desired_bl``, ``A = B = sqrt(lr / (g BL))``; if ``fixed_bl`` is false and
  ``g * desired_bl < lr`` then ``A = B = 1`` and ``BL = ceil(lr / g)``;
* ``update_bl_management``: ``BL = min(ceil(lr x_max d_max / g), desired_bl)`` and
  ``A = B = sqrt(lr / (g BL))`` (and update management is switched on, as aihwkit does);
* ``update_management``: ``A *= sqrt(x_max / d_val)``, ``B *= sqrt(d_val / x_max)`` with
  ``d_val = d_max``, so the two largest probabilities are equal (``sqrt(k / BL)``,
  ``k = lr x_max d_max / g``), except where the pulse train saturates (``k > desired_bl``):
  there ``d_val = d_max desired_bl / k`` (aihwkit 1.2.0, "avoid clipping of x"), so the largest
  input's probability is exactly 1 and the largest error's ``k / BL``, capped at 1.

This module is torch-free; the update itself is :class:`simulator.pulsed.PulsedUpdater`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from simulator._config import Config, check_range

__all__ = ["UpdateConfig", "snr_db_to_std"]

MAX_BL = 1024
"""Largest accepted pulse-train length."""


def snr_db_to_std(snr_db: float) -> float:
    """Noise std for a signal-to-noise ratio in dB, paper 000 eq. (2).

    The SNR is ``gamma = 1 / sigma**2`` for weights with ``|w| <= 1`` (signal power 1), so
    ``sigma = 10 ** (-snr_db / 20)``; e.g. 30 dB gives ``sigma = 0.0316``.
    """
    return 10.0 ** (-snr_db / 20.0)


@dataclass
class UpdateConfig(Config):
    """The update of an analog tile: pulsed (exact or aggregate) or floating point."""

    mode: Literal["exact", "aggregate", "none"] = "aggregate"
    """``"exact"``: per-sample stochastic bit streams and their coincidences (paper 000 eq. 1,
    as in aihwkit); ``"aggregate"``: each device's pulse counts for the whole mini-batch drawn
    from their distribution and the device response applied in closed form (fast, see
    :mod:`simulator.pulsed.aggregate` for the approximation); ``"none"``: floating-point SGD on
    the analog weights (hardware-aware training, no device model)."""

    desired_bl: int = 31
    """Length of the stochastic pulse trains (the maximum with ``update_bl_management``)."""

    fixed_bl: bool = True
    """Keep ``BL = desired_bl``; if false and ``lr > dw_min * desired_bl`` the train is lengthened
    to ``ceil(lr / dw_min)`` with probabilities scaled by 1 (without BL management)."""

    update_management: bool = True
    """Balance the input and error probabilities per sample by their maxima (see module doc)."""

    update_bl_management: bool = True
    """Shorten the trains per sample to ``ceil(lr x_max d_max / dw_min)`` (at most
    ``desired_bl``); implies ``update_management``, as in aihwkit."""

    snr_db: float | None = None
    """Update SNR in dB (paper 000 eq. 2): the Gaussian noise of every update pulse,
    ``sigma = 10 ** (-snr_db / 20)`` relative to the pulse's step, i.e. the device's cycle-to-cycle
    ``dw_min_std`` (replaced; e.g. 34 dB: 0.02, 10.5 dB: 0.3, aihwkit's default). ``None``: the
    device's ``dw_min_std`` applies."""

    rng: Literal["pool", "torch"] = "pool"
    """Random numbers of the update: ``"pool"`` (windows of a pre-drawn pool, fast) or
    ``"torch"`` (fresh draws from the seeded generator); see :mod:`simulator.rng`."""

    fused: bool = False
    """Aggregate mode: run the moments and the device response of each update as one kernel
    compiled by ``torch.compile`` (see :mod:`simulator.pulsed.fused`): the same computation up to
    floating-point rounding, 2-3x faster per update on large layers of devices whose step depends
    on the weight (ExpStep, SoftBounds, LinearStep, PowStep and the compounds built from them;
    constant steps keep the eager update, which is as fast). Costs 5-30 s of compilation on first
    use in a process (less with inductor's on-disk cache warm); off by default for short trials.
    Not used with write noise or in exact mode."""

    @property
    def effective_update_management(self) -> bool:
        """Whether update management is on (BL management switches it on)."""
        return self.update_management or self.update_bl_management

    def snr_noise_std(self) -> float | None:
        """Cycle-to-cycle noise (``dw_min_std``) set by ``snr_db`` (None when no SNR is given)."""
        return None if self.snr_db is None else snr_db_to_std(self.snr_db)

    def validate(self) -> None:
        check_range("desired_bl", self.desired_bl, 1, MAX_BL)
        check_range("snr_db", self.snr_db, -math.inf, math.inf, lo_open=True, hi_open=True,
                    allow_none=True)
