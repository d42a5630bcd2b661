"""Searchers: the algorithms that propose configurations (see :mod:`dse.searchers.base`).

``make_searcher(spec)`` builds the searcher named by ``spec.searcher.type``: ``grid``,
``random``, ``coordinate`` (plain Python) or ``tpe``, ``nsga2``, ``gp`` (Optuna, imported when
built).
"""

from __future__ import annotations

import importlib

from dse.errors import SpecError
from dse.searchers.base import FINISHED, Searcher, Suggestion
from dse.spec import SEARCHERS, StudySpec

_IMPLEMENTATIONS = {
    "grid": ("dse.searchers.simple", "GridSearcher"),
    "random": ("dse.searchers.simple", "RandomSearcher"),
    "coordinate": ("dse.searchers.coordinate", "CoordinateSearcher"),
    "tpe": ("dse.searchers.optuna_samplers", "TPESearcher"),
    "nsga2": ("dse.searchers.optuna_samplers", "NSGA2Searcher"),
    "gp": ("dse.searchers.optuna_samplers", "GPSearcher"),
}

__all__ = ["FINISHED", "SEARCHERS", "Searcher", "Suggestion", "make_searcher", "searcher_class"]


def searcher_class(kind: str) -> type[Searcher]:
    """The class implementing searcher type ``kind``."""
    if kind not in _IMPLEMENTATIONS:
        raise SpecError("searcher.type", f"got {kind!r}; accepted: one of {', '.join(SEARCHERS)}")
    module, name = _IMPLEMENTATIONS[kind]
    return getattr(importlib.import_module(module), name)


def make_searcher(spec: StudySpec, seed: int | None = None) -> Searcher:
    """The searcher of ``spec`` (seeded by ``spec.searcher.seed`` unless ``seed`` is given)."""
    return searcher_class(spec.searcher.type)(spec, seed=seed)
