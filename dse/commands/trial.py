"""``dse trial CONFIG.yaml``: run one trial, printing per-epoch progress, the final metrics and
the design's cost breakdown (with the activity measured on the test set)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trial", help="train and evaluate one trial config (YAML or JSON) and print its metrics")
    p.add_argument("config", help="trial config file (see docs/trials.md)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a value by dotted path, e.g. --set training.epochs=3 "
                        "--set hardware.device.dw_min=0.002 (VALUE is parsed as YAML); repeatable")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("--data-dir", default=None, help="override dataset.data_dir")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the trial")
    p.add_argument("--model-store", default=None, metavar="DIR",
                   help="load the trained model from DIR when its training key is stored there (only "
                        "evaluate), else train and keep it there (docs/trials.md)")
    p.add_argument("--json", action="store_true",
                   help="print the final metrics as one JSON object (the cost breakdown under 'details')")
    p.add_argument("--validate", action="store_true",
                   help="only validate the config and print its normalized form")
    p.set_defaults(func=_run)


def load_config(path: str, sets: list[str], seed: int | None = None, data_dir: str | None = None) -> dict[str, Any]:
    """A trial config from a YAML / JSON file with ``PATH=VALUE`` overrides applied."""
    import yaml

    from dse.errors import SpecError
    from dse.trial.config import set_path

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"trial config {path!r} not found")
    config = yaml.safe_load(file.read_text()) or {}
    if not isinstance(config, dict):
        raise SpecError("", f"{path}: a trial config must be a mapping, got {type(config).__name__}")
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(item, "--set takes PATH=VALUE, e.g. training.lr=0.1")
        config = set_path(config, key.strip(), yaml.safe_load(raw))
    if seed is not None:
        config = set_path(config, "seed", seed)
    if data_dir is not None:
        config = set_path(config, "dataset.data_dir", data_dir)
    return config


def _run(args: argparse.Namespace) -> int:
    from dse.trial.config import validate_trial_config

    config = load_config(args.config, args.set, args.seed, args.data_dir)
    normalized = validate_trial_config(config)
    if args.validate:
        print(json.dumps(normalized, indent=2))
        return 0
    from dse.trial.run import run_trial  # lazy: loads torch

    t = normalized["training"]
    print(f"trial: {normalized['model']['name']} on {normalized['dataset']['name']}, "
          f"hardware {normalized['hardware']['preset']}, algorithm {normalized['algorithm']['type']}, "
          f"{t['epochs']} epochs, seed {normalized['seed']}", file=sys.stderr)

    def progress(m: dict[str, Any]) -> None:
        print(f"epoch {m['epoch']:>3}  loss {m['train_loss']:.4f}  train {m['train_accuracy']:.4f}  "
              f"val {m['accuracy']:.4f}  lr {m['lr']:.4g}  {m['epoch_time_s']:.2f}s", file=sys.stderr)

    from dse.results import split_details

    models = None
    if args.model_store:
        from dse.models import ModelStore, StoreSource

        models = StoreSource(ModelStore(args.model_store), {"study": "", "trial_id": "dse-trial", "repeat": 0})
    metrics, details = split_details(run_trial(normalized, progress, num_threads=args.threads, models=models))
    training = (details or {}).get("training")
    if training:
        print(f"training {training['training_key']}: "
              + ("loaded from the store" if training["reused_training"] else "trained")
              + (f" ({args.model_store})" if args.model_store else ""), file=sys.stderr)
    clipped = metrics.get("clipped_update_fraction")
    if clipped:
        print(f"warning: {clipped:.2%} of the pulsed update vectors saturated the pulse train "
              "(lr max|x| max|d| > update.desired_bl dw_min) and were capped at the bit length; "
              "lower training.lr or raise update.desired_bl (docs/simulator.md)", file=sys.stderr)
    if args.json:
        print(json.dumps({**metrics, "details": details}, sort_keys=True))
        return 0
    width = max(len(k) for k in metrics)
    for key in sorted(metrics):
        value = metrics[key]
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {text}")
    if details and details.get("cost"):
        from dse.commands.cost import print_breakdown

        print()
        print_breakdown(details["cost"], details.get("training_cost"))
    return 0
