"""The inference section of a trial config: hardware overrides for evaluating the trained network.

A trained network is judged on the chip it is *programmed* onto, which need not be the hardware it
trained on: the ``inference`` section overrides ``RPUConfig`` fields of the training hardware when
the trained weights are programmed for evaluation, addressed like the hardware section (nested or
dotted)::

    inference:
      forward: {out_bits: 6, inp_bits: 6}      # or forward.out_bits: 6
      noise.programming.scale: 2.0
      noise.drift.scale: 0.5
      cost.tech: pcm22

Only what a programmed chip can differ in is accepted: the forward periphery (DAC / ADC bits,
noise, bound and noise management), the inference non-idealities (programming noise, drift, read
noise, compensation) and the cost technology; the device, the update, the mapping and the
training-time weight noise define how the network trained and belong to ``hardware``. An empty or
absent section evaluates on the training hardware.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dse.trial.config.algorithms import AlgorithmConfig
from dse.trial.config.hardware import _nest_into, flatten_overrides, resolve_hardware
from simulator.errors import ConfigError

INFERENCE_FIELDS = ("forward", "noise", "cost")
"""``RPUConfig`` fields the inference section may override."""


def _renamed(exc: ConfigError) -> ConfigError:
    path = exc.path
    if path.startswith("hardware."):
        path = "inference." + path[len("hardware."):]
    elif not path.startswith("inference"):
        path = "inference." + path if path else "inference"
    return ConfigError(path, exc.reason)


def inference_overrides(inference: Any) -> dict[str, Any]:
    """The dotted ``RPUConfig`` overrides of an inference section (``{}`` when absent).

    Raises :class:`ConfigError` with the ``inference.*`` path of a malformed entry or of a field
    outside :data:`INFERENCE_FIELDS`.
    """
    if inference is None:
        return {}
    if not isinstance(inference, Mapping):
        raise ConfigError("inference", f"got {inference!r}; accepted: a mapping of RPUConfig overrides under "
                                       f"{', '.join(INFERENCE_FIELDS)} (e.g. forward.out_bits: 6)")
    try:
        flat = flatten_overrides(inference)
    except ConfigError as exc:
        raise _renamed(exc) from None
    for path in flat:
        head = path.split(".")[0]
        if head not in INFERENCE_FIELDS:
            raise ConfigError(f"inference.{path}",
                              f"{head!r} cannot change between training and evaluation; accepted: paths under "
                              f"{', '.join(f + '.' for f in INFERENCE_FIELDS)} (the device, update, mapping and "
                              "modifier belong to the hardware section)")
    return flat


def normalize_inference(inference: Any) -> dict[str, Any]:
    """The inference section in canonical (nested) form; ``{}`` when absent."""
    out: dict[str, Any] = {}
    for path, value in inference_overrides(inference).items():
        try:
            _nest_into(out, path, value)
        except ConfigError as exc:
            raise _renamed(exc) from None
    return out


def resolve_inference(hardware: Any, algorithm: AlgorithmConfig | None, inference: Any) -> Any:
    """The ``RPUConfig`` a trial evaluates on: the training hardware with the inference overrides
    (torch-free). Errors name the ``inference.*`` path."""
    rpu = resolve_hardware(hardware, algorithm)
    overrides = inference_overrides(inference)
    if not overrides:
        return rpu
    try:
        rpu = rpu.with_overrides(overrides)
    except ConfigError as exc:
        raise exc.prefixed("inference") from None
    if any(p.startswith("cost.") for p in overrides):
        try:
            from simulator.cost.technology import resolve as resolve_technology  # torch-free

            resolve_technology(rpu.cost)
        except ConfigError as exc:
            raise (exc.prefixed("inference") if exc.path.startswith("cost")
                   else ConfigError("inference.cost.tech", exc.reason)) from None
    return rpu
