"""Micro-benchmark of ``PulsedUpdater.update_`` for the MNIST FCNN layer shapes.

For 784->256, 256->128 and 128->10 with a mini-batch of 32, it times the exact and the aggregate
pulsed update (the ``gokmen_vlasov`` device: ConstantStep, dw_min 0.0016, dtod 0.3, std 0.3,
bounds +-1; BL 31 with update and BL management; lr 0.05) against two baselines measured in the
same run, interleaved block by block with the cases (machines are shared): the plain float update
``weight.addmm_(d.T, x, alpha=-lr)`` and a plain torch ``nn.Linear`` forward + backward + SGD step
of the same shape. ``pulsed-aggregate-stacked`` is the aggregate update as a layer runs it: the
layer on tiles of at most 512 inputs (784 inputs: two tiles of 392), all tiles in one
:class:`~simulator.pulsed.stacked.StackedUpdater` call. With ``--reference`` it also times aihwkit's pulse-by-pulse order
(:mod:`simulator.pulsed.reference`) on the smallest layer.

The inputs ``x`` and errors ``d`` are the real ones of a float 784-256-128-10 ReLU network after
300 SGD steps on MNIST (``../shared/datasets/mnist``), or on random sparse images if that folder
is absent (the output says which), so the per-sample pulse-train lengths are those of training.

Prints one JSON object per line: ``{"bench": "pulsed_update", "case": ..., "value": ...,
"unit": "updates/s", "baseline_case": ..., "baseline_value": ..., "ratio": ...}`` (``ratio`` =
value / baseline_value, the median over the interleaved blocks).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import importlib
import itertools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("DSE_SHARED_DATASETS", ROOT.parent / "shared" / "datasets")) / "mnist"
SIZES = (784, 256, 128, 10)
BATCH = 32
LR = 0.05


def _simulator() -> dict[str, object]:
    """The simulator's classes, imported from the repository root.

    Run as a script, this file's folder is first on ``sys.path`` and ``benchmarks/simulator.py``
    would shadow the simulator package.
    """
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(ROOT))
    configs = importlib.import_module("simulator.configs")
    return {
        "ConstantStepDevice": configs.ConstantStepDevice,
        "UpdateConfig": configs.UpdateConfig,
        "PulsedUpdater": importlib.import_module("simulator.pulsed").PulsedUpdater,
        "StackedUpdater": importlib.import_module("simulator.pulsed.stacked").StackedUpdater,
        "split_sizes": importlib.import_module("simulator.mapping").split_sizes,
        "probabilities": importlib.import_module("simulator.pulsed.management").probabilities,
        "reference_update_": importlib.import_module("simulator.pulsed.reference").reference_update_,
        "RandomSource": importlib.import_module("simulator.rng").RandomSource,
    }


def _images() -> tuple[torch.Tensor, torch.Tensor, str]:
    path = MNIST / "train-images-idx3-ubyte.gz"
    if path.is_file():
        with gzip.open(path, "rb") as fh:
            images = np.frombuffer(fh.read(), dtype=np.uint8, offset=16).reshape(-1, 784)[:12000].copy()
        with gzip.open(MNIST / "train-labels-idx1-ubyte.gz", "rb") as fh:
            labels = np.frombuffer(fh.read(), dtype=np.uint8, offset=8)[:12000].copy()
        return torch.from_numpy(images).float() / 255.0, torch.from_numpy(labels).long(), "mnist"
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(12000, 784, generator=gen) * (torch.rand(12000, 784, generator=gen) < 0.2)
    return images, torch.randint(0, 10, (12000,), generator=gen), "synthetic"


def layer_batches(n_batches: int) -> tuple[list[list[tuple[torch.Tensor, torch.Tensor]]], str]:
    """``(x, d)`` of every layer for ``n_batches`` mini-batches of a float network in training."""
    images, labels, source = _images()
    torch.manual_seed(0)
    layers = [torch.nn.Linear(a, b) for a, b in itertools.pairwise(SIZES)]
    opt = torch.optim.SGD([p for layer in layers for p in layer.parameters()], lr=LR)
    captured: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in layers]
    warmup = 300
    for step in range(warmup + n_batches):
        start = (step * BATCH) % (len(labels) - BATCH)
        h, inputs, outputs = images[start:start + BATCH], [], []
        for k, layer in enumerate(layers):
            inputs.append(h.detach())
            y = layer(h)
            y.retain_grad()
            outputs.append(y)
            h = torch.relu(y) if k < len(layers) - 1 else y
        loss = torch.nn.functional.cross_entropy(h, labels[start:start + BATCH])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= warmup:
            for k in range(len(layers)):
                captured[k].append((inputs[k], outputs[k].grad.detach().clone()))
    return captured, source


def interleaved_rates(fns: dict[str, Callable[[int], object]], calls: int, rounds: int) -> dict[str, list[float]]:
    """Calls per second of each function, one block of ``calls`` per function in every round."""
    for fn in fns.values():
        fn(0)
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for i in range(calls):
                fn(i)
            rates[name].append(calls / (time.perf_counter() - start))
    return rates


def _emit(case: str, rates: list[float], baseline_case: str, baseline: list[float], **extra: object) -> None:
    ratio = statistics.median(a / b for a, b in zip(rates, baseline, strict=True))
    print(json.dumps({"bench": "pulsed_update", "case": case, "value": round(statistics.median(rates), 1),
                      "unit": "updates/s", "baseline_case": baseline_case,
                      "baseline_value": round(statistics.median(baseline), 1), "ratio": round(ratio, 4),
                      **extra}), flush=True)


def _float_update(data: list, weight: torch.Tensor, i: int) -> None:
    x, d = data[i % len(data)]
    weight.addmm_(d.t(), x, alpha=-LR)


def _linear_step(data: list, linear: torch.nn.Linear, opt: torch.optim.Optimizer, i: int) -> None:
    x, d = data[i % len(data)]
    y = linear(x)
    opt.zero_grad()
    y.backward(d)
    opt.step()


def _pulsed(data: list, updater: object, weight: torch.Tensor, i: int) -> None:
    x, d = data[i % len(data)]
    updater.update_(weight, x, d, LR)  # type: ignore[attr-defined]


def _stacked(data: list, updater: object, weight: torch.Tensor, tiles: int, i: int) -> None:
    x, d = data[i % len(data)]
    n = x.shape[0]
    rows = x.reshape(n, tiles, -1).transpose(0, 1)  # each tile's inputs, as a TileArray hands them
    updater.update_(weight, rows, d.unsqueeze(0).expand(tiles, *d.shape), LR)  # type: ignore[attr-defined]


def _reference(sim: dict, data: list, updater: object, weight: torch.Tensor, rng: object, i: int) -> None:
    x, d = data[i % len(data)]
    sim["reference_update_"](updater.model, updater.state, weight, x, d, LR,  # type: ignore[attr-defined]
                             updater.update_cfg, updater.granularity, rng)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per timed block")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (medians are reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--reference", action="store_true", help="also time aihwkit's pulse order (slow)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sim = _simulator()
    torch.set_flush_denormal(True)
    device = sim["ConstantStepDevice"](dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=0.3, w_max=1.0, w_min=-1.0)
    batches, source = layer_batches(args.calls)
    for k, (n_in, n_out) in enumerate(itertools.pairwise(SIZES)):
        shape = f"{n_in}x{n_out}"
        data = batches[k]
        bl = [float(sim["probabilities"](x, d, LR, device.dw_min, sim["UpdateConfig"]()).bl.mean()) for x, d in data]
        linear = torch.nn.Linear(n_in, n_out)
        fns: dict[str, Callable[[int], object]] = {
            "float-update": functools.partial(_float_update, data, torch.empty(n_out, n_in).uniform_(-0.1, 0.1)),
            "torch-linear-step": functools.partial(_linear_step, data, linear,
                                                   torch.optim.SGD(linear.parameters(), lr=LR)),
        }
        for mode in ("aggregate", "exact"):
            upd = sim["PulsedUpdater"](device, sim["UpdateConfig"](mode=mode), n_out, n_in, sim["RandomSource"](1))
            fns[f"pulsed-{mode}"] = functools.partial(_pulsed, data, upd, upd.clip_(torch.zeros(n_out, n_in)))
        # the layer on tiles of at most 512 inputs (the presets' mapping), all tiles in one call
        sizes = sim["split_sizes"](n_in, 512)
        tiles = [sim["PulsedUpdater"](device, sim["UpdateConfig"](), n_out, sizes[0], sim["RandomSource"](1 + t))
                 for t in range(len(sizes))]
        stacked_w = torch.stack([u.clip_(torch.zeros(n_out, sizes[0])) for u in tiles])
        fns["pulsed-aggregate-stacked"] = functools.partial(_stacked, data, sim["StackedUpdater"](tiles), stacked_w,
                                                            len(sizes))
        rates = interleaved_rates(fns, args.calls, args.rounds)
        extra = {"shape": shape, "inputs": source, "mean_bl": round(float(np.mean(bl)), 2),
                 "threads": torch.get_num_threads()}
        _emit(f"pulsed-aggregate-stacked/{shape}", rates["pulsed-aggregate-stacked"], "torch-linear-step",
              rates["torch-linear-step"], tiles=len(sizes), **extra)
        for mode in ("aggregate", "exact"):
            for base in ("float-update", "torch-linear-step"):
                _emit(f"pulsed-{mode}/{shape}", rates[f"pulsed-{mode}"], base, rates[base], **extra)
        if args.reference and n_out == 10:
            upd = sim["PulsedUpdater"](device, sim["UpdateConfig"](mode="exact"), n_out, n_in, sim["RandomSource"](1))
            ref = {"float-update": fns["float-update"],
                   "pulsed-reference": functools.partial(_reference, sim, data, upd, upd.clip_(torch.zeros(n_out, n_in)),
                                                         sim["RandomSource"](2))}
            ref_rates = interleaved_rates(ref, max(args.calls // 10, 1), 3)
            _emit(f"pulsed-reference/{shape}", ref_rates["pulsed-reference"], "float-update",
                  ref_rates["float-update"], **extra)


if __name__ == "__main__":
    main()
