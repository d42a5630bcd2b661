"""The aggregate pulsed update against the exact (per-sample bit streams) one, in the same run.

Two parts (``--parts``):

``moments``
    For the three layers of the MNIST FCNN (784-256-128-10) and a real mini-batch of inputs and
    errors (a float network after 300 SGD steps, as ``benchmarks/pulsed_update.py`` takes them),
    ``--repeats`` updates of the same weights with the ``gokmen_vlasov`` device (lr 0.05) in
    each mode: the slope of the per-device mean change on the ideal change ``-lr d^T x``, the
    ratio of the summed per-device variances, and the variance of the layer's output change
    ``dW x_b`` over the repeats (averaged over the batch's inputs and the outputs), with the
    value independent devices of the measured per-device variances would give
    (``output_var_independent``). Weights at 0 (``position: "zero"``, away from the bounds) and
    within one step below each device's upper bound (``"upper-bound"``).
``train``
    The FCNN trained on MNIST (ReLU, log-softmax + NLL, lr 0.05, plain SGD) in every case of
    ``--cases`` with the same seeds, data order and device draws; test accuracy on the 10,000
    test images. ``exact`` is the baseline of every line; ``aggregate`` is the mode as it is;
    ``aggregate-independent`` replaces the shared (row and column) count fluctuation by
    independent per-device noise of the same variance (the aggregate mode before it drew the
    shared part); ``*-semi_ideal`` runs the ``semi_ideal`` preset (no cycle-to-cycle noise) in
    that mode. ``--batch`` sets the mini-batch (netting of up and down pulses within a batch).

Prints one JSON object per line. ``moments`` lines: ``{"bench": "pulsed_modes", "case":
"moments/<layer>/<position>", "value": <output_var of aggregate>, "baseline_case": "exact",
"baseline_value": ..., "ratio": ..., ...}``; ``train`` lines: one per case and seed (``value``:
test accuracy, baseline the exact mode's of that seed, ``diff_points`` = 100 x difference), then
one ``summary`` line per case with the mean and standard deviation of the paired differences.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from simulator import AnalogSGD, convert_to_analog, get_preset  # noqa: E402
from simulator.pulsed import PulsedUpdater, aggregate, fused, updater  # noqa: E402
from simulator.rng import RandomSource  # noqa: E402

LR = 0.05
SIZES = ((784, 256), (256, 128), (128, 10))


@functools.cache
def _sibling(name: str) -> object:
    """A module of this folder (benchmarks/simulator.py would shadow the package by name)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# -- part 1: one mini-batch, many repeats --------------------------------------------------------
def moments(repeats: int) -> None:
    batches, source = _sibling("pulsed_update").layer_batches(1)  # type: ignore[attr-defined]
    cfg = get_preset("gokmen_vlasov")
    for k, (n_in, n_out) in enumerate(SIZES):
        x, d = batches[k][0]
        ideal = -LR * d.t() @ x
        for position in ("zero", "upper-bound"):
            stats = {}
            for mode in ("exact", "aggregate"):
                ucfg = cfg.update.with_overrides({"mode": mode, "rng": "torch"})
                upd = PulsedUpdater(cfg.device, ucfg, n_out, n_in, RandomSource(7, mode="torch"))
                w0 = torch.zeros(n_out, n_in)
                if position == "upper-bound":
                    w0 = upd.w_max - 0.5 * upd.state["scale_up"]
                changes = torch.empty(repeats, n_out, n_in)
                for r in range(repeats):
                    w = w0.clone()
                    upd.update_(w, x, d, LR)
                    changes[r] = w - w0
                var = changes.var(0)
                stats[mode] = {
                    "slope": float((changes.mean(0) * ideal).sum() / (ideal * ideal).sum()),
                    "var": float(var.sum()),
                    "out": float(torch.einsum("roi,bi->rbo", changes, x).var(0).mean()),
                    "indep": float((var @ (x * x).t()).mean()),
                }
            e, a = stats["exact"], stats["aggregate"]
            print(json.dumps({
                "bench": "pulsed_modes", "case": f"moments/{n_in}x{n_out}/{position}",
                "value": a["out"], "unit": "output_var", "baseline_case": "exact", "baseline_value": e["out"],
                "ratio": round(a["out"] / e["out"], 4),
                "output_var_independent": {"exact": e["indep"], "aggregate": a["indep"]},
                "mean_slope": {"exact": round(e["slope"], 4), "aggregate": round(a["slope"], 4)},
                "device_var_ratio": round(a["var"] / e["var"], 4),
                "repeats": repeats, "inputs": source}), flush=True)


# -- part 2: training --------------------------------------------------------------------------
class _IndependentNoise:
    """``aggregate_moments`` with the shared count fluctuation replaced by independent per-device
    noise of the same variance: the mean counts (zero normals) and ``q = t - sum_b BL p**2``, the
    whole binomial variance. Symmetric constant steps only (``signed_q`` False: no ``r``)."""

    def __init__(self) -> None:
        self.original = aggregate.aggregate_moments

    def __call__(self, probs, normals, signed_q=True, scratch=None, counter=None, want_silent=False):  # type: ignore[no-untyped-def]
        if signed_q:
            raise SystemExit("aggregate-independent supports symmetric constant steps only")
        zeros = (torch.zeros_like(normals[0]), torch.zeros_like(normals[1]))
        mom = self.original(probs, zeros, signed_q=False, scratch=scratch, counter=counter, want_silent=True)
        # log_silent = sum_b BL (p + p**2 / 2), t = sum_b BL p: t - sum_b BL p**2 = 3 t - 2 log_silent
        return mom._replace(q=torch.mul(mom.t, 3.0).sub_(mom.log_silent, alpha=2.0))

    def __enter__(self) -> None:
        fused.aggregate_moments = updater.aggregate_moments = self  # type: ignore[assignment]

    def __exit__(self, *exc: object) -> None:
        fused.aggregate_moments = updater.aggregate_moments = self.original  # type: ignore[assignment]


def _train(case: str, data: tuple[torch.Tensor, ...], seed: int, batch: int, epochs: int) -> float:
    sim = _sibling("simulator")
    mode, _, preset = case.partition("-")
    preset = "semi_ideal" if preset.endswith("semi_ideal") else "gokmen_vlasov"
    cfg = get_preset(preset).with_overrides({"update.mode": "exact" if mode == "exact" else "aggregate"})
    x_tr, y_tr, x_te, y_te = data
    torch.manual_seed(seed)
    model = convert_to_analog(sim.fcnn(), cfg, seed=seed)  # type: ignore[attr-defined]
    opt = AnalogSGD(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(seed)
    patch = _IndependentNoise() if case.startswith("aggregate-independent") else None
    if patch is not None:
        patch.__enter__()
    try:
        for _ in range(epochs):
            order = torch.randperm(len(y_tr), generator=gen)
            for start in range(0, len(order) - batch + 1, batch):
                idx = order[start: start + batch]
                opt.zero_grad()
                F.nll_loss(model(x_tr[idx]), y_tr[idx]).backward()
                opt.step()
    finally:
        if patch is not None:
            patch.__exit__()
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x_te[i: i + 1000]).argmax(1) == y_te[i: i + 1000]).sum())
                      for i in range(0, len(y_te), 1000))
    return correct / len(y_te)


def train(cases: list[str], seeds: list[int], batch: int, epochs: int, n_train: int, data_dir: Path) -> None:
    data = _sibling("simulator").load_mnist(data_dir)  # type: ignore[attr-defined]
    data = (data[0][:n_train], data[1][:n_train], data[2], data[3])
    diffs: dict[str, list[float]] = {c: [] for c in cases}
    setup = {"batch": batch, "epochs": epochs, "train_samples": n_train, "threads": torch.get_num_threads()}
    for seed in seeds:
        baselines = {"exact-semi_ideal" if c.endswith("semi_ideal") else "exact" for c in cases}
        base = {c: _train(c, data, seed, batch, epochs) for c in sorted(baselines)}
        for case in cases:
            baseline = "exact-semi_ideal" if case.endswith("semi_ideal") else "exact"
            acc = base[case] if case in base else _train(case, data, seed, batch, epochs)
            diffs[case].append(100 * (acc - base[baseline]))
            print(json.dumps({"bench": "pulsed_modes", "case": f"train/{case}", "value": acc,
                              "unit": "test_accuracy", "baseline_case": f"train/{baseline}",
                              "baseline_value": base[baseline], "ratio": round(acc / base[baseline], 4),
                              "diff_points": round(diffs[case][-1], 2), "seed": seed, **setup}), flush=True)
    for case in cases:
        d = diffs[case]
        print(json.dumps({"bench": "pulsed_modes", "case": f"summary/{case}",
                          "value": round(statistics.mean(d), 3), "unit": "accuracy_points_vs_exact",
                          "sd": round(statistics.stdev(d), 3) if len(d) > 1 else None,
                          "seeds": seeds, **setup}), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["moments", "train"], choices=["moments", "train"])
    parser.add_argument("--repeats", type=int, default=200, help="updates per mode in `moments`")
    parser.add_argument("--cases", nargs="+", default=["exact", "aggregate", "aggregate-independent"],
                        help="training cases: exact, aggregate, aggregate-independent, and each with "
                             "-semi_ideal (e.g. aggregate-semi_ideal)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-samples", type=int, default=60000)
    parser.add_argument("--data-dir", type=Path, default=None, help="MNIST folder (default: the simulator benchmark's)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    if "moments" in args.parts:
        moments(args.repeats)
    if "train" in args.parts:
        data_dir = args.data_dir or _sibling("simulator").DEFAULT_DATA  # type: ignore[attr-defined]
        train(args.cases, args.seeds, args.batch, args.epochs, args.train_samples, data_dir)


if __name__ == "__main__":
    main()
