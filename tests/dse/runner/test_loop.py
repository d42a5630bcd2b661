"""The backend-neutral study loop: plans, records, budgets, resume (no Ray needed)."""

from __future__ import annotations

import pytest

from dse.results import MemorySink, TrialRecord, TrialState
from dse.runner.loop import StudyLoop, TrialOutcome, dataset_key
from dse.searchers import FINISHED, make_searcher

from .conftest import study


def _loop(spec, sink=None, **kwargs):
    return StudyLoop(spec, make_searcher(spec), sink if sink is not None else MemorySink(), **kwargs)


def _complete(loop, plan, accuracy=0.9):
    loop.trial_started(plan.trial_id)
    repeats = [{"accuracy": accuracy + 0.01 * i} for i in range(len(plan.runs))]
    loop.trial_finished(plan.trial_id, TrialOutcome(TrialState.COMPLETED, tuple(repeats), node="n1"))


def test_plan_has_one_trial_config_per_repeat_seed_with_params_at_their_targets():
    spec = study(repeats={"count": 3})
    loop = _loop(spec, preloaded_datasets=["digits"])
    plan = loop.next_trial()
    assert plan.trial_id == "t00000" and plan.number == 0
    assert plan.params == {"lr": 0.01, "hidden": [16]}
    assert [run["seed"] for run in plan.runs] == [0, 1, 2]
    for run in plan.runs:
        assert run["config"]["training"]["lr"] == 0.01
        assert run["config"]["model"]["hidden"] == [16]
        assert run["config"]["seed"] == run["seed"]
        assert run["dataset"] == "digits"
    assert _loop(spec).next_trial().runs[0]["dataset"] is None  # nothing preloaded: workers load


def test_records_move_forward_and_reach_the_sink_as_they_change():
    spec = study(repeats={"count": 2})
    sink = MemorySink()
    loop = _loop(spec, sink)
    plan = loop.next_trial()
    assert sink.get(plan.trial_id) is None  # a PENDING trial is not written
    loop.trial_started(plan.trial_id)
    assert sink.get(plan.trial_id).state is TrialState.RUNNING
    loop.trial_epoch(plan.trial_id, 0, {"epoch": 1, "accuracy": 0.5, "note": "text is dropped"})
    loop.trial_epoch(plan.trial_id, 1, {"epoch": 1, "accuracy": 0.6})
    outcome = TrialOutcome(TrialState.COMPLETED, ({"accuracy": 0.8}, {"accuracy": 0.9}), node="node-a")
    loop.trial_finished(plan.trial_id, outcome)
    record = sink.get(plan.trial_id)
    assert record.state is TrialState.COMPLETED and record.node == "node-a"
    assert record.metrics["accuracy"] == pytest.approx(0.85)
    assert record.metrics_std["accuracy"] == pytest.approx(0.0707106781, rel=1e-6)  # sample std, ddof = 1
    assert [(m.repeat, m.epoch, dict(m.metrics)) for m in record.measurements] == [
        (0, 1, {"accuracy": 0.5}), (1, 1, {"accuracy": 0.6})]
    assert loop.searcher.running == []  # the searcher was told
    progress = loop.tracker.snapshot()
    assert (progress.completed, progress.running) == (1, 0)
    assert progress.best[0].value == pytest.approx(0.85) and progress.best[0].trial_id == plan.trial_id


def test_failed_trials_are_recorded_and_the_failure_budget_stops_the_study_when_exceeded():
    spec = study(budget={"max_failed_trials": 1})
    sink = MemorySink()
    loop = _loop(spec, sink)
    for i in range(2):
        plan = loop.next_trial()
        loop.trial_started(plan.trial_id)
        loop.trial_finished(plan.trial_id, TrialOutcome(TrialState.FAILED, error=f"diverged ({i})"))
        assert sink.get(plan.trial_id).error == f"diverged ({i})"
        assert loop.stop_reason == (None if i == 0 else "failure_budget")
    assert "2 trials failed" in loop.stop_message
    assert loop.next_trial() == FINISHED


def test_finish_cancels_open_trials_and_keeps_finished_ones():
    sink = MemorySink()
    loop = _loop(study(), sink)
    done, running, pending = loop.next_trial(), loop.next_trial(), loop.next_trial()
    _complete(loop, done)
    loop.trial_started(running.trial_id)
    loop.stop("cancelled", "user asked")
    assert loop.next_trial() == FINISHED
    assert loop.finish("completed") == "cancelled"
    states = {r.trial_id: r.state for r in sink.records()}
    assert states == {done.trial_id: TrialState.COMPLETED, running.trial_id: TrialState.CANCELLED,
                      pending.trial_id: TrialState.CANCELLED}
    assert loop.records[running.trial_id].error == "study cancelled"


def test_grid_runs_every_configuration_once_then_finishes():
    loop = _loop(study())
    seen = []
    while (plan := loop.next_trial()) != FINISHED:
        seen.append((plan.params["lr"], tuple(plan.params["hidden"])))
        _complete(loop, plan)
    assert sorted(seen) == sorted((lr, h) for lr in (0.01, 0.05, 0.2) for h in ((16,), (64, 32)))


def test_resume_reruns_interrupted_trials_first_under_their_own_numbers_and_never_reruns_finished_ones():
    spec = study()
    grid = list(spec.iter_grid())  # 6 configurations
    history = [
        TrialRecord.pending("t00000", 0, grid[0]).start().complete([{"accuracy": 0.9}]),
        TrialRecord.pending("t00001", 1, grid[1]).start().fail("diverged"),
        TrialRecord.pending("t00002", 2, grid[2]).start(),  # left RUNNING by a killed run
        TrialRecord.pending("t00003", 3, grid[3]).start().cancel("interrupted"),
    ]
    sink = MemorySink(history)
    loop = _loop(spec, sink, history=history)
    assert loop.tracker.snapshot().resumed == 2  # the evaluated ones; cancelled ones are re-run
    first, second = loop.next_trial(), loop.next_trial()
    assert (first.trial_id, first.number, first.params) == ("t00002", 2, grid[2])
    assert (second.trial_id, second.number, second.params) == ("t00003", 3, grid[3])
    assert loop.next_trial() is None  # the searcher waits for the re-runs
    _complete(loop, first)
    assert loop.next_trial() is None
    _complete(loop, second)
    rest = []
    while (plan := loop.next_trial()) != FINISHED:
        rest.append(plan.params)
        _complete(loop, plan)
    assert rest == [grid[4], grid[5]]  # the grid skips everything already suggested
    assert [r.number for r in sink.records()] == [0, 1, 2, 3, 4, 5]  # one row per trial
    assert sink.get("t00003").state is TrialState.COMPLETED and sink.get("t00003").attempts == 2
    assert sink.get("t00001").state is TrialState.FAILED  # evaluated trials are never rewritten
    assert loop.searcher.n_trials == 6


def test_resume_keeps_the_trial_budget_exact():
    spec = study(budget={"max_trials": 4})
    sink = MemorySink()
    loop = _loop(spec, sink)
    plans = [loop.next_trial() for _ in range(3)]
    _complete(loop, plans[0])
    loop.trial_started(plans[1].trial_id)
    loop.stop("interrupted")
    loop.finish("interrupted")
    resumed = _loop(spec, sink, history=sink.records())
    while (plan := resumed.next_trial()) != FINISHED:
        if plan is not None:
            _complete(resumed, plan)
    assert [(r.number, r.state) for r in sink.records()] == [(n, TrialState.COMPLETED) for n in range(4)]


def test_listeners_see_every_event_and_a_broken_listener_does_not_stop_the_study(caplog):
    kinds = []

    def broken(event):
        raise ValueError("listener bug")

    loop = _loop(study(), listeners=[lambda e: kinds.append((e.kind, e.progress.running)), broken])
    plan = loop.next_trial()
    _complete(loop, plan)
    loop.emit("tick")
    assert kinds == [("created", 0), ("started", 1), ("finished", 0), ("tick", 0)]
    assert "listener bug" in caplog.text


def test_dataset_key_names_the_data_a_trial_loads():
    assert dataset_key({}) == "digits"
    assert dataset_key({"dataset": {"name": "mnist", "data_dir": "/data"}}) == "mnist@/data"


class _FlakySink(MemorySink):
    """A sink that refuses writes while ``down`` is set."""

    def __init__(self):
        super().__init__()
        self.down = False

    def write_trial(self, record):
        if self.down:
            raise ConnectionError("database restarting")
        super().write_trial(record)


def test_records_the_sink_refuses_wait_and_are_written_when_it_recovers(caplog):
    sink = _FlakySink()
    loop = _loop(study(), sink)
    first, second = loop.next_trial(), loop.next_trial()
    loop.trial_started(first.trial_id)
    sink.down = True
    _complete(loop, first)  # does not raise: the record waits
    loop.trial_started(second.trial_id)
    assert sink.get(first.trial_id).state is TrialState.RUNNING
    assert [r.trial_id for r in loop.unwritten] == [first.trial_id, second.trial_id]
    assert loop.write_error == "ConnectionError: database restarting"
    assert not loop.flush_writes()
    sink.down = False
    loop.emit("tick")  # a tick retries
    assert loop.unwritten == [] and loop.write_error is None
    assert sink.get(first.trial_id).state is TrialState.COMPLETED
    assert sink.get(second.trial_id).state is TrialState.RUNNING
    assert "retrying" in caplog.text


def test_a_restarted_trial_drops_the_measurements_of_its_lost_attempt():
    loop = _loop(study())
    plan = loop.next_trial()
    loop.trial_started(plan.trial_id)
    loop.trial_epoch(plan.trial_id, 0, {"epoch": 1, "accuracy": 0.4})
    assert loop.records[plan.trial_id].attempts == 1
    loop.trial_restarted(plan.trial_id, "the worker died")
    loop.trial_started(plan.trial_id)
    loop.trial_epoch(plan.trial_id, 0, {"epoch": 1, "accuracy": 0.5})
    assert [dict(m.metrics) for m in loop.records[plan.trial_id].measurements] == [{"accuracy": 0.5}]
    _complete(loop, plan)
    assert loop.records[plan.trial_id].attempts == 2  # one retry after the worker failure
