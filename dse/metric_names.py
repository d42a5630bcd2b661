"""The metric names a trial function declares, and the check of a study's objectives against them.

A trial function may carry a ``metric_names`` attribute (a :class:`MetricNames`): every metric
it can return, by name or by pattern (``accuracy_drift_<t>`` depends on the evaluation's drift
times). A study whose objectives or constraints name a metric the function never produces is
rejected before it runs (``dse run``, and the service at submit), instead of ranking no trial.
A function without the attribute is not checked. Torch-free.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dse.errors import SpecError

DEFAULT_TRIAL_FN = "dse.trial.run:run_trial"
"""Import path of the trial function studies run unless told otherwise."""


@dataclass(frozen=True)
class MetricNames:
    """The metrics a trial function returns."""

    names: frozenset[str]
    """Names it always or sometimes returns."""
    patterns: tuple[str, ...] = ()
    """Regular expressions (matched in full) of the names that depend on the trial config."""
    examples: tuple[str, ...] = ()
    """One name per pattern, for error messages."""

    def produces(self, name: str) -> bool:
        """True when ``name`` is one of the declared metrics."""
        return name in self.names or any(re.fullmatch(p, name) for p in self.patterns)

    def describe(self) -> str:
        """The accepted names, for an error message."""
        text = ", ".join(sorted(self.names))
        return text + (f", or names like {', '.join(self.examples)}" if self.examples else "")


def declared_metrics(trial_fn: str) -> MetricNames | None:
    """The :class:`MetricNames` of the trial function at ``trial_fn`` (``module:function``), or
    None when it declares none or cannot be imported here (the runner reports that)."""
    module_name, _, name = trial_fn.partition(":")
    try:
        function: Any = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        return None
    declared = getattr(function, "metric_names", None)
    return declared if isinstance(declared, MetricNames) else None


def check_study_metrics(objectives: Iterable[Any], constraints: Iterable[Any],
                        trial_fn: str = DEFAULT_TRIAL_FN) -> None:
    """Raise :class:`SpecError` naming the first objective or constraint whose metric the trial
    function at ``trial_fn`` does not produce."""
    declared = declared_metrics(trial_fn)
    if declared is None:
        return
    for kind, items in (("objectives", objectives), ("constraints", constraints)):
        for i, item in enumerate(items):
            if not declared.produces(item.metric):
                raise SpecError(f"{kind}[{i}].metric",
                                f"got {item.metric!r}, which the trial function {trial_fn} does not "
                                f"produce; accepted: {declared.describe()}")
