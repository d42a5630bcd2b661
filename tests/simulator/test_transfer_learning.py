"""Learning behaviour of the compound devices on toy problems (the specification's AT-2 and AT-3).

Both are tile-level runs of a few thousand updates without a network, with fixed seeds; the pass
criteria are the specification's *proposed* ones (Rasch et al. 2024, Figs. 3 and 4: TTv2 breaks
down under a reference offset, c-TTv2 and AGAD do not). They take a few minutes on 2 cores and
are marked slow.
"""

from __future__ import annotations

import statistics

import pytest
import torch

from simulator.configs import (
    ChoppedTransferCompound,
    DynamicTransferCompound,
    IOConfig,
    SoftBoundsReferenceDevice,
    UpdateConfig,
)
from simulator.pulsed import make_updater
from simulator.rng import RandomSource

pytestmark = pytest.mark.slow

SEEDS = (0, 1, 2)


def _standard_io() -> IOConfig:
    """aihwkit's ``StandardIOParameters``: 8-bit DAC and ADC, output bound 10, output noise 0.04."""
    return IOConfig(inp_bits=8, out_bits=8, out_bound=10.0, out_noise=0.04)


def _compound(algo: str, fast: SoftBoundsReferenceDevice, slow: SoftBoundsReferenceDevice,
              transfer_lr: float = 1.0):
    common = {"fast": fast, "slow": slow, "transfer_every": 1.0, "auto_granularity": 200.0,
              "auto_scale": True, "fast_lr": 0.1, "units_in_mbatch": False,
              "transfer_forward": _standard_io(), "transfer_lr": transfer_lr}
    if algo == "ttv2":
        return ChoppedTransferCompound(in_chop_prob=0.0, **common)
    if algo == "c_ttv2":
        return ChoppedTransferCompound(in_chop_prob=0.1, in_chop_random=False, **common)
    return DynamicTransferCompound(in_chop_prob=0.1, tail_weightening=5.0, **common)


# -- AT-2: correlation detection with a symmetry-point offset (aihwkit example 26) -----------------
def _example26_device(offset: float) -> SoftBoundsReferenceDevice:
    return SoftBoundsReferenceDevice(dw_min=0.1, w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3,
                                     dw_min_dtod_log_normal=True, subtract_symmetry_point=True,
                                     reference_mean=offset)


def _separation(algo: str, offset: float, seed: int, n: int = 5, steps: int = 5000,
                batch: int = 10, alpha: float = 0.4) -> tuple[float, float]:
    """``S = mean |W_diag| / mean |W_offdiag|`` and the off-diagonal mean after ``steps`` updates
    of ``d = alpha x + (1 - alpha) xi`` (batches of 10 vectors, lr 0.1)."""
    cfg = _compound(algo, _example26_device(offset), _example26_device(0.0))
    upd = make_updater(cfg, UpdateConfig(desired_bl=5), n, n, RandomSource(seed))
    gen = torch.Generator().manual_seed(seed)
    w = 0.001 * torch.randn(n, n, generator=gen)
    upd.clip_(w)
    for _ in range(steps // batch):
        x = torch.randn(batch, n, generator=gen)
        upd.update_(w, x, alpha * x + (1 - alpha) * torch.randn(batch, n, generator=gen), 0.1)
    diag = w.diagonal().abs().mean()
    off = (w.abs().sum() - w.diagonal().abs().sum()) / (n * n - n)
    return float(diag / off), float(off)


@pytest.fixture(scope="module")
def separations() -> dict[tuple[str, float], tuple[float, float]]:
    out = {}
    for algo in ("ttv2", "c_ttv2", "agad"):
        for offset in (0.0, 0.3):
            runs = [_separation(algo, offset, s) for s in SEEDS]
            out[algo, offset] = (statistics.fmean(r[0] for r in runs), statistics.fmean(r[1] for r in runs))
    return out


@pytest.mark.parametrize("algo", ["c_ttv2", "agad"])
def test_choppers_keep_the_correlations_under_an_offset(separations, algo: str) -> None:
    # proposed criteria: S >= 3 at offset 0.3 and S(0.3) >= 0.7 S(0) (means of 3 seeds). Measured
    # with these seeds: c-TTv2 S = 143 / 138, AGAD 54 / 46 (offset 0 / 0.3); the seed-to-seed
    # spread of S is about 30% of its mean, so 0.7 allows about one spread.
    s0, s3 = separations[algo, 0.0][0], separations[algo, 0.3][0]
    assert s3 >= 3.0
    assert s3 >= 0.7 * s0


def test_ttv2_breaks_down_under_an_offset(separations) -> None:
    # measured: S = 15.3 / 2.07, off-diagonal mean 0.059 / 0.468 (offset 0 / 0.3)
    (s0, off0), (s3, off3) = separations["ttv2", 0.0], separations["ttv2", 0.3]
    assert s3 <= 0.5 * s0 or off3 >= 3.0 * off0


# -- AT-3: weight programming error vs reference error (Fig. 4) -------------------------------------
def _fig4_device(n_states: int, ref_std: float, bound_dtod: float = 0.3) -> SoftBoundsReferenceDevice:
    return SoftBoundsReferenceDevice(dw_min=2.0 / n_states, w_max=1.0, w_min=-1.0, dw_min_dtod=0.1,
                                     up_down_dtod=0.1, w_max_dtod=bound_dtod, w_min_dtod=bound_dtod,
                                     dw_min_std=0.0, subtract_symmetry_point=True, reference_std=ref_std)


def _programming_error(algo: str, n_states: int, ref_std: float, seed: int, n: int = 10,
                       steps: int = 20000, batch: int = 10) -> float:
    """``std(W - W*)`` after ``steps`` updates of ``d = (W - W*) x`` toward a U(-0.5, 0.5) target
    (lr 0.01: a batch of 10 vectors moves ``W - W*`` of SGD by about 10 % of itself; the compounds'
    transfer rate ``transfer_lr lr`` is 0.1, that of AT-2)."""
    if algo == "sgd":
        cfg = _fig4_device(n_states, ref_std)
    else:  # sigma_b = 0 for the weight device C; the reference error is on A
        cfg = _compound(algo, _fig4_device(n_states, ref_std), _fig4_device(n_states, 0.0, 0.0),
                        transfer_lr=10.0)
    upd = make_updater(cfg, UpdateConfig(desired_bl=5), n, n, RandomSource(seed))
    gen = torch.Generator().manual_seed(100 + seed)
    target = torch.rand(n, n, generator=gen) - 0.5
    w = torch.zeros(n, n)
    upd.clip_(w)
    for _ in range(steps // batch):
        x = torch.randn(batch, n, generator=gen)
        upd.update_(w, x, x @ (w - target).t(), 0.01)
    return float((w - target).std())


def _mean_error(algo: str, n_states: int, ref_std: float) -> float:
    return statistics.fmean(_programming_error(algo, n_states, ref_std, s) for s in SEEDS)


@pytest.fixture(scope="module")
def errors() -> dict[tuple[str, float], float]:
    return {(algo, rs): _mean_error(algo, 20, rs) for algo in ("sgd", "ttv2", "c_ttv2", "agad")
            for rs in (0.0, 0.3)}


# Measured with these seeds (mean of 3): SGD 0.119 / 0.167, TTv2 0.064 / 0.191, c-TTv2 0.033 /
# 0.037, AGAD 0.034 / 0.037 (sigma_r 0 / 0.3); per-seed spreads are 10-20% of the means except
# one TTv2 seed at sigma_r = 0 (0.109), which the factor-2 criterion still clears.


def test_ttv2_error_grows_with_the_reference_error(errors) -> None:
    assert errors["ttv2", 0.3] >= 2.0 * errors["ttv2", 0.0]


@pytest.mark.parametrize("algo", ["c_ttv2", "agad"])
def test_choppers_tolerate_the_reference_error(errors, algo: str) -> None:
    assert errors[algo, 0.3] <= 1.5 * errors[algo, 0.0]


def test_agad_beats_sgd_with_few_states(errors) -> None:
    assert errors["sgd", 0.0] >= 2.0 * errors["agad", 0.0]
