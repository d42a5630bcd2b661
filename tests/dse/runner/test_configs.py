"""Every ready study in configs/ is a valid spec whose targets exist in the trial config."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.spec import load_spec

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs").glob("*.yaml"))
EXPECTED = {"quickstart", "seed000_fcnn_mnist", "seed000_snr", "seed002_one_cycle", "seed001_hasgd",
            "seed004_retrain", "hardware_pareto"}


def test_the_issue_s_ready_studies_are_all_there():
    assert {p.stem for p in CONFIGS} == EXPECTED


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_ready_study_loads_with_targets_checked(path):
    spec = load_spec(path)  # probes every parameter target against the trial config schema
    assert spec.name == path.stem
    for params in [spec.default_params()]:
        for config in spec.trial_configs(params):
            assert config["seed"] in spec.seeds


def test_quickstart_is_small_enough_for_a_minute_on_two_cores():
    spec = load_spec(CONFIGS[[p.stem for p in CONFIGS].index("quickstart")])
    assert spec.base["dataset"]["name"] == "digits"  # embedded: no files
    assert spec.budget.max_trials <= 20 and spec.base["training"]["epochs"] <= 5
