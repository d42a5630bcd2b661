"""Pulse counting of the pulsed update (the input of the training cost)."""

from __future__ import annotations

import math

import pytest
import torch

from simulator.configs import ConstantStepDevice, RPUConfig, UpdateConfig
from simulator.mapping import TileArray
from simulator.pulsed import PulsedUpdater
from simulator.pulsed.counters import COUNTS, PulseCounter
from simulator.pulsed.management import probabilities
from simulator.rng import RandomSource


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(8, 6, generator=g) * 2 - 1
    d = torch.rand(8, 4, generator=g) * 2 - 1
    return x, d


def _updater(mode: str, seed: int = 0) -> PulsedUpdater:
    dev = ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0,
                             w_max_dtod=0.0, w_min_dtod=0.0)
    return PulsedUpdater(dev, UpdateConfig(mode=mode, desired_bl=31), 4, 6, RandomSource(seed))


def test_counter_starts_at_zero_and_adds() -> None:
    c = PulseCounter()
    assert c.totals() == dict.fromkeys(COUNTS, 0.0)
    c.add(3, 2.0, torch.tensor(1.0), 31, 1)
    c.add(torch.tensor(1.0), 0, 0, 31, 1)
    assert c.totals() == {"device_pulses": 4.0, "row_pulses": 2.0, "col_pulses": 1.0,
                          "slots": 62.0, "vectors": 2.0, "clipped_vectors": 0.0}
    c.reset()
    assert c.totals()["device_pulses"] == 0.0


def test_exact_mode_counts_whole_pulses_and_the_slots() -> None:
    x, d = _batch()
    upd = _updater("exact")
    w = torch.zeros(4, 6)
    upd.update_(w, x, d, 0.05)
    tot = upd.counter.totals()
    probs = probabilities(x, d, 0.05, upd.granularity, upd.update_cfg)
    assert tot["slots"] == float(probs.bl.sum())
    assert tot["vectors"] == 8.0
    for key in ("device_pulses", "row_pulses", "col_pulses"):
        assert tot[key] == math.floor(tot[key]) and tot[key] > 0
    # every coincidence needs a bit on both its lines
    assert tot["device_pulses"] <= min(tot["row_pulses"] * 4, tot["col_pulses"] * 6)


def test_aggregate_expectation_matches_exact_counts_on_average() -> None:
    # The exact totals are sums of Bernoulli bits; over R repeats their mean has a standard error
    # of at most sqrt(mean / R) (Poisson bound on the variance of a sum of bits), so 5 standard
    # errors bound the difference to the aggregate mode's expected value.
    x, d = _batch(1)
    agg = _updater("aggregate")
    agg.update_(torch.zeros(4, 6), x, d, 0.05)
    expected = agg.counter.totals()
    repeats = 400
    exact = _updater("exact", seed=3)
    for _ in range(repeats):
        exact.update_(torch.zeros(4, 6), x, d, 0.05)
    got = exact.counter.totals()
    for key in ("device_pulses", "row_pulses", "col_pulses"):
        mean = got[key] / repeats
        assert abs(mean - expected[key]) <= 5 * math.sqrt(expected[key] / repeats) + 1e-9, key
    assert got["slots"] / repeats == expected["slots"]


@pytest.mark.parametrize("mode", ["exact", "aggregate"])
def test_tile_array_sums_its_tiles(mode: str) -> None:
    rpu = RPUConfig(update=UpdateConfig(mode=mode)).with_overrides(
        {"mapping.max_input_size": 4, "mapping.max_output_size": 3})
    array = TileArray(6, 5, rpu, seed=0)
    assert array.n_tiles == 4
    x, d = _batch(2)
    array._pending.append((array._stack_inputs(x[:, :6])[0], d[:, :5].repeat(1, 2)[:, :5]))
    array.apply_pending(0.05)
    tot = array.pulse_totals()
    assert tot["device_pulses"] > 0
    assert tot["vectors"] == 8.0 * 4  # every tile sees every vector
    array.reset_pulse_counts()
    assert array.pulse_totals()["device_pulses"] == 0.0


def test_floating_point_tiles_fire_no_pulses() -> None:
    array = TileArray(6, 5, RPUConfig(update=UpdateConfig(mode="none")), seed=0)
    assert array.pulse_totals() == dict.fromkeys(COUNTS, 0.0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_exact_counts_are_whole_and_non_negative_in_half_precision(dtype: torch.dtype) -> None:
    """A batch long enough that the encoded products exceed half precision's integers (a 1000-
    slot chunk encodes up to 1001**2): counts stay whole, non-negative, float32."""
    from simulator.pulsed.exact import exact_counts

    g = torch.Generator().manual_seed(5)
    x = (torch.rand(64, 6, generator=g) * 2 - 1).to(dtype)
    d = (torch.rand(64, 4, generator=g) * 2 - 1).to(dtype)
    cfg = UpdateConfig(mode="exact", desired_bl=31)
    probs = probabilities(x, d, 0.05, 0.01, cfg)
    counter = PulseCounter()
    counts = exact_counts(probs, RandomSource(0), counter)
    assert counts.dtype == torch.float32
    assert bool((counts >= 0).all()) and bool((counts == counts.round()).all())
    assert float(counts.sum()) > 0 and counter.totals()["device_pulses"] == float(counts.sum())
    assert float(counts.max()) <= float(probs.bl.sum())  # no pair coincides more often than there are slots


def _saturation_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """8 samples, whose products ``max|x_b| max|d_b|`` are 0.05, 0.15, ..., 0.75 in turn."""
    x = torch.zeros(8, 6)
    d = torch.zeros(8, 4)
    for b in range(8):
        x[b, b % 6] = 0.5
        x[b, (b + 1) % 6] = -0.25
        d[b, b % 4] = -(0.1 + 0.2 * b)
        d[b, (b + 1) % 4] = 0.05
    return x, d


@pytest.mark.parametrize("mode", ["exact", "aggregate"])
@pytest.mark.parametrize("management", [True, False])
def test_saturated_pulse_trains_are_counted(mode: str, management: bool) -> None:
    """With update management sample b saturates when lr max|x_b| max|d_b| > desired_bl dw_min
    (lr 0.5, dw_min 0.01, BL 31: products above 0.62, the last 2 of 8); without it when some
    |x| or |d| times sqrt(lr / (dw_min BL)) exceeds 1."""
    x, d = _saturation_batch()
    dev = ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0,
                             w_max_dtod=0.0, w_min_dtod=0.0)
    cfg = UpdateConfig(mode=mode, desired_bl=31, update_management=management,
                       update_bl_management=management)
    upd = PulsedUpdater(dev, cfg, 4, 6, RandomSource(0))
    upd.update_(torch.zeros(4, 6), x, d, 0.5)
    tot = upd.counter.totals()
    if management:
        expected = sum(0.5 * 0.5 * (0.1 + 0.2 * b) > 31 * 0.01 for b in range(8))
        assert expected == 2
    else:  # scale sqrt(lr / (dw_min BL)) = 1.27: |x| = 0.5 never, |d| = 0.1 + 0.2 b from b = 4 on
        scale = math.sqrt(0.5 / (0.01 * 31))
        expected = sum(scale * (0.1 + 0.2 * b) > 1.0 for b in range(8))
        assert expected == 4
    assert tot["clipped_vectors"] == float(expected)
    assert tot["vectors"] == 8.0
    small = PulsedUpdater(dev, cfg, 4, 6, RandomSource(0))
    small.update_(torch.zeros(4, 6), x, d, 0.01)  # products <= 0.75 * 0.01 / 0.01 < 31: none
    assert small.counter.totals()["clipped_vectors"] == 0.0


def test_an_update_exactly_at_the_bit_length_is_not_clipped() -> None:
    x = torch.tensor([[1.0, 0.5]])
    d = torch.tensor([[0.31, -0.1]])
    probs = probabilities(x, d, 1.0, 0.01, UpdateConfig(mode="exact", desired_bl=31))
    assert float(probs.clipped()) == 0.0  # 1 * 1 * 0.31 / 0.01 = 31 = desired_bl


def test_compound_devices_count_saturated_updates() -> None:
    from simulator.configs import get_preset
    from simulator.layers import AnalogLinear

    # Tiki-Taka scales the fast learning rate with lr (c-TTv2 auto-scales it and never saturates)
    rpu = get_preset("tiki_taka_reram_sb").with_overrides({"update.mode": "aggregate"})
    lin = AnalogLinear(6, 4, rpu_config=rpu)
    x, d = _saturation_batch()
    lin.array._pending.append((lin.array._stack_inputs(x)[0], d))
    lin.array.apply_pending(1000.0)  # far beyond any bit length
    tot = lin.array.pulse_totals()
    assert tot["clipped_vectors"] >= 8.0 and tot["clipped_vectors"] <= tot["vectors"]
