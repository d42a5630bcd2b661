"""Component golden values: each model's figures to the digit of its source."""

from __future__ import annotations

import pytest

from simulator.cost.adc import (
    adc_area_um2,
    adc_energy_pj,
    adc_time_ns,
    isaac_ratio,
    sar_energy_pj,
    survey_area_um2,
    survey_energy_pj,
)
from simulator.cost.technology import load_technology


@pytest.mark.parametrize("bits, fj", [(3, 24.0), (4, 32.6), (5, 42.4), (6, 53.2), (7, 65.1), (8, 78.1)])
def test_neurosim_sar_energy_without_the_column_term(bits: int, fj: float) -> None:
    # (0.538 b + 4.3753) uW x (b + 1) ns (NeuroSim V1.4 SarADC.cpp, LP 22 nm; hardware-cost.md 1.3)
    assert sar_energy_pj(bits, 0.0, 0.55) * 1e3 == pytest.approx(fj, abs=0.05)


def test_neurosim_sar_column_term_and_latency() -> None:
    # 4 bits, 32 rows read, input bits 1 with p = 0.2, half the cells on (100 kOhm, on/off 17):
    # R' = R_col 0.5 / 0.55 and 0.072341 / R' W over 5 ns = +13.5 fJ (hardware-cost.md 1.3)
    g_col = 32 * 0.2 * (0.5 * 1e-5 + 0.5 * 1e-5 / 17)
    assert (sar_energy_pj(4, g_col, 0.55) - sar_energy_pj(4, 0.0, 0.55)) * 1e3 == pytest.approx(13.5, abs=0.05)
    tech = load_technology("rram22").values
    assert adc_time_ns(tech, 4) == pytest.approx(5.0) and adc_time_ns(tech, 8) == pytest.approx(9.0)


def test_isaac_per_event_energies_from_table_one() -> None:
    t = load_technology("isaac32")
    assert adc_energy_pj(t.values, 8) == pytest.approx(1.5625, rel=1e-6)       # 16 mW / 8 / 1.28 GS/s
    assert t["e_dac_1b"] == pytest.approx(0.390625, rel=1e-6)                   # 4 mW / 1024 x 100 ns
    assert t["e_sample_hold"] == pytest.approx(0.00097656, rel=1e-4)            # 10 uW / 1024 x 100 ns
    assert t["e_cell_read"] == pytest.approx(0.0018311, rel=1e-4)               # 0.3 mW x 100 ns / 16384
    assert t["e_shift_add"] == pytest.approx(0.019531, rel=1e-4)                # 0.2 mW x 100 ns / 1024
    assert adc_area_um2(t.values, 8) == pytest.approx(1200.0)
    assert adc_time_ns(t.values, 8) * 128 == pytest.approx(100.0)              # 128 columns per 100 ns
    # resolution scaling of CiMLoop's isaac_adc.csv, relative to 8 bits
    assert isaac_ratio(4)[0] == pytest.approx(0.79 / 1.67) and isaac_ratio(10)[1] == pytest.approx(3002 / 1200)


def test_survey_fit_values() -> None:
    # Accelergy ADC plug-in model.yaml (hardware-cost.md 1.4 and 5(b))
    assert survey_energy_pj(8, 32, 1.28e9) == pytest.approx(1.93, abs=0.005)
    assert survey_area_um2(8, 32, 1.28e9) == pytest.approx(6469, rel=1e-3)
    assert survey_energy_pj(4, 22, 1e9) == pytest.approx(0.457, abs=0.0005)
    assert survey_energy_pj(5, 22, 1e9) == pytest.approx(0.463, abs=0.0005)
    assert survey_energy_pj(8, 22, 1e9) == pytest.approx(0.847, abs=0.0005)
    assert survey_area_um2(4, 22, 1e9) == pytest.approx(2771, rel=1e-3)
    assert survey_area_um2(8, 22, 1e9) == pytest.approx(3334, rel=1e-3)
    assert survey_energy_pj(2, 22, 1e9) == survey_energy_pj(4, 22, 1e9)  # the fit starts at 4 bits
