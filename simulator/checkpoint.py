"""Model files: a trained analog network with its RPU config, checksummed.

A model file holds everything needed to rebuild a trained analog network without the code that
trained it: the *builder* of its digital skeleton (an import path ``"package.module:function"``
and JSON arguments; the function returns the ``nn.Module`` whose linear / convolution layers
:func:`~simulator.layers.convert_to_analog` converts), the RPU config and conversion arguments,
the state dict (weights, biases, batch-norm statistics, per-device state of pulsed tiles) and
free JSON metadata (the trial config, training metrics, ...). Layout::

    ANALOG-MODEL 1\\n
    {"sha256": "<hex of the payload>", "size": <payload bytes>}\\n
    <payload: torch.save of plain data and tensors>          (simulator.modelfile)

The payload is read with ``torch.load(weights_only=True)`` (tensors and plain data only, no
arbitrary objects) after its size and SHA-256 have been checked, so a truncated or corrupted
file raises :class:`~simulator.errors.CheckpointError` and is never unpickled.

Usage::

    from simulator.checkpoint import load_analog_model
    loaded = load_analog_model("best.model")          # loaded.model, loaded.rpu_config, loaded.metadata
    logits = loaded.model(x)                           # in eval mode, on the RPU config's chip
"""

from __future__ import annotations

import importlib
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from simulator.configs.rpu import RPUConfig
from simulator.errors import CheckpointError
from simulator.modelfile import unwrap, wrap

__all__ = ["LoadedModel", "decode_analog_model", "encode_analog_model", "load_analog_model",
           "read_metadata", "save_analog_model"]

@dataclass
class LoadedModel:
    """A model file loaded back: the analog network, its RPU config and the file's metadata."""

    model: nn.Module
    """The analog network, in eval mode, weights and device state as saved."""
    rpu_config: RPUConfig
    """The RPU config of its analog layers (the chip the weights are read on)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """What the writer stored with it (for a study's model: the trial config, its training
    metrics, the training key and the trial that trained it)."""


def encode_analog_model(model: nn.Module, *, builder: str, builder_args: Mapping[str, Any],
                        rpu_config: RPUConfig, keep_digital: list[str] | tuple[str, ...] = (),
                        seed: int = 0, metadata: Mapping[str, Any] | None = None) -> bytes:
    """The bytes of a model file for ``model`` (see the module docstring).

    ``builder(**builder_args)`` must return the digital network that, converted with
    ``convert_to_analog(net, rpu_config, keep_digital=keep_digital, seed=seed)``, has the same
    modules as ``model``; ``metadata`` must be JSON data.
    """
    _builder(builder)  # importable now, so that the file can be loaded later
    payload = {
        "builder": builder,
        "builder_args": json.loads(json.dumps(dict(builder_args))),
        "rpu_config": rpu_config.to_dict(),
        "keep_digital": list(keep_digital),
        "seed": int(seed),
        "metadata": json.loads(json.dumps(dict(metadata or {}), allow_nan=False)),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return wrap(buffer.getvalue())


def _payload(data: bytes, map_location: Any = "cpu") -> dict[str, Any]:
    body = unwrap(data)
    try:
        return torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a checksummed but unreadable payload
        raise CheckpointError(f"model file payload cannot be read: {type(exc).__name__}: {exc}") from None


def _builder(path: str) -> Any:
    module_name, sep, attr = str(path).partition(":")
    if not sep or not module_name or not attr:
        raise CheckpointError(f"builder {path!r} is not an import path 'package.module:function'")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"builder {path!r} cannot be imported: {exc}") from None
    if not callable(fn):
        raise CheckpointError(f"builder {path!r} is not callable")
    return fn


def read_metadata(data: bytes) -> dict[str, Any]:
    """The metadata of a model file (checked like :func:`decode_analog_model`), without building
    the network."""
    return dict(_payload(data)["metadata"])


def decode_analog_model(data: bytes, *, map_location: Any = "cpu") -> LoadedModel:
    """Rebuild the analog network of a model file's bytes (checksum checked first)."""
    from simulator.layers import convert_to_analog

    payload = _payload(data, map_location)
    rpu = RPUConfig.from_dict(payload["rpu_config"])
    net = _builder(payload["builder"])(**payload["builder_args"])
    model = convert_to_analog(net, rpu, keep_digital=list(payload["keep_digital"]), seed=int(payload["seed"]),
                              inplace=True)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"the state dict does not fit the network its builder built: {exc}") from None
    device = map_location if isinstance(map_location, (str, torch.device)) else None
    if device is not None:
        model.to(device)
    model.eval()
    return LoadedModel(model, rpu, dict(payload["metadata"]))


def save_analog_model(path: str | os.PathLike[str], model: nn.Module, **kwargs: Any) -> None:
    """Write a model file (arguments of :func:`encode_analog_model`), atomically."""
    data = encode_analog_model(model, **kwargs)
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def load_analog_model(path: str | os.PathLike[str], *, map_location: Any = "cpu") -> LoadedModel:
    """Load a model file written by :func:`save_analog_model` (or exported from a study with
    ``dse model export``): the analog network in eval mode, its RPU config and metadata."""
    with open(path, "rb") as fh:
        return decode_analog_model(fh.read(), map_location=map_location)
