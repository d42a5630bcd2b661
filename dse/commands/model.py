"""``dse model export RESULTS TRIAL -o FILE``: a trial's trained model as a file to take away.

The file is the stored training of the trial (weights, analog state), read on the trial's
evaluation chip (its RPU config with the trial's ``inference`` overrides), with the trial's
parameters and metrics as metadata; load it back with::

    from simulator import load_analog_model
    loaded = load_analog_model("best.model")   # .model (eval mode), .rpu_config, .metadata
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="trained models of a study (export)")
    cmds = p.add_subparsers(dest="model_command", metavar="COMMAND", required=True)
    e = cmds.add_parser("export", help="write a trial's trained model to a file (load it with "
                                       "simulator.load_analog_model)")
    e.add_argument("results", help="results directory (written by `dse run`)")
    e.add_argument("trial", help="trial number (7) or id (t00007)")
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="model file to write")
    e.add_argument("--repeat", type=int, default=0, metavar="R", help="which repeat's (seed's) model (default 0)")
    e.add_argument("--model-store", default=None, metavar="DIR",
                   help="the store the study kept its models in (default: RESULTS/models)")
    e.set_defaults(func=_export)


def find_trial(records: list, trial: str) -> object:
    """The record of ``trial`` (a number or an id); :class:`NotFoundError` naming what exists."""
    from dse.errors import NotFoundError

    for r in records:
        if trial == r.trial_id or (trial.isdigit() and int(trial) == r.number):
            return r
    sample = ", ".join(r.trial_id for r in records[:5])
    raise NotFoundError(f"no trial {trial!r} in the results; accepted: a trial number 0..{len(records) - 1} "
                        f"or an id such as {sample or '(there are no trials)'}")


def _export(args: argparse.Namespace) -> int:
    from dse.commands.results import load_results
    from dse.models import export_trial_model, model_store_for

    spec, records = load_results(args.results)
    record = find_trial(records, str(args.trial))
    seed = record.seeds[args.repeat] if 0 <= args.repeat < len(record.seeds) else spec.seeds[0]
    config = spec.trial_config(record.params, seed, check=False)
    store = model_store_for(args.results, args.model_store)
    data = export_trial_model(store, record, config, study=spec.name, repeat=args.repeat)
    out = Path(args.output)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    print(f"{out}: trial {record.trial_id} (repeat {args.repeat}) of {spec.name}, {len(data) / 1e6:.2f} MB",
          file=sys.stderr)
    return 0
