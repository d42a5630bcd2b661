"""Aggregate mode: each device's pulse counts for a whole mini-batch, from their distribution.

In the exact update, device ``(i, j)`` receives in sample ``b`` a number of coincidences that is
binomial with ``BL_b`` trials and probability ``p_b = p_x[b, j] p_d[b, i]`` (the bits of different
slots are independent), down if ``x_bj d_bi > 0`` and up otherwise. Over the mini-batch the counts
are sums of independent binomials; three matrix products of the probabilities (the batch is the
inner dimension, as in the gradient ``d^T x``) give what the response needs:

``t = sum_b BL_b p_b`` (``= E[n_down + n_up]``), ``m = sum_b BL_b sign(x_bj d_bi) p_b``
(``= E[n_down - n_up]``), ``q = sum_b BL_b p_b**2`` and ``r = sum_b BL_b sign(x_bj d_bi) p_b**2``,
so that ``Var[n_dir] = n_dir - q_dir`` with ``q_down = (q + r) / 2``, ``q_up = (q - r) / 2``.
The fourth product (``r``) is needed only where up and down steps differ: for constant steps
configured symmetric (``up_down = 0``) it is skipped and ``q`` is weighted with the mean of the
squared up and down steps, which leaves out ``(s_up**2 - s_down**2) (q_up - q_down) / 2``: a part
of the variance below ``2 |r_ij|`` (the device's sampled up/down asymmetry, ``up_down_dtod``
scale, 0.01 by default) of its ``q`` share. No random number is drawn here.

The approximation of the aggregate mode: the device response is applied to the *mean* counts,
and their fluctuation enters as Gaussian noise with the binomial variance above, drawn together
with the cycle-to-cycle noise as one normal per device. So per device the mean and the variance
of the weight change match the exact mode; what is not reproduced is (a) the discreteness of the
counts (a device gets ``sqrt(v) xi`` instead of 0, 1, 2, ... pulses) and (b) the correlation
between devices that share an input or an error bit in the same slot. Over the many mini-batches
of training both average out (central limit).
"""

from __future__ import annotations

import torch

from simulator.pulsed.counters import PulseCounter
from simulator.pulsed.management import Probabilities

__all__ = ["Moments", "aggregate_moments"]

Moments = tuple[torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None"]
"""``(t, m, q, r)``, each ``(out, in)`` (``r`` may be None): see the module doc."""


def aggregate_moments(probs: Probabilities, signed_q: bool = True,
                      scratch: dict[str, torch.Tensor] | None = None,
                      counter: PulseCounter | None = None) -> Moments:
    """The count moments ``(t, m, q, r)`` of a mini-batch (consumes ``probs``; ``r`` if ``signed_q``).

    ``probs`` may carry leading tile dimensions (``(T, N, in)`` / ``(T, N, out)``, moments
    ``(T, out, in)``: one batched product per moment for all tiles). With signed probabilities
    ``s_p = sign(.) min(|.|, 1)`` of inputs and errors, ``m`` is the product of the signed and
    ``t`` that of the absolute values, so no input sign has to be known in advance.

    ``scratch`` (optional) keeps the output buffers between calls; the moments returned live in it.
    ``counter`` (optional) adds the expected pulses of the mini-batch: per device
    ``E[n] = sum_b BL_b p_x p_d``, whose sum over the devices is ``sum_b (sum_i BL_b p_d)
    (sum_j p_x)``, and the expected bits set on the lines (``sum_b BL_b sum_j p_x`` on the input
    lines, ``sum_b BL_b sum_i p_d`` on the error lines), and the saturated samples
    (:meth:`~simulator.pulsed.management.Probabilities.clipped`).
    """
    x, d, bl = probs.x_scaled, probs.d_scaled, probs.bl
    flat = x.dim() == 2
    if flat:
        x, d, bl = x.unsqueeze(0), d.unsqueeze(0), bl.unsqueeze(0)
    clipped = probs.clipped() if counter is not None else None  # before x is clipped in place
    bl = bl.unsqueeze(-1)
    shape = (x.shape[0], d.shape[-1], x.shape[-1])
    p_d = d.clamp(-1.0, 1.0).mul_(bl)  # sign(d) BL p_d  (T, N, out)
    p_d_abs = p_d.abs()
    p_x = x.clamp_(-1.0, 1.0)  # sign(x) p_x  (T, N, in)
    p_x_abs = p_x if probs.nonneg_x else p_x.abs()
    if counter is not None:
        s_d, s_x = p_d_abs.sum(-1), p_x_abs.sum(-1)  # (T, N): BL sum_i p_d, sum_j p_x
        counter.add((s_d * s_x).sum(), (bl.squeeze(-1) * s_x).sum(), s_d.sum(), bl.sum(),
                    bl.numel(), clipped)
    t = torch.bmm(p_d_abs.mT, p_x_abs, out=_buffer(scratch, "t", shape, x))
    m = torch.bmm(p_d.mT, p_x, out=_buffer(scratch, "m", shape, x))
    p_d2 = p_d_abs.mul_(p_d_abs).div_(bl)  # BL p_d**2
    p_x2 = p_x_abs * p_x_abs
    q = torch.bmm(p_d2.mT, p_x2, out=_buffer(scratch, "q", shape, x))
    r = None
    if signed_q:
        r = torch.bmm(p_d2.mul_(p_d.sign_()).mT, p_x2.mul_(p_x.sign_()), out=_buffer(scratch, "r", shape, x))
    if flat:
        return t[0], m[0], q[0], None if r is None else r[0]
    return t, m, q, r


def _buffer(scratch: dict[str, torch.Tensor] | None, name: str, shape: tuple[int, ...],
            like: torch.Tensor) -> torch.Tensor:
    """A reusable buffer of ``shape`` (a new tensor without ``scratch``)."""
    if scratch is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    buf = scratch.get(name)
    if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
        buf = scratch[name] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return buf
