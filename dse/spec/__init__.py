"""Study specs: one schema for YAML files, the CLI and the HTTP API (no torch or ray imports).

>>> spec = load_spec("configs/quickstart.yaml")          # a path, YAML / JSON text, or a dict
>>> spec.trial_config(spec.default_params(), seed=0)      # the baseline trial config

Everything is validated once, in :func:`load_spec`; an error is a :class:`~dse.errors.SpecError`
whose ``path`` names the field (``parameters[2].target``). See ``docs/study-spec.md``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dse.errors import NotFoundError, SpecError
from dse.spec.objectives import GOALS, ConstraintSpec, ObjectiveSpec
from dse.spec.parameters import PARAM_TYPES, ConditionSpec, ParameterSpec
from dse.spec.parts import (
    MAX_CONCURRENT_TRIALS,
    MAX_CPUS,
    MAX_REPEATS,
    MAX_TIME_BUDGET_S,
    MAX_TRIALS,
    SCHEDULERS,
    BudgetSpec,
    RepeatsSpec,
    ResourcesSpec,
    SchedulerSpec,
)
from dse.spec.searcher import SEARCHERS, CoordinateOptions, GPOptions, NSGA2Options, SearcherSpec, TPEOptions
from dse.spec.study import StudySpec, coordinate_steps

__all__ = [
    "MAX_CONCURRENT_TRIALS", "MAX_CPUS", "MAX_REPEATS", "MAX_TIME_BUDGET_S", "MAX_TRIALS",
    "GOALS", "PARAM_TYPES", "SCHEDULERS", "SEARCHERS", "BudgetSpec", "ConditionSpec", "ConstraintSpec",
    "CoordinateOptions", "GPOptions", "NSGA2Options", "ObjectiveSpec", "ParameterSpec", "RepeatsSpec",
    "ResourcesSpec", "SchedulerSpec", "SearcherSpec", "StudySpec", "TPEOptions", "coordinate_steps",
    "load_spec", "parse_text",
]

_SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def load_spec(source: str | os.PathLike[str] | Mapping[str, Any] | StudySpec, *,
              validate_targets: bool = True) -> StudySpec:
    """Parse and validate a study spec.

    ``source`` is a :class:`StudySpec` (returned as is), a mapping, a path (``Path``, or a
    one-line string naming an existing file or ending in ``.yaml`` / ``.yml`` / ``.json``), or
    YAML / JSON text.
    ``validate_targets=False`` skips probing parameter targets against the trial config (for
    reading stored specs quickly); every other check always runs.
    """
    if isinstance(source, StudySpec):
        return source
    if isinstance(source, Mapping):
        return StudySpec.from_dict(source, validate_targets=validate_targets)
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source and (
            source.strip().endswith(_SPEC_SUFFIXES) or _is_file(source))):
        path = Path(source)
        if not path.is_file():
            raise NotFoundError(f"{path}: study file not found")
        return StudySpec.from_dict(parse_text(path.read_text(), str(path)), validate_targets=validate_targets)
    if isinstance(source, str):
        return StudySpec.from_dict(parse_text(source), validate_targets=validate_targets)
    raise SpecError("", f"got a {type(source).__name__}; accepted: a path, YAML / JSON text, a mapping or a StudySpec")


def _is_file(text: str) -> bool:
    """True when ``text`` names an existing file (False for text too long to be a path)."""
    try:
        return Path(text).is_file()
    except OSError:
        return False


# YAML 1.1 (PyYAML) reads 1e-3 as a string; YAML 1.2 and JSON read it as a number, as users expect.
_FLOAT_RE = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that also reads ``1e-3`` (no dot) as a float."""

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789"))
    return Loader


def parse_text(text: str, origin: str = "") -> Any:
    """Plain data from YAML or JSON text; a syntax error is a SpecError naming the line."""
    import yaml

    where = f"{origin}: " if origin else ""
    if origin.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError("", f"{where}invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    try:
        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError("", f"{where}invalid YAML{line}: {problem}") from None
    if not isinstance(data, Mapping):
        raise SpecError("", f"{where}a study spec must be a mapping of fields; got {type(data).__name__} "
                            "(a path must name an existing file or end in .yaml, .yml or .json)")
    return data
