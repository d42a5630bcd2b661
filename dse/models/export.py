"""A trial's trained model as a file to take away: the stored model, programmed for the trial's
evaluation chip (its RPU config with the trial's ``inference`` overrides), with the trial's
identity, parameters and metrics as metadata. Loads back with
:func:`simulator.checkpoint.load_analog_model`. Imports torch when called."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dse.errors import NotFoundError, SpecError
from dse.models.store import ModelStore


def trial_training_key(record: Any, repeat: int = 0) -> str:
    """The training key of ``record``'s repeat ``repeat`` (:class:`NotFoundError` when the trial
    recorded none: it did not finish, or ran without a model store)."""
    training = record.training
    if not isinstance(repeat, int) or repeat < 0:
        raise SpecError("repeat", f"got {repeat!r}; accepted: an integer >= 0")
    if repeat >= len(training) or not training[repeat] or not training[repeat].get("training_key"):
        have = len(training)
        raise NotFoundError(f"trial {record.trial_id} has no trained model for repeat {repeat} "
                            f"({'it has ' + str(have) + ' finished repeat(s)' if have else 'it finished no repeat'}"
                            " with a stored training)")
    return str(training[repeat]["training_key"])


def export_trial_model(store: ModelStore, record: Any, config: Mapping[str, Any], *, study: str = "",
                       repeat: int = 0) -> bytes:
    """The model file of ``record`` (repeat ``repeat``), whose trial config is ``config``:
    the stored training, read on the trial's evaluation hardware."""
    from dse.trial import analog
    from dse.trial.config import inference_overrides, parse_trial_config, resolve_inference
    from dse.trial.stored import decode, encode

    key = trial_training_key(record, repeat)
    data = store.get(key)
    stored = decode(data)
    trial = parse_trial_config(config)
    analog.for_evaluation(stored.model, inference_overrides(trial.inference), seed=0)
    meta = stored.metadata
    return encode(
        stored.model, trial=trial, key=key, training=stored.training, input_shape=tuple(meta["input_shape"]),
        classes=int(meta["classes"]), rpu=resolve_inference(trial.hardware, trial.algorithm, trial.inference),
        seed=_conversion_seed(trial.seed), origin=stored.trained_by,
        extra={"exported_from": {"study": study, "trial_id": record.trial_id, "number": record.number,
                                 "repeat": repeat, "params": dict(record.params),
                                 "metrics": dict(record.repeat_metrics[repeat]) if repeat < len(record.repeat_metrics)
                                 else {}}})


def _conversion_seed(seed: int) -> int:
    from dse.trial.run import _seed

    return _seed(seed, 2)
