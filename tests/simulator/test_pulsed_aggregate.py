"""Aggregate mode: per-device mean and variance of the weight change match the exact mode's."""

from __future__ import annotations

import pytest
import torch

from simulator.configs.devices import (
    ConstantStepDevice,
    DeviceConfig,
    ExpStepDevice,
    LinearStepDevice,
    PowStepDevice,
    SoftBoundsDevice,
)
from simulator.configs.update import UpdateConfig
from simulator.pulsed import PulsedUpdater
from simulator.pulsed.aggregate import aggregate_moments
from simulator.pulsed.exact import exact_counts
from simulator.pulsed.management import probabilities
from simulator.rng import RandomSource
from tests.simulator.pulsed_statistics import (
    assert_means_match,
    assert_variances_match,
    one_thread,
    repeated_changes,
)

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

F64 = torch.float64
BOUNDS = {"w_max_dtod": 0.1, "w_min_dtod": 0.1}
"""Bounds at least 0.3 from zero: the tests' weights (|w| <= 0.1) plus one update never reach them."""


def _inputs(signed: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(5, 7, generator=gen, dtype=F64)
    x = 2 * x - 1 if signed else x * (torch.rand(5, 7, generator=gen, dtype=F64) < 0.7)
    d = 0.3 * torch.randn(5, 4, generator=gen, dtype=F64)
    return x, d


def _changes(cfg: DeviceConfig, upd_cfg: UpdateConfig, signed: bool, lr: float, runs: int) -> tuple[torch.Tensor, ...]:
    x, d = _inputs(signed, seed=5)
    w0 = (torch.rand(4, 7, generator=torch.Generator().manual_seed(6), dtype=F64) - 0.5) * 0.2
    out = []
    for mode, rng_mode in (("exact", "torch"), ("aggregate", "pool")):
        upd = PulsedUpdater(cfg, UpdateConfig.from_dict({**upd_cfg.to_dict(), "mode": mode, "rng": rng_mode}),
                            4, 7, RandomSource(21, mode=rng_mode), F64)  # same seed: same device state
        out.append(repeated_changes(lambda w, upd=upd: upd.update_(w, x, d, lr), w0, runs))
    return tuple(out)


CASES = [
    (ConstantStepDevice(**BOUNDS), False),
    (ConstantStepDevice(**BOUNDS, up_down=0.3), True),
    (SoftBoundsDevice(**BOUNDS), True),
    (LinearStepDevice(**BOUNDS, gamma_up=0.5, gamma_down=0.3, mult_noise=False), False),
    (ExpStepDevice(**BOUNDS), False),
    (PowStepDevice(**BOUNDS, pow_gamma=2.0), True),
]


@pytest.mark.parametrize(("cfg", "signed"), CASES, ids=lambda v: type(v).__name__ if not isinstance(v, bool) else
                         ("signed-x" if v else "x>=0"))
def test_aggregate_matches_exact_per_device(cfg: DeviceConfig, signed: bool) -> None:
    exact, aggregate = _changes(cfg, UpdateConfig(), signed, lr=0.05, runs=1000)
    assert float(exact.abs().max()) > 0
    assert_means_match(aggregate, exact)
    assert_variances_match(aggregate, exact)


def test_aggregate_matches_exact_when_probabilities_are_high() -> None:
    # Without BL management the trains stay at 31 slots and large gradients push p_x p_d towards 1:
    # the binomial variance n - q is then much smaller than the Poisson value n.
    cfg = ConstantStepDevice(**BOUNDS, dw_min=0.002)
    exact, aggregate = _changes(cfg, UpdateConfig(update_bl_management=False), signed=False, lr=0.4, runs=1000)
    assert_means_match(aggregate, exact)
    assert_variances_match(aggregate, exact)


@pytest.mark.parametrize("signed", [False, True], ids=["x>=0", "signed-x"])
def test_aggregate_moments_are_the_exact_counts_moments(signed: bool) -> None:
    # The matrix products give E[n_down + n_up], E[n_down - n_up] and the binomial variance of the
    # total, t - q, of the bit-stream counts.
    x, d = _inputs(signed, seed=8)
    cfg = UpdateConfig(update_bl_management=False)
    rng = RandomSource(2, mode="torch")
    draws = torch.stack([exact_counts(probabilities(x, d, 0.3, 0.002, cfg), rng) for _ in range(3000)])
    total, net = draws[:, :4] + draws[:, 4:], draws[:, :4] - draws[:, 4:]
    t, m, q, r = aggregate_moments(probabilities(x, d, 0.3, 0.002, cfg))
    # 3000 draws: standard error of a mean sqrt(var / 3000); of a variance ~ var sqrt(2 / 3000)
    # plus the excess kurtosis of a sum of binomials (below 1 / var); 5 standard errors.
    assert bool(((total.mean(0) - t).abs() <= 5 * (total.var(0) / 3000).sqrt() + 1e-9).all())
    assert bool(((net.mean(0) - m).abs() <= 5 * (net.var(0) / 3000).sqrt() + 1e-9).all())
    for sample, v in ((total, t - q), (draws[:, :4], (t + m - q - r) / 2), (draws[:, 4:], (t - m - q + r) / 2)):
        v = v.clamp(min=0.0)  # a device without pulses: 0 up to rounding
        bound = 5 * (v * (2 / 3000) ** 0.5 + (v / 3000) ** 0.5) + 1e-9
        assert bool(((sample.var(0) - v).abs() <= bound).all())
    assert float((q / t).max()) > 0.3, "the case must have high probabilities"
