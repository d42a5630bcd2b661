"""Study specs: parsing, validation with field paths, target checks, mapping to trial configs."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dse.errors import NotFoundError, SpecError
from dse.spec import StudySpec, load_spec
from dse.trial.config import validate_trial_config

ROOT = Path(__file__).resolve().parents[2]


def study(**changes: Any) -> dict[str, Any]:
    """A valid multi-objective study on digits; ``changes`` replace top-level fields."""
    data: dict[str, Any] = {
        "name": "unit",
        "description": "spec tests",
        "labels": {"owner": "tests"},
        "base": {"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [32]},
                 "training": {"epochs": 2, "lr": 0.1}},
        "parameters": [
            {"name": "lr", "target": "training.lr", "type": "float", "low": 0.001, "high": 0.5, "log": True},
            {"name": "batch", "target": "training.batch_size", "type": "int", "low": 16, "high": 64, "step": 16},
            {"name": "act", "target": "model.activation", "type": "categorical", "values": ["relu", "tanh"]},
            {"name": "hidden", "target": "model.hidden", "type": "categorical", "values": [[32], [64, 32]]},
            {"name": "preset", "target": "hardware.preset", "type": "categorical",
             "values": ["ideal", "gokmen_vlasov"]},
            {"name": "dw", "target": "hardware.device.dw_min", "type": "discrete", "values": [0.001, 0.002, 0.005],
             "condition": {"parameter": "preset", "in": ["gokmen_vlasov"]}},
        ],
        "objectives": [{"metric": "accuracy", "goal": "maximize", "threshold": 0.5},
                       {"metric": "train_time_s", "goal": "min"}],
        "constraints": ["n_tiles <= 16"],
        "searcher": {"type": "tpe", "seed": 3, "n_startup_trials": 4},
        "budget": {"max_trials": 20, "max_concurrent_trials": 2},
        "repeats": 2,
        "resources": {"cpus": 1},
    }
    data.update(copy.deepcopy(changes))
    return data


def param(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in data["parameters"] if p["name"] == name)


# -- loading ------------------------------------------------------------------------------------
def test_loads_from_dict_yaml_text_json_text_and_paths(tmp_path: Path) -> None:
    data = study()
    from_dict = load_spec(data)
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(yaml.safe_dump(data))
    json_path = tmp_path / "s.json"
    json_path.write_text(json.dumps(data))
    bare = tmp_path / "study"
    bare.write_text(yaml.safe_dump(data))
    for source in (yaml.safe_dump(data), json.dumps(data), yaml_path, str(yaml_path), json_path, str(bare)):
        assert load_spec(source) == from_dict
    assert load_spec(from_dict) is from_dict


def test_yaml_exponent_without_dot_is_a_number() -> None:
    text = yaml.safe_dump(study()).replace("low: 0.001", "low: 1e-3")
    assert "1e-3" in text
    assert load_spec(text).parameter("lr").low == pytest.approx(1e-3)


def test_missing_file_and_bad_yaml_are_reported() -> None:
    with pytest.raises(NotFoundError, match="nope.yaml"):
        load_spec("nope.yaml")
    with pytest.raises(SpecError, match="invalid YAML at line 3, column 1"):
        load_spec("name: x\nparameters: [\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec("- just\n- a list\n")


def test_round_trip_through_dict_json_and_yaml() -> None:
    spec = load_spec(study(scheduler="fifo"))
    assert load_spec(spec.to_dict()) == spec
    assert load_spec(spec.to_json()) == spec
    assert load_spec(spec.to_yaml()) == spec
    assert spec.to_dict() == load_spec(spec.to_dict()).to_dict()
    json.dumps(spec.to_dict())  # JSON-safe


def test_round_trip_of_every_searcher_and_scheduler_option() -> None:
    variants = [
        {"searcher": {"type": "nsga2", "population_size": 8, "crossover_prob": 0.5}},
        {"searcher": {"type": "gp", "n_startup_trials": 3}},
        {"searcher": {"type": "random", "seed": 9}},
        {"searcher": {"type": "tpe", "multivariate": False, "constant_liar": False}},
    ]
    for v in variants:
        spec = load_spec(study(**v))
        assert load_spec(spec.to_dict()) == spec
    finite = study(searcher={"type": "coordinate", "order": [["batch", "act"], "hidden"], "objective": "accuracy",
                             "mode": "independent"})
    param(finite, "lr").update(step=None, type="discrete", values=[0.01, 0.1], low=None, high=None, log=None)
    spec = load_spec(finite)
    assert spec.searcher.options.order == (("batch", "act"), ("hidden",))
    assert load_spec(spec.to_dict()) == spec
    asha = load_spec(study(objectives=[{"metric": "accuracy", "goal": "max"}], repeats=1,
                           scheduler={"type": "asha", "grace_period": 2, "reduction_factor": 2, "max_t": 8}))
    assert asha.scheduler.max_t == 8
    assert load_spec(asha.to_dict()) == asha


def test_shorthands_are_normalized() -> None:
    spec = load_spec(study())
    assert [o.goal for o in spec.objectives] == ["maximize", "minimize"]
    c = spec.constraints[0]
    assert (c.metric, c.op, c.bound) == ("n_tiles", "<=", 16.0)
    assert spec.repeats.count == 2 and spec.seeds == (0, 1)
    assert spec.searcher.type == "tpe" and spec.searcher.options.n_startup_trials == 4
    assert spec.scheduler.type == "fifo"
    assert param(study(), "lr")["name"] == spec.parameters[0].name
    unnamed = study()
    del unnamed["parameters"][0]["name"]
    assert load_spec(unnamed).parameters[0].name == "training.lr"


# -- errors name the field ----------------------------------------------------------------------
def _drop(data: dict[str, Any], key: str) -> dict[str, Any]:
    data.pop(key)
    return data


def _set(path: list[Any], value: Any):
    def change(data: dict[str, Any]) -> dict[str, Any]:
        node: Any = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return data
    return change


BAD = [
    ("no name", lambda d: _drop(d, "name"), "name", "accepted"),
    ("bad name", _set(["name"], "has space"), "name", "letters"),
    ("unknown top key", _set(["colour"], "red"), "colour", "unknown field"),
    ("labels not strings", _set(["labels"], {"a": 1}), "labels.a", "string"),
    ("parameter type", _set(["parameters", 0, "type"], "real"), "parameters[0].type", "float, int, discrete"),
    ("low not below high", _set(["parameters", 0, "high"], 0.001), "parameters[0].low", "low < high"),
    ("log needs positive low", _set(["parameters", 0, "low"], 0.0), "parameters[0].low", "low > 0"),
    ("int step divides", _set(["parameters", 1, "step"], 20), "parameters[1].step", "multiple"),
    ("int low integral", _set(["parameters", 1, "low"], 16.5), "parameters[1].low", "integer"),
    ("values on a float", _set(["parameters", 0, "values"], [1, 2]), "parameters[0].values", "not used"),
    ("discrete non-number", _set(["parameters", 5, "values"], [0.001, "x"]), "parameters[5].values[1]",
     "finite number"),
    ("duplicate value", _set(["parameters", 2, "values"], ["relu", "relu"]), "parameters[2].values[1]",
     "distinct"),
    ("empty values", _set(["parameters", 2, "values"], []), "parameters[2].values", "at least one"),
    ("default outside", _set(["parameters", 1, "default"], 17), "parameters[1].default", "in steps of 16"),
    ("unknown parameter key", _set(["parameters", 0, "scale"], "log"), "parameters[0].scale", "unknown field"),
    ("condition on unknown", _set(["parameters", 5, "condition", "parameter"], "nope"),
     "parameters[5].condition.parameter", "not a parameter"),
    ("condition on later", _set(["parameters", 0, "condition"], {"parameter": "act", "equals": "relu"}),
     "parameters[0].condition.parameter", "declared after"),
    ("condition on float", _set(["parameters", 1, "condition"], {"parameter": "lr", "equals": 0.1}),
     "parameters[1].condition.parameter", "float"),
    ("condition value", _set(["parameters", 5, "condition", "in"], ["gokmen_vlasov", "ecram2"]),
     "parameters[5].condition.in[1]", "ideal"),
    ("condition in and equals", _set(["parameters", 5, "condition", "equals"], "ideal"),
     "parameters[5].condition", "exactly one"),
    ("duplicate name", _set(["parameters", 1, "name"], "lr"), "parameters[1].name", "unique"),
    ("overlapping targets", _set(["parameters", 1, "target"], "training.lr"), "parameters[1].target", "overlaps"),
    ("seed target", _set(["parameters", 1, "target"], "seed"), "parameters[1].target", "repeats.seeds"),
    ("no objectives", _set(["objectives"], []), "objectives", "at least one"),
    ("bad goal", _set(["objectives", 0, "goal"], "up"), "objectives[0].goal", "minimize or maximize"),
    ("duplicate objective", _set(["objectives", 1, "metric"], "accuracy"), "objectives[1].metric", "once"),
    ("bad constraint", _set(["constraints"], ["n_tiles < 16"]), "constraints[0]", "<="),
    ("bad searcher", _set(["searcher", "type"], "anneal"), "searcher.type", "grid, random, tpe"),
    ("option of another searcher", _set(["searcher", "population_size"], 4), "searcher.population_size",
     "unknown field"),
    ("grid with a continuous float", _set(["searcher"], "grid"), "parameters[0].step", "continuous float"),
    ("coordinate with a continuous float", _set(["searcher"], "coordinate"), "parameters[0].step", "continuous"),
    ("asha with two objectives", _set(["scheduler"], "asha"), "scheduler.type", "one objective"),
    ("asha options on fifo", _set(["scheduler"], {"type": "fifo", "grace_period": 2}), "scheduler.grace_period",
     "asha"),
    ("unbounded random", _set(["budget"], {}), "budget.max_trials", "time_budget_s"),
    ("zero trials", _set(["budget", "max_trials"], 0), "budget.max_trials", "an integer from 1 to 1000000"),
    ("seeds and count disagree", _set(["repeats"], {"count": 3, "seeds": [1, 2]}), "repeats.count", "seeds"),
    ("duplicate seeds", _set(["repeats"], {"seeds": [1, 1]}), "repeats.seeds", "distinct"),
    ("zero cpus", _set(["resources", "cpus"], 0), "resources.cpus", "> 0"),
    ("target not in trial config", _set(["parameters", 0, "target"], "training.lrate"), "parameters[0].target",
     "training.lrate"),
    ("value the trial rejects", _set(["parameters", 1, "low"], 0), "parameters[1].low", "training.batch_size"),
    ("base the trial rejects", _set(["base", "model", "hidden"], [0]), "base.model.hidden[0]", ">= 1"),
    ("unknown base section", _set(["base", "optimizer"], {}), "base.optimizer", "unknown section"),
]


@pytest.mark.parametrize(("mutate", "path", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_specs_name_the_field(mutate: Any, path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(mutate(study()))
    assert info.value.path == path, str(info.value)
    assert fragment in str(info.value)


def test_asha_with_two_objectives_says_why() -> None:
    with pytest.raises(SpecError) as info:
        load_spec(study(scheduler="asha"))
    assert "undefined for several objectives" in info.value.reason
    assert "accuracy, train_time_s" in info.value.reason


def test_asha_with_repeats_is_rejected() -> None:
    with pytest.raises(SpecError) as info:
        load_spec(study(scheduler="asha", objectives=[{"metric": "accuracy", "goal": "max"}], repeats=3))
    assert info.value.path == "scheduler.type" and "repeats" in info.value.reason


def test_unconditional_device_field_beside_a_preset_choice_suggests_a_condition() -> None:
    data = study()
    del param(data, "dw")["condition"]
    with pytest.raises(SpecError) as info:
        load_spec(data)
    assert info.value.path == "parameters[5].target"
    assert "when preset = 'ideal'" in info.value.reason
    assert "{parameter: preset, in: [gokmen_vlasov]}" in info.value.reason


def test_hardware_paths_are_checked_against_the_simulator_config() -> None:
    data = study()
    data["parameters"].append({"name": "bits", "target": "hardware.forward.out_bit", "type": "int",
                               "low": 4, "high": 8})
    with pytest.raises(SpecError) as info:
        load_spec(data)
    assert info.value.path == "parameters[6].target" and "out_bit" in info.value.reason
    data["parameters"][-1]["target"] = "hardware.forward.out_bits"
    assert load_spec(data).parameter("bits").target == "hardware.forward.out_bits"


def test_exclusive_conditions_may_share_a_target() -> None:
    data = study()
    data["parameters"].append({"name": "dw_fine", "target": "hardware.device.dw_min", "type": "discrete",
                               "values": [0.0001], "condition": {"parameter": "preset", "equals": "ideal"}})
    with pytest.raises(SpecError) as info:
        load_spec(data)
    # not an overlap error: the conditions are exclusive; the ideal device has no dw_min
    assert info.value.path == "parameters[6].target" and "unknown field" in info.value.reason


def test_target_validation_can_be_skipped_for_stored_specs() -> None:
    data = study()
    param(data, "lr")["target"] = "training.lrate"
    assert load_spec(data, validate_targets=False).parameter("lr").target == "training.lrate"


# -- assignments and trial configs ----------------------------------------------------------------
def test_defaults_come_from_default_then_base_then_first_value() -> None:
    data = study()
    param(data, "act")["default"] = "tanh"
    spec = load_spec(data)
    d = spec.resolved_defaults
    assert d["act"] == "tanh"              # explicit
    assert d["lr"] == 0.1                  # base.training.lr
    assert d["batch"] == 32                # the trial config's own default batch size (in the domain)
    assert d["hidden"] == [32]             # base.model.hidden
    assert d["preset"] == "ideal"          # the trial config's default preset
    assert d["dw"] == 0.001                # first value (the ideal preset has no dw_min)
    assert spec.default_params() == {"lr": 0.1, "batch": 32, "act": "tanh", "hidden": [32], "preset": "ideal"}


def test_hardware_default_read_from_the_resolved_preset() -> None:
    data = study()
    data["parameters"].append({"name": "bits", "target": "hardware.forward.out_bits", "type": "int",
                               "low": 5, "high": 10})
    assert load_spec(data).resolved_defaults["bits"] == 9  # every preset's forward ADC has 9 bits


def test_trial_config_puts_values_at_targets_with_conditions_and_seed() -> None:
    spec = load_spec(study())
    params = {"lr": 0.01, "batch": 48, "act": "tanh", "hidden": [64, 32], "preset": "gokmen_vlasov", "dw": 0.002}
    config = spec.trial_config(params, seed=7)
    assert config["training"] == {"epochs": 2, "lr": 0.01, "batch_size": 48}
    assert config["model"] == {"name": "fcnn", "hidden": [64, 32], "activation": "tanh"}
    assert config["hardware"]["preset"] == "gokmen_vlasov"
    assert config["hardware"]["device"]["dw_min"] == 0.002
    assert config["seed"] == 7
    normalized = validate_trial_config(config)
    assert normalized["hardware"]["device"]["dw_min"] == 0.002
    assert spec.base["training"]["lr"] == 0.1  # base untouched
    ideal = spec.trial_config({**{k: v for k, v in params.items() if k != "dw"}, "preset": "ideal"})
    assert "device" not in ideal["hardware"] and ideal["seed"] == 0
    configs = spec.trial_configs(params)
    assert [c["seed"] for c in configs] == [0, 1]


def test_repeat_seeds_follow_base_seed_or_the_explicit_list() -> None:
    assert load_spec(study(repeats=3, base={**study()["base"], "seed": 10})).seeds == (10, 11, 12)
    assert load_spec(study(repeats={"seeds": [5, 9]})).seeds == (5, 9)


@pytest.mark.parametrize(("params", "path", "fragment"), [
    ({"lr": 0.01, "batch": 48, "act": "relu", "hidden": [32]}, "params.preset", "missing"),
    ({"lr": 0.01, "batch": 48, "act": "relu", "hidden": [32], "preset": "ideal", "dw": 0.001}, "params.dw",
     "inactive"),
    ({"lr": 0.9, "batch": 48, "act": "relu", "hidden": [32], "preset": "ideal"}, "params.lr", "[0.001, 0.5]"),
    ({"lr": 0.01, "batch": 40, "act": "relu", "hidden": [32], "preset": "ideal"}, "params.batch", "steps of 16"),
    ({"lr": 0.01, "batch": 48, "act": "relu", "hidden": [32], "preset": "ideal", "x": 1}, "params.x", "unknown"),
])
def test_check_params_names_the_parameter(params: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(study()).check_params(params)
    assert info.value.path == path and fragment in str(info.value)


def test_grid_enumerates_each_active_combination_once() -> None:
    data = study(searcher="grid")
    param(data, "lr").update(type="discrete", values=[0.01, 0.1], low=None, high=None, log=None)
    spec = load_spec(data)
    grid = list(spec.iter_grid())
    # lr 2 × batch 4 × act 2 × hidden 2 × (ideal + 3 dw values for gokmen_vlasov) = 32 × 4
    assert len(grid) == spec.grid_size() == 2 * 4 * 2 * 2 * 4
    assert len({json.dumps(g, sort_keys=True) for g in grid}) == len(grid)
    for g in grid:
        assert spec.check_params(g) == g
    assert load_spec(study()).grid_size() is None


def test_float_step_grid_values_are_clean() -> None:
    data = study(searcher="grid")
    param(data, "lr").update(low=0.1, high=0.5, step=0.1, log=False)
    p = load_spec(data).parameter("lr")
    assert p.grid_values() == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert p.contains(0.30000000000000004) and not p.contains(0.25)


# -- boundaries ------------------------------------------------------------------------------------
def test_importing_and_loading_specs_loads_neither_torch_nor_ray() -> None:
    code = (
        "import sys, json\n"
        "from dse.spec import load_spec\n"
        f"spec = load_spec({json.dumps(study())!r})\n"
        "spec.trial_config(spec.default_params())\n"
        "print(','.join(sorted(n for n in sys.modules if n.split('.')[0] in {'torch', 'ray', 'optuna', 'fastapi'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_rest_of_the_core_stays_light_too() -> None:
    # Results, Pareto and the plain searchers are used by the API and the CLI without Ray;
    # optuna is only loaded by the Optuna searchers.
    data = study(searcher="random")
    code = (
        "import sys, json\n"
        "import dse.results, dse.pareto\n"
        "from dse.searchers import make_searcher\n"
        "from dse.spec import load_spec\n"
        f"spec = load_spec({json.dumps(data)!r})\n"
        "searcher = make_searcher(spec)\n"
        "params = searcher.suggest('a')\n"
        "record = dse.results.TrialRecord.pending('a', 0, params).start()\n"
        "dse.pareto.rank_trials([record], spec.objectives)\n"
        "print(','.join(sorted(n for n in sys.modules if n.split('.')[0] in {'torch', 'ray', 'optuna', 'fastapi'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_spec_is_frozen() -> None:
    spec = load_spec(study())
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    assert isinstance(spec, StudySpec)
