"""The pulsed update and the device response against aihwkit 1.2.0's recordings (``../shared/golden``).

``pulsed_update.npz``: the mean, sample std and fraction of exact zeros of the change of every
device of a 32x64 tile after one pulsed update (``x`` (1, 64), ``d`` (1, 32), lr 0.01 and 0.1),
500 repeats, ConstantStep and GokmenVlasov devices, either one tile whose device parameters are
recorded (``fixed``) or a new tile per repeat (``fresh``, device-to-device spread included).
``pulse_response.npz``: the mean and std over 4096 devices of 1000 single up pulses then 1000
single down pulses, for five device kinds with their defaults. The project runs the same
procedure and the two samples are compared (aihwkit's RNG cannot be seeded from Python: the
comparison is statistical; each tolerance is derived where it is used).

These checks replace the tests that re-derived the code's own step formulas for the same
devices: they compare with what aihwkit's C++ devices do.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from simulator.configs import (
    ConstantStepDevice,
    ExpStepDevice,
    LinearStepDevice,
    PowStepDevice,
    SoftBoundsDevice,
    UpdateConfig,
)
from simulator.pulsed import PulsedUpdater
from simulator.rng import RandomSource

GOLDEN = Path(os.environ.get("DSE_GOLDEN_DIR", Path(__file__).resolve().parents[3] / "shared" / "golden"))
UPDATE = GOLDEN / "pulsed_update.npz"
RESPONSE = GOLDEN / "pulse_response.npz"
REPEATS = 500  # as recorded

DEVICES = {
    "ConstantStep": ConstantStepDevice(),
    # aihwkit's GokmenVlasovPresetDevice: ConstantStep with these three fields changed
    "GokmenVlasov": ConstantStepDevice(dw_min=0.0016, w_max=1.0, w_min=-1.0),
}


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def update_golden() -> dict[str, np.ndarray]:
    if not UPDATE.is_file():
        pytest.skip(f"no aihwkit golden data at {UPDATE}")
    return _load(UPDATE)


@pytest.fixture(scope="module")
def response_golden() -> dict[str, np.ndarray]:
    if not RESPONSE.is_file():
        pytest.skip(f"no aihwkit golden data at {RESPONSE}")
    return _load(RESPONSE)


def _updater(dev: ConstantStepDevice, mode: str, seed: int) -> PulsedUpdater:
    return PulsedUpdater(dev, UpdateConfig(mode=mode), 32, 64, RandomSource(seed, mode="torch"))


@functools.cache
def _repeats(name: str, lr: float, kind: str, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``REPEATS`` single updates as recorded: dW (R, 32, 64), the start weights (their mean for
    ``fresh``), the mean and the sample std of dW (cached: two tests read each case)."""
    g = _load(UPDATE)
    x = torch.from_numpy(g["x"]).float()
    d = torch.from_numpy(g["d"]).float()
    w0 = torch.from_numpy(g["W0"]).float()
    dws, starts = [], []
    fixed = None
    if kind == "fixed":
        fixed = _updater(DEVICES[name], mode, 11)
        hidden = {k: torch.from_numpy(g[f"{name}__hidden__{v}"]).float()
                  for k, v in (("w_max", "max_bound"), ("w_min", "min_bound"),
                               ("scale_up", "dwmin_up"), ("scale_down", "dwmin_down"))}
        fixed.load_state_dict(hidden)
    for r in range(REPEATS):
        upd = fixed if fixed is not None else _updater(DEVICES[name], mode, 1000 + r)
        w = upd.clip_(w0.clone())
        start = w.clone()
        upd.update_(w, x, d, lr)
        dws.append((w - start).numpy())
        starts.append(start.numpy())
    dw = np.stack(dws).astype(np.float64)
    return dw, np.mean(starts, axis=0), dw.mean(0), dw.std(0, ddof=1)


def _slope(mean: np.ndarray, ideal: np.ndarray) -> float:
    x = ideal.ravel() - ideal.mean()
    return float((x * (mean.ravel() - mean.mean())).sum() / (x * x).sum())


def _case(name: str, lr: float, kind: str, xfail: str | None = None) -> object:
    marks = [pytest.mark.slow] if kind == "fresh" else []  # a new tile per repeat: the heavy half
    if xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=xfail))
    return pytest.param(name, lr, kind, marks=marks, id=f"{name}-{lr:g}-{kind}")


SLOPE_DEVIATION = ("measured: the gain (slope of the mean change on the ideal one) of the recorded "
                   "ConstantStep devices at lr 0.1 (saturated trains) is 0.4164 +- 0.0004 over 4 seeds "
                   "against aihwkit's 0.4142: +0.5%, 6 SE; the fresh-device and lr 0.01 cases agree")


CASES = [_case(name, lr, kind) for name in DEVICES for lr in (0.01, 0.1) for kind in ("fixed", "fresh")]
SLOPE_CASES = [_case(name, lr, kind, SLOPE_DEVIATION if (name, lr, kind) == ("ConstantStep", 0.1, "fixed") else None)
               for name in DEVICES for lr in (0.01, 0.1) for kind in ("fixed", "fresh")]


@pytest.mark.parametrize(("name", "lr", "kind"), CASES)
def test_one_pulsed_update_matches_aihwkit(update_golden: dict[str, np.ndarray], name: str, lr: float,
                                           kind: str) -> None:
    g = update_golden
    key = f"{name}__lr{lr:g}__{kind}"
    dw, start, m, s = _repeats(name, lr, kind, "exact")
    gm, gs, gz = g[f"{key}__dW_mean"], g[f"{key}__dW_std"], g[f"{key}__frac_zero"]
    if kind == "fixed":  # the same devices: the same clipped start (aihwkit's set path rounds to ~1e-6)
        np.testing.assert_allclose(start, g[f"{key}__W0_after_set"], atol=1e-5)
    n = REPEATS
    # Means: the difference of two means of n = 500 draws has the std sqrt((s_g^2 + s_p^2) / n);
    # |z| < 4 fails with probability 6e-5 per weight for Gaussian means (CLT over 500 repeats),
    # so >= 99% of 2048 weights must pass. Weights that never move (s = 0 in both) must agree.
    se = np.sqrt((gs**2 + s**2) / n)
    moving = se > 0
    z = np.abs(m - gm)[moving] / se[moving]
    assert (z < 4).mean() >= 0.99, f"{key}: {(z >= 4).mean():.2%} of weights beyond 4 SE"
    assert np.all(np.abs(m - gm)[~moving] < 1e-7)
    # Std: one sample std of n draws of kurtosis kappa has the relative SE sqrt((kappa - 1) / (4 n))
    # (1 / sqrt(2 (n - 1)) = 3.2% for Gaussian draws, more for the discrete pulse counts of
    # rarely pulsed devices); kappa per weight from the project's repeats, the ratio of two such
    # stds has sqrt(2) of it; 4 SE, for >= 99% of the weights that move in both. The mean ratio
    # over the weights within [0.95, 1.05].
    pos = (gs > 0) & (s > 0)
    ratio = s[pos] / gs[pos]
    centred = dw - m
    kurt = (centred**4).mean(0)[pos] / ((centred**2).mean(0)[pos] ** 2)
    se_ratio = np.sqrt(2 * (kurt - 1) / (4 * n))
    assert (np.abs(np.log(ratio)) <= 4 * se_ratio).mean() >= 0.99, key
    assert 0.95 <= ratio.mean() <= 1.05, f"{key}: mean std ratio {ratio.mean():.4f}"
    # Fraction of repeats without any change: two binomial proportions of n = 500 each, the SE of
    # their difference sqrt(2 p (1 - p) / n) with the pooled p (two-proportion test); 4 SE plus
    # one count (1 / n, the resolution of a proportion of n) for >= 99% of weights.
    pz = (dw == 0).mean(0)
    pooled = (pz + gz) / 2
    tol = 4 * np.sqrt(2 * pooled * (1 - pooled) / n) + 1.0 / n
    assert (np.abs(pz - gz) <= tol).mean() >= 0.99, key
    # Its mean over the weights: the per-repeat fraction of unchanged weights f_r is a mean over
    # correlated weights; SE of its average over n repeats is std(f_r) / sqrt(n) (taken from the
    # project's repeats, assumed equal for aihwkit's); 4 SE of the difference.
    f = (dw == 0).mean(axis=(1, 2))
    se_f = f.std(ddof=1) / math.sqrt(n)
    assert abs(pz.mean() - gz.mean()) <= 4 * math.sqrt(2) * se_f + 1e-9, (
        f"{key}: frac_zero {pz.mean():.4f} vs {gz.mean():.4f}")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "lr"), [(name, lr) for name in DEVICES for lr in (0.01, 0.1)])
def test_aggregate_mode_has_aihwkit_moments_per_device(update_golden: dict[str, np.ndarray], name: str,
                                                       lr: float) -> None:
    """The aggregate mode reproduces each device's mean and variance (not its discrete counts):
    the same mean and std tests as the exact mode, on the recorded devices, away from their
    bounds: next to a bound the aggregate mode clips a Gaussian change where aihwkit clips
    discrete pulses, so a device with a pulse or two into its bound over the 500 repeats (std
    ~1e-5 in aihwkit) shows the Gaussian's std (~1e-4) there (docs/simulator.md, aggregate
    approximation). Away from the bounds: further than BL = 31 steps of 5 dw_min."""
    g = update_golden
    key = f"{name}__lr{lr:g}__fixed"
    _, _, m, s = _repeats(name, lr, "fixed", "aggregate")
    gm, gs = g[f"{key}__dW_mean"], g[f"{key}__dW_std"]
    w0 = g[f"{key}__W0_after_set"]
    reach = 31 * 5 * DEVICES[name].dw_min
    inner = ((g[f"{name}__hidden__max_bound"] - w0) > reach) & ((w0 - g[f"{name}__hidden__min_bound"]) > reach)
    assert inner.mean() > 0.8
    se = np.sqrt((gs**2 + s**2) / REPEATS)
    moving = (se > 0) & inner
    assert (np.abs(m - gm)[moving] / se[moving] < 4).mean() >= 0.99, key  # as in the exact test
    pos = (gs > 0) & (s > 0) & inner
    ratio = s[pos] / gs[pos]
    assert 0.95 <= ratio.mean() <= 1.05, f"{key}: mean std ratio {ratio.mean():.4f}"


@pytest.mark.parametrize(("name", "lr", "kind"), SLOPE_CASES)
def test_the_gain_of_one_pulsed_update_matches_aihwkit(update_golden: dict[str, np.ndarray], name: str,
                                                       lr: float, kind: str) -> None:
    g = update_golden
    key = f"{name}__lr{lr:g}__{kind}"
    dw, _, m, _ = _repeats(name, lr, kind, "exact")
    gm = g[f"{key}__dW_mean"]
    n = REPEATS
    # The slope of the mean change on the ideal change (the update's gain, 0.41-0.64 at lr 0.1
    # where the pulse train saturates). The devices of a repeat share their input and error bit
    # streams, so their errors are correlated: the slope's SE is taken from the spread of the
    # per-repeat slopes of the project's repeats (assumed the same for aihwkit's), SE =
    # std(b_r) / sqrt(n); 4 SE of the difference of two slopes.
    ideal = g[f"{key.rsplit('__', 1)[0]}__dW_ideal"]
    per_repeat = np.array([_slope(r, ideal) for r in dw])
    se_slope = per_repeat.std(ddof=1) / math.sqrt(n)
    assert abs(_slope(m, ideal) - _slope(gm, ideal)) <= 4 * math.sqrt(2) * se_slope, (
        f"{key}: slope {_slope(m, ideal):.4f} vs {_slope(gm, ideal):.4f}")


RESPONSE_DEVICES = {
    "ConstantStep": ConstantStepDevice(),
    "LinearStep": LinearStepDevice(),
    "SoftBounds": SoftBoundsDevice(),
    "ExpStep": ExpStepDevice(),
    "PowStep": PowStepDevice(),
}


def _response(dev: object, seed: int) -> np.ndarray:
    """Mean and std over 64x64 fresh devices of the weight after each of 1000 up, 1000 down pulses."""
    cfg = UpdateConfig(mode="exact", desired_bl=1, update_management=False, update_bl_management=False)
    upd = PulsedUpdater(dev, cfg, 64, 64, RandomSource(seed, mode="torch"))  # type: ignore[arg-type]
    w = upd.clip_(torch.zeros(64, 64))
    x = -torch.ones(1, 64)
    traj = [w.clone()]
    for sign in (1.0, -1.0):
        d = sign * torch.ones(1, 64)
        for _ in range(1000):
            upd.update_(w, x, d, 1.0)  # every bit probability clips to 1: one pulse per device
            traj.append(w.clone())
    return torch.stack(traj).reshape(2001, -1).double().numpy()


@pytest.mark.parametrize("name", list(RESPONSE_DEVICES))
def test_single_pulse_response_matches_aihwkit(response_golden: dict[str, np.ndarray], name: str) -> None:
    g = response_golden
    traj = _response(RESPONSE_DEVICES[name], 5)
    mean, std = traj.mean(1), traj.std(1, ddof=1)
    gm, gs = g[f"{name}__mean"], g[f"{name}__std"]
    # The mean over 4096 devices has the SE std / 64; two independent device draws differ by
    # sqrt(2) of it; 4 SE, plus one dw_min (0.001) for the discreteness of the steps.
    tol = 4 * math.sqrt(2) * gs / 64 + 1e-3
    worst = np.abs(mean - gm) - tol
    assert worst.max() <= 0, f"{name}: mean off by {np.abs(mean - gm).max():.4g} at step {worst.argmax()}"
    # The std over 4096 devices has the relative SE ~1 / sqrt(2 * 4095) = 1.1% (more for skewed
    # device spreads); the ratio of two 1.6%; [0.9, 1.1] is 6 SE, where the spread is not tiny.
    big = gs > 0.01
    ratio = std[big] / gs[big]
    assert ratio.min() >= 0.9 and ratio.max() <= 1.1, f"{name}: std ratio {ratio.min():.3f}-{ratio.max():.3f}"
