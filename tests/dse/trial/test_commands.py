"""The ``dse trial``, ``dse lr-range`` and ``dse data`` commands, and the range-test logic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dse.cli import main
from dse.trial.lr_range import lr_range_test, suggest

ROOT = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, config: dict) -> str:
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_trial_command_prints_epochs_and_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {"model": {"hidden": [16]}, "training": {"epochs": 2},
                             "evaluation": {"repeats": 1, "drift_times_s": []}})
    assert main(["trial", path, "--threads", "1", "--json", "--set", "training.epochs=3"]) == 0
    out = capsys.readouterr()
    assert [line.split()[1] for line in out.err.splitlines() if line.startswith("epoch")] == ["1", "2", "3"]
    metrics = json.loads(out.out)
    assert metrics["epochs"] == 3 and 0.0 <= metrics["test_accuracy"] <= 1.0


def test_trial_command_reports_config_errors_and_divergence_without_a_trace(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {"training": {"lr": -1}})
    assert main(["trial", path]) == 2
    assert capsys.readouterr().err.strip() == "error: training.lr: got -1.0; accepted: a number in (0.0, 100.0]"
    path = _write(tmp_path, {"model": {"hidden": [512, 512]}, "training": {"epochs": 2, "lr": 100.0},
                             "evaluation": {"repeats": 1, "drift_times_s": []}})
    assert main(["trial", path, "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "error: diverged at epoch 1: loss=" in err and "Traceback" not in err
    assert main(["trial", str(tmp_path / "missing.yaml")]) == 2


def test_trial_command_validate_prints_the_normalized_config(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {"hardware": {"preset": "gokmen_vlasov", "device.dw_min": 0.002}})
    assert main(["trial", path, "--validate", "--set", "hardware.forward.out_bits=6"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["hardware"] == {"preset": "gokmen_vlasov", "device": {"dw_min": 0.002}, "forward": {"out_bits": 6}}


def test_example_trial_configs_validate(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted((ROOT / "configs" / "trials").glob("*.yaml"))
    assert files
    for f in files:
        assert main(["trial", str(f), "--validate"]) == 0, f
    capsys.readouterr()


def test_suggestion_stops_where_the_curve_turns_ragged() -> None:
    lrs = [0.01 * (i + 1) for i in range(10)]
    peak, div = suggest(lrs, [0.1, 0.1, 0.12, 0.3, 0.5, 0.7, 0.8, 0.82, 0.6, 0.2])
    assert peak == pytest.approx(0.08)                  # the best accuracy before the fall
    assert div == 3.0  # the rise starts at 0.04 (0.3 >= 0.1 + 10% of 0.72): 0.08 / 0.04 = 2, clamped to 3
    ragged = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.1, 0.95, 0.1, 0.1]   # a late spike after a collapse
    assert suggest(lrs, ragged)[0] == pytest.approx(0.06)
    wide = [0.1, 0.1, 0.2, 0.4, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]
    assert suggest(lrs, wide) == pytest.approx((0.1, 0.1 / 0.03))


def test_lr_range_test_on_digits_sweeps_and_suggests_within_the_range() -> None:
    result = lr_range_test({"model": {"hidden": [32]}}, lr_min=0.01, lr_max=0.5, epochs=2, points=8,
                           num_threads=1)
    assert result.diverged_at is None
    assert len(result.lrs) == 8 and result.lrs == sorted(result.lrs)
    assert 0.01 <= result.suggested_start < result.suggested_lr <= 0.5
    assert max(result.accuracies) > 0.5  # it learned along the way


def test_lr_range_test_stops_when_the_loss_diverges() -> None:
    result = lr_range_test({"model": {"hidden": [512, 512]}}, lr_min=1.0, lr_max=100.0, epochs=1, points=10,
                           num_threads=1)
    assert result.diverged_at is not None and result.diverged_at <= 100.0


def test_lr_range_command_prints_a_one_cycle_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {"model": {"hidden": [32]}})
    png = tmp_path / "range.png"
    assert main(["lr-range", path, "--lr-min", "0.01", "--lr-max", "0.5", "--points", "5", "--threads", "1",
                 "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "training.lr:" in out and "type: one_cycle, div_factor:" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_info_lists_every_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "digits: embedded" in out and "dse data download cifar10" in out


def test_cost_command_prices_a_design_without_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("model: {name: fcnn, hidden: [32]}\nhardware: {preset: gokmen_vlasov}\n")
    assert main(["cost", str(path)]) == 0
    out = capsys.readouterr().out
    assert "static activity" in out and "energy per inference" in out and "TOPS/W" in out
    assert out.count("fc1") == 1 and "fc2" in out
    assert main(["cost", str(path), "--json", "--set", "hardware.cost.tech=isaac32"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["technology"] == "isaac32" and [layer["name"] for layer in report["layers"]] == ["fc1", "fc2"]
    assert report["layers"][0]["input_cycles"] == 7  # ISAAC's 1-bit DACs: one cycle per input bit
    assert main(["cost", str(path), "--constants"]) == 0
    assert "NeuroSim V1.4 SubArray.cpp" in capsys.readouterr().out


def test_cost_command_names_a_bad_constant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("hardware: {preset: gokmen_vlasov, cost: {cols_per_adc: 0}}\n")
    assert main(["cost", str(path)]) != 0
    err = capsys.readouterr().err
    assert "hardware.cost.cols_per_adc" in err and "got 0" in err


def test_trial_command_prints_the_cost_breakdown_after_training(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {"model": {"hidden": [16]}, "hardware": {"preset": "gokmen_vlasov"},
                             "training": {"epochs": 2}, "evaluation": {"repeats": 1, "drift_times_s": []}})
    assert main(["trial", path, "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "energy_per_inference_nj" in out and "train_energy_mj" in out  # the metrics
    assert "activity measured" in out and "energy per inference" in out  # then the table
    assert "training " in out and "mJ over 2 epochs" in out


def test_trial_command_warns_when_updates_saturate_the_pulse_train(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # gokmen_vlasov: desired_bl 31 x dw_min 0.0016 = 0.05, far below lr 20 x |x| |d| of the output layer
    path = _write(tmp_path, {"model": {"hidden": [16]}, "hardware": {"preset": "gokmen_vlasov"},
                             "training": {"epochs": 1, "lr": 20.0},
                             "evaluation": {"repeats": 1, "drift_times_s": []}})
    assert main(["trial", path, "--threads", "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["clipped_update_fraction"] > 0.1
    assert "warning:" in captured.err and "saturated the pulse train" in captured.err
