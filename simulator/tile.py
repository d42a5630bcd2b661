"""One physical crossbar tile of a :class:`~simulator.mapping.TileArray`.

The array stores the weights of all its tiles in one parameter (so their MVMs run as one batched
product); an :class:`AnalogTile` is the view of one tile into it plus what is private to the
tile: its position in the layer and, for pulsed training, its
:class:`~simulator.pulsed.PulsedUpdater` (per-device bounds and step sizes, sampled from the
device-to-device variation with the tile's own seed).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from simulator.configs.rpu import RPUConfig
from simulator.pulsed import make_updater
from simulator.rng import RandomSource, derive_seed  # derive_seed re-exported (simulator.tile.derive_seed)


class TileHost(Protocol):
    """What a tile reads of the array that owns it (:class:`~simulator.mapping.TileArray`,
    which imports this module; a tile never imports the array)."""

    n_col: int
    """Tiles per row of the array's grid."""
    analog_bias: bool
    """The layer's bias is the array's last input column."""
    in_total: int
    """Inputs of the layer, the analog bias column included."""
    n_tiles: int
    """Tiles in the array."""
    tile_in: int
    """Inputs per tile."""
    tile_out: int
    """Outputs per tile."""
    weight: torch.Tensor
    """The array's stacked weights, all tiles in one parameter."""


__all__ = ["AnalogTile", "TileHost", "derive_seed"]


class AnalogTile(nn.Module):
    """Tile ``(row, col)`` of an array: inputs ``in_offset:in_offset+in_size`` of the layer (the
    analog bias column counts as an input), outputs ``out_offset:out_offset+out_size``."""

    def __init__(self, array: TileHost, row: int, col: int, in_offset: int, in_size: int,
                 out_offset: int, out_size: int, rpu: RPUConfig, seed: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.__dict__["_array"] = array  # plain reference: the array owns the tile, not vice versa
        self.row, self.col = row, col
        self.in_offset, self.in_size = in_offset, in_size
        self.out_offset, self.out_size = out_offset, out_size
        self.seed = seed
        self.updater: Any = None
        self._block: torch.Tensor | None = None
        if rpu.is_pulsed:
            rng = RandomSource(seed, device=device, mode=rpu.update.rng)
            holds_bias = array.analog_bias and in_offset + in_size == array.in_total
            self.updater = make_updater(rpu.device, rpu.update, out_size, in_size, rng, dtype=dtype,
                                        bias_column=holds_bias)
            self.updater.to(device)

    @property
    def index(self) -> int:
        """Position of this tile in the array's stacked view (``row * n_col + col``)."""
        return self.row * self._array.n_col + self.col

    @property
    def weight(self) -> torch.Tensor:
        """This tile's ``(out_size, in_size)`` weights: a view into the array's parameter."""
        a = self._array
        r0, c0 = self.col * a.tile_out, self.row * a.tile_in
        return a.weight[r0: r0 + self.out_size, c0: c0 + self.in_size]

    @torch.no_grad()
    def update(self, x: torch.Tensor, d: torch.Tensor, lr: float) -> None:
        """Apply the update of ``x (N, in_size)`` inputs and ``d (N, out_size)`` output gradients.

        Pulsed tiles fire device pulses (``E[dW] = -lr d^T x``); floating-point tiles subtract
        ``lr d^T x`` exactly.
        """
        if self.updater is None:
            self.weight.addmm_(d.t(), x, alpha=-lr)
            return
        target, shared = self._device_weights()
        self.updater.update_(target, x, d, lr)
        if not shared:
            self.weight.copy_(target)

    @torch.no_grad()
    def clip_(self) -> None:
        """Clip the weights into the per-device bounds and make them the devices' state.

        Call after writing the weights (pulsed tiles; a no-op otherwise).
        """
        if self.updater is None:
            return
        self._block = None
        target, shared = self._device_weights()
        self.updater.clip_(target)
        if not shared:
            self.weight.copy_(target)

    def drop_block(self) -> None:
        """Forget the private copy of the weights (they were written from outside)."""
        self._block = None

    def _device_weights(self) -> tuple[torch.Tensor, bool]:
        """The tensor the updater works on, and whether it is the weight view itself.

        A single-tile array, and any tile without write noise, passes its weight view. Tiles
        with write noise that share the parameter pass a private contiguous copy that persists
        between updates, so that an updater tracking writes to its weights sees only its own
        tile's changes.
        """
        if self._array.n_tiles == 1 or self.updater.write_noise == 0.0:
            return self.weight, True
        if self._block is None:
            self._block = self.weight.detach().clone(memory_format=torch.contiguous_format)
        return self._block, False

    def move_state(self, device: torch.device) -> None:
        """Move the updater's per-device state (called by the array after ``.to()``)."""
        self._block = None
        if self.updater is not None:
            self.updater.to(device)

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.updater is not None:
            for key, value in self.updater.state_dict().items():
                destination[prefix + "updater." + key] = value

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        own = prefix + "updater."
        unexpected_keys[:] = [k for k in unexpected_keys
                              if not (self.updater is not None and k.startswith(own))]
        if self.updater is None:
            return
        sub = {k[len(own):]: v for k, v in state_dict.items() if k.startswith(own)}
        if sub:
            self.updater.load_state_dict(sub)
        elif strict:
            missing_keys.append(own + "*")

    def extra_repr(self) -> str:
        return (f"row={self.row}, col={self.col}, in={self.in_offset}:{self.in_offset + self.in_size}, "
                f"out={self.out_offset}:{self.out_offset + self.out_size}, "
                f"pulsed={self.updater is not None}")
