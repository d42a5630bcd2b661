"""The training section of a trial config: optimizer, loss, batches and LR schedule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from dse.trial.config._kinded import KindedConfig
from simulator._config import Config, check_range
from simulator.errors import ConfigError


@dataclass
class ScheduleConfig(KindedConfig):
    """Learning-rate schedule (polymorphic: ``type`` is constant, step or one_cycle)."""


@dataclass
class ConstantSchedule(ScheduleConfig):
    """The learning rate stays at ``training.lr``."""

    kind: ClassVar[str] = "constant"


@dataclass
class StepSchedule(ScheduleConfig):
    """``training.lr`` multiplied by ``gamma`` every ``step_size`` epochs (paper 000: ×0.5 / 10)."""

    kind: ClassVar[str] = "step"
    step_size: int = 10
    """Epochs between two decays."""
    gamma: float = 0.5
    """Factor applied at each decay."""

    def validate(self) -> None:
        check_range("step_size", self.step_size, 1)
        check_range("gamma", self.gamma, 0.0, 1.0, lo_open=True)


@dataclass
class OneCycleSchedule(ScheduleConfig):
    """Smith's one-cycle policy with momentum cycling (paper 002's super-convergence).

    The learning rate rises linearly from ``training.lr / div_factor`` to the peak
    ``training.lr`` over ``step_epochs``, falls back over as many epochs, then anneals to
    ``training.lr / (div_factor * final_div_factor)`` over the remaining epochs; momentum moves
    the opposite way between ``momentum_max`` and ``momentum_min``. Paper 002's
    ``CLR/0.01-0.1/5`` with 12 epochs is ``lr: 0.1, div_factor: 10, step_epochs: 5``.
    Updated every mini-batch.
    """

    kind: ClassVar[str] = "one_cycle"
    div_factor: float = 10.0
    """Peak over starting learning rate (paper 002: 0.1 / 0.01 = 10)."""
    step_epochs: int | None = None
    """Epochs of the rising phase (the falling phase is as long); ``None`` takes 45% of the
    epochs (rounded down, at least 1)."""
    final_div_factor: float = 10.0
    """Starting over final learning rate in the annealing phase."""
    momentum_max: float = 0.95
    """Momentum at the start and the end of the cycle."""
    momentum_min: float = 0.85
    """Momentum at the learning-rate peak."""

    def validate(self) -> None:
        check_range("div_factor", self.div_factor, 1.0)
        check_range("step_epochs", self.step_epochs, 1, allow_none=True)
        check_range("final_div_factor", self.final_div_factor, 1.0)
        check_range("momentum_max", self.momentum_max, 0.0, 1.0, hi_open=True)
        check_range("momentum_min", self.momentum_min, 0.0, self.momentum_max)

    def rising_epochs(self, epochs: int) -> int:
        """Length of the rising phase for a run of ``epochs`` epochs."""
        return self.step_epochs if self.step_epochs is not None else max(1, int(0.45 * epochs))


ScheduleConfig.register(ConstantSchedule, StepSchedule, OneCycleSchedule)


@dataclass
class TrainingConfig(Config):
    """Optimizer (``AnalogSGD``), loss, mini-batches and learning-rate schedule."""

    epochs: int = 10
    """Training epochs (passes over the training split)."""
    batch_size: int = 32
    """Mini-batch size."""
    lr: float = 0.05
    """Learning rate (the peak for the one-cycle schedule)."""
    momentum: float = 0.0
    """SGD momentum (cycled by the one-cycle schedule instead)."""
    weight_decay: float = 0.0
    """L2 weight decay."""
    loss: Literal["cross_entropy", "nll"] = "cross_entropy"
    """``nll``: the model ends in log-softmax and is trained with NLL (paper 000);
    ``cross_entropy``: raw logits and cross-entropy. Mathematically the same objective."""
    schedule: ScheduleConfig = field(default_factory=ConstantSchedule)
    """Learning-rate schedule: ``{type: constant}``, ``{type: step, step_size, gamma}``,
    ``{type: one_cycle, div_factor, step_epochs, ...}``."""

    def validate(self) -> None:
        check_range("epochs", self.epochs, 1, 100_000)
        check_range("batch_size", self.batch_size, 1, 1_000_000)
        check_range("lr", self.lr, 0.0, 100.0, lo_open=True)
        check_range("momentum", self.momentum, 0.0, 1.0, hi_open=True)
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        if isinstance(self.schedule, OneCycleSchedule):
            rise = self.schedule.rising_epochs(self.epochs)
            if 2 * rise > self.epochs:
                raise ConfigError("schedule.step_epochs",
                                  f"got {rise}, but rising and falling phases (2 × {rise}) exceed "
                                  f"epochs = {self.epochs}; accepted: step_epochs <= epochs / 2")
