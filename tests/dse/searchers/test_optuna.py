"""The Optuna-backed searchers: space mapping, multi-objective studies, constraints, resume."""

from __future__ import annotations

import math

import pytest

from dse.searchers import make_searcher
from dse.searchers.optuna_samplers import CONSTRAINTS_ATTR, OptunaSearcher

from .conftest import FINITE_PARAMETERS, drive, make_spec, synthetic_metrics

optuna = pytest.importorskip("optuna", reason="optuna is a dependency of the Optuna searchers")


@pytest.mark.parametrize("kind", ["tpe", "nsga2"])
def test_study_mirrors_objectives_and_trials(kind: str) -> None:
    spec = make_spec(kind, max_trials=8, constraints=["n_tiles <= 2"])
    searcher = make_searcher(spec)
    assert isinstance(searcher, OptunaSearcher)
    suggestions = drive(searcher)
    study = searcher.study
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == len(suggestions) == 8
    for t, params in zip(trials, suggestions):
        m = synthetic_metrics(params)
        assert t.values == [m["accuracy"], m["train_time_s"]]
        assert t.user_attrs[CONSTRAINTS_ATTR] == [m["n_tiles"] - 2]
        assert t.params["lr"] == params["lr"]
        assert ("dw" in t.params) == ("dw" in params)


def test_discrete_and_list_valued_categoricals_round_trip() -> None:
    spec = make_spec("tpe", parameters=FINITE_PARAMETERS, max_trials=6)
    searcher = make_searcher(spec)
    suggestions = drive(searcher)
    for t, params in zip(searcher.study.trials, suggestions):
        assert t.params["lr"] in (0, 1, 2)  # the index of the sorted values: an ordered dimension
        assert params["lr"] == [0.01, 0.05, 0.1][t.params["lr"]]
        assert t.params["hidden"] in ("[16]", "[32, 16]") and params["hidden"] in ([16], [32, 16])


def test_failed_pruned_and_diverged_trials_are_told_as_such() -> None:
    spec = make_spec("tpe", max_trials=6, objectives=[{"metric": "accuracy", "goal": "max"}])
    searcher = make_searcher(spec)
    outcomes = [(None, "FAILED"), ({"accuracy": 0.5}, "PRUNED"), ({"accuracy": math.nan}, "COMPLETED"),
                ({"accuracy": 0.7}, "CANCELLED"), ({"accuracy": 0.8}, "COMPLETED"), ({"loss": 1.0}, "COMPLETED")]
    drive(searcher, outcome=lambda i, p: outcomes[i])
    states = [t.state.name for t in searcher.study.trials]
    assert states == ["FAIL", "PRUNED", "FAIL", "FAIL", "COMPLETE", "FAIL"]


def test_resume_adds_history_to_the_study() -> None:
    spec = make_spec("tpe", max_trials=10)
    first = make_searcher(spec)
    done = drive(first, limit=6)
    resumed = make_searcher(spec)
    for params in done[:5]:
        resumed.add_evaluated_trial(params, synthetic_metrics(params), "COMPLETED")
    resumed.add_evaluated_trial(done[5], None, "FAILED")
    trials = resumed.study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5 + ["FAIL"]
    assert trials[0].params["lr"] == done[0]["lr"]
    assert len(drive(resumed)) == 4  # the budget counts the replayed trials


@pytest.mark.parametrize("kind", ["tpe", "nsga2", "gp"])
def test_told_values_steer_the_sampler(kind: str) -> None:
    # Same seed, opposite goal: the random start-up is identical, and what follows differs only
    # because the samplers read the values we told them.
    suggestions = {}
    for goal in ("max", "min"):
        spec = make_spec(kind, max_trials=7 if kind != "gp" else 5, objectives=[{"metric": "accuracy", "goal": goal}])
        suggestions[goal] = drive(make_searcher(spec))
    startup = {"tpe": 4, "nsga2": 4, "gp": 3}[kind]
    assert suggestions["max"][:startup] == suggestions["min"][:startup]
    assert suggestions["max"][startup:] != suggestions["min"][startup:]


@pytest.mark.slow
def test_gp_multi_objective_with_constraints_uses_its_model() -> None:
    spec = make_spec("gp", objectives=[{"metric": "accuracy", "goal": "max"},
                                       {"metric": "train_time_s", "goal": "min"}],
                     constraints=["n_tiles <= 2"])
    searcher = make_searcher(spec)
    suggestions = drive(searcher)
    assert len(suggestions) == 5
    trials = searcher.study.trials
    assert [d.name for d in searcher.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert all(CONSTRAINTS_ATTR in t.user_attrs for t in trials)
