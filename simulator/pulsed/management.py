"""Per-sample pulse-train lengths and bit probabilities (aihwkit's update and BL management).

For each sample ``b`` of a mini-batch this computes ``BL_b`` and the scales ``A_b`` (errors) and
``B_b`` (inputs) exactly as aihwkit's ``PulsedUpdateMetaParameter::calculateBlAB`` /
``performUpdateManagement`` do (see :mod:`simulator.configs.update` for the formulas), vectorised
over the batch. The bit probabilities are then ``p_x[b, j] = min(|x_bj| B_b, 1)`` and
``p_d[b, i] = min(|d_bi| A_b, 1)``; a pulse at ``(i, j)`` goes down when ``x_bj d_bi > 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from simulator.configs.update import UpdateConfig

__all__ = ["Probabilities", "probabilities"]


@dataclass
class Probabilities:
    """The scaled inputs and errors of one mini-batch (probabilities before clipping to 1)."""

    x_scaled: torch.Tensor
    """``(N, in)``: ``x_bj B_b`` (signed)."""
    d_scaled: torch.Tensor
    """``(N, out)``: ``d_bi A_b`` (signed)."""
    bl: torch.Tensor
    """``(N,)``: pulse-train length of each sample (integer values, in the dtype of ``x``)."""
    nonneg_x: bool
    """Whether every input is >= 0 (then the pulse direction is the sign of ``d`` alone)."""

    def p_x(self) -> torch.Tensor:
        """``(N, in)`` input-bit probabilities (a new tensor)."""
        if self.nonneg_x:
            return self.x_scaled.clamp(max=1.0)
        return self.x_scaled.abs().clamp_(max=1.0)

    def p_d(self) -> torch.Tensor:
        """``(N, out)`` error-bit probabilities (a new tensor)."""
        return self.d_scaled.abs().clamp_(max=1.0)


def probabilities(x: torch.Tensor, d: torch.Tensor, lr: float, granularity: float,
                  cfg: UpdateConfig) -> Probabilities:
    """Per-sample ``BL``, ``A`` and ``B`` applied to ``x`` and ``d`` (``lr > 0``)."""
    n = x.shape[0]
    g = float(granularity)
    nonneg_x = bool(x.min() >= 0) if n else True
    # calculateBlAB
    if not cfg.fixed_bl and not cfg.update_bl_management and g * cfg.desired_bl < lr:
        bl0, scale0 = max(math.ceil(lr / g), 1), 1.0
    else:
        bl0 = cfg.desired_bl
        scale0 = math.sqrt(lr / (g * bl0))
    if not cfg.effective_update_management:
        bl = torch.full((n,), float(bl0), dtype=x.dtype, device=x.device)
        return Probabilities(x * scale0, d * scale0, bl, nonneg_x)
    reg = g * g
    x_max = (x.amax(dim=1) if nonneg_x else x.abs().amax(dim=1)).clamp_(min=reg)
    d_max = d.abs().amax(dim=1).clamp_(min=reg)
    ratio = x_max / d_max  # A = scale sqrt(ratio), B = scale / sqrt(ratio)
    if cfg.update_bl_management:
        bl = torch.mul(x_max, d_max).mul_(lr / g).ceil_().clamp_(min=1.0, max=float(cfg.desired_bl))
        a = torch.div(ratio, bl).mul_(lr / g).sqrt_()
    else:
        bl = torch.full((n,), float(bl0), dtype=x.dtype, device=x.device)
        a = ratio.sqrt().mul_(scale0)
    b = torch.div(a, ratio)
    return Probabilities(x * b.unsqueeze(1), d * a.unsqueeze(1), bl, nonneg_x)
