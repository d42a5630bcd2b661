"""The searcher contract: the algorithm that proposes configurations, independent of Ray.

A searcher sees the study spec (space, objectives, constraints, budget), never the runner. Its
life mirrors Ray Tune's ``ray.tune.search.Searcher`` so the runner can wrap it one-to-one:

``suggest(trial_id)``
    returns the parameters of a new trial (``{name: value}``, only active parameters), ``None``
    when it cannot suggest before some running trial reports (coordinate search between steps;
    Ray Tune asks again later), or :data:`FINISHED` when it will never suggest again (the grid
    is exhausted, ``budget.max_trials`` suggestions were made, the coordinate sweep ended).
``on_trial_complete(trial_id, metrics, state)``
    the trial ended: ``metrics`` are its final metrics (the mean over repeats; may be None or
    lack the objectives for a failed trial) and ``state`` one of COMPLETED, FAILED, PRUNED,
    CANCELLED. A trial not completed is never treated as a good result.
``replay(trial_id, params)``
    a trial of an earlier run of the same study (a resume), in the order it was suggested: the
    searcher moves on exactly as when it made that suggestion (its random generators advance, its
    model sees the same history), and the trial is then running as if just suggested, with its
    stored ``params``; finish it with ``on_trial_complete`` (a finished trial at once, an
    interrupted one when its re-run ends). A searcher rebuilt from the stored trials this way
    suggests what the uninterrupted study would have suggested next.
``add_evaluated_trial(params, metrics, state)``
    a trial finished outside this searcher's study (imported results); it counts against
    ``budget.max_trials`` and informs the model like a completed suggestion.

Subclasses implement four hooks, :meth:`Searcher._suggest`, :meth:`Searcher._replay`,
:meth:`Searcher._on_complete` and :meth:`Searcher._on_evaluated`; the public methods do the
bookkeeping (ids, budget, state checks) once for all of them.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Final, Literal

from dse.errors import ConflictError, NotFoundError
from dse.results.records import TrialState, as_state, normalize_metrics
from dse.spec import StudySpec

FINISHED: Final = "FINISHED"
"""Returned by :meth:`Searcher.suggest` when no trial will ever be suggested again (equal to
Ray Tune's ``Searcher.FINISHED``)."""

Suggestion = dict[str, Any] | None | Literal["FINISHED"]


class Searcher(ABC):
    """Base class of every searcher; see the module docstring for the contract."""

    name: str = ""
    """The ``searcher.type`` this class implements."""

    def __init__(self, spec: StudySpec, seed: int | None = None) -> None:
        self.spec = spec
        self.seed = spec.searcher.seed if seed is None else seed
        self.max_trials = spec.budget.max_trials
        self._params: dict[str, dict[str, Any]] = {}
        self._states: dict[str, TrialState] = {}
        self._n_evaluated = 0

    # -- the contract ---------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> Suggestion:
        """Parameters for a new trial ``trial_id``, ``None`` (not now) or :data:`FINISHED`."""
        if trial_id in self._params:
            raise ConflictError(f"trial {trial_id!r} was already suggested")
        if self.max_trials is not None and self.n_trials >= self.max_trials:
            return FINISHED
        out = self._suggest(trial_id)
        if out is None or out == FINISHED:
            return out
        params = self.spec.check_params(out, path=f"suggestion for {trial_id}")
        self._params[trial_id] = params
        self._states[trial_id] = TrialState.RUNNING
        return copy.deepcopy(params)

    def replay(self, trial_id: str, params: Mapping[str, Any]) -> None:
        """Re-suggest ``trial_id`` of an earlier run with its stored ``params`` (see the module
        docstring); it counts against ``max_trials`` and is running until completed."""
        if trial_id in self._params:
            raise ConflictError(f"trial {trial_id!r} was already suggested")
        checked = self.spec.check_params(params, path=f"replayed trial {trial_id}")
        self._replay(trial_id, checked)
        self._params[trial_id] = checked
        self._states[trial_id] = TrialState.RUNNING

    def on_trial_complete(self, trial_id: str, metrics: Mapping[str, Any] | None = None,
                          state: TrialState | str = TrialState.COMPLETED) -> None:
        """Tell the searcher that ``trial_id`` ended in ``state`` with ``metrics``."""
        if trial_id not in self._params:
            raise NotFoundError(f"trial {trial_id!r} was not suggested by this searcher")
        final = as_state(state)
        if not final.is_finished:
            raise ValueError(f"state: got {final.value}; accepted: COMPLETED, FAILED, PRUNED or CANCELLED")
        if self._states[trial_id].is_finished:
            raise ConflictError(f"trial {trial_id!r} already completed as {self._states[trial_id].value}")
        self._states[trial_id] = final
        self._on_complete(trial_id, self._params[trial_id], normalize_metrics(metrics or {}), final)

    def add_evaluated_trial(self, params: Mapping[str, Any], metrics: Mapping[str, Any] | None,
                            state: TrialState | str = TrialState.COMPLETED) -> None:
        """Record a trial evaluated elsewhere (resume); it counts against ``max_trials``."""
        final = as_state(state)
        if not final.is_finished:
            raise ValueError(f"state: got {final.value}; accepted: COMPLETED, FAILED, PRUNED or CANCELLED")
        checked = self.spec.check_params(params)
        self._n_evaluated += 1
        self._on_evaluated(checked, normalize_metrics(metrics or {}), final)

    # -- bookkeeping views ------------------------------------------------------------------------
    @property
    def n_trials(self) -> int:
        """Trials suggested plus trials added with :meth:`add_evaluated_trial`."""
        return len(self._params) + self._n_evaluated

    @property
    def running(self) -> list[str]:
        """Ids of suggested trials not completed yet."""
        return [t for t, s in self._states.items() if not s.is_finished]

    def params_of(self, trial_id: str) -> dict[str, Any]:
        """The parameters suggested for ``trial_id``."""
        if trial_id not in self._params:
            raise NotFoundError(f"trial {trial_id!r} was not suggested by this searcher")
        return copy.deepcopy(self._params[trial_id])

    # -- helpers for subclasses -------------------------------------------------------------------
    def feasible(self, metrics: Mapping[str, float]) -> bool:
        """True when every constraint of the spec holds."""
        return all(c.satisfied(metrics) for c in self.spec.constraints)

    def losses(self, metrics: Mapping[str, float], state: TrialState) -> tuple[float, ...] | None:
        """The objectives as values to minimize, or None unless the trial completed with all of
        them finite."""
        if state != TrialState.COMPLETED:
            return None
        out = []
        for o in self.spec.objectives:
            v = o.loss(metrics)
            if v is None:
                return None
            out.append(v)
        return tuple(out)

    # -- hooks --------------------------------------------------------------------------------------
    @abstractmethod
    def _suggest(self, trial_id: str) -> Suggestion:
        """Parameters for ``trial_id`` (checked against the space by the caller), None or FINISHED."""

    @abstractmethod
    def _replay(self, trial_id: str, params: dict[str, Any]) -> None:
        """Move on as :meth:`_suggest` did when it suggested ``params`` for ``trial_id`` in an
        earlier run; from now on ``trial_id`` is in flight with ``params``."""

    @abstractmethod
    def _on_complete(self, trial_id: str, params: dict[str, Any], metrics: dict[str, float],
                     state: TrialState) -> None:
        """A suggested trial ended."""

    @abstractmethod
    def _on_evaluated(self, params: dict[str, Any], metrics: dict[str, float], state: TrialState) -> None:
        """A trial evaluated elsewhere was added (resume)."""
