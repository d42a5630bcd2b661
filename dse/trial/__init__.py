"""Trials: one (hardware, model, training) configuration trained and evaluated on the simulator.

The light part is :mod:`dse.trial.config` (the torch-free schema); :func:`run_trial` imports
torch and the simulator only when called.
"""

from __future__ import annotations

from typing import Any

from dse.trial.config import TrialConfig, get_path, set_path, validate_trial_config

__all__ = ["TrialConfig", "get_path", "run_trial", "set_path", "validate_trial_config"]


def run_trial(config: dict, report: Any = None, **kwargs: Any) -> dict:
    """Run one trial; see :func:`dse.trial.run.run_trial` (imported lazily: it loads torch)."""
    from dse.trial.run import run_trial as _run_trial

    return _run_trial(config, report, **kwargs)
