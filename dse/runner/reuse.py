"""Train once per training key: which trials may start now and which wait (driver side, no Ray).

A trial config's training stage has a key (:func:`dse.trial.config.training_key`). When a study
reuses trainings, the loop asks a :class:`TrainingCoordinator` before it starts a trial:

- a key whose model is stored (before this study, or by a trial of it that completed) needs
  nothing: the trial loads the model and only evaluates;
- a key no running trial is training: the trial starts and trains it (and is noted as its
  trainer);
- a key that a running trial is training: the trial *waits* (the loop parks it and starts others)
  until that trial ends; then it loads the model, or, when the trainer failed or was cancelled,
  trains it itself.

The worker's trial function looks the model up itself, so a model that turned out corrupt or
missing is trained again rather than loaded; the coordinator only keeps a key from being trained
twice at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dse.results.records import TrialState

KEY_FIELD = "training_key"
"""Key of a run's training key in a trial plan's runs (absent: the run does not reuse)."""

PRETRAINING_FIELD = "pretraining_key"
"""Key of a run's pretraining key (detector retraining's pretrained network), when it has one."""


def run_keys(config: Mapping[str, Any]) -> dict[str, str]:
    """``{"training_key": ..., "pretraining_key": ...}`` of a trial config (the latter for
    detector retraining only); ``{}`` when the config is not a valid trial config (the trial then
    runs, and fails with its own error)."""
    from dse.errors import SpecError
    from dse.trial.config import pretraining_config, training_key

    try:
        keys = {KEY_FIELD: training_key(config)}
        pre = pretraining_config(config)
    except (SpecError, ValueError, TypeError):
        return {}
    if pre is not None:
        keys[PRETRAINING_FIELD] = training_key(pre)
    return keys


class TrainingCoordinator:
    """Which trainings are stored, which are running, and in which trial (see the module doc).

    ``stored(key)`` says whether the model store holds a model for ``key``; it is asked once per
    key (the answer is kept; keys trained by completed trials are added).
    """

    def __init__(self, stored: Callable[[str], bool], *, max_waiting: int = 256) -> None:
        self._stored_fn = stored
        self.max_waiting = max_waiting
        """Most trials parked at once; beyond it the searcher is not asked for more."""
        self.training: dict[str, str] = {}
        """Training key -> id of the running trial that trains it."""
        self._stored: dict[str, bool] = {}

    def is_stored(self, key: str) -> bool:
        """Whether ``key``'s model is (known to be) stored."""
        if key not in self._stored:
            try:
                self._stored[key] = bool(self._stored_fn(key))
            except Exception:  # noqa: BLE001 - then the trial finds out itself
                return False
        return self._stored[key]

    def keys(self, runs: Sequence[Mapping[str, Any]]) -> list[str]:
        """The training keys of a plan's runs."""
        return [run[f] for run in runs for f in (PRETRAINING_FIELD, KEY_FIELD) if run.get(f)]

    def admit(self, trial_id: str, runs: Sequence[Mapping[str, Any]]) -> bool:
        """True when the trial may start now (its keys are stored, or nobody else trains them);
        it is then noted as the trainer of the keys it will train. False: it waits."""
        keys = self.keys(runs)
        for key in keys:
            owner = self.training.get(key)
            if owner is not None and owner != trial_id:
                return False
        for key in keys:
            if not self.is_stored(key):
                self.training.setdefault(key, trial_id)
        return True

    def waiting_on(self, runs: Sequence[Mapping[str, Any]]) -> list[str]:
        """Ids of the trials a plan waits for."""
        return sorted({self.training[k] for k in self.keys(runs) if k in self.training})

    def finished(self, trial_id: str, state: TrialState) -> None:
        """A trial ended: the keys it trained are stored when it completed, and free to be trained
        by a waiting trial otherwise."""
        for key in [k for k, owner in self.training.items() if owner == trial_id]:
            del self.training[key]
            if state is TrialState.COMPLETED:
                self._stored[key] = True
            else:
                self._stored.pop(key, None)
