"""RayTuneRunner end to end on the session's Ray instance, with synthetic trial functions."""

from __future__ import annotations

import os
import random
import signal
import tempfile
import threading
from pathlib import Path

import pytest

from dse.results import MemorySink, ParquetResults, TrialRecord, TrialState, read_trials
from dse.runner import RayTuneRunner
from dse.runner.synthetic import synthetic_metrics
from dse.trial.data import load_dataset

from .conftest import study

pytestmark = pytest.mark.ray

FNS = "tests.dse.runner.trial_fns"


def test_a_grid_study_records_every_trial_as_it_finishes_failures_included(ray_session, tmp_path):
    # buggy_trial raises for hidden = [16] (3 of the 6 configurations) and returns the synthetic
    # metrics otherwise; each configuration runs with 2 seeds.
    spec = study(repeats={"count": 2})
    seen_on_disk = []

    def on_event(event):
        if event.kind == "finished":  # the record is on disk when listeners hear of it
            on_disk = {r.trial_id: r.state for r in read_trials(tmp_path)}
            seen_on_disk.append((on_disk.get(event.record.trial_id), event.record.state))

    with ParquetResults(tmp_path, spec) as results:
        outcome = RayTuneRunner(spec, results, listeners=[on_event], trial_fn=f"{FNS}:buggy_trial").run()
    assert outcome.stop_reason == "completed" and outcome.ok
    records = read_trials(tmp_path)
    assert sorted(str(r.params) for r in records) == sorted(str(p) for p in spec.iter_grid())
    assert len(seen_on_disk) == 6 and all(disk is state and state.is_finished for disk, state in seen_on_disk)
    failed = [r for r in records if r.state is TrialState.FAILED]
    completed = [r for r in records if r.state is TrialState.COMPLETED]
    assert len(failed) == 3 and len(completed) == 3  # failures did not stop the study
    for r in failed:
        assert r.params["hidden"] == [16]
        assert r.error.startswith("RuntimeError: boom for hidden=[16]")
        assert "buggy_trial" in r.error  # the traceback's last frames are kept
    for r in completed:
        per_seed = [synthetic_metrics(spec.trial_config(r.params, seed=s)) for s in (0, 1)]
        assert r.seeds == (0, 1) and r.node and r.started_at <= r.finished_at
        assert [dict(m) for m in r.repeat_metrics] == [pytest.approx(m) for m in per_seed]
        accuracies = [m["accuracy"] for m in per_seed]
        assert r.metrics["accuracy"] == pytest.approx(sum(accuracies) / 2)
        assert r.metrics_std["accuracy"] == pytest.approx(abs(accuracies[0] - accuracies[1]) / 2 ** 0.5)


def test_actors_are_reused_and_the_dataset_and_torch_threads_are_set_once_per_worker(ray_session):
    spec = study(searcher={"type": "random", "seed": 0}, budget={"max_trials": 8, "max_concurrent_trials": 2})
    outcome = RayTuneRunner(spec, MemorySink(), trial_fn=f"{FNS}:probe_trial").run()
    records = outcome.records
    assert len(records) == 8 and all(r.state is TrialState.COMPLETED for r in records)
    pids = {r.metrics["worker_pid"] for r in records}
    assert len(pids) <= 2  # 8 trials on at most 2 worker processes: actors were reused
    for pid in pids:  # each worker fetched the preloaded dataset once and kept it
        objects = {r.metrics["dataset_object"] for r in records if r.metrics["worker_pid"] == pid}
        assert len(objects) == 1 and objects != {-1.0}
    assert {r.metrics["dataset_rows"] for r in records} == {float(len(load_dataset("digits").train_y))}
    assert {r.metrics["torch_threads"] for r in records} == {1.0}  # resources.cpus = 1


def test_divergence_counts_against_the_failure_budget_which_stops_the_study(ray_session):
    spec = study(
        parameters=[{"name": "lr", "target": "training.lr", "type": "discrete", "values": [2.0, 3.0, 4.0, 5.0, 0.05]}],
        budget={"max_failed_trials": 1, "max_concurrent_trials": 1},
    )
    outcome = RayTuneRunner(spec, trial_fn="dse.runner.synthetic:instant_trial").run()
    assert outcome.stop_reason == "failure_budget" and not outcome.ok
    states = [r.state for r in outcome.records]
    assert states[:2] == [TrialState.FAILED, TrialState.FAILED]  # the second failure spends the budget
    assert all(s is not TrialState.COMPLETED for s in states)  # the study stopped before lr = 0.05
    assert "diverged" in outcome.records[0].error


def test_a_trial_whose_worker_dies_is_retried_and_completes(ray_session):
    lr = round(0.01 + random.random() * 0.1, 9)  # unique: crash_once_trial remembers it in a file
    marker = Path(tempfile.gettempdir()) / f"dse-crash-once-{lr!r}"
    spec = study(parameters=[{"name": "lr", "target": "training.lr", "type": "discrete", "values": [lr]}])
    try:
        outcome = RayTuneRunner(spec, trial_fn=f"{FNS}:crash_once_trial").run()
    finally:
        marker.unlink(missing_ok=True)
    (record,) = outcome.records
    assert record.state is TrialState.COMPLETED, record.error
    assert record.metrics["accuracy"] == pytest.approx(synthetic_metrics(spec.trial_config({"lr": lr}))["accuracy"])


def test_a_worker_that_keeps_dying_fails_the_trial_after_the_retries(ray_session):
    spec = study(parameters=[{"name": "lr", "target": "training.lr", "type": "discrete", "values": [0.05]}])
    outcome = RayTuneRunner(spec, trial_fn=f"{FNS}:crash_always_trial", max_retries=1).run()
    (record,) = outcome.records
    assert record.state is TrialState.FAILED
    assert "worker" in record.error.lower() or "actor" in record.error.lower(), record.error


def test_asha_prunes_weak_trials_and_keeps_their_epochs(ray_session):
    spec = study(
        base={"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [32]}, "training": {"epochs": 6}},
        parameters=[{"name": "lr", "target": "training.lr", "type": "discrete",
                     "values": [0.05, 0.5, 0.006, 0.1, 0.9, 0.003]}],
        scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 3},
        budget={"max_concurrent_trials": 2},
    )
    outcome = RayTuneRunner(spec, trial_fn="dse.runner.synthetic:paced_trial").run()
    by_state = {s: [r for r in outcome.records if r.state is s] for s in TrialState}
    assert len(by_state[TrialState.PRUNED]) >= 1, [(r.params, r.state) for r in outcome.records]
    assert len(by_state[TrialState.COMPLETED]) >= 1
    for r in by_state[TrialState.PRUNED]:
        assert 1 <= len(r.measurements) < 6 and "stopped early" in r.error
    for r in by_state[TrialState.COMPLETED]:
        assert [m.epoch for m in r.measurements] == [1, 2, 3, 4, 5, 6]
    best = max(outcome.records, key=lambda r: synthetic_metrics(spec.trial_config(r.params))["accuracy"])
    assert best.state is TrialState.COMPLETED  # lr = 0.05, the best, is never pruned


def test_cancel_keeps_finished_trials_and_cancels_running_ones(ray_session):
    spec = study(base={"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [32]},
                       "training": {"epochs": 20}})
    sink = MemorySink()
    runner = None

    def on_event(event):
        if event.kind == "finished" and event.progress.completed == 1:
            threading.Thread(target=runner.cancel, args=("stop requested",)).start()

    runner = RayTuneRunner(spec, sink, listeners=[on_event], trial_fn=f"{FNS}:slow_trial")
    outcome = runner.run()
    assert outcome.stop_reason == "cancelled" and outcome.message == "stop requested"
    states = [r.state for r in sink.records()]
    assert states.count(TrialState.COMPLETED) >= 1
    assert TrialState.CANCELLED in states and len(states) < 6
    assert all(s in (TrialState.COMPLETED, TrialState.CANCELLED) for s in states)


def test_the_time_budget_stops_the_study_and_cancels_running_trials(ray_session):
    spec = study(base={"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [32]},
                       "training": {"epochs": 30}},  # 3.5 s per trial: 6 trials cannot fit in 2 s
                 budget={"time_budget_s": 2})
    outcome = RayTuneRunner(spec, trial_fn=f"{FNS}:slow_trial").run()
    assert outcome.stop_reason == "time_budget" and outcome.ok
    assert all(r.state is TrialState.CANCELLED and r.error == "time budget spent" for r in outcome.records)


@pytest.mark.slow  # two studies of 5-epoch paced trials
def test_ctrl_c_interrupts_and_resume_finishes_without_rerunning_finished_trials(ray_session, tmp_path):
    spec = study(base={"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [32]},
                       "training": {"epochs": 5}})

    sent = []

    def interrupt(event):  # one real SIGINT to this process, as Ctrl-C sends
        if event.kind == "finished" and event.progress.completed == 2 and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    with ParquetResults(tmp_path, spec) as results:
        first = RayTuneRunner(spec, results, listeners=[interrupt], trial_fn=f"{FNS}:slow_trial").run()
    assert first.stop_reason == "interrupted"
    before = {r.trial_id: r for r in read_trials(tmp_path)}
    finished_before = {t: r for t, r in before.items() if r.state is TrialState.COMPLETED}
    assert len(finished_before) >= 2 and len(before) < 6 + 2

    with ParquetResults(tmp_path, spec, resume=True) as results:
        second = RayTuneRunner(spec, results, history=results.records(), trial_fn=f"{FNS}:slow_trial").run()
    assert second.stop_reason == "completed"
    after = read_trials(tmp_path)
    for trial_id, record in finished_before.items():  # untouched: not re-run
        assert next(r for r in after if r.trial_id == trial_id).finished_at == record.finished_at
    completed = [r for r in after if r.state is TrialState.COMPLETED]
    assert sorted(str(r.params) for r in completed) == sorted(str(p) for p in spec.iter_grid())
    assert [r.number for r in after] == list(range(6))  # interrupted trials re-ran under their numbers


def test_resume_reruns_a_trial_a_killed_run_left_running(ray_session, tmp_path):
    spec = study()
    grid = list(spec.iter_grid())
    with ParquetResults(tmp_path, spec) as results:  # what a killed run leaves behind
        results.write_trial(TrialRecord.pending("t00000", 0, grid[0]).start().complete([{"accuracy": 0.5}]))
        results.write_trial(TrialRecord.pending("t00001", 1, grid[1]).start(node="gone"))
    with ParquetResults(tmp_path, spec, resume=True) as results:
        outcome = RayTuneRunner(spec, results, history=results.records(),
                                trial_fn="dse.runner.synthetic:instant_trial").run()
    records = {r.trial_id: r for r in read_trials(tmp_path)}
    assert outcome.progress.resumed == 1
    assert records["t00000"].metrics["accuracy"] == 0.5  # kept, not re-run
    assert records["t00001"].state is TrialState.COMPLETED and records["t00001"].node != "gone"
    assert len(records) == 6 and all(r.state is TrialState.COMPLETED for r in records.values())


def test_too_many_cpus_per_trial_is_rejected_before_any_trial(ray_session):
    from dse.errors import SpecError

    spec = study(resources={"cpus": 64})
    with pytest.raises(SpecError, match=r"resources.cpus: got 64, but the largest Ray node has 2 CPUs"):
        RayTuneRunner(spec, trial_fn="dse.runner.synthetic:instant_trial").run()


def test_the_cost_breakdown_of_each_trial_is_stored_with_it(ray_session, tmp_path):
    spec = study(
        base={"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [16]},
              "hardware": {"preset": "gokmen_vlasov"}, "training": {"epochs": 2, "lr": 0.1},
              "evaluation": {"repeats": 1, "drift_times_s": []}},
        parameters=[{"name": "adc_bits", "target": "hardware.forward.out_bits", "type": "discrete",
                     "values": [4, 8]}],
        objectives=[{"metric": "accuracy", "goal": "max"}, {"metric": "energy_per_inference_nj", "goal": "min"}],
    )
    with ParquetResults(tmp_path, spec) as results:
        outcome = RayTuneRunner(spec, results).run()
    assert outcome.ok
    for record in read_trials(tmp_path):  # read back from trials.parquet
        assert record.state is TrialState.COMPLETED
        (details,) = record.details
        cost = details["cost"]
        assert cost["energy_per_inference_nj"] == pytest.approx(record.metrics["energy_per_inference_nj"])
        assert {layer["adc_bits"] for layer in cost["layers"]} == {record.params["adc_bits"]}
        assert details["training_cost"]["train_energy_mj"] == pytest.approx(record.metrics["train_energy_mj"])
        assert "cost.energy_nj.adc" not in record.metrics  # the breakdown is not a metric
