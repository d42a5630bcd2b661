"""RPUConfig and its IO / noise / mapping / modifier parts: round trip, dotted paths, errors."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from simulator._config import field_docs
from simulator.configs import (
    AdditiveProgNoise,
    DriftConfig,
    IOConfig,
    MappingConfig,
    ModifierConfig,
    NoiseConfig,
    PCMLikeProgNoise,
    ReadNoiseConfig,
    RelativeProgNoise,
    RPUConfig,
    get_preset,
    preset_names,
    snr_db_to_std,
)
from simulator.errors import ConfigError

OWN_CONFIGS = [IOConfig, MappingConfig, ModifierConfig, NoiseConfig, DriftConfig, ReadNoiseConfig,
               RelativeProgNoise, AdditiveProgNoise, PCMLikeProgNoise, RPUConfig]


@pytest.mark.parametrize("cls", OWN_CONFIGS, ids=lambda c: c.__name__)
def test_every_field_has_a_docstring(cls: type) -> None:
    docs = field_docs(cls)
    missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
    assert missing == []


@pytest.mark.parametrize("name", preset_names())
def test_presets_round_trip_through_json(name: str) -> None:
    cfg = get_preset(name)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert RPUConfig.from_dict(data) == cfg


def test_a_fully_customised_config_round_trips() -> None:
    cfg = RPUConfig(
        forward=IOConfig(inp_bits=None, out_bits=6, out_bound=8.0, snr_db=24.0,
                         noise_management="max", bound_management="none"),
        noise=NoiseConfig(programming=PCMLikeProgNoise(coeffs=(0.1, 0.2)),
                          drift=DriftConfig(model="gaussian", nu_mean=0.03, nu_std=0.01),
                          read_noise=ReadNoiseConfig(model="pcm"), compensation="none"),
        mapping=MappingConfig(max_input_size=0, digital_bias=False, bias_scale=None),
        modifier=ModifierConfig(noise_type="mult_normal", std_dev=0.05),
    )
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["noise"]["programming"] == {"type": "PCMLikeProgNoise", "coeffs": [0.1, 0.2],
                                            "coeff_g_max_reference": 25.0, "scale": 1.0}
    assert RPUConfig.from_dict(data) == cfg


def test_dotted_paths_reach_every_part() -> None:
    base = get_preset("gokmen_vlasov")
    cfg = base.with_overrides({
        "forward.out_bits": 7,
        "backward.inp_bits": 5,
        "device.dw_min": 0.002,
        "update.desired_bl": 15,
        "noise.programming.type": "RelativeProgNoise",
        "noise.programming.alpha": 0.3,
        "noise.drift.model": "gaussian",
        "mapping.max_input_size": 256,
        "modifier.noise_type": "add_normal",
        "modifier.std_dev": 0.02,
    })
    assert cfg.forward.out_bits == 7 and cfg.backward.inp_bits == 5
    assert cfg.device.dw_min == 0.002 and cfg.update.desired_bl == 15
    assert cfg.noise.programming == RelativeProgNoise(alpha=0.3)
    assert cfg.noise.drift.model == "gaussian" and cfg.mapping.max_input_size == 256
    assert cfg.modifier.active and cfg.get_path("modifier.std_dev") == 0.02
    assert base == get_preset("gokmen_vlasov"), "overrides return a copy"


def test_snr_sets_the_output_noise_std() -> None:
    # paper 000 eq. (2): gamma = 1 / sigma**2, in dB: sigma = 10 ** (-snr / 20)
    for snr in (6.0, 18.0, 34.0):
        io = IOConfig(snr_db=snr)
        assert io.effective_out_noise == pytest.approx(math.sqrt(1.0 / 10 ** (snr / 10)), rel=1e-12)
        assert io.effective_out_noise == snr_db_to_std(snr)
        assert io.effective_w_noise_type == "none", "the SNR is not weight noise"
    assert IOConfig(out_noise=0.07).effective_out_noise == 0.07
    assert IOConfig(w_noise=0.0).effective_w_noise_type == "none"
    assert IOConfig(w_noise=0.02, w_noise_type="additive_constant").effective_w_noise == 0.02
    with pytest.raises(ConfigError, match="w_noise: got 0.02 with w_noise_type = 'none'"):
        IOConfig(w_noise=0.02)  # aihwkit's default type reads no noise: say so instead of ignoring it


def test_dac_and_adc_steps_follow_aihwkit_resolution() -> None:
    io = IOConfig(inp_bits=7, inp_bound=1.0, out_bits=9, out_bound=20.0)
    assert io.inp_step == pytest.approx(2.0 / 126)  # aihwkit inp_res = 1 / (2**7 - 2) of 2*bound
    assert io.out_step == pytest.approx(40.0 / 510)
    assert IOConfig(inp_bits=None).inp_step is None


@pytest.mark.parametrize(
    ("overrides", "path", "fragment"),
    [
        ({"forward.inp_bits": 1}, "forward.inp_bits", "[2, 24]"),
        ({"forward.out_bits": 30}, "forward.out_bits", "[2, 24]"),
        ({"forward.out_bound": 0.0}, "forward.out_bound", "(0.0, inf)"),
        ({"forward.out_bound": None}, "forward.out_bits", "finite out_bound"),
        ({"forward.out_noise": -0.1}, "forward.out_noise", "[0.0, inf)"),
        ({"forward.noise_management": "average"}, "forward.noise_management", "'abs_max'"),
        ({"forward.bound_management": "shift"}, "forward.bound_management", "'iterative'"),
        ({"forward.snr_db": math.nan}, "forward.snr_db", "[-100.0, 200.0]"),
        ({"backward.bound_management": "iterative"}, "backward.bound_management", "forward pass only"),
        ({"mapping.max_input_size": -1}, "mapping.max_input_size", "a number >= 0"),
        ({"mapping.weight_scaling_omega": 1.0}, "mapping.weight_scaling_omega", "update.mode = 'none'"),
        ({"mapping.bias_scale": 0.0}, "mapping.bias_scale", "(0.0, inf)"),
        ({"noise.programming.type": "Gaussian"}, "noise.programming.type", "RelativeProgNoise"),
        ({"noise.programming.alpha": -1.0}, "noise.programming.alpha", "unknown field"),
        ({"noise.drift.model": "log"}, "noise.drift.model", "'gaussian'"),
        ({"noise.drift.nu_mean": 2.0}, "noise.drift.nu_mean", "[0.0, 1.0]"),
        ({"noise.t0": 0.0}, "noise.t0", "(0.0, inf)"),
        ({"noise.compensation": "column"}, "noise.compensation", "'global'"),
        ({"modifier.noise_type": "poly"}, "modifier.noise_type", "'add_normal'"),
        ({"modifier.std_dev": -0.1}, "modifier.std_dev", "[0.0, inf)"),
    ],
)
def test_bad_values_name_the_path_the_value_and_what_is_accepted(overrides: dict, path: str,
                                                                  fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_preset("gokmen_vlasov").with_overrides(overrides)
    assert info.value.path == path
    assert fragment in str(info.value)


def test_programming_noise_fields_are_validated_per_kind() -> None:
    with pytest.raises(ConfigError, match=r"^noise\.programming\.alpha: got -0\.5"):
        RPUConfig.from_dict({"noise": {"programming": {"type": "RelativeProgNoise", "alpha": -0.5}}})
    with pytest.raises(ConfigError, match=r"^coeffs: got an empty list"):
        PCMLikeProgNoise(coeffs=())
    with pytest.raises(ConfigError, match=r"^mean_shift: got 2\.0; accepted: a number in \[-1\.0, 1\.0\]"):
        AdditiveProgNoise(mean_shift=2.0)


def test_derived_flags() -> None:
    assert get_preset("ideal").is_ideal and not get_preset("ideal").is_pulsed
    assert get_preset("gokmen_vlasov").is_pulsed
    assert not get_preset("hwa_standard").is_pulsed and not get_preset("hwa_standard").is_ideal
    assert not get_preset("ideal").with_overrides({"forward.is_perfect": False}).is_ideal
    assert not NoiseConfig(drift=DriftConfig(model="pcm")).is_ideal
    assert ModifierConfig(noise_type="add_normal", std_dev=0.0).active is False
