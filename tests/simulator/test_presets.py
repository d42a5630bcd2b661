"""The named presets: values from the issue and aihwkit's published device fits."""

from __future__ import annotations

import pytest

from simulator.configs import (
    ConstantStepDevice,
    ExpStepDevice,
    IdealDevice,
    IOConfig,
    LinearStepDevice,
    PCMLikeProgNoise,
    RPUConfig,
    get_preset,
    preset_names,
)
from simulator.errors import ConfigError

NAMES = ["ideal", "idealized", "gokmen_vlasov", "semi_ideal", "reram_es", "ecram", "capacitor",
         "pcm_inference", "hwa_standard", "reram_sb",
         *(f"{algo}_{family}" for family in ("reram_es", "reram_sb", "ecram")
           for algo in ("tiki_taka", "ttv2", "c_ttv2", "agad"))]


def test_preset_names_and_unknown_names() -> None:
    assert preset_names() == NAMES
    with pytest.raises(ConfigError) as info:
        get_preset("gokmen")
    assert info.value.path == "preset"
    assert "got 'gokmen'; accepted: " + ", ".join(NAMES) in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_is_a_valid_fresh_config(name: str) -> None:
    cfg = get_preset(name)
    assert isinstance(cfg, RPUConfig)
    cfg.forward.out_noise = 123.0
    assert get_preset(name).forward.out_noise != 123.0, "get_preset returns a fresh copy"


def test_gokmen_vlasov_is_the_issue_specification() -> None:
    cfg = get_preset("gokmen_vlasov")
    dev = cfg.device
    assert isinstance(dev, ConstantStepDevice)
    assert (dev.dw_min, dev.dw_min_dtod, dev.dw_min_std, dev.w_max, dev.w_min) == (0.0016, 0.3, 0.3, 1.0, -1.0)
    for io in (cfg.forward, cfg.backward):
        assert (io.inp_bits, io.out_bits, io.out_noise, io.out_bound) == (7, 9, 0.1, 20.0)
        assert io.noise_management == "abs_max"
    assert cfg.forward.bound_management == "iterative"
    assert cfg.backward.bound_management == "none", "aihwkit: bound management is forward-only"
    assert cfg.update.desired_bl == 31 and cfg.update.update_management and cfg.update.update_bl_management
    assert cfg.is_pulsed


def test_semi_ideal_is_gokmen_vlasov_without_cycle_to_cycle_variation() -> None:
    gv, semi = get_preset("gokmen_vlasov"), get_preset("semi_ideal")
    assert semi.device.dw_min_std == 0.0
    assert semi.with_overrides({"device.dw_min_std": 0.3}) == gv


def test_idealized_device() -> None:
    dev = get_preset("idealized").device
    assert isinstance(dev, ConstantStepDevice)
    assert (dev.dw_min, dev.up_down_dtod, dev.w_max) == (0.0002, 0.0, 1.0)


def test_published_device_fits() -> None:
    reram = get_preset("reram_es").device
    assert isinstance(reram, ExpStepDevice)
    assert (reram.dw_min, reram.up_down, reram.A_up, reram.A_down) == (0.00135, 0.259359, -1.18445, -0.081404)
    assert (reram.a, reram.b, reram.gamma_up, reram.gamma_down) == (-0.5, -0.5, 5.0, 5.0)
    assert (reram.dw_min_std, reram.write_noise_std) == (5.0, 75.0)
    ecram = get_preset("ecram").device
    assert isinstance(ecram, LinearStepDevice)
    assert (ecram.w_max, ecram.w_min, ecram.gamma_up, ecram.gamma_down) == (1.1724, -0.8276, 0.1153, 0.5085)
    assert ecram.mult_noise and ecram.mean_bound_reference
    cap = get_preset("capacitor").device
    assert isinstance(cap, LinearStepDevice)
    assert (cap.dw_min, cap.gamma_up, cap.up_down_dtod, cap.mult_noise) == (0.005, 0.05, 0.06, False)


def test_inference_presets() -> None:
    pcm = get_preset("pcm_inference")
    assert pcm.forward == IOConfig(), "aihwkit's default forward periphery"
    assert pcm.backward.is_perfect and pcm.update.mode == "none" and isinstance(pcm.device, IdealDevice)
    assert isinstance(pcm.noise.programming, PCMLikeProgNoise)
    assert (pcm.noise.drift.model, pcm.noise.read_noise.model, pcm.noise.compensation) == ("pcm", "pcm", "global")
    assert (pcm.noise.g_max, pcm.noise.t0) == (25.0, 20.0)
    hwa = get_preset("hwa_standard")
    fwd = hwa.forward
    assert (fwd.inp_bits, fwd.out_bits, fwd.out_noise, fwd.out_bound) == (8, 8, 0.04, 10.0)
    assert (fwd.w_noise, fwd.w_noise_type, fwd.bound_management) == (0.0175, "pcm_read", "none")
    assert hwa.mapping.weight_scaling_omega == 1.0 and hwa.mapping.weight_scaling_columnwise
    assert hwa.modifier.active and not hwa.is_pulsed
    ideal = get_preset("ideal")
    assert ideal.is_ideal and not ideal.is_pulsed


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_preset_learns_the_digits(name: str) -> None:
    from simulator.demo import train_preset

    if name == "reram_es":
        # aihwkit's ReRAM fit has write noise of 75 dw_min = 0.1 on every read after an update
        # (and cycle-to-cycle noise of 5 steps): plain SGD learns little on this small network,
        # and how little varies from seed to seed (0.07 to 0.38 over 40 seeds, mean 0.18, std
        # 0.07), so one seed says nothing. The mean of 16 seeds has a standard error of
        # 0.07 / 4 = 0.018: 0.13 is 3 of them below the expected 0.18, while at chance (0.1 +-
        # 0.016 per run on the 360 test images, 0.004 for the mean of 16) it is 7.5 above.
        accuracies = [train_preset(name, epochs=5, seed=seed)["accuracy"] for seed in range(16)]
        assert sum(accuracies) / len(accuracies) > 0.13
        return
    # 10 classes: the digital network reaches 0.95 here and these presets 0.9 with 5 epochs;
    # 0.8 leaves room for seed-to-seed variation of the noisier devices.
    assert train_preset(name, epochs=5, seed=0)["accuracy"] > 0.8
