"""Exact mode: real stochastic bit streams and their coincidences (paper 000 eq. 1).

Every sample ``b`` gets ``BL_b`` slots; in each slot input bit ``j`` is 1 with probability
``p_x[b, j]`` and error bit ``i`` with probability ``p_d[b, i]``, all independent (uniforms
compared with the probabilities). Device ``(i, j)`` gets one pulse per slot where both bits are
1, down if ``x_bj d_bi > 0`` and up if ``< 0``, as in aihwkit's ``StochasticCompressed`` pulses.

The counts of all slots of the mini-batch (``K = sum_b BL_b``) come from one float matrix
product over ``K``: the error bits are encoded as ``1`` (down) or ``base = K + 1`` (up), so the
product holds ``n_down + base * n_up`` and is decoded with an exact ``fmod``. All values are
integers below ``2**24``, exact in float32 (slots are processed in chunks of at most
:data:`MAX_SLOTS`). When inputs can be negative the input bits are split by sign and the product
runs over ``2 K``.

The device response is then applied once per mini-batch from these exact counts (see
:mod:`simulator.pulsed.response` for what that leaves out compared with aihwkit's pulse-by-pulse
order, and :mod:`simulator.pulsed.reference` for that order).
"""

from __future__ import annotations

import torch

from simulator.pulsed.counters import PulseCounter
from simulator.pulsed.management import Probabilities
from simulator.rng import RandomSource

__all__ = ["MAX_SLOTS", "exact_counts", "slot_samples"]

MAX_SLOTS = 4000
"""Slots per product: ``(MAX_SLOTS + 1)**2 < 2**24`` keeps the encoded counts exact in float32."""


def slot_samples(bl: torch.Tensor) -> torch.Tensor:
    """Sample index of every slot, ``(K,)``, for per-sample train lengths ``bl``."""
    return torch.repeat_interleave(torch.arange(bl.shape[0], device=bl.device), bl.long())


def exact_counts(probs: Probabilities, rng: RandomSource,
                 counter: PulseCounter | None = None) -> torch.Tensor:
    """Coincidence counts ``(2 out, in)`` of the mini-batch's bit streams: down rows, then up rows.

    The counts are whole numbers and are computed, and returned, in float32 (float64 for a
    float64 model): the encoded products reach ``(MAX_SLOTS + 1)**2``, which a half-precision
    model's dtype (bfloat16, float16) cannot hold exactly.

    ``counter`` (optional) adds the coincidences, the bits set on the input and error lines, the
    slots, the vectors and the saturated vectors of this mini-batch.
    """
    d = probs.d_scaled
    cdt = torch.float64 if d.dtype == torch.float64 else torch.float32
    d = d.to(cdt)
    out_size, in_size = d.shape[1], probs.x_scaled.shape[1]
    p_x, p_d = probs.p_x(), probs.p_d()
    samples = slot_samples(probs.bl)
    total = samples.numel()
    nonneg_x = probs.nonneg_x
    if nonneg_x is None:
        nonneg_x = bool(probs.x_scaled.min() >= 0)
    counts = torch.empty((2 * out_size, in_size), dtype=d.dtype, device=d.device)
    if total == 0:
        return counts.zero_()
    line_bits = torch.zeros(2, dtype=torch.float64, device=d.device) if counter is not None else None
    for start in range(0, total, MAX_SLOTS):
        idx = samples[start : start + MAX_SLOTS]
        k = idx.numel()
        base = float(k + 1)
        x_bits = _bits(p_x, idx, rng)
        d_bits = _bits(p_d, idx, rng)
        if line_bits is not None:
            line_bits[0] += x_bits.sum()
            line_bits[1] += d_bits.sum()
        d_sel = d.index_select(0, idx)
        one, zero, up = (torch.tensor(v, dtype=d.dtype, device=d.device) for v in (1.0, 0.0, base))
        # error bits encoded 1 for a down pulse (x d > 0) and base for an up pulse
        if nonneg_x:
            enc = torch.where(d_bits, torch.where(d_sel > 0, one, up), zero)
            c = torch.mm(enc.t(), x_bits.to(d.dtype))
        else:
            x_sel = probs.x_scaled.index_select(0, idx)  # only its sign is read
            enc_pos = torch.where(d_bits, torch.where(d_sel > 0, one, up), zero)
            enc_neg = torch.where(d_bits, torch.where(d_sel > 0, up, one), zero)
            x_pos = (x_bits & (x_sel > 0)).to(d.dtype)
            x_neg = (x_bits & (x_sel < 0)).to(d.dtype)
            c = torch.mm(torch.cat([enc_pos, enc_neg]).t(), torch.cat([x_pos, x_neg]))
        down = torch.fmod(c, base)
        up_counts = c.sub_(down).div_(base)
        if start == 0:
            counts[:out_size] = down
            counts[out_size:] = up_counts
        else:
            counts[:out_size].add_(down)
            counts[out_size:].add_(up_counts)
    if counter is not None and line_bits is not None:
        counter.add(counts.sum(), line_bits[0], line_bits[1], total, probs.bl.shape[0], probs.clipped())
    return counts


def _bits(p: torch.Tensor, idx: torch.Tensor, rng: RandomSource) -> torch.Tensor:
    """Bernoulli bits ``(k, size)`` (bool) of the slots ``idx`` with probabilities ``p[idx]``."""
    u = rng.uniform((idx.numel(), p.shape[1]), dtype=p.dtype)
    if u.device != p.device:
        u = u.to(p.device)
    return u < p.index_select(0, idx)
