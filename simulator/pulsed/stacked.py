"""The aggregate update of all tiles of a layer in one call: :class:`StackedUpdater`.

A layer mapped on ``T`` equal tiles has ``T`` :class:`~simulator.pulsed.PulsedUpdater` (each with
its own device-to-device state and random source). Updating them one by one repeats the same
few dozen small tensor operations per tile; :class:`StackedUpdater` runs them once for the whole
stack instead: the per-device state of the tiles is kept stacked ``(T, out, in)`` (each updater's
state entries become views of it, so both stay one state), the management works on ``(T, N, .)``
inputs and errors, the count moments are batched products, and the device response is applied
to the stacked weights in place.

It computes what the tiles' own updaters compute, operation for operation: the same
probabilities, the same products (one batched call instead of ``T``) and the same response. The
one standard normal per device that the response needs (count and cycle-to-cycle noise) and the
normals per sample and line of the shared count fluctuation are drawn for the whole stack at
once from the first tile's source (one pool window each instead of ``T`` windows copied
together); a single tile draws exactly what its own updater would. It covers
the aggregate mode without write noise (write noise keeps per-tile hidden weights, and the exact
mode's bit streams have per-tile lengths; both stay with the tiles' updaters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from simulator.pulsed.counters import PulseCounter
from simulator.pulsed.fused import aggregate_update_
from simulator.pulsed.management import probabilities

if TYPE_CHECKING:
    from simulator.pulsed.devices import State
    from simulator.pulsed.updater import PulsedUpdater

__all__ = ["StackedUpdater"]


class StackedUpdater:
    """Aggregate pulsed updates of equal tiles at once: weights ``(T, out, in)``."""

    def __init__(self, updaters: Sequence[PulsedUpdater]) -> None:
        if not self.supports(updaters):
            raise ValueError("StackedUpdater needs aggregate-mode updaters of equal shape with a "
                             "pulsed device and no write noise")
        first = updaters[0]
        self.updaters = list(updaters)
        self.model = first.model
        self.update_cfg = first.update_cfg
        self.granularity = first.granularity
        self.signed_q = first._signed_q
        self.shape = (len(self.updaters), first.out_size, first.in_size)
        self._views: list[tuple[State, dict[str, torch.Tensor]]] = []
        self._state: State = {}
        self._scratch: dict[str, torch.Tensor] = {}
        self.counter = PulseCounter()
        """Pulses of the stacked updates (the tiles' own counters count only their own calls)."""

    @staticmethod
    def supports(updaters: Sequence[PulsedUpdater]) -> bool:
        """Whether these updaters can be stacked (aggregate mode, pulsed device, no write noise,
        one device kind and shape)."""
        if not updaters:
            return False
        first = updaters[0]
        return all(u.update_cfg.mode == "aggregate" and u.model is not None and u.write_noise == 0.0
                   and (u.out_size, u.in_size) == (first.out_size, first.in_size)
                   and u.device_cfg == first.device_cfg and u.update_cfg == first.update_cfg
                   for u in updaters)

    @property
    def state(self) -> State:
        """The stacked per-device state ``(T, out, in)`` (the updaters' entries are its views)."""
        if not self._linked():
            self._stack()
        return self._state

    @torch.no_grad()
    def update_(self, weight: torch.Tensor, x: torch.Tensor, d: torch.Tensor, lr: float,
                nonneg_x: bool | None = None) -> torch.Tensor:
        """Update ``weight`` ``(T, out, in)`` in place with inputs ``x`` ``(T, N, in)`` and errors
        ``d`` ``(T, N, out)`` (any strides; ``nonneg_x``: the caller knows ``x >= 0``)."""
        lr = float(lr)
        if lr == 0.0 or x.shape[-2] == 0:
            return weight
        if lr < 0.0:
            lr, d = -lr, -d
        state = self.state
        probs = probabilities(x, d, lr, self.granularity, self.update_cfg, nonneg_x)
        xi = self._normal(weight)
        first = self.updaters[0]
        rng = first.rng
        normals = (rng.normal(d.shape, dtype=weight.dtype).to(weight.device),
                   rng.normal(x.shape, dtype=weight.dtype).to(weight.device))
        return aggregate_update_(self.model, weight, state, probs, normals, xi,  # type: ignore[arg-type]
                                 signed_q=self.signed_q, counter=self.counter, scratch=self._scratch,
                                 fused=first.fused)

    # -- internals ------------------------------------------------------------------------------
    def _linked(self) -> bool:
        """Whether every updater's state entries are still the views of the stacked state."""
        if len(self._views) != len(self.updaters):
            return False
        for upd, (state, views) in zip(self.updaters, self._views):
            if upd.state is not state:
                return False
            for key, view in views.items():
                if state.get(key) is not view:
                    return False
        return True

    def _stack(self) -> None:
        states = [u.state for u in self.updaters]
        keys = [k for k in states[0] if not k.startswith("_")]
        self._state = {k: torch.stack([s[k] for s in states]) for k in keys}
        self._views = []
        for t, s in enumerate(states):
            views = {k: self._state[k][t] for k in keys}
            s.update(views)
            s.pop("_terms", None)
            self._views.append((s, views))

    def _normal(self, like: torch.Tensor) -> torch.Tensor:
        """One standard normal per device of the stack, one draw from the first tile's source
        (for a single tile: exactly the draw of its own updater)."""
        z = self.updaters[0].rng.normal(self.shape, dtype=like.dtype)
        return z if z.device == like.device else z.to(like.device)
