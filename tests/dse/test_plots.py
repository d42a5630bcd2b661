"""Figures of study results: axis labels with units, the front's step line, the 3-objective
scatter matrix, hypervolume curves of several studies, and ``--plot`` / ``dse plot`` files."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dse.cli import main
from dse.pareto import Normalization, as_objectives, eligible, hypervolume_history, pareto_front
from dse.results import TrialRecord, export_results
from dse.results.plots import _staircase, hypervolume_figure, metric_label, pareto_figure
from dse.spec import StudySpec, load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("name", "label"), [
    ("energy_per_inference_nj", "energy per inference (nJ)"),
    ("area_mm2", "area (mm²)"),
    ("train_time_s", "train time (s)"),
    ("latency_per_inference_us", "latency per inference (µs)"),
    ("energy_uj", "energy (µJ)"),
    ("tops_per_w", "TOPS/W"),
    ("n_tiles", "number of tiles"),
    ("snr_db", "SNR (dB)"),
    ("accuracy", "accuracy"),
])
def test_metric_labels_carry_the_units_of_the_name_suffix(name: str, label: str) -> None:
    assert metric_label(name) == label


def make_spec(name: str = "plots", searcher: str = "random") -> StudySpec:
    return load_spec({
        "name": name,
        "base": {"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [8]}, "training": {"epochs": 1}},
        "parameters": [{"name": "lr", "target": "training.lr", "type": "float", "low": 0.001, "high": 0.5}],
        "objectives": [{"metric": "accuracy", "goal": "max"}, {"metric": "energy_per_inference_nj", "goal": "min"}],
        "constraints": ["area_mm2 <= 0.8"],
        "searcher": {"type": searcher, "seed": 0},
        "budget": {"max_trials": 40},
    })


def make_records(n: int, seed: int) -> list[TrialRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rec = TrialRecord.pending(f"t{i:05d}", i, {"lr": rng.uniform(0.001, 0.5)}, seeds=(i,)).start()
        out.append(rec.complete([{"accuracy": rng.random(), "energy_per_inference_nj": rng.uniform(1, 50),
                                  "area_mm2": rng.uniform(0.1, 1.0), "train_time_s": rng.uniform(1, 9)}]))
    return out


def test_two_objectives_scatter_with_the_front_as_a_step_line() -> None:
    spec, records = make_spec(), make_records(40, seed=1)
    fig = pareto_figure(records, spec.objectives, spec.constraints, title=spec.name)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "accuracy" and ax.get_ylabel() == "energy per inference (nJ)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["violates a constraint", "dominated", "Pareto front"]
    front = pareto_front(records, spec.objectives, spec.constraints)
    (line,) = ax.get_lines()
    xs, ys = line.get_xdata(), line.get_ydata()
    assert len(xs) == 2 * len(front) - 1  # a corner between each two front points
    # Every vertex of the step line is a front point or a corner made of two of them; the corners
    # lie on the boundary of what the front dominates (no front point strictly beats a corner).
    points = {(r.metrics["accuracy"], r.metrics["energy_per_inference_nj"]) for r in front}
    for x, y in zip(xs, ys):
        assert (x, y) in points or (x in {p[0] for p in points} and y in {p[1] for p in points})
        assert not any(px > x and py < y for px, py in points)
    assert f"{len(front)} of" in ax.get_title()


def test_staircase_of_a_min_min_front() -> None:
    xs, ys = _staircase([(3.0, 1.0), (1.0, 3.0), (2.0, 2.0)], ("minimize", "minimize"))
    assert list(zip(xs, ys)) == [(1.0, 3.0), (2.0, 3.0), (2.0, 2.0), (3.0, 2.0), (3.0, 1.0)]


def test_three_objectives_make_a_scatter_matrix() -> None:
    records = make_records(30, seed=2)
    objectives = as_objectives(["accuracy:max", "energy_per_inference_nj:min", "area_mm2:min"])
    fig = pareto_figure(records, objectives)
    assert len(fig.axes) == 9
    labels = ["accuracy", "energy per inference (nJ)", "area (mm²)"]
    for i in range(3):
        for j in range(3):
            ax = fig.axes[3 * i + j]
            assert ax.get_xlabel() == labels[j]
            assert ax.get_ylabel() == ("trials" if i == j else labels[i])
    with pytest.raises(ValueError, match="accepted: 2"):
        pareto_figure(records, as_objectives(["accuracy:max"]))


def test_hypervolume_curves_share_one_normalization() -> None:
    a, b = make_spec("study-a", "random"), make_spec("study-b", "tpe")
    ra, rb = make_records(20, seed=3), make_records(25, seed=4)
    fig = hypervolume_figure([(a, ra), (b, rb)])
    (ax,) = fig.axes
    assert ax.get_xlabel() == "trials" and ax.get_ylabel() == "hypervolume (normalized)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["study-a (random)", "study-b (tpe)"]
    pooled = [v for recs in (ra, rb) for _, v in eligible(recs, a.objectives, a.constraints)]
    norm = Normalization.from_values(np.asarray(pooled), a.objectives)
    for line, recs in zip(ax.get_lines(), (ra, rb)):
        assert list(line.get_ydata()) == pytest.approx(hypervolume_history(recs, a.objectives, a.constraints, norm))
        assert list(line.get_xdata()) == list(range(1, len(recs) + 1))


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    spec = make_spec()
    return export_results(tmp_path / "results", make_records(30, seed=5), spec)


@pytest.mark.parametrize("suffix", ["png", "svg", "pdf"])
def test_pareto_plot_files(results_dir: Path, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / f"front.{suffix}"
    assert main(["pareto", str(results_dir), "--plot", str(out)]) == 0
    assert "front over accuracy (max) vs energy_per_inference_nj (min)" in capsys.readouterr().out
    data = out.read_bytes()
    assert len(data) > 1000
    assert data.startswith({"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[suffix])
    if suffix == "svg":
        assert b"energy per inference (nJ)" in data and b"accuracy" in data


def test_plot_hypervolume_command(results_dir: Path, tmp_path: Path) -> None:
    other = export_results(tmp_path / "other", make_records(12, seed=6), make_spec("other"))
    out = tmp_path / "hv.svg"
    assert main(["plot", "hypervolume", str(results_dir), str(other), "-O", str(out)]) == 0
    svg = out.read_text()
    assert "hypervolume (normalized)" in svg and "plots (random)" in svg and "other (random)" in svg
    assert main(["plot", "hypervolume", str(results_dir), "-O", str(tmp_path / "hv.jpg")]) == 2


def test_without_matplotlib_the_command_names_the_extra(results_dir: Path, tmp_path: Path) -> None:
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from dse.cli import main\n"
            f"sys.exit(main(['pareto', {str(results_dir)!r}, '--plot', {str(tmp_path / 'f.png')!r}]))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert "install the 'plot' extra: pip install 'analog-dse[plot]'" in run.stderr
