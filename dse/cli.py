"""The ``dse`` command line.

Each module in :mod:`dse.commands` adds its sub-commands; packages that build on the engine (the
study service's ``dse serve``) add theirs through the ``dse.commands`` entry-point group, so the
dependency direction stays api -> dse.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import pkgutil
import sys

import dse.commands
from dse.errors import DSEError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dse", description="Design-space exploration for analog in-memory-computing networks."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(dse.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"dse.commands.{info.name}")
        module.register(sub)
    for entry in sorted(importlib.metadata.entry_points(group="dse.commands"), key=lambda e: e.name):
        entry.load().register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dse`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (DSEError, ValueError, FileNotFoundError) as exc:
        # ConfigError (simulator) and SpecError (dse) are ValueErrors with a field path.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
