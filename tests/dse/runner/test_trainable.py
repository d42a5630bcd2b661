"""The worker-side pieces of the trainable that need no Ray session."""

from __future__ import annotations

import pytest

from dse.errors import TrialError
from dse.runner.trainable import numeric_metrics, resolve_trial_fn


def test_trial_functions_resolve_by_import_path():
    fn = resolve_trial_fn("dse.runner.synthetic:instant_trial")
    assert fn({"training": {"lr": 0.05}})["accuracy"] > 0.8
    assert resolve_trial_fn("dse.runner.synthetic:instant_trial") is fn  # cached per process


@pytest.mark.parametrize("path, message", [
    ("dse.runner.synthetic.instant_trial", "is not an import path; expected 'package.module:function'"),
    ("dse.runner.synthetic:nope", "module 'dse.runner.synthetic' has no attribute 'nope'"),
    ("dse.runner.synthetic:PACED_EPOCH_S", "is a float, not a function"),
])
def test_bad_trial_function_paths_are_named(path, message):
    with pytest.raises((ValueError, TypeError), match=message):
        resolve_trial_fn(path)
    with pytest.raises(ModuleNotFoundError):
        resolve_trial_fn("no_such_module_xyz:fn")


def test_numeric_metrics_keep_numbers_and_nested_numbers_only():
    np = pytest.importorskip("numpy")
    out = numeric_metrics({"accuracy": np.float32(0.5), "epochs": 3, "ok": True, "name": "x", "none": None,
                           "drift": {"1h": 0.9, "label": "a"}, "curve": [1, 2]})
    assert out == {"accuracy": 0.5, "epochs": 3.0, "ok": 1.0, "drift": {"1h": 0.9}}
    with pytest.raises(TrialError, match="returned list; expected a dict"):
        numeric_metrics([0.5], repeat=1)
