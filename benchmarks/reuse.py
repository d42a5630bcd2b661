"""Train once, evaluate many: studies with and without reusing stored trainings, in one run.

Three measurements, each with its baseline measured in the same run (JSON lines, see
HOUSE_STYLE.md):

- ``case: inference-study``: an inference study of ``--trainings`` training configurations (the
  learning rate) x 36 chips (ADC bits 3 x DAC bits 3 x programming-noise scale 2 x drift time 2),
  MNIST FCNN 784-256-128-10 trained hardware-aware (``hwa_standard``) on a reduced training set,
  on a local Ray with ``--cpus`` workers: wall time with reuse (``value``) against
  ``reuse: false`` (``baseline_value``); ``ratio`` = baseline / reuse (the bar: >= 10);
  ``identical_metrics``: every trial's metrics (times apart) equal between the two;
- ``case: seed004``: ``configs/seed004_retrain.yaml`` (the alpha x retrained-layers grid, two
  seeds) at ``--seed004-train`` images: wall time with reuse against without, same accuracies;
- ``case: load-and-evaluate``: reading a stored model (file, checksum, rebuilding the network)
  and evaluating it, against evaluating the freshly trained network in memory (median of
  ``--eval-rounds`` alternating rounds); ``ratio`` = load+evaluate / evaluate (the bar: <= 1.2).

    nice .venv/bin/python benchmarks/reuse.py [--cpus 2] [--trainings 3] [--train 4000]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = Path(os.environ.get("DSE_DATA_DIR") or os.environ.get("DSE_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
TIMES = {"train_time_s", "epoch_time_s", "eval_time_s"}


def inference_spec(args: argparse.Namespace, reuse: bool) -> dict:
    lrs = [0.02, 0.05, 0.1, 0.2, 0.3][: args.trainings]
    return {
        "name": f"reuse-bench-{'on' if reuse else 'off'}",
        "base": {
            "dataset": {"name": "mnist", "data_dir": str(DATA), "max_train_samples": args.train,
                        "max_test_samples": args.test},
            "model": {"name": "fcnn", "hidden": [256, 128]},
            "hardware": {"preset": "hwa_standard"}, "algorithm": "hwa",
            "training": {"epochs": args.epochs, "batch_size": 32, "lr": 0.05, "momentum": 0.9},
            "evaluation": {"repeats": 1, "drift_times_s": [3600], "batch_size": 500},
        },
        "parameters": [
            {"name": "lr", "target": "training.lr", "type": "discrete", "values": lrs},
            {"name": "adc_bits", "target": "inference.forward.out_bits", "type": "discrete", "values": [4, 6, 8]},
            {"name": "dac_bits", "target": "inference.forward.inp_bits", "type": "discrete", "values": [4, 6, 8]},
            {"name": "prog_scale", "target": "inference.noise.programming.scale", "type": "discrete",
             "values": [1.0, 2.0]},
            {"name": "drift", "target": "evaluation.drift_times_s", "type": "categorical",
             "values": [[3600], [86400]]},
        ],
        "objectives": [{"metric": "accuracy_drift_compensated", "goal": "maximize"},
                       {"metric": "energy_per_inference_nj", "goal": "minimize"}],
        "searcher": "grid", "reuse": reuse, "resources": {"cpus": 1},
    }


def run(spec_data: dict, cpus: int) -> tuple[float, dict]:
    from dse.results import MemorySink, TrialState
    from dse.runner import RayTuneRunner
    from dse.spec import load_spec

    spec = load_spec(spec_data)
    with tempfile.TemporaryDirectory(prefix="dse-reuse-") as models:
        start = time.perf_counter()
        outcome = RayTuneRunner(spec, MemorySink(), model_store=models, num_cpus=cpus).run()
        wall = time.perf_counter() - start
    bad = [r for r in outcome.records if r.state is not TrialState.COMPLETED]
    if bad:
        raise SystemExit(f"{spec.name}: {len(bad)} trials did not complete: {bad[0].error}")
    return wall, {json.dumps(r.params, sort_keys=True): r for r in outcome.records}


def same_metrics(a: dict, b: dict) -> tuple[bool, int]:
    differ = 0
    for key, ra in a.items():
        rb = b[key]
        ma = {k: v for k, v in ra.metrics.items() if k not in TIMES}
        mb = {k: v for k, v in rb.metrics.items() if k not in TIMES}
        differ += ma != mb
    return differ == 0 and a.keys() == b.keys(), differ


def line(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def inference_study(args: argparse.Namespace) -> None:
    off_wall, off = run(inference_spec(args, reuse=False), args.cpus)
    on_wall, on = run(inference_spec(args, reuse=True), args.cpus)
    ok, differ = same_metrics(on, off)
    trained = sum(1 for r in on.values() if not r.reused_training)
    line(bench="reuse", case="inference-study", trials=len(on), trainings=trained, value=round(on_wall, 2),
         unit="s", baseline_case="reuse-false", baseline_value=round(off_wall, 2),
         ratio=round(off_wall / on_wall, 2), bar=10.0, meets_bar=off_wall / on_wall >= 10.0,
         identical_metrics=ok, trials_differing=differ, cpus=args.cpus, train_images=args.train,
         epochs=args.epochs)


def seed004(args: argparse.Namespace) -> None:
    import yaml

    data = yaml.safe_load((ROOT / "configs" / "seed004_retrain.yaml").read_text())
    data["base"]["dataset"].update({"data_dir": str(DATA), "max_train_samples": args.seed004_train,
                                    "max_test_samples": args.test})
    data["base"]["training"]["epochs"] = args.seed004_epochs
    data["base"]["algorithm"]["retrain_epochs"] = args.seed004_retrain_epochs
    off = copy.deepcopy(data) | {"reuse": False, "name": "seed004-off"}
    off_wall, off_records = run(off, args.cpus)
    on_wall, on_records = run(data | {"name": "seed004-on"}, args.cpus)
    ok, differ = same_metrics(on_records, off_records)
    accuracy = statistics.fmean(r.metrics["test_accuracy"] for r in on_records.values())
    line(bench="reuse", case="seed004", trials=len(on_records), value=round(on_wall, 2), unit="s",
         baseline_case="reuse-false", baseline_value=round(off_wall, 2), ratio=round(off_wall / on_wall, 2),
         identical_metrics=ok, trials_differing=differ, mean_test_accuracy=round(accuracy, 4),
         train_images=args.seed004_train, epochs=args.seed004_epochs, retrain_epochs=args.seed004_retrain_epochs)


def load_and_evaluate(args: argparse.Namespace) -> None:
    import torch

    from dse.models import ModelStore, StoreSource
    from dse.spec import load_spec
    from dse.trial.config import parse_trial_config, training_key
    from dse.trial.run import prepare

    torch.set_num_threads(1)
    spec = load_spec(inference_spec(args, reuse=True))
    config = spec.trial_config(spec.default_params())
    trial = parse_trial_config(config)
    key = training_key(trial)
    with tempfile.TemporaryDirectory(prefix="dse-reuse-eval-") as root:
        store = ModelStore(root)
        source = StoreSource(store, {"study": "bench", "trial_id": "t0"})
        fresh = prepare(trial)
        training = fresh.train_stage(source)
        fresh.keep(source, key, training, source.origin)
        model_bytes = store.path(key).stat().st_size
        fresh_times, load_times = [], []
        first = second = None
        for _ in range(args.eval_rounds):
            t0 = time.perf_counter()
            first = fresh.evaluate_stage(training)
            fresh_times.append(time.perf_counter() - t0)
            run = prepare(trial, build=False)
            t0 = time.perf_counter()
            loaded = run.load(source, key)
            run.model = loaded.model
            second = run.evaluate_stage(loaded.training)
            load_times.append(time.perf_counter() - t0)
    same = {k: v for k, v in first.items() if k not in TIMES and k != "_details"} == \
        {k: v for k, v in second.items() if k not in TIMES and k != "_details"}
    value, base = statistics.median(load_times), statistics.median(fresh_times)
    line(bench="reuse", case="load-and-evaluate", value=round(value, 4), unit="s",
         baseline_case="evaluate-fresh", baseline_value=round(base, 4), ratio=round(value / base, 3), bar=1.2,
         meets_bar=value / base <= 1.2, identical_metrics=same, rounds=args.eval_rounds, model_bytes=model_bytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, default=2, help="Ray workers (one CPU per trial)")
    parser.add_argument("--trainings", type=int, default=3, help="training configurations (<= 5)")
    parser.add_argument("--train", type=int, default=4000, help="MNIST training images")
    parser.add_argument("--test", type=int, default=500, help="MNIST test images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed004-train", type=int, default=3000)
    parser.add_argument("--seed004-epochs", type=int, default=3)
    parser.add_argument("--seed004-retrain-epochs", type=int, default=1)
    parser.add_argument("--eval-rounds", type=int, default=5)
    parser.add_argument("--only", choices=("inference-study", "seed004", "load-and-evaluate"), action="append")
    args = parser.parse_args()
    if not (DATA / "mnist").is_dir():
        raise SystemExit(f"MNIST not found under {DATA} (set DSE_DATA_DIR)")
    cases = args.only or ["load-and-evaluate", "inference-study", "seed004"]
    if "load-and-evaluate" in cases:
        load_and_evaluate(args)
    if "inference-study" in cases or "seed004" in cases:
        import ray

        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        if "inference-study" in cases:
            inference_study(args)
        if "seed004" in cases:
            seed004(args)
        ray.shutdown()


if __name__ == "__main__":
    main()
