"""The learning-rate range test (Smith 2017; paper 002 fig. 3) and the one-cycle range it suggests.

The trial's network is trained while the learning rate grows every mini-batch from ``lr_min`` to
``lr_max`` (linearly or geometrically); after each of ``points`` equal segments the validation
accuracy is measured. Smith's reading of the curve: the rate where accuracy starts to rise is a
good lower bound, the rate where it stops rising (or turns ragged / falls) the upper bound. The
suggestion here: the peak is the rate of the best validation accuracy before the curve first
falls by more than 20% of its rise (where it turns ragged), the start is the first rate at which
the accuracy has covered 10% of its rise, clamped so that the peak / start ratio
(``div_factor``) lies in [3, 25]. The run stops early when the loss turns NaN / infinite or
exceeds four times its best value (the network has diverged).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dse.errors import SpecError

RISE_FRACTION = 0.1
"""Share of the accuracy rise that marks the lower bound."""

FALL_FRACTION = 0.2
"""A fall below the best accuracy by more than this share of the rise ends the usable curve."""

DIV_RANGE = (3.0, 25.0)
"""Allowed peak / start ratios of the suggestion."""


@dataclass
class RangeTestResult:
    """The curve of a learning-rate range test and the one-cycle range read from it."""

    lrs: list[float] = field(default_factory=list)
    """Learning rate at the end of each segment."""
    accuracies: list[float] = field(default_factory=list)
    """Validation accuracy after each segment."""
    losses: list[float] = field(default_factory=list)
    """Mean training loss of each segment."""
    diverged_at: float | None = None
    """Learning rate at which the loss diverged (the curve stops there), else ``None``."""
    suggested_lr: float = float("nan")
    """Suggested one-cycle peak (``training.lr``)."""
    suggested_div_factor: float = float("nan")
    """Suggested ``training.schedule.div_factor`` (peak / start)."""

    @property
    def suggested_start(self) -> float:
        """Suggested starting learning rate of the cycle."""
        return self.suggested_lr / self.suggested_div_factor

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for JSON)."""
        return {"lrs": self.lrs, "accuracies": self.accuracies, "losses": self.losses,
                "diverged_at": self.diverged_at, "suggested_lr": self.suggested_lr,
                "suggested_start": self.suggested_start, "suggested_div_factor": self.suggested_div_factor}


def suggest(lrs: list[float], accuracies: list[float]) -> tuple[float, float]:
    """``(peak, div_factor)`` from a range-test curve (see the module doc).

    Walking up the learning rates, the curve is followed while it rises or dips by less than
    ``FALL_FRACTION`` of the rise so far; the first larger fall ends it (the ragged part). The
    peak is the rate of the best accuracy before that point.
    """
    if not lrs:
        raise ValueError("an empty range-test curve has no suggestion")
    base = accuracies[0]
    best = 0
    for i, acc in enumerate(accuracies):
        base = min(base, acc)
        rise = accuracies[best] - base
        if acc < accuracies[best] - FALL_FRACTION * rise:
            break
        if acc > accuracies[best]:
            best = i
    peak = lrs[best]
    low = min(accuracies[: best + 1])
    threshold = low + RISE_FRACTION * (accuracies[best] - low)
    start = next((lrs[i] for i in range(best + 1) if accuracies[i] >= threshold), peak)
    div = peak / start if start > 0 else DIV_RANGE[1]
    return peak, min(max(div, DIV_RANGE[0]), DIV_RANGE[1])


def lr_range_test(config: Mapping[str, Any], *, lr_min: float = 1e-3, lr_max: float = 1.0,
                  epochs: int = 2, points: int = 20, scale: Literal["linear", "log"] = "linear",
                  dataset: Any = None, num_threads: int | None = None,
                  progress: Callable[[float, float, float], None] | None = None) -> RangeTestResult:
    """Run the range test on the trial ``config`` (its data, model, hardware and algorithm;
    its schedule and epochs are replaced by the sweep) and return the curve with a suggestion."""
    if not (0 < lr_min < lr_max):
        raise SpecError("lr_min", f"got lr_min={lr_min!r}, lr_max={lr_max!r}; accepted: 0 < lr_min < lr_max")
    if points < 2:
        raise SpecError("points", f"got {points!r}; accepted: an integer >= 2")
    if epochs < 1:
        raise SpecError("epochs", f"got {epochs!r}; accepted: an integer >= 1")
    import torch

    from dse.trial import analog
    from dse.trial.config import HASGDAlgorithm, parse_trial_config
    from dse.trial.run import prepare
    from dse.trial.training import Trainer, evaluate, ha_sgd_step

    trial = parse_trial_config(config)
    if num_threads is not None:
        torch.set_num_threads(max(1, int(num_threads)))
    run = prepare(trial, dataset)
    tr = trial.training
    opt = analog.optimizer(run.model, run.model.parameters(), lr=lr_min, momentum=tr.momentum,
                           weight_decay=tr.weight_decay)
    trainer = Trainer(run.model, opt, tr, schedule=None, train=run.train, generator=run.generator)  # type: ignore[arg-type]
    step_fn = ha_sgd_step(trial.algorithm) if isinstance(trial.algorithm, HASGDAlgorithm) else trainer.step_fn
    n, bs = len(run.train), tr.batch_size
    per_epoch = -(-n // bs)
    total = epochs * per_epoch
    marks = {max(1, round(k * total / points)) for k in range(1, points + 1)}  # segment ends

    def lr_at(i: int) -> float:
        f = i / max(1, total - 1)
        return lr_min + (lr_max - lr_min) * f if scale == "linear" else lr_min * (lr_max / lr_min) ** f

    result = RangeTestResult()
    best_loss = math.inf
    seg_loss, seg_count, i = 0.0, 0, 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=run.generator)
        for begin in range(0, n, bs):
            run.model.train()
            idx = order[begin:begin + bs]
            lr = lr_at(i)
            analog.set_lr_momentum(opt, lr, tr.momentum)
            loss = float(step_fn(trainer, run.train.x[idx], run.train.y[idx])[0])
            i += 1
            if not math.isfinite(loss):
                result.diverged_at = lr
                break
            seg_loss += loss
            seg_count += 1
            if i in marks:
                acc = evaluate(run.model, run.val, trial.evaluation.batch_size)[0]
                mean_loss = seg_loss / seg_count
                if mean_loss > 4 * best_loss:
                    result.diverged_at = lr
                    break
                best_loss = min(best_loss, mean_loss)
                result.lrs.append(lr)
                result.accuracies.append(acc)
                result.losses.append(mean_loss)
                seg_loss, seg_count = 0.0, 0
                if progress is not None:
                    progress(lr, acc, mean_loss)
        if result.diverged_at is not None:
            break
    if result.lrs:
        result.suggested_lr, result.suggested_div_factor = suggest(result.lrs, result.accuracies)
    return result
