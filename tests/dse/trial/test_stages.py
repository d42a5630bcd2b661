"""The two stages of a trial config: membership from the schema, the training key."""

from __future__ import annotations

import dataclasses

import pytest

from dse.errors import SpecError
from dse.trial.config import (
    TrialConfig,
    section_stages,
    set_path,
    stage_of,
    training_key,
    training_part,
    validate_trial_config,
)
from dse.trial.config.sections import DatasetConfig, EvaluationConfig

BASE = {"dataset": {"name": "digits"}, "model": {"hidden": [32]}, "hardware": {"preset": "hwa_standard"},
        "algorithm": "hwa", "training": {"epochs": 2}}

# One change per training field (every section but evaluation / inference, and each dataset field
# but data_dir): each must give another key.
TRAINING_CHANGES = [
    ("dataset.name", "fashion-mnist"),
    ("dataset.validation_fraction", 0.2),
    ("dataset.max_train_samples", 500),
    ("dataset.max_test_samples", 100),
    ("model.hidden", [64]),
    ("model.activation", "tanh"),
    ("model.keep_digital", ["fc2"]),
    ("hardware.forward.out_bits", 5),
    ("hardware.noise.programming.scale", 2.0),
    ("hardware.modifier.std_dev", 0.37),
    ("hardware.cost.tech", "ecram22"),
    ("hardware.preset", "pcm_inference"),
    ("training.lr", 0.2),
    ("training.epochs", 3),
    ("training.batch_size", 16),
    ("algorithm", "ha_sgd"),
    ("seed", 7),
]
EVALUATION_CHANGES = [
    ("evaluation.repeats", 9),
    ("evaluation.drift_times_s", [60.0]),
    ("evaluation.snr_db", [18.0]),
    ("evaluation.batch_size", 7),
    ("inference.forward.out_bits", 4),
    ("inference.forward.inp_bits", 4),
    ("inference.noise.programming.scale", 3.0),
    ("inference.noise.drift.scale", 0.5),
    ("inference.cost.tech", "pcm22"),
    ("dataset.data_dir", "/somewhere/else"),
]


def test_sections_take_their_stage_from_the_schema() -> None:
    assert section_stages() == {"dataset": "training", "model": "training", "hardware": "training",
                                "training": "training", "algorithm": "training", "evaluation": "evaluation",
                                "inference": "evaluation", "seed": "training"}
    # ... which is the metadata of TrialConfig's fields, nothing else
    declared = {f.name: f.metadata.get("stage", "training") for f in dataclasses.fields(TrialConfig)}
    assert declared == section_stages()
    assert stage_of("inference.noise.drift.scale") == "evaluation"
    assert stage_of("evaluation.repeats") == "evaluation"
    assert stage_of("hardware.forward.out_bits") == "training"
    assert stage_of("dataset.data_dir") == "location"
    assert stage_of("dataset.max_train_samples") == "training"
    assert stage_of("model.hidden[1]") == "training"
    with pytest.raises(SpecError, match="unknown section 'hardwear'"):
        stage_of("hardwear.forward.out_bits")


@pytest.mark.parametrize(("path", "value"), TRAINING_CHANGES, ids=[p for p, _ in TRAINING_CHANGES])
def test_a_change_of_any_training_field_changes_the_key(path: str, value: object) -> None:
    assert stage_of(path) == "training"
    assert training_key(set_path(BASE, path, value)) != training_key(BASE)


@pytest.mark.parametrize(("path", "value"), EVALUATION_CHANGES, ids=[p for p, _ in EVALUATION_CHANGES])
def test_a_change_of_an_evaluation_field_keeps_the_key(path: str, value: object) -> None:
    assert stage_of(path) in ("evaluation", "location")
    assert training_key(set_path(BASE, path, value)) == training_key(BASE)


def test_every_field_of_the_sections_is_covered_by_the_tests_above() -> None:
    # A field added to the dataset or evaluation section must be put in a stage and tested.
    changed = {p for p, _ in TRAINING_CHANGES + EVALUATION_CHANGES}
    for cls, section in ((DatasetConfig, "dataset"), (EvaluationConfig, "evaluation")):
        for f in dataclasses.fields(cls):
            if f.name != "name" or section != "dataset":
                assert f"{section}.{f.name}" in changed, f"{section}.{f.name} has no stage test"


def test_the_key_is_of_the_normalized_training_part() -> None:
    # The same training spelled differently: defaults given, dotted vs nested hardware, a preset's
    # own value restated.
    normalized = validate_trial_config(BASE)
    preset_bits = training_part(BASE)["hardware"]["forward"]["out_bits"]
    spelled = {**BASE, "training": {"epochs": 2, "lr": normalized["training"]["lr"]},
               "hardware": {"preset": "hwa_standard", "forward.out_bits": preset_bits},
               "evaluation": {"repeats": 1}}
    assert training_key(spelled) == training_key(BASE)
    part = training_part(BASE)
    assert set(part) == {"dataset", "model", "hardware", "training", "algorithm", "seed"}
    assert "data_dir" not in part["dataset"]
    assert part["hardware"]["update"]["mode"] == "none"  # the resolved RPU config (hwa's override)
    assert len(training_key(BASE)) == 24 and int(training_key(BASE), 16) >= 0


def test_the_inference_section_is_checked_and_normalized() -> None:
    cfg = validate_trial_config({**BASE, "inference": {"forward.out_bits": 6, "noise": {"drift.scale": 0.5}}})
    assert cfg["inference"] == {"forward": {"out_bits": 6}, "noise": {"drift": {"scale": 0.5}}}
    assert validate_trial_config(BASE)["inference"] == {}
    with pytest.raises(SpecError) as err:
        validate_trial_config({**BASE, "inference": {"device.dw_min": 0.1}})
    assert err.value.path == "inference.device.dw_min" and "accepted: paths under forward., noise., cost." in str(err.value)
    with pytest.raises(SpecError) as err:
        validate_trial_config({**BASE, "inference": {"forward.out_bits": -3}})
    assert err.value.path == "inference.forward.out_bits"
    with pytest.raises(SpecError) as err:
        validate_trial_config({**BASE, "inference": {"cost.tech": "no-such-tech"}})
    assert err.value.path.startswith("inference.cost")
    with pytest.raises(SpecError) as err:
        validate_trial_config({**BASE, "inference": 5})
    assert err.value.path == "inference"
