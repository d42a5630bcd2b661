"""A trial's trained model as a model file (:mod:`simulator.checkpoint`) and back.

The file holds the analog network (weights, analog state), the RPU config it trained on, and as
metadata the trial config, its training key, what the training measured (training metrics,
per-epoch reports, the in-situ training cost) and who trained it (study, trial, repeat). The
network is rebuilt by :func:`dse.trial.models.build_network`, which the file names, so that
``simulator.checkpoint.load_analog_model(path)`` loads it without this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from simulator.checkpoint import decode_analog_model, encode_analog_model

BUILDER = "dse.trial.models:build_network"
"""Import path of the builder the study's model files name."""

KIND = "analog-dse/trained-model"
"""``metadata["kind"]`` of a study's model file."""


@dataclass
class StoredTraining:
    """A trained model loaded from its file."""

    model: nn.Module
    """The analog network as trained (on the training hardware)."""
    training: dict[str, Any]
    """What the training measured: ``metrics``, ``reports`` (per epoch), ``details``."""
    trained_by: dict[str, Any]
    """Study, trial id and repeat of the trial that trained it."""
    metadata: dict[str, Any]
    """The whole metadata of the file."""


def encode(model: nn.Module, *, trial: Any, key: str, training: Mapping[str, Any], input_shape: tuple[int, ...],
           classes: int, rpu: Any, seed: int, origin: Mapping[str, Any], rpu_for_file: Any = None,
           extra: Mapping[str, Any] | None = None) -> bytes:
    """The model file of a trained trial (``rpu_for_file``: the RPU config the file names, by
    default the training hardware ``rpu``)."""
    metadata = {
        "kind": KIND,
        "training_key": key,
        "config": trial.to_dict(),
        "input_shape": list(input_shape),
        "classes": int(classes),
        "training": dict(training),
        "trained_by": dict(origin),
        **dict(extra or {}),
    }
    return encode_analog_model(
        model, builder=BUILDER,
        builder_args={"model": trial.model.to_dict(), "shape": list(input_shape), "classes": int(classes)},
        rpu_config=rpu_for_file or rpu, keep_digital=list(trial.model.keep_digital), seed=seed, metadata=metadata)


def decode(data: bytes) -> StoredTraining:
    """The trained model of a model file's bytes (raises ``CheckpointError`` when corrupt)."""
    loaded = decode_analog_model(data)
    meta = loaded.metadata
    return StoredTraining(loaded.model, dict(meta.get("training") or {}), dict(meta.get("trained_by") or {}), meta)
