"""The compiled aggregate update computes what the eager one does (up to rounding)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import pytest
import torch

from simulator.configs import get_preset
from simulator.configs.devices import (
    ConstantStepDevice,
    DeviceConfig,
    ExpStepDevice,
    LinearStepDevice,
    PowStepDevice,
    SoftBoundsReferenceDevice,
)
from simulator.configs.update import UpdateConfig
from simulator.errors import ConfigError
from simulator.pulsed import PulsedUpdater, fused, make_updater
from simulator.pulsed.stacked import StackedUpdater
from simulator.rng import RandomSource

# ExpStep as in the reram_es preset: the step depends strongly on w (the exp of the compiled loop);
# the preset has write noise (shown weights redrawn where a device was pulsed)
RERAM = get_preset("reram_es").device
RERAM_QUIET = RERAM.with_overrides({"write_noise_std": 0.0})
ATOL = 2e-6
"""Of weights changed by ~0.1-1 over the steps: float32 rounding of a differently ordered
``exp`` and of the reductions, accumulated over a few updates."""


def _pair(cfg: DeviceConfig, out: int = 24, n_in: int = 40, **update: object) -> tuple[PulsedUpdater, PulsedUpdater]:
    return tuple(PulsedUpdater(cfg, UpdateConfig(fused=f, **update), out, n_in, RandomSource(3))  # type: ignore[return-value]
                 for f in (False, True))


def _batch(step: int, n: int, n_in: int, out: int, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + step)
    x = torch.rand(n, n_in, generator=gen)
    return (2 * x - 1 if signed else x), 0.05 * torch.randn(n, out, generator=gen)


@contextlib.contextmanager
def _no_fallback() -> Iterator[None]:
    """A fallback to the eager update (a RuntimeWarning) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def _run(eager: PulsedUpdater, comp: PulsedUpdater, steps: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    out, n_in = eager.out_size, eager.in_size
    w_e, w_c = eager.clip_(torch.zeros(out, n_in)), comp.clip_(torch.zeros(out, n_in))
    for step in range(steps):
        x, d = _batch(step, n, n_in, out, signed=step % 2 == 1)
        eager.update_(w_e, x, d, lr=0.2)
        comp.update_(w_c, x, d, lr=0.2)
    cols = torch.tensor([1, 5, 6, 30])
    x, d = _batch(99, 3, len(cols), out, signed=True)
    eager.update_columns_(w_e, cols, x, d, lr=0.2)
    comp.update_columns_(w_c, cols, x, d, lr=0.2)
    return w_e, w_c


def _check(eager: PulsedUpdater, comp: PulsedUpdater, w_e: torch.Tensor, w_c: torch.Tensor) -> None:
    assert fused.fused_available(), "the compiled update fell back to eager"
    assert w_e.abs().max() > 0.05, "the updates moved nothing: the comparison would be empty"
    torch.testing.assert_close(w_c, w_e, atol=ATOL, rtol=0.0)
    totals_e, totals_c = eager.counter.totals(), comp.counter.totals()
    assert totals_e.keys() == totals_c.keys()
    for key, value in totals_e.items():
        assert totals_c[key] == pytest.approx(value, rel=1e-5), key


@pytest.mark.parametrize("cfg", [RERAM, RERAM_QUIET], ids=["write-noise", "no-write-noise"])
def test_fused_update_equals_eager_on_exp_steps(cfg: DeviceConfig) -> None:
    eager, comp = _pair(cfg)
    assert comp.fused and not eager.fused
    with _no_fallback():
        w_e, w_c = _run(eager, comp, steps=6)
    _check(eager, comp, w_e, w_c)


def test_fused_stacked_tiles_equal_eager() -> None:
    def stack(flag: bool) -> tuple[StackedUpdater, list[PulsedUpdater]]:
        ups = [PulsedUpdater(RERAM_QUIET, UpdateConfig(fused=flag), 12, 20, RandomSource(20 + k)) for k in range(3)]
        return StackedUpdater(ups), ups

    (s_e, ups_e), (s_c, _) = stack(False), stack(True)
    w_e = torch.stack([u.clip_(torch.zeros(12, 20)) for u in ups_e])
    w_c = w_e.clone()
    gen = torch.Generator().manual_seed(7)
    with _no_fallback():
        for step in range(5):
            x = torch.rand(3, 8, 20, generator=gen)
            x = 2 * x - 1 if step % 2 else x
            d = 0.05 * torch.randn(3, 8, 12, generator=gen)
            s_e.update_(w_e, x, d, lr=0.2)
            s_c.update_(w_c, x, d, lr=0.2)
    assert fused.fused_available() and w_e.abs().max() > 0.05
    torch.testing.assert_close(w_c, w_e, atol=ATOL, rtol=0.0)
    for key, value in s_e.counter.totals().items():
        assert s_c.counter.totals()[key] == pytest.approx(value, rel=1e-5), key


def test_fused_compound_trains_like_eager() -> None:
    # c-TTv2 on ReRAM: the fast device's updates and the slow device's column writes both run
    # compiled; the transfers, choppers and reads stay eager and see the same weights
    cfg = get_preset("c_ttv2_reram_es").device.with_overrides({"transfer_every": 1.0})
    ups = [make_updater(cfg, UpdateConfig(fused=f), 10, 16, RandomSource(5)) for f in (False, True)]
    assert ups[1].fast.fused and ups[1].slow.fused
    weights = [torch.zeros(10, 16) for _ in ups]
    for u, w in zip(ups, weights):
        u.clip_(w)
    gen = torch.Generator().manual_seed(11)
    with _no_fallback():
        for _ in range(12):
            x, d = torch.rand(4, 16, generator=gen), 0.1 * torch.randn(4, 10, generator=gen)
            for u, w in zip(ups, weights):
                u.update_(w, x, d, lr=0.3)
    assert fused.fused_available()
    assert ups[0].C.abs().max() > 0.0, "no transfer reached the slow device"
    torch.testing.assert_close(ups[1].A, ups[0].A, atol=1e-5, rtol=0.0)
    torch.testing.assert_close(ups[1].C, ups[0].C, atol=1e-5, rtol=0.0)
    torch.testing.assert_close(weights[1], weights[0], atol=1e-5, rtol=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", [LinearStepDevice(gamma_up=0.5, gamma_down=0.3, mult_noise=True),
                                 SoftBoundsReferenceDevice(reference_std=0.05, subtract_symmetry_point=True),
                                 PowStepDevice(pow_gamma=1.5), ExpStepDevice(dw_min_std_add=0.1)],
                         ids=lambda c: type(c).__name__)
def test_fused_update_equals_eager_on_every_nonlinear_kind(cfg: DeviceConfig) -> None:
    eager, comp = _pair(cfg)
    assert comp.fused
    with _no_fallback():
        w_e, w_c = _run(eager, comp, steps=5)
    _check(eager, comp, w_e, w_c)


def test_constant_steps_and_exact_mode_keep_the_eager_update() -> None:
    assert not _pair(ConstantStepDevice(up_down=0.2))[1].fused
    assert not _pair(RERAM, mode="exact")[1].fused  # exact counts: no aggregate update to fuse
    assert _pair(RERAM)[1].fused


def test_a_compiler_failure_warns_once_and_runs_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(fused, "_compiled", broken)
    monkeypatch.setattr(fused, "_broken", None)
    eager, comp = _pair(ConstantStepDevice(up_down=0.2))
    comp.fused = True  # force the compiled path for a device that would not take it
    with pytest.warns(RuntimeWarning, match="no C.. compiler found.*eager update runs instead"):
        w_e, w_c = _run(eager, comp, steps=3)
    assert not fused.fused_available()
    assert torch.equal(w_e, w_c)


def test_fused_flag_is_validated() -> None:
    with pytest.raises(ConfigError, match="fused"):
        UpdateConfig.from_dict({"fused": "yes"})
    assert UpdateConfig.from_dict({"fused": True}).fused
