"""Aggregate mode: per-device mean and variance of the weight change, and the covariance between
devices, match the exact mode's."""

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


def _covariance_and_stderr(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample covariance matrix ``(k, k)`` of ``(R, k)`` samples and the variance of each entry,
    ``(E[(a - mu_a)**2 (b - mu_b)**2] - cov**2) / R`` (from the samples: any distribution)."""
    r = samples.shape[0]
    c = samples - samples.mean(0)
    cov = c.T @ c / (r - 1)
    m22 = (c * c).T @ (c * c) / r
    return cov, ((m22 - cov * cov) / r).clamp(min=0.0)


@pytest.mark.parametrize("signed", [False, True], ids=["x>=0", "signed-x"])
def test_aggregate_moments_are_the_exact_counts_moments(signed: bool) -> None:
    # The counts drawn (means plus the shared fluctuation) and the devices' own variances give
    # E[n_down], E[n_up] and the covariance of every pair of the 2 x 28 counts (down and
    # up, 4 x 7 devices) of the bit streams: the variances (binomial) and the covariances of
    # devices on one error line or one input line (the bits they share).
    x, d = _inputs(signed, seed=8)
    cfg = UpdateConfig(update_bl_management=False)
    rng = RandomSource(2, mode="torch")
    runs = 3000
    exact = torch.stack([exact_counts(probabilities(x, d, 0.3, 0.002, cfg), rng) for _ in range(runs)])
    gen = torch.Generator().manual_seed(9)
    agg = []
    for _ in range(runs):
        probs = probabilities(x, d, 0.3, 0.002, cfg)
        normals = (torch.randn(d.shape, generator=gen, dtype=F64), torch.randn(x.shape, generator=gen, dtype=F64))
        t, m, q, r, _ = aggregate_moments(probs, normals)
        own = torch.randn((2, 4, 7), generator=gen, dtype=F64)
        down = (t + m) / 2 + ((q + r) / 2).clamp(min=0.0).sqrt() * own[0]
        up = (t - m) / 2 + ((q - r) / 2).clamp(min=0.0).sqrt() * own[1]
        agg.append(torch.cat([down, up]))
    a, b = torch.stack(agg).flatten(1), exact.flatten(1)
    assert_means_match(a, b)
    # 3000 draws per mode; each entry's standard error from the fourth moments of both samples;
    # 5 standard errors over the 56 x 57 / 2 distinct entries (false alarm ~1e-3 at most).
    cov_a, var_a = _covariance_and_stderr(a)
    cov_b, var_b = _covariance_and_stderr(b)
    bound = 5 * (var_a + var_b).sqrt() + 1e-9
    assert bool(((cov_a - cov_b).abs() <= bound).all()), f"worst {((cov_a - cov_b).abs() / bound).max():.2f}x"
    # the case has strong shared fluctuations: independent counts (a diagonal covariance) would
    # fail the check above on many entries
    off_diagonal = cov_b - torch.diag(torch.diagonal(cov_b))
    assert int((off_diagonal.abs() > bound).sum()) > 100
    probs = probabilities(x, d, 0.3, 0.002, cfg)
    t, _, _, _, log_silent = aggregate_moments(probs, (torch.zeros_like(d), torch.zeros_like(x)), want_silent=True)
    p2 = 2 * (log_silent - t)  # zero normals: t is the mean count, sum_b BL p
    assert float((p2 / t).max()) > 0.3, "the case must have high probabilities"


@pytest.mark.parametrize("cfg", [ConstantStepDevice(**BOUNDS), ConstantStepDevice(**BOUNDS, up_down=0.3),
                                 SoftBoundsDevice(**BOUNDS)], ids=["ConstantStep", "asymmetric", "SoftBounds"])
def test_aggregate_output_change_varies_as_in_exact_mode(cfg: DeviceConfig) -> None:
    # Devices on one error line share its bits: with inputs >= 0 (images, ReLU outputs) the
    # change of a layer's output for an input v, sum_j dW_ij v_j, varies several times more than
    # independent devices of the same per-device variance make it vary (the aggregate mode
    # before it drew the shared fluctuation). 1000 repeats per mode: the variances agree within
    # 5 standard errors (fourth-moment estimate, ~4.5% each for near-Gaussian changes: within
    # about a third), while the independent-device variance is below a third of the exact one
    # (3.7-4.0x below on these seeds).
    gen = torch.Generator().manual_seed(11)
    x = torch.rand(8, 48, generator=gen, dtype=F64) * (torch.rand(8, 48, generator=gen, dtype=F64) < 0.5)
    d = 0.1 * torch.randn(8, 6, generator=gen, dtype=F64)
    v = torch.rand(48, generator=gen, dtype=F64)
    w0 = (torch.rand(6, 48, generator=gen, dtype=F64) - 0.5) * 0.2
    out = []
    for mode, rng_mode in (("exact", "torch"), ("aggregate", "pool")):
        upd = PulsedUpdater(cfg, UpdateConfig(mode=mode, rng=rng_mode), 6, 48, RandomSource(21, mode=rng_mode), F64)
        out.append(repeated_changes(lambda w, upd=upd: upd.update_(w, x, d, 0.05), w0, 1000))
    exact, aggregate = out
    assert_variances_match(aggregate @ v, exact @ v)
    independent = (exact.var(0) * v * v).sum(-1)
    assert float(((exact @ v).var(0) / independent).min()) > 3.0
