"""The forward MVM periphery against aihwkit 1.2.0's recorded outputs (``../shared/golden``).

``forward_mvm.npz`` holds, for fixed ``W`` (32, 64) and ``X`` (256, 64) and eight IO configs, the
per-(row, output) mean and sample std of 200 aihwkit forward passes (its README describes the
recording). The project's :class:`~simulator.io.AnalogIO` runs the same inputs 200 times with the
same settings and the two samples are compared entry by entry. aihwkit's RNG cannot be seeded
from Python, so the comparison is statistical (tolerances derived below), not bitwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from simulator.configs import IOConfig
from simulator.io import AnalogIO
from simulator.rng import RandomSource

GOLDEN = Path(os.environ.get("DSE_GOLDEN_DIR", Path(__file__).resolve().parents[3] / "shared" / "golden"))
FORWARD = GOLDEN / "forward_mvm.npz"
PASSES = 200

pytestmark = pytest.mark.skipif(not FORWARD.is_file(), reason=f"no aihwkit golden data at {FORWARD}")

# aihwkit IOParameters -> IOConfig: inp_res 1/126 is 7 bits (2**7 - 2 steps), out_res 1/510 is
# 9 bits; inp_res 1/30 is 5 bits and out_res 1/62 6 bits. aihwkit's default has no weight noise.
CONFIGS = {
    "a_default": {},
    "b_preset": {"out_bound": 20.0, "out_noise": 0.1},
    "c_res": {"inp_bits": 5, "out_bits": 6},
    "d_outb2_iterative": {"out_bound": 2.0, "bound_management": "iterative"},
    "e_outb2_bm_none": {"out_bound": 2.0, "bound_management": "none"},
    "f_nm_none": {"noise_management": "none", "inp_bound": 1.0},
    "g_wnoise_additive": {"w_noise": 0.02, "w_noise_type": "additive_constant"},
    "h_wnoise_pcm_read": {"w_noise": 0.0175, "w_noise_type": "pcm_read"},
}


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(FORWARD) as z:
        return {k: z[k] for k in z.files}


def _project(golden: dict[str, np.ndarray], changes: dict) -> tuple[np.ndarray, np.ndarray]:
    io = AnalogIO(IOConfig(w_noise_type="none", **changes) if "w_noise" not in changes else IOConfig(**changes))
    x = torch.from_numpy(golden["X"]).unsqueeze(0)
    w = torch.from_numpy(golden["W"]).unsqueeze(0)
    rng = RandomSource(7, mode="torch")
    ys = torch.stack([io.mvm(x, w, rng)[0] for _ in range(PASSES)]).double()
    return ys.mean(0).numpy(), ys.std(0, correction=1).numpy()


KNOWN_DEVIATIONS = {
    # Noise management off, rows of |x| up to 2 (clipped at inp_bound 1) whose aligned output
    # exceeds out_bound: aihwkit's output std there is 0.0642 max|x|, the project's 0.0582 (-9%);
    # every other row group agrees within 2%. Not yet traced (bound management without noise
    # management).
    "f_nm_none": "the std of the clipped, bound-managed rows is 9% below aihwkit's",
}


FAST = ("a_default", "g_wnoise_additive", "h_wnoise_pcm_read")
"""Run by default (about 10 s each on 2 cores); the others are in the slow run."""


def _marks(name: str) -> list[Any]:
    marks: list[Any] = [] if name in FAST else [pytest.mark.slow]
    if name in KNOWN_DEVIATIONS:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DEVIATIONS[name]))
    return marks


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in sorted(CONFIGS)])
def test_forward_statistics_match_aihwkit(golden: dict[str, np.ndarray], name: str) -> None:
    mean, std = _project(golden, CONFIGS[name])
    g_mean, g_std = golden[f"{name}__mean"], golden[f"{name}__std"]
    # Means: the difference of two sample means of 200 passes each has standard error
    # sqrt(s_g^2/200 + s_p^2/200); 4 standard errors (a 6e-5 two-sided tail per entry) plus one
    # output quantization step of the row's abs-max scale (rounding ties) leave an expected
    # ~0.5 of 8192 entries outside by chance: requiring 99% inside fails only on a real bias.
    out_bits = CONFIGS[name].get("out_bits", 9)
    bound = CONFIGS[name].get("out_bound", 12.0)
    x_max = np.abs(golden["X"]).max(axis=1, keepdims=True)
    slack = 2 * bound / (2**out_bits - 2) * x_max
    se = np.sqrt(g_std**2 / 200 + std**2 / PASSES)
    inside = np.abs(mean - g_mean) <= 4 * se + slack + 1e-6
    assert inside.mean() >= 0.99, f"{name}: {inside.mean():.4f} of the means agree"
    # Stds: a sample std of 200 normal draws has a relative standard error of 1/sqrt(2*199) = 5%;
    # the ratio of two has ~7%, so [0.8, 1.2] is ~2.8 standard errors per entry (99.5% expected
    # inside for noise of the same size; 95% required). That holds where the output noise spans
    # several ADC steps; with a coarse ADC (c_res: 6 bits, a step of 0.39 against a noise of 0.06
    # in units of the row's abs-max) an entry's std is mostly rounding and swings with where its
    # mean falls between two levels, so only the row groups' means are compared there.
    big = g_std > 1e-3
    ratio = std[big] / g_std[big]
    if out_bits >= 9:
        assert np.mean((ratio > 0.8) & (ratio < 1.2)) >= 0.95, f"{name}: std ratios {np.percentile(ratio, [1, 50, 99])}"
        assert 0.95 <= float(ratio.mean()) <= 1.05, f"{name}: mean std ratio {ratio.mean():.3f}"
    # Per row group (the README's groups), the mean std in units of max|x|: each is a mean over
    # 16 x 32 or more entries, its standard error under 1%; within 5% of aihwkit's.
    for group in (slice(0, 128), slice(128, 144), slice(144, 160), slice(160, 176), slice(176, 192),
                  slice(192, 224), slice(224, 256)):
        ours, theirs = float((std[group] / x_max[group]).mean()), float((g_std[group] / x_max[group]).mean())
        assert abs(ours / theirs - 1) <= 0.05, f"{name}, rows {group.start}-{group.stop}: {ours:.4f} vs {theirs:.4f}"


def test_perfect_io_is_the_ideal_product(golden: dict[str, np.ndarray]) -> None:
    mean, std = _project(golden, {"is_perfect": True})
    assert np.allclose(mean, golden["Y_ideal"], atol=1e-4) and float(std.max()) == 0.0
    assert np.allclose(golden["z_perfect__mean"], golden["Y_ideal"], atol=1e-4)
