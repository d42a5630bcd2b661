"""The trial config schema: defaults, normalization, dotted paths and errors naming the key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dse.errors import SpecError
from dse.trial import architectures as arch
from dse.trial.config import (
    HASGDAlgorithm,
    OneCycleSchedule,
    get_path,
    parse_trial_config,
    resolve_hardware,
    set_path,
    validate_trial_config,
)


def test_empty_config_gets_every_default_and_is_idempotent() -> None:
    cfg = validate_trial_config({})
    assert list(cfg) == ["dataset", "model", "hardware", "training", "algorithm", "evaluation", "inference", "seed"]
    assert cfg["dataset"]["name"] == "digits"
    assert cfg["hardware"] == {"preset": "ideal"}
    assert cfg["algorithm"] == {"type": "analog_sgd"}
    assert cfg["training"]["schedule"] == {"type": "constant"}
    assert validate_trial_config(cfg) == cfg
    assert json.loads(json.dumps(cfg)) == cfg  # plain JSON-safe data


def test_hardware_dotted_and_nested_overrides_normalize_to_the_same_nested_form() -> None:
    dotted = validate_trial_config({"hardware": {"preset": "gokmen_vlasov", "device.dw_min": 0.002,
                                                 "forward.out_bits": 7}})
    nested = validate_trial_config({"hardware": {"preset": "gokmen_vlasov", "device": {"dw_min": 0.002},
                                                 "forward": {"out_bits": 7}}})
    assert dotted == nested
    assert nested["hardware"] == {"preset": "gokmen_vlasov", "device": {"dw_min": 0.002},
                                  "forward": {"out_bits": 7}}
    rpu = resolve_hardware(nested["hardware"])
    assert rpu.device.dw_min == 0.002 and rpu.forward.out_bits == 7
    assert validate_trial_config({"hardware": "semi_ideal"})["hardware"] == {"preset": "semi_ideal"}


def test_hardware_kind_switch_applies_before_its_fields() -> None:
    cfg = validate_trial_config({"hardware": {"preset": "ideal",
                                              "device": {"type": "ExpStepDevice", "dw_min": 0.002}}})
    rpu = resolve_hardware(cfg["hardware"])
    assert type(rpu.device).__name__ == "ExpStepDevice" and rpu.device.dw_min == 0.002


def test_compound_devices_and_their_fields_by_dotted_path() -> None:
    cfg = validate_trial_config({"hardware": {"preset": "agad_reram_es", "device.transfer_every": 2.0,
                                              "device.fast.dw_min": 0.004}})
    rpu = resolve_hardware(cfg["hardware"])
    assert type(rpu.device).__name__ == "DynamicTransferCompound"
    assert rpu.device.transfer_every == 2.0 and rpu.device.fast.dw_min == 0.004
    assert rpu.cost.tech == "rram22"
    switched = resolve_hardware({"preset": "reram_es", "device": {"type": "ChoppedTransferCompound",
                                                                  "in_chop_prob": 0.05}})
    assert type(switched.device).__name__ == "ChoppedTransferCompound"
    with pytest.raises(Exception) as info:  # the compound's own validation, under hardware.
        resolve_hardware({"preset": "agad_reram_es", "device.in_chop_prob": 0.0})
    assert "hardware.device.in_chop_prob" in str(info.value)
    with pytest.raises(SpecError) as info:  # a compound cannot train by floating-point SGD
        parse_trial_config({"hardware": "c_ttv2_ecram", "algorithm": "hwa"})
    assert info.value.path == "algorithm.type" and "update.mode" in str(info.value)


def test_hwa_and_ha_sgd_force_floating_point_updates() -> None:
    for algo in ("hwa", {"type": "ha_sgd", "samples": 2}):
        trial = parse_trial_config({"hardware": "gokmen_vlasov", "algorithm": algo})
        assert resolve_hardware(trial.hardware, trial.algorithm).update.mode == "none"
    trial = parse_trial_config({"hardware": "gokmen_vlasov"})
    assert resolve_hardware(trial.hardware, trial.algorithm).update.mode == "aggregate"


@pytest.mark.parametrize(
    ("config", "path", "fragment"),
    [
        ({"foo": 1}, "foo", "unknown section"),
        ({"training": {"lr": -1}}, "training.lr", "got -1.0"),
        ({"training": {"lr": "fast"}}, "training.lr", "accepted: a number"),
        ({"training": {"nesterov": True}}, "training.nesterov", "unknown field"),
        ({"model": {"hidden": [10, 0]}}, "model.hidden[1]", "got 0"),
        ({"model": {"keep_digital": ["fc9"]}}, "model.keep_digital[0]", "accepted: fc1, fc2, fc3"),
        ({"model": {"name": "lenet5"}}, "model.name", "at least 14×14"),
        ({"model": {"activation": "gelu"}}, "model.activation", "'relu'"),
        ({"dataset": {"name": "imagenet"}}, "dataset.name", "'mnist'"),
        ({"dataset": {"validation_fraction": 0}}, "dataset.validation_fraction", "got 0.0"),
        ({"hardware": "foo"}, "hardware.preset", "gokmen_vlasov"),
        ({"hardware": {"preset": "gokmen_vlasov", "device.dw_min": -1}}, "hardware.device.dw_min", "got -1.0"),
        ({"hardware": {"preset": "gokmen_vlasov", "device": {"dw_mi": 1}}}, "hardware.device.dw_mi", "dw_min"),
        ({"hardware": {"preset": "gokmen_vlasov", "forward.out_bits": "x"}}, "hardware.forward.out_bits",
         "an integer"),
        ({"hardware": {"preset": "gokmen_vlasov", "device.dw_min": 0.1, "device": {"dw_min": 0.2}}},
         "hardware.device.dw_min", "given twice"),
        ({"training": {"schedule": {"type": "cosine"}}}, "training.schedule.type", "one_cycle"),
        ({"training": {"schedule": {"type": "step", "gamma": 2}}}, "training.schedule.gamma", "got 2.0"),
        ({"training": {"epochs": 10, "schedule": {"type": "one_cycle", "step_epochs": 6}}},
         "training.schedule.step_epochs", "exceed epochs = 10"),
        ({"algorithm": "adam"}, "algorithm.type", "ha_sgd"),
        ({"algorithm": {"type": "ha_sgd", "samples": 0}}, "algorithm.samples", "got 0"),
        ({"algorithm": {"type": "detector_retrain", "retrain_layers": 3}}, "algorithm.retrain_layers",
         "accepted: 1 .. 2"),
        ({"evaluation": {"repeats": 0}}, "evaluation.repeats", "got 0"),
        ({"evaluation": {"drift_times_s": [1, -5]}}, "evaluation.drift_times_s[1]", "got -5.0"),
        ({"seed": -1}, "seed", "got -1"),
        ({"seed": 1.5}, "seed", "an integer"),
    ],
)
def test_invalid_values_raise_with_the_dotted_path(config: dict, path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        validate_trial_config(config)
    assert info.value.path == path
    assert fragment in str(info.value)


def test_a_non_mapping_config_is_rejected() -> None:
    with pytest.raises(SpecError, match="must be a mapping"):
        validate_trial_config([1, 2])  # type: ignore[arg-type]


def test_set_path_creates_sections_and_meets_dotted_hardware_keys() -> None:
    base = {"algorithm": "ha_sgd", "hardware": {"preset": "gokmen_vlasov", "device.dw_min": 0.001}}
    cfg = set_path(base, "hardware.device.dw_min", 0.003)
    cfg = set_path(cfg, "hardware.forward.out_bits", 6)
    cfg = set_path(cfg, "algorithm.samples", 3)
    cfg = set_path(cfg, "training.schedule.type", "step")
    assert base["hardware"] == {"preset": "gokmen_vlasov", "device.dw_min": 0.001}  # not modified
    out = validate_trial_config(cfg)
    assert out["hardware"] == {"preset": "gokmen_vlasov", "device": {"dw_min": 0.003}, "forward": {"out_bits": 6}}
    assert out["algorithm"] == {"type": "ha_sgd", "samples": 3, "std": 0.05, "mean_shift": 0.0}
    assert get_path(out, "training.schedule.type") == "step"
    assert get_path(set_path(out, "hardware.preset", "semi_ideal"), "hardware.device.dw_min") == 0.003


def test_set_path_indexes_lists_on_a_normalized_config() -> None:
    cfg = set_path(validate_trial_config({}), "model.hidden[1]", 64)
    assert validate_trial_config(cfg)["model"]["hidden"] == [256, 64]
    assert get_path(cfg, "model.hidden[0]") == 256
    with pytest.raises(SpecError) as info:
        set_path({}, "model.hidden[3]", 5)
    assert info.value.path == "model.hidden[3]"
    with pytest.raises(SpecError) as info:
        get_path(validate_trial_config({}), "training.nesterov")
    assert info.value.path == "training.nesterov"


def test_one_cycle_default_rising_phase_is_45_percent() -> None:
    trial = parse_trial_config({"training": {"epochs": 12, "schedule": {"type": "one_cycle"}}})
    assert isinstance(trial.training.schedule, OneCycleSchedule)
    assert trial.training.schedule.rising_epochs(12) == 5
    assert isinstance(parse_trial_config({"algorithm": "ha_sgd"}).algorithm, HASGDAlgorithm)


def test_layer_names_cover_every_model() -> None:
    assert arch.layer_names("fcnn", (256, 128)) == ["fc1", "fc2", "fc3"]
    assert arch.layer_names("lenet5") == ["conv1", "conv2", "fc1", "fc2"]
    assert len(arch.layer_names("vgg8")) == 8
    names = arch.layer_names("resnet18")
    # 17 convolutions + fc, plus the three 1x1 projection shortcuts of stages 2-4.
    assert len(names) == 21 and names[0] == "conv1" and names[-1] == "fc"
    assert "layer2.0.shortcut" in names and "layer1.0.shortcut" not in names


def test_config_module_does_not_load_torch() -> None:
    code = ("import sys; from dse.trial.config import validate_trial_config as v; "
            "v({'hardware': {'preset': 'gokmen_vlasov', 'device.dw_min': 0.002}}); "
            "print(sorted(m for m in ('torch', 'ray', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
