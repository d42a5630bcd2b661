"""Per-sample pulse-train lengths and bit probabilities (aihwkit's update and BL management).

For each sample ``b`` of a mini-batch this computes ``BL_b`` and the scales ``A_b`` (errors) and
``B_b`` (inputs) exactly as aihwkit's ``PulsedUpdateMetaParameter::calculateBlAB`` /
``performUpdateManagement`` do (see :mod:`simulator.configs.update` for the formulas), vectorised
over the batch. The bit probabilities are then ``p_x[b, j] = min(|x_bj| B_b, 1)`` and
``p_d[b, i] = min(|d_bi| A_b, 1)``; a pulse at ``(i, j)`` goes down when ``x_bj d_bi > 0``.

Leading dimensions are independent arrays of devices (the tiles of a layer, updated together):
``x`` ``(..., N, in)`` and ``d`` ``(..., N, out)`` give per-tile, per-sample ``BL``, ``A``, ``B``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from simulator.configs.update import UpdateConfig

__all__ = ["SATURATION_TOLERANCE", "Probabilities", "probabilities"]

SATURATION_TOLERANCE = 1e-5
"""A scaled input or error counts as saturated above ``1 + SATURATION_TOLERANCE``: an update
exactly at the bit length (``lr max|x| max|d| = desired_bl dw_min``) gives probability 1 up to
the rounding of float32, which is not a clipped update."""


@dataclass
class Probabilities:
    """The scaled inputs and errors of one mini-batch (probabilities before clipping to 1)."""

    x_scaled: torch.Tensor
    """``(..., N, in)``: ``x_bj B_b`` (signed)."""
    d_scaled: torch.Tensor
    """``(..., N, out)``: ``d_bi A_b`` (signed)."""
    bl: torch.Tensor
    """``(..., N)``: pulse-train length of each sample (integer values, in the dtype of ``x``)."""
    nonneg_x: bool | None
    """Whether every input is >= 0 (then the pulse direction is the sign of ``d`` alone); None
    when not known (the aggregate mode does not need it; the exact mode checks)."""
    n_clipped: torch.Tensor | None = None
    """0-d: the samples whose pulse train saturates, when counted already (see :meth:`clipped`)."""

    def p_x(self) -> torch.Tensor:
        """``(..., N, in)`` input-bit probabilities (a new tensor)."""
        if self.nonneg_x:
            return self.x_scaled.clamp(max=1.0)
        return self.x_scaled.abs().clamp_(max=1.0)

    def clipped(self) -> torch.Tensor:
        """Number of samples (over all leading dimensions, a 0-d tensor) whose pulse train
        saturates: some ``|x_bj B_b|`` or ``|d_bi A_b|`` above 1, so that bit probability is capped
        at 1 and the update is cut short. With update management this is
        ``lr max|x_b| max|d_b| > desired_bl dw_min`` and :func:`probabilities` has counted it
        from the per-sample maxima it computes anyway; otherwise two reductions here (read it
        before the probabilities are consumed). No per-sample loop."""
        if self.n_clipped is not None:
            return self.n_clipped
        lim = 1.0 + SATURATION_TOLERANCE
        x_max = self.x_scaled.amax(dim=-1) if self.nonneg_x else self.x_scaled.abs().amax(dim=-1)
        d_max = self.d_scaled.abs().amax(dim=-1)
        return ((x_max > lim) | (d_max > lim)).sum()

    def p_d(self) -> torch.Tensor:
        """``(..., N, out)`` error-bit probabilities (a new tensor)."""
        return self.d_scaled.abs().clamp_(max=1.0)


def probabilities(x: torch.Tensor, d: torch.Tensor, lr: float, granularity: float,
                  cfg: UpdateConfig, nonneg_x: bool | None = None) -> Probabilities:
    """Per-sample ``BL``, ``A`` and ``B`` applied to ``x`` and ``d`` (``lr > 0``).

    ``nonneg_x``: whether the caller knows that ``x >= 0`` (saves a pass; None: not known, no
    check is made here).
    """
    g = float(granularity)
    # calculateBlAB
    if not cfg.fixed_bl and not cfg.update_bl_management and g * cfg.desired_bl < lr:
        bl0, scale0 = max(math.ceil(lr / g), 1), 1.0
    else:
        bl0 = cfg.desired_bl
        scale0 = math.sqrt(lr / (g * bl0))
    if not cfg.effective_update_management:
        bl0_t = torch.full(x.shape[:-1], float(bl0), dtype=x.dtype, device=x.device)
        return Probabilities(x * scale0, d * scale0, bl0_t, nonneg_x)
    reg = g * g
    x_max = (x.amax(dim=-1, keepdim=True) if nonneg_x else x.abs().amax(dim=-1, keepdim=True)).clamp_(min=reg)
    d_max = d.abs().amax(dim=-1, keepdim=True).clamp_(min=reg)
    prod = x_max * d_max
    if cfg.update_bl_management:
        # BL = min(ceil(lr x_max d_max / g), desired_bl), scale s = sqrt(lr / (g BL))
        bl = prod.mul(lr / g).ceil_().clamp_(min=1.0, max=float(cfg.desired_bl))
        s = bl.reciprocal().mul_(lr / g).sqrt_()
        bl = bl.squeeze(-1)
    else:
        bl = torch.full(x.shape[:-1], float(bl0), dtype=x.dtype, device=x.device)
        s = torch.full_like(prod, scale0)
    # Update management (aihwkit 1.2.0): A = s sqrt(x_max / d_val), B = s sqrt(d_val / x_max) with
    # d_val = d_max, scaled down by desired_bl / k where k = lr x_max d_max / g exceeds desired_bl
    # ("avoid clipping of x": the largest input then has bit probability exactly 1 and the error
    # bits carry the whole excess, p_d(max) = k / BL > 1, capped at 1). Written as A = c x_max,
    # B = c d_val with c = s / sqrt(x_max d_val).
    d_val = d_max * prod.mul(lr / g).reciprocal_().mul_(float(cfg.desired_bl)).clamp_(max=1.0)
    # d_val < d_max exactly where k > desired_bl: the largest error's probability is k / BL > 1
    n_clipped = (d_val < d_max * (1.0 / (1.0 + SATURATION_TOLERANCE))).sum()
    c = s.mul_(x_max.mul(d_val).rsqrt_())
    return Probabilities(x * d_val.mul_(c), d * x_max.mul_(c), bl, nonneg_x, n_clipped)
