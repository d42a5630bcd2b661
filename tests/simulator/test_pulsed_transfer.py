"""Mechanics of the compound devices (Tiki-Taka family): exact numbers and exact schedules.

The numbers are those of aihwkit's own unit tests (``rpu_transfer_device_test.cpp``,
``rpucuda_chopped_transfer_device_test.cpp``, ``test_specific_tiles.py``; the specification's
section 13) and the exact properties of its AT-1: AGAD's writes do not depend on a constant read
offset, and a c-TTv2 chopper period adds nothing of an offset to the buffer.
"""

from __future__ import annotations

import math

import pytest
import torch

from simulator.configs import (
    BufferedTransferCompound,
    ChoppedTransferCompound,
    ConstantStepDevice,
    DynamicTransferCompound,
    IOConfig,
    TransferCompound,
    UpdateConfig,
)
from simulator.configs.io import perfect_io
from simulator.pulsed import TransferUpdater, make_updater
from simulator.rng import RandomSource

MODES = ["exact", "aggregate"]


def _ideal_step(dw: float, bound: float) -> ConstantStepDevice:
    """A noise-free constant-step device without device-to-device variation."""
    return ConstantStepDevice(dw_min=dw, dw_min_dtod=0.0, dw_min_std=0.0, up_down=0.0, up_down_dtod=0.0,
                              w_max=bound, w_min=-bound, w_max_dtod=0.0, w_min_dtod=0.0)


def _clean_read() -> IOConfig:
    """aihwkit's ``inp_res = out_res = -1``, ``out_noise = 0``: no quantization, no noise."""
    return IOConfig(inp_bits=None, out_bits=None, out_noise=0.0, out_bound=None)


def _build(cfg, update: UpdateConfig, out_size: int, in_size: int, seed: int = 0) -> tuple[TransferUpdater, torch.Tensor]:
    upd = make_updater(cfg, update, out_size, in_size, RandomSource(seed))
    assert isinstance(upd, TransferUpdater)
    w = torch.zeros(out_size, in_size)
    upd.clip_(w)
    return upd, w


# -- 13.1: Tiki-Taka v1 (rpu_transfer_device_test.cpp) --------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("gamma", [0.0, 0.5])
@pytest.mark.parametrize("columns", [True, False])
def test_tiki_taka_v1_pulses_a_then_transfers_the_column(mode: str, gamma: float, columns: bool) -> None:
    dev = _ideal_step(1.0, 100.0)
    cfg = TransferCompound(fast=dev, slow=dev, gamma=gamma, transfer_lr=1.0, transfer_columns=columns,
                           transfer_forward=_clean_read())
    # desired_bl = 1 without management: x = 1, d = -+1 and lr = dw fire exactly one pulse
    update = UpdateConfig(mode=mode, desired_bl=1, update_management=False, update_bl_management=False)
    upd, _ = _build(cfg, update, 3, 2)
    w0 = torch.tensor([[0.0, 0.5], [-1.0, 2.0], [3.0, 0.0]])
    upd.clip_(w0.clone())
    state = upd.hidden_state()
    assert torch.equal(state["A"], torch.zeros(3, 2)) and torch.equal(state["C"], w0)
    # onSetWeights: the visible weight is C (A = 0)
    weight = w0.clone()
    upd.clip_(weight)
    assert torch.equal(weight, w0)
    # one mini-batch: 3 up pulses and 2 down pulses on (last row, column 1) -> A = +1 dw there
    x = torch.tensor([[0.0, 1.0]] * 5)
    d = torch.zeros(5, 3)
    d[:, 2] = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0])
    upd.update_(weight, x, d, 1.0)
    a = upd.hidden_state()["A"]
    expected_a = torch.zeros(3, 2)
    expected_a[2, 1] = 1.0
    assert torch.equal(a, expected_a)
    # the mini-batch's transfer read column (row) 0 of A, which is zero: C unchanged
    assert torch.equal(upd.hidden_state()["C"], w0)
    assert torch.allclose(weight, w0 + gamma * expected_a)
    # empty mini-batches transfer the next columns (rows): the pulsed entry reaches C
    n_empty = 1 if columns else 2
    for _ in range(n_empty):
        upd.update_(weight, torch.zeros(1, 2), torch.zeros(1, 3), 1.0)
    state = upd.hidden_state()
    assert torch.equal(state["A"], expected_a), "the transfer reads A, it does not change it"
    assert torch.equal(state["C"], w0 + expected_a)
    assert torch.allclose(weight, w0 + (gamma + 1.0) * expected_a)
    assert state["transfers"] == 1 + n_empty


# -- 13.2: chopped transfer (rpucuda_chopped_transfer_device_test.cpp) ---------------------------
def _chopped_test_config(**kw) -> ChoppedTransferCompound:
    dev = _ideal_step(0.1, 1000.0)
    base = {"fast": dev, "slow": dev, "in_chop_prob": 0.0, "transfer_forward": perfect_io(),
            "transfer_lr": 1.0, "scale_transfer_lr": False, "step": 1.0, "forget_buffer": True}
    base.update(kw)
    return ChoppedTransferCompound(**base)


def _bl10(mode: str) -> UpdateConfig:
    return UpdateConfig(mode=mode, desired_bl=10, update_management=False, update_bl_management=False)


@pytest.mark.parametrize("mode", MODES)
def test_chopped_update_fills_a_exactly(mode: str) -> None:
    upd, w = _build(_chopped_test_config(transfer_every=0.0), _bl10(mode), 5, 4)
    upd.update_(w, torch.ones(1, 4), -torch.ones(1, 5), 1.0)
    state = upd.hidden_state()
    assert torch.allclose(state["A"], torch.ones(5, 4), atol=1e-6)  # 10 pulses of 0.1
    assert torch.equal(state["C"], torch.zeros(5, 4))
    assert torch.equal(w, torch.zeros(5, 4))


@pytest.mark.parametrize("mode", MODES)
def test_chopped_update_and_transfer(mode: str) -> None:
    upd, w = _build(_chopped_test_config(transfer_every=5.0), _bl10(mode), 5, 4)
    for _ in range(5):
        upd.update_(w, torch.ones(1, 4), -torch.ones(1, 5), 1.0)
    state = upd.hidden_state()
    assert torch.allclose(state["A"], torch.full((5, 4), 5.0), atol=1e-5)
    expected = torch.zeros(5, 4)
    expected[:, 0] = 0.1  # one pulse of dw_min into column 0 only
    assert torch.allclose(w, expected, atol=1e-7)
    assert state["transfers"] == 1


@pytest.mark.parametrize("mode", MODES)
def test_chopped_update_and_transfer_in_one_batch(mode: str) -> None:
    upd, w = _build(_chopped_test_config(transfer_every=5.0), _bl10(mode), 5, 4)
    upd.update_(w, torch.ones(20, 4), -torch.ones(20, 5), 1.0)  # x_size * d_size samples
    assert torch.allclose(w, torch.full((5, 4), 0.1), atol=1e-7)
    assert upd.transfers == 4
    # A receives 20 x 10 x 20 pulses, C one per element
    assert upd.counter.totals()["device_pulses"] == pytest.approx(20 * 10 * 20 + 20)


# -- 13.3: the visible weight of a chopped compound with gamma > 0 ---------------------------------
def test_chopped_visible_weight_is_dechopped() -> None:
    upd, _ = _build(_chopped_test_config(gamma=0.1, transfer_every=0.0), _bl10("exact"), 3, 2)
    upd.A.copy_(torch.tensor([[0.2, -0.3], [0.5, 0.1], [-0.4, 0.6]]))
    upd.C.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    for in_flags in ([False, False], [True, False], [False, True], [True, True]):
        for out_flags in ([False, False, False], [True, False, True]):
            upd.in_chopper.copy_(torch.tensor(in_flags))
            upd.out_chopper.copy_(torch.tensor(out_flags))
            s_in = 1.0 - 2.0 * torch.tensor(in_flags, dtype=torch.float32)
            s_out = 1.0 - 2.0 * torch.tensor(out_flags, dtype=torch.float32)
            expected = 0.1 * s_out[:, None] * s_in[None, :] * upd.A + upd.C
            assert torch.allclose(upd.visible(), expected)


# -- the schedule counts exactly ------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("every,batch", [(1.0, 7), (3.0, 5), (2.0, 16)])
def test_transfers_are_floor_of_updates_over_every(mode: str, every: float, batch: int) -> None:
    upd, w = _build(_chopped_test_config(transfer_every=every), _bl10(mode), 3, 4)
    total = 0
    for _ in range(6):
        upd.update_(w, torch.rand(batch, 4), torch.randn(batch, 3), 0.01)
        total += batch
        assert upd.transfers == total // int(every)
        assert upd.transfer_counter == upd.transfers // 4, "a sweep is in_size reads"
        assert upd.slice_index == upd.transfers % 4


def test_units_in_mbatch_transfer_once_per_batch() -> None:
    cfg = TransferCompound(fast=_ideal_step(0.01, 1.0), slow=_ideal_step(0.01, 1.0))
    upd, w = _build(cfg, UpdateConfig(mode="aggregate"), 3, 4)
    for n in (5, 9, 1):
        upd.update_(w, torch.rand(n, 4), torch.randn(n, 3), 0.01)
    assert upd.transfers == 3


@pytest.mark.parametrize("mode", MODES)
def test_regular_chopper_flips_every_n_s_sweeps(mode: str) -> None:
    # in_chop_prob 0.25 regular: n_s = 4 sweeps; column k flips after its read in sweeps 3, 7, ...
    in_size = 3
    cfg = _chopped_test_config(transfer_every=1.0, in_chop_prob=0.25, in_chop_random=False)
    upd, w = _build(cfg, _bl10(mode), 2, in_size)
    flips = torch.zeros(in_size, dtype=torch.long)
    for sweep in range(1, 13):
        before = upd.in_chopper.clone()
        upd.update_(w, torch.rand(in_size, in_size), torch.randn(in_size, 2), 0.01)  # one sweep
        flips += (before != upd.in_chopper).long()
        assert upd.transfer_counter == sweep
        assert torch.equal(flips, torch.full((in_size,), sweep // 4))


def test_random_chopper_flip_rate() -> None:
    # 1000 reads with p = 0.2: the flip count is binomial, mean 200, std sqrt(1000 0.2 0.8) = 12.6;
    # +-4 std (51) holds with probability 1 - 6e-5 (the seed is fixed).
    cfg = _chopped_test_config(transfer_every=1.0, in_chop_prob=0.2, in_chop_random=True)
    upd, w = _build(cfg, _bl10("aggregate"), 2, 50)
    flips = 0
    for _ in range(20):
        before = upd.in_chopper.clone()
        upd.update_(w, torch.rand(50, 50), torch.randn(50, 2), 0.01)
        flips += int((before != upd.in_chopper).sum())
    assert abs(flips - 200) <= 51


@pytest.mark.parametrize("mode", MODES)
def test_agad_writes_start_after_the_warm_up(mode: str) -> None:
    # in_chop_prob 0.5: n_s = 2; no write into C before sweep n_s + 1 = 3 (0-based counter > n_s)
    dev = _ideal_step(0.1, 1000.0)
    cfg = DynamicTransferCompound(fast=dev, slow=dev, in_chop_prob=0.5, transfer_forward=perfect_io(),
                                  transfer_every=1.0, scale_transfer_lr=False)
    upd, w = _build(cfg, _bl10(mode), 2, 3)
    x, d = torch.ones(3, 3), -torch.ones(3, 2)
    for sweep in range(3):  # sweeps 0, 1, 2: every read crosses the threshold, nothing is written
        upd.update_(w, x, d, 1.0)
        assert torch.equal(upd.C, torch.zeros(2, 3)), f"C written in sweep {sweep}"
    assert upd.transfer_counter == 3
    upd.update_(w, x, d, 1.0)  # sweep 3 writes
    assert bool((upd.C != 0).all())
    assert upd.out_chopper.sum() == 0, "AGAD never flips output choppers"


# -- AT-1: offsets ----------------------------------------------------------------------------------
def _agad_run(offset: float, mode: str) -> list[torch.Tensor]:
    """C after every batch of an AGAD run whose every read of A carries ``offset``.

    The offset is put into A itself and into the means M and P (as if it had always been there);
    with a constant-step device (no weight dependence) and dyadic numbers every sum is exact in
    float32, so any dependence on the offset would show as a difference."""
    dev = _ideal_step(0.125, 1000.0)
    cfg = DynamicTransferCompound(fast=dev, slow=dev, in_chop_prob=0.25, tail_weightening=4.0,
                                  transfer_forward=perfect_io(), transfer_every=1.0,
                                  scale_transfer_lr=False, transfer_lr=0.0625)
    update = UpdateConfig(mode=mode, desired_bl=8, update_management=False, update_bl_management=False)
    upd, w = _build(cfg, update, 3, 4, seed=5)
    upd.A.add_(offset)
    upd.M.add_(offset)
    upd.P.add_(offset)
    gen = torch.Generator().manual_seed(3)
    out = []
    for _ in range(40):
        x = torch.randint(0, 2, (4, 4), generator=gen).float()
        d = torch.randint(-1, 2, (4, 3), generator=gen).float()
        upd.update_(w, x, d, 1.0)
        out.append(upd.C.clone())
    return out


@pytest.mark.parametrize("mode", MODES)
def test_agad_trajectory_does_not_depend_on_a_read_offset(mode: str) -> None:
    base, shifted = _agad_run(0.0, mode), _agad_run(0.5, mode)
    assert any(bool((c != 0).any()) for c in base), "the run writes into C"
    for c0, c1 in zip(base, shifted):
        assert torch.equal(c0, c1)


def test_chopped_offset_cancels_over_a_chopper_period() -> None:
    # A holds a constant offset 0.125 and gets no gradient (zero inputs); the regular chopper of
    # n_s = 4 sweeps adds +offset * lr_scale for 4 sweeps and -offset * lr_scale for the next 4.
    dev = _ideal_step(0.125, 1000.0)
    cfg = ChoppedTransferCompound(fast=dev, slow=dev, in_chop_prob=0.25, in_chop_random=False,
                                  transfer_forward=perfect_io(), transfer_every=1.0,
                                  scale_transfer_lr=False, transfer_lr=1.0 / 64)
    upd, w = _build(cfg, _bl10("exact"), 2, 3)
    upd.A.fill_(0.125)
    lr_scale = (1.0 / 64) / 0.125
    zeros_x, zeros_d = torch.zeros(3, 3), torch.zeros(3, 2)
    for _ in range(4):
        upd.update_(w, zeros_x, zeros_d, 1.0)
    assert torch.allclose(upd.H, torch.full((2, 3), 4 * 0.125 * lr_scale)), "half a period accumulates"
    for _ in range(4):
        upd.update_(w, zeros_x, zeros_d, 1.0)
    assert torch.equal(upd.H, torch.zeros(2, 3)), "a full period cancels the offset exactly"
    assert torch.equal(upd.C, torch.zeros(2, 3))


def test_ttv2_without_chopper_accumulates_the_offset() -> None:
    dev = _ideal_step(0.125, 1000.0)
    cfg = ChoppedTransferCompound(fast=dev, slow=dev, in_chop_prob=0.0, transfer_forward=perfect_io(),
                                  transfer_every=1.0, scale_transfer_lr=False, transfer_lr=1.0 / 64)
    upd, w = _build(cfg, _bl10("exact"), 2, 3)
    upd.A.fill_(0.125)
    for _ in range(8):
        upd.update_(w, torch.zeros(3, 3), torch.zeros(3, 2), 1.0)
    assert torch.allclose(upd.H, torch.full((2, 3), 8 * 0.125 * 0.125))


# -- buffered TTv2 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_buffered_threshold_and_momentum(mode: str) -> None:
    dev = _ideal_step(0.1, 1000.0)
    cfg = BufferedTransferCompound(fast=dev, slow=dev, transfer_forward=perfect_io(), transfer_every=1.0,
                                   units_in_mbatch=False, momentum=0.5, thres_scale=1.0)
    upd, w = _build(cfg, _bl10(mode), 2, 1)
    # lr = 0.025, one sample x = 1, d = -1: 10 probabilities of 0.25 -> exact mode random;
    # set A by hand instead and update with zero inputs so only the transfer acts
    upd.A.fill_(0.3)
    upd.update_(w, torch.zeros(1, 1), torch.zeros(1, 2), 0.25)
    # omega = 0 + 0.25 * 0.3 = 0.075 < dw_C = 0.1: kept
    assert torch.allclose(upd.H, torch.full((2, 1), 0.075))
    upd.update_(w, torch.zeros(1, 1), torch.zeros(1, 2), 0.25)
    # omega = 0.15 -> n = 1 pulse of 0.1 into C, H = momentum * omega = 0.075
    assert torch.allclose(upd.C, torch.full((2, 1), 0.1))
    assert torch.allclose(upd.H, torch.full((2, 1), 0.075))


# -- auto-scale and the fast learning rate ----------------------------------------------------------
def test_fast_lr_rules() -> None:
    dev = _ideal_step(0.01, 1.0)
    v1 = make_updater(TransferCompound(fast=dev, slow=dev), UpdateConfig(), 2, 2, RandomSource(0))
    assert v1._fast_lr(torch.ones(1, 2), torch.ones(1, 2), 0.05) == pytest.approx(0.05)  # fast_lr * lr
    ch = make_updater(ChoppedTransferCompound(fast=dev, slow=dev), UpdateConfig(), 2, 2, RandomSource(0))
    assert ch._fast_lr(torch.ones(1, 2), torch.ones(1, 2), 0.05) == 1.0  # absolute
    auto = make_updater(ChoppedTransferCompound(fast=dev, slow=dev, auto_scale=True, fast_lr=0.5),
                        UpdateConfig(desired_bl=31), 2, 2, RandomSource(0))
    x, d = torch.tensor([[0.5, -0.25]]), torch.tensor([[0.1, 0.4]])
    # first batch: m_x = 0.5, m_d = 0.4 -> 0.5 * 31 * 0.01 / 0.2
    assert auto._fast_lr(x, d, 0.05) == pytest.approx(0.5 * 31 * 0.01 / 0.2)
    auto._fast_lr(2 * x, d, 0.05)  # m_x -> 0.99 * 0.5 + 0.01 * 1.0
    assert auto.m_x == pytest.approx(0.505)


def test_auto_transfer_every_from_the_states() -> None:
    dev = _ideal_step(0.01, 1.0)  # 200 states
    upd = make_updater(ChoppedTransferCompound(fast=dev, slow=dev, transfer_every=-2.0),
                       UpdateConfig(), 2, 8, RandomSource(0))
    assert upd._every(32) == round(200 / 8 * 2)


def test_state_dict_round_trip_continues_identically() -> None:
    dev = ConstantStepDevice(dw_min=0.01)
    cfg = DynamicTransferCompound(fast=dev, slow=dev, in_chop_prob=0.5, auto_scale=True, fast_lr=0.1)
    upd, w = _build(cfg, UpdateConfig(rng="torch"), 3, 4, seed=2)
    x, d = torch.rand(6, 4), torch.randn(6, 3)
    for _ in range(3):
        upd.update_(w, x, d, 0.1)
    saved = upd.state_dict()
    other, _ = _build(cfg, UpdateConfig(rng="torch"), 3, 4, seed=9)
    other.load_state_dict(saved)
    assert torch.equal(other.visible(), upd.visible())
    assert other.transfer_counter == upd.transfer_counter and other.m_x == upd.m_x
    with pytest.raises(ValueError, match="lacks"):
        other.load_state_dict({k: v for k, v in saved.items() if k != "H"})


def test_reads_go_through_the_transfer_periphery() -> None:
    # a 4-bit ADC of range 1 quantizes the read to steps of 2 / 14
    dev = _ideal_step(0.1, 1000.0)
    io = IOConfig(inp_bits=None, out_bits=4, out_bound=1.0, out_noise=0.0)
    cfg = ChoppedTransferCompound(fast=dev, slow=dev, in_chop_prob=0.0, transfer_forward=io)
    upd, _ = _build(cfg, _bl10("exact"), 2, 3)
    upd.A.copy_(torch.tensor([[0.3, -2.0, 0.05], [0.0, 0.9, -0.45]]))
    v = upd._read(torch.tensor([0, 1, 2]))
    step = 2.0 / 14
    expected = torch.clamp(torch.round(upd.A / step) * step, -1.0, 1.0)
    assert torch.allclose(v, expected)
    assert math.isclose(step, IOConfig(out_bits=4, out_bound=1.0).out_step)
