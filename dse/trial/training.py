"""The training loop: mini-batches, loss, schedule, the algorithms' steps and divergence checks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dse.errors import TrialError
from dse.trial import analog
from dse.trial.config import HASGDAlgorithm, TrainingConfig
from dse.trial.schedules import Schedule


@dataclass
class Batches:
    """Float tensors of one split, ready for training or evaluation."""

    x: torch.Tensor
    """Inputs ``(N, C, H, W)`` in [0, 1]."""
    y: torch.Tensor
    """Labels ``(N,)`` (int64)."""

    def __len__(self) -> int:
        return int(self.y.shape[0])


class DivergedError(TrialError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float) -> None:
        self.epoch = epoch
        self.loss = loss
        super().__init__(f"diverged at epoch {epoch}: loss={loss}")


@dataclass
class EpochStats:
    """What one training epoch measured."""

    train_loss: float
    """Mean training loss over the epoch's mini-batches."""
    train_accuracy: float
    """Accuracy on the training mini-batches as they were seen (0-1)."""
    lr: float
    """Learning rate of the epoch's last mini-batch."""
    momentum: float
    """Momentum of the epoch's last mini-batch."""
    time_s: float
    """Wall-clock seconds of the epoch's training steps."""


@dataclass
class Trainer:
    """Trains ``model`` on ``train`` with the training section's loss, batches and schedule.

    ``step_fn`` is the algorithm's step (:func:`plain_step` or an HA-SGD step); ``generator``
    shuffles the mini-batches.
    """

    model: nn.Module
    """The network being trained."""
    optimizer: torch.optim.Optimizer
    """``AnalogSGD`` over the parameters being trained."""
    training: TrainingConfig
    """Loss and batch size."""
    schedule: Schedule
    """Learning rate and momentum per step."""
    train: Batches
    """The training split."""
    generator: torch.Generator
    """Shuffles the mini-batches (seeded by the trial)."""
    step_fn: Callable[[Trainer, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = field(
        default=None)  # type: ignore[assignment]
    """One optimizer step on a mini-batch; returns (loss, outputs). Default :func:`plain_step`."""
    frozen: list[nn.Module] = field(default_factory=list)
    """Modules kept in eval mode while training (a frozen feature extractor's batch norms)."""

    def __post_init__(self) -> None:
        if self.step_fn is None:
            self.step_fn = plain_step

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss: NLL of log-softmax outputs (paper 000) or cross-entropy of logits
        (the same function of the logits; both offered for fidelity to the configs)."""
        if self.training.loss == "nll":
            return F.nll_loss(F.log_softmax(out, dim=1), y)
        return F.cross_entropy(out, y)

    def run_epoch(self, epoch: int, schedule_epoch: int | None = None) -> EpochStats:
        """One pass over the training split (``epoch`` is 1-based, for messages)."""
        self.model.train()
        for module in self.frozen:
            module.eval()
        n = len(self.train)
        bs = self.training.batch_size
        order = torch.randperm(n, generator=self.generator)
        sched_epoch = epoch - 1 if schedule_epoch is None else schedule_epoch
        total_loss = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        lr = momentum = 0.0
        start = time.perf_counter()
        for i, begin in enumerate(range(0, n, bs)):
            idx = order[begin:begin + bs]
            x, y = self.train.x[idx], self.train.y[idx]
            lr, momentum = self.schedule.at(sched_epoch, i)
            analog.set_lr_momentum(self.optimizer, lr, momentum)
            loss, out = self.step_fn(self, x, y)
            value = float(loss)
            if not math.isfinite(value):
                raise DivergedError(epoch, value)
            total_loss += value * len(idx)
            correct += (out.argmax(dim=1) == y).sum()
        elapsed = time.perf_counter() - start
        return EpochStats(train_loss=float(total_loss) / n, train_accuracy=float(correct) / n,
                          lr=lr, momentum=momentum, time_s=elapsed)


def plain_step(trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the mini-batch (analog SGD, hardware-aware training)."""
    trainer.optimizer.zero_grad(set_to_none=True)
    out = trainer.model(x)
    loss = trainer.loss(out, y)
    loss.backward()
    trainer.optimizer.step()
    return loss.detach(), out.detach()


def ha_sgd_step(algorithm: HASGDAlgorithm) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """Paper 001, Algorithm 1: average the gradients of ``L`` forward/backward passes, each with
    an independent perturbation ``W + ν`` of every analog weight, then take one optimizer step
    on the unperturbed weights. The reported loss / outputs are those of the perturbed passes
    (mean loss; outputs of the first pass). Perturbations come from the analog layers' own
    seeded random sources."""
    def step(trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trainer.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros(())
        first_out: torch.Tensor | None = None
        for _ in range(algorithm.samples):
            with analog.perturbed(trainer.model, std=algorithm.std, mean_shift=algorithm.mean_shift):
                out = trainer.model(x)
                loss = trainer.loss(out, y)
                (loss / algorithm.samples).backward()
            total = total + loss.detach()
            if first_out is None:
                first_out = out.detach()
        trainer.optimizer.step()
        return total / algorithm.samples, first_out  # type: ignore[return-value]  # samples >= 1

    return step


@torch.no_grad()
def evaluate(model: nn.Module, data: Batches, batch_size: int) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy loss)`` of ``model`` in eval mode on ``data``."""
    model.eval()
    correct = 0
    loss = 0.0
    for begin in range(0, len(data), batch_size):
        x = data.x[begin:begin + batch_size]
        y = data.y[begin:begin + batch_size]
        out = model(x)
        loss += float(F.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(dim=1) == y).sum())
    n = max(1, len(data))
    return correct / n, loss / n


def to_batches(x: Any, y: Any, scale: float) -> Batches:
    """Float32 tensors scaled to [0, 1] from uint8 numpy arrays."""
    xt = torch.from_numpy(x).to(torch.float32).mul_(scale)
    yt = torch.from_numpy(y).to(torch.int64)
    return Batches(xt.contiguous(), yt)
