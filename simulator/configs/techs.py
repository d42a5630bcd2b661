"""Where technology files are: the shipped ones and paths (torch-free, reads no file).

The cost config validates its ``tech`` with :func:`locate`; the cost model
(:mod:`simulator.cost.technology`) reads the file it names. Both floors import this module, so
the config never imports the cost model.
"""

from __future__ import annotations

import os
from pathlib import Path

from simulator.errors import ConfigError

__all__ = ["TECH_DIR", "accepted_technologies", "locate", "shipped_technologies"]

TECH_DIR = Path(__file__).resolve().parents[1] / "cost" / "techs"
"""Where the shipped technology files are."""


def shipped_technologies() -> list[str]:
    """Names of the technology files that ship with the package."""
    return sorted(p.stem for p in TECH_DIR.glob("*.yaml"))


def accepted_technologies() -> str:
    """What a ``tech`` may be, for error messages."""
    return ", ".join(shipped_technologies()) + ", or the path of a YAML technology file"


def locate(tech: str) -> Path:
    """The file of a technology: a shipped name, or a path (``ConfigError`` if neither)."""
    if not isinstance(tech, str) or not tech.strip():
        raise ConfigError("tech", f"got {tech!r}; accepted: {accepted_technologies()}")
    shipped = TECH_DIR / f"{tech}.yaml"
    if "/" not in tech and os.sep not in tech and shipped.is_file():
        return shipped
    path = Path(tech).expanduser()
    if path.is_file():
        return path.resolve()
    raise ConfigError("tech", f"got {tech!r}, which is neither a shipped technology nor a file; "
                              f"accepted: {accepted_technologies()}")
