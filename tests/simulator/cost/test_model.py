"""The cost equations on layers small enough to price by hand, and the measured activity."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from simulator import AnalogConv2d, AnalogLinear, convert_to_analog, get_preset
from simulator.configs import IOConfig, RPUConfig, perfect_io
from simulator.cost import estimate_cost, measure_activity
from simulator.cost import trace_model as trace
from simulator.cost.adc import isaac_ratio

# A technology whose every term is easy to follow: table ADC of 1 pJ at 8 bits, one ADC per
# column, a multi-bit DAC of 0.01 pJ per bit-doubling, no line capacitance, 0.001 pJ per cell.
PLAIN = {
    "cost.adc_model": "isaac_table", "cost.e_adc_ref": 1.0, "cost.adc_energy_scale": 1.0, "cost.adc_rate": 1.0,
    "cost.cols_per_adc": 1, "cost.dac_bits": 0, "cost.differential": False, "cost.weight_bits": 0,
    "cost.e_dac_1b": 0.01, "cost.c_wire": 0.0, "cost.c_gate_cell": 0.0, "cost.c_drain_cell": 0.0,
    "cost.e_cell_read": 0.001, "cost.e_buffer_bit": 0.0, "cost.e_noc_bit": 0.0, "cost.e_digital_add": 0.0,
    "cost.e_shift_add": 0.0, "cost.e_col_mux": 0.0, "cost.t_read": 10.0, "cost.sample_hold": False,
    "cost.p_static_chip": 0.0, "cost.e_compare": 0.0, "cost.e_digital_mult": 0.0,
}


def plain_rpu(**overrides: object) -> RPUConfig:
    fwd = IOConfig(inp_bits=3, out_bits=4, out_bound=100.0, out_noise=0.0, noise_management="none",
                   bound_management="none")
    return RPUConfig(forward=fwd, backward=perfect_io()).with_overrides(
        {"update.mode": "none", **PLAIN, **overrides})


def test_one_array_is_priced_by_the_equations() -> None:
    layer = AnalogLinear(4, 3, bias=False, rpu_config=plain_rpu())
    x = torch.tensor([[1.0, 1 / 3, 0.0, 2 / 3]])  # DAC codes 3, 1, 0, 2 of 3 (3 bits: step 1/3)
    with measure_activity(layer) as meter:
        layer(x)
    act = meter.result()[""]
    assert act.level == [pytest.approx(6 / 12)]            # (3 + 1 + 0 + 2) / (4 rows x 3)
    assert act.zero_fraction == [pytest.approx(0.25)]
    assert act.bit_density == act.level  # a multi-bit DAC: bits are not counted
    report = estimate_cost(layer, (4,), meter.result())
    (lc,) = report.layers
    assert lc.conversions == 3 and lc.input_cycles == 1 and lc.adc_bits == 4
    assert lc.energy_pj["adc"] == pytest.approx(3 * isaac_ratio(4)[0])
    assert lc.energy_pj["dac"] == pytest.approx(4 * 0.75 * 0.01 * 2 ** 2)   # driven rows x e_dac(3 bits)
    assert lc.energy_pj["array"] == pytest.approx(4 * 0.5 * 3 * 0.001)      # rows x level x cols x e_cell
    assert lc.latency_ns == pytest.approx(10.0 + 1.0)                       # t_read + one conversion
    assert report.ops_per_inference == 2 * 12
    assert report.energy_per_inference_nj == pytest.approx(sum(lc.energy_pj.values()) / 1e3)
    assert report.tops_per_w == pytest.approx(report.ops_per_inference / (report.energy_per_inference_nj * 1e3))


def test_bit_serial_inputs_convert_once_per_bit_and_add_the_shifts() -> None:
    rpu = plain_rpu(**{"cost.dac_bits": 1, "cost.e_shift_add": 0.5})
    layer = AnalogLinear(4, 3, bias=False, rpu_config=rpu)
    with measure_activity(layer) as meter:
        layer(torch.tensor([[1.0, 1 / 3, 0.0, 2 / 3]]))
    assert meter.result()[""].bit_density == [pytest.approx(4 / 12)]  # popcounts 2 + 1 + 0 + 1 over 4 x 3 bits
    (lc,) = estimate_cost(layer, (4,), meter.result()).layers
    assert lc.input_cycles == 3 and lc.conversions == 9
    assert lc.energy_pj["dac"] == pytest.approx(4 * (4 / 12) * 3 * 0.01)   # rows x bit density x cycles
    assert lc.energy_pj["shift_add"] == pytest.approx(9 * 0.5)
    assert lc.latency_ns == pytest.approx(3 * 11.0)


def test_row_groups_slices_and_pairs_multiply_conversions_and_columns() -> None:
    rpu = plain_rpu(**{"cost.rows_parallel": 2, "cost.weight_bits": 4, "cost.cell_bits": 2,
                       "cost.differential": True, "cost.a_cell": 0.5})
    layer = AnalogLinear(4, 3, bias=False, rpu_config=rpu)
    (lc,) = estimate_cost(layer, (4,)).layers
    assert lc.row_groups == 2 and lc.weight_slices == 2
    assert lc.conversions == 1 * 2 * 3 * 2            # cycles x groups x outputs x slices
    assert lc.array_cols == 3 * 2 * 2                 # outputs x slices x pair
    assert lc.area_um2["array"] == pytest.approx(4 * 12 * 0.5)  # rows x physical columns x a_cell


def test_signed_inputs_count_their_sign_bit_and_an_ideal_forward_is_coded_at_the_priced_bits() -> None:
    layer = AnalogLinear(4, 3, bias=False, rpu_config=plain_rpu(**{"cost.dac_bits": 1}))
    with measure_activity(layer) as meter:
        layer(torch.tensor([[-1.0, 1 / 3, 0.0, -2 / 3]]))  # codes -3, 1, 0, -2
    assert meter.result()[""].bit_density == [pytest.approx((2 + 1 + 0 + 1 + 2) / 12)]
    ideal = convert_to_analog(nn.Sequential(nn.Linear(4, 3)), get_preset("ideal"))
    with measure_activity(ideal) as meter:
        ideal(torch.tensor([[1.0, 0.5, 0.0, 0.25]]))
    act = meter.result()["0"]  # abs-max scaled, 8 bits: codes 127, 64 (63.5 rounds to even), 0, 32
    assert act.zero_fraction == [pytest.approx(0.25)]
    assert act.level == [pytest.approx((127 + 64 + 0 + 32) / (4 * 127))]


def test_an_ideal_periphery_is_priced_with_a_lossless_adc_and_says_so() -> None:
    layer = convert_to_analog(nn.Sequential(nn.Linear(128, 10)), get_preset("ideal"))
    report = estimate_cost(layer, (128,))
    (lc,) = report.layers
    # log2(128 rows) + 8 input bits per cycle + 8 bits of an analog weight (act_bits) - 1
    assert lc.adc_bits == 7 + 8 + 8 - 1 and lc.input_bits == 8
    assert any("lossless" in n for n in report.notes)


def test_a_convolution_makes_one_mvm_per_output_position() -> None:
    model = nn.Sequential(AnalogConv2d(1, 2, 3, padding=1, rpu_config=plain_rpu()),
                          AnalogConv2d(2, 2, 3, stride=2, rpu_config=plain_rpu()), nn.ReLU())
    tr = trace(model, (1, 5, 5))
    assert [lt.vectors for lt in tr.layers] == [25, 4]
    assert [lt.macs for lt in tr.layers] == [25 * 9 * 2, 4 * 18 * 2]
    assert tr.ops.compares == 2 * 2 * 2  # the ReLU on the second layer's 2 x 2 x 2 outputs


def test_split_layers_add_their_partial_sums_digitally() -> None:
    rpu = plain_rpu(**{"mapping.max_input_size": 2, "cost.e_accum_add": 0.25})
    layer = AnalogLinear(4, 3, bias=False, rpu_config=rpu)
    (lc,) = estimate_cost(layer, (4,)).layers
    assert lc.arrays == 2
    assert lc.energy_pj["accumulate"] == pytest.approx(1 * 3 * 0.25)   # (row tiles - 1) x outputs


def test_bound_management_repeats_are_measured_and_priced() -> None:
    fwd = IOConfig(inp_bits=7, out_bits=6, out_bound=1.0, out_noise=0.0, noise_management="abs_max",
                   bound_management="iterative")
    rpu = RPUConfig(forward=fwd, backward=perfect_io()).with_overrides({"update.mode": "none", **PLAIN})
    layer = AnalogLinear(16, 4, bias=False, rpu_config=rpu, init_weights=False)
    layer.set_weights(torch.ones(4, 16))  # every output is the sum of 16 inputs: clips at bound 1
    with measure_activity(layer) as meter:
        layer(torch.rand(10, 16) + 0.5)
    act = meter.result()[""]
    assert act.bm_repeats[0] >= 4  # 16 inputs near the maximum need the input halved 4-5 times
    static = estimate_cost(layer, (16,)).layers[0]
    measured = estimate_cost(layer, (16,), meter.result()).layers[0]
    assert measured.conversions == pytest.approx(static.conversions * (1 + act.bm_repeats[0]))


def test_layers_kept_digital_are_priced_as_digital_macs() -> None:
    net = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
    model = convert_to_analog(net, plain_rpu(**{"cost.e_digital_mac": 0.5}), keep_digital=["2"])
    report = estimate_cost(model, (8,))
    digital = report.layers[1]
    assert not digital.analog and digital.energy_pj["digital"] == pytest.approx(12 * 0.5)
    assert report.ops_per_inference == 2 * (48 + 12)


def test_one_isaac_tile_draws_its_table_one_power() -> None:
    # 12 IMAs x 8 arrays of 128 x 128 2-bit cells at 16-bit inputs: 330 mW per tile (Table I),
    # plus the chip's 10.4 W HyperTransport.
    rpu = RPUConfig(forward=IOConfig(inp_bits=16, out_bits=8, out_bound=1.0, out_noise=0.0,
                                     noise_management="none", bound_management="none"),
                    backward=perfect_io()).with_overrides(
        {"update.mode": "none", "mapping.max_input_size": 128, "mapping.max_output_size": 16,
         "cost.tech": "isaac32"})
    layer = AnalogLinear(6 * 128, 16 * 16, bias=False, rpu_config=rpu, init_weights=False)
    report = estimate_cost(layer, (768,))
    assert (report.arrays, report.cores, report.tiles) == (96, 12, 1)
    assert report.pipeline_interval_us == pytest.approx(1.6)
    tile_w = report.power_w - 10.4
    assert tile_w == pytest.approx(0.330, rel=0.002)
    assert report.energy_nj["adc"] / (report.energy_per_inference_nj - 10.4 * 1.6e3) == pytest.approx(
        192 / 330, abs=0.01)


def test_weights_and_inputs_are_restored_after_the_trace() -> None:
    model = convert_to_analog(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(18, 3)),
                              get_preset("gokmen_vlasov"))
    model.train()
    x = torch.rand(2, 1, 5, 5)
    before = model(x).detach()
    trace(model, (1, 5, 5))
    assert model.training and all(m.training for m in model.modules())
    assert "forward" not in model[0].__dict__ and "forward" not in model[0].array.__dict__
    model.eval()
    assert model(x).shape == before.shape


def test_static_activity_falls_back_to_the_technology() -> None:
    layer = AnalogLinear(4, 3, bias=False, rpu_config=plain_rpu(**{"cost.activity": 0.5, "cost.zero_fraction": 0.0}))
    report = estimate_cost(layer, (4,))
    assert report.activity_source == "static"
    assert report.layers[0].activity == 0.5
    assert math.isfinite(report.energy_per_inference_nj) and report.area_mm2 > 0


def test_the_histogram_of_codes_and_the_bit_by_bit_count_agree() -> None:
    from simulator.cost.activity import _ArrayProbe

    layer = AnalogLinear(40, 3, bias=False, rpu_config=plain_rpu(**{"forward.inp_bits": 7, "cost.dac_bits": 1}))
    probe = _ArrayProbe(layer.array)
    assert probe.ones_per_code is not None
    gen = torch.Generator().manual_seed(3)
    q = int(probe.q_max)
    codes = torch.randint(-q, q + 1, (2, 50, 40), generator=gen).float()
    codes[:, ::3] = 0.0
    by_histogram = probe._ones(codes.abs(), codes)
    table, probe.ones_per_code = probe.ones_per_code, None
    by_bits = probe._ones(codes.abs(), codes)
    expected = [sum(int(abs(v)).bit_count() + (v < 0) for v in t.flatten().tolist()) for t in codes]
    assert by_histogram.tolist() == by_bits.tolist() == expected
    probe.ones_per_code = table
    # magnitudes past q_max miss the histogram and are counted bit by bit (doubling keeps popcounts)
    assert probe._ones(codes.abs() * 2, codes).tolist() == expected


def test_bit_density_is_counted_on_a_random_sample_that_does_not_alias_with_the_batch() -> None:
    from simulator.cost import activity

    layer = AnalogLinear(8, 2, bias=False, rpu_config=plain_rpu(**{"cost.dac_bits": 1}))
    n = 4 * activity.PROBE_VECTORS
    x = torch.zeros(n, 8)
    x[::4] = 1.0  # every 4th vector full scale (codes 3: two of three bits set), the rest zero
    with measure_activity(layer) as meter:
        layer(x)
    act = meter.result()[""]
    assert act.vectors == n
    assert act.level == [pytest.approx(0.25)] and act.zero_fraction == [pytest.approx(0.75)]  # all vectors
    # The 1 bits come from 256 vectors drawn at random: a fraction p = 1/4 of them full, each worth
    # 2/3, so the estimate's standard deviation is (2/3) sqrt(p (1 - p) / 256) = 0.018; 4 sigma is
    # 0.072. (A stride of 4 would see only full vectors: 2/3.)
    assert act.bit_density[0] == pytest.approx(0.25 * 2 / 3, abs=0.072)


def test_a_compound_device_doubles_the_cells_but_not_the_converters() -> None:
    single = convert_to_analog(nn.Sequential(nn.Linear(64, 16)), get_preset("reram_es"))
    compound = convert_to_analog(nn.Sequential(nn.Linear(64, 16)), get_preset("c_ttv2_reram_es"))
    (a,) = estimate_cost(single, (64,)).layers
    (b,) = estimate_cost(compound, (64,)).layers
    assert b.area_um2["array"] == pytest.approx(2 * a.area_um2["array"])
    assert b.area_um2["adc"] == pytest.approx(a.area_um2["adc"])
