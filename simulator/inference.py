"""Inference non-idealities over a model: program, drift, read noise, compensation, perturbation.

The physics is described in :mod:`simulator.configs.noise`. The functions here act on every
analog layer of a model (or on the layers named in ``layers``):

* :func:`program` writes the trained weights onto the devices with programming noise; the first
  call stores the trained weights, later calls re-program from them (``seed`` makes each
  realisation repeatable: ``for r in range(R): program(model, seed=r); evaluate(...)``);
* :func:`drift` sets the weights to their state ``t`` seconds after programming (drift and
  accumulated read noise, always from the programmed state) and, with global compensation,
  rescales the outputs;
* :func:`reset` restores the trained weights and drops the inference state;
* :func:`freeze` stops training of named layers (paper 004: program the feature extractor with
  ``RelativeProgNoise(alpha)``, freeze it and retrain the detector layers);
* :func:`perturbed` is a context manager adding a fresh perturbation ``(mean + std N(0, 1)) *
  max|W_tile|`` to every analog weight while it is open (paper 001's HA-SGD: open it L times per
  step around forward + backward; the gradients add up in the weights' ``.grad`` / the pulsed
  updates, and the step is taken on the unperturbed weights);
* :func:`io_overrides` / :func:`at_forward_snr` temporarily change the periphery, e.g. to
  evaluate a trained model at another forward SNR (paper 000 fig. 5).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from simulator._passes import effective_weights
from simulator.configs.io import IOConfig
from simulator.configs.noise import (
    AdditiveProgNoise,
    NoiseConfig,
    PCMLikeProgNoise,
    ProgNoise,
    RelativeProgNoise,
)
from simulator.configs.rpu import RPUConfig
from simulator.errors import ConfigError, SimulatorError
from simulator.io import AnalogIO
from simulator.layers import analog_layers
from simulator.mapping import TileArray
from simulator.rng import RandomSource
from simulator.tile import derive_seed

__all__ = [
    "at_forward_snr",
    "drift",
    "freeze",
    "io_overrides",
    "perturbed",
    "program",
    "readout",
    "reconfigure",
    "reseed",
    "reset",
]

_ZERO = 1e-7


def _arrays(model: nn.Module, layers: Iterable[str] | None) -> list[tuple[int, TileArray]]:
    """``(index, array)`` of the selected analog layers (index: position among all of them)."""
    found = analog_layers(model)
    if layers is None:
        return [(i, m.array) for i, (_, m) in enumerate(found)]
    wanted = list(layers)
    names = [name for name, _ in found]
    for i, name in enumerate(wanted):
        if name not in names:
            raise ConfigError(f"layers[{i}]", f"got {name!r}, not an analog layer; accepted: "
                                              f"{', '.join(names) or 'none (no analog layers)'}")
    return [(i, m.array) for i, (name, m) in enumerate(found) if name in wanted]


def _normal(gen: torch.Generator, like: torch.Tensor, *shape: int) -> torch.Tensor:
    out = torch.empty(shape or like.shape, dtype=like.dtype, device=like.device)
    return out.normal_(generator=gen)


def _write(array: TileArray, stacked: torch.Tensor) -> None:
    array.write_stacked_(stacked)
    array._written_version = array.weight._version


def _unchanged_since_write(array: TileArray) -> bool:
    return array._written_version == array.weight._version


# -- programming --------------------------------------------------------------------------------
def _program_noise(prog: ProgNoise, target: torch.Tensor, g_max: float, scale: torch.Tensor,
                   gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Programmed weights and their conductance pair ``(2, T, O, I)`` from the targets."""
    w_max = target.abs().amax((1, 2), keepdim=True)
    if isinstance(prog, PCMLikeProgNoise):
        g_t = torch.stack([(target * scale).clamp_(0.0, g_max), (-target * scale).clamp_(0.0, g_max)])
        rel = g_t / g_max
        sigma = torch.full_like(g_t, prog.coeffs[0])
        power = torch.ones_like(g_t)
        for c in prog.coeffs[1:]:
            power = power * rel
            sigma = sigma + c * power
        sigma = sigma * (g_max / prog.coeff_g_max_reference * prog.scale)
        g_p = (g_t + sigma * _normal(gen, g_t)).clamp_(min=0.0)
        return (g_p[0] - g_p[1]) / scale, g_p
    if isinstance(prog, RelativeProgNoise):
        w_p = target * (1.0 + prog.mean_shift + prog.alpha * _normal(gen, target))
    elif isinstance(prog, AdditiveProgNoise):
        w_p = target + (prog.mean_shift + prog.std * _normal(gen, target)) * w_max
    else:
        w_p = target.clone()
    return w_p, torch.stack([(w_p * scale).clamp(min=0.0), (-w_p * scale).clamp(min=0.0)])


def _drift_exponents(noise: NoiseConfig, g_target: torch.Tensor,
                     gen: torch.Generator) -> torch.Tensor | None:
    drift = noise.drift
    if drift.model == "none":
        return None
    if drift.model == "pcm":
        log_g = torch.log((g_target / noise.g_max).abs().clamp_(min=_ZERO))
        mu = (-0.0155 * log_g + 0.0244).clamp_(0.049, 0.1)
        sigma = (-0.0125 * log_g - 0.0059).clamp_(0.008, 0.045)
    else:
        mu = torch.full_like(g_target, drift.nu_mean)
        sigma = torch.full_like(g_target, drift.nu_std)
    return (mu + sigma * _normal(gen, g_target)).abs_().mul_(drift.scale)


@torch.no_grad()
def readout(array: TileArray, rng: RandomSource) -> torch.Tensor:
    """Per-tile ``mean |y|`` of the identity matrix read through the forward periphery ``(T,)``.

    This is the drift-compensation readout (aihwkit's ``GlobalDriftCompensation``), taken from
    the current weights without any compensation factor and without training noise.
    """
    saved_factor, was_training = array.out_factor, array.training
    array.out_factor = None
    array.train(False)
    array.touch()
    try:
        eff = effective_weights(array)
    finally:
        array.out_factor = saved_factor
        array.train(was_training)
        array.touch()
    w = eff.w
    eye = torch.eye(array.tile_in, dtype=w.dtype, device=w.device).expand(array.n_tiles, -1, -1)
    y = array.fwd.mvm(eye, w, rng, w_abs=eff.w_abs, row_scale=eff.row, out_mult=eff.mult)
    y = y.abs_()
    mask = array.valid_mask()
    if mask is None:
        return y.mean((1, 2))
    m = mask.transpose(1, 2).to(y.dtype)
    return (y * m).sum((1, 2)) / m.sum((1, 2))


def _io_rng(array: TileArray, seed: int, index: int, stream: int) -> RandomSource:
    return RandomSource(derive_seed(seed, 2, index, stream), device=array.weight.device, mode="torch")


@torch.no_grad()
def program(model: nn.Module, *, seed: int = 0, layers: Iterable[str] | None = None,
            noise: ProgNoise | None = None) -> None:
    """Program the trained weights of the analog layers with their programming-noise model.

    ``noise`` replaces the configs' programming-noise model (e.g. ``RelativeProgNoise(alpha)``
    for paper 004); ``layers`` restricts programming to the named layers. Drift exponents are
    drawn here (one per device of each conductance pair) and, with global compensation, the
    readout baseline is taken.
    """
    for index, array in _arrays(model, layers):
        cfg = array.rpu.noise
        if array.reference is None or not _unchanged_since_write(array):
            array.reference = array.stacked().detach().clone()
        target = array.reference
        gen = torch.Generator(device=target.device).manual_seed(derive_seed(seed, 3, index))
        w_max = target.abs().amax((1, 2), keepdim=True).clamp_(min=_ZERO)
        scale = cfg.g_max / w_max
        w_p, g_p = _program_noise(noise or cfg.programming, target, cfg.g_max, scale, gen)
        g_target = torch.stack([(target * scale).clamp(min=0.0), (-target * scale).clamp(min=0.0)])
        mask = array.valid_mask()
        if mask is not None:
            w_p, g_p = w_p * mask, g_p * mask
        array.programmed, array.g_scale = g_p, scale
        array.drift_nu = _drift_exponents(cfg, g_target, gen)
        array.out_factor = None
        _write(array, w_p)
        array.comp_baseline = (readout(array, _io_rng(array, seed, index, 0))
                               if cfg.compensation == "global" else None)


@torch.no_grad()
def drift(model: nn.Module, t_seconds: float, *, seed: int = 0, layers: Iterable[str] | None = None,
          compensation: bool | None = None) -> None:
    """Set the programmed weights to their state ``t_seconds`` after programming.

    Conductances drift as ``g ((t + t0) / t0) ** (-nu)`` and gain the accumulated 1/f read
    noise at ``t + t0``; ``compensation`` (default: the config's ``noise.compensation``)
    rescales each tile's outputs by ``readout(0) / readout(t)``. Layers must be programmed.
    """
    if not (isinstance(t_seconds, (int, float)) and math.isfinite(t_seconds) and t_seconds >= 0):
        raise ConfigError("t_seconds", f"got {t_seconds!r}; accepted: a number >= 0")
    for index, array in _arrays(model, layers):
        if array.programmed is None:
            raise SimulatorError("drift() needs programmed weights; call program() first")
        if not _unchanged_since_write(array):
            raise SimulatorError("the weights changed since program(); call program() again")
        cfg = array.rpu.noise
        gen = torch.Generator(device=array.weight.device).manual_seed(derive_seed(seed, 4, index))
        g_p = array.programmed
        t = float(t_seconds) + cfg.t0
        g = g_p if array.drift_nu is None or t <= cfg.t0 else g_p * (t / cfg.t0) ** (-array.drift_nu)
        if cfg.read_noise.model == "pcm":
            q = (0.0088 / (g_p / cfg.g_max).abs().pow(0.65).clamp(min=1e-3)).clamp(max=0.2)
            tr = cfg.read_noise.t_read
            sigma = q * (cfg.read_noise.scale * math.sqrt(math.log((t + tr) / (2.0 * tr))))
            g = (g + g.abs() * sigma * _normal(gen, g)).clamp_(min=0.0)
        w = (g[0] - g[1]) / array.g_scale
        mask = array.valid_mask()
        _write(array, w if mask is None else w * mask)
        use = cfg.compensation == "global" if compensation is None else compensation
        if use:
            if array.comp_baseline is None:
                array.comp_baseline = _baseline_from_programmed(array, seed, index)
            now = readout(array, _io_rng(array, seed, index, 1))
            array.out_factor = (array.comp_baseline / now.clamp(min=1e-4)).view(-1, 1, 1)
        else:
            array.out_factor = None
        array.touch()


def _baseline_from_programmed(array: TileArray, seed: int, index: int) -> torch.Tensor:
    current = array.stacked().detach().clone()
    g_p = array.programmed
    _write(array, (g_p[0] - g_p[1]) / array.g_scale)
    base = readout(array, _io_rng(array, seed, index, 0))
    _write(array, current)
    return base


@torch.no_grad()
def reset(model: nn.Module, *, layers: Iterable[str] | None = None) -> None:
    """Restore the trained weights saved by :func:`program` and drop all inference state.

    If the weights were trained further since the last program / drift, they are kept.
    """
    for _, array in _arrays(model, layers):
        if array.reference is not None and _unchanged_since_write(array):
            _write(array, array.reference)
        for name in ("reference", "programmed", "drift_nu", "g_scale", "comp_baseline",
                     "out_factor"):
            setattr(array, name, None)
        array.touch()


def freeze(model: nn.Module, layers: Iterable[str]) -> None:
    """Stop training the named modules (analog or digital): their parameters get no gradient."""
    names = dict(model.named_modules())
    for i, name in enumerate(layers):
        if name not in names or not name:
            raise ConfigError(f"layers[{i}]", f"got {name!r}, not a module of the model; accepted: "
                                              f"{', '.join(n for n in names if n)}")
        for p in names[name].parameters():
            p.requires_grad_(False)


@contextmanager
def perturbed(model: nn.Module, std: float, mean: float = 0.0, *,
              layers: Iterable[str] | None = None) -> Iterator[None]:
    """Temporarily add ``(mean + std N(0, 1)) * max|W_tile|`` to every analog weight.

    Each entry draws a fresh perturbation from the layers' own seeded random sources (paper 001:
    perturbation with a mean shift; HA-SGD enters it L times per step). Gradients flow to the
    unperturbed weights.
    """
    if not (std >= 0 and math.isfinite(std)):
        raise ConfigError("std", f"got {std!r}; accepted: a number >= 0")
    if not math.isfinite(mean):
        raise ConfigError("mean", f"got {mean!r}; accepted: a finite number")
    arrays = [a for _, a in _arrays(model, layers)]
    for array in arrays:
        if array.perturbation is not None:
            raise SimulatorError("perturbed() contexts cannot be nested")
    try:
        with torch.no_grad():
            for array in arrays:
                w = array.stacked().detach()
                w_max = w.abs().amax((1, 2), keepdim=True)
                delta = array.rng.normal(w.shape, w.dtype).mul(std).add_(mean).mul_(w_max)
                mask = array.valid_mask()
                array.perturbation = delta if mask is None else delta * mask
                array.touch()
        yield
    finally:
        for array in arrays:
            array.perturbation = None
            array.touch()


_IO_FIELDS = ("forward", "backward")


@contextmanager
def io_overrides(model: nn.Module, overrides: Mapping[str, Any]) -> Iterator[None]:
    """Temporarily run the analog layers with other ``forward.*`` / ``backward.*`` settings.

    Example: ``with io_overrides(model, {"forward.out_bits": 6}): evaluate(model)``.
    """
    for path in overrides:
        if path.split(".")[0] not in _IO_FIELDS:
            raise ConfigError(path, "only the periphery can change temporarily; accepted: paths "
                                    "under forward. or backward.")
    arrays = [a for _, a in _arrays(model, None)]
    saved = [(a.rpu, a.fwd, a.bwd) for a in arrays]
    new_cfgs: dict[int, RPUConfig] = {}
    for a in arrays:
        new_cfgs[id(a)] = a.rpu.with_overrides(overrides)  # validates before anything changes
    try:
        for a in arrays:
            cfg = new_cfgs[id(a)]
            a.rpu, a.fwd, a.bwd = cfg, AnalogIO(cfg.forward), AnalogIO(cfg.backward)
            a._ideal_cfg = cfg.is_ideal
            a.touch()
        yield
    finally:
        for a, (rpu, fwd, bwd) in zip(arrays, saved):
            a.rpu, a.fwd, a.bwd = rpu, fwd, bwd
            a._ideal_cfg = rpu.is_ideal
            a.touch()


_RECONFIGURABLE = ("forward", "backward", "noise", "cost")


def reconfigure(model: nn.Module, overrides: Mapping[str, Any]) -> None:
    """Set ``forward.*``, ``backward.*``, ``noise.*`` and ``cost.*`` fields of every analog
    layer's RPU config for good: the trained weights are read (and later programmed and priced)
    as on another chip. The device, update and mapping stay: they define the stored weights.

    Example: ``reconfigure(model, {"forward.out_bits": 6, "noise.programming.scale": 2.0})``.
    Raises :class:`ConfigError` naming a path outside those fields or an invalid value, before
    anything changes.
    """
    for path in overrides:
        if path.split(".")[0] not in _RECONFIGURABLE:
            raise ConfigError(path, "only the periphery, the inference noise and the cost can change "
                                    "after training; accepted: paths under "
                                    + ", ".join(f + "." for f in _RECONFIGURABLE))
    if not overrides:
        return
    layers = analog_layers(model)
    new_cfgs = {id(m): m.array.rpu.with_overrides(overrides) for _, m in layers}  # validate first
    for _, m in layers:
        cfg = new_cfgs[id(m)]
        a = m.array
        a.rpu, a.fwd, a.bwd = cfg, AnalogIO(cfg.forward), AnalogIO(cfg.backward)
        a._ideal_cfg = cfg.is_ideal
        m.rpu_config = cfg
        a.touch()


def reseed(model: nn.Module, seed: int) -> None:
    """Restart the random stream of every analog layer's periphery (forward and backward noise,
    stochastic rounding) from ``seed`` and the layer's position, so that what follows (an
    evaluation) draws the same numbers whatever ran before."""
    for index, (_, m) in enumerate(analog_layers(model)):
        a = m.array
        a.rng = RandomSource(derive_seed(seed, 9, index), device=a.weight.device, mode=a.rpu.update.rng)


def at_forward_snr(model: nn.Module, snr_db: float) -> Any:
    """Context manager: evaluate with the forward output noise given as an SNR (paper 000).

    Layers with a non-perfect forward keep their periphery and replace its output noise; layers
    with a perfect forward get a floating-point MVM with only this output noise.
    """
    arrays = [a for _, a in _arrays(model, None)]
    if arrays and all(a.rpu.forward.is_perfect for a in arrays):
        clean = IOConfig(inp_bits=None, out_bits=None, out_bound=None, out_noise=0.0,
                         noise_management="none", bound_management="none", snr_db=snr_db)
        return io_overrides(model, {"forward": clean})
    if any(a.rpu.forward.is_perfect for a in arrays):
        raise SimulatorError("at_forward_snr() needs all analog layers to have the same kind of "
                             "forward periphery (all perfect or none)")
    return io_overrides(model, {"forward.snr_db": snr_db})
