"""Defaults follow aihwkit's wherever a config field carries an aihwkit name.

The tables are aihwkit 1.2.0's defaults: ``IOParameters`` as listed in ``../shared/golden``'s
README (section 1), and ``ConstantStepDevice`` / ``UpdateParameters`` read from the field dumps
recorded with the golden data (``pulsed_update.npz``; a hand-copied table where it is absent).
Every shared name is compared; names whose meaning differs on purpose are listed with the reason.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simulator.configs import ConstantStepDevice, IOConfig, UpdateConfig

GOLDEN = Path(os.environ.get("DSE_GOLDEN_DIR", Path(__file__).resolve().parents[3] / "shared" / "golden"))

# aihwkit IOParameters() (its resolutions are given as bits here: inp_res 1/126 <-> inp_bits 7,
# out_res 1/510 <-> out_bits 9; enums by their lower-case names).
AIHWKIT_IO = {
    "is_perfect": False, "inp_bits": 7, "inp_bound": 1.0, "inp_sto_round": False, "inp_noise": 0.0,
    "out_bits": 9, "out_bound": 12.0, "out_sto_round": False, "out_noise": 0.06, "w_noise": 0.0,
    "w_noise_type": "none", "noise_management": "abs_max", "nm_thres": 0.0, "bound_management": "iterative",
    "max_bm_factor": 1000, "max_bm_res": 0.25,
}

# Recorded ConstantStepDevice() fields, used when the golden data is not there.
AIHWKIT_CONSTANT_STEP = {
    "corrupt_devices_prob": 0.0, "corrupt_devices_range": 0.1, "diffusion": 0.0, "diffusion_dtod": 0.0,
    "dw_min": 0.001, "dw_min_dtod": 0.3, "dw_min_dtod_log_normal": False, "dw_min_std": 0.3,
    "enforce_consistency": True, "lifetime": 0.0, "lifetime_dtod": 0.0, "perfect_bias": False,
    "reset": 0.0, "reset_dtod": 0.0, "reset_std": 0.01, "up_down": 0.0, "up_down_dtod": 0.01,
    "w_max": 0.6, "w_max_dtod": 0.3, "w_min": -0.6, "w_min_dtod": 0.3,
}
AIHWKIT_UPDATE = {
    "desired_bl": 31, "fixed_bl": True, "res": 0, "d_sparsity": False, "sto_round": False,
    "update_bl_management": True, "update_management": True, "um_grad_scale": 1.0,
}

DIFFERENT_ON_PURPOSE: dict[str, str] = {}
"""``Class.field`` -> why the project's default differs from aihwkit's (none at present)."""


def _dump(key: str) -> dict[str, Any] | None:
    """The plain-valued entries of a recorded aihwkit field dump (nested objects dropped)."""
    path = GOLDEN / "pulsed_update.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        text = str(z[key])
    out = {}
    for name, value in re.findall(r"'(\w+)': (True|False|-?[0-9.e+-]+|'[^']*')(?=[,}])", text):
        out[name] = ast.literal_eval(value)
    return out


def _ours(cls: type) -> dict[str, Any]:
    instance = cls()
    return {f.name: getattr(instance, f.name) for f in fields(instance)}


@pytest.mark.parametrize(("cls", "table", "dump"), [
    (IOConfig, AIHWKIT_IO, None),
    (ConstantStepDevice, AIHWKIT_CONSTANT_STEP, "ConstantStep__device_fields"),
    (UpdateConfig, AIHWKIT_UPDATE, "update_params_repr"),
])
def test_every_shared_name_has_aihwkit_default(cls: type, table: dict[str, Any], dump: str | None) -> None:
    recorded = _dump(dump) if dump else None
    theirs = {**table, **(recorded or {})}
    if recorded is not None:  # the hand-copied table agrees with the recording
        assert {k: v for k, v in table.items() if k in recorded} == {k: recorded[k] for k in table if k in recorded}
    ours = _ours(cls)
    shared = sorted(set(ours) & set(theirs))
    assert len(shared) >= min(4, len(table)), shared  # the names really are shared
    mismatches = {n: (ours[n], theirs[n]) for n in shared
                  if f"{cls.__name__}.{n}" not in DIFFERENT_ON_PURPOSE and ours[n] != theirs[n]}
    assert mismatches == {}, f"{cls.__name__}: project default vs aihwkit's: {mismatches}"
