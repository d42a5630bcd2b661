"""The ``dse demo`` job: a small analog network trained on the 8x8 digits, once per preset.

The digits (1,797 images, shipped inside scikit-learn's installation as ``digits.csv.gz``) are
read from that file directly, so the simulator needs no import of scikit-learn and nothing is
downloaded. A seeded 80/20 split, a 64-64-10 ReLU network, SGD with batch 32; the job prints one
line per preset with the test accuracy and the training time.
"""

from __future__ import annotations

import gzip
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simulator.configs.presets import get_preset, preset_names
from simulator.errors import SimulatorError
from simulator.layers import convert_to_analog, n_tiles
from simulator.optim import AnalogSGD

__all__ = ["load_digits", "run_demo"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 digits as ``(images (1797, 64) in [0, 1], labels (1797,))``."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise SimulatorError("the digits data ships with scikit-learn, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise SimulatorError(f"digits data not found at {path}")
    with gzip.open(path, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    return data[:, :-1] / 16.0, data[:, -1].astype(np.int64)


def _split(seed: int) -> tuple[torch.Tensor, ...]:
    x, y = load_digits()
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.8 * len(y))
    tr, te = order[:cut], order[cut:]
    return (torch.from_numpy(x[tr]), torch.from_numpy(y[tr]), torch.from_numpy(x[te]),
            torch.from_numpy(y[te]))


def train_preset(preset: str, *, epochs: int = 5, seed: int = 0, lr: float = 0.1,
                 batch_size: int = 32) -> dict[str, float | int | str]:
    """Train and test the demo network on one preset; returns its metrics."""
    x_tr, y_tr, x_te, y_te = _split(seed)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    model = convert_to_analog(net, get_preset(preset), seed=seed)
    opt = AnalogSGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=gen).split(batch_size):
            opt.zero_grad()
            F.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
    train_time_s = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x_te).argmax(1) == y_te).float().mean())
    return {"preset": preset, "accuracy": accuracy, "train_time_s": train_time_s,
            "n_tiles": n_tiles(model), "epochs": epochs}


def run_demo(epochs: int = 5, seed: int = 0, presets: list[str] | None = None) -> list[dict]:
    """Train the demo network with each preset (all by default) and print the results."""
    names = list(presets) if presets else preset_names()
    for name in names:
        get_preset(name)  # fail before training anything if a name is wrong
    results = []
    print(f"{'preset':<15} {'accuracy':>8} {'train_time_s':>12}")
    for name in names:
        result = train_preset(name, epochs=epochs, seed=seed)
        results.append(result)
        print(f"{name:<15} {result['accuracy']:>8.3f} {result['train_time_s']:>12.2f}", flush=True)
    return results
