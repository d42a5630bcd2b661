"""Aggregate mode: the pulse counts of a whole mini-batch, from their first and second moments.

In the exact update, sample ``b`` has ``BL_b`` slots; in each slot error bit ``i`` is 1 with
probability ``p_d = p_d[b, i]`` and input bit ``j`` with ``p_x = p_x[b, j]`` (all independent),
and device ``(i, j)`` gets a pulse where both are 1, down if ``x_bj d_bi > 0`` and up otherwise.
Writing each bit as its probability plus a zero-mean fluctuation, ``D = p_d + delta_D``,
``X = p_x + delta_X``, one slot's coincidence splits into four mutually uncorrelated parts::

    D X = p_d p_x  +  delta_D p_x  +  p_d delta_X  +  delta_D delta_X

The first is the mean. The second is shared by the whole row ``i`` (one error bit drives every
device on its line), the third by the whole column ``j``; the last is uncorrelated between any
two devices. Summed over the slots of sample ``b``, the row part is ``alpha_bi p_x`` with
``Var alpha_bi = BL_b p_d (1 - p_d)``, the column part ``p_d beta_bj`` with
``Var beta_bj = BL_b p_x (1 - p_x)``, and the device's own part has variance
``BL_b p_d (1 - p_d) p_x (1 - p_x)``; the three add up to the binomial ``BL_b p (1 - p)`` of the
count (``p = p_x p_d``). The bit streams' noise is therefore far from independent between
devices: measured on MNIST batches of the FCNN (``benchmarks/pulsed_modes.py``), the variance
of a layer's output change ``dW x`` is 8 to 17 times what independent devices of the same
per-device variance give.

The aggregate mode keeps that structure to second order. Matrix products over the batch (the
inner dimension, as in the gradient ``d^T x``) give

``t = sum_b BL_b p_b`` (``= E[n_down + n_up]``), ``m = sum_b BL_b s_b p_b`` (``= E[n_down - n_up]``,
``s_b = sign(x_bj d_bi)``), ``q = sum_b BL_b p_d (1 - p_d) p_x (1 - p_x)`` (the devices' own
variance) and ``r``, ``q`` signed with ``s_b``, so that ``q_down = (q + r) / 2``,
``q_up = (q - r) / 2``; and, from one standard normal per sample and line (``alpha``, ``beta``
as Gaussians of the variances above), the shared fluctuation of the counts,
``e = sum_b s_b (alpha_bi p_x + p_d beta_bj)`` and ``e_abs``, the same without ``s_b``
(``e_down = (e_abs + e) / 2``, ``e_up = (e_abs - e) / 2``) — both one product over the
concatenation ``[alpha | p_d]^T [p_x | beta]``. The device response (:mod:`simulator.pulsed.
response`) adds ``e`` to the mean counts and draws the devices' own part and the
cycle-to-cycle noise as one normal per device.

``r`` and ``e_abs`` are needed only where up and down steps differ: for constant steps
configured symmetric (``up_down = 0``) they are skipped, which leaves out
``(s_up**2 - s_down**2) (q_up - q_down) / 2`` of the variance and ``(s_up - s_down) e_abs / 2``
of the shared fluctuation: parts of relative size ``|s_up - s_down| / (s_up + s_down)`` (the
device's sampled up/down asymmetry, ``up_down_dtod`` scale, 0.01 by default) and its square.

What is not reproduced: the discreteness of the counts (a device gets a Gaussian instead of 0,
1, 2, ... pulses; the mean and the covariances between devices are those of the bit streams)
and moments beyond the second.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from simulator.pulsed.counters import PulseCounter
from simulator.pulsed.management import Probabilities

__all__ = ["Moments", "aggregate_moments"]


class Moments(NamedTuple):
    """The count moments of a mini-batch, each ``(..., out, in)``: see the module doc."""

    t: torch.Tensor
    """``E[n_down + n_up]``."""
    m: torch.Tensor
    """``E[n_down - n_up]``."""
    q: torch.Tensor
    """The variance of the counts that no other device shares, both directions."""
    r: torch.Tensor | None
    """``q_down - q_up`` (None where not computed, see ``signed``)."""
    e: torch.Tensor
    """A draw of the shared (row and column) fluctuation of ``n_down - n_up``."""
    e_abs: torch.Tensor | None
    """The same draw's fluctuation of ``n_down + n_up`` (None where not computed)."""
    p2: torch.Tensor | None = None
    """``sum_b BL_b p_b**2`` (for the probability that a device gets no pulse; when asked)."""


def aggregate_moments(probs: Probabilities, normals: tuple[torch.Tensor, torch.Tensor],
                      signed_q: bool = True, scratch: dict[str, torch.Tensor] | None = None,
                      counter: PulseCounter | None = None, want_p2: bool = False) -> Moments:
    """The count moments of a mini-batch (consumes ``probs``; ``r`` and ``e_abs`` if ``signed_q``).

    ``normals``: standard normals ``(z_d, z_x)`` shaped like ``probs.d_scaled`` and
    ``probs.x_scaled`` (one per sample and error line, one per sample and input line), from
    which the shared fluctuation ``e`` is drawn. ``probs`` may carry leading tile dimensions
    (``(T, N, in)`` / ``(T, N, out)``, moments ``(T, out, in)``: one batched product per moment
    for all tiles). With signed probabilities ``s_p = sign(.) min(|.|, 1)`` of inputs and errors,
    the signed moments are products of the signed factors and the others of their absolute
    values, so no input sign has to be known in advance.

    ``scratch`` (optional) keeps the output buffers between calls; the moments returned live in it.
    ``counter`` (optional) adds the expected pulses of the mini-batch: per device
    ``E[n] = sum_b BL_b p_x p_d``, whose sum over the devices is ``sum_b (sum_i BL_b p_d)
    (sum_j p_x)``, and the expected bits set on the lines (``sum_b BL_b sum_j p_x`` on the input
    lines, ``sum_b BL_b sum_i p_d`` on the error lines), and the saturated samples
    (:meth:`~simulator.pulsed.management.Probabilities.clipped`). ``want_p2``: also return
    ``p2`` (one more product).
    """
    x, d, bl = probs.x_scaled, probs.d_scaled, probs.bl
    z_d, z_x = normals
    flat = x.dim() == 2
    if flat:
        x, d, bl, z_d, z_x = x.unsqueeze(0), d.unsqueeze(0), bl.unsqueeze(0), z_d.unsqueeze(0), z_x.unsqueeze(0)
    clipped = probs.clipped() if counter is not None else None  # before x is clipped in place
    bl = bl.unsqueeze(-1)
    shape = (x.shape[0], d.shape[-1], x.shape[-1])
    p_d = d.clamp(-1.0, 1.0)  # sign(d) p_d  (T, N, out)
    p_d_abs = p_d.abs()
    p_x = x.clamp_(-1.0, 1.0)  # sign(x) p_x  (T, N, in)
    signed_x = not probs.nonneg_x
    p_x_abs = p_x.abs() if signed_x else p_x
    bp_d_abs = p_d_abs * bl  # BL p_d
    if counter is not None:
        s_d, s_x = bp_d_abs.sum(-1), p_x_abs.sum(-1)  # (T, N): BL sum_i p_d, sum_j p_x
        counter.add((s_d * s_x).sum(), (bl.squeeze(-1) * s_x).sum(), s_d.sum(), bl.sum(),
                    bl.numel(), clipped)
    sign_d = p_d.sign()
    sign_x = p_x.sign() if signed_x else None
    t = torch.bmm(bp_d_abs.mT, p_x_abs, out=_buffer(scratch, "t", shape, x))
    m = torch.bmm((bp_d_abs * sign_d).mT, p_x, out=_buffer(scratch, "m", shape, x))
    p2 = None
    if want_p2:
        p2 = torch.bmm((bp_d_abs * p_d_abs).mT, p_x_abs * p_x_abs, out=_buffer(scratch, "p2", shape, x))
    var_d = bp_d_abs.mul_(1.0 - p_d_abs)  # BL p_d (1 - p_d)
    var_x = p_x_abs * (1.0 - p_x_abs)  # p_x (1 - p_x)
    q = torch.bmm(var_d.mT, var_x, out=_buffer(scratch, "q", shape, x))
    r = None
    if signed_q:
        r = torch.bmm((var_d * sign_d).mT, var_x if sign_x is None else var_x * sign_x,
                      out=_buffer(scratch, "r", shape, x))
    alpha = var_d.sqrt_().mul_(z_d)  # row fluctuation of sample b's count on error line i
    beta = var_x.mul_(bl).sqrt_().mul_(z_x)  # column fluctuation on input line j
    # e = sum_b s_b (alpha_bi p_x + p_d beta_bj): s_b = sign_d sign_x, one product over [b | b]
    beta_signed = beta if sign_x is None else beta * sign_x
    e = torch.bmm(torch.cat([alpha * sign_d, p_d], dim=-2).mT, torch.cat([p_x, beta_signed], dim=-2),
                  out=_buffer(scratch, "e", shape, x))
    e_abs = None
    if signed_q:
        e_abs = torch.bmm(torch.cat([alpha, p_d_abs], dim=-2).mT, torch.cat([p_x_abs, beta], dim=-2),
                          out=_buffer(scratch, "e_abs", shape, x))
    if flat:
        return Moments(t[0], m[0], q[0], None if r is None else r[0], e[0],
                       None if e_abs is None else e_abs[0], None if p2 is None else p2[0])
    return Moments(t, m, q, r, e, e_abs, p2)


def _buffer(scratch: dict[str, torch.Tensor] | None, name: str, shape: tuple[int, ...],
            like: torch.Tensor) -> torch.Tensor:
    """A reusable buffer of ``shape`` (a new tensor without ``scratch``)."""
    if scratch is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    buf = scratch.get(name)
    if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
        buf = scratch[name] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return buf
