"""PCM programming noise, drift and global drift compensation against aihwkit 1.2.0's recording.

``pcm_noise_drift.npz`` (``../shared/golden``): 2000 target weights ``linspace(-1, 1)`` as a 20x100
tile, programmed 50 times with aihwkit's ``PCMLikeNoiseModel(g_max=25)`` and drifted to 0 s,
1 s, 1 h, 1 day and 1 year (read noise included), with ``GlobalDriftCompensation`` read through
the default noisy forward. The project programs and drifts the same tile 50 times (seeds 0-49)
and the binned statistics are compared; tolerances are derived from the sample sizes where they
are used.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from simulator import inference
from simulator.configs import RPUConfig
from simulator.configs.noise import DriftConfig, NoiseConfig, PCMLikeProgNoise, ReadNoiseConfig
from simulator.configs.update import UpdateConfig
from simulator.layers import AnalogLinear

GOLDEN = Path(os.environ.get("DSE_GOLDEN_DIR", Path(__file__).resolve().parents[3] / "shared" / "golden"))
PCM = GOLDEN / "pcm_noise_drift.npz"
REPS = 50

pytestmark = pytest.mark.skipif(not PCM.is_file(), reason=f"no aihwkit golden data at {PCM}")


def _load() -> dict[str, np.ndarray]:
    with np.load(PCM) as z:
        return {k: z[k] for k in z.files}


@functools.cache
def _project() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Programmed weights (R, 2000), drifted weights (R, 5, 2000) and alpha (R, 5)."""
    g = _load()
    noise = NoiseConfig(programming=PCMLikeProgNoise(), drift=DriftConfig(model="pcm"),
                        read_noise=ReadNoiseConfig(model="pcm"), compensation="global", g_max=25.0)
    rpu = RPUConfig(update=UpdateConfig(mode="none"), noise=noise)
    layer = AnalogLinear(100, 20, bias=False, rpu_config=rpu)
    layer.set_weights(torch.from_numpy(g["w_target"].reshape(20, 100)).float())
    layer.eval()
    prog, drifted, alpha = [], [], []
    for r in range(REPS):
        inference.program(layer, seed=r)
        prog.append(layer.array.stacked()[0].detach().reshape(-1).double().numpy().copy())
        row, arow = [], []
        for t in g["times"]:
            inference.drift(layer, float(t), seed=r)
            row.append(layer.array.stacked()[0].detach().reshape(-1).double().numpy().copy())
            arow.append(float(layer.array.out_factor.reshape(-1)[0]))
        drifted.append(row)
        alpha.append(arow)
    return np.array(prog), np.array(drifted), np.array(alpha)


def _bins(values: np.ndarray, target: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    err = values - target  # (R, 2000)
    mean = np.array([err[:, index == b].mean() for b in range(20)])
    std = np.array([err[:, index == b].std(ddof=1) for b in range(20)])
    return mean, std


def test_programming_noise_matches_aihwkit() -> None:
    g = _load()
    prog, _, _ = _project()
    mean, std = _bins(prog, g["w_target"], g["bin_index"])
    gm, gs = g["prog_bin_err_mean"], g["prog_bin_err_std"]
    # 5000 samples per bin (100 weights x 50 programmings): the std of the pooled error has the
    # relative SE 1 / sqrt(2 * 4999) = 1%, the ratio of two 1.4%; [0.93, 1.07] is 5 SE.
    ratio = std / gs
    assert ratio.min() >= 0.93 and ratio.max() <= 1.07, f"std ratio per bin {np.round(ratio, 3)}"
    # The mean error of a bin has the SE std / sqrt(5000); 4 SE of the difference (sqrt(2)),
    # plus 0.002 for the spread of the targets within a bin (0.1 wide; programming noise grows
    # with |w|).
    tol = 4 * math.sqrt(2) * gs / math.sqrt(5000) + 0.002
    assert np.all(np.abs(mean - gm) <= tol), f"mean error per bin off by {np.abs(mean - gm).max():.4f}"


def test_drift_and_read_noise_match_aihwkit() -> None:
    g = _load()
    _, drifted, _ = _project()
    target = g["w_target"]
    for i, t in enumerate(g["times"]):
        mean = drifted[:, i].mean(0)
        x = target - target.mean()
        slope = float((x * (mean - mean.mean())).sum() / (x * x).sum())
        gold = float((x * (g["drift_mean"][i] - g["drift_mean"][i].mean())).sum() / (x * x).sum())
        # The slope of one programming's drifted weights on the targets varies across the 50
        # programmings (shared devices' exponents are redrawn each time): SE of the mean slope
        # std(b_r) / sqrt(50), from the project's repeats; 4 SE of the difference.
        per = np.array([float((x * (d - d.mean())).sum() / (x * x).sum()) for d in drifted[:, i]])
        tol = 4 * math.sqrt(2) * per.std(ddof=1) / math.sqrt(REPS)
        assert abs(slope - gold) <= tol, f"t={t:g} s: slope {slope:.4f} vs aihwkit {gold:.4f} (tol {tol:.4f})"
        _, std = _bins(drifted[:, i], target, g["bin_index"])
        ratio = std / g[f"drift_t{i}_bin_err_std"]
        # pooled error std per bin over 5000 samples, as for programming: 5 SE of the ratio
        assert ratio.min() >= 0.93 and ratio.max() <= 1.07, f"t={t:g} s: std ratio {np.round(ratio, 3)}"


def test_global_drift_compensation_matches_aihwkit() -> None:
    g = _load()
    _, _, alpha = _project()
    gold = g["alpha_tile"]
    # Mean alpha over 50 programmings: SE = std / sqrt(50) from each side's repeats; 4 SE of the
    # difference.
    for i, t in enumerate(g["times"]):
        se = math.sqrt(alpha[:, i].var(ddof=1) / REPS + gold[:, i].var(ddof=1) / REPS)
        assert abs(alpha[:, i].mean() - gold[:, i].mean()) <= 4 * se, (
            f"t={t:g} s: alpha {alpha[:, i].mean():.4f} vs aihwkit {gold[:, i].mean():.4f}")
