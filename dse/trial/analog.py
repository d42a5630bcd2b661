"""The trial's use of the simulator: conversion, optimizer, and the inference operations.

A thin layer over :mod:`simulator.layers`, :mod:`simulator.optim` and :mod:`simulator.inference`
that speaks in the trial's terms (layer names of :mod:`dse.trial.architectures`, seeds of the
trial's random streams).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from simulator import inference
from simulator.configs import RelativeProgNoise, RPUConfig
from simulator.layers import analog_layers, convert_to_analog
from simulator.layers import n_tiles as _n_tiles
from simulator.optim import AnalogSGD
from simulator.tile import derive_seed


def convert(net: nn.Module, rpu: RPUConfig, *, keep_digital: list[str], seed: int) -> nn.Module:
    """``net`` with every linear / convolution layer on analog tiles of ``rpu``, except
    ``keep_digital`` (weights copied; each layer seeded from ``seed``)."""
    return convert_to_analog(net, rpu, keep_digital=keep_digital, seed=seed, inplace=True)


def n_tiles(model: nn.Module) -> int:
    """Physical tiles of the model's analog layers."""
    return _n_tiles(model)


def analog_names(model: nn.Module) -> list[str]:
    """Names of the model's analog layers."""
    return [name for name, _ in analog_layers(model)]


def is_deterministic(model: nn.Module) -> bool:
    """Whether evaluating the model involves no randomness (all analog layers ideal)."""
    return all(layer.array.rpu.is_ideal for _, layer in analog_layers(model))


def drifts(model: nn.Module) -> bool:
    """Whether any analog layer's weights change after programming (drift or read noise)."""
    return any(layer.array.rpu.noise.drift.model != "none" or layer.array.rpu.noise.read_noise.model != "none"
               for _, layer in analog_layers(model))


def pulse_log(model: nn.Module) -> Any:
    """A :class:`simulator.cost.training.PulseLog` of the model's pulsed layers (start of training)."""
    from simulator.cost.training import PulseLog

    return PulseLog(model)


def activity_of(model: nn.Module) -> Any:
    """Context manager measuring the input activity of the analog layers while it is open."""
    from simulator.cost.activity import measure_activity

    return measure_activity(model)


def cost_of(model: nn.Module, input_shape: tuple[int, ...], activity: Any = None,
            log: Any = None) -> tuple[Any, Any]:
    """The :class:`~simulator.cost.CostReport` of one inference and, when ``log`` recorded pulsed
    training, its :class:`~simulator.cost.TrainingCost` (else None)."""
    from simulator.cost.model import estimate_cost
    from simulator.cost.trace import trace
    from simulator.cost.training import training_cost

    tr = trace(model, input_shape)
    report = estimate_cost(model, input_shape, activity or None, model_trace=tr)
    training = None
    if log is not None and log.epochs:
        training = training_cost(model, input_shape, log, activity or None, model_trace=tr)
    return report, training


def optimizer(model: nn.Module, params: Iterable[Any], *, lr: float, momentum: float,
              weight_decay: float) -> torch.optim.Optimizer:
    """``AnalogSGD`` over ``params`` (pulsed tiles among them get device updates)."""
    return AnalogSGD(list(params), lr=lr, momentum=momentum, weight_decay=weight_decay)


def set_lr_momentum(opt: torch.optim.Optimizer, lr: float, momentum: float) -> None:
    """Set the learning rate and momentum of every parameter group (schedules call it per step)."""
    for group in opt.param_groups:
        group["lr"] = lr
        group["momentum"] = momentum


@contextmanager
def perturbed(model: nn.Module, *, std: float, mean_shift: float) -> Iterator[None]:
    """Paper 001's perturbation of every analog weight while open (fresh draw on each entry)."""
    with inference.perturbed(model, std, mean_shift):
        yield


@dataclass
class Chip:
    """A programmed model: drift it to a time after programming (see :func:`programmed`)."""

    model: nn.Module
    """The programmed model."""
    seed: int
    """Seed of this realization (drift read noise and compensation readouts)."""

    def drift_to(self, t_seconds: float, *, compensate: bool) -> None:
        """Weights (and read noise) ``t_seconds`` after programming, with or without global drift
        compensation; always from the programmed state, so times can come in any order."""
        inference.drift(self.model, t_seconds, seed=self.seed, compensation=compensate)


@contextmanager
def programmed(model: nn.Module, *, seed: int) -> Iterator[Chip]:
    """Program the trained weights with the hardware's programming noise (realization ``seed``);
    the trained weights are restored on exit."""
    if not analog_layers(model):
        yield Chip(model, seed)
        return
    inference.program(model, seed=seed)
    try:
        yield Chip(model, seed)
    finally:
        inference.reset(model)


def forward_snr(model: nn.Module, snr_db: float) -> Any:
    """Context manager: the analog layers' forward weight noise given as an SNR in dB."""
    return inference.at_forward_snr(model, snr_db)


@torch.no_grad()
def program_and_freeze(model: nn.Module, layers: list[str], *, alpha: float, seed: int) -> None:
    """Paper 004: program the named layers with ``g(w) = (1 + alpha N(0, 1)) w`` and freeze them.

    The degraded weights become the layers' weights (later programming and resets start from
    them). Analog layers are programmed by the simulator; layers kept digital get the same noise
    on their weights directly. Biases are digital and stay exact.
    """
    modules = dict(model.named_modules())
    analog = set(analog_names(model))
    on_tiles = [n for n in layers if n in analog]
    if on_tiles:
        inference.program(model, seed=seed, layers=on_tiles, noise=RelativeProgNoise(alpha=alpha))
        degraded = {n: modules[n].get_weights() for n in on_tiles}
        inference.reset(model, layers=on_tiles)
        for n, (w, b) in degraded.items():
            modules[n].set_weights(w, b)
    for i, name in enumerate(layers):
        if name in analog:
            continue
        weight = modules[name].weight
        gen = torch.Generator(device=weight.device).manual_seed(derive_seed(seed, 7, i))
        noise = torch.empty_like(weight).normal_(generator=gen)
        weight.mul_(1.0 + alpha * noise)
    inference.freeze(model, layers)


@contextmanager
def rng_preserved(model: nn.Module) -> Iterator[None]:
    """While open, the analog layers draw their periphery noise as usual; on exit their random
    streams are put back where they were, so that what ran inside (a validation pass during
    training) leaves no trace in what follows."""
    arrays = [layer.array for _, layer in analog_layers(model)]
    saved = [a.rng.state() for a in arrays]
    try:
        yield
    finally:
        for a, state in zip(arrays, saved):
            a.rng.load_state(state)


def for_evaluation(model: nn.Module, overrides: dict[str, Any], *, seed: int) -> None:
    """Make a trained model the chip it is evaluated on: the ``inference`` overrides applied to
    its analog layers (forward periphery, inference noise, cost), its periphery's random stream
    restarted from ``seed``, eval mode."""
    inference.reconfigure(model, overrides)
    inference.reseed(model, seed)
    model.eval()
