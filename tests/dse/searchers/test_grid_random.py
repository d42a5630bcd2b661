"""Grid and random search specifics."""

from __future__ import annotations

import json
import math
import random

from dse.searchers import FINISHED, make_searcher
from dse.searchers.simple import sample_parameter
from dse.spec import ParameterSpec

from .conftest import drive, make_spec


def test_grid_visits_every_configuration_once_in_order() -> None:
    spec = make_spec("grid", max_trials=None)
    searcher = make_searcher(spec)
    suggestions = drive(searcher)
    assert suggestions == list(spec.iter_grid())
    assert len(suggestions) == spec.grid_size() == 3 * 4 * 2 * 2 * 4
    assert searcher.suggest("more") == FINISHED


def test_grid_resume_skips_evaluated_configurations() -> None:
    spec = make_spec("grid", max_trials=None)
    grid = list(spec.iter_grid())
    searcher = make_searcher(spec)
    for params in grid[5:50:2]:
        searcher.add_evaluated_trial(params, None, "FAILED")  # failed ones are not retried either
    rest = drive(searcher)
    done = {json.dumps(p, sort_keys=True) for p in grid[5:50:2]}
    assert [p for p in grid if json.dumps(p, sort_keys=True) not in done] == rest


def test_grid_budget_takes_the_first_configurations() -> None:
    spec = make_spec("grid", max_trials=7)
    assert drive(make_searcher(spec)) == list(spec.iter_grid())[:7]


def test_log_uniform_draws() -> None:
    p = ParameterSpec.from_dict({"target": "training.lr", "type": "float", "low": 0.001, "high": 1.0, "log": True},
                                "p")
    rng = random.Random(0)
    n = 4000
    draws = [sample_parameter(p, rng) for _ in range(n)]
    assert all(0.001 <= d <= 1.0 for d in draws)
    # Log-uniform over three decades: P(x < 0.01) = 1/3. The sample fraction has std
    # sqrt(p (1 - p) / n) = sqrt(2/9 / 4000) = 0.0075; 4 std = 0.03 bounds a false failure
    # below 1e-4 (normal approximation of the binomial).
    below = sum(d < 0.01 for d in draws) / n
    assert abs(below - 1 / 3) < 0.03


def test_int_log_and_step_draws_cover_the_domain() -> None:
    rng = random.Random(1)
    stepped = ParameterSpec.from_dict({"target": "training.batch_size", "type": "int", "low": 16, "high": 64,
                                       "step": 16}, "p")
    assert {sample_parameter(stepped, rng) for _ in range(400)} == {16, 32, 48, 64}
    logged = ParameterSpec.from_dict({"target": "training.batch_size", "type": "int", "low": 1, "high": 1000,
                                      "log": True}, "p")
    n = 4000
    draws = [sample_parameter(logged, rng) for _ in range(n)]
    assert all(isinstance(d, int) and 1 <= d <= 1000 for d in draws)
    # Rounded log-uniform on [0.5, 1000.5]: P(x <= 9) = P(u < 9.5) = ln(9.5/0.5) / ln(1000.5/0.5),
    # about 0.387; binomial std over 4000 draws is 0.0077, 4 std = 0.031.
    expected = math.log(19) / math.log(2001)
    assert abs(sum(d <= 9 for d in draws) / n - expected) < 0.031


def test_random_draws_conditional_parameters_only_when_active() -> None:
    spec = make_spec("random", max_trials=300)
    suggestions = drive(make_searcher(spec))
    with_dw = [p for p in suggestions if "dw" in p]
    assert with_dw and all(p["preset"] == "gokmen_vlasov" for p in with_dw)
    assert {p["dw"] for p in with_dw} == {0.001, 0.002, 0.005}
    assert {p["momentum"] for p in suggestions} == {round(0.1 * k, 1) for k in range(10)}
