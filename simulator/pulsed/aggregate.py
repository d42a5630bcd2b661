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

The aggregate mode keeps that structure to second order. From one standard normal per sample
and line it draws ``alpha`` and ``beta`` (Gaussians of the variances above) and matrix products
over the batch (the inner dimension, as in the gradient ``d^T x``) give, per device,

``m = sum_b s_b (BL_b p_b + alpha_bi p_x + p_d beta_bj)`` with ``s_b = sign(x_bj d_bi)``: the net
count ``n_down - n_up``, its mean plus the shared (row and column) fluctuation, one product over
the concatenation ``[BL p_d + alpha | p_d]^T [p_x | beta]`` (signed factors);
``t``: the same for the total ``n_down + n_up`` (absolute factors);
``q = sum_b BL_b p_d (1 - p_d) p_x (1 - p_x)``: the variance of the device's own part, and
``r``, ``q`` signed with ``s_b``, so that ``q_down = (q + r) / 2``, ``q_up = (q - r) / 2``.

The device response (:mod:`simulator.pulsed.response`) applies the counts ``n_down = (t + m) / 2``
and ``n_up = (t - m) / 2`` (the cycle-to-cycle noise given these counts, as the exact mode does
given its counts) and draws the devices' own part with the cycle-to-cycle noise as one normal per
device. Per device the mean and the variance of the weight change, and the covariance between
any two devices, are those of the bit streams.

``r`` and the fluctuation of ``t`` are needed only where up and down steps differ: for constant
steps configured symmetric (``up_down = 0``) ``t`` is its mean, one product over the batch, and
``r`` is skipped. That leaves out ``(s_up**2 - s_down**2) (q_up - q_down) / 2`` of the variance
and ``(s_up - s_down) e_t / 2`` of the shared fluctuation (``e_t`` that of ``t``): parts of
relative size ``|s_up - s_down| / (s_up + s_down)`` (the device's sampled up/down asymmetry,
``up_down_dtod`` scale, 0.01 by default) and its square.

What is not reproduced: the discreteness of the counts (a device gets a Gaussian instead of 0,
1, 2, ... pulses) and moments beyond the second. No random number is drawn here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from simulator.pulsed.counters import PulseCounter
from simulator.pulsed.management import Probabilities
from simulator.pulsed.numerics import sqrt_

__all__ = ["Moments", "aggregate_moments", "moment_terms"]


class Moments(NamedTuple):
    """The counts of a mini-batch, each ``(..., out, in)``: see the module doc."""

    t: torch.Tensor
    """``n_down + n_up``: the mean plus the shared fluctuation (the mean alone without ``r``)."""
    m: torch.Tensor
    """``n_down - n_up``: the mean plus the shared fluctuation."""
    q: torch.Tensor
    """The variance of the counts that no other device shares, both directions."""
    r: torch.Tensor | None
    """``q_down - q_up`` (None where not computed, see ``signed_q``)."""
    log_silent: torch.Tensor | None = None
    """``-log P(no pulse) = sum_b BL_b (p_b + p_b**2 / 2)`` to second order (when asked)."""


def aggregate_moments(probs: Probabilities, normals: tuple[torch.Tensor, torch.Tensor],
                      signed_q: bool = True, scratch: dict[str, torch.Tensor] | None = None,
                      counter: PulseCounter | None = None, want_silent: bool = False) -> Moments:
    """The counts of a mini-batch (consumes ``probs``; ``r`` and the fluctuation of ``t`` if
    ``signed_q``).

    ``normals``: standard normals ``(z_d, z_x)`` shaped like ``probs.d_scaled`` and
    ``probs.x_scaled`` (one per sample and error line, one per sample and input line), from
    which the shared fluctuation is drawn. ``probs`` may carry leading tile dimensions
    (``(T, N, in)`` / ``(T, N, out)``, moments ``(T, out, in)``: one batched product per moment
    for all tiles). With signed probabilities ``s_p = sign(.) min(|.|, 1)`` of inputs and errors,
    the signed moments are products of the signed factors and the others of their absolute
    values, so no input sign has to be known in advance.

    ``scratch`` (optional) keeps the output buffers between calls; the moments returned live in it.
    ``counter`` (optional) adds the expected pulses of the mini-batch: per device
    ``E[n] = sum_b BL_b p_x p_d``, whose sum over the devices is ``sum_b (sum_i BL_b p_d)
    (sum_j p_x)``, and the expected bits set on the lines (``sum_b BL_b sum_j p_x`` on the input
    lines, ``sum_b BL_b sum_i p_d`` on the error lines), and the saturated samples
    (:meth:`~simulator.pulsed.management.Probabilities.clipped`). ``want_silent``: also return
    ``log_silent`` (one more product).
    """
    clipped = probs.clipped() if counter is not None else None
    moments, counts = moment_terms(probs.x_scaled, probs.d_scaled, probs.bl, normals, bool(probs.nonneg_x),
                                   signed_q, scratch, counter is not None, want_silent)
    if counts is not None and counter is not None:
        counter.add(*counts, clipped)
    return moments


def moment_terms(x: torch.Tensor, d: torch.Tensor, bl: torch.Tensor, normals: tuple[torch.Tensor, torch.Tensor],
                 nonneg_x: bool, signed_q: bool = True, scratch: dict[str, torch.Tensor] | None = None,
                 want_counts: bool = False, want_silent: bool = False,
                 ) -> tuple[Moments, tuple[torch.Tensor, ...] | None]:
    """:func:`aggregate_moments` on the scaled inputs ``x``, errors ``d`` and train lengths ``bl``
    of a :class:`~simulator.pulsed.management.Probabilities` (read, not changed), without side
    effects: the expected pulse counts (``want_counts``: device, row and column pulses, slots,
    vectors, as :meth:`PulseCounter.add` takes them) are returned instead of added (so that the
    fused update, :mod:`simulator.pulsed.fused`, can compile it)."""
    z_d, z_x = normals
    flat = x.dim() == 2
    if flat:
        x, d, bl, z_d, z_x = x.unsqueeze(0), d.unsqueeze(0), bl.unsqueeze(0), z_d.unsqueeze(0), z_x.unsqueeze(0)
    bl = bl.unsqueeze(-1)
    shape = (x.shape[0], d.shape[-1], x.shape[-1])
    p_d = d.clamp(-1.0, 1.0)  # sign(d) p_d  (T, N, out)
    p_d_abs = p_d.abs()
    p_x = x.clamp(-1.0, 1.0)  # sign(x) p_x  (T, N, in)
    signed_x = not nonneg_x
    p_x_abs = p_x.abs() if signed_x else p_x
    bp_d = p_d_abs * bl  # BL p_d
    counts = None
    if want_counts:
        s_d, s_x = bp_d.sum(-1), p_x_abs.sum(-1)  # (T, N): BL sum_i p_d, sum_j p_x
        counts = ((s_d * s_x).sum(), (bl.squeeze(-1) * s_x).sum(), s_d.sum(), bl.sum(),
                  torch.full((), bl.numel(), dtype=bl.dtype, device=bl.device))
    sign_d = p_d.sign()
    sign_x = p_x.sign() if signed_x else None
    log_silent = None
    if want_silent:
        log_silent = torch.bmm(torch.cat([bp_d, 0.5 * bp_d * p_d_abs], dim=-2).mT,
                               torch.cat([p_x_abs, p_x_abs * p_x_abs], dim=-2),
                               out=_buffer(scratch, "log_silent", shape, x))
    var_d = bp_d * (1.0 - p_d_abs)  # BL p_d (1 - p_d)
    var_x = p_x_abs * (1.0 - p_x_abs)  # p_x (1 - p_x)
    q = torch.bmm(var_d.mT, var_x, out=_buffer(scratch, "q", shape, x))
    r = None
    if signed_q:
        r = torch.bmm((var_d * sign_d).mT, var_x if sign_x is None else var_x * sign_x,
                      out=_buffer(scratch, "r", shape, x))
    # sample b's count on error line i fluctuates by alpha_bi, on input line j by beta_bj
    row = sqrt_(var_d).mul_(z_d).add_(bp_d)  # BL p_d + alpha
    beta = sqrt_(var_x * bl).mul_(z_x)
    # m = sum_b s_b ((BL p_d + alpha) p_x + p_d beta), s_b = sign_d sign_x: one product over [b | b]
    m = torch.bmm(torch.cat([row * sign_d, p_d], dim=-2).mT,
                  torch.cat([p_x, beta if sign_x is None else beta * sign_x], dim=-2),
                  out=_buffer(scratch, "m", shape, x))
    if signed_q:
        t = torch.bmm(torch.cat([row, p_d_abs], dim=-2).mT, torch.cat([p_x_abs, beta], dim=-2),
                      out=_buffer(scratch, "t", shape, x))
    else:
        t = torch.bmm(bp_d.mT, p_x_abs, out=_buffer(scratch, "t", shape, x))
    if flat:
        return Moments(t[0], m[0], q[0], None if r is None else r[0],
                       None if log_silent is None else log_silent[0]), counts
    return Moments(t, m, q, r, log_silent), counts


def _buffer(scratch: dict[str, torch.Tensor] | None, name: str, shape: tuple[int, ...],
            like: torch.Tensor) -> torch.Tensor | None:
    """A reusable buffer of ``shape`` (None without ``scratch``: the product allocates)."""
    if scratch is None:
        return None
    buf = scratch.get(name)
    if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
        buf = scratch[name] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return buf
