"""Shapes of the learning-rate schedules: constant, step decay and one-cycle with momentum."""

from __future__ import annotations

import pytest

from dse.trial.config import parse_trial_config
from dse.trial.schedules import build_schedule


def _schedule(training: dict, steps_per_epoch: int = 10):
    t = parse_trial_config({"training": training}).training
    return build_schedule(t.schedule, t.lr, t.momentum, t.epochs, steps_per_epoch)


def test_constant_keeps_lr_and_momentum() -> None:
    s = _schedule({"lr": 0.05, "momentum": 0.9, "epochs": 5})
    assert {s.at(e, i) for e in range(5) for i in range(10)} == {(0.05, 0.9)}


def test_step_halves_every_ten_epochs_as_in_paper_000() -> None:
    s = _schedule({"lr": 0.05, "epochs": 30, "schedule": {"type": "step", "step_size": 10, "gamma": 0.5}})
    lrs = [s.at(e)[0] for e in range(30)]
    assert lrs[:10] == [0.05] * 10
    assert lrs[10:20] == [pytest.approx(0.025)] * 10
    assert lrs[20:] == [pytest.approx(0.0125)] * 10


def test_one_cycle_matches_paper_002_clr_001_01_5() -> None:
    # CLR/0.01-0.1/5 with momentum 0.95-0.85/5 over 12 epochs: up 5 epochs, down 5, anneal 2.
    s = _schedule({"lr": 0.1, "epochs": 12, "schedule": {"type": "one_cycle", "div_factor": 10,
                                                         "step_epochs": 5}}, steps_per_epoch=4)
    assert s.at(0, 0) == pytest.approx((0.01, 0.95))
    assert s.at(5, 0) == pytest.approx((0.1, 0.85))           # the peak, momentum at its minimum
    assert s.at(10, 0) == pytest.approx((0.01, 0.95))         # back at the start
    last_lr, last_m = s.at(11, 3)
    assert last_lr < 0.01 and last_lr > 0.001 and last_m == 0.95   # annealing towards 0.001
    steps = [s.at(e, i) for e in range(12) for i in range(4)]
    lrs = [lr for lr, _ in steps]
    assert all(b > a for a, b in zip(lrs[:20], lrs[1:21]))     # strictly rising for 5 epochs
    assert all(b < a for a, b in zip(lrs[20:], lrs[21:]))      # then strictly falling to the end
    assert max(lrs) == pytest.approx(0.1)
    for lr, m in steps[:41]:  # during the cycle momentum mirrors the learning rate
        assert (m - 0.85) / 0.1 == pytest.approx(1 - (lr - 0.01) / 0.09)


def test_one_cycle_without_annealing_phase_ends_at_the_start_rate() -> None:
    s = _schedule({"lr": 0.5, "epochs": 4, "schedule": {"type": "one_cycle", "div_factor": 5, "step_epochs": 2}},
                  steps_per_epoch=1)
    assert [round(s.at(e)[0], 6) for e in range(4)] == [0.1, 0.3, 0.5, 0.3]
