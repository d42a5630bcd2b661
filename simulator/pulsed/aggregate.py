"""Aggregate mode: each device's pulse counts for a whole mini-batch, from their distribution.

In the exact update, device ``(i, j)`` receives in sample ``b`` a number of coincidences that is
binomial with ``BL_b`` trials and probability ``p_b = p_x[b, j] p_d[b, i]`` (the bits of different
slots are independent), in the direction ``-sign(x_bj d_bi)``. Over the mini-batch the down and
up counts are therefore sums of independent binomials with

``E[n_dir] = sum_{b in dir} BL_b p_b`` and ``Var[n_dir] = E[n_dir] - q_dir``,
``q_dir = sum_{b in dir} BL_b p_b**2``.

These four moments are matrix products of the probabilities (the batch is the inner dimension):
two products of the gradient's size when all inputs are >= 0 (ReLU networks, images: the
direction is then the sign of ``d``), four otherwise (signed and absolute products). No random
number is drawn here.

The approximation of the aggregate mode: the device response (see
:mod:`simulator.pulsed.response`) is applied to these *means*, and the counts' fluctuation enters
as Gaussian noise with exactly the binomial variance, drawn together with the cycle-to-cycle
noise as one normal per device. So per device the mean and the variance of the weight change
match the exact mode; what is not reproduced is (a) the discreteness of the counts (a device
gets ``sqrt(v) xi`` instead of 0, 1, 2, ... pulses), and (b) the correlation between devices
that share a row or a column bit in the same slot (the exact mode's coincidences of one input
bit with many error bits); both average out over mini-batches, as the training results show.
"""

from __future__ import annotations

import torch

from simulator.pulsed.management import Probabilities

__all__ = ["aggregate_moments"]


def aggregate_moments(probs: Probabilities) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean counts ``n`` and squared-probability sums ``q``, each ``(2 out, in)``: down rows, then up rows."""
    bl = probs.bl.unsqueeze(1)
    if probs.nonneg_x:
        # x >= 0: down pulses where d > 0, up pulses where d < 0; both directions as rows.
        p_x = probs.x_scaled.clamp_(max=1.0)
        d = probs.d_scaled
        p_d = torch.cat([d, d.neg()], dim=1).clamp_(min=0.0, max=1.0)
        p_d_bl = p_d * bl
        n = torch.mm(p_d_bl.t(), p_x)
        q = torch.mm(p_d_bl.mul_(p_d).t(), p_x.mul_(p_x))
        return n, q
    p_x, p_d = probs.p_x(), probs.p_d()
    s_x, s_d = torch.sign(probs.x_scaled), torch.sign(probs.d_scaled)
    p_d_bl = p_d * bl
    p_d2_bl = p_d_bl * p_d
    p_x2 = p_x * p_x
    total = torch.mm(p_d_bl.t(), p_x)
    net = torch.mm((p_d_bl * s_d).t(), p_x * s_x)  # E[n_down - n_up]
    q_total = torch.mm(p_d2_bl.t(), p_x2)
    q_net = torch.mm((p_d2_bl * s_d).t(), p_x2 * s_x)
    n = torch.cat([total + net, total - net]).mul_(0.5)
    q = torch.cat([q_total + q_net, q_total - q_net]).mul_(0.5)
    return n, q
