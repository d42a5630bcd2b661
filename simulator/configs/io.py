"""The periphery of an analog matrix-vector product (MVM): DAC, ADC, noise, noise and bound management.

One :class:`IOConfig` describes one direction (the RPU config holds one for the forward and one
for the backward pass). The semantics follow aihwkit's ``IOParameters`` (single-pass MVM, the
``ONE_PASS`` analog MVM type); for an input vector ``x`` of one tile the analog MVM computes

1. noise management: ``alpha = max_j |x_j|`` (``abs_max``), ``max_j x_j`` (``max``) or 1
   (``none``), saturated at ``nm_thres`` when that is > 0 (an all-zero vector gives a zero
   output, as in aihwkit's C++ tiles; with ``max`` a vector without positive entries uses 1);
2. bound management: a reduction ``r`` (1, then 2, 4, ... for iterative management);
3. DAC: ``x' = clip(Q_in(x / (alpha r)), -inp_bound, inp_bound)``, ``Q_in`` rounding to the
   step ``2 inp_bound / (2**inp_bits - 2)`` (stochastically with ``inp_sto_round``), then
   Gaussian input noise ``inp_noise``;
4. the crossbar: ``y' = W x'`` plus output-referred weight (read) noise: ``w_noise * ||x'||_2 *
   N(0, 1)`` per output (``additive_constant``: every weight carries independent noise of std
   ``w_noise``) or ``w_noise * sqrt(sum_j |w_ij| x'_j**2) * N(0, 1)`` (``pcm_read``);
5. ADC: ``y'' = clip(Q_out(y' + out_noise N(0, 1)), -out_bound, out_bound)`` with the step
   ``2 out_bound / (2**out_bits - 2)``;
6. if any output of the vector was clipped and bound management is ``iterative``, the vector is
   recomputed with ``r`` doubled, until nothing clips, ``r > max_bm_factor`` or
   ``r > max_bm_res / inp_step``;
7. digital rescaling: ``y = y'' * alpha * r``.

``bits = 7`` gives aihwkit's ``inp_res = 1 / (2**7 - 2)``: 127 levels symmetric around zero.
``snr_db`` expresses the additive output noise as paper 000's signal-to-noise ratio
``gamma = 1 / sigma**2`` (the signal is that of a weight ``|w| <= 1`` driven by a full-scale
input, so the noise is in the units of ``out_noise``): ``out_noise = 10 ** (-snr_db / 20)``.
This is the noise knob of aihwkit's IO parameters that paper 000 set per direction; its
accuracy-vs-SNR curve (low at 6-9 dB, close to noise-free from 18 dB) is reproduced with it,
whereas reading the SNR as per-weight read noise (``w_noise``, which reaches the output scaled by
``||x||_2``) destroys training already at 18 dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from simulator._config import Config, check_range
from simulator.configs.update import snr_db_to_std
from simulator.errors import ConfigError

__all__ = ["IOConfig", "perfect_io"]

MAX_BITS = 24
"""Largest accepted DAC / ADC resolution (beyond float32 precision anyway)."""


@dataclass
class IOConfig(Config):
    """DAC, ADC, noise and management of one MVM direction (aihwkit ``IOParameters``)."""

    is_perfect: bool = False
    """Floating-point MVM: every other field of this direction is ignored."""

    inp_bits: int | None = 7
    """DAC resolution in bits (``2**bits - 1`` levels in ``[-inp_bound, inp_bound]``); ``None``: no
    input quantization."""

    inp_bound: float = 1.0
    """DAC input range: inputs (after noise management) are clipped to ``[-inp_bound, inp_bound]``."""

    inp_sto_round: bool = False
    """Stochastic rounding in the DAC (round up with probability equal to the remainder)."""

    inp_noise: float = 0.0
    """Std of Gaussian noise added to each analog input after the DAC."""

    out_bits: int | None = 9
    """ADC resolution in bits (``2**bits - 1`` levels in ``[-out_bound, out_bound]``); ``None``: no
    output quantization."""

    out_bound: float | None = 12.0
    """ADC output range: outputs are clipped to ``[-out_bound, out_bound]``; ``None``: unbounded."""

    out_sto_round: bool = False
    """Stochastic rounding in the ADC."""

    out_noise: float = 0.06
    """Std of the additive Gaussian noise at each output (before the ADC). Replaced by the value
    ``snr_db`` gives when that is set."""

    w_noise: float = 0.0
    """Std of the weight read noise (fresh for every MVM, referred to the output; see
    ``w_noise_type``)."""

    w_noise_type: Literal["none", "additive_constant", "pcm_read"] = "none"
    """``additive_constant``: independent ``N(0, w_noise**2)`` on every weight; ``pcm_read``: noise
    std proportional to ``sqrt(|w|)`` (PCM 1/f read noise, aihwkit ``PCMRead``); ``none``: off.
    The default is aihwkit's (``WeightNoiseType.NONE``): a ``w_noise`` needs a type with it."""

    snr_db: float | None = None
    """Output noise given as paper 000's SNR in dB instead of ``out_noise``: sets
    ``out_noise = 10 ** (-snr_db / 20)`` (e.g. 34 dB: 0.02, 6 dB: 0.5). ``None``: use
    ``out_noise``."""

    noise_management: Literal["none", "abs_max", "max"] = "abs_max"
    """Input scaling before the DAC: by the vector's absolute maximum, its maximum, or none."""

    nm_thres: float = 0.0
    """Upper saturation of the noise-management factor (0: none); larger inputs then clip."""

    bound_management: Literal["none", "iterative"] = "iterative"
    """``iterative``: recompute a vector whose outputs clipped with its input halved (forward
    pass only, as in aihwkit)."""

    max_bm_factor: int = 1000
    """Largest input reduction factor of iterative bound management."""

    max_bm_res: float = 0.25
    """Stop iterative bound management once the reduction exceeds ``max_bm_res`` DAC steps' worth
    of resolution (``r > max_bm_res / inp_step``)."""

    # -- derived values -------------------------------------------------------------------
    @property
    def effective_out_noise(self) -> float:
        """The additive output-noise std, from ``snr_db`` when given."""
        return snr_db_to_std(self.snr_db) if self.snr_db is not None else self.out_noise

    @property
    def effective_w_noise(self) -> float:
        """The weight read-noise std (0 when ``w_noise_type`` is ``none``)."""
        return self.w_noise if self.w_noise_type != "none" else 0.0

    @property
    def effective_w_noise_type(self) -> str:
        """The weight read-noise kind actually applied (``none`` when its std is 0)."""
        return self.w_noise_type if self.w_noise > 0.0 else "none"

    @property
    def inp_step(self) -> float | None:
        """DAC step (absolute, after noise management), ``None`` without quantization."""
        if self.inp_bits is None:
            return None
        return 2.0 * self.inp_bound / (2**self.inp_bits - 2)

    @property
    def out_step(self) -> float | None:
        """ADC step (absolute), ``None`` without quantization."""
        if self.out_bits is None or self.out_bound is None:
            return None
        return 2.0 * self.out_bound / (2**self.out_bits - 2)

    def validate(self) -> None:
        check_range("inp_bits", self.inp_bits, 2, MAX_BITS, allow_none=True)
        check_range("out_bits", self.out_bits, 2, MAX_BITS, allow_none=True)
        check_range("inp_bound", self.inp_bound, 0.0, math.inf, lo_open=True, hi_open=True)
        check_range("out_bound", self.out_bound, 0.0, math.inf, lo_open=True, hi_open=True,
                    allow_none=True)
        if self.out_bits is not None and self.out_bound is None:
            raise ConfigError("out_bits", f"got {self.out_bits!r} with out_bound = None; accepted: "
                                          "out_bits = None, or a finite out_bound (the ADC range)")
        for name in ("inp_noise", "out_noise", "w_noise", "nm_thres"):
            check_range(name, getattr(self, name), 0.0, math.inf, hi_open=True)
        if self.w_noise > 0.0 and self.w_noise_type == "none" and not self.is_perfect:
            raise ConfigError("w_noise", f"got {self.w_noise!r} with w_noise_type = 'none' (the default, as in "
                                         "aihwkit), which reads no weight noise; accepted: w_noise_type "
                                         "'additive_constant' or 'pcm_read' with it, or w_noise = 0")
        check_range("snr_db", self.snr_db, -100.0, 200.0, allow_none=True)
        check_range("max_bm_factor", self.max_bm_factor, 1, None)
        check_range("max_bm_res", self.max_bm_res, 0.0, math.inf, lo_open=True, hi_open=True)


def perfect_io() -> IOConfig:
    """A floating-point MVM direction (``is_perfect=True``)."""
    return IOConfig(is_perfect=True)
