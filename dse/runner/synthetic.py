"""Synthetic trial functions: closed-form metrics of a trial config, for measuring the engine.

They take the same arguments as :func:`dse.trial.run.run_trial` and read the same trial config,
but compute their metrics from a formula instead of training a network, so a study of them
measures the engine itself (scheduling, actor reuse, recording) and gives searchers a known
landscape. Select one with ``RayTuneRunner(trial_fn="dse.runner.synthetic:instant_trial")`` or
``dse run --trial-fn``.

The landscape (``lr`` = ``training.lr``, ``bs`` = ``training.batch_size``, ``hidden`` =
``model.hidden``, ``E`` = ``training.epochs``):

- ``accuracy`` peaks at lr = 0.05 and bs = 32 and grows with the network's width:
  ``0.97 - 0.06·log10(lr/0.05)² - 0.01·log2(bs/32)² - 0.05·exp(-Σhidden/100)`` plus a seeded
  N(0, 0.002²) term, clipped to [0, 1];
- ``train_time_s`` = ``1e-4·E·(64·h1 + h1·h2 + ... + hk·10)/bs^0.5`` (MACs per sample over a
  sub-linear batch speed-up);
- ``n_layers`` = len(hidden) + 1 and ``n_params`` the fcnn weight count for 8×8 inputs;
- ``lr > 1`` *diverges*: the trial raises :class:`~dse.errors.TrialError`, as ``run_trial`` does
  on a NaN loss.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from dse.errors import TrialError
from dse.metric_names import MetricNames

DIVERGENCE_LR = 1.0
"""Learning rates above this make a synthetic trial diverge (raise TrialError)."""

PACED_EPOCH_S = 0.1
"""Seconds :func:`paced_trial` sleeps per epoch."""


def synthetic_metrics(config: Mapping[str, Any]) -> dict[str, float]:
    """The closed-form metrics of a trial config (see the module docstring)."""
    training = config.get("training", {}) or {}
    lr = float(training.get("lr", 0.05))
    bs = int(training.get("batch_size", 32))
    epochs = int(training.get("epochs", 10))
    hidden = [int(h) for h in (config.get("model", {}) or {}).get("hidden", (256, 128))]
    seed = int(config.get("seed", 0))
    if lr > DIVERGENCE_LR:
        raise TrialError(f"diverged at epoch 1: loss=nan (synthetic divergence above lr={DIVERGENCE_LR:g})")
    noise = random.Random(seed).gauss(0.0, 0.002)
    accuracy = (
        0.97
        - 0.06 * math.log10(lr / 0.05) ** 2
        - 0.01 * math.log2(bs / 32) ** 2
        - 0.05 * math.exp(-sum(hidden) / 100.0)
        + noise
    )
    widths = [64, *hidden, 10]
    macs = sum(a * b for a, b in itertools.pairwise(widths))
    n_params = sum(a * b + b for a, b in itertools.pairwise(widths))
    return {
        "accuracy": min(1.0, max(0.0, accuracy)),
        "train_time_s": 1e-4 * epochs * macs / math.sqrt(bs),
        "n_layers": float(len(hidden) + 1),
        "n_params": float(n_params),
        "macs": float(macs),
    }


def instant_trial(
    config: Mapping[str, Any], report: Callable[[dict], None] | None = None, *, dataset: Any = None
) -> dict[str, float]:
    """Return the synthetic metrics at once, without per-epoch reports."""
    return synthetic_metrics(config)


def paced_trial(
    config: Mapping[str, Any], report: Callable[[dict], None] | None = None, *, dataset: Any = None
) -> dict[str, float]:
    """Like :func:`instant_trial`, but runs ``training.epochs`` epochs of :data:`PACED_EPOCH_S`
    seconds each and reports a learning curve (``accuracy`` approaching the final value) per epoch."""
    final = synthetic_metrics(config)
    epochs = int((config.get("training", {}) or {}).get("epochs", 10))
    for epoch in range(1, epochs + 1):
        time.sleep(PACED_EPOCH_S)
        if report is not None:
            progress = 1.0 - math.exp(-3.0 * epoch / epochs)
            report({"epoch": epoch, "accuracy": final["accuracy"] * progress,
                    "epoch_time_s": PACED_EPOCH_S})
    return final


SYNTHETIC_METRICS = MetricNames(names=frozenset({"accuracy", "train_time_s", "n_layers", "n_params", "macs"}))
"""The metrics of the synthetic trial functions."""
instant_trial.metric_names = SYNTHETIC_METRICS  # type: ignore[attr-defined]
paced_trial.metric_names = SYNTHETIC_METRICS  # type: ignore[attr-defined]
