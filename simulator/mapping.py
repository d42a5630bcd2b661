"""A layer's weight matrix mapped onto a grid of tiles: :class:`TileArray`.

The logical matrix ``(out, in)`` (plus one input column for an analog bias) is cut into
``n_row x n_col`` tiles of at most ``max_input_size x max_output_size`` devices, split into equal
parts as aihwkit's ``TileModuleArray`` does (784 inputs with 512-input tiles: 392 + 392). Every
tile has its own periphery (noise and bound management, DAC, ADC, noise); partial outputs of tiles
that share outputs are added digitally.

Storage: one parameter ``weight`` of shape ``(n_col * tile_out, n_row * tile_in)``, the logical
matrix with each tile's block padded to the largest tile (a tile one row or column short gets a
zero row or column; with equal tiles it *is* the logical matrix). The tiles are strided views of
it, ``stacked()`` presents them as ``(T, tile_out, tile_in)`` for one batched MVM, and the ideal
path and the weight gradient use it as one matrix.

Training: with a floating-point update ``weight`` receives an ordinary gradient (the optimizer's
SGD step); with a pulsed update the backward pass stores the layer inputs and output gradients
instead and :class:`~simulator.optim.AnalogSGD` hands them to each tile's updater. With an ideal
config (:attr:`RPUConfig.is_ideal`) the forward pass is exactly ``F.linear`` of the logical
matrix, forward and gradients.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simulator._passes import AnalogMVM, Effective
from simulator.configs.rpu import RPUConfig
from simulator.errors import SimulatorError
from simulator.io import AnalogIO
from simulator.pulsed.counters import PulseCounter
from simulator.pulsed.stacked import StackedUpdater
from simulator.rng import RandomSource
from simulator.tile import AnalogTile, derive_seed

__all__ = ["MAX_PENDING", "TileArray", "pending_arrays", "split_sizes"]

MAX_PENDING = 256
"""Backward passes a pulsed array may accumulate before an optimizer step must consume them."""

_PENDING: weakref.WeakSet[TileArray] = weakref.WeakSet()


def pending_arrays() -> list[TileArray]:
    """Pulsed arrays whose backward passes left updates for the optimizer."""
    return list(_PENDING)


def split_sizes(n: int, max_size: int) -> list[int]:
    """Sizes of the tiles along one direction: as few as fit ``max_size``, sizes differing by at
    most one (aihwkit's ``get_split_sizes``); ``max_size <= 0``: one tile."""
    if max_size <= 0 or n <= max_size:
        return [n]
    parts = -(-n // max_size)
    base, extra = divmod(n, parts)
    return [base + (i < extra) for i in range(parts)]


def _offsets(sizes: list[int]) -> list[int]:
    out, total = [], 0
    for size in sizes:
        out.append(total)
        total += size
    return out


def _slot_index(sizes: list[int], slot: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """For tiles of ``sizes`` padded to ``slot`` each: the source index of every padded slot
    (``sum(sizes)`` marks padding) and the slot of every logical position; None if unpadded."""
    if all(size == slot for size in sizes):
        return None, None
    total = sum(sizes)
    source = torch.full((len(sizes) * slot,), total, dtype=torch.long)
    valid = torch.empty(total, dtype=torch.long)
    for i, (offset, size) in enumerate(zip(_offsets(sizes), sizes)):
        source[i * slot: i * slot + size] = torch.arange(offset, offset + size)
        valid[offset: offset + size] = torch.arange(i * slot, i * slot + size)
    return source, valid


class TileArray(nn.Module):
    """The tiles of one layer: ``in_features -> out_features`` (optionally with an analog bias)."""

    def __init__(self, in_features: int, out_features: int, rpu: RPUConfig, *,
                 analog_bias: bool = False, seed: int = 0, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        device = torch.device(device or "cpu")
        self.rpu = rpu
        self.seed = int(seed)
        self.in_features, self.out_features = in_features, out_features
        self.analog_bias = analog_bias
        self.in_total = in_features + int(analog_bias)
        self.in_sizes = split_sizes(self.in_total, rpu.mapping.max_input_size)
        self.out_sizes = split_sizes(out_features, rpu.mapping.max_output_size)
        self.n_row, self.n_col = len(self.in_sizes), len(self.out_sizes)
        self.tile_in, self.tile_out = self.in_sizes[0], self.out_sizes[0]
        self.is_pulsed = rpu.is_pulsed
        self.weight = nn.Parameter(torch.zeros(self.n_col * self.tile_out, self.n_row * self.tile_in,
                                               device=device, dtype=dtype))
        self.register_buffer("bias_input", torch.ones((), device=device, dtype=dtype))
        self.fwd = AnalogIO(rpu.forward)
        self.bwd = AnalogIO(rpu.backward)
        self.rng = RandomSource(derive_seed(self.seed, 0), device=device, mode=rpu.update.rng)
        tiles = []
        for r, (in_off, in_size) in enumerate(zip(_offsets(self.in_sizes), self.in_sizes)):
            for c, (out_off, out_size) in enumerate(zip(_offsets(self.out_sizes), self.out_sizes)):
                tiles.append(AnalogTile(self, r, c, in_off, in_size, out_off, out_size, rpu,
                                        derive_seed(self.seed, 1, r, c), dtype, device))
        self.tiles = nn.ModuleList(tiles)
        for name, (source, valid) in (("in", _slot_index(self.in_sizes, self.tile_in)),
                                      ("out", _slot_index(self.out_sizes, self.tile_out))):
            self.register_buffer(f"_{name}_source", None if source is None else source.to(device),
                                 persistent=False)
            self.register_buffer(f"_{name}_valid", None if valid is None else valid.to(device),
                                 persistent=False)
        # Inference state (see simulator.inference); not part of the state dict.
        for name in ("reference", "programmed", "drift_nu", "g_scale", "comp_baseline",
                     "out_factor", "perturbation"):
            self.register_buffer(name, None, persistent=False)
        mask = self.valid_mask()
        row_mask = None if mask is None else mask.any(-1, keepdim=True).to(dtype)
        self.register_buffer("_row_mask", row_mask, persistent=False)
        self._written_version: int | None = None  # weight version after the last inference write
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._synced_version = -1
        self._token = 0
        self._cache: tuple[Any, Effective] | None = None
        self._ideal_cfg = rpu.is_ideal
        self._stacked: StackedUpdater | bool | None = None  # built at the first update

    # -- layout ------------------------------------------------------------------------------
    @property
    def n_tiles(self) -> int:
        """Number of physical tiles."""
        return self.n_row * self.n_col

    @property
    def ideal_active(self) -> bool:
        """Whether the forward pass is currently the exact floating-point product."""
        return self._ideal_cfg and self.perturbation is None and self.out_factor is None

    def valid_mask(self) -> torch.Tensor | None:
        """``(T, tile_out, tile_in)`` mask of the real (non-padding) devices; None without padding."""
        if self.in_sizes[-1] == self.tile_in and self.out_sizes[-1] == self.tile_out:
            return None
        mask = torch.zeros(self.n_tiles, self.tile_out, self.tile_in, dtype=torch.bool,
                           device=self.weight.device)
        for t, tile in enumerate(self.tiles):
            mask[t, : tile.out_size, : tile.in_size] = True
        return mask

    def stacked(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The tiles as ``(T, tile_out, tile_in)``, tile ``t = row * n_col + col`` (a view unless
        the grid has both several rows and several columns)."""
        w = self.weight if weight is None else weight
        if self.n_row == 1:
            return w.view(self.n_col, self.tile_out, self.tile_in)
        if self.n_col == 1:
            return w.view(self.tile_out, self.n_row, self.tile_in).transpose(0, 1)
        grid = w.view(self.n_col, self.tile_out, self.n_row, self.tile_in).permute(2, 0, 1, 3)
        return grid.reshape(self.n_tiles, self.tile_out, self.tile_in)

    def unstacked(self, stacked: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`stacked`: ``(T, tile_out, tile_in)`` -> the parameter's layout."""
        grid = stacked.reshape(self.n_row, self.n_col, self.tile_out, self.tile_in)
        return grid.permute(1, 2, 0, 3).reshape(self.n_col * self.tile_out, self.n_row * self.tile_in)

    # -- logical weights -------------------------------------------------------------------
    def logical_weight(self) -> torch.Tensor:
        """The ``(out, in_total)`` logical matrix (differentiable; a view without padding)."""
        w = self.weight
        if self._out_valid is not None:
            w = w.index_select(0, self._out_valid)
        if self._in_valid is not None:
            w = w.index_select(1, self._in_valid)
        return w

    @torch.no_grad()
    def get_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Copies of the logical weight ``(out, in)`` and analog bias ``(out,)`` (None if digital)."""
        w = self.logical_weight()
        if not self.analog_bias:
            return w.clone(), None
        return w[:, : self.in_features].clone(), w[:, self.in_features] * self.bias_input

    @torch.no_grad()
    def set_weights(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Write the logical weights (and the analog bias); pulsed tiles clip to their bounds."""
        if tuple(weight.shape) != (self.out_features, self.in_features):
            raise SimulatorError(f"weight shape {tuple(weight.shape)} does not match the array's "
                                 f"({self.out_features}, {self.in_features})")
        full = weight.to(self.weight)
        if self.analog_bias:
            b = torch.zeros(self.out_features, dtype=full.dtype, device=full.device)
            if bias is not None:
                b = bias.to(full)
            scale = self.rpu.mapping.bias_scale
            if scale is None:
                w_max, b_max = float(full.abs().max()), float(b.abs().max())
                scale = b_max / w_max if w_max > 0.0 and b_max > 0.0 else 1.0
            self.bias_input.fill_(scale)
            full = torch.cat([full, (b / scale).unsqueeze(1)], dim=1)
        padded = torch.zeros_like(self.weight)
        for tile in self.tiles:
            r0, c0 = tile.col * self.tile_out, tile.row * self.tile_in
            padded[r0: r0 + tile.out_size, c0: c0 + tile.in_size] = full[
                tile.out_offset: tile.out_offset + tile.out_size,
                tile.in_offset: tile.in_offset + tile.in_size]
        self.write_(padded)

    @torch.no_grad()
    def write_(self, weight: torch.Tensor) -> None:
        """Write the parameter (its layout; padding must be zero); pulsed tiles clip the weights
        into their device bounds and take them as their state."""
        self.weight.copy_(weight)
        for tile in self.tiles:
            tile.clip_()
        self._synced_version = self.weight._version
        self.touch()

    def write_stacked_(self, stacked: torch.Tensor) -> None:
        """:meth:`write_` from the stacked ``(T, tile_out, tile_in)`` form."""
        self.write_(self.unstacked(stacked))

    def touch(self) -> None:
        """Invalidate cached effective weights (call after writing ``weight`` directly)."""
        self._token += 1
        self._cache = None

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``x (..., in) -> (..., out)``; ``bias`` is a digital bias added after the ADC."""
        if self.ideal_active:
            w = self.logical_weight()
            if self.analog_bias:
                b = w[:, self.in_features] * self.bias_input
                return F.linear(x, w[:, : self.in_features], b if bias is None else b + bias)
            return F.linear(x, w, bias)
        lead = x.shape[:-1]
        y = AnalogMVM.apply(x.reshape(-1, self.in_features), self.weight, bias, self)
        return y if len(lead) == 1 else y.reshape(*lead, self.out_features)

    def _stack_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs in the parameter's column layout ``(N, n_row * tile_in)`` and per tile
        ``(T, N, tile_in)``."""
        n = x.shape[0]
        if self.analog_bias:
            x = torch.cat([x, self.bias_input.expand(n, 1)], dim=1)
        if self._in_source is not None:
            x = F.pad(x, (0, 1)).index_select(1, self._in_source)
        if self.n_row == 1:
            rows = x.unsqueeze(0)
        else:
            rows = x.view(n, self.n_row, self.tile_in).transpose(0, 1)
        if self.n_col == 1:
            return x, rows
        tiles = rows.unsqueeze(1).expand(self.n_row, self.n_col, n, self.tile_in)
        return x, tiles.reshape(self.n_tiles, n, self.tile_in)

    def _gather_outputs(self, y: torch.Tensor) -> torch.Tensor:
        """Tile outputs ``(T, N, tile_out)`` -> layer outputs ``(N, out)`` (digital sums)."""
        n = y.shape[1]
        y = y.view(self.n_row, self.n_col, n, self.tile_out)
        y = y.sum(0) if self.n_row > 1 else y[0]
        if self.n_col == 1:
            return y[0]
        flat = y.transpose(0, 1).reshape(n, self.n_col * self.tile_out)
        return flat if self._out_valid is None else flat.index_select(1, self._out_valid)

    def _padded_grad(self, grad: torch.Tensor) -> torch.Tensor:
        """Output gradients ``(N, out)`` in the parameter's row layout."""
        if self._out_source is None:
            return grad
        return F.pad(grad, (0, 1)).index_select(1, self._out_source)

    # -- pulsed updates --------------------------------------------------------------------
    def _stash(self, slots: torch.Tensor, grad: torch.Tensor) -> None:
        if len(self._pending) >= MAX_PENDING:
            raise SimulatorError(
                f"{len(self._pending)} backward passes of a pulsed analog layer were never applied; "
                "train pulsed tiles with simulator.AnalogSGD (its step() applies the pulses)")
        self._pending.append((slots.detach(), grad.detach()))
        _PENDING.add(self)

    def has_pending(self) -> bool:
        """Whether backward passes left pulsed updates for the optimizer."""
        return bool(self._pending)

    def discard_pending(self) -> None:
        """Drop the stored backward passes without updating."""
        self._pending.clear()
        _PENDING.discard(self)

    @torch.no_grad()
    def apply_pending(self, lr: float) -> None:
        """Pulse the stored ``(x, d)`` of every backward pass since the last step into the tiles."""
        if not self._pending:
            return
        if len(self._pending) == 1:
            slots, grad = self._pending[0]
        else:
            slots = torch.cat([p[0] for p in self._pending], dim=0)
            grad = torch.cat([p[1] for p in self._pending], dim=0)
        self.discard_pending()
        if self.weight._version != self._synced_version:  # written from outside since
            for tile in self.tiles:
                tile.drop_block()
        stacked = self._stacked_updater()
        if stacked is not None:
            w = self.stacked()
            stacked.update_(w, self._tile_rows(slots), self._tile_cols(grad), lr)
            if self.n_row > 1 and self.n_col > 1:  # stacked() was a copy
                self.weight.detach().copy_(self.unstacked(w))
        else:
            for tile in self.tiles:
                start = tile.row * self.tile_in
                tile.update(slots[:, start: start + tile.in_size],
                            grad[:, tile.out_offset: tile.out_offset + tile.out_size], lr)
        self._synced_version = self.weight._version
        self.touch()

    def pulse_totals(self) -> dict[str, float]:
        """Pulses fired into this layer's tiles since they were built (or :meth:`reset_pulse_counts`):
        the totals of :class:`~simulator.pulsed.counters.PulseCounter`, summed over the tiles
        (all zero for floating-point tiles)."""
        counters = [tile.updater.counter for tile in self.tiles if tile.updater is not None]
        if isinstance(self._stacked, StackedUpdater):
            counters.append(self._stacked.counter)
        return PulseCounter.sum(counters)

    def transfer_reads(self) -> list[int]:
        """Per tile: the transfer reads of its compound device so far (0 for single devices)."""
        return [int(getattr(tile.updater, "transfer_reads", 0)) for tile in self.tiles]

    def reset_pulse_counts(self) -> None:
        """Start the pulse totals of :meth:`pulse_totals` from zero."""
        for tile in self.tiles:
            if tile.updater is not None:
                tile.updater.counter.reset()
        if isinstance(self._stacked, StackedUpdater):
            self._stacked.counter.reset()

    def _stacked_updater(self) -> StackedUpdater | None:
        """The update of all tiles in one call, where the tiles allow it (equal tiles, aggregate
        mode, no write noise); None otherwise."""
        if self._stacked is None:
            updaters = [tile.updater for tile in self.tiles]
            ok = self.is_pulsed and self.valid_mask() is None and StackedUpdater.supports(updaters)
            self._stacked = StackedUpdater(updaters) if ok else False
        return self._stacked or None

    def _tile_rows(self, slots: torch.Tensor) -> torch.Tensor:
        """Stored inputs ``(N, n_row * tile_in)`` as each tile's ``(T, N, tile_in)``."""
        n = slots.shape[0]
        rows = slots.reshape(n, self.n_row, self.tile_in).transpose(0, 1)
        if self.n_col == 1:
            return rows
        return rows.unsqueeze(1).expand(self.n_row, self.n_col, n, self.tile_in).reshape(
            self.n_tiles, n, self.tile_in)

    def _tile_cols(self, grad: torch.Tensor) -> torch.Tensor:
        """Output gradients ``(N, out)`` as each tile's ``(T, N, tile_out)``."""
        n = grad.shape[0]
        cols = self._padded_grad(grad).reshape(n, self.n_col, self.tile_out).transpose(0, 1)
        return cols.unsqueeze(0).expand(self.n_row, self.n_col, n, self.tile_out).reshape(
            self.n_tiles, n, self.tile_out)

    # -- device moves ----------------------------------------------------------------------
    def _apply(self, fn: Any, recurse: bool = True) -> TileArray:
        super()._apply(fn, recurse)
        device = self.weight.device
        if self.rng.device != device:
            self.rng = RandomSource(derive_seed(self.seed, 0), device=device, mode=self.rpu.update.rng)
        for tile in self.tiles:
            tile.move_state(device)
        self._cache = None
        return self

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"tiles={self.n_row}x{self.n_col}, analog_bias={self.analog_bias}, "
                f"pulsed={self.is_pulsed}")
