"""Activity measured through the trained analog model: :func:`measure_activity`.

What the periphery's energy depends on is measured on real inputs while the model evaluates
(NeuroSim needs activation traces for this; here they are the simulation's own inputs). For
every analog layer and each of its tiles:

- ``bit_density``: the fraction of 1 bits among the input codes' bits (sign and magnitude), what
  a bit-serial input drives (counted only when the technology is bit-serial, ``dac_bits > 0``;
  otherwise it repeats ``level``);
- ``level``: the mean input code as a fraction of full scale, what a multi-bit (amplitude or
  pulse-width) DAC drives;
- ``zero_fraction``: the fraction of inputs whose code is 0 (their rows are not driven);
- ``bm_repeats``: the extra passes of iterative bound management per input vector.

The input codes are the tile's DAC codes as the simulated MVM produced them (noise management,
rounding, range; read in :class:`~simulator.io.AnalogIO` before the input noise); an ideal
forward is coded at the technology's ``input_bits`` with abs-max scaling. Level and zeros are
counted on every vector; 1 bits, and an ideal forward's codes, on a uniform random sample of at
most :data:`PROBE_VECTORS` vectors per MVM. Padding rows of a
partial tile are zero codes and count neither as inputs nor as zeros. The per-tile totals stay
on the model's device until :meth:`ActivityMeter.result` reads them.
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
    """Input vectors seen (per tile). ``bit_density`` is a mean over a uniform random sample of
    at most :data:`PROBE_VECTORS` vectors per MVM; the rest over all vectors (an ideal forward's,
    coded here, over that sample too)."""

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


PROBE_VECTORS = 256
"""Input vectors per MVM whose 1 bits are counted (bit-serial inputs): a larger batch is sampled
uniformly at random (seeded). Level and zeros are counted on every vector."""

_HIST_MAX_CODE = 1 << 16
"""Largest ``q_max`` whose codes are counted with a histogram (``2 q_max + 1`` bins)."""


class _ArrayProbe:
    """Accumulates the input statistics of one tile array (see the module doc).

    With a DAC in the forward periphery the statistics come from the very codes the MVM used
    (:attr:`simulator.io.AnalogIO.probe`); an ideal forward has no codes, and its inputs are
    coded here at the priced resolution with abs-max scaling (a forward pre-hook)."""

    def __init__(self, array: TileArray) -> None:
        self.array = array
        self.bits = input_bits(array)
        fwd = array.rpu.forward
        self.coded = not fwd.is_perfect and fwd.inp_bits is not None
        step = fwd.inp_step if self.coded else 1.0 / (2 ** (self.bits - 1) - 1)
        bound = fwd.inp_bound if self.coded else 1.0
        self.q_max = max(1.0, math.floor(bound / float(step) + 0.5))
        self.step = float(step)
        tech = resolve(array.rpu.cost)
        self.bit_serial = int(tech["dac_bits"]) > 0
        self.rows = torch.tensor([t.in_size for t in array.tiles], dtype=torch.float64)
        self.sums: torch.Tensor | None = None  # (5, T): ones, their vectors, level, nonzero, vectors
        self.extra: torch.Tensor | None = None  # (T,): bound-management passes
        self.gen = torch.Generator().manual_seed(0)  # the vectors sampled for popcounts
        self.seen = 0  # input vectors of all MVMs (the code statistics use a sample of them)
        # 1 bits of each magnitude code, for a histogram of the codes (one pass instead of one per
        # bit); resolutions past 16 bits count bit by bit.
        q = int(self.q_max)
        self.ones_per_code: torch.Tensor | None = None
        if self.bit_serial and q <= _HIST_MAX_CODE:
            self.ones_per_code = torch.tensor([v.bit_count() for v in range(q + 1)], dtype=torch.float64)

    @torch.no_grad()
    def codes(self, xs: torch.Tensor) -> None:
        """Statistics of the DAC codes ``xs`` ``(T, N, I)`` (in steps) of one MVM."""
        self.codes_of(xs, xs.shape[1])

    def codes_of(self, xs: torch.Tensor, seen: int) -> None:
        """Statistics of the codes ``xs`` ``(T, N, I)`` of one MVM of ``seen`` vectors (``xs``
        may be a sample of them). Level and zeros are counted on every vector of ``xs``; the
        1 bits of a bit-serial input on a uniform random sample of at most
        :data:`PROBE_VECTORS` vectors (a popcount costs several passes over the codes)."""
        self.seen += seen
        n = xs.shape[1]
        if n == 0:
            return
        magnitude = xs.abs()
        level = magnitude.sum(2).sum(1, dtype=torch.float64) / self.q_max
        nonzero = magnitude.sign().sum(2).sum(1, dtype=torch.float64)  # (count_nonzero is 5x slower)
        if self.bit_serial:
            pick = self._sample(n, xs.device)
            sample = magnitude if pick is None else magnitude.index_select(1, pick)
            signs = xs if pick is None else xs.index_select(1, pick)
            ones = self._ones(sample, signs)
            sampled = float(sample.shape[1])
        else:
            ones = torch.zeros_like(level)
            sampled = float(n)
        step = torch.stack([ones, torch.full_like(level, sampled), level, nonzero, torch.full_like(level, float(n))])
        self.sums = step if self.sums is None else self.sums + step

    def _sample(self, n: int, device: torch.device) -> torch.Tensor | None:
        """Indices of :data:`PROBE_VECTORS` of ``n`` vectors drawn uniformly (with replacement,
        from the probe's own seeded generator), or None to take them all. A stride would alias
        with a convolution's grid of output positions (every k-th position can be an edge)."""
        if n <= PROBE_VECTORS:
            return None
        return torch.randint(0, n, (PROBE_VECTORS,), generator=self.gen).to(device)

    def _ones(self, magnitude: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """``(T,)`` 1 bits (magnitude and sign) of the codes ``xs`` with magnitudes ``magnitude``:
        one histogram of the magnitudes per tile where every code is within ``q_max``, else a
        pass per bit."""
        dims = (1, 2)
        negative = (xs < 0).sum(dims).to(torch.float64)  # sign bits of negative inputs
        if self.ones_per_code is not None:
            q = int(self.q_max)
            flat = magnitude.reshape(magnitude.shape[0], -1)
            if flat.dtype not in (torch.float32, torch.float64):
                flat = flat.float()
            hist = torch.stack([torch.histc(row, bins=q + 1, min=-0.5, max=q + 0.5) for row in flat])
            if bool((hist.sum(1) == flat.shape[1]).all()):
                table = self.ones_per_code
                table = table if table.device == hist.device else table.to(hist.device)
                return hist.to(torch.float64) @ table + negative
        q = magnitude.to(torch.int64)
        ones = negative
        for k in range(max(self.bits - 1, int(q.max()).bit_length() if q.numel() else 0)):
            ones = ones + ((q >> k) & 1).sum(dims, dtype=torch.float64)
        return ones

    @torch.no_grad()
    def inputs(self, x: torch.Tensor) -> None:
        """An ideal forward's inputs ``(..., in_features)``, coded at the priced resolution."""
        array = self.array
        flat = x.detach().reshape(-1, array.in_features)
        seen = flat.shape[0]
        if seen == 0:
            return
        pick = self._sample(seen, flat.device)
        if pick is not None:
            flat = flat.index_select(0, pick)
        _, tiles = array._stack_inputs(flat)
        alpha = tiles.abs().amax(-1, keepdim=True).clamp_(min=1e-30)
        self.codes_of((tiles / (alpha * self.step)).round_(), seen)

    def repeats(self, active: torch.Tensor) -> None:
        counts = active.reshape(active.shape[0], -1).sum(-1, dtype=torch.float64)
        self.extra = counts if self.extra is None else self.extra + counts

    def result(self) -> LayerActivity | None:
        if self.sums is None:
            return None
        ones, sampled, level, nonzero, vectors = self.sums.cpu()
        extra = self.extra.cpu() if self.extra is not None else torch.zeros_like(vectors)
        seen = float(max(self.seen, 1))
        level = level / (vectors * self.rows)
        bit_density = ones / (sampled * self.rows * self.bits) if self.bit_serial else level
        return LayerActivity(bit_density=bit_density.tolist(), level=level.tolist(),
                             zero_fraction=(1.0 - nonzero / (vectors * self.rows)).clamp(0.0, 1.0).tolist(),
                             bm_repeats=(extra / seen).tolist(), vectors=seen)


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
        if probe.coded:
            probe.array.fwd.probe = probe
        else:
            handles.append(probe.array.register_forward_pre_hook(lambda mod, args, p=probe: p.inputs(args[0])))
    try:
        yield meter
    finally:
        for h in handles:
            h.remove()
        for probe in meter.probes.values():
            probe.array.fwd.probe = None
