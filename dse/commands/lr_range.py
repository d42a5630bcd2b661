"""``dse lr-range CONFIG.yaml``: the learning-rate range test (paper 002 fig. 3) and the one-cycle
range it suggests."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lr-range", help="learning-rate range test: sweep the LR during training and "
                                        "suggest a one-cycle range")
    p.add_argument("config", help="trial config file (its schedule and epochs are replaced by the sweep)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a value by dotted path (VALUE parsed as YAML); repeatable")
    p.add_argument("--lr-min", type=float, default=1e-3, help="first learning rate (default 0.001)")
    p.add_argument("--lr-max", type=float, default=1.0, help="last learning rate (default 1.0)")
    p.add_argument("--epochs", type=int, default=2, help="epochs of the sweep (default 2)")
    p.add_argument("--points", type=int, default=20, help="validation measurements along the sweep (default 20)")
    p.add_argument("--scale", choices=("linear", "log"), default="linear", help="how the LR grows (default linear)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--json", action="store_true", help="print the curve and suggestion as JSON")
    p.add_argument("--plot", default=None, metavar="PNG", help="also write the curve as a PNG plot")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from dse.commands.trial import load_config
    from dse.trial.lr_range import lr_range_test

    config = load_config(args.config, args.set)

    def progress(lr: float, acc: float, loss: float) -> None:
        print(f"lr {lr:<10.4g} val {acc:.4f}  loss {loss:.4f}", file=sys.stderr)

    result = lr_range_test(config, lr_min=args.lr_min, lr_max=args.lr_max, epochs=args.epochs,
                           points=args.points, scale=args.scale, num_threads=args.threads,
                           progress=None if args.json else progress)
    if args.plot:
        _plot(result, args.plot)
    if args.json:
        print(json.dumps(result.as_dict()))
        return 0
    if result.diverged_at is not None:
        print(f"diverged at lr {result.diverged_at:.4g}")
    if not result.lrs:
        print("no measurement before divergence: lower --lr-min / --lr-max")
        return 1
    print("suggested one-cycle range (peak = training.lr):")
    print(f"  training.lr: {result.suggested_lr:.4g}")
    print(f"  training.schedule: {{type: one_cycle, div_factor: {result.suggested_div_factor:.3g}}}"
          f"   # starts at {result.suggested_start:.4g}")
    return 0


def _plot(result, path: str) -> None:
    from dse.extras import require

    matplotlib = require("matplotlib", "dse lr-range --plot")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.accuracies, marker="o")
    if result.lrs:
        ax.axvspan(result.suggested_start, result.suggested_lr, alpha=0.2, label="suggested range")
        ax.legend()
    ax.set_xlabel("learning rate")
    ax.set_ylabel("validation accuracy")
    ax.set_title("learning-rate range test")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
