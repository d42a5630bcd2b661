"""Trained models, kept once per training key and reused by every trial that shares it.

- :class:`ModelStore`: a directory of model files (``<root>/<key[:2]>/<key>.model``), written
  atomically, checked (SHA-256) on every read: a corrupt or truncated file is set aside and
  reported absent, so its training runs again;
- :class:`ModelSource`: what a trial function is handed to fetch and keep models
  (:class:`StoreSource` over a local store; the Ray runner's source talks to the driver, see
  :mod:`dse.runner.models`);
- :func:`model_store_for` picks the directory: an explicit ``--model-store DIR`` or the
  results directory's ``models/``;
- :func:`export_trial_model`: a trial's model as a file to take away (``dse model export``, the
  service's ``GET /v1/studies/{id}/trials/{n}/model``).

Torch-free: model files are moved and checked as bytes; :mod:`dse.trial.stored` builds them.
"""

from __future__ import annotations

from dse.models.export import export_trial_model, trial_training_key
from dse.models.source import ModelSource, StoreSource
from dse.models.store import MODELS_DIRNAME, ModelStore, model_store_for

__all__ = ["MODELS_DIRNAME", "ModelSource", "ModelStore", "StoreSource", "export_trial_model", "model_store_for",
           "trial_training_key"]
