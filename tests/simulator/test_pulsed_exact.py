"""Exact pulsed update: bit-stream coincidences, E[dW] = -lr d^T x, and aihwkit's pulse order."""

from __future__ import annotations

import pytest
import torch

from simulator.configs.devices import ConstantStepDevice, DeviceConfig, SoftBoundsDevice
from simulator.configs.update import UpdateConfig
from simulator.pulsed import PulsedUpdater
from simulator.pulsed.exact import MAX_SLOTS, exact_counts
from simulator.pulsed.management import probabilities
from simulator.pulsed.reference import reference_update_
from simulator.rng import RandomSource
from tests.simulator.pulsed_statistics import (
    Z,
    assert_mean_is,
    assert_means_match,
    assert_variances_match,
    one_thread,
    repeated_changes,
    var_and_stderr,
)

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

QUIET = {"dw_min_dtod": 0.0, "dw_min_std": 0.0, "up_down_dtod": 0.0, "w_max_dtod": 0.0, "w_min_dtod": 0.0}
F64 = torch.float64


def _inputs(signed: bool, seed: int = 0, n: int = 4, n_in: int = 6, n_out: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, n_in, generator=gen, dtype=F64)
    if signed:
        x = 2 * x - 1
    x[0, 0] = 0.0  # an input without pulses
    d = 0.3 * torch.randn(n, n_out, generator=gen, dtype=F64)
    return x, d


@pytest.mark.parametrize("signed", [False, True], ids=["x>=0", "signed-x"])
def test_expected_change_is_minus_lr_d_x(signed: bool) -> None:
    cfg = ConstantStepDevice(dw_min=0.01, w_max=10.0, w_min=-10.0, **QUIET)
    x, d = _inputs(signed)
    lr = 0.1
    upd = PulsedUpdater(cfg, UpdateConfig(mode="exact", rng="torch"), 5, 6, RandomSource(1, mode="torch"), F64)
    probs = probabilities(x, d, lr, 0.01, upd.update_cfg)
    p_x, p_d = probs.p_x(), probs.p_d()
    assert bool((p_x < 1).all()) and bool((p_d < 1).all()), "probabilities must not clip for E[dW] = -lr d x"
    changes = repeated_changes(lambda w: upd.update_(w, x, d, lr), torch.zeros(5, 6, dtype=F64), runs=2000)
    assert_mean_is(changes, -lr * d.t() @ x)
    # each device's count is a sum of binomials: Var = g^2 sum_b BL_b p_b (1 - p_b)
    p = torch.einsum("bi,bj->bij", p_d, p_x)
    expected_var = 0.01**2 * torch.einsum("b,bij->ij", probs.bl, p * (1 - p))
    s2, err = var_and_stderr(changes)
    assert bool(((s2 - expected_var).abs() <= Z * err.sqrt() + 1e-14).all())
    assert float(changes[:, :, 0].abs().max()) == 0.0 or float(x[:, 0].abs().max()) > 0


@pytest.mark.parametrize("signed", [False, True], ids=["x>=0", "signed-x"])
def test_counts_decode_exactly_across_chunks(signed: bool) -> None:
    # p = 1 everywhere: every slot of every sample coincides, so the counts are known exactly.
    n = 2 * (MAX_SLOTS // 31 + 10)  # > MAX_SLOTS slots: two chunks
    x = torch.ones(n, 3, dtype=F64)
    if signed:
        x[:, 1] = -1.0
    d = torch.ones(n, 2, dtype=F64)
    d[: n // 2, 1] = -1.0
    probs = probabilities(x, d, 1.0, 0.001, UpdateConfig())
    assert float(probs.p_x().min()) == 1.0 and int(probs.bl.sum()) == 31 * n > MAX_SLOTS
    counts = exact_counts(probs, RandomSource(0))
    down, up = counts[:2], counts[2:]
    total = 31.0 * n
    # device (0, j): d > 0 in all samples -> down for x > 0, up for x < 0
    assert down[0, 0] == total and up[0, 0] == 0
    # device (1, j): half the samples have d < 0
    assert down[1, 0] == total / 2 and up[1, 0] == total / 2
    if signed:
        assert up[0, 1] == total and down[0, 1] == 0


def _same_state_pair(cfg: DeviceConfig, x: torch.Tensor, d: torch.Tensor, lr: float, runs: int):
    upd = PulsedUpdater(cfg, UpdateConfig(mode="exact", rng="torch"), d.shape[1], x.shape[1],
                        RandomSource(3, mode="torch"), F64)
    gen = torch.Generator().manual_seed(9)
    w0 = (torch.rand(d.shape[1], x.shape[1], generator=gen, dtype=F64) - 0.5) * 0.2
    exact = repeated_changes(lambda w: upd.update_(w, x, d, lr), w0, runs)
    ref_rng = RandomSource(4, mode="torch")
    assert upd.model is not None

    def reference(w: torch.Tensor) -> None:
        reference_update_(upd.model, upd.state, w, x, d, lr, upd.update_cfg, upd.granularity, ref_rng)

    return exact, repeated_changes(reference, w0, runs)


@pytest.mark.parametrize("cfg", [ConstantStepDevice(w_max_dtod=0.1, w_min_dtod=0.1, up_down=0.2, dw_min=0.005),
                                 SoftBoundsDevice(w_max_dtod=0.1, w_min_dtod=0.1, dw_min=0.005)],
                         ids=["constant-step", "soft-bounds"])
def test_exact_mode_matches_aihwkit_pulse_by_pulse_order(cfg: DeviceConfig) -> None:
    # Away from the bounds the per-batch response has the same per-device mean and variance as
    # pulses applied one by one (noise per pulse) in aihwkit's sample/slot order.
    x, d = _inputs(signed=True, seed=2, n=3, n_in=5, n_out=4)
    exact, reference = _same_state_pair(cfg, x, d, lr=0.05, runs=600)
    assert float(exact.abs().max()) > 0
    assert_means_match(exact, reference)
    assert_variances_match(exact, reference)
