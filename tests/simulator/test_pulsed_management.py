"""Update and BL management against aihwkit's formulas, written out per sample in plain Python."""

from __future__ import annotations

import math

import pytest
import torch

from simulator.configs.update import UpdateConfig, snr_db_to_std
from simulator.errors import ConfigError
from simulator.pulsed.management import probabilities


def _aihwkit_bl_a_b(x: list[float], d: list[float], lr: float, g: float, cfg: UpdateConfig) -> tuple[int, float, float]:
    """PulsedUpdateMetaParameter::calculateBlAB + performUpdateManagement (aihwkit 1.2.0) for one
    sample; the saturated case (``k > desired_bl``) is also checked against aihwkit's recorded
    updates in ``test_golden_pulsed.py``."""
    ublm = cfg.update_bl_management
    um = cfg.update_management or ublm
    if cfg.fixed_bl or ublm:
        bl = cfg.desired_bl
        a = b = math.sqrt(lr / (g * bl))
    elif g * cfg.desired_bl < lr:
        a = b = 1.0
        bl = max(math.ceil(lr / g), 1)
    else:
        bl = cfg.desired_bl
        a = b = math.sqrt(lr / (g * bl))
    if um:
        x_max = max(max(abs(v) for v in x), g * g)
        d_max = max(max(abs(v) for v in d), g * g)
        k = lr * x_max * d_max / g
        if ublm:
            bl = min(math.ceil(k), cfg.desired_bl)
            a = b = math.sqrt(lr / (g * bl))
        d_val = d_max * cfg.desired_bl / k if k > cfg.desired_bl else d_max  # "avoid clipping of x"
        a *= math.sqrt(x_max / d_val)
        b *= math.sqrt(d_val / x_max)
    return bl, a, b


@pytest.mark.parametrize(
    "cfg",
    [
        UpdateConfig(),
        UpdateConfig(update_bl_management=False),
        UpdateConfig(update_bl_management=False, update_management=False),
        UpdateConfig(update_bl_management=False, update_management=False, fixed_bl=False),
        UpdateConfig(update_bl_management=False, fixed_bl=False, desired_bl=5),
        UpdateConfig(desired_bl=7),
    ],
)
@pytest.mark.parametrize("lr", [0.01, 0.5])
def test_per_sample_bl_and_probabilities_follow_aihwkit(cfg: UpdateConfig, lr: float) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 9, generator=gen, dtype=torch.float64)
    d = torch.randn(6, 4, generator=gen, dtype=torch.float64) * torch.tensor([[1.0], [0.1], [0.01], [3], [1e-9], [0]],
                                                                              dtype=torch.float64)
    g = 0.002
    probs = probabilities(x, d, lr, g, cfg)
    p_x, p_d = probs.p_x(), probs.p_d()
    for b in range(6):
        bl, a, bb = _aihwkit_bl_a_b(x[b].tolist(), d[b].tolist(), lr, g, cfg)
        assert int(probs.bl[b]) == bl
        assert torch.allclose(p_x[b], (x[b].abs() * bb).clamp(max=1.0), rtol=1e-12, atol=0)
        assert torch.allclose(p_d[b], (d[b].abs() * a).clamp(max=1.0), rtol=1e-12, atol=0)


def test_expected_coincidences_give_the_learning_rate() -> None:
    # BL A B g = lr: the expected change BL p_x p_d g of an unclipped device equals lr |x d|
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(5, 7, generator=gen, dtype=torch.float64)
    d = torch.randn(5, 3, generator=gen, dtype=torch.float64) * 0.05
    lr, g = 0.1, 0.001
    probs = probabilities(x, d, lr, g, UpdateConfig(), nonneg_x=True)
    # the hint only saves a pass: the same probabilities as without it
    assert torch.equal(probs.p_x(), probabilities(x, d, lr, g, UpdateConfig()).p_x())
    p_x, p_d = probs.p_x(), probs.p_d()
    assert bool((p_x < 1).all()) and bool((p_d < 1).all())
    expected = torch.einsum("b,bi,bj->ij", probs.bl, p_d, p_x) * g
    assert torch.allclose(expected, lr * (d.abs().t() @ x), rtol=1e-12)


def test_bl_management_shortens_trains_and_caps_them() -> None:
    x = torch.tensor([[1.0, 0.5], [1.0, 0.5], [1.0, 0.5]], dtype=torch.float64)
    d = torch.tensor([[1e-3], [0.05], [10.0]], dtype=torch.float64)
    probs = probabilities(x, d, 0.1, 0.001, UpdateConfig(desired_bl=31))
    # ceil(lr x_max d_max / g): ceil(0.1), ceil(5), ceil(1000) capped at 31
    assert probs.bl.tolist() == [1.0, 5.0, 31.0]


def test_snr_gives_paper_000_noise() -> None:
    assert snr_db_to_std(20.0) == pytest.approx(0.1)
    assert UpdateConfig(snr_db=30.0).snr_noise_std() == pytest.approx(10 ** -1.5)
    assert UpdateConfig().snr_noise_std() is None


@pytest.mark.parametrize(
    ("kwargs", "path", "fragment"),
    [
        ({"mode": "pulsed"}, "mode", "'exact', 'aggregate', 'none'"),
        ({"desired_bl": 0}, "desired_bl", "[1, 1024]"),
        ({"desired_bl": 2.5}, "desired_bl", "an integer"),
        ({"snr_db": math.nan}, "snr_db", "(-inf, inf)"),
        ({"rng": "numpy"}, "rng", "'pool', 'torch'"),
        ({"fixed_bl": "yes"}, "fixed_bl", "true or false"),
    ],
)
def test_invalid_update_configs(kwargs: dict, path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        UpdateConfig.from_dict(kwargs)
    assert info.value.path == path
    assert fragment in str(info.value)


def test_update_config_round_trip() -> None:
    cfg = UpdateConfig(mode="exact", desired_bl=15, snr_db=25.0, rng="torch", update_management=False)
    assert UpdateConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.effective_update_management  # BL management implies update management


@pytest.mark.parametrize("cfg", [UpdateConfig(), UpdateConfig(update_bl_management=False),
                                 UpdateConfig(update_bl_management=False, update_management=False)])
def test_leading_dimensions_are_independent_tiles(cfg: UpdateConfig) -> None:
    # (T, N, in) / (T, N, out): every tile gets the management of its own slice, as alone
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(3, 6, 9, generator=gen, dtype=torch.float64)
    d = torch.randn(3, 6, 4, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 0.01, 3.0]).view(3, 1, 1)
    stacked = probabilities(x, d, 0.2, 0.002, cfg)
    for t in range(3):
        alone = probabilities(x[t], d[t], 0.2, 0.002, cfg)
        assert torch.equal(stacked.bl[t], alone.bl)
        assert torch.equal(stacked.x_scaled[t], alone.x_scaled)
        assert torch.equal(stacked.d_scaled[t], alone.d_scaled)
