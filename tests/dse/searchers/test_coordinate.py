"""Coordinate (one-at-a-time) search: paper 000's method, step by step."""

from __future__ import annotations

from typing import Any

import pytest

from dse.searchers import FINISHED, make_searcher
from dse.searchers.coordinate import CoordinateSearcher

from .conftest import drive, make_spec, synthetic_metrics

PARAMS = [
    {"name": "act", "target": "model.activation", "type": "categorical", "values": ["relu", "tanh", "sigmoid"]},
    {"name": "lr", "target": "training.lr", "type": "discrete", "values": [0.01, 0.05, 0.1], "default": 0.1},
    {"name": "batch", "target": "training.batch_size", "type": "int", "low": 16, "high": 64, "step": 16},
    {"name": "hidden", "target": "model.hidden", "type": "categorical", "values": [[16], [32, 16]]},
]


def metrics(params: dict[str, Any]) -> dict[str, float]:
    m = synthetic_metrics(params)
    m["accuracy"] += 0.001 * params.get("batch", 32) / 16  # larger batches slightly better
    return m


def searcher(**options: Any) -> CoordinateSearcher:
    s = make_searcher(make_spec("coordinate", parameters=PARAMS, max_trials=None, **options))
    assert isinstance(s, CoordinateSearcher)
    return s


def test_sequential_steps_from_the_baseline() -> None:
    s = searcher()
    assert s.baseline == {"act": "relu", "lr": 0.1, "batch": 32, "hidden": [16]}  # default, base value, first
    suggestions = drive(s, outcome=lambda i, p: (metrics(p), "COMPLETED"))
    # baseline, then each parameter's other values with the rest at the current best:
    # act: 2 more, lr: 2 more, batch: 3 more, hidden: 1 more.
    assert len(suggestions) == 1 + 2 + 2 + 3 + 1
    assert suggestions[0] == s.baseline
    assert [p["act"] for p in suggestions[1:3]] == ["tanh", "sigmoid"]
    assert all(p["act"] == "tanh" for p in suggestions[3:])   # the best activation is kept ...
    assert all(p["lr"] == 0.05 for p in suggestions[5:])      # ... then the best learning rate
    assert s.best_params == {"act": "tanh", "lr": 0.05, "batch": 64, "hidden": [32, 16]}
    assert [group for group, _ in s.history] == [("act",), ("lr",), ("batch",), ("hidden",)]


def test_waits_for_a_step_before_the_next() -> None:
    s = searcher()
    assert s.suggest("b") == s.baseline
    assert s.suggest("x") is None  # the baseline has to finish first
    s.on_trial_complete("b", metrics(s.baseline), "COMPLETED")
    first, second = s.suggest("a1"), s.suggest("a2")
    assert {first["act"], second["act"]} == {"tanh", "sigmoid"}
    assert s.suggest("a3") is None  # the activation step is in flight
    s.on_trial_complete("a2", metrics(second), "COMPLETED")
    assert s.suggest("a3") is None
    s.on_trial_complete("a1", metrics(first), "COMPLETED")
    assert s.suggest("l1")["act"] == "tanh"


def test_groups_are_varied_together_like_batch_times_lr() -> None:
    s = searcher(order=[["batch", "lr"], "act"])
    suggestions = drive(s, outcome=lambda i, p: (metrics(p), "COMPLETED"))
    grid_step = suggestions[1:12]  # 4 batch × 3 lr = 12 combinations, minus the baseline
    assert {(p["batch"], p["lr"]) for p in grid_step} | {(32, 0.1)} == {(b, lr) for b in (16, 32, 48, 64)
                                                                        for lr in (0.01, 0.05, 0.1)}
    assert len(suggestions) == 1 + 11 + 2  # hidden is not in the order: it stays at its default
    assert all(p["hidden"] == [16] for p in suggestions)


def test_failed_and_infeasible_trials_never_win() -> None:
    def outcome(i: int, p: dict[str, Any]) -> tuple[dict[str, float] | None, str]:
        if p["act"] == "tanh":
            return None, "FAILED"  # the otherwise best activation fails
        return metrics(p), "COMPLETED"

    s = searcher()
    drive(s, outcome=outcome)
    assert s.history[0][1]["act"] == "relu"  # sigmoid ties with relu: the current value stays
    s2 = make_searcher(make_spec("coordinate", parameters=PARAMS, max_trials=None, constraints=["n_tiles <= 2"]))
    drive(s2, outcome=lambda i, p: (metrics(p), "COMPLETED"))
    assert s2.best_params["hidden"] == [16]  # [32, 16] is more accurate but uses 3 tiles


def test_ties_keep_the_current_value() -> None:
    s = searcher()
    drive(s, outcome=lambda i, p: ({"accuracy": 0.5, "train_time_s": 1.0}, "COMPLETED"))
    assert s.best_params == s.baseline


def test_independent_mode_combines_each_steps_best() -> None:
    s = searcher(mode="independent")
    suggestions = drive(s, outcome=lambda i, p: (metrics(p), "COMPLETED"))
    for p in suggestions[1:-1]:  # each step varies one parameter from the baseline
        assert sum(p[k] != v for k, v in s.baseline.items()) == 1
    assert suggestions[-1] == {"act": "tanh", "lr": 0.05, "batch": 64, "hidden": [32, 16]}
    assert s.best_params == suggestions[-1]


def test_second_pass_reuses_evaluated_configurations() -> None:
    one = drive(searcher(), outcome=lambda i, p: (metrics(p), "COMPLETED"))
    two = drive(searcher(passes=2), outcome=lambda i, p: (metrics(p), "COMPLETED"))
    assert two[: len(one)] == one
    # Pass 2 starts from (tanh, 0.05, 64, [32, 16]): 2 activations + 2 rates + 3 batch sizes are new,
    # hidden = [16] with the rest at their best was already run in pass 1's batch step.
    assert len(two) - len(one) == 7


def test_other_objective_and_resume_replay() -> None:
    s = searcher(objective="train_time_s")
    full = drive(s, outcome=lambda i, p: (metrics(p), "COMPLETED"))
    assert s.best_params["hidden"] == [16] and s.best_params["batch"] == 64  # fastest
    resumed = searcher(objective="train_time_s")
    for p in full[:5]:
        resumed.add_evaluated_trial(p, metrics(p), "COMPLETED")
    rest = drive(resumed, outcome=lambda i, p: (metrics(p), "COMPLETED"))
    assert rest == full[5:]
    assert resumed.best_params == s.best_params


def test_conditional_parameters_are_varied_only_where_active() -> None:
    params = [
        {"name": "preset", "target": "hardware.preset", "type": "categorical", "values": ["ideal", "gokmen_vlasov"]},
        {"name": "dw", "target": "hardware.device.dw_min", "type": "discrete", "values": [0.001, 0.002],
         "condition": {"parameter": "preset", "equals": "gokmen_vlasov"}},
        {"name": "lr", "target": "training.lr", "type": "discrete", "values": [0.01, 0.05]},
    ]
    s = make_searcher(make_spec("coordinate", parameters=params, max_trials=None))
    suggestions = drive(s, outcome=lambda i, p: (metrics(p), "COMPLETED"))
    # baseline (ideal, lr 0.05); preset -> gokmen_vlasov (dw default); the ideal preset stays best,
    # so the dw step has nothing active to vary; lr -> 0.01.
    assert suggestions == [{"preset": "ideal", "lr": 0.05}, {"preset": "gokmen_vlasov", "dw": 0.001, "lr": 0.05},
                           {"preset": "ideal", "lr": 0.01}]
    assert s.suggest("later") == FINISHED


@pytest.mark.parametrize("budget", [1, 4])
def test_budget_cuts_the_sweep(budget: int) -> None:
    s = make_searcher(make_spec("coordinate", parameters=PARAMS, max_trials=budget))
    assert len(drive(s, outcome=lambda i, p: (metrics(p), "COMPLETED"))) == budget
