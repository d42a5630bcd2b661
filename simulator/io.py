"""Analog matrix-vector products with the periphery of :class:`~simulator.configs.io.IOConfig`.

:class:`AnalogIO` computes the MVMs of a whole stack of tiles at once: inputs ``(T, N, K)`` (``T``
tiles, ``N`` vectors each) against weights ``(T, O, I)``. Every step of the periphery (noise
management, DAC, weight and output noise, ADC, iterative bound management) is per tile and per
vector, as in aihwkit's C++ tiles, but vectorized over both; see the module doc of
:mod:`simulator.configs.io` for the sequence of operations.

Bound management recomputes the whole stack while some vector still clips and keeps, for each
vector, the result of the first pass in which it did not clip (vectors that passed earlier are
recomputed with their old scale and their new result discarded), so the random numbers drawn
differ from a per-vector loop but every vector's distribution is the same.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from simulator.configs.io import IOConfig
from simulator.rng import RandomSource

__all__ = ["AnalogIO", "quantize"]

_TINY = 1e-30


def quantize(x: torch.Tensor, step: float, bound: float, *, stochastic: bool = False,
             rng: RandomSource | None = None) -> torch.Tensor:
    """``clip(step * round(x / step), -bound, bound)`` (a new tensor).

    With ``stochastic`` the rounding goes up with probability equal to the remainder
    (``floor(x / step + U[0, 1))``), using ``rng``.
    """
    out = x / step
    _round_(out, stochastic, rng)
    return out.mul_(step).clamp_(-bound, bound)


def _round_(t: torch.Tensor, stochastic: bool, rng: RandomSource | None) -> torch.Tensor:
    if stochastic:
        if rng is None:
            raise ValueError("stochastic rounding needs a RandomSource")
        return t.add_(rng.uniform(t.shape, t.dtype)).floor_()
    return t.round_()


class AnalogIO:
    """The periphery of one MVM direction, with the config's constants precomputed."""

    def __init__(self, cfg: IOConfig) -> None:
        self.cfg = cfg
        self.perfect = cfg.is_perfect
        self.nm = cfg.noise_management
        self.nm_thres = cfg.nm_thres
        self.inp_step = cfg.inp_step
        self.inp_bound = cfg.inp_bound
        self.inp_sto = cfg.inp_sto_round
        self.inp_noise = cfg.inp_noise
        self.out_step = cfg.out_step
        self.out_bound = math.inf if cfg.out_bound is None else cfg.out_bound
        self.out_sto = cfg.out_sto_round
        self.out_noise = cfg.effective_out_noise
        self.w_noise = cfg.effective_w_noise
        self.w_noise_type = cfg.effective_w_noise_type
        self.bm = cfg.bound_management == "iterative" and cfg.out_bound is not None
        res_limit = cfg.max_bm_res / self.inp_step if self.inp_step else math.inf
        self.bm_limit = min(float(cfg.max_bm_factor), res_limit)
        # abs-max noise management maps every vector into [-1, 1] (bound management only
        # shrinks it): with a DAC range of at least 1 and plain rounding the clip never acts.
        self.inputs_in_range = (cfg.noise_management == "abs_max" and cfg.nm_thres == 0.0
                                and cfg.inp_bound >= 1.0 and not cfg.inp_sto_round)
        self.probe: Any = None
        """The cost model's activity measurement (``None``: off): ``probe.codes(xs)`` receives
        the DAC codes ``(T, N, I)`` of each MVM's first pass (in DAC steps, before input noise)
        and ``probe.repeats(active)`` the ``(T, N, 1)`` mask of the vectors each
        bound-management repeat recomputes."""
        self._probe_first = False
        self._derived_key: tuple[Any, Any] | None = None
        self._derived_values: tuple[Any, Any, Any] = (None, None, None)

    def mvm(self, x: torch.Tensor, w: torch.Tensor, rng: RandomSource, *,
            transposed: bool = False, w_abs: torch.Tensor | None = None,
            row_scale: torch.Tensor | None = None,
            out_mult: torch.Tensor | None = None) -> torch.Tensor:
        """Analog MVMs of ``T`` tiles: ``x (T, N, I) -> (T, N, O)`` through ``w (T, O, I)``.

        ``transposed`` computes the backward direction ``x (T, N, O) -> (T, N, I)`` through
        ``w^T``. ``w_abs`` may pass a precomputed ``w.abs()`` (PCM read noise). ``row_scale``
        ``(T, 1, O)`` (forward only) makes the tile hold ``w * row_scale^T`` without
        materializing it (weight scaling); ``out_mult`` (broadcastable to ``(T, 1, O)``) is a
        digital factor applied to the outputs after the ADC.
        """
        row_gain, row_var, mult = self._derived(row_scale, out_mult)
        if self.perfect:
            y = torch.bmm(x, w if transposed else w.transpose(1, 2))
            if row_scale is not None:
                y.mul_(row_scale)
            return y if out_mult is None else y.mul_(out_mult)
        scale = self._noise_management(x)
        self._probe_first = self.probe is not None
        args = (rng, transposed, w_abs, row_gain, row_var, mult)
        y, clipped = self._pass(x, w, scale, *args)
        if clipped is None:
            return y
        active = clipped
        reduction = 1.0
        while reduction <= self.bm_limit and bool(active.any()):
            reduction *= 2.0
            if self.probe is not None:
                self.probe.repeats(active)
            factor = active.to(x.dtype).mul_(reduction - 1.0).add_(1.0)
            y_new, clipped_new = self._pass(x, w, factor if scale is None else scale * factor, *args)
            y = torch.where(active, y_new, y)
            if clipped_new is None:
                break
            active = active & clipped_new
        return y

    def _derived(self, row_scale: torch.Tensor | None,
                 out_mult: torch.Tensor | None) -> tuple[Any, Any, Any]:
        """Constants of a pass from the row scale and output factor, in ADC units (the callers
        cache those tensors, so the derived ones are cached by identity)."""
        key = self._derived_key
        if key is not None and key[0] is row_scale and key[1] is out_mult:
            return self._derived_values
        in_unit, out_unit = self.inp_step or 1.0, self.out_step or 1.0
        gain = in_unit / out_unit
        var_c = (self.w_noise * gain) ** 2
        values = (
            gain if row_scale is None else row_scale * gain,
            var_c if row_scale is None else row_scale * var_c,
            out_unit if out_mult is None else out_mult * out_unit,
        )
        self._derived_key, self._derived_values = (row_scale, out_mult), values
        return values

    # -- internals -----------------------------------------------------------------------
    def _noise_management(self, x: torch.Tensor) -> torch.Tensor | None:
        if self.nm == "none":
            return None
        if self.nm == "abs_max":
            m = x.abs().amax(-1, keepdim=True)
            if self.nm_thres > 0.0:
                m.clamp_(max=self.nm_thres)
            # An all-zero vector gets a tiny scale: its output is zero (aihwkit's C++ tiles
            # return exactly zero for it).
            return m.clamp_(min=_TINY)
        m = x.amax(-1, keepdim=True)
        if self.nm_thres > 0.0:
            m.clamp_(max=self.nm_thres)
        # An all-negative vector keeps scale 1, as in aihwkit.
        return torch.where(m > 0.0, m, 1.0)

    def _pass(self, x: torch.Tensor, w: torch.Tensor, scale: torch.Tensor | None,
              rng: RandomSource, transposed: bool, w_abs: torch.Tensor | None,
              row_gain: Any, row_var: Any, mult: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One pass of the periphery, in DAC step units before and ADC step units after the
        crossbar (so that quantization is a plain rounding). ``row_gain`` converts the product
        to ADC units (times the row scale), ``row_var`` scales the PCM read-noise variance and
        ``mult`` converts back to output units (times the digital output factor)."""
        in_unit = self.inp_step or 1.0
        if scale is not None:
            xs = x / (scale * in_unit if self.inp_step is not None else scale)
        else:
            xs = x / in_unit if self.inp_step is not None else x.clone()
        if self.inp_step is not None:
            _round_(xs, self.inp_sto, rng)
        if not self.inputs_in_range:
            bound = self.inp_bound / in_unit
            xs.clamp_(-bound, bound)
        if self._probe_first:
            self._probe_first = False
            self.probe.codes(xs)
        if self.inp_noise > 0.0:
            xs.add_(rng.normal(xs.shape, xs.dtype), alpha=self.inp_noise / in_unit)
        wt = w if transposed else w.transpose(1, 2)
        out_unit = self.out_step or 1.0
        out_var = (self.out_noise / out_unit) ** 2
        if self.w_noise_type == "none" and isinstance(row_gain, float):
            # Only output noise: product, gain and noise in one call.
            if out_var > 0.0:
                noise = rng.normal((xs.shape[0], xs.shape[1], wt.shape[2]), xs.dtype)
                y = torch.baddbmm(noise, xs, wt, beta=math.sqrt(out_var), alpha=row_gain)
            else:
                y = torch.bmm(xs, wt)
                if row_gain != 1.0:
                    y.mul_(row_gain)
            return self._finish(y, scale, rng, mult)
        y = torch.bmm(xs, wt)
        if not (isinstance(row_gain, float) and row_gain == 1.0):
            y.mul_(row_gain)
        # Weight noise and output noise are independent Gaussians: one draw with the summed
        # variance (in ADC units).
        var = None
        if self.w_noise_type == "additive_constant":
            gain = in_unit / out_unit
            var = (xs * xs).sum(-1, keepdim=True).mul_((self.w_noise * gain) ** 2)
        elif self.w_noise_type == "pcm_read":
            wa = w.abs() if w_abs is None else w_abs
            var = torch.bmm(xs * xs, wa if transposed else wa.transpose(1, 2))
            var.mul_(row_var)
        if var is not None:
            if out_var > 0.0:
                var.add_(out_var)
            y.addcmul_(rng.normal(y.shape, y.dtype), var.sqrt_())
        elif out_var > 0.0:
            y.add_(rng.normal(y.shape, y.dtype), alpha=math.sqrt(out_var))
        return self._finish(y, scale, rng, mult)

    def _finish(self, y: torch.Tensor, scale: torch.Tensor | None, rng: RandomSource,
                mult: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ADC (rounding, range, bound-management check) and the digital rescaling."""
        out_unit = self.out_step or 1.0
        if self.out_step is not None:
            _round_(y, self.out_sto, rng)
        out_bound = self.out_bound / out_unit
        clipped = None
        if self.out_bound != math.inf:
            bounded = y.clamp(-out_bound, out_bound)
            # Usually nothing clips: one comparison for the whole batch, rows only if needed.
            if self.bm and not torch.equal(bounded, y):
                clipped = y.abs().amax(-1, keepdim=True) > out_bound
            y = bounded
        if scale is not None:
            y.mul_(scale * mult)
        elif not (isinstance(mult, float) and mult == 1.0):
            y.mul_(mult)
        return y, clipped
