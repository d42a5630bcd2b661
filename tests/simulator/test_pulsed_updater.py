"""The ``PulsedUpdater`` contract: bounds, determinism, floating-point devices, write noise, state."""

from __future__ import annotations

import pytest
import torch

from simulator.configs.devices import (
    ConstantStepDevice,
    DeviceConfig,
    ExpStepDevice,
    IdealDevice,
    LinearStepDevice,
    PowStepDevice,
    SoftBoundsDevice,
)
from simulator.configs.update import UpdateConfig
from simulator.errors import ConfigError
from simulator.pulsed import PulsedUpdater
from simulator.rng import RandomSource
from tests.simulator.pulsed_statistics import one_thread

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

PULSED = [ConstantStepDevice(), LinearStepDevice(gamma_up=0.5, gamma_down=0.5), SoftBoundsDevice(),
          ExpStepDevice(), PowStepDevice()]
MODES = ["exact", "aggregate"]


def _batch(seed: int, n: int = 8, n_in: int = 12, n_out: int = 6, signed: bool = False):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, n_in, generator=gen)
    if signed:
        x = 2 * x - 1
    return x, torch.randn(n, n_out, generator=gen)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cfg", PULSED, ids=lambda c: type(c).__name__)
def test_weights_never_leave_the_device_bounds(cfg: DeviceConfig, mode: str) -> None:
    upd = PulsedUpdater(cfg, UpdateConfig(mode=mode), 6, 12, RandomSource(0))
    w = upd.clip_(torch.empty(6, 12).uniform_(-2, 2))
    assert bool((w <= upd.w_max).all()) and bool((w >= upd.w_min).all())
    for step in range(30):
        x, d = _batch(step, signed=step % 2 == 1)
        upd.update_(w, x, d * 50, lr=5.0)  # far too large: every train saturates
        assert bool((w <= upd.w_max).all()) and bool((w >= upd.w_min).all())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rng_mode", ["pool", "torch"])
def test_seed_gives_bit_identical_reruns(mode: str, rng_mode: str) -> None:
    def run(seed: int) -> torch.Tensor:
        upd = PulsedUpdater(ConstantStepDevice(), UpdateConfig(mode=mode, rng=rng_mode), 6, 12,
                            RandomSource(seed, mode=rng_mode))
        w = upd.clip_(torch.zeros(6, 12))
        for step in range(5):
            upd.update_(w, *_batch(step, signed=step == 3), lr=0.1)
        return w

    first = run(7)
    assert torch.equal(first, run(7))
    assert not torch.equal(first, run(8))


@pytest.mark.parametrize("mode", MODES)
def test_ideal_device_gets_the_floating_point_update(mode: str) -> None:
    upd = PulsedUpdater(IdealDevice(), UpdateConfig(mode=mode), 6, 12, RandomSource(0))
    assert bool(torch.isinf(upd.w_max).all())
    x, d = _batch(1, signed=True)
    w = torch.randn(6, 12)
    expected = w - 0.1 * d.t() @ x
    upd.update_(w, x, d, lr=0.1)
    assert torch.allclose(w, expected, atol=1e-6)


def test_learning_rate_zero_and_negative() -> None:
    x, d = _batch(2)

    def make() -> PulsedUpdater:
        return PulsedUpdater(ConstantStepDevice(), UpdateConfig(mode="exact"), 6, 12, RandomSource(3))

    upd = make()
    w = upd.clip_(torch.full((6, 12), 0.1))
    before = w.clone()
    upd.update_(w, x, d, lr=0.0)
    assert torch.equal(w, before)
    # a negative rate is gradient ascent: the same as descent on -d
    a, b = make(), make()
    wa, wb = a.clip_(torch.zeros(6, 12)), b.clip_(torch.zeros(6, 12))
    a.update_(wa, x, d, lr=-0.1)
    b.update_(wb, x, -d, lr=0.1)
    assert torch.equal(wa, wb)


def test_batch_of_patches_is_flattened() -> None:
    # convolutions hand (batch, patches, features): the update treats every patch as a sample
    x, d = _batch(4, n=12)
    a = PulsedUpdater(ConstantStepDevice(), UpdateConfig(mode="aggregate"), 6, 12, RandomSource(5))
    b = PulsedUpdater(ConstantStepDevice(), UpdateConfig(mode="aggregate"), 6, 12, RandomSource(5))
    wa, wb = a.clip_(torch.zeros(6, 12)), b.clip_(torch.zeros(6, 12))
    a.update_(wa, x, d, 0.1)
    b.update_(wb, x.reshape(3, 4, 12), d.reshape(3, 4, 6), 0.1)
    assert torch.equal(wa, wb)


def test_invalid_use_is_reported() -> None:
    with pytest.raises(ConfigError, match=r"^update\.mode: got 'none'"):
        PulsedUpdater(ConstantStepDevice(), UpdateConfig(mode="none"), 2, 2, RandomSource(0))
    upd = PulsedUpdater(ConstantStepDevice(), UpdateConfig(), 2, 3, RandomSource(0))
    with pytest.raises(ValueError, match="x has 4 rows but d has 5"):
        upd.update_(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(5, 2), 0.1)


@pytest.mark.parametrize("mode", MODES)
def test_update_snr_sets_the_cycle_to_cycle_noise(mode: str) -> None:
    # snr_db = 20: sigma = 0.1 (paper 000 eq. 2) replaces the device's dw_min_std, so the same
    # seed and pulses give the same weights as a device with dw_min_std = 0.1, and not as the
    # default 0.3; no write noise is added.
    x, d = _batch(3, n=4, n_in=100, n_out=60)
    runs = {}
    for name, device, update in [
        ("snr", ConstantStepDevice(), UpdateConfig(mode=mode, snr_db=20.0)),
        ("std", ConstantStepDevice(dw_min_std=0.1), UpdateConfig(mode=mode)),
        ("default", ConstantStepDevice(), UpdateConfig(mode=mode)),
    ]:
        upd = PulsedUpdater(device, update, 60, 100, RandomSource(1, mode="torch"))
        assert upd.write_noise == 0.0
        w = upd.clip_(torch.zeros(60, 100))
        upd.update_(w, x, d * 0.05, lr=0.1)
        runs[name] = w
    assert torch.equal(runs["snr"], runs["std"])
    assert not torch.equal(runs["snr"], runs["default"])


def test_write_noise_in_device_units_and_external_writes() -> None:
    cfg = SoftBoundsDevice(write_noise_std=10.0, apply_write_noise_on_set=False)  # 10 * dw_min = 0.01
    upd = PulsedUpdater(cfg, UpdateConfig(mode="exact"), 40, 50, RandomSource(2))
    assert upd.write_noise == pytest.approx(0.01)
    w = upd.clip_(torch.full((40, 50), 0.05))
    assert torch.equal(w, torch.full_like(w, 0.05).clamp(min=upd.w_min, max=upd.w_max))  # no noise on set
    w.fill_(-0.05)  # written by someone else: taken as the new device state
    upd.update_(w, *_batch(0, n=4, n_in=50, n_out=40), lr=1e-9)
    assert torch.equal(upd.state_dict()["hidden"], torch.full_like(w, -0.05).clamp(min=upd.w_min, max=upd.w_max))


def test_state_dict_round_trip() -> None:
    a = PulsedUpdater(SoftBoundsDevice(), UpdateConfig(mode="aggregate"), 6, 12, RandomSource(1))
    b = PulsedUpdater(SoftBoundsDevice(), UpdateConfig(mode="aggregate"), 6, 12, RandomSource(2))
    assert not torch.equal(a.w_max, b.w_max)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.w_max, b.w_max) and torch.equal(a.w_min, b.w_min)
    a.rng, b.rng = RandomSource(9), RandomSource(9)
    wa, wb = a.clip_(torch.zeros(6, 12)), b.clip_(torch.zeros(6, 12))
    for step in range(3):
        a.update_(wa, *_batch(step), lr=0.1)
        b.update_(wb, *_batch(step), lr=0.1)
    assert torch.equal(wa, wb)
    with pytest.raises(ValueError, match="lacks"):
        b.load_state_dict({})
    with pytest.raises(ValueError, match="unknown entries bogus"):
        b.load_state_dict({**a.state_dict(), "bogus": torch.zeros(1)})


def test_to_moves_the_state() -> None:
    upd = PulsedUpdater(LinearStepDevice(), UpdateConfig(), 3, 4, RandomSource(0))
    assert upd.to("cpu") is upd and upd.w_max.device.type == "cpu"
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device to move the state to")
    upd.rng = RandomSource(0, device="cuda")
    upd.to("cuda")
    w = upd.clip_(torch.zeros(3, 4, device="cuda"))
    upd.update_(w, torch.rand(2, 4, device="cuda"), torch.randn(2, 3, device="cuda"), 0.1)
    assert w.device.type == "cuda" and upd.w_min.device.type == "cuda"
