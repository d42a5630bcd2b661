"""Trial functions used by the runner tests (imported by name in the Ray workers)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from dse.runner.synthetic import paced_trial, synthetic_metrics


def probe_trial(config: Mapping[str, Any], report: Callable | None = None, *, dataset: Any = None) -> dict:
    """Synthetic metrics plus where and how the trial ran: worker process, the dataset object it
    was handed, and torch's thread count."""
    import torch

    metrics = synthetic_metrics(config)
    metrics.update(
        worker_pid=float(os.getpid()),
        dataset_object=float(id(dataset)) if dataset is not None else -1.0,
        dataset_rows=float(len(dataset.train_y)) if dataset is not None else -1.0,
        torch_threads=float(torch.get_num_threads()),
    )
    return metrics


def buggy_trial(config: Mapping[str, Any], report: Callable | None = None, *, dataset: Any = None) -> dict:
    """Raises a plain exception (a bug, not a divergence) for single-layer networks."""
    hidden = list((config.get("model") or {}).get("hidden", ()))
    if len(hidden) == 1:
        raise RuntimeError(f"boom for hidden={hidden}")
    return synthetic_metrics(config)


def slow_trial(config: Mapping[str, Any], report: Callable | None = None, *, dataset: Any = None) -> dict:
    """:func:`paced_trial` (0.1 s per epoch, per-epoch reports) after a 0.5 s start."""
    time.sleep(0.5)
    return paced_trial(config, report, dataset=dataset)


def crash_once_trial(config: Mapping[str, Any], report: Callable | None = None, *, dataset: Any = None) -> dict:
    """Kills its own worker process the first time it sees a learning rate (a marker file in the
    temporary directory remembers it), then behaves like ``instant_trial``."""
    import tempfile
    from pathlib import Path

    marker = Path(tempfile.gettempdir()) / f"dse-crash-once-{config['training']['lr']!r}"
    if not marker.exists():
        marker.touch()
        os._exit(1)
    return synthetic_metrics(config)


def crash_always_trial(config: Mapping[str, Any], report: Callable | None = None, *, dataset: Any = None) -> dict:
    """Kills its own worker process every time (a trial that can never run)."""
    os._exit(1)
