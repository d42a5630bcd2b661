"""Speed of the cost model: pricing a mapped ResNet-18, and measuring activity during evaluation.

Cases (one JSON object per line):

- ``price/resnet18``: ``trace`` + ``estimate_cost`` of a CIFAR ResNet-18 mapped on the
  ``hwa_standard`` tiles (11 M weights on 74 arrays of 512 x 512), the first call on a freshly
  mapped model (``cold``, median of 3 models: the weights are read for their conductance density)
  and repeated calls (``warm``, weights unchanged); bar 50 ms. Baseline in the same run:
  one plain-PyTorch forward pass of the same network on one example.
- ``activity/mnist_fcnn``: a trial's evaluation (validation and test accuracy, then 5 programmed
  realizations, as ``run_trial`` evaluates) of a 784-256-128-10 network on ``gokmen_vlasov``
  with the input activity measured during the test pass, against the same evaluation without;
  the two alternate, ``--rounds`` times each. Bar: under 5% added.

    .venv/bin/python benchmarks/cost.py [--rounds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import torch


def price_resnet18(repeats: int) -> list[dict]:
    from dse.trial.config import parse_trial_config, resolve_hardware
    from dse.trial.models import build_model
    from simulator.cost.model import estimate_cost
    from simulator.cost.trace import trace
    from simulator.layers import convert_to_analog

    trial = parse_trial_config({"dataset": {"name": "cifar10"}, "model": {"name": "resnet18"}})
    rpu = resolve_hardware({"preset": "hwa_standard"})
    shape = (3, 32, 32)
    torch.manual_seed(0)
    net = build_model(trial.model, shape, 10).eval()
    x = torch.zeros(1, *shape)
    with torch.no_grad():
        net(x)
        base = []
        for _ in range(repeats):
            t = time.perf_counter()
            net(x)
            base.append(time.perf_counter() - t)
    baseline = statistics.median(base)
    out = []
    # warm-up of the lazy imports and the technology files on another model
    warm_model = convert_to_analog(build_model(trial.model, shape, 10), rpu, seed=1)
    estimate_cost(warm_model, shape)
    colds = []
    for seed in range(3):  # each a freshly mapped network: its weights are read once
        model = convert_to_analog(net, rpu, seed=seed)
        t = time.perf_counter()
        report = estimate_cost(model, shape, model_trace=trace(model, shape))
        colds.append(time.perf_counter() - t)
    cold = statistics.median(colds)
    warm = []
    for _ in range(repeats):
        t = time.perf_counter()
        estimate_cost(model, shape, model_trace=trace(model, shape))
        warm.append(time.perf_counter() - t)
    for case, value in (("cold", cold), ("warm", statistics.median(warm))):
        out.append({"bench": "cost", "case": f"price/resnet18/{case}", "value": round(value * 1e3, 2), "unit": "ms",
                    "baseline_case": "torch-forward/resnet18/1-example", "baseline_value": round(baseline * 1e3, 2),
                    "ratio": round(value / baseline, 2), "bar": "< 50 ms", "meets_bar": value < 0.050,
                    "layers": len(report.layers), "arrays": report.arrays})
    return out


def activity_overhead(rounds: int) -> dict:
    from dse.trial import analog
    from dse.trial.config import EvaluationConfig, parse_trial_config
    from dse.trial.evaluation import analog_metrics
    from dse.trial.run import prepare
    from dse.trial.training import evaluate

    data_dir = ROOT.parent / "shared" / "datasets"
    trial = parse_trial_config({"dataset": {"name": "mnist", "data_dir": str(data_dir), "max_train_samples": 2000},
                                "model": {"name": "fcnn", "hidden": [256, 128]},
                                "hardware": {"preset": "gokmen_vlasov"},
                                "training": {"epochs": 1, "lr": 0.05, "batch_size": 32}})
    run = prepare(trial)
    run.fit()
    cfg = EvaluationConfig(repeats=5, drift_times_s=())
    model = run.model

    def evaluation(measure: bool) -> float:
        t = time.perf_counter()
        evaluate(model, run.val, 1000)
        if measure:
            with analog.activity_of(model) as meter:
                evaluate(model, run.test, 1000)
            meter.result()
        else:
            evaluate(model, run.test, 1000)
        analog_metrics(model, run.test, cfg, 0)
        return time.perf_counter() - t

    evaluation(True)
    plain, probed = [], []
    for _ in range(rounds):
        plain.append(evaluation(False))
        probed.append(evaluation(True))
    p, q = statistics.median(plain), statistics.median(probed)
    added = q / p - 1.0
    return {"bench": "cost", "case": "activity/mnist_fcnn", "value": round(q, 4), "unit": "s per evaluation",
            "baseline_case": "evaluation without activity", "baseline_value": round(p, 4), "ratio": round(q / p, 4),
            "added_fraction": round(added, 4), "bar": "< 5% added", "meets_bar": added < 0.05,
            "test_examples": len(run.test), "rounds": rounds}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="alternating evaluation rounds per variant")
    p.add_argument("--repeats", type=int, default=20, help="timed pricing calls (warm)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for line in price_resnet18(args.repeats):
        print(json.dumps(line), flush=True)
    print(json.dumps(activity_overhead(args.rounds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
