"""TPE, NSGA-II and GP search on Optuna 5 through its ask / tell interface.

Optuna is imported when one of these searchers is built. The study is in memory; each suggestion
is one ``study.ask()`` whose parameters are drawn define-by-run in declaration order, so a
conditional parameter is only drawn when its condition holds (TPE models such spaces jointly with
``multivariate`` + ``group``; NSGA-II and GP draw parameters outside their joint space
independently). Several objectives give a multi-objective study (all three samplers support it);
constraints reach the samplers through ``constraints_func`` (violation ``<= 0`` is feasible), read
from the trial's user attribute :data:`CONSTRAINTS_ATTR`.

Parameter mapping: ``float`` -> ``suggest_float(low, high, step, log)``, ``int`` ->
``suggest_int(low, high, step, log)``, ``discrete`` -> ``suggest_int`` over the index of the
sorted values (an ordinal dimension, so models see the order), ``categorical`` ->
``suggest_categorical`` (values that are not None / bool / int / float / str are passed as
their JSON text and decoded back).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

from dse.results.records import TrialState
from dse.searchers.base import Searcher, Suggestion
from dse.spec import GPOptions, NSGA2Options, ParameterSpec, StudySpec, TPEOptions

CONSTRAINTS_ATTR = "dse.constraints"
"""User attribute of an Optuna trial holding the constraint violations (``<= 0`` feasible)."""

_PRIMITIVE = (type(None), bool, int, float, str)


def _encode(value: Any) -> Any:
    return value if isinstance(value, _PRIMITIVE) else json.dumps(value, sort_keys=True)


def _sorted_values(p: ParameterSpec) -> list[Any]:
    return sorted(p.values)


def _constraints_of(trial: Any) -> Sequence[float]:
    return trial.user_attrs.get(CONSTRAINTS_ATTR, ())


class OptunaSearcher(Searcher):
    """Common part of the Optuna-backed searchers; subclasses build the sampler."""

    def __init__(self, spec: StudySpec, seed: int | None = None) -> None:
        super().__init__(spec, seed)
        import optuna

        self._optuna = optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings of the samplers
            sampler = self._sampler(optuna, self._constraints_func if spec.constraints else None)
        self.study = optuna.create_study(directions=[o.goal for o in spec.objectives], sampler=sampler)
        self._trials: dict[str, Any] = {}
        self._decode: dict[str, dict[Any, Any]] = {}
        self._distributions = {p.name: self._distribution(p) for p in spec.parameters}

    # -- to build by subclasses -------------------------------------------------------------------
    def _sampler(self, optuna: Any, constraints_func: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def _constraints_func(trial: Any) -> Sequence[float]:
        return _constraints_of(trial)

    # -- space ------------------------------------------------------------------------------------
    def _distribution(self, p: ParameterSpec) -> Any:
        d = self._optuna.distributions
        if p.type == "float":
            return d.FloatDistribution(p.low, p.high, log=p.log, step=p.step)  # type: ignore[arg-type]
        if p.type == "int":
            return d.IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step or 1))  # type: ignore[arg-type]
        if p.type == "discrete":
            return d.IntDistribution(0, len(p.values) - 1)
        choices = [_encode(v) for v in p.values]
        self._decode[p.name] = {c: v for c, v in zip(choices, p.values)}
        return d.CategoricalDistribution(choices)

    def _draw(self, trial: Any, p: ParameterSpec) -> Any:
        """Draw ``p`` on an Optuna trial with the public ``suggest_*`` API."""
        dist = self._distributions[p.name]
        if p.type == "float":
            return trial.suggest_float(p.name, dist.low, dist.high, step=dist.step, log=dist.log)
        if p.type in ("int", "discrete"):
            return trial.suggest_int(p.name, dist.low, dist.high, step=dist.step, log=dist.log)
        return trial.suggest_categorical(p.name, dist.choices)

    def _to_internal(self, p: ParameterSpec, value: Any) -> Any:
        if p.type == "discrete":
            return _sorted_values(p).index(next(v for v in p.values if v == value))
        if p.type == "categorical":
            return _encode(value)
        return value

    def _from_internal(self, p: ParameterSpec, value: Any) -> Any:
        if p.type == "discrete":
            return _sorted_values(p)[int(value)]
        if p.type == "categorical":
            return self._decode[p.name][value]
        return value

    # -- hooks ------------------------------------------------------------------------------------
    def _suggest(self, trial_id: str) -> Suggestion:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self.study.ask()
            params: dict[str, Any] = {}
            for p in self.spec.parameters:
                if not self.spec.is_active(p, params):
                    continue
                params[p.name] = self._from_internal(p, self._draw(trial, p))
        self._trials[trial_id] = trial
        return params

    def _replay(self, trial_id: str, params: dict[str, Any]) -> None:
        """Ask Optuna as :meth:`_suggest` did, so its samplers' generators advance the same way.

        With the same seed and the same history the draw equals the stored parameters (the
        normal case: the trials are replayed in the order they were asked and told). If it does
        not (an earlier run with trials in flight told them in another order), the draw is told
        as FAILED, which Optuna's samplers do not learn from, and the stored parameters are
        asked again as a fixed (enqueued) trial, so the study holds the real history.
        """
        drawn = self.spec.check_params(self._suggest(trial_id))  # type: ignore[arg-type]
        if drawn == params:
            return
        ts = self._optuna.trial.TrialState
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.study.tell(self._trials.pop(trial_id), state=ts.FAIL)
            active = self.spec.active_parameters(params)
            self.study.enqueue_trial({p.name: self._to_internal(p, params[p.name]) for p in active})
            trial = self.study.ask()
            for p in active:
                self._draw(trial, p)
        self._trials[trial_id] = trial

    def _values(self, metrics: dict[str, float], state: TrialState) -> list[float] | None:
        if state != TrialState.COMPLETED:
            return None
        values = [o.value(metrics) for o in self.spec.objectives]
        return None if any(v is None for v in values) else values  # type: ignore[return-value]

    def _on_complete(self, trial_id: str, params: dict[str, Any], metrics: dict[str, float],
                     state: TrialState) -> None:
        trial = self._trials.pop(trial_id)
        values = self._values(metrics, state)
        ts = self._optuna.trial.TrialState
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if values is not None:
                trial.set_user_attr(CONSTRAINTS_ATTR, [c.violation(metrics) for c in self.spec.constraints])
                self.study.tell(trial, values)
            elif state == TrialState.PRUNED and len(self.spec.objectives) == 1:
                self.study.tell(trial, state=ts.PRUNED)
            else:
                self.study.tell(trial, state=ts.FAIL)

    def _on_evaluated(self, params: dict[str, Any], metrics: dict[str, float], state: TrialState) -> None:
        ts = self._optuna.trial.TrialState
        active = {p.name: p for p in self.spec.active_parameters(params)}
        internal = {n: self._to_internal(p, params[n]) for n, p in active.items()}
        values = self._values(metrics, state)
        attrs = {CONSTRAINTS_ATTR: [c.violation(metrics) for c in self.spec.constraints]} if values else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frozen = self._optuna.trial.create_trial(
                params=internal, distributions={n: self._distributions[n] for n in active},
                values=values, user_attrs=attrs,
                state=ts.COMPLETE if values is not None else (ts.PRUNED if state == TrialState.PRUNED
                                                               and len(self.spec.objectives) == 1 else ts.FAIL),
            )
            self.study.add_trial(frozen)


class TPESearcher(OptunaSearcher):
    """Tree-structured Parzen estimator (Optuna's ``TPESampler``), single or multi-objective."""

    name = "tpe"

    def _sampler(self, optuna: Any, constraints_func: Any) -> Any:
        o = self.spec.searcher.options if isinstance(self.spec.searcher.options, TPEOptions) else TPEOptions()
        return optuna.samplers.TPESampler(
            seed=self.seed, n_startup_trials=o.n_startup_trials, multivariate=o.multivariate,
            group=o.multivariate, constant_liar=o.constant_liar, constraints_func=constraints_func,
            warn_independent_sampling=False)


class NSGA2Searcher(OptunaSearcher):
    """NSGA-II genetic search (Optuna's ``NSGAIISampler``); the first generation is random."""

    name = "nsga2"

    def _sampler(self, optuna: Any, constraints_func: Any) -> Any:
        o = self.spec.searcher.options if isinstance(self.spec.searcher.options, NSGA2Options) else NSGA2Options()
        return optuna.samplers.NSGAIISampler(
            seed=self.seed, population_size=o.population_size, crossover_prob=o.crossover_prob,
            constraints_func=constraints_func)


class GPSearcher(OptunaSearcher):
    """Gaussian-process Bayesian optimization (Optuna's ``GPSampler``: logEI / logEHVI, with
    constrained variants); fitting costs grow with the number of trials."""

    name = "gp"

    def _sampler(self, optuna: Any, constraints_func: Any) -> Any:
        o = self.spec.searcher.options if isinstance(self.spec.searcher.options, GPOptions) else GPOptions()
        return optuna.samplers.GPSampler(
            seed=self.seed, n_startup_trials=o.n_startup_trials, constraints_func=constraints_func,
            independent_sampler=optuna.samplers.RandomSampler(seed=self.seed), warn_independent_sampling=False)
