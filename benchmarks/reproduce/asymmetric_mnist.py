"""AT-4 of the asymmetric-devices issue: ReRAM-ES presets on the MNIST FCNN, plain in-memory SGD vs
Tiki-Taka v1, TTv2, c-TTv2 and AGAD (aihwkit's ``ReRamESPreset``, ``TikiTakaReRamESPreset``,
``TTv2ReRamESPreset``, ``ChoppedTTv2ReRamESPreset``, ``AGADReRamESPreset``).

Setup (the specification's AT-4): 784-256-128-10 sigmoid network, log-softmax + NLL loss, batch 10,
lr 0.05, ``AnalogSGD``, 10 epochs, 3 seeds; test accuracy after every epoch, mean and std over the
seeds. The issue's expectation: after 10 epochs c-TTv2 and AGAD each at least 2 points above SGD
and at least 95%, and AGAD >= c-TTv2 >= TTv2 > SGD at every epoch within the seed spread.
Stochastic Hamiltonian Descent is not part of it (not built: its update rule could not be read).

Full scale is 5 x 3 x 10 epochs of 60,000 images: many hours on 2 CPU cores. The flags choose a
reduced scale (``--train`` images per epoch, ``--epochs``, ``--seeds``, ``--algorithms``); the
JSON records the scale that ran.

    nice .venv/bin/python benchmarks/reproduce/asymmetric_mnist.py --train 2000 --epochs 3 --seeds 1

``--fused`` runs the pulsed updates compiled (``update.fused``, the same computation up to
rounding, see ``simulator.pulsed.fused``). Seeds can be split over processes (``--first-seed K
--seeds 1`` each, ``--out`` a folder per process) and pooled afterwards with ``--merge
DIR_0/asymmetric_mnist.json DIR_1/asymmetric_mnist.json ...``. Either way the per-epoch table
(mean ± std over the seeds, in percent) is printed as Markdown.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import log, machine, mean_std, parse, parser, pyplot, write
from torch import nn

from simulator import AnalogSGD, convert_to_analog, get_preset

ALGORITHMS = {"sgd": "reram_es", "tiki_taka": "tiki_taka_reram_es", "ttv2": "ttv2_reram_es",
              "c_ttv2": "c_ttv2_reram_es", "agad": "agad_reram_es"}
BATCH, LR = 10, 0.05


def _idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(folder: Path) -> tuple[torch.Tensor, ...]:
    def part(name: str) -> np.ndarray:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.exists():
                return _idx(candidate)
        raise SystemExit(f"MNIST file {name} not found in {folder}")

    x_tr = torch.tensor(part("train-images-idx3-ubyte"), dtype=torch.float32).reshape(-1, 784) / 255.0
    x_te = torch.tensor(part("t10k-images-idx3-ubyte"), dtype=torch.float32).reshape(-1, 784) / 255.0
    y_tr = torch.tensor(part("train-labels-idx1-ubyte"), dtype=torch.long)
    y_te = torch.tensor(part("t10k-labels-idx1-ubyte"), dtype=torch.long)
    return x_tr, y_tr, x_te, y_te


def fcnn() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 256), nn.Sigmoid(), nn.Linear(256, 128), nn.Sigmoid(),
                         nn.Linear(128, 10), nn.LogSoftmax(dim=1))


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    hits = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(y), 1000))
    model.train()
    return hits / len(y)


def train(preset: str, data: tuple[torch.Tensor, ...], epochs: int, seed: int, fused: bool = False) -> list[float]:
    x_tr, y_tr, x_te, y_te = data
    torch.manual_seed(seed)
    cfg = get_preset(preset)
    if fused:
        cfg = cfg.with_overrides({"update.fused": True})
    model = convert_to_analog(fcnn(), cfg, seed=seed)
    opt = AnalogSGD(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(epochs):
        order = torch.randperm(len(y_tr), generator=gen)
        for i in range(0, len(order) - BATCH + 1, BATCH):
            idx = order[i:i + BATCH]
            opt.zero_grad()
            F.nll_loss(model(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
        curve.append(accuracy(model, x_te, y_te))
    return curve


def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--train", type=int, default=60000, help="training images per epoch (a fixed subset of 60,000)")
    p.add_argument("--test", type=int, default=10000, help="test images (of 10,000)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=list(ALGORITHMS))
    p.add_argument("--fused", action="store_true",
                   help="compile each pulsed update into one kernel (update.fused: same results up to "
                        "rounding, 1.5-2x faster after a few seconds of compilation)")
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds run are first-seed .. first-seed + seeds - 1 (to split the seeds over processes)")
    p.set_defaults(seeds=3)
    p.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                   help="combine result files of runs split over processes (same scale, other seeds) "
                        "into one, instead of training")
    args = parse(p)
    start = time.time()
    if args.merge:
        scale, fused, rows = _merge([Path(f) for f in args.merge])
    else:
        if args.quick:
            args.train, args.test, args.epochs, args.seeds = 200, 200, 1, 1
        scale = {"train": args.train, "test": args.test, "epochs": args.epochs}
        fused = args.fused
        rows = _run(args)
    _write(args.out, scale, fused, rows, time.time() - start)


def _run(args: argparse.Namespace) -> list[dict]:
    x_tr, y_tr, x_te, y_te = load_mnist(Path(args.data_dir) / "mnist")
    subset = torch.randperm(len(y_tr), generator=torch.Generator().manual_seed(1234))[: args.train]
    data = (x_tr[subset], y_tr[subset], x_te[: args.test], y_te[: args.test])
    rows = []
    for name in args.algorithms:
        curves, seeds = [], list(range(args.first_seed, args.first_seed + args.seeds))
        for seed in seeds:
            t0 = time.time()
            curves.append(train(ALGORITHMS[name], data, args.epochs, seed, args.fused))
            log(f"{name:<9} seed {seed}: {' '.join(f'{a:.4f}' for a in curves[-1])} ({time.time() - t0:.0f} s)")
        rows.append(_row(name, seeds, curves))
    return rows


def _row(name: str, seeds: list[int], curves: list[list[float]]) -> dict:
    per_epoch = [mean_std([c[e] for c in curves]) for e in range(len(curves[0]))]
    return {"algorithm": name, "preset": ALGORITHMS[name], "seeds": seeds,
            "test_accuracy_per_epoch": [m for m, _ in per_epoch],
            "test_accuracy_std_per_epoch": [s for _, s in per_epoch], "curves": curves}


def _merge(files: list[Path]) -> tuple[dict, bool, list[dict]]:
    """The rows of several result files, the curves of each algorithm pooled over their seeds."""
    scale: dict | None = None
    fused: set[bool] = set()
    pooled: dict[str, dict[int, list[float]]] = {}
    for path in files:
        data = json.loads(path.read_text())
        here = {k: data["scale"][k] for k in ("train", "test", "epochs")}
        if scale is not None and here != scale:
            raise SystemExit(f"{path}: scale {here} differs from {scale} of the files before it")
        scale = here
        fused.add(bool(data.get("fused_update", False)))
        first = int(data["scale"].get("first_seed", 0))
        for row in data["rows"]:
            seeds = row.get("seeds") or list(range(first, first + len(row["curves"])))
            runs = pooled.setdefault(row["algorithm"], {})
            for seed, curve in zip(seeds, row["curves"]):
                if seed in runs:
                    raise SystemExit(f"{path}: {row['algorithm']} seed {seed} is in an earlier file too")
                runs[seed] = curve
    if scale is None:
        raise SystemExit("--merge needs at least one result file")
    if len(fused) > 1:
        raise SystemExit("--merge: some files ran the fused update and some the eager one")
    order = [a for a in ALGORITHMS if a in pooled]
    rows = [_row(a, sorted(pooled[a]), [pooled[a][s] for s in sorted(pooled[a])]) for a in order]
    return scale, fused.pop(), rows


def _write(out: str, scale: dict, fused: bool, rows: list[dict], elapsed_s: float) -> None:
    epochs = scale["epochs"]
    seeds = max(len(row["seeds"]) for row in rows)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for row in rows:
        ax.errorbar(range(1, epochs + 1), row["test_accuracy_per_epoch"], yerr=row["test_accuracy_std_per_epoch"],
                    marker="o", markersize=3, capsize=2, label=row["algorithm"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"ReRAM-ES, MNIST FCNN ({scale['train']} training images, {seeds} seed(s))")
    ax.legend(fontsize=8)
    fig.tight_layout()
    write(out, "asymmetric_mnist", {
        "experiment": "AT-4: ReRAM-ES presets, MNIST 784-256-128-10 sigmoid, batch 10, lr 0.05",
        "scale": {**scale, "seeds": seeds}, "fused_update": fused,
        "rows": rows, "elapsed_s": elapsed_s, "machine": machine(),
    }, fig)
    head = "| algorithm (preset) | seeds | " + " | ".join(f"epoch {e + 1}" for e in range(epochs)) + " |"
    lines = [head, "| --- " * (epochs + 2) + "|"]
    for row in rows:
        cells = [f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in
                 zip(row["test_accuracy_per_epoch"], row["test_accuracy_std_per_epoch"])]
        lines.append(f"| {row['algorithm']} (`{row['preset']}`) | {len(row['seeds'])} | " + " | ".join(cells) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
