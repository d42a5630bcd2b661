"""Device configs and device models: aihwkit defaults, validation, round trips, pulse rules, bounds."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import torch

from simulator._config import Config, field_docs
from simulator.configs.devices import (
    ConstantStepDevice,
    DeviceConfig,
    ExpStepDevice,
    IdealDevice,
    LinearStepDevice,
    PowStepDevice,
    SoftBoundsDevice,
)
from simulator.errors import ConfigError
from simulator.pulsed.devices import device_model
from simulator.rng import RandomSource

KINDS = [IdealDevice, ConstantStepDevice, LinearStepDevice, SoftBoundsDevice, ExpStepDevice, PowStepDevice]
PULSED = KINDS[1:]
QUIET = {"dw_min_dtod": 0.0, "dw_min_std": 0.0, "up_down_dtod": 0.0, "w_max_dtod": 0.0, "w_min_dtod": 0.0}
"""No device-to-device or cycle-to-cycle variation: every device follows the mean rule."""


@dataclass
class _Holder(Config):
    device: DeviceConfig = field(default_factory=ConstantStepDevice)
    """The device."""


# -- configs ----------------------------------------------------------------------------------------
def test_defaults_are_aihwkits() -> None:
    c = ConstantStepDevice()
    assert (c.dw_min, c.dw_min_dtod, c.dw_min_std, c.up_down, c.up_down_dtod) == (0.001, 0.3, 0.3, 0.0, 0.01)
    assert (c.w_max, c.w_min, c.w_max_dtod, c.w_min_dtod) == (0.6, -0.6, 0.3, 0.3)
    e = ExpStepDevice()
    assert (e.A_up, e.A_down, e.gamma_up, e.gamma_down, e.a, e.b) == (
        0.00081, 0.36833, 12.44625, 12.78785, 0.244, 0.2425)
    lin = LinearStepDevice()
    assert (lin.gamma_up, lin.gamma_down, lin.gamma_up_dtod, lin.mult_noise, lin.mean_bound_reference) == (
        0.0, 0.0, 0.05, True, True)
    p = PowStepDevice()
    assert (p.pow_gamma, p.pow_gamma_dtod, p.pow_up_down, p.pow_up_down_dtod) == (1.0, 0.1, 0.0, 0.0)
    assert SoftBoundsDevice().mult_noise is True


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_has_a_docstring(kind: type[DeviceConfig]) -> None:
    names = {f.name for f in dataclasses.fields(kind)}
    docs = field_docs(kind)
    assert names <= set(docs), f"undocumented: {sorted(names - set(docs))}"
    assert all(docs[n].strip() for n in names)


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_through_json_and_dotted_paths(kind: type[DeviceConfig]) -> None:
    holder = _Holder(device=kind())
    data = json.loads(json.dumps(holder.to_dict()))
    assert data["device"]["type"] == kind.__name__
    assert _Holder.from_dict(data) == holder
    if kind is not IdealDevice:
        changed = holder.with_overrides({"device.dw_min": 0.002, "device.w_max": 1.0})
        assert changed.device.dw_min == 0.002 and changed.device.w_max == 1.0 and type(changed.device) is kind


def test_kind_switch_by_dotted_path() -> None:
    switched = _Holder().with_overrides({"device.type": "ExpStepDevice", "device.dw_min": 0.0016})
    assert switched.device == ExpStepDevice(dw_min=0.0016)
    assert _Holder().with_overrides({"device": "IdealDevice"}).device == IdealDevice()


@pytest.mark.parametrize(
    ("overrides", "path", "fragment"),
    [
        ({"device.dw_min": 0.0}, "device.dw_min", "(0.0, inf)"),
        ({"device.dw_min_std": -0.1}, "device.dw_min_std", "[0.0, inf)"),
        ({"device.w_min": 0.2}, "device.w_min", "(-inf, 0.0]"),
        ({"device.w_max": -0.1}, "device.w_max", "[0.0, inf)"),
        ({"device.w_max": 0.0, "device.w_min": 0.0}, "device.w_max", "w_max > w_min"),
        ({"device.up_down": 1.5}, "device.up_down", "[-1.0, 1.0]"),
        ({"device.corrupt_devices_prob": 2.0}, "device.corrupt_devices_prob", "[0.0, 1.0]"),
        ({"device.type": "ExpStepDevice", "device.A_up": math.inf}, "device.A_up", "(-inf, inf)"),
        ({"device.type": "ExpStepDevice", "device.dw_min_std_add": -1.0}, "device.dw_min_std_add", "[0.0, inf)"),
        ({"device.type": "ExpStepDevice", "device.a": math.nan}, "device.a", "(-inf, inf)"),
        ({"device.type": "PowStepDevice", "device.pow_gamma": 0.0}, "device.pow_gamma", "(0.0, inf)"),
        ({"device.type": "LinearStepDevice", "device.gamma_up_dtod": -1}, "device.gamma_up_dtod", "[0.0, inf)"),
        ({"device.type": "SoftBoundsDevice", "device.write_noise_std": -1}, "device.write_noise_std", "[0.0, inf)"),
        ({"device.type": "ConstantStepDevice", "device.gamma_up": 0.1}, "device.gamma_up", "unknown field"),
        ({"device.type": "BogusDevice"}, "device.type", "ConstantStepDevice"),
        ({"device.dw_min": "0.001"}, "device.dw_min", "a number"),
    ],
)
def test_invalid_configs_name_the_field_value_and_range(overrides: dict, path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _Holder().with_overrides(overrides)
    assert info.value.path == path
    assert fragment in str(info.value)


def test_config_modules_do_not_import_torch() -> None:
    code = ("import sys, simulator.configs.devices, simulator.configs.update; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_granularity_follows_aihwkit() -> None:
    assert ConstantStepDevice(dw_min=0.002).weight_granularity() == 0.002
    assert PowStepDevice(dw_min=0.002, pow_gamma=2.0).weight_granularity() == pytest.approx(0.0005)
    e = ExpStepDevice()
    expected = e.dw_min * (1 - e.A_down * math.exp(-e.gamma_down * e.b))
    assert e.weight_granularity() == pytest.approx(expected)
    with pytest.raises(ConfigError, match="no pulse granularity"):
        IdealDevice().weight_granularity()


# -- device-to-device variation -----------------------------------------------------------------
def test_device_to_device_statistics() -> None:
    cfg = ConstantStepDevice(up_down=0.2, up_down_dtod=0.05, dw_min_dtod=0.1, w_max_dtod=0.1, w_min_dtod=0.2)
    state = device_model(cfg).sample_state(300, 300, RandomSource(3), torch.float64)
    n = 300 * 300
    # sample mean of n draws: std = sigma / sqrt(n); 6 standard errors make a false failure ~1e-9

    def tol(sigma: float) -> float:
        return 6 * sigma / math.sqrt(n)

    assert state["w_max"].mean().item() == pytest.approx(0.6, abs=tol(0.06))
    assert state["w_max"].std().item() == pytest.approx(0.06, rel=6 / math.sqrt(2 * n))
    assert state["w_min"].mean().item() == pytest.approx(-0.6, abs=tol(0.12))
    assert state["w_min"].std().item() == pytest.approx(0.12, rel=6 / math.sqrt(2 * n))
    # up_down = 0.2 > 0 weakens the down steps: down = (1 - 0.2 + g - r) dw_min, up = (1 + g + r) dw_min
    sigma = 0.001 * math.hypot(0.1, 0.05)
    assert state["scale_up"].mean().item() == pytest.approx(0.001, abs=tol(sigma))
    assert state["scale_down"].mean().item() == pytest.approx(0.0008, abs=tol(sigma))
    assert state["scale_up"].std().item() == pytest.approx(sigma, rel=6 / math.sqrt(2 * n))
    # the up/down difference is 2 r dw_min + 0.2 dw_min: std 2 * 0.05 * dw_min
    diff = state["scale_up"] - state["scale_down"]
    assert diff.std().item() == pytest.approx(2 * 0.05 * 0.001, rel=6 / math.sqrt(2 * n))


def test_consistency_and_corrupt_devices() -> None:
    cfg = ConstantStepDevice(w_max_dtod=2.0, w_min_dtod=2.0, dw_min_dtod=2.0, corrupt_devices_prob=0.25)
    state = device_model(cfg).sample_state(100, 100, RandomSource(4), torch.float64)
    stuck = state["w_max"] == state["w_min"]
    healthy = ~stuck
    assert bool((state["w_max"][healthy] >= 0).all()) and bool((state["w_min"][healthy] <= 0).all())
    assert bool((state["scale_up"] >= 0).all()) and bool((state["scale_down"] >= 0).all())
    # 10,000 devices, p = 0.25: binomial std 43; 6 std
    assert abs(int(stuck.sum()) - 2500) < 6 * 43
    assert bool((state["scale_up"][stuck] == 0).all()) and bool((state["w_max"][stuck].abs() <= 0.1).all())


def test_perfect_bias_column() -> None:
    model = device_model(ConstantStepDevice(perfect_bias=True))
    state = model.sample_state(5, 4, RandomSource(0), torch.float64, bias_column=True)
    assert bool((state["scale_up"][:, -1] == 0.001).all()) and bool((state["w_max"][:, -1] == 60.0).all())
    assert not bool((state["scale_up"][:, 0] == 0.001).all())
    plain = model.sample_state(5, 4, RandomSource(0), torch.float64)  # no bias column on this tile
    assert not bool((plain["w_max"][:, -1] == 60.0).any()) and not bool((plain["scale_up"][:, -1] == 0.001).all())


def test_seed_gives_identical_state() -> None:
    model = device_model(LinearStepDevice(gamma_up=0.3))
    a = model.sample_state(7, 9, RandomSource(11, mode="pool"), torch.float32)
    b = model.sample_state(7, 9, RandomSource(11, mode="pool"), torch.float32)
    c = model.sample_state(7, 9, RandomSource(12, mode="pool"), torch.float32)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["w_max"], c["w_max"])


# -- the single-pulse rule against its closed form ------------------------------------------------
def _single(cfg: DeviceConfig, w0: float, direction: int, xi: float) -> tuple[float, dict[str, float]]:
    model = device_model(cfg)
    state = model.sample_state(1, 1, RandomSource(5), torch.float64)
    w = torch.full((1, 1), w0, dtype=torch.float64)
    model.pulse_(w, state, torch.full_like(w, direction), torch.full_like(w, xi))
    return w.item(), {k: v.item() for k, v in state.items()}


@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("xi", [0.0, 1.3])
def test_single_pulse_constant_step(direction: int, xi: float) -> None:
    w, s = _single(ConstantStepDevice(up_down=0.1), 0.05, direction, xi)
    step = s["scale_up"] if direction > 0 else -s["scale_down"]
    assert w == pytest.approx(0.05 + step * (1 + 0.3 * xi), abs=1e-15)


@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("mult_noise", [True, False])
def test_single_pulse_linear_step(direction: int, mult_noise: bool) -> None:
    cfg = LinearStepDevice(gamma_up=0.4, gamma_down=0.2, gamma_up_dtod=0.0, gamma_down_dtod=0.0,
                           mult_noise=mult_noise)
    w0, xi = 0.3, -0.7
    w, s = _single(cfg, w0, direction, xi)
    # aihwkit: slope_up = -gamma_up scale_up / w_max, slope_down = -gamma_down scale_down / w_min (mean bounds)
    if direction > 0:
        slope, scale, sign = s["slope_up"], s["scale_up"], 1
        assert slope == pytest.approx(-0.4 * scale / 0.6)
    else:
        slope, scale, sign = s["slope_down"], s["scale_down"], -1
        assert slope == pytest.approx(-0.2 * scale / -0.6)
    if mult_noise:
        expected = w0 + sign * (scale + slope * w0) * (1 + 0.3 * xi)
    else:
        expected = w0 + sign * (slope * w0 + scale * (1 + 0.3 * xi))
    assert w == pytest.approx(expected, abs=1e-15)


def test_single_pulse_exp_step_complex_noise() -> None:
    cfg = ExpStepDevice(dw_min_std_add=0.002, dw_min_std_slope=0.5)
    w0, xi = -0.1, 0.8
    for direction in (1, -1):
        w, s = _single(cfg, w0, direction, xi)
        z = 2 * cfg.a * w0 / (s["w_max"] - s["w_min"]) + cfg.b
        if direction > 0:
            dw = s["scale_up"] * max(1 - cfg.A_up * math.exp(cfg.gamma_up * z), 0)
        else:
            dw = -s["scale_down"] * max(1 - cfg.A_down * math.exp(-cfg.gamma_down * z), 0)
        std = 0.3 * (abs(dw) + 0.002 + 0.5 * abs(w0))
        assert w == pytest.approx(w0 + dw + std * xi, abs=1e-15)


@pytest.mark.parametrize("direction", [1, -1])
def test_single_pulse_pow_step(direction: int) -> None:
    w0, xi = 0.1, -0.2
    w, s = _single(PowStepDevice(pow_gamma=1.7, pow_up_down=0.2), w0, direction, xi)
    rng = s["w_max"] - s["w_min"]
    if direction > 0:
        expected = w0 + s["scale_up"] * ((s["w_max"] - w0) / rng) ** s["gamma_up"] * (1 + 0.3 * xi)
    else:
        expected = w0 - s["scale_down"] * ((w0 - s["w_min"]) / rng) ** s["gamma_down"] * (1 + 0.3 * xi)
    assert w == pytest.approx(expected, abs=1e-15)


def test_asymmetry_drives_constant_step_to_the_stronger_direction() -> None:
    # up_down = 0.3: down steps are 30% smaller; equal numbers of up and down pulses drift up
    cfg = ConstantStepDevice(up_down=0.3, **QUIET)
    model = device_model(cfg)
    state = model.sample_state(1, 1, RandomSource(0), torch.float64)
    w = torch.zeros(1, 1, dtype=torch.float64)
    for k in range(200):
        model.pulse_(w, state, torch.full_like(w, 1 if k % 2 == 0 else -1), torch.zeros_like(w))
    assert w.item() == pytest.approx(100 * (0.001 - 0.0007))


def test_soft_bounds_symmetry_point_under_alternating_pulses() -> None:
    # With unequal up/down steps soft bounds settle where the steps are equal:
    # s_u (1 - w / b_max) = s_d (1 - w / b_min)  =>  w* = (s_u - s_d) / (s_u / b_max - s_d / b_min)
    cfg = SoftBoundsDevice(up_down=0.2, dw_min=0.01, **QUIET)
    model = device_model(cfg)
    state = model.sample_state(1, 1, RandomSource(0), torch.float64)
    s_u, s_d, b_max, b_min = (state[k].item() for k in ("scale_up", "scale_down", "w_max", "w_min"))
    w = torch.zeros(1, 1, dtype=torch.float64)
    for k in range(4000):
        model.pulse_(w, state, torch.full_like(w, 1 if k % 2 == 0 else -1), torch.zeros_like(w))
    w_star = (s_u - s_d) / (s_u / b_max - s_d / b_min)
    # the two-pulse cycle oscillates around w* by one step (0.01)
    assert w.item() == pytest.approx(w_star, abs=0.01)


# -- bounds ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", PULSED)
def test_pulses_never_leave_the_device_bounds(kind: type[DeviceConfig]) -> None:
    cfg = kind(dw_min=0.05, dw_min_std=2.0)  # large, noisy steps: many would overshoot
    model = device_model(cfg)
    state = model.sample_state(20, 30, RandomSource(1), torch.float64)
    w = torch.zeros(20, 30, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        direction = torch.randint(-1, 2, (20, 30), generator=gen).to(torch.float64)
        direction = torch.where(torch.rand(20, 30, generator=gen) < 0.7, direction.abs(), direction)
        model.pulse_(w, state, direction, torch.randn(20, 30, generator=gen, dtype=torch.float64))
        assert bool((w <= state["w_max"]).all()) and bool((w >= state["w_min"]).all())
    n = torch.zeros(40, 30, dtype=torch.float64)
    n[20:] = 500.0  # 500 up pulses at once
    model.respond_(w, state, n, torch.randn(20, 30, generator=gen, dtype=torch.float64))
    assert bool((w <= state["w_max"]).all()) and bool((w >= state["w_min"]).all())
    if kind in (ConstantStepDevice, LinearStepDevice):
        assert torch.allclose(w, state["w_max"])  # saturated at the (device-specific) upper bound


# -- the closed-form response against pulse-by-pulse application ----------------------------------
@pytest.mark.parametrize("kind", PULSED)
@pytest.mark.parametrize("n_pulses", [1, 2, 7, 31])
def test_response_to_counts_matches_pulse_by_pulse(kind: type[DeviceConfig], n_pulses: int) -> None:
    extra = {"gamma_up": 0.8, "gamma_down": 0.5, "gamma_up_dtod": 0.0, "gamma_down_dtod": 0.0} \
        if kind is LinearStepDevice else {"pow_gamma": 2.0, "pow_gamma_dtod": 0.0} if kind is PowStepDevice else {}
    cfg = kind(**QUIET, **extra)
    model = device_model(cfg)
    state = model.sample_state(2, 41, RandomSource(0), torch.float64)
    w0 = torch.linspace(-0.5, 0.5, 41, dtype=torch.float64).repeat(2, 1)
    direction = torch.tensor([[1.0], [-1.0]], dtype=torch.float64).expand(2, 41)
    w_seq = w0.clone()
    for _ in range(n_pulses):
        model.pulse_(w_seq, state, direction, torch.zeros_like(w0))
    counts = torch.zeros(4, 41, dtype=torch.float64)
    counts[2] = n_pulses  # row 0: up pulses (rows 2..3 of the stacked layout hold up counts)
    counts[1] = n_pulses  # row 1: down pulses
    w_cf = model.respond_(w0.clone(), state, counts, torch.zeros_like(w0))
    moved = (w_seq - w0).abs()
    # Constant steps add exactly; otherwise the midpoint rule is off by ~ (n k)^2 / 6 relative,
    # k = dw_min / range = 1 / 1200 here: below 1e-4 for 31 pulses; 1e-3 leaves margin for PowStep's
    # gamma = 2 (twice the curvature).
    tol = 1e-12 if kind is ConstantStepDevice else 1e-3
    assert torch.all((w_cf - w_seq).abs() <= tol * moved + 1e-15)


def test_constant_step_mixed_counts_add_up() -> None:
    cfg = ConstantStepDevice(up_down=0.1, w_max=10.0, w_min=-10.0, dw_min_std=0.0)
    model = device_model(cfg)
    state = model.sample_state(3, 4, RandomSource(0), torch.float64)
    n = torch.arange(24, dtype=torch.float64).reshape(6, 4)
    w = model.respond_(torch.zeros(3, 4, dtype=torch.float64), state, n, torch.zeros(3, 4, dtype=torch.float64))
    assert torch.allclose(w, n[3:] * state["scale_up"] - n[:3] * state["scale_down"], atol=1e-15)
