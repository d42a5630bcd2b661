"""Shared plumbing of the reproduction scripts: arguments, trial runs, JSON and PNG output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-dir", default=os.environ.get("DSE_DATA_DIR") or str(ROOT.parent / "shared" / "datasets"),
                   help="folder with mnist/ (default: $DSE_DATA_DIR, else ../shared/datasets)")
    p.add_argument("--out", default=str(RESULTS), help=f"output folder for the JSON and PNG (default {RESULTS})")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per configuration (mean and std reported)")
    p.add_argument("--quick", action="store_true", help="a tiny scale that only checks the script runs")
    return p


def parse(p: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the arguments and set torch's threads (one per process is fastest on a busy machine)."""
    args = p.parse_args()
    import torch

    torch.set_num_threads(max(1, args.threads))
    return args


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "platform": platform.platform()}


def write(out: str, name: str, payload: dict[str, Any], fig: Any) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    fig.savefig(folder / f"{name}.png", dpi=120)
    log(f"wrote {folder / name}.json and .png")


def mean_std(values: list[float]) -> tuple[float, float]:
    import statistics

    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
