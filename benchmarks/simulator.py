"""End-to-end training speed of the simulator on the MNIST FCNN, as ratios to plain PyTorch.

Workload (the simulator issue's): a 784-256-128-10 ReLU network, log-softmax + NLL loss, batch
32, lr 0.05, plain SGD, one epoch (60,000 samples) per ``--epochs``; test accuracy on the 10,000
test images afterwards. Cases are ``torch-digital`` (the baseline) or ``<mode>/<preset>`` with
mode ``pulsed-aggregate`` / ``pulsed-exact`` (the preset with ``update.mode`` set), ``hwa`` (the
preset with a floating-point update) or ``float`` (the preset as it is). ``hwa/pcm_inference`` is
the configuration of the issue's aihwkit figure (aihwkit's default inference config: noisy,
quantized forward, floating-point update); ``hwa/hwa_standard`` adds PCM read noise, weight
scaling and training weight noise. ``pulsed-aggregate/c_ttv2_reram_es`` and
``pulsed-aggregate/agad_reram_es`` are the compound devices of the asymmetric-devices issue (bar
1/8: a third MVM per sample, the transfer read, plus the transfer bookkeeping). Mode
``pulsed-fused`` is the aggregate mode with ``update.fused`` (the update compiled into one kernel,
:mod:`simulator.pulsed.fused`); its compilation runs in the untimed warm-up steps and is reported
as ``warmup_s``.

Machines here are shared, so every analog case is timed against a plain-torch model trained
*interleaved* with it: after every block of analog steps the same number of plain steps run, and
the ratio compares the two over the same wall-clock periods. The torch-digital row times plain
torch on its own.

Prints one JSON object per line (``bench``, ``case``, ``value`` in samples/s, ``baseline_case``,
``baseline_value``, ``ratio``, ``test_accuracy``, ``epochs`` and, where the issue sets one, ``bar``
and ``meets_bar``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# simulator package: import from the repository root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simulator import AnalogSGD, convert_to_analog, get_preset

DEFAULT_DATA = Path(os.environ.get("DSE_SHARED_DATASETS", ROOT.parent / "shared" / "datasets")) / "mnist"
BATCH, LR, BLOCK = 32, 0.05, 50
DEFAULT_CASES = ["torch-digital", "float/ideal", "pulsed-aggregate/gokmen_vlasov",
                 "pulsed-exact/gokmen_vlasov", "hwa/pcm_inference", "hwa/hwa_standard",
                 "pulsed-aggregate/c_ttv2_reram_es", "pulsed-aggregate/agad_reram_es",
                 "pulsed-fused/c_ttv2_reram_es", "pulsed-fused/agad_reram_es"]
BARS = {"pulsed-aggregate": 1 / 3, "pulsed-fused": 1 / 3, "pulsed-exact": 1 / 12, "hwa": 1 / 2}
CASE_BARS = {f"{mode}/{preset}": 1 / 8 for mode in ("pulsed-aggregate", "pulsed-fused")
             for preset in ("c_ttv2_reram_es", "agad_reram_es")}
"""Bars of single cases (the compound devices: three MVMs per sample and the transfers)."""


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip-compressed or not) as an array of its declared shape."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    else:
        raw = path.read_bytes()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(data_dir: Path) -> tuple[torch.Tensor, ...]:
    """Train / test images (flattened, in [0, 1]) and labels."""
    def part(name: str) -> Path:
        for candidate in (data_dir / f"{name}.gz", data_dir / name):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{name}(.gz) not found in {data_dir}")

    out = []
    for prefix in ("train", "t10k"):
        images = read_idx(part(f"{prefix}-images-idx3-ubyte")).reshape(-1, 784)
        labels = read_idx(part(f"{prefix}-labels-idx1-ubyte"))
        out += [torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64))]
    return tuple(out)


def fcnn() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10), nn.LogSoftmax(dim=1))


class Trainer:
    """One model, its optimizer and its own stream of shuffled mini-batches."""

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                 y: torch.Tensor, seed: int) -> None:
        self.model, self.opt, self.x, self.y = model, opt, x, y
        self.gen = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long)
        self.pos = 0
        self.seconds = 0.0
        self.samples = 0

    def steps(self, n: int) -> None:
        start = time.perf_counter()
        for _ in range(n):
            if self.pos + BATCH > len(self.order):
                self.order, self.pos = torch.randperm(len(self.y), generator=self.gen), 0
            idx = self.order[self.pos: self.pos + BATCH]
            self.pos += BATCH
            self.opt.zero_grad()
            F.nll_loss(self.model(self.x[idx]), self.y[idx]).backward()
            self.opt.step()
        self.seconds += time.perf_counter() - start
        self.samples += n * BATCH

    @property
    def rate(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.model.eval()
        correct = sum(int((self.model(x[i: i + 1000]).argmax(1) == y[i: i + 1000]).sum())
                      for i in range(0, len(y), 1000))
        self.model.train()
        return correct / len(y)


def _torch_trainer(x: torch.Tensor, y: torch.Tensor, seed: int) -> Trainer:
    torch.manual_seed(seed)
    model = fcnn()
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=LR), x, y, seed)


def _analog_trainer(case: str, x: torch.Tensor, y: torch.Tensor, seed: int) -> Trainer:
    mode, _, preset = case.partition("/")
    cfg = get_preset(preset)
    if mode == "pulsed-aggregate":
        cfg = cfg.with_overrides({"update.mode": "aggregate"})
    elif mode == "pulsed-fused":
        cfg = cfg.with_overrides({"update.mode": "aggregate", "update.fused": True})
    elif mode == "pulsed-exact":
        cfg = cfg.with_overrides({"update.mode": "exact"})
    elif mode == "hwa":
        cfg = cfg.with_overrides({"update.mode": "none"})
    elif mode != "float":
        raise SystemExit(f"unknown case {case!r}; accepted: torch-digital or "
                         "<pulsed-aggregate|pulsed-fused|pulsed-exact|hwa|float>/<preset>")
    torch.manual_seed(seed)
    model = convert_to_analog(fcnn(), cfg, seed=seed)
    return Trainer(model, AnalogSGD(model.parameters(), lr=LR), x, y, seed)


def run_case(case: str, data: tuple[torch.Tensor, ...], epochs: int, n_train: int, seed: int) -> dict:
    x_tr, y_tr, x_te, y_te = data
    x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    total = epochs * (len(y_tr) // BATCH)
    base = _torch_trainer(x_tr, y_tr, seed)
    if case == "torch-digital":
        base.steps(total)
        return {"case": case, "value": base.rate, "baseline_value": base.rate,
                "test_accuracy": base.accuracy(x_te, y_te)}
    trainer = _analog_trainer(case, x_tr, y_tr, seed)
    warmup = min(5, total)  # first steps (allocations, pools, compilation) are trained but not timed
    started = time.perf_counter()
    trainer.steps(warmup)
    warmup_s = time.perf_counter() - started
    base.steps(warmup)
    trainer.seconds = base.seconds = 0.0
    trainer.samples = base.samples = 0
    done = warmup
    while done < total:
        n = min(BLOCK, total - done)
        trainer.steps(n)
        base.steps(n)
        done += n
    return {"case": case, "value": trainer.rate, "baseline_value": base.rate,
            "test_accuracy": trainer.accuracy(x_te, y_te), "warmup_s": warmup_s}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1, help="training epochs per case (default 1)")
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES,
                        help=f"cases to run (default: {' '.join(DEFAULT_CASES)})")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA,
                        help=f"folder with the MNIST IDX files (default {DEFAULT_DATA})")
    parser.add_argument("--train-samples", type=int, default=60000,
                        help="training samples per epoch (default: all 60,000)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_mnist(args.data_dir)
    for case in args.cases:
        result = run_case(case, data, args.epochs, args.train_samples, args.seed)
        mode = case.partition("/")[0]
        line = {"bench": "simulator", "case": case, "value": round(result["value"], 1),
                "unit": "samples/s", "baseline_case": "torch-digital",
                "baseline_value": round(result["baseline_value"], 1),
                "ratio": round(result["value"] / result["baseline_value"], 4),
                "test_accuracy": round(result["test_accuracy"], 4), "epochs": args.epochs,
                "train_samples": args.train_samples, "threads": torch.get_num_threads()}
        if "warmup_s" in result:
            line["warmup_s"] = round(result["warmup_s"], 2)
        bar = CASE_BARS.get(case, BARS.get(mode))
        if bar is not None:
            line["bar"] = round(bar, 4)
            line["meets_bar"] = line["ratio"] >= bar
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
