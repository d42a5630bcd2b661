"""``dse plot hypervolume``: hypervolume against trials of one or several studies on one figure.

Each study is a results directory or, with ``--server``, a study id (the two may be mixed when
``--server`` is given: an existing directory is read locally). The curves share one
normalization over every study's eligible trials, so searchers of the same space compare.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from dse.commands.remote import add_server_options

    p = sub.add_parser("plot", help="figures of study results (PNG, SVG or PDF)")
    kinds = p.add_subparsers(dest="figure", metavar="FIGURE", required=True)
    h = kinds.add_parser("hypervolume", help="hypervolume vs trials, one curve per study (to compare searchers)")
    h.add_argument("studies", nargs="+", metavar="STUDY",
                   help="results directories, or study ids with --server")
    add_server_options(h, required=False)
    h.add_argument("--output", "-O", required=True, metavar="FILE", help="figure file: .png, .svg or .pdf")
    h.add_argument("--objective", "-o", action="append", default=None, metavar="METRIC:GOAL",
                   help="objective as METRIC:min|max[:THRESHOLD]; repeat for 2 or 3 (default: the first "
                        "study's objectives)")
    h.add_argument("--no-constraints", action="store_true", help="ignore the studies' constraints")
    h.add_argument("--label", action="append", default=None,
                   help="legend entry per study, in order (default: name (searcher))")
    h.set_defaults(func=_hypervolume)


def _hypervolume(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dse.commands.results import open_results
    from dse.pareto import as_objectives
    from dse.results.plots import FILE_FORMATS, hypervolume_figure, save_figure

    if Path(args.output).suffix.lstrip(".").lower() not in FILE_FORMATS:
        raise ValueError(f"--output: got {args.output!r}; accepted: a file name ending in .png, .svg or .pdf")
    if args.label and len(args.label) != len(args.studies):
        raise ValueError(f"--label: got {len(args.label)} labels for {len(args.studies)} studies; "
                         "accepted: one per study, in order")
    sources = []
    for ref in args.studies:
        server = None if Path(ref).is_dir() else args.server
        sources.append(open_results(ref, server, args.token))
    objectives = as_objectives(args.objective) if args.objective else tuple(sources[0].spec.objectives)
    fig = hypervolume_figure([(s.spec, s.records) for s in sources], objectives,
                             () if args.no_constraints else None, labels=args.label)
    save_figure(fig, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
