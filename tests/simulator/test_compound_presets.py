"""Compound device configs and the Tiki-Taka family presets (aihwkit 1.2.0 names and values)."""

from __future__ import annotations

import pytest
import torch

from simulator.configs import (
    ChoppedTransferCompound,
    ConstantStepDevice,
    DynamicTransferCompound,
    ExpStepDevice,
    LinearStepDevice,
    RPUConfig,
    SoftBoundsReferenceDevice,
    TransferCompound,
    get_preset,
)
from simulator.errors import ConfigError
from simulator.layers import AnalogConv2d, AnalogLinear
from simulator.optim import AnalogSGD
from simulator.pulsed import TransferUpdater

FAMILIES = {"reram_es": (ExpStepDevice, "rram22"), "reram_sb": (SoftBoundsReferenceDevice, "rram22"),
            "ecram": (LinearStepDevice, "ecram22")}
ALGOS = {"tiki_taka": TransferCompound, "ttv2": ChoppedTransferCompound,
         "c_ttv2": ChoppedTransferCompound, "agad": DynamicTransferCompound}


def test_aihwkit_defaults() -> None:
    tt, ch, dyn = TransferCompound(), ChoppedTransferCompound(), DynamicTransferCompound()
    assert (tt.fast_lr, tt.scale_fast_lr, tt.units_in_mbatch, tt.transfer_update.desired_bl) == (1.0, True, True, 31)
    assert (ch.fast_lr, ch.scale_fast_lr, ch.units_in_mbatch, ch.in_chop_prob, ch.in_chop_random) == (
        1.0, False, False, 0.1, True)
    assert (ch.transfer_update.desired_bl, ch.transfer_update.update_management) == (1, False)
    assert (dyn.in_chop_random, dyn.tail_weightening, dyn.buffer_cap, dyn.momentum) == (False, 5.0, 0.0, 0.0)
    assert tt.gammas() == (0.0, 1.0) and tt.fully_hidden()
    assert TransferCompound(gamma_vec=(0.5, 2.0)).gammas() == (0.5, 2.0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("algo", ALGOS)
def test_family_presets(family: str, algo: str) -> None:
    cfg = get_preset(f"{algo}_{family}")
    device_type, tech = FAMILIES[family]
    assert type(cfg.device) is ALGOS[algo]
    assert type(cfg.device.fast) is device_type and cfg.device.fast == cfg.device.slow
    assert cfg.cost.tech == tech
    assert cfg.device.transfer_forward.noise_management == "none"
    assert cfg.device.transfer_forward.bound_management == "none"
    assert cfg.device.transfer_forward.out_bound == 20.0 and cfg.device.transfer_forward.out_noise == 0.1
    if family == "reram_sb":
        assert cfg.device.fast.subtract_symmetry_point
    if algo == "tiki_taka":
        assert cfg.device.units_in_mbatch and cfg.device.transfer_update.desired_bl == 31
    else:
        assert cfg.device.auto_scale and not cfg.device.units_in_mbatch
        assert cfg.device.transfer_update.desired_bl == 1
    assert cfg.is_pulsed


def test_preset_values_of_the_spec_table() -> None:
    ttv2, cttv2, agad = (get_preset(f"{a}_reram_es").device for a in ("ttv2", "c_ttv2", "agad"))
    assert (ttv2.in_chop_prob, ttv2.fast_lr, ttv2.auto_granularity) == (0.0, 0.5, 1000.0)
    assert (cttv2.in_chop_prob, cttv2.in_chop_random, cttv2.fast_lr) == (0.01, True, 0.5)
    assert (agad.in_chop_prob, agad.in_chop_random, agad.tail_weightening, agad.fast_lr) == (0.02, False, 5.0, 0.5)
    ecram = get_preset("agad_ecram")
    assert (ecram.device.in_chop_prob, ecram.device.tail_weightening, ecram.device.auto_granularity,
            ecram.update.desired_bl) == (0.005, 50.0, 750.0, 31)
    assert get_preset("ttv2_ecram").update.desired_bl == 100
    assert get_preset("c_ttv2_ecram").device.fast_lr == 1.0


def test_dotted_paths_reach_every_field() -> None:
    cfg = get_preset("agad_reram_es").with_overrides({
        "device.transfer_every": 2.0, "device.fast.dw_min": 0.01, "device.slow.type": "ConstantStepDevice",
        "device.transfer_forward.out_bits": 7})
    assert cfg.device.transfer_every == 2.0 and cfg.device.fast.dw_min == 0.01
    assert type(cfg.device.slow) is ConstantStepDevice and cfg.device.transfer_forward.out_bits == 7
    switched = get_preset("reram_es").with_overrides({"device.type": "ChoppedTransferCompound",
                                                      "device.in_chop_prob": 0.05})
    assert type(switched.device) is ChoppedTransferCompound and switched.device.in_chop_prob == 0.05
    round_trip = RPUConfig.from_dict(cfg.to_dict())
    assert round_trip == cfg


@pytest.mark.parametrize("overrides,path", [
    ({"device.type": "ChoppedTransferCompound", "device.n_reads_per_transfer": 2}, "device.n_reads_per_transfer"),
    ({"device.type": "DynamicTransferCompound", "device.in_chop_prob": 0.0}, "device.in_chop_prob"),
    ({"device.type": "DynamicTransferCompound", "device.auto_momentum": 1.0}, "device.auto_momentum"),
    ({"device.type": "TransferCompound", "device.gamma_vec": [0.5, 0.0]}, "device.gamma_vec"),
    ({"device.type": "TransferCompound", "device.fast.type": "IdealDevice"}, "device.fast.type"),
    ({"device.type": "TransferCompound", "device.fast.type": "TransferCompound"}, "device.fast.type"),
    ({"device.type": "TransferCompound", "update.mode": "none"}, "update.mode"),
])
def test_invalid_compounds_name_the_field(overrides: dict, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_preset("gokmen_vlasov").with_overrides(overrides)
    assert info.value.path == path
    assert "accepted" in str(info.value)


@pytest.mark.parametrize("mode", ["exact", "aggregate"])
def test_compound_layers_train_with_tiles_and_convolutions(mode: str) -> None:
    rpu = get_preset("c_ttv2_reram_sb").with_overrides({"update.mode": mode, "mapping.max_input_size": 8,
                                                     "device.auto_granularity": 0.0})  # writes at once
    torch.manual_seed(0)
    lin = AnalogLinear(20, 4, rpu_config=rpu)
    conv = AnalogConv2d(1, 2, 3, rpu_config=rpu)
    assert lin.n_tiles == 3 and all(isinstance(t.updater, TransferUpdater) for t in lin.array.tiles)
    opt = AnalogSGD([*lin.parameters(), *conv.parameters()], lr=0.1)
    w0 = lin.get_weights()[0].clone()
    c0 = conv.get_weights()[0].clone()
    for _ in range(3):
        opt.zero_grad()
        (lin(torch.randn(8, 20)).pow(2).sum() + conv(torch.randn(2, 1, 6, 6)).pow(2).sum()).backward()
        opt.step()
    assert not torch.equal(w0, lin.get_weights()[0])
    assert not torch.equal(c0, conv.get_weights()[0])
    totals = lin.array.pulse_totals()
    assert totals["device_pulses"] > 0 and totals["vectors"] > 0
    # a conv layer's vectors are its patches: 2 images x 16 positions per step, one read each
    tile = conv.array.tiles[0].updater
    assert tile.transfers == 3 * 2 * 16


def test_pulse_counts_include_the_transfer_writes() -> None:
    rpu = get_preset("agad_ecram").with_overrides({"device.in_chop_prob": 0.5, "device.fast_lr": 1.0})
    lin = AnalogLinear(4, 3, bias=False, rpu_config=rpu)
    upd = lin.array.tiles[0].updater
    opt = AnalogSGD(lin.parameters(), lr=0.5)
    for _ in range(30):
        opt.zero_grad()
        lin(torch.randn(16, 4)).pow(2).sum().backward()
        opt.step()
    fast, slow = upd.fast.counter.totals(), upd.slow.counter.totals()
    assert slow["device_pulses"] > 0, "AGAD wrote into C after its warm-up"
    total = lin.array.pulse_totals()
    assert total["device_pulses"] == pytest.approx(fast["device_pulses"] + slow["device_pulses"])
