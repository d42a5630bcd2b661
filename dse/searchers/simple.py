"""Grid and random search."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from dse.results.records import TrialState
from dse.searchers.base import FINISHED, Searcher, Suggestion
from dse.spec import ParameterSpec, StudySpec
from dse.spec._parse import canonical


class GridSearcher(Searcher):
    """Every configuration of a finite space once, the first parameter varying slowest.

    Conditional parameters are only varied where active, so no configuration repeats. A
    configuration added with :meth:`add_evaluated_trial` (resume) is not suggested again.
    Finishes when the grid is exhausted or ``budget.max_trials`` is reached.
    """

    name = "grid"

    def __init__(self, spec: StudySpec, seed: int | None = None) -> None:
        super().__init__(spec, seed)
        self._grid: Iterator[dict[str, Any]] = spec.iter_grid()
        self._seen: set[str] = set()

    def _suggest(self, trial_id: str) -> Suggestion:
        for params in self._grid:
            key = canonical(params)
            if key not in self._seen:
                self._seen.add(key)
                return params
        return FINISHED

    def _replay(self, trial_id: str, params: dict[str, Any]) -> None:
        """The grid's order is fixed: the configuration is only marked as taken."""
        self._seen.add(canonical(params))

    def _on_complete(self, trial_id: str, params: dict[str, Any], metrics: dict[str, float],
                     state: TrialState) -> None:
        """Nothing to learn: the grid's order is fixed."""

    def _on_evaluated(self, params: dict[str, Any], metrics: dict[str, float], state: TrialState) -> None:
        self._seen.add(canonical(params))


def sample_parameter(p: ParameterSpec, rng: random.Random) -> Any:
    """One value of ``p`` drawn uniformly from its domain (log-uniformly with ``log``)."""
    if p.type in ("discrete", "categorical"):
        return p.values[rng.randrange(len(p.values))]
    if p.type == "int":
        step = int(p.step or 1)
        if p.log:
            # Uniform in log space over [low - 0.5, high + 0.5], rounded: each integer gets the
            # log-width of its rounding interval.
            lo, hi = math.log(p.low - 0.5) if p.low > 0.5 else math.log(0.5), math.log(p.high + 0.5)  # type: ignore[operator]
            return min(int(p.high), max(int(p.low), round(math.exp(rng.uniform(lo, hi)))))  # type: ignore[arg-type]
        return int(p.low) + step * rng.randrange((int(p.high) - int(p.low)) // step + 1)  # type: ignore[arg-type]
    if p.step is not None:
        return p.grid_values()[rng.randrange(p.size() or 1)]
    if p.log:
        return math.exp(rng.uniform(math.log(p.low), math.log(p.high)))  # type: ignore[arg-type]
    return rng.uniform(p.low, p.high)  # type: ignore[arg-type]


class RandomSearcher(Searcher):
    """Independent uniform draws (log-uniform for ``log`` parameters), seeded.

    Each suggestion draws the active parameters in declaration order, so a condition sees its
    parent's value. Draws are with replacement. Finishes at ``budget.max_trials``.
    """

    name = "random"

    def __init__(self, spec: StudySpec, seed: int | None = None) -> None:
        super().__init__(spec, seed)
        self._rng = random.Random(self.seed)

    def _suggest(self, trial_id: str) -> Suggestion:
        params: dict[str, Any] = {}
        for p in self.spec.parameters:
            if self.spec.is_active(p, params):
                params[p.name] = sample_parameter(p, self._rng)
        return params

    def _replay(self, trial_id: str, params: dict[str, Any]) -> None:
        """Draw (and drop) the suggestion this trial took, so the generator is where it was."""
        self._suggest(trial_id)

    def _on_complete(self, trial_id: str, params: dict[str, Any], metrics: dict[str, float],
                     state: TrialState) -> None:
        """Nothing to learn: draws do not depend on results."""

    def _on_evaluated(self, params: dict[str, Any], metrics: dict[str, float], state: TrialState) -> None:
        """Nothing to learn; the trial counts against the budget (done by the base class)."""
