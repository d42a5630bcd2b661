"""Coordinate (one-at-a-time) search: paper 000's design-space exploration method.

The study starts from the *baseline* (every parameter at its default, see
:attr:`dse.spec.StudySpec.resolved_defaults`). Each *step* varies one parameter, or a group of
parameters as a grid (paper 000 varies batch size × learning rate together), with every other
parameter at its current value; when all the step's trials have finished, the best value
becomes the current one (``sequential`` mode, the default) and the next step starts. In
``independent`` mode every step varies from the baseline and a final trial combines each step's
best values (the paper's "combined" configuration).

"Best" is the step's best trial on one objective (``searcher.objective``, default the first),
among completed trials that satisfy the constraints; a trial that failed, was pruned or is
infeasible never wins. On a tie the current value stays. A configuration already evaluated
(the current one in each step, or any seen before) is reused, not re-run. While a step's trials
run, :meth:`suggest` returns ``None``; after the last step, ``FINISHED``.
"""

from __future__ import annotations

import itertools
from typing import Any

from dse.results.records import TrialState
from dse.searchers.base import FINISHED, Searcher, Suggestion
from dse.spec import CoordinateOptions, StudySpec, coordinate_steps
from dse.spec._parse import canonical


class CoordinateSearcher(Searcher):
    """One-at-a-time search over finite parameters (see the module docstring)."""

    name = "coordinate"

    def __init__(self, spec: StudySpec, seed: int | None = None) -> None:
        super().__init__(spec, seed)
        options = spec.searcher.options if isinstance(spec.searcher.options, CoordinateOptions) else CoordinateOptions()
        metric = options.objective or spec.objectives[0].metric
        self.objective = next(o for o in spec.objectives if o.metric == metric)
        self.mode = options.mode
        self.passes = options.passes
        self.steps = coordinate_steps(spec)
        self.baseline = spec.default_params()
        self.current = dict(self.baseline)
        self.history: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        """(step, chosen assignment) after each finished step, in order."""
        self._scores: dict[str, tuple[int, float] | None] = {}
        self._inflight: set[str] = set()
        self._queue: list[dict[str, Any]] = [dict(self.baseline)]
        self._stage: list[dict[str, Any]] = list(self._queue)
        self._position = -1  # -1: baseline; then index into passes * steps; then the final trial
        self._step_best: dict[tuple[str, ...], dict[str, Any]] = {}
        self._done = False

    # -- scoring ----------------------------------------------------------------------------------
    def _score(self, metrics: dict[str, float], state: TrialState) -> tuple[int, float] | None:
        """(0, loss) for a feasible completed trial; None for anything that cannot win."""
        if state != TrialState.COMPLETED:
            return None
        loss = self.objective.loss(metrics)
        if loss is None or not self.feasible(metrics):
            return None
        return (0, loss)

    def _best(self, candidates: list[dict[str, Any]], incumbent: dict[str, Any]) -> dict[str, Any]:
        """The candidate with the lowest loss; the incumbent wins ties; others tie by order."""
        best, best_score = incumbent, self._scores.get(canonical(incumbent))
        for params in candidates:
            score = self._scores.get(canonical(params))
            if score is not None and (best_score is None or score < best_score):
                best, best_score = params, score
        return dict(best)

    # -- stages -----------------------------------------------------------------------------------
    def _candidates(self, group: tuple[str, ...], start: dict[str, Any]) -> list[dict[str, Any]]:
        """Assignments that vary the parameters of ``group`` (where active) from ``start``."""
        members = [self.spec.parameter(n) for n in group]
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for combo in itertools.product(*(p.grid_values() for p in members)):
            params = dict(start)
            for p, v in zip(members, combo):
                params[p.name] = v
            params = self.spec.complete_params(params)
            # A member that the others made inactive was not really varied: skip duplicates.
            key = canonical(params)
            if key not in seen:
                seen.add(key)
                out.append(params)
        return out

    def _advance(self) -> bool:
        """Close the finished stage and open the next one; False when the search is over."""
        if self._position >= 0 and self._position < self.passes * len(self.steps):
            group = self.steps[self._position % len(self.steps)]
            start = self.current if self.mode == "sequential" else self.baseline
            chosen = self._best(self._stage, start)
            self.history.append((group, chosen))
            if self.mode == "sequential":
                self.current = chosen
            else:
                self._step_best[group] = {n: chosen[n] for n in group if n in chosen}
        elif self._position > self.passes * len(self.steps):
            return False
        self._position += 1
        if self._position < self.passes * len(self.steps):
            group = self.steps[self._position % len(self.steps)]
            start = self.current if self.mode == "sequential" else self.baseline
            self._stage = self._candidates(group, start)
        elif self.mode == "independent" and self._position == self.passes * len(self.steps):
            combined = dict(self.baseline)
            for best in self._step_best.values():
                combined.update(best)
            self.current = self.spec.complete_params(combined)
            self._stage = [self.current]
        else:
            if self.mode == "independent":
                self.current = self._best(self._stage, self.current)
            return False
        self._queue = list(self._stage)
        return True

    # -- the contract -----------------------------------------------------------------------------
    def _suggest(self, trial_id: str) -> Suggestion:
        while not self._done:
            while self._queue:
                params = self._queue.pop(0)
                key = canonical(params)
                if key in self._scores or key in self._inflight:
                    continue
                self._inflight.add(key)
                return params
            if self._inflight:
                return None
            if not self._advance():
                self._done = True
        return FINISHED

    def _replay(self, trial_id: str, params: dict[str, Any]) -> None:
        """The sweep is a function of the results: a replayed configuration is in flight until it
        completes, and the stages then advance over known scores without re-running them."""
        self._inflight.add(canonical(params))

    def _on_complete(self, trial_id: str, params: dict[str, Any], metrics: dict[str, float],
                     state: TrialState) -> None:
        key = canonical(params)
        self._inflight.discard(key)
        self._scores[key] = self._score(metrics, state)

    def _on_evaluated(self, params: dict[str, Any], metrics: dict[str, float], state: TrialState) -> None:
        self._scores[canonical(params)] = self._score(metrics, state)

    @property
    def best_params(self) -> dict[str, Any]:
        """The current (after the search: final) configuration."""
        return dict(self.current)
