"""Activity measured through the trained analog model: :func:`measure_activity`.

What the periphery's energy depends on is measured on real inputs while the model evaluates
(NeuroSim needs activation traces for this; here they are the simulation's own inputs). For
every analog layer and each of its tiles:

- ``bit_density``: the fraction of 1 bits among the input codes' bits (sign and magnitude), what
  a bit-serial input drives;
- ``level``: the mean input code as a fraction of full scale, what a multi-bit (amplitude or
  pulse-width) DAC drives;
- ``zero_fraction``: the fraction of inputs whose code is 0 (their rows are not driven);
- ``bm_repeats``: the extra passes of iterative bound management per input vector.

The input codes are those of the tile's DAC: noise management of the tile's own inputs, the DAC
step and range of the forward config (an ideal forward is coded at the technology's
``input_bits`` with abs-max scaling), deterministic rounding. The per-tile totals stay on the
model's device until :meth:`ActivityMeter.result` reads them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from simulator.cost.technology import resolve
from simulator.layers import analog_layers
from simulator.mapping import TileArray

__all__ = ["ActivityMeter", "LayerActivity", "input_bits", "measure_activity"]


@dataclass
class LayerActivity:
    """The measured activity of one analog layer, per tile (tile ``row * n_col + col``)."""

    bit_density: list[float]
    """Fraction of 1 bits among the input codes' bits."""
    level: list[float]
    """Mean input code as a fraction of full scale."""
    zero_fraction: list[float]
    """Fraction of inputs coded 0."""
    bm_repeats: list[float]
    """Extra bound-management passes per input vector."""
    vectors: float
    """Input vectors measured (per tile)."""

    def to_dict(self) -> dict[str, Any]:
        return {"bit_density": self.bit_density, "level": self.level, "zero_fraction": self.zero_fraction,
                "bm_repeats": self.bm_repeats, "vectors": self.vectors}


def input_bits(array: TileArray) -> int:
    """The input resolution the cost model prices for ``array``: the forward DAC's bits, or the
    technology's ``input_bits`` when the forward has no DAC."""
    fwd = array.rpu.forward
    if not fwd.is_perfect and fwd.inp_bits is not None:
        return int(fwd.inp_bits)
    return int(resolve(array.rpu.cost)["input_bits"])


class _ArrayProbe:
    """Accumulates the input statistics of one tile array (see the module doc)."""

    def __init__(self, array: TileArray) -> None:
        self.array = array
        self.bits = input_bits(array)
        fwd = array.rpu.forward
        self.coded = not fwd.is_perfect and fwd.inp_bits is not None
        step = fwd.inp_step if self.coded else 1.0 / (2 ** (self.bits - 1) - 1)
        bound = fwd.inp_bound if self.coded else 1.0
        self.step = float(step)
        self.q_max = max(1.0, math.floor(bound / self.step + 0.5))
        self.rows = torch.tensor([array.in_sizes[r] for r in range(array.n_row)], dtype=torch.float64)
        self.sums: torch.Tensor | None = None  # (4, n_row): ones, level, zeros, vectors
        self.extra: torch.Tensor | None = None  # (T,): bound-management passes
        self.lut: torch.Tensor | None = None
        magnitude_bits = self.bits - 1
        if magnitude_bits <= 16:
            self.lut = torch.tensor([bin(v).count("1") for v in range(1 << magnitude_bits)], dtype=torch.int32)

    @torch.no_grad()
    def inputs(self, x: torch.Tensor) -> None:
        array = self.array
        flat = x.detach().reshape(-1, array.in_features)
        n = flat.shape[0]
        if n == 0:
            return
        slots, _ = array._stack_inputs(flat)
        rows = slots.reshape(n, array.n_row, array.tile_in).transpose(0, 1)  # (R, N, I)
        nm = array.rpu.forward.noise_management if self.coded else "abs_max"
        if nm == "abs_max":
            alpha = rows.abs().amax(-1, keepdim=True).clamp_(min=1e-30)
            thres = array.rpu.forward.nm_thres if self.coded else 0.0
            if thres > 0.0:
                alpha = alpha.clamp(max=thres)
        elif nm == "max":
            m = rows.amax(-1, keepdim=True)
            if array.rpu.forward.nm_thres > 0.0:
                m = m.clamp(max=array.rpu.forward.nm_thres)
            alpha = torch.where(m > 0.0, m, torch.ones_like(m))
        else:
            alpha = None
        scaled = rows.abs() / (alpha * self.step) if alpha is not None else rows.abs() / self.step
        q = scaled.round_().clamp_(max=self.q_max)
        level = q.sum((1, 2), dtype=torch.float64) / self.q_max
        zeros = (q == 0).sum((1, 2), dtype=torch.float64)
        qi = q.to(torch.int32)
        if self.lut is not None:
            lut = self.lut if self.lut.device == qi.device else self.lut.to(qi.device)
            ones = lut[qi.clamp_(max=lut.numel() - 1)].sum((1, 2), dtype=torch.float64)
        else:
            ones = torch.zeros(array.n_row, dtype=torch.float64, device=qi.device)
            for k in range(self.bits - 1):
                ones += ((qi >> k) & 1).sum((1, 2), dtype=torch.float64)
        ones += ((rows < 0) & (q > 0)).sum((1, 2), dtype=torch.float64)  # sign bits of negative inputs
        # padding rows of a partial tile are zero codes: take them out of the zero count
        pad = (array.tile_in - self.rows.to(zeros.device)) * n
        step = torch.stack([ones, level, zeros - pad, torch.full_like(ones, float(n))])
        self.sums = step if self.sums is None else self.sums + step

    def repeats(self, active: torch.Tensor) -> None:
        counts = active.reshape(active.shape[0], -1).sum(-1, dtype=torch.float64)
        self.extra = counts if self.extra is None else self.extra + counts

    def result(self) -> LayerActivity | None:
        if self.sums is None:
            return None
        array = self.array
        s = self.sums.cpu()
        ones, level, zeros, vectors = s
        cells = vectors * self.rows
        per_row = {
            "bit_density": (ones / (cells * self.bits)).tolist(),
            "level": (level / cells).tolist(),
            "zero_fraction": (zeros / cells).clamp(0.0, 1.0).tolist(),
        }
        extra = self.extra.cpu().tolist() if self.extra is not None else [0.0] * array.n_tiles
        n_vec = float(vectors[0])
        tiles = {k: [v[t // array.n_col] for t in range(array.n_tiles)] for k, v in per_row.items()}
        return LayerActivity(bit_density=tiles["bit_density"], level=tiles["level"],
                             zero_fraction=tiles["zero_fraction"],
                             bm_repeats=[e / n_vec for e in extra], vectors=n_vec)


class ActivityMeter:
    """The probes of a model's analog layers while :func:`measure_activity` is open."""

    def __init__(self, model: nn.Module) -> None:
        self.probes = {name: _ArrayProbe(layer.array) for name, layer in analog_layers(model)}

    def result(self) -> dict[str, LayerActivity]:
        """The measured activity per analog layer name (layers that saw no input are absent)."""
        out = {}
        for name, probe in self.probes.items():
            r = probe.result()
            if r is not None:
                out[name] = r
        return out


@contextlib.contextmanager
def measure_activity(model: nn.Module) -> Iterator[ActivityMeter]:
    """Measure the input activity of every analog layer of ``model`` while open::

        with measure_activity(model) as meter:
            evaluate(model, test_batches)
        activity = meter.result()
    """
    meter = ActivityMeter(model)
    handles = []
    for probe in meter.probes.values():
        handles.append(probe.array.register_forward_pre_hook(lambda mod, args, p=probe: p.inputs(args[0])))
        probe.array.fwd.bm_probe = probe.repeats
    try:
        yield meter
    finally:
        for h in handles:
            h.remove()
        for probe in meter.probes.values():
            probe.array.fwd.bm_probe = None
