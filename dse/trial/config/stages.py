"""The two stages of a trial, derived from the config schema, and the key of the training stage.

A trial *trains* a network and then *evaluates* it. Which config fields belong to which stage is
read from the schema, in one place: each dataclass field of :class:`~dse.trial.config.TrialConfig`
(and of the section configs below it) may carry ``metadata["stage"]``; a field without one
belongs to the stage of the section that holds it, and a top-level section without one to the
training stage. The stages:

- ``training``: what the trained network depends on: ``dataset`` (but ``data_dir``), ``model``,
  ``hardware`` (the hardware the network trains on), ``training``, ``algorithm``, ``seed``;
- ``evaluation``: what only measures the trained network: ``evaluation`` and ``inference`` (the
  hardware the trained weights are programmed onto for evaluation);
- ``location``: where things are, not what they are (``dataset.data_dir``): in neither key.

:func:`training_key` hashes the normalized training part (:func:`training_part`: defaults filled
in, the hardware resolved to its complete ``RPUConfig``), so two configs that differ only in
evaluation fields, or spell the same training differently, share one trained model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from dse.errors import SpecError
from dse.trial.config.hardware import resolve_hardware
from dse.trial.config.trial import TrialConfig, parse_trial_config

Stage = Literal["training", "evaluation", "location"]

STAGES: tuple[Stage, ...] = ("training", "evaluation", "location")
"""The stages a config field can belong to."""

TRAINING_KEY_VERSION = 1
"""Part of every training key; bumped when a change of the training code changes what a given
training config trains, so that models stored before are not reused."""


def _stage_of_field(f: dataclasses.Field, inherited: Stage) -> Stage:
    stage = f.metadata.get("stage", inherited)
    if stage not in STAGES:  # a schema bug, not user input
        raise ValueError(f"field {f.name!r}: stage {stage!r} is not one of {', '.join(STAGES)}")
    return stage


def section_stages() -> dict[str, Stage]:
    """Each top-level section of a trial config and its stage, from the schema."""
    return {f.name: _stage_of_field(f, "training") for f in dataclasses.fields(TrialConfig)}


def stage_of(path: str) -> Stage:
    """The stage of the config field at the dotted ``path`` (``training.lr`` -> ``training``,
    ``inference.forward.out_bits`` -> ``evaluation``, ``dataset.data_dir`` -> ``location``).

    Paths below a section that is not a dataclass (``hardware.*``, ``inference.*``) take the
    section's stage. Raises :class:`SpecError` for an unknown section.
    """
    head, _, rest = str(path).partition(".")
    head = head.split("[")[0]
    fields = {f.name: f for f in dataclasses.fields(TrialConfig)}
    if head not in fields:
        raise SpecError(str(path), f"unknown section {head!r}; accepted: {', '.join(fields)}")
    stage = _stage_of_field(fields[head], "training")
    owner = TrialConfig.__dataclass_fields__[head].default_factory  # type: ignore[misc]
    cls = owner if isinstance(owner, type) and dataclasses.is_dataclass(owner) else None
    for part in rest.split(".") if rest else ():
        if cls is None:
            break
        sub = {f.name: f for f in dataclasses.fields(cls)}.get(part.split("[")[0])
        if sub is None:
            break
        stage = _stage_of_field(sub, stage)
        cls = None  # one level of section fields carries stages; deeper ones inherit
    return stage


def _keep(value: Any, cls: type | None, stage: Stage) -> Any:
    """The part of a section's dict form whose fields are in the training stage."""
    if cls is None or not isinstance(value, Mapping) or not dataclasses.is_dataclass(cls):
        return value
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return {k: v for k, v in value.items()
            if k not in fields or _stage_of_field(fields[k], stage) == "training"}


def training_part(config: Mapping[str, Any] | TrialConfig) -> dict[str, Any]:
    """The normalized training stage of a trial config: every training field with its default
    filled in, the hardware as its resolved ``RPUConfig`` (``to_dict()``, the algorithm's
    overrides applied). Raises :class:`SpecError` for an invalid config."""
    trial = config if isinstance(config, TrialConfig) else parse_trial_config(config)
    data = trial.to_dict()
    out: dict[str, Any] = {}
    for f in dataclasses.fields(TrialConfig):
        stage = _stage_of_field(f, "training")
        if stage != "training":
            continue
        if f.name == "hardware":
            out["hardware"] = resolve_hardware(trial.hardware, trial.algorithm).to_dict()
            continue
        factory = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        section = getattr(trial, f.name)
        cls = type(section) if dataclasses.is_dataclass(section) else (factory if isinstance(factory, type) else None)
        out[f.name] = _keep(data[f.name], cls, stage)
    return out


def evaluation_part(config: Mapping[str, Any] | TrialConfig) -> dict[str, Any]:
    """The evaluation stage of a trial config (normalized): ``evaluation`` and ``inference``."""
    trial = config if isinstance(config, TrialConfig) else parse_trial_config(config)
    data = trial.to_dict()
    return {name: data[name] for name, stage in section_stages().items() if stage == "evaluation"}


def training_key(config: Mapping[str, Any] | TrialConfig) -> str:
    """The key of a trial config's training stage: the first 24 hex digits of the SHA-256 of
    :func:`training_part` as canonical JSON (with :data:`TRAINING_KEY_VERSION`)."""
    doc = {"version": TRAINING_KEY_VERSION, **training_part(config)}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def pretraining_config(config: Mapping[str, Any] | TrialConfig) -> TrialConfig | None:
    """For detector retraining (paper 004), the config of its pretraining: the same trial trained
    with ``analog_sgd`` (what ``detector_retrain`` trains before it programs the feature extractor
    and retrains the detector); None for the other algorithms. Its :func:`training_key` is the
    *pretraining key*: an alpha sweep shares one pretrained network per seed."""
    from dse.trial.config.algorithms import AnalogSGDAlgorithm, DetectorRetrainAlgorithm

    trial = config if isinstance(config, TrialConfig) else parse_trial_config(config)
    if not isinstance(trial.algorithm, DetectorRetrainAlgorithm):
        return None
    data = trial.to_dict()
    data["algorithm"] = AnalogSGDAlgorithm().to_dict()
    return parse_trial_config(data)


def _json_default(value: Any) -> Any:
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"not JSON data: {type(value).__name__}")


__all__ = ["STAGES", "TRAINING_KEY_VERSION", "Stage", "evaluation_part", "pretraining_config", "section_stages",
           "stage_of", "training_key", "training_part"]
