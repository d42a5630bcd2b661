"""The forward and backward passes of a :class:`~simulator.mapping.TileArray` (private).

:func:`effective_weights` gives what the tiles read in one pass (stored weights plus perturbation
or training noise, weight scaling, drift compensation); :class:`AnalogMVM` is the autograd
function: forward MVMs through the forward periphery, input gradients through the backward
periphery, and either the weight gradient (floating-point update) or the stored ``(x, d)`` of
the pulsed update.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

__all__ = ["AnalogMVM", "ArrayView", "Effective", "abs_max", "effective_weights"]


class ArrayView(Protocol):
    """What the passes read and keep on the array they run (:class:`~simulator.mapping.ArrayView`,
    which imports this module; the passes never import the array)."""

    weight: torch.Tensor
    """Stacked weights of every tile."""
    rpu: Any
    """The array's :class:`~simulator.configs.rpu.RPUConfig`."""
    fwd: Any
    """Forward periphery (:class:`~simulator.io.AnalogIO`)."""
    bwd: Any
    """Backward periphery."""
    rng: Any
    """The array's :class:`~simulator.rng.RandomSource`."""
    training: bool
    """Module training mode."""
    is_pulsed: bool
    """Weights trained by pulsed updates (the passes stash ``(x, d)``)."""
    perturbation: Any
    """Programmed-weight perturbation of inference, or None."""
    out_factor: Any
    """Digital output factor (weight scaling, drift compensation), or None."""
    stacked: Any
    """The stacked updater of equal tiles, or None."""
    unstacked: Any
    """Tiles updated one by one."""
    in_features: int
    """Layer inputs (the analog bias column included)."""
    n_row: int
    """Tile rows of the grid (input splits)."""
    n_col: int
    """Tile columns of the grid (output splits)."""
    n_tiles: int
    """Tiles in the array."""
    tile_in: int
    """Inputs per tile."""
    tile_out: int
    """Outputs per tile."""
    _cache: Any
    _token: Any
    _in_valid: Any
    _padded_grad: Any
    _stash: Any
    _row_mask: Any

    def _stack_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def _gather_outputs(self, y: torch.Tensor) -> torch.Tensor: ...


def abs_max(w: torch.Tensor, per_row: bool) -> torch.Tensor:
    """``max |w|`` of stacked tiles ``(T, O, I)``: per tile ``(T, 1, 1)`` or per row ``(T, O, 1)``.

    (``amax`` and ``amin`` are several times faster on CPU than ``aminmax`` or an inf-norm.)
    """
    dims = (-1,) if per_row else (1, 2)
    return torch.maximum(w.amax(dims, keepdim=True), w.amin(dims, keepdim=True).neg_())


class Effective:
    """The weights one pass reads: ``y = mult * ADC(row * (w x) + noise)``.

    ``w`` ``(T, O, I)`` are the stored weights (plus perturbation or training noise), ``w_abs``
    ``|w|`` without training noise when PCM read noise needs it, ``row`` ``(T, 1, O)`` the per-output
    analog scale of weight scaling (the tile holds ``w * row``), ``mult`` the digital output factor
    (weight scaling times drift compensation) and ``bwd_gain`` the factor of the output gradient
    before the backward MVM through ``w`` (``mult * row``: the drift compensation). ``amp`` is
    the per-device amplitude of additive training noise.
    """

    __slots__ = ("amp", "bwd_gain", "mult", "row", "stored", "w", "w_abs")

    def __init__(self, w: torch.Tensor, w_abs: torch.Tensor | None, mult: torch.Tensor | None,
                 row: torch.Tensor | None, bwd_gain: torch.Tensor | None) -> None:
        self.w, self.w_abs, self.mult, self.row, self.bwd_gain = w, w_abs, mult, row, bwd_gain
        self.amp: Any = None
        self.stored = False  # w is a view of the stored weights (no perturbation or noise)


def effective_weights(array: ArrayView) -> Effective:
    """What the MVMs of the next pass read.

    The noise-free part (perturbation, weight scaling, ``|w|``, the amplitude of training noise)
    is cached until the weights change; training-time weight noise (the modifier) is drawn anew
    for every forward pass, relative to the stored (scaled) weights as aihwkit's modifier is.
    PCM read noise takes its std from the noise-free ``|w|`` (training noise is an artifice of
    training, not a conductance; this saves a pass over the weights).
    """
    modifier = array.rpu.modifier
    key = (array.weight._version, array._token)
    if array._cache is None or array._cache[0] != key:
        array._cache = (key, _clean(array))
    eff: Effective = array._cache[1]
    if modifier.active and array.training:
        noise = array.rng.normal(eff.w.shape, eff.w.dtype)
        if modifier.noise_type == "add_normal":
            w = torch.addcmul(eff.w, noise, eff.amp)
        else:
            w = torch.addcmul(eff.w, eff.w, noise, value=modifier.std_dev)
        return Effective(w, eff.w_abs, eff.mult, eff.row, eff.bwd_gain)
    return eff


def _clean(array: ArrayView) -> Effective:
    w = array.stacked().detach()
    if array.perturbation is not None:
        w = w + array.perturbation
    mapping, modifier = array.rpu.mapping, array.rpu.modifier
    pcm = array.fwd.w_noise_type == "pcm_read" and not array.fwd.perfect
    w_abs = w.abs() if pcm else None
    mult = row = scale = None
    omega = mapping.weight_scaling_omega
    if omega is not None:
        if w_abs is not None:
            dims = (-1,) if mapping.weight_scaling_columnwise else (1, 2)
            scale = w_abs.amax(dims, keepdim=True)
        else:
            scale = abs_max(w, mapping.weight_scaling_columnwise)
        scale = scale.clamp_(min=1e-12).div_(omega)
        mult = scale.transpose(1, 2)
        row = mult.reciprocal()
    bwd_gain = array.out_factor  # mult * row: weight scaling cancels in the gradient
    if array.out_factor is not None:
        mult = array.out_factor if mult is None else mult * array.out_factor
    eff = Effective(w, w_abs, mult, row, bwd_gain)
    eff.stored = array.perturbation is None
    if modifier.active and modifier.noise_type == "add_normal":
        if not modifier.rel_to_actual_wmax:
            ref: Any = modifier.assumed_wmax
        elif omega is not None:  # max |w| of each scaled tile is omega
            ref = omega
        else:
            ref = w_abs.amax((1, 2), keepdim=True) if w_abs is not None else abs_max(w, False)
        amp = ref * modifier.std_dev
        if scale is not None:  # back from the scaled to the stored weights, per output
            amp = scale * amp
        if array._row_mask is not None:  # keep padding rows silent (they would trip BM)
            amp = amp * array._row_mask
        eff.amp = amp
    return eff


class AnalogMVM(torch.autograd.Function):
    """Forward and backward MVMs of a tile array through its periphery."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                array: ArrayView) -> torch.Tensor:
        eff = effective_weights(array)
        slots, tiles = array._stack_inputs(x)
        y = array.fwd.mvm(tiles, eff.w, array.rng, w_abs=eff.w_abs, row_scale=eff.row,
                          out_mult=eff.mult)
        ctx.array = array
        # A perfect backward is one product in the parameter layout when the weights read are
        # the stored ones (a view) or a single row of tiles (a free reshape).
        ctx.plain_bwd = (array.bwd.perfect and eff.bwd_gain is None
                         and (eff.stored or array.n_row == 1))
        ctx.save_for_backward(slots, eff.w, eff.mult, eff.row, eff.bwd_gain)
        out = array._gather_outputs(y)
        return out if bias is None else out.add_(bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        array: ArrayView = ctx.array
        slots, w, mult, row, bwd_gain = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            if ctx.plain_bwd:
                gx = array._padded_grad(grad) @ array.unstacked(w)
                if array._in_valid is not None:
                    gx = gx.index_select(1, array._in_valid)
                grad_x = gx[:, : array.in_features]
            else:
                grad_x = _input_grad(array, grad, w, mult, row, bwd_gain)
        if ctx.needs_input_grad[1]:
            if array.is_pulsed:
                array._stash(slots, grad)
            else:  # the weight gradient in the parameter's layout: one product
                grad_w = array._padded_grad(grad).t() @ slots
        grad_b = grad.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None


def _input_grad(array: ArrayView, grad: torch.Tensor, w: torch.Tensor, mult: torch.Tensor | None,
                row: torch.Tensor | None, bwd_gain: torch.Tensor | None) -> torch.Tensor:
    n = grad.shape[0]
    g = array._padded_grad(grad).view(n, array.n_col, array.tile_out).transpose(0, 1)
    if array.n_row > 1:
        g = g.unsqueeze(0).expand(array.n_row, array.n_col, n, array.tile_out)
    g = g.reshape(array.n_tiles, n, array.tile_out)
    if row is None or array.bwd.perfect:  # (g * mult) through w * row = (g * bwd_gain) through w
        if bwd_gain is not None:
            g = g * bwd_gain
    else:  # the backward MVM reads the scaled tile weights
        g = g * mult
        w = w * row.transpose(1, 2)
    w_abs = w.abs() if array.bwd.w_noise_type == "pcm_read" and not array.bwd.perfect else None
    gx = array.bwd.mvm(g, w, array.rng, transposed=True, w_abs=w_abs)
    gx = gx.view(array.n_row, array.n_col, n, array.tile_in)
    gx = gx.sum(1) if array.n_col > 1 else gx[:, 0]
    if array.n_row == 1:
        return gx[0][:, : array.in_features]
    flat = gx.transpose(0, 1).reshape(n, array.n_row * array.tile_in)
    if array._in_valid is not None:
        flat = flat.index_select(1, array._in_valid)
    return flat[:, : array.in_features]
