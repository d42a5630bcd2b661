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

from simulator.pulsed.management import Probabilities

__all__ = ["Moments", "aggregate_moments"]

Moments = tuple[torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None"]
"""``(t, m, q, r)``, each ``(out, in)`` (``r`` may be None): see the module doc."""


def aggregate_moments(probs: Probabilities, signed_q: bool = True,
                      scratch: dict[str, torch.Tensor] | None = None) -> Moments:
    """The count moments ``(t, m, q, r)`` of a mini-batch (consumes ``probs``; ``r`` if ``signed_q``).

    ``scratch`` (optional) keeps the output buffers between calls; the moments returned live in it.
    """
    bl = probs.bl.unsqueeze(0)
    d_t = probs.d_scaled.t()  # (out, N): the left factors are built contiguous, (out, N)
    out, n_in = d_t.shape[0], probs.x_scaled.shape[1]
    p_d_bl = d_t.abs().clamp_(max=1.0).mul_(bl)
    s_d = torch.sign(d_t)
    if probs.nonneg_x:
        # sign(x d) = sign(d): signed and unsigned left factors share the right factor
        p_x = probs.x_scaled.clamp_(max=1.0)
        tm = torch.mm(torch.cat([p_d_bl, p_d_bl * s_d]), p_x, out=_buffer(scratch, "tm", 2 * out, n_in, p_x))
        p_d2_bl = p_d_bl.mul_(p_d_bl).div_(bl)
        p_x2 = p_x.mul_(p_x)
        if signed_q:
            qr = torch.mm(torch.cat([p_d2_bl, p_d2_bl * s_d]), p_x2, out=_buffer(scratch, "qr", 2 * out, n_in, p_x))
            return tm[:out], tm[out:], qr[:out], qr[out:]
        return tm[:out], tm[out:], torch.mm(p_d2_bl, p_x2, out=_buffer(scratch, "q", out, n_in, p_x)), None
    p_x = probs.x_scaled.abs().clamp_(max=1.0)
    s_x = torch.sign(probs.x_scaled)
    t = torch.mm(p_d_bl, p_x, out=_buffer(scratch, "t", out, n_in, p_x))
    m = torch.mm(p_d_bl * s_d, p_x * s_x, out=_buffer(scratch, "m", out, n_in, p_x))
    p_d2_bl = p_d_bl.mul_(p_d_bl).div_(bl)
    p_x2 = p_x.mul_(p_x)
    q = torch.mm(p_d2_bl, p_x2, out=_buffer(scratch, "q", out, n_in, p_x))
    r = torch.mm(p_d2_bl.mul_(s_d), p_x2.mul_(s_x), out=_buffer(scratch, "r", out, n_in, p_x)) if signed_q else None
    return t, m, q, r


def _buffer(scratch: dict[str, torch.Tensor] | None, name: str, rows: int, cols: int,
            like: torch.Tensor) -> torch.Tensor:
    """A reusable ``(rows, cols)`` buffer (a new tensor without ``scratch``)."""
    if scratch is None:
        return torch.empty((rows, cols), dtype=like.dtype, device=like.device)
    buf = scratch.get(name)
    if buf is None or buf.shape != (rows, cols) or buf.dtype != like.dtype or buf.device != like.device:
        buf = scratch[name] = torch.empty((rows, cols), dtype=like.dtype, device=like.device)
    return buf
