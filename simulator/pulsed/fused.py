"""The aggregate update of one mini-batch, eager or compiled into one fused kernel.

On the CPU the aggregate update of a large layer is bound by memory traffic, not arithmetic: each
of the thirty-odd elementwise steps of the moments and the device response
(:mod:`simulator.pulsed.aggregate`, :mod:`simulator.pulsed.response`) reads and writes whole
``(out, in)`` temporaries (16 MB for a 256x785 layer), and on small layers the per-operation
overhead of eager PyTorch dominates. Compiled with ``torch.compile`` (inductor), the same code
becomes a few matrix products and fused loops that keep each device's values in registers.

The compiled body is the eager code itself (:func:`~simulator.pulsed.aggregate.moment_terms` and
the model's ``respond_moments_``), traced, so both paths compute the same thing; they differ by
floating-point rounding only (the fused loops evaluate ``exp`` and the reductions in a different
order). Compilation costs seconds on first use per device kind and layer shape family (shapes
are traced dynamically, and inductor caches its kernels on disk between processes); should it
fail (no C++ compiler, an unsupported platform), a warning says so once and the eager path runs.

Random numbers are drawn outside, in the same order in both paths, so a fused and an eager
update from the same source see the same normals.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from simulator.pulsed.aggregate import Moments, aggregate_moments, moment_terms
from simulator.pulsed.counters import PulseCounter
from simulator.pulsed.management import Probabilities

if TYPE_CHECKING:
    from simulator.pulsed.devices import DeviceModel, State

__all__ = ["WriteNoise", "aggregate_update_", "fused_available"]

_RECOMPILE_LIMIT = 64
"""Traces kept per compiled body: one per device kind, its float parameters and the flags
(signed moments, counting, signed inputs); the shapes are symbolic."""

_compiled: Any = None
_broken: str | None = None


class WriteNoise(NamedTuple):
    """What the update needs to show the written devices with write noise: after the hidden
    weights ``w`` have been updated, every device that received a pulse shows
    ``w + std * normal`` in ``shown``, the others keep what ``shown`` holds."""

    shown: torch.Tensor
    """The weight the tile reads, updated in place (same shape as ``w``)."""
    uniform: torch.Tensor
    """One uniform per device: pulsed where below ``P(some pulse)``."""
    normal: torch.Tensor
    """One standard normal per device: the new write noise."""
    std: float
    """The write noise's standard deviation (in weight units)."""


def aggregate_update_(model: DeviceModel, w: torch.Tensor, state: State, probs: Probabilities,
                      normals: tuple[torch.Tensor, torch.Tensor], xi: torch.Tensor, *, signed_q: bool,
                      counter: PulseCounter | None = None, scratch: dict[str, torch.Tensor] | None = None,
                      write_noise: WriteNoise | None = None, fused: bool = False) -> torch.Tensor:
    """Apply one mini-batch's aggregate counts to ``w`` in place (consumes ``probs``).

    ``normals`` are the line normals of :func:`~simulator.pulsed.aggregate.aggregate_moments` and
    ``xi`` one standard normal per device; ``counter`` receives the expected pulses;
    ``write_noise``: show the written devices with write noise (``w`` is then the hidden weight).
    ``fused``: run the compiled body (see the module doc); ``scratch`` (eager only) keeps the
    product buffers between calls.
    """
    if fused and _compiled_body() is not None:
        clipped = probs.clipped() if counter is not None else None
        body_state = {k: v for k, v in state.items() if not k.startswith("_")}
        noise = () if write_noise is None else tuple(write_noise)
        try:
            counts = _compiled(model, w, body_state, probs.x_scaled, probs.d_scaled, probs.bl,
                               normals[0], normals[1], xi, bool(probs.nonneg_x), signed_q,
                               counter is not None, *noise)
        except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to eager
            _disable(exc)
        else:
            if counts is not None and counter is not None:
                counter.add(*counts, clipped)
            return w
    moments = aggregate_moments(probs, normals, signed_q=signed_q, scratch=scratch, counter=counter,
                                want_silent=write_noise is not None)
    _respond_and_show_(model, w, state, moments, xi, write_noise)
    return w


def fused_available() -> bool:
    """Whether the compiled body can be used here (False once compiling it has failed)."""
    return _compiled_body() is not None


def _body(model: DeviceModel, w: torch.Tensor, state: State, x: torch.Tensor, d: torch.Tensor,
          bl: torch.Tensor, z_d: torch.Tensor, z_x: torch.Tensor, xi: torch.Tensor, nonneg_x: bool,
          signed_q: bool, want_counts: bool, shown: torch.Tensor | None = None,
          uniform: torch.Tensor | None = None, normal: torch.Tensor | None = None,
          std: float = 0.0) -> tuple[torch.Tensor, ...] | None:
    noise = None if shown is None else WriteNoise(shown, uniform, normal, std)  # type: ignore[arg-type]
    moments, counts = moment_terms(x, d, bl, (z_d, z_x), nonneg_x, signed_q, None, want_counts,
                                   want_silent=noise is not None)
    _respond_and_show_(model, w, state, moments, xi, noise)
    return counts


def _respond_and_show_(model: DeviceModel, w: torch.Tensor, state: State, moments: Moments,
                       xi: torch.Tensor, write_noise: WriteNoise | None) -> None:
    touched = None
    if write_noise is not None:
        # P(no pulse) = prod_b (1 - p_b)**BL_b ~ exp(-sum_b BL_b (p_b + p_b**2 / 2))
        touched = write_noise.uniform < -torch.expm1(-moments.log_silent)
    model.respond_moments_(w, state, moments, xi)
    if write_noise is not None:
        shown = write_noise.shown
        noisy = torch.add(w, write_noise.normal, alpha=write_noise.std)
        shown.copy_(torch.where(touched, noisy, shown))


def _compiled_body() -> Any:
    global _compiled
    if _broken is not None:
        return None
    if _compiled is None:
        import torch._dynamo.config as dynamo_config

        limit = max(int(getattr(dynamo_config, "recompile_limit", 8)), _RECOMPILE_LIMIT)
        if hasattr(dynamo_config, "recompile_limit"):
            dynamo_config.recompile_limit = limit
        else:  # torch < 2.6
            dynamo_config.cache_size_limit = max(int(dynamo_config.cache_size_limit), _RECOMPILE_LIMIT)
        _compiled = torch.compile(_body, dynamic=True)
    return _compiled


def _disable(exc: BaseException) -> None:
    global _broken
    _broken = f"{type(exc).__name__}: {exc}"
    warnings.warn(f"the fused aggregate update could not be compiled ({_broken.splitlines()[0][:300]}); "
                  "the eager update runs instead", RuntimeWarning, stacklevel=3)
