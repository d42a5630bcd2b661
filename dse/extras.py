"""Optional dependencies: importing one that is missing names the extra that provides it.

``pip install 'analog-dse[client]'`` brings pandas (trials as DataFrames), ``'analog-dse[plot]'``
matplotlib (figures and ``--plot``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dse.errors import DSEError

EXTRAS = {"pandas": "client", "matplotlib": "plot"}
"""The extra of ``pyproject.toml`` that installs each optional module."""


class MissingExtraError(DSEError, ImportError):
    """An optional dependency is not installed; the message says which extra installs it."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"matplotlib.pyplot"``), or raise :class:`MissingExtraError`
    saying that ``purpose`` needs it and how to install it."""
    root = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != root:
            raise
        extra = EXTRAS.get(root, root)
        raise MissingExtraError(
            f"{purpose} needs {root}, which is not installed; install the '{extra}' extra: "
            f"pip install 'analog-dse[{extra}]'"
        ) from None
