"""Micro-benchmark of ``PulsedUpdater.update_`` for the MNIST FCNN layer shapes.

For 784->256, 256->128 and 128->10 with a mini-batch of 32, it times the exact and the aggregate
pulsed update (the ``gokmen_vlasov`` device: ConstantStep, dw_min 0.0016, dtod 0.3, std 0.3,
bounds +-1; BL 31 with update and BL management; lr 0.05) against two baselines measured in the
same run: the plain float update ``weight.addmm_(d.T, x, alpha=-lr)`` and a plain torch
``nn.Linear`` forward + backward + SGD step of the same shape. It also times aihwkit's
pulse-by-pulse order (:mod:`simulator.pulsed.reference`) on the smallest layer.

The inputs ``x`` and errors ``d`` are the real ones of a float 784-256-128-10 ReLU network after
300 SGD steps on MNIST (``../shared/datasets/mnist``), or on random images if that folder is absent
(the output says which), so the per-sample pulse-train lengths are those of training.

Prints one JSON object per line: ``{"bench": "pulsed_update", "case": ..., "value": ...,
"unit": "updates/s", "baseline_case": ..., "baseline_value": ..., "ratio": ...}``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and benchmarks/simulator.py would
# shadow the simulator package: import from the repository root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from simulator.configs import ConstantStepDevice, UpdateConfig  # noqa: E402
from simulator.pulsed import PulsedUpdater  # noqa: E402
from simulator.pulsed.management import probabilities  # noqa: E402
from simulator.pulsed.reference import reference_update_  # noqa: E402
from simulator.rng import RandomSource  # noqa: E402

MNIST = Path(os.environ.get("DSE_SHARED_DATASETS", ROOT.parent / "shared" / "datasets")) / "mnist"
SIZES = (784, 256, 128, 10)
BATCH = 32
LR = 0.05
GOKMEN_VLASOV = ConstantStepDevice(dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=0.3, w_max=1.0, w_min=-1.0)


def _images() -> tuple[torch.Tensor, torch.Tensor, str]:
    path = MNIST / "train-images-idx3-ubyte.gz"
    if path.is_file():
        with gzip.open(path, "rb") as fh:
            images = np.frombuffer(fh.read(), dtype=np.uint8, offset=16).reshape(-1, 784)
        with gzip.open(MNIST / "train-labels-idx1-ubyte.gz", "rb") as fh:
            labels = np.frombuffer(fh.read(), dtype=np.uint8, offset=8)
        return torch.from_numpy(images[:12000] / 255.0).float(), torch.from_numpy(labels[:12000]).long(), "mnist"
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(12000, 784, generator=gen) * (torch.rand(12000, 784, generator=gen) < 0.2)
    return images, torch.randint(0, 10, (12000,), generator=gen), "synthetic"


def layer_batches(n_batches: int) -> tuple[list[list[tuple[torch.Tensor, torch.Tensor]]], str]:
    """``(x, d)`` of every layer for ``n_batches`` mini-batches of a float network in training."""
    images, labels, source = _images()
    torch.manual_seed(0)
    layers = [torch.nn.Linear(a, b) for a, b in zip(SIZES, SIZES[1:])]
    params = [p for layer in layers for p in layer.parameters()]
    opt = torch.optim.SGD(params, lr=LR)
    captured: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in layers]
    warmup = 300
    for step in range(warmup + n_batches):
        sel = slice((step * BATCH) % 11968, (step * BATCH) % 11968 + BATCH)
        h, inputs, outputs = images[sel], [], []
        for k, layer in enumerate(layers):
            inputs.append(h.detach())
            y = layer(h)
            y.retain_grad()
            outputs.append(y)
            h = torch.relu(y) if k < len(layers) - 1 else y
        loss = torch.nn.functional.cross_entropy(h, labels[sel])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= warmup:
            for k in range(len(layers)):
                captured[k].append((inputs[k], outputs[k].grad.detach().clone()))
    return captured, source


def _rate(fn: Callable[[int], object], calls: int, repeats: int) -> float:
    """Median calls per second over ``repeats`` timed blocks of ``calls`` calls."""
    fn(0)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(calls):
            fn(i)
        rates.append(calls / (time.perf_counter() - start))
    return statistics.median(rates)


def _emit(case: str, value: float, baseline_case: str, baseline_value: float, **extra: object) -> None:
    print(json.dumps({"bench": "pulsed_update", "case": case, "value": round(value, 1), "unit": "updates/s",
                      "baseline_case": baseline_case, "baseline_value": round(baseline_value, 1),
                      "ratio": round(value / baseline_value, 4), **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="calls per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks (the median is reported)")
    parser.add_argument("--reference", action="store_true", help="also time aihwkit's pulse order (slow)")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    batches, source = layer_batches(args.calls)
    for k, (n_in, n_out) in enumerate(zip(SIZES, SIZES[1:])):
        shape = f"{n_in}x{n_out}"
        data = batches[k]
        bl_mean = float(np.mean([_mean_bl(x, d) for x, d in data]))
        weight = torch.empty(n_out, n_in).uniform_(-0.1, 0.1)

        def float_update(i: int) -> None:
            x, d = data[i % len(data)]
            weight.addmm_(d.t(), x, alpha=-LR)

        linear = torch.nn.Linear(n_in, n_out)
        opt = torch.optim.SGD(linear.parameters(), lr=LR)

        def linear_step(i: int) -> None:
            x, d = data[i % len(data)]
            y = linear(x)
            opt.zero_grad()
            y.backward(d)
            opt.step()

        base_float = _rate(float_update, args.calls, args.repeats)
        base_linear = _rate(linear_step, args.calls, args.repeats)
        for mode in ("aggregate", "exact"):
            updater = PulsedUpdater(GOKMEN_VLASOV, UpdateConfig(mode=mode), n_out, n_in, RandomSource(1))
            w = updater.clip_(torch.empty(n_out, n_in).uniform_(-0.1, 0.1))

            def pulsed(i: int, updater: PulsedUpdater = updater, w: torch.Tensor = w) -> None:
                x, d = data[i % len(data)]
                updater.update_(w, x, d, LR)

            rate = _rate(pulsed, args.calls, args.repeats)
            extra = {"shape": shape, "inputs": source, "mean_bl": round(bl_mean, 2)}
            _emit(f"pulsed-{mode}/{shape}", rate, "float-update", base_float, **extra)
            _emit(f"pulsed-{mode}/{shape}", rate, "torch-linear-step", base_linear, **extra)
        if args.reference and n_out == 10:
            updater = PulsedUpdater(GOKMEN_VLASOV, UpdateConfig(mode="exact"), n_out, n_in, RandomSource(1))
            w = updater.clip_(torch.zeros(n_out, n_in))
            rng = RandomSource(2)

            def reference(i: int) -> None:
                x, d = data[i % len(data)]
                assert updater.model is not None
                reference_update_(updater.model, updater.state, w, x, d, LR, updater.update_cfg,
                                  updater.granularity, rng)

            rate = _rate(reference, max(args.calls // 10, 1), 1)
            _emit(f"pulsed-reference/{shape}", rate, "float-update", base_float, shape=shape, inputs=source)


def _mean_bl(x: torch.Tensor, d: torch.Tensor) -> float:
    return float(probabilities(x, d, LR, GOKMEN_VLASOV.dw_min, UpdateConfig()).bl.float().mean())


if __name__ == "__main__":
    main()
