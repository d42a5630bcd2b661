"""The cost of in-situ pulsed training: pulses fired x energy per pulse, lines, MVMs, time."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simulator import AnalogSGD, convert_to_analog, get_preset
from simulator.cost import PulseLog, training_cost
from simulator.cost.technology import load_technology


def _train(model: nn.Module, epochs: int, steps: int = 5) -> PulseLog:
    opt = AnalogSGD(model.parameters(), lr=0.1)
    log = PulseLog(model)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for _ in range(steps):
            x = torch.rand(16, 12, generator=g)
            y = torch.randint(0, 4, (16,), generator=g)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        log.end_epoch(16 * steps)
    return log


def _model(preset: str, **overrides: object) -> nn.Module:
    rpu = get_preset(preset).with_overrides(dict(overrides))
    return convert_to_analog(nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4)), rpu, seed=1)


def test_pulses_are_priced_at_the_technology_energy_per_pulse() -> None:
    model = _model("gokmen_vlasov", **{"cost.c_wire": 0.0, "cost.c_gate_cell": 0.0, "cost.c_drain_cell": 0.0})
    log = _train(model, epochs=2)
    cost = training_cost(model, (12,), log)
    assert cost is not None and len(cost.epochs) == 2
    e_pulse = load_technology("rram22")["e_pulse"]
    for epoch in cost.epochs:
        assert epoch["device_pulses"] > 0
        assert epoch["line_energy_mj"] == 0.0  # no line capacitance
        assert epoch["pulse_energy_mj"] == pytest.approx(epoch["device_pulses"] * e_pulse / 1e9)
        parts = epoch["pulse_energy_mj"] + epoch["forward_energy_mj"] + epoch["backward_energy_mj"]
        assert epoch["energy_mj"] == pytest.approx(parts)
        assert epoch["forward_energy_mj"] > 0 and epoch["backward_energy_mj"] > 0
    assert cost.train_energy_mj == pytest.approx(sum(e["energy_mj"] for e in cost.epochs))
    t_pulse_s = load_technology("rram22")["t_pulse"] * 1e-9
    slots = sum(layer["slots"] for layer in cost.layers)
    assert cost.update_time_s == pytest.approx(slots * t_pulse_s)  # one tile per layer


def test_a_faster_and_cheaper_device_trains_for_less() -> None:
    reram = _model("gokmen_vlasov")
    ecram = _model("gokmen_vlasov", **{"cost.tech": "ecram22"})
    ecram.load_state_dict(reram.state_dict())
    a = training_cost(reram, (12,), _train(reram, 1))
    b = training_cost(ecram, (12,), _train(ecram, 1))
    assert b.epochs[0]["pulse_energy_mj"] < a.epochs[0]["pulse_energy_mj"] / 100
    assert b.update_time_s < a.update_time_s


def test_floating_point_training_has_no_in_situ_cost() -> None:
    model = _model("hwa_standard")
    assert training_cost(model, (12,), _train(model, 1)) is None


def test_compound_devices_price_the_pulses_of_both_devices() -> None:
    # AGAD with a short chopper period (n_s = 2 sweeps) writes into C within the run
    model = _model("agad_ecram", **{"device.in_chop_prob": 0.5, "device.fast_lr": 1.0,
                                    "cost.c_wire": 0.0, "cost.c_gate_cell": 0.0, "cost.c_drain_cell": 0.0})
    log = _train(model, epochs=2, steps=10)
    cost = training_cost(model, (12,), log)
    assert cost is not None
    tiles = [t.updater for layer in (model[0], model[2]) for t in layer.array.tiles]
    fast = sum(u.fast.counter.totals()["device_pulses"] for u in tiles)
    slow = sum(u.slow.counter.totals()["device_pulses"] for u in tiles)
    assert slow > 0, "the transfer writes into C fired pulses"
    e_pulse = load_technology("ecram22")["e_pulse"]
    assert sum(e["device_pulses"] for e in cost.epochs) == pytest.approx(fast + slow)
    assert sum(e["pulse_energy_mj"] for e in cost.epochs) == pytest.approx((fast + slow) * e_pulse / 1e9)


def _compound(preset: str, layers: int = 2) -> nn.Module:
    rpu = get_preset(preset).with_overrides({"device.transfer_every": 1.0, "device.units_in_mbatch": False})
    net = [nn.Linear(12, 8)] if layers == 1 else [nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4)]
    return convert_to_analog(nn.Sequential(*net), rpu, seed=1)


def test_transfer_reads_are_counted_and_priced() -> None:
    # one transfer of one column per update vector: the reads of an epoch are its vectors, per layer
    model = _compound("c_ttv2_reram_es")
    log = _train(model, epochs=2)
    cost = training_cost(model, (12,), log)
    assert cost is not None
    for epoch in cost.epochs:
        assert epoch["transfer_reads"] == 2 * epoch["samples"]  # two layers, one tile each
        assert epoch["transfer_energy_mj"] > 0 and epoch["transfer_time_s"] > 0
        parts = (epoch["pulse_energy_mj"] + epoch["line_energy_mj"] + epoch["transfer_energy_mj"]
                 + epoch["forward_energy_mj"] + epoch["backward_energy_mj"])
        assert epoch["energy_mj"] == pytest.approx(parts)
    assert [layer["transfer_reads"] for layer in cost.layers] == [160.0, 160.0]
    assert cost.transfer_time_s == pytest.approx(sum(e["transfer_time_s"] for e in cost.epochs))
    # equal epochs, equal reads: the same transfer energy (it depends on the reads, not the weights)
    assert cost.epochs[0]["transfer_energy_mj"] == pytest.approx(cost.epochs[1]["transfer_energy_mj"])


def test_the_buffer_of_the_buffered_kinds_is_priced_per_element_read() -> None:
    # Tiki-Taka v1 writes what it reads; c-TTv2 accumulates each read (8 values: the layer's
    # outputs) into its digital buffer first: one add and a word read and written per value
    tech = load_technology("rram22")
    per_value = tech["e_digital_add"] + 2 * int(tech["act_bits"]) * tech["e_buffer_bit"]
    energies = {}
    for preset in ("tiki_taka_reram_es", "c_ttv2_reram_es"):
        model = _compound(preset, layers=1)
        cost = training_cost(model, (12,), _train(model, epochs=1))
        epoch = cost.epochs[0]
        assert epoch["transfer_reads"] == epoch["samples"]
        energies[preset] = epoch["transfer_energy_mj"] / epoch["transfer_reads"] / tech["post_layout_factor"] * 1e9
    assert energies["c_ttv2_reram_es"] - energies["tiki_taka_reram_es"] == pytest.approx(8 * per_value)
    assert energies["tiki_taka_reram_es"] > 0  # the read MVM itself


def test_single_devices_have_no_transfers() -> None:
    model = _model("gokmen_vlasov")
    cost = training_cost(model, (12,), _train(model, epochs=1))
    assert cost.transfer_time_s == 0.0
    assert cost.epochs[0]["transfer_reads"] == 0.0 and cost.epochs[0]["transfer_energy_mj"] == 0.0
