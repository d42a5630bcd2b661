"""The contract every searcher passes (one class, parametrized over the searcher types)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dse.errors import ConflictError, NotFoundError
from dse.results import MemorySink, TrialState
from dse.runner.loop import StudyLoop, TrialOutcome
from dse.searchers import FINISHED, Searcher, make_searcher, searcher_class
from dse.spec import SEARCHERS

from .conftest import drive, make_spec, synthetic_metrics

STOCHASTIC = ("random", "tpe", "nsga2", "gp")


def key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def run_sequentially(loop: StudyLoop, *, stop_after: int | None = None, how: str = "interrupt") -> None:
    """Run ``loop`` one trial at a time with synthetic results (every fourth trial fails).

    With ``stop_after = k``: after k trials finished, the next one is started and then the run
    ends as an interrupt does (``interrupt``: the trial is recorded CANCELLED) or as a killed
    process does (``kill``: it is left RUNNING)."""
    done = 0
    while (plan := loop.next_trial()) != FINISHED:
        assert plan is not None, "nothing runs, yet the loop asks to wait"
        loop.trial_started(plan.trial_id)
        if stop_after is not None and done == stop_after:
            if how == "interrupt":
                loop.stop("interrupted")
                loop.finish("interrupted")
            return
        if plan.number % 4 == 3:
            loop.trial_finished(plan.trial_id, TrialOutcome(TrialState.FAILED, error="diverged"))
        else:
            loop.trial_finished(plan.trial_id, TrialOutcome(TrialState.COMPLETED, (synthetic_metrics(plan.params),)))
        done += 1


def check_in_space(spec: Any, params: dict[str, Any]) -> None:
    """Independent of ``spec.check_params``: bounds, steps, log ranges and conditions by hand."""
    assert spec.check_params(params) == params
    names = {p["name"] for p in spec.to_dict()["parameters"]}
    assert set(params) <= names
    assert ("dw" in params) == (params["preset"] == "gokmen_vlasov")
    if "dw" in params:
        assert params["dw"] in (0.001, 0.002, 0.005)
    assert params["act"] in ("relu", "tanh") and params["hidden"] in ([16], [32, 16])
    if isinstance(params["batch"], int) and spec.parameter("batch").step == 16:
        assert params["batch"] in (16, 32, 48, 64)
    else:
        assert isinstance(params["batch"], int) and 8 <= params["batch"] <= 256
    if "momentum" in params:
        assert 0.0 <= params["momentum"] <= 0.9 and abs(params["momentum"] * 10 - round(params["momentum"] * 10)) < 1e-9
    assert 0.001 <= params["lr"] <= 0.5


@pytest.mark.parametrize("kind", SEARCHERS)
class TestSearcherContract:
    """What the runner relies on, for every searcher type."""

    def test_type_and_registry(self, kind: str) -> None:
        searcher = make_searcher(make_spec(kind))
        assert isinstance(searcher, Searcher) and searcher.name == kind
        assert searcher_class(kind) is type(searcher)

    def test_suggestions_are_in_the_space_with_conditions_and_steps(self, kind: str) -> None:
        spec = make_spec(kind, max_trials=10)
        suggestions = drive(make_searcher(spec))
        assert suggestions
        for params in suggestions:
            check_in_space(spec, params)

    def test_same_seed_same_suggestions(self, kind: str) -> None:
        spec = make_spec(kind, max_trials=8)
        first = drive(make_searcher(spec))
        second = drive(make_searcher(spec))
        assert first == second

    def test_other_seed_other_suggestions(self, kind: str) -> None:
        if kind not in STOCHASTIC:
            pytest.skip(f"{kind} search does not depend on its seed")
        spec = make_spec(kind, max_trials=6)
        assert drive(make_searcher(spec, seed=1)) != drive(make_searcher(spec, seed=2))

    def test_budget_is_respected_and_finished_is_final(self, kind: str) -> None:
        spec = make_spec(kind, max_trials=5)
        searcher = make_searcher(spec)
        suggestions = drive(searcher)
        assert len(suggestions) <= 5 and searcher.n_trials == len(suggestions)
        if kind != "coordinate":  # coordinate search may end before the budget (here it does not)
            assert len(suggestions) == 5
        for i in range(3):
            assert searcher.suggest(f"after-{i}") == FINISHED

    def test_evaluated_trials_count_against_the_budget(self, kind: str) -> None:
        spec = make_spec(kind, max_trials=6)
        donor = drive(make_searcher(spec, seed=5))[:4]
        searcher = make_searcher(spec)
        for params in donor:
            searcher.add_evaluated_trial(params, synthetic_metrics(params), "COMPLETED")
        searcher.add_evaluated_trial(donor[0], None, "FAILED")
        rest = drive(searcher)
        assert len(rest) <= 1 and searcher.n_trials <= 6

    def test_failed_and_pruned_trials_do_not_stop_the_search(self, kind: str) -> None:
        spec = make_spec(kind, max_trials=10)

        def outcome(i: int, params: dict[str, Any]) -> tuple[dict[str, float] | None, str]:
            if i % 3 == 1:
                return None, "FAILED"
            if i % 3 == 2:
                return {"accuracy": float("nan")}, "COMPLETED"  # diverged: no finite objective
            return synthetic_metrics(params), "COMPLETED"

        suggestions = drive(make_searcher(spec), outcome=outcome)
        assert len(suggestions) >= 4
        for params in suggestions:
            check_in_space(spec, params)

    def test_concurrent_suggestions(self, kind: str) -> None:
        spec = make_spec(kind, max_trials=9)
        searcher = make_searcher(spec)
        suggestions = drive(searcher, concurrency=3)
        assert 1 <= len(suggestions) <= 9
        assert searcher.running == []
        if kind in ("grid", "coordinate"):
            assert len({key(p) for p in suggestions}) == len(suggestions)  # no configuration twice

    def test_multi_objective_with_constraints(self, kind: str) -> None:
        objectives = [{"metric": "accuracy", "goal": "max"}, {"metric": "train_time_s", "goal": "min"}]
        # gp: start-up trials only here (a multi-objective GP fit takes tens of seconds; see
        # test_optuna.py's slow test for the model-based part).
        spec = make_spec(kind, max_trials=8, objectives=objectives, constraints=["n_tiles <= 2"],
                         **({"n_startup_trials": 8} if kind == "gp" else {}))
        assert spec.is_multi_objective
        suggestions = drive(make_searcher(spec))
        assert suggestions
        for params in suggestions:
            check_in_space(spec, params)

    def test_bookkeeping_errors(self, kind: str) -> None:
        searcher = make_searcher(make_spec(kind))
        params = searcher.suggest("a")
        assert isinstance(params, dict)
        with pytest.raises(ConflictError, match="already suggested"):
            searcher.suggest("a")
        with pytest.raises(NotFoundError):
            searcher.on_trial_complete("never", {}, "COMPLETED")
        with pytest.raises(ValueError, match="RUNNING"):
            searcher.on_trial_complete("a", {}, "RUNNING")
        searcher.on_trial_complete("a", synthetic_metrics(params), "COMPLETED")
        with pytest.raises(ConflictError, match="already completed"):
            searcher.on_trial_complete("a", synthetic_metrics(params), "COMPLETED")
        assert searcher.params_of("a") == params

    def test_returned_params_are_copies(self, kind: str) -> None:
        searcher = make_searcher(make_spec(kind))
        params = searcher.suggest("a")
        params["hidden"].append(99)
        assert searcher.params_of("a")["hidden"] != params["hidden"]


@pytest.mark.parametrize("how", ["interrupt", "kill"])
@pytest.mark.parametrize("kind", SEARCHERS)
def test_a_resumed_study_suggests_what_the_uninterrupted_one_did(kind: str, how: str) -> None:
    """Interrupted after k trials and resumed from the stored records, a study runs the same
    configurations under the same numbers as an uninterrupted run with the same seed: no trial
    repeats, the interrupted one is re-run under its own number, and the budget is exact.
    k lies past the model-free start-up of TPE (4), NSGA-II's first generation (4) and GP (3)."""
    spec = make_spec(kind, max_trials=9)
    whole = MemorySink()
    run_sequentially(StudyLoop(spec, make_searcher(spec), whole))
    expected = [(r.number, r.params, r.state) for r in whole.records()]
    assert len(expected) == (9 if kind != "gp" else 5)

    k = 3 if kind == "gp" else 5
    resumed = MemorySink()
    run_sequentially(StudyLoop(spec, make_searcher(spec), resumed), stop_after=k, how=how)
    assert len(resumed.records()) == k + 1
    assert resumed.records()[-1].state is (TrialState.CANCELLED if how == "interrupt" else TrialState.RUNNING)
    run_sequentially(StudyLoop(spec, make_searcher(spec), resumed, history=resumed.records()))
    assert [(r.number, r.params, r.state) for r in resumed.records()] == expected
    rerun = resumed.records()[k]
    assert rerun.trial_id == f"t{k:05d}" and rerun.attempts == 2  # its own number; started twice
