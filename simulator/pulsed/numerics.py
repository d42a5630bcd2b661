"""Elementwise helpers of the pulsed update, below every other pulsed module."""

from __future__ import annotations

import torch

__all__ = ["sqrt_"]

_TINY = 1e-30
"""Floor of the reciprocal square root (a zero variance stays zero)."""


def sqrt_(v: torch.Tensor) -> torch.Tensor:
    """``sqrt(v)`` of ``v >= 0`` in place, exact zeros kept.

    Computed as ``v / sqrt(max(v, tiny))``: on the CPU ``torch.sqrt`` takes a slow path for
    exact zeros (five times slower on a tensor of mostly zeros, the usual variance of a
    mini-batch in which most devices receive no pulse); the reciprocal square root does not.
    For ``v >= tiny`` (1e-30) the result is ``sqrt(v)`` to a rounding; smaller values give at most
    ``1e-15``.
    """
    if v.device.type != "cpu" or v.dtype not in (torch.float32, torch.float64):
        return v.sqrt_()
    return v.mul_(torch.clamp(v, min=_TINY).rsqrt_())
