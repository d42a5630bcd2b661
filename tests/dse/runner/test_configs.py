"""Every ready study in configs/ is a valid spec whose targets exist in the trial config."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.spec import load_spec

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs").glob("*.yaml"))
EXPECTED = {"quickstart", "seed000_fcnn_mnist", "seed000_snr", "seed002_one_cycle", "seed001_hasgd",
            "seed004_retrain", "hardware_pareto", "inference_pcm", "asymmetric_devices", "inference_sweep"}


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


def test_the_quickstart_prices_real_designs_only():
    spec = load_spec(CONFIGS[[p.stem for p in CONFIGS].index("quickstart")])
    assert [o.metric for o in spec.objectives] == ["accuracy", "energy_per_inference_nj"]
    presets = next(p for p in spec.parameters if p.target == "hardware.preset")
    assert "ideal" not in presets.values  # no free lunch from an unpriced periphery
    targets = {p.target for p in spec.parameters}
    assert {"hardware.forward.out_bits", "hardware.forward.inp_bits", "hardware.mapping.max_input_size",
            "model.hidden"} <= targets


@pytest.mark.slow
@pytest.mark.ray
def test_the_quickstart_front_is_a_real_trade_off(ray_session, tmp_path):
    from dse.pareto import pareto_front
    from dse.runner import run_study

    spec = load_spec(CONFIGS[[p.stem for p in CONFIGS].index("quickstart")])
    outcome = run_study(spec, tmp_path)
    front = pareto_front(outcome.records, spec.objectives)
    designs = {tuple(sorted((k, str(v)) for k, v in r.params.items())) for r in front}
    energies = [r.metrics["energy_per_inference_nj"] for r in front]
    assert len(designs) >= 4, [r.params for r in front]
    assert max(energies) >= 2 * min(energies)


def test_the_asymmetric_devices_study_crosses_families_and_algorithms():
    spec = load_spec(CONFIGS[[p.stem for p in CONFIGS].index("asymmetric_devices")])
    presets = next(p for p in spec.parameters if p.target == "hardware.preset").values
    for family in ("reram_es", "reram_sb", "ecram"):
        assert family in presets
        for algo in ("tiki_taka", "ttv2", "c_ttv2", "agad"):
            assert f"{algo}_{family}" in presets
    targets = {p.target for p in spec.parameters}
    assert {"hardware.device.fast.reference_mean", "hardware.device.fast.dw_min"} <= targets
    assert spec.grid_size() == 40
    assert spec.base["model"]["activation"] == "sigmoid" and spec.base["training"]["batch_size"] == 10


def test_the_paper_and_inference_sweeps_train_once_per_training_configuration():
    # The swept chips are evaluation fields: the number of distinct training keys (per seed) is
    # the number of trainings the study pays, not the number of trials.
    from dse.runner.reuse import run_keys

    def trainings(name):
        spec = load_spec(CONFIGS[[p.stem for p in CONFIGS].index(name)])
        keys = set()
        for params in spec.iter_grid():
            for config in spec.trial_configs(params):
                found = run_keys(config)
                keys.add(found.get("pretraining_key") or found["training_key"])
        return spec.grid_size() * len(spec.seeds), len(keys)

    assert trainings("inference_sweep") == (81, 1)
    assert trainings("seed001_hasgd") == (12, 4)  # 2 algorithms x 2 seeds
    assert trainings("seed004_retrain") == (16, 2)  # one pretraining per seed
    assert trainings("inference_pcm") == (24, 4)  # one per tile size


def test_every_ready_study_asks_for_metrics_the_trial_function_produces():
    from dse.metric_names import check_study_metrics

    for path in CONFIGS:
        spec = load_spec(path)
        check_study_metrics(spec.objectives, spec.constraints, "dse.trial.run:run_trial")
