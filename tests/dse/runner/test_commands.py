"""The study commands: ``dse run`` and ``dse pareto`` / ``best`` / ``export`` on a results directory."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dse.cli import main
from dse.pareto import best_trials, pareto_front, study_hypervolume
from dse.results import ParquetResults, TrialRecord, TrialState, read_trials

from .conftest import study

ROOT = Path(__file__).resolve().parents[3]


def _two_objective_study():
    return study(
        name="cmd-test",
        objectives=[{"metric": "accuracy", "goal": "max"}, {"metric": "train_time_s", "goal": "min"}],
        constraints=["n_params <= 5000"],
    )


@pytest.fixture
def results_dir(tmp_path):
    """A results directory with 6 trials: 4 completed (one infeasible), 1 failed, 1 cancelled."""
    spec = _two_objective_study()
    grid = list(spec.iter_grid())
    metrics = [
        {"accuracy": 0.90, "train_time_s": 1.0, "n_params": 1000.0},  # front
        {"accuracy": 0.95, "train_time_s": 3.0, "n_params": 2000.0},  # front
        {"accuracy": 0.85, "train_time_s": 2.0, "n_params": 1500.0},  # dominated by t00000
        {"accuracy": 0.99, "train_time_s": 0.5, "n_params": 9000.0},  # best, but infeasible
    ]
    with ParquetResults(tmp_path / "res", spec) as results:
        for i, m in enumerate(metrics):
            results.write_trial(TrialRecord.pending(f"t{i:05d}", i, grid[i]).start(node="n").complete([m]))
        results.write_trial(TrialRecord.pending("t00004", 4, grid[4]).start().fail("diverged at epoch 2"))
        results.write_trial(TrialRecord.pending("t00005", 5, grid[5]).start().cancel("interrupted"))
    return tmp_path / "res"


def _run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_pareto_prints_the_front_under_constraints_and_its_hypervolume(results_dir, capsys):
    spec, records = _two_objective_study(), read_trials(results_dir)
    code, out, _ = _run_cli(capsys, "pareto", str(results_dir), "--json")
    assert code == 0
    report = json.loads(out)
    expected = pareto_front(records, spec.objectives, spec.constraints)
    assert [t["trial_id"] for t in report["trials"]] == [r.trial_id for r in expected] == ["t00001", "t00000"]
    assert report["hypervolume"] == pytest.approx(study_hypervolume(records, spec.objectives, spec.constraints))
    assert report["eligible"] == 3  # completed and feasible

    code, out, _ = _run_cli(capsys, "pareto", str(results_dir), "--ranks", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "study cmd-test: 6 trials (4 completed, 1 failed, 1 cancelled)"
    assert "constraints n_params <= 5000: 2 of 3 eligible trials" in lines[1]
    table = lines[lines.index(next(line for line in lines if line.startswith("rank"))):]
    assert table[0].split() == ["rank", "trial", "lr", "hidden", "accuracy", "train_time_s", "n_params"]
    assert [row.split()[:2] for row in table[2:]] == [["0", "t00001"], ["0", "t00000"], ["1", "t00002"]]


def test_pareto_over_other_objectives_and_without_constraints(results_dir, capsys):
    code, out, _ = _run_cli(capsys, "pareto", str(results_dir), "-o", "accuracy:max", "-o", "n_params:min",
                            "--no-constraints", "--json")
    assert code == 0
    ids = [t["trial_id"] for t in json.loads(out)["trials"]]
    assert ids == ["t00003", "t00001", "t00000"]  # the infeasible t00003 counts now


@pytest.mark.parametrize("command", ["pareto", "best"])
def test_an_objective_no_trial_recorded_is_named(results_dir, capsys, command):
    code, out, err = _run_cli(capsys, command, str(results_dir), "-o", "bogus:max", "-o", "accuracy:max")
    assert code == 2 and out == ""
    assert "--objective[0]" in err and "'bogus'" in err and "accuracy, n_params, train_time_s" in err


def test_dse_run_refuses_an_objective_the_trial_function_does_not_produce(tmp_path, capsys):
    spec_file = tmp_path / "bogus.yaml"
    spec_file.write_text(study().to_yaml().replace("metric: accuracy", "metric: acuracy"))
    code, _, err = _run_cli(capsys, "run", str(spec_file), "--results", str(tmp_path / "out"))
    assert code == 2 and "objectives[0].metric" in err and "'acuracy'" in err and "energy_per_inference_nj" in err


def test_best_respects_constraints(results_dir, capsys):
    spec, records = _two_objective_study(), read_trials(results_dir)
    code, out, _ = _run_cli(capsys, "best", str(results_dir), "--json")
    assert code == 0
    best = {b["metric"]: b["trial_id"] for b in json.loads(out)}
    oracle = best_trials(records, spec.objectives, spec.constraints)
    assert best == {m: r.trial_id for m, r in oracle.items()} == {"accuracy": "t00001", "train_time_s": "t00000"}
    code, out, _ = _run_cli(capsys, "best", str(results_dir))
    assert "under constraints n_params <= 5000" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("accuracy ", "train_time_s "))}
    assert rows["accuracy"][1:4] == ["max", "0.95", "t00001"]


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_adds_rank_and_feasibility(results_dir, tmp_path, capsys, fmt):
    target = tmp_path / f"trials.{fmt}"
    code, _, err = _run_cli(capsys, "export", str(results_dir), "--output", str(target))
    assert code == 0 and "wrote 6 rows" in err
    if fmt == "parquet":
        rows = pq.read_table(target).to_pylist()
    elif fmt == "json":
        rows = json.loads(target.read_text())
    else:
        rows = list(csv.DictReader(io.StringIO(target.read_text())))
    by_id = {r["trial_id"]: r for r in rows}
    ranks = {t: by_id[t]["rank"] for t in by_id}
    feasible = {t: by_id[t]["feasible"] for t in by_id}
    if fmt == "csv":
        ranks = {t: int(v) if v else None for t, v in ranks.items()}
        feasible = {t: v == "True" for t, v in feasible.items()}
    assert ranks == {"t00000": 0, "t00001": 0, "t00002": 1, "t00003": None, "t00004": None, "t00005": None}
    assert [t for t, f in feasible.items() if f] == ["t00000", "t00001", "t00002"]
    assert "param.lr" in by_id["t00000"] and "metric.accuracy" in by_id["t00000"]


def test_export_measurements_to_stdout(results_dir, capsys):
    code, out, _ = _run_cli(capsys, "export", str(results_dir), "--measurements", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("trial_id,number,repeat,epoch")


def test_commands_on_a_directory_without_results_fail_with_a_message(tmp_path, capsys):
    code, _, err = _run_cli(capsys, "pareto", str(tmp_path))
    assert code == 2 and "not a results directory (no study.json)" in err
    code, _, err = _run_cli(capsys, "export", str(tmp_path), "--format", "parquet")
    assert code == 2


@pytest.mark.ray
def test_dse_run_writes_results_refuses_to_overwrite_and_resumes(ray_session, tmp_path, capsys):
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(study(name="cli-run").to_yaml())
    out_dir = tmp_path / "out"
    args = ["run", str(spec_file), "--results", str(out_dir), "--trial-fn", "dse.runner.synthetic:instant_trial"]
    code, out, err = _run_cli(capsys, *args)
    assert code == 0, err
    assert "study cli-run stopped: the searcher finished" in out
    assert "6/6 done" in err  # the progress bar
    records = read_trials(out_dir)
    assert len(records) == 6 and all(r.state is TrialState.COMPLETED for r in records)

    code, _, err = _run_cli(capsys, *args)
    assert code == 2 and "resume them (--resume) or choose another results directory" in err

    code, out, err = _run_cli(capsys, *args, "--resume")
    assert code == 0 and "6 finished trials kept, 0 unfinished re-run" in err
    assert [r.finished_at for r in read_trials(out_dir)] == [r.finished_at for r in records]


def test_dse_run_reports_an_invalid_spec_with_its_path(tmp_path, capsys):
    spec_file = tmp_path / "bad.yaml"
    spec_file.write_text(study().to_yaml().replace("type: grid", "type: annealing"))
    code, _, err = _run_cli(capsys, "run", str(spec_file), "--results", str(tmp_path / "out"))
    assert code == 2 and "searcher.type" in err and "annealing" in err


@pytest.mark.slow  # two `dse run` processes, each starting its own local Ray
def test_a_killed_dse_run_resumes_without_rerunning_finished_trials(tmp_path):
    spec_file = tmp_path / "study.yaml"
    spec = study(name="killed", base={"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [32]},
                                      "training": {"epochs": 10}})
    spec_file.write_text(spec.to_yaml())
    out_dir = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cmd = [str(Path(sys.executable).with_name("dse")), "run", str(spec_file), "--results", str(out_dir),
           "--trial-fn", "dse.runner.synthetic:paced_trial", "--num-cpus", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # kill it once 2 trials finished
            if (out_dir / "trials.parquet").is_file():
                done = [r for r in read_trials(out_dir) if r.state is TrialState.COMPLETED]
                if len(done) >= 2:
                    break
            assert proc.poll() is None, f"dse run exited early with status {proc.returncode}"
            time.sleep(0.2)
        else:
            pytest.fail("the study did not finish 2 trials in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
        proc.wait()
    before = {r.trial_id: r for r in read_trials(out_dir)}
    finished = {t: r for t, r in before.items() if r.state.is_finished}
    resumed = subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                             check=False)
    assert resumed.returncode == 0, (resumed.returncode, resumed.stdout, resumed.stderr)
    after = {r.trial_id: r for r in read_trials(out_dir)}
    for trial_id, record in finished.items():
        assert after[trial_id].finished_at == record.finished_at  # not re-run
    assert all(r.state is TrialState.COMPLETED for r in after.values())
    assert sorted(str(r.params) for r in after.values()) == sorted(str(p) for p in spec.iter_grid())


@pytest.mark.slow  # trains 16 small networks (about a minute on 2 idle cores)
@pytest.mark.ray
def test_the_quickstart_study_runs_to_completion(ray_session, tmp_path, capsys):
    code, out, err = _run_cli(capsys, "run", str(ROOT / "configs" / "quickstart.yaml"), "--results",
                              str(tmp_path / "qs"))
    assert code == 0, err
    records = read_trials(tmp_path / "qs")
    assert len(records) == 16 and sum(r.state is TrialState.COMPLETED for r in records) >= 12
    assert max(r.metrics.get("accuracy", 0.0) for r in records) > 0.9  # some design learns digits
    assert "front over accuracy (max) vs train_time_s (min)" in out
