"""Learning-rate (and momentum) schedules, evaluated per mini-batch (pure Python, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from dse.trial.config import ConstantSchedule, OneCycleSchedule, ScheduleConfig, StepSchedule


@dataclass(frozen=True)
class Schedule:
    """The learning rate and momentum of every step of a run.

    ``at(epoch, step)`` gives the values for mini-batch ``step`` (0-based) of ``epoch``
    (0-based); a run has ``epochs × steps_per_epoch`` steps.
    """

    config: ScheduleConfig
    """Which schedule."""
    lr: float
    """``training.lr``: the constant rate, the initial step-decay rate, or the one-cycle peak."""
    momentum: float
    """``training.momentum`` (one-cycle cycles its own momentum instead)."""
    epochs: int
    """Epochs of the run."""
    steps_per_epoch: int
    """Mini-batches per epoch."""

    def at(self, epoch: int, step: int = 0) -> tuple[float, float]:
        """``(lr, momentum)`` for mini-batch ``step`` of ``epoch``."""
        cfg = self.config
        if isinstance(cfg, ConstantSchedule):
            return self.lr, self.momentum
        if isinstance(cfg, StepSchedule):
            return self.lr * cfg.gamma ** (epoch // cfg.step_size), self.momentum
        if isinstance(cfg, OneCycleSchedule):
            return self._one_cycle(cfg, epoch * self.steps_per_epoch + step)
        raise TypeError(f"unknown schedule {type(cfg).__name__}")

    def _one_cycle(self, cfg: OneCycleSchedule, i: int) -> tuple[float, float]:
        n = self.steps_per_epoch
        rise = cfg.rising_epochs(self.epochs) * n
        total = self.epochs * n
        start = self.lr / cfg.div_factor
        final = start / cfg.final_div_factor
        m_hi, m_lo = cfg.momentum_max, cfg.momentum_min
        if i < rise:
            f = i / rise
            return start + (self.lr - start) * f, m_hi - (m_hi - m_lo) * f
        if i < 2 * rise:
            f = (i - rise) / rise
            return self.lr - (self.lr - start) * f, m_lo + (m_hi - m_lo) * f
        tail = total - 2 * rise
        f = (i - 2 * rise) / tail if tail > 0 else 1.0
        return start - (start - final) * min(f, 1.0), m_hi


def build_schedule(config: ScheduleConfig, lr: float, momentum: float, epochs: int,
                   steps_per_epoch: int) -> Schedule:
    """The :class:`Schedule` of a training section."""
    return Schedule(config, lr, momentum, epochs, max(1, steps_per_epoch))
