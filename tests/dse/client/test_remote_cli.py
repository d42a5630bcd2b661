"""The CLI against a real ``dse serve``: the same study run locally (``dse run``) and on the
service prints identical ``pareto`` / ``best`` tables; ``watch``, ``submit``, ``status``,
``cancel``; figures of a study on the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from dse.cli import main
from dse.client import Client
from tests.dse.client.conftest import INSTANT, WRITE_TOKEN, grid_spec

pytestmark = [pytest.mark.ray, pytest.mark.integration]


@pytest.fixture(scope="module")
def local_results(tmp_path_factory: pytest.TempPathFactory, ray_session: Any) -> Path:
    """:func:`grid_spec` run locally with ``dse run`` (the same trials as the service's run)."""
    tmp = tmp_path_factory.mktemp("local")
    spec = tmp / "study.yaml"
    spec.write_text(yaml.safe_dump(grid_spec()))
    results = tmp / "results"
    assert main(["run", str(spec), "--results", str(results), "--trial-fn", INSTANT, "--quiet"]) == 0
    return results


def remote(service: Any) -> list[str]:
    return ["--server", service.url, "--token", WRITE_TOKEN]


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_remote_and_local_pareto_and_best_print_identical_tables(
    service: Any, finished_study: Any, local_results: Path, capsys: pytest.CaptureFixture
) -> None:
    study, _ = finished_study
    for command in (["pareto"], ["pareto", "--ranks", "3"], ["best"], ["pareto", "-o", "accuracy:max",
                                                                        "-o", "n_params:min"]):
        code_l, local, _ = run_cli(capsys, command[0], str(local_results), *command[1:])
        code_r, served, _ = run_cli(capsys, command[0], study.id, *command[1:], *remote(service))
        assert code_l == code_r == 0
        assert served == local, command
        assert "t00004" in local  # a table of trials, not just the summary
    _, local, _ = run_cli(capsys, "pareto", str(local_results))
    assert "client-grid: 9 trials (9 completed)" in local and "hypervolume" in local
    # The JSON reports too, and the export's trial columns.
    _, local_json, _ = run_cli(capsys, "pareto", str(local_results), "--json")
    _, served_json, _ = run_cli(capsys, "pareto", study.id, "--json", *remote(service))
    assert json.loads(served_json) == json.loads(local_json)
    _, local_csv, _ = run_cli(capsys, "export", str(local_results), "--format", "json")
    _, served_csv, _ = run_cli(capsys, "export", study.id, "--format", "json", *remote(service))
    keep = ("trial_id", "number", "state", "param.lr", "param.hidden", "metric.accuracy", "rank", "feasible")
    rows = [[{k: r[k] for k in keep} for r in json.loads(text)] for text in (local_csv, served_csv)]
    assert rows[0] == rows[1] and len(rows[0]) == 9


def test_the_clients_dataframe_has_the_columns_of_a_local_trials_parquet(
    service: Any, finished_study: Any, local_results: Path
) -> None:
    study, _ = finished_study
    with Client(service.url, token=WRITE_TOKEN) as client:
        df = client.trials(study.id)
    local = pd.read_parquet(local_results / "trials.parquet")
    assert df.columns.tolist() == local.columns.tolist()
    assert df.dtypes.tolist() == local.dtypes.tolist()
    same = ["trial_id", "number", "state", "param.lr", "param.hidden", "metric.accuracy", "metric.n_params"]
    pd.testing.assert_frame_equal(df[same], local[same])


def test_watch_prints_the_progress_line_and_the_summary(
    service: Any, finished_study: Any, capsys: pytest.CaptureFixture
) -> None:
    study, _ = finished_study
    code, out, err = run_cli(capsys, "watch", study.id, *remote(service))
    assert code == 0
    assert "[####################] 9/9 done | 0 running | 0 failed" in err  # dse run's progress line
    assert "best accuracy=" in err
    assert f"study client-grid ({study.id}) completed" in out
    assert "front over accuracy (max) vs train_time_s (min)" in out


def test_submit_status_and_cancel(service: Any, finished_study: Any, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(grid_spec("cli-submit")))
    code, out, err = run_cli(capsys, "submit", str(path), "--idempotency-key", "cli-1", *remote(service))
    assert code == 0 and "submitted cli-submit as" in err
    sid = out.strip()
    code, out, _ = run_cli(capsys, "submit", str(path), "--idempotency-key", "cli-1", *remote(service))
    assert out.strip() == sid  # the retry found the first submission
    code, out, _ = run_cli(capsys, "status", *remote(service))
    assert code == 0 and sid in out and "cli-submit" in out
    code, out, _ = run_cli(capsys, "cancel", sid, *remote(service))
    assert code == 0 and out.startswith(f"study cli-submit ({sid}): CANCEL")
    code, out, _ = run_cli(capsys, "watch", sid, "--quiet", *remote(service))
    assert code == 1  # cancelled: dse run's exit status for a stopped study
    assert f"({sid}) cancelled" in out
    study, _ = finished_study
    code, out, _ = run_cli(capsys, "status", study.id, *remote(service))
    assert code == 0 and f"study client-grid ({study.id}): COMPLETED" in out and "best accuracy (max)" in out
    code, _, err = run_cli(capsys, "cancel", study.id, *remote(service))
    assert code == 2 and "409 Conflict" in err and "already COMPLETED" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(grid_spec("cli-bad", parameters=[{"name": "lr", "target": "training.nope",
                                                                    "type": "discrete", "values": [1]}])))
    code, _, err = run_cli(capsys, "submit", str(bad), *remote(service))
    assert code == 2 and "parameters[0].target" in err


def test_figures_of_a_study_on_the_service(service: Any, finished_study: Any, local_results: Path,
                                           tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    study, _ = finished_study
    with Client(service.url, token=WRITE_TOKEN) as client:
        fig = client.plot_pareto(study.id)
        fig3 = client.plot_pareto(study.id, ["accuracy:max", "train_time_s:min", "n_params:min"])
        hv = client.plot_hypervolume(study.id)
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("accuracy", "train time (s)")
    assert len(fig3.axes) == 9 and fig3.axes[1].get_xlabel() == "train time (s)"
    assert hv.axes[0].get_ylabel() == "hypervolume (normalized)"
    out = tmp_path / "front.pdf"
    code, _, _ = run_cli(capsys, "pareto", study.id, "--plot", str(out), *remote(service))
    assert code == 0 and out.read_bytes().startswith(b"%PDF") and out.stat().st_size > 1000
    curves = tmp_path / "hv.png"
    code, _, _ = run_cli(capsys, "plot", "hypervolume", str(local_results), study.id, "-O", str(curves),
                         "--label", "local", "--label", "service", *remote(service))
    assert code == 0 and curves.read_bytes().startswith(b"\x89PNG")
