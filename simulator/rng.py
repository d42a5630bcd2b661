"""Random numbers for the simulator: seeded, and fast enough for per-device noise.

Analog training draws several random numbers per device per mini-batch (pulse counts, cycle-to-
cycle noise, read noise). PyTorch's CPU generator is single-threaded and costs about as much per
value as a whole forward/backward pass costs per weight, so a naive simulator spends most of its
time in ``normal_()``. :class:`RandomSource` offers two modes:

``"torch"``
    every call draws fresh values from a seeded ``torch.Generator``;
``"pool"``
    a large pool of independent normal (or uniform) values is drawn once per process, device and
    dtype (from a fixed seed), and each call returns a contiguous window of it at an offset drawn
    from the source's own seeded generator (Python's, so that a draw is no tensor operation). Inside one call every value is a distinct, independent
    draw; two calls share values only where their windows overlap, at a shift that is itself
    random, so a given device sees the same value twice only if two offsets coincide exactly
    (probability ``1 / (pool_size - n)`` per pair of calls). The marginal distribution is exact
    and the cross-call correlation is confined to these random coincidences; the statistical tests
    in ``tests/simulator/test_rng.py`` check mean, variance and lag correlations.

Both modes are deterministic for a given seed. The pool is read-only: never modify a returned
tensor in place.
"""

from __future__ import annotations

import random
import threading
from typing import Literal

import torch

from simulator.errors import ConfigError

RngMode = Literal["torch", "pool"]

POOL_SIZE = 1 << 22
"""Values per pool (4 Mi, 16 MiB in float32). Requests larger than half of it draw fresh values."""

_POOL_SEED = 0x5EED_A1A1
_pools: dict[tuple[str, torch.device, torch.dtype], torch.Tensor] = {}
_pools_lock = threading.Lock()


def _pool(kind: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (kind, device, dtype)
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                gen = torch.Generator(device=device).manual_seed(_POOL_SEED + (kind == "uniform"))
                pool = torch.empty(POOL_SIZE, device=device, dtype=dtype)
                if kind == "normal":
                    pool.normal_(generator=gen)
                else:
                    pool.uniform_(generator=gen)
                _pools[key] = pool
    return pool


class RandomSource:
    """A seeded stream of normal and uniform tensors, fresh or windows of a shared pool."""

    def __init__(self, seed: int, device: torch.device | str = "cpu", mode: RngMode = "pool") -> None:
        if mode not in ("torch", "pool"):
            raise ConfigError("rng", f"got {mode!r}; accepted: 'torch' or 'pool'")
        self.device = torch.device(device)
        self.mode: RngMode = mode
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        # Offsets come from Python's generator (seeded): no tensor operation, no device sync.
        self._offsets = random.Random(int(seed) ^ 0x0FF5E7)

    def normal(
        self, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype = torch.float32, *, fresh: bool = False
    ) -> torch.Tensor:
        """Standard normal values of ``shape`` (read-only in pool mode).

        ``fresh=True`` draws new values from the seeded generator even in pool mode: for one-off
        draws (device-to-device variation) that must not share values with any other draw.
        """
        return self._draw("normal", tuple(shape), dtype, fresh)

    def uniform(
        self, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype = torch.float32, *, fresh: bool = False
    ) -> torch.Tensor:
        """Uniform values in [0, 1) of ``shape`` (read-only in pool mode; ``fresh`` as in :meth:`normal`)."""
        return self._draw("uniform", tuple(shape), dtype, fresh)

    def _draw(self, kind: str, shape: tuple[int, ...], dtype: torch.dtype, fresh: bool = False) -> torch.Tensor:
        n = 1
        for s in shape:
            n *= s
        if self.mode == "torch" or fresh or n > POOL_SIZE // 2:
            out = torch.empty(shape, device=self.device, dtype=dtype)
            return out.normal_(generator=self.generator) if kind == "normal" else out.uniform_(generator=self.generator)
        pool = _pool(kind, self.device, dtype)
        start = self._offsets.randrange(POOL_SIZE - n + 1)
        return pool[start : start + n].view(shape)

    def state(self) -> dict[str, torch.Tensor]:
        """Generator states, for checkpointing (tensors)."""
        version, words, gauss = self._offsets.getstate()
        offsets = torch.tensor([version, *words, -1 if gauss is None else 1], dtype=torch.int64)
        state = {"generator": self.generator.get_state(), "offsets": offsets}
        if gauss is not None:
            state["offsets_gauss"] = torch.tensor(gauss, dtype=torch.float64)
        return state

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore generator states saved by :meth:`state`."""
        self.generator.set_state(state["generator"])
        values = [int(v) for v in state["offsets"].tolist()]
        gauss = float(state["offsets_gauss"]) if values[-1] == 1 else None
        self._offsets.setstate((values[0], tuple(values[1:-1]), gauss))


_MASK64 = (1 << 64) - 1


def derive_seed(seed: int, *keys: int) -> int:
    """A well-mixed 63-bit seed from ``seed`` and integer keys (splitmix64 steps)."""
    z = int(seed) & _MASK64
    for key in (*keys, 0x9E3779B9):
        z = (z + 0x9E3779B97F4A7C15 + (int(key) & _MASK64)) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
    return z >> 1
