"""``dse demo``: train a small analog network on the embedded digits data, once per preset."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train a small analog network on digits and print accuracy per preset")
    p.add_argument("--epochs", type=int, default=5, help="training epochs per preset (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--presets", nargs="*", default=None, help="presets to run (default: all)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from simulator.demo import run_demo  # lazy: torch is only needed here

    run_demo(epochs=args.epochs, seed=args.seed, presets=args.presets)
    return 0
