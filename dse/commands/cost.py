"""``dse cost TRIAL.yaml``: the energy, latency and area of a trial's design, without training.

The network is built on its hardware with its initial weights and priced with the technology's
static activity (``hardware.cost.activity``, ``zero_fraction``); ``dse trial`` prints the same
table after training, with the activity measured on the test set. See ``docs/cost-model.md``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cost", help="price a trial config's design (energy, latency, area) without training")
    p.add_argument("config", help="trial config file (see docs/trials.md)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a value by dotted path, e.g. --set hardware.cost.tech=isaac32 "
                        "--set hardware.cost.cols_per_adc=16; repeatable")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--constants", action="store_true",
                   help="also print the technology's constants with their units and sources")
    p.set_defaults(func=_run)


def print_breakdown(report: dict[str, Any], training: dict[str, Any] | None = None) -> None:
    """Print a cost report (its dict form) as the per-layer table and the totals."""
    from simulator.cost.report import CostReport, TrainingCost, format_report

    tc = None if training is None else TrainingCost(**training)
    print(format_report(CostReport.from_dict(report), tc))


def _run(args: argparse.Namespace) -> int:
    from dse.commands.trial import load_config
    from dse.trial.config import parse_trial_config, resolve_hardware, validate_trial_config
    from dse.trial.run import static_cost

    normalized = validate_trial_config(load_config(args.config, args.set))
    report = static_cost(normalized)
    if args.json:
        print(json.dumps(report.to_dict(), sort_keys=True))
        return 0
    print(f"cost of {normalized['model']['name']} on {normalized['dataset']['name']}, hardware "
          f"{normalized['hardware']['preset']} (static activity, initial weights; no training)")
    print_breakdown(report.to_dict())
    if args.constants:
        from simulator.configs.cost import constant_unit
        from simulator.cost.technology import resolve

        trial = parse_trial_config(normalized)
        tech = resolve(resolve_hardware(trial.hardware, trial.algorithm).cost)
        print(f"\ntechnology {tech.name} ({tech.path})")
        width = max(len(n) for n in tech.values)
        for name, value in tech.values.items():
            unit = constant_unit(name)
            unit = "" if unit in ("", "1") else unit
            print(f"  {name:<{width}}  {value!s:>10} {unit:<7} {tech.sources[name]}")
    return 0
