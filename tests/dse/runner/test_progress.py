"""Progress snapshots, the progress line and bar (no Ray needed)."""

from __future__ import annotations

import io

from dse.results import TrialRecord, TrialState
from dse.runner.progress import ProgressBar, ProgressTracker, StudyEvent, format_duration, progress_line

from .conftest import study


def _spec():
    return study(objectives=[{"metric": "accuracy", "goal": "max"}, {"metric": "train_time_s", "goal": "min"}],
                 constraints=["n_tiles <= 4"], budget={"max_trials": 10})


def _done(number, accuracy, time_s, tiles=1.0, state="complete"):
    record = TrialRecord.pending(f"t{number:05d}", number, {"lr": 0.05, "hidden": [16]}).start()
    if state == "fail":
        return record.fail("diverged at epoch 1: loss=nan")
    return record.complete([{"accuracy": accuracy, "train_time_s": time_s, "n_tiles": tiles}])


def test_best_so_far_counts_only_completed_trials_that_meet_the_constraints():
    tracker = ProgressTracker(_spec(), max_trials=10)
    tracker.update(_done(0, 0.90, 2.0))
    tracker.update(_done(1, 0.99, 0.5, tiles=8.0))  # infeasible: n_tiles > 4
    tracker.update(_done(2, 0.95, 3.0))
    tracker.update(_done(3, 0.0, 0.0, state="fail"))
    tracker.update(TrialRecord.pending("t00004", 4, {}).start())
    p = tracker.snapshot()
    assert (p.completed, p.failed, p.running, p.done) == (3, 1, 1, 4)
    assert [(b.metric, b.value, b.trial_id) for b in p.best] == [("accuracy", 0.95, "t00002"),
                                                                  ("train_time_s", 2.0, "t00000")]


def test_resumed_trials_count_as_done_and_resumed():
    tracker = ProgressTracker(_spec(), max_trials=10)
    tracker.load([_done(0, 0.9, 1.0), TrialRecord.pending("t00001", 1, {}).start()])
    p = tracker.snapshot()
    assert (p.resumed, p.completed, p.running) == (1, 1, 0)  # a leftover RUNNING trial is not running now


def test_progress_line_shows_counts_time_and_best_values():
    tracker = ProgressTracker(_spec(), max_trials=10)
    for i in range(5):
        tracker.update(_done(i, 0.9 + i / 100, 2.0 - i / 10))
    tracker.update(_done(5, 0, 0, state="fail"))
    line = progress_line(tracker.snapshot())
    assert line.startswith("[############........] 6/10 done | 0 running | 1 failed | 00:0")
    assert line.endswith("best accuracy=0.94(max) train_time_s=1.6(min)")
    assert format_duration(3725.2) == "1:02:05" and format_duration(75.9) == "01:15"


def test_bar_redraws_in_place_on_a_terminal_and_prints_lines_otherwise():
    tracker = ProgressTracker(_spec(), max_trials=10)
    record = _done(0, 0.9, 1.0)
    tracker.update(record)
    events = [StudyEvent("study_started", tracker.snapshot(), message="running on Ray at x: 1 node(s), 2 CPUs"),
              StudyEvent("tick", tracker.snapshot()),
              StudyEvent("finished", tracker.snapshot(), record),
              StudyEvent("study_finished", tracker.snapshot())]
    tty, log = io.StringIO(), io.StringIO()
    bar_tty, bar_log = ProgressBar(tty, tty=True), ProgressBar(log, tty=False, interval_s=3600)
    for e in events:
        bar_tty(e)
        bar_log(e)
    assert tty.getvalue().count("\r") == 4 and tty.getvalue().endswith("\n")
    lines = log.getvalue().splitlines()
    assert lines[0] == "running on Ray at x: 1 node(s), 2 CPUs"
    assert len(lines) == 4  # the start, the finished trial and the end; the tick is throttled


def test_bar_reports_failed_trials_on_their_own_line():
    tracker = ProgressTracker(_spec())
    failed = _done(0, 0, 0, state="fail")
    tracker.update(failed)
    out = io.StringIO()
    ProgressBar(out, tty=True)(StudyEvent("finished", tracker.snapshot(), failed))
    assert "trial t00000 failed: diverged at epoch 1: loss=nan\n" in out.getvalue()
    assert TrialState.FAILED is failed.state
