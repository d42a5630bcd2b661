"""The smaller parts of a study spec: objectives, constraints, searcher, scheduler, budget,
repeats and resources. Each is a frozen dataclass with ``from_dict(data, path)`` / ``to_dict()``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from dse.errors import SpecError
from dse.spec._parse import Fields, as_int, as_list, as_name, as_number, describe, join

GOALS = ("minimize", "maximize")
_GOAL_ALIASES = {"min": "minimize", "max": "maximize", "minimize": "minimize", "maximize": "maximize"}
CONSTRAINT_OPS = ("<=", ">=")
SEARCHERS = ("grid", "random", "tpe", "nsga2", "gp", "coordinate")
"""Searcher types: exhaustive grid, uniform random, Optuna's TPE / NSGA-II / GP, and coordinate
(one-at-a-time) search."""
SCHEDULERS = ("fifo", "asha")


# -- objectives and constraints -----------------------------------------------------------------
@dataclass(frozen=True)
class ObjectiveSpec:
    """A metric to optimize."""

    metric: str
    """Name of a metric the trial reports (``accuracy``, ``train_time_s``, ``n_layers`` ...)."""
    goal: Literal["minimize", "maximize"]
    """Direction: ``minimize`` or ``maximize`` (``min`` / ``max`` accepted on input)."""
    threshold: float | None = None
    """Worst acceptable value; the hypervolume reference point in this objective (see
    :mod:`dse.pareto`). ``None`` derives the reference from the trials."""

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        """The metric's value in ``metrics``, or None when missing or not finite."""
        v = metrics.get(self.metric)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return None
        return float(v)

    def loss(self, metrics: Mapping[str, Any]) -> float | None:
        """The value turned into one to minimize (negated for ``maximize``), or None."""
        v = self.value(metrics)
        return None if v is None else (v if self.goal == "minimize" else -v)

    def better(self, a: float, b: float) -> bool:
        """True when value ``a`` is strictly better than ``b``."""
        return a < b if self.goal == "minimize" else a > b

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "goal": self.goal}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out

    @classmethod
    def from_dict(cls, data: Any, path: str) -> ObjectiveSpec:
        if isinstance(data, str):
            return cls.parse(data, path)
        f = Fields(data, path, "an objective: {metric, goal, threshold}")
        metric = as_name(f.raw("metric"), f.at("metric"), "metric name")
        goal = _goal(f.raw("goal"), f.at("goal"))
        threshold = f.number("threshold", None)
        f.done()
        return cls(metric=metric, goal=goal, threshold=threshold)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, text: str, path: str = "objective") -> ObjectiveSpec:
        """``"accuracy:max"`` / ``"train_time_s:min:60"`` (metric, goal, optional threshold)."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise SpecError(path, f"got {text!r}; accepted: METRIC:min|max[:THRESHOLD]")
        threshold = None
        if len(parts) == 3:
            try:
                threshold = float(parts[2])
            except ValueError:
                raise SpecError(path, f"threshold {parts[2]!r} is not a number; accepted: METRIC:min|max[:THRESHOLD]") from None
        return cls(metric=as_name(parts[0], path, "metric name"), goal=_goal(parts[1], path),  # type: ignore[arg-type]
                   threshold=threshold)


def _goal(value: Any, path: str) -> str:
    if not isinstance(value, str) or value.lower() not in _GOAL_ALIASES:
        raise SpecError(path, f"got {describe(value)}; accepted: minimize or maximize (min / max)")
    return _GOAL_ALIASES[value.lower()]


_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-\[\]]*)\s*(<=|>=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class ConstraintSpec:
    """A bound on a metric: trials that violate it are infeasible (``n_tiles <= 16``)."""

    metric: str
    """Name of the constrained metric."""
    op: Literal["<=", ">="]
    """``<=`` (at most) or ``>=`` (at least)."""
    bound: float
    """The bound."""

    def violation(self, metrics: Mapping[str, Any]) -> float:
        """How far the trial is from satisfying the constraint: ``<= 0`` is feasible, a missing or
        non-finite metric is ``+inf`` (Optuna's ``constraints_func`` convention)."""
        v = metrics.get(self.metric)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return math.inf
        return float(v) - self.bound if self.op == "<=" else self.bound - float(v)

    def satisfied(self, metrics: Mapping[str, Any]) -> bool:
        """True when the metric is present, finite and within the bound."""
        return self.violation(metrics) <= 0.0

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "op": self.op, "bound": self.bound}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> ConstraintSpec:
        if isinstance(data, str):
            m = _CONSTRAINT_RE.match(data)
            bound = None
            if m:
                try:
                    bound = float(m.group(3))
                except ValueError:
                    bound = None
            if not m or bound is None or not math.isfinite(bound):
                raise SpecError(path, f"got {data!r}; accepted: 'METRIC <= NUMBER' or 'METRIC >= NUMBER'")
            return cls(metric=m.group(1), op=m.group(2), bound=bound)  # type: ignore[arg-type]
        f = Fields(data, path, "a constraint: 'METRIC <= NUMBER' or {metric, op, bound}")
        metric = as_name(f.raw("metric"), f.at("metric"), "metric name")
        op = f.string("op", choices=CONSTRAINT_OPS)
        bound = f.number("bound")
        f.done()
        return cls(metric=metric, op=op, bound=bound)  # type: ignore[arg-type]


# -- searcher ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TPEOptions:
    """Options of Optuna's TPE sampler."""

    n_startup_trials: int = 10
    """Random trials before the model is used."""
    multivariate: bool = True
    """Model the parameters jointly (with ``group`` decomposition for conditional spaces)."""
    constant_liar: bool = True
    """Treat running trials as bad results so concurrent suggestions spread out."""


@dataclass(frozen=True)
class NSGA2Options:
    """Options of Optuna's NSGA-II sampler."""

    population_size: int = 20
    """Individuals per generation (the first generation is random)."""
    crossover_prob: float = 0.9
    """Probability of crossover when creating a child."""


@dataclass(frozen=True)
class GPOptions:
    """Options of Optuna's Gaussian-process sampler."""

    n_startup_trials: int = 10
    """Random trials before the GP is fitted."""


@dataclass(frozen=True)
class CoordinateOptions:
    """Options of coordinate (one-at-a-time) search, paper 000's method."""

    order: tuple[tuple[str, ...], ...] = ()
    """Steps, each a parameter name or a list of names varied together as a grid (paper 000
    tunes batch size × learning rate jointly); empty: each parameter alone, in declaration order.
    Parameters left out stay at their defaults."""
    objective: str | None = None
    """Metric that picks each step's best value; ``None`` is the first objective."""
    mode: Literal["sequential", "independent"] = "sequential"
    """``sequential``: each step starts from the best values found so far. ``independent``: each
    step varies from the baseline, and one final trial combines every step's best."""
    passes: int = 1
    """Sweeps over all steps (``sequential`` only)."""


_OPTIONS: dict[str, type | None] = {"grid": None, "random": None, "tpe": TPEOptions, "nsga2": NSGA2Options,
                                    "gp": GPOptions, "coordinate": CoordinateOptions}


@dataclass(frozen=True)
class SearcherSpec:
    """How the next configuration is chosen."""

    type: Literal["grid", "random", "tpe", "nsga2", "gp", "coordinate"] = "random"
    """One of grid, random, tpe, nsga2, gp (Optuna 5, multi-objective where the sampler
    supports it), coordinate."""
    seed: int = 0
    """Seed of the searcher's own randomness (suggestions are reproducible for a seed)."""
    options: TPEOptions | NSGA2Options | GPOptions | CoordinateOptions | None = None
    """Options of the chosen type, given flat beside ``type`` in the dict form."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "seed": self.seed}
        if self.options is not None:
            for fd in fields(self.options):
                value = getattr(self.options, fd.name)
                if fd.name == "order":
                    value = [list(g) if len(g) > 1 else g[0] for g in value]
                if value is not None:
                    out[fd.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Any, path: str) -> SearcherSpec:
        if isinstance(data, str):
            data = {"type": data}
        f = Fields(data, path, "{type: grid|random|tpe|nsga2|gp|coordinate, seed, <options>}")
        kind = f.string("type", "random", choices=SEARCHERS)
        seed = f.integer("seed", 0, lo=0)
        options_cls = _OPTIONS[kind]
        options = None
        if options_cls is not None:
            kwargs = {}
            for fd in fields(options_cls):
                if f.has(fd.name):
                    kwargs[fd.name] = _option(fd.name, f.raw(fd.name), f.at(fd.name))
                f.accepted.append(fd.name)
            options = options_cls(**kwargs)
        f.done()
        return cls(type=kind, seed=seed, options=options)  # type: ignore[arg-type]


def _option(name: str, value: Any, path: str) -> Any:
    if name in ("n_startup_trials",):
        return as_int(value, path, lo=0)
    if name in ("population_size",):
        return as_int(value, path, lo=2)
    if name == "passes":
        return as_int(value, path, lo=1)
    if name == "crossover_prob":
        v = as_number(value, path, lo=0.0)
        if v > 1.0:
            raise SpecError(path, f"got {v!r}; accepted: a number in [0, 1]")
        return v
    if name in ("multivariate", "constant_liar"):
        if not isinstance(value, bool):
            raise SpecError(path, f"got {describe(value)}; accepted: true or false")
        return value
    if name == "objective":
        return as_name(value, path, "metric name")
    if name == "mode":
        if value not in ("sequential", "independent"):
            raise SpecError(path, f"got {describe(value)}; accepted: sequential or independent")
        return value
    if name == "order":
        groups = []
        for i, item in enumerate(as_list(value, path, "parameter names or lists of names")):
            names = as_list(item, join(path, i), "parameter names") if not isinstance(item, str) else [item]
            if not names:
                raise SpecError(join(path, i), "got an empty list; accepted: at least one parameter name")
            groups.append(tuple(as_name(n, join(join(path, i), j) if len(names) > 1 else join(path, i),
                                        "parameter name") for j, n in enumerate(names)))
        return tuple(groups)
    raise SpecError(path, "unknown searcher option")


# -- scheduler, budget, repeats, resources --------------------------------------------------------
@dataclass(frozen=True)
class SchedulerSpec:
    """Whether trials may be stopped early from their per-epoch reports."""

    type: Literal["fifo", "asha"] = "fifo"
    """``fifo``: every trial runs to the end. ``asha``: asynchronous successive halving on the
    single objective's per-epoch value (single objective only)."""
    grace_period: int = 1
    """ASHA: epochs every trial runs before it may be stopped."""
    reduction_factor: float = 3.0
    """ASHA: only the best 1/reduction_factor of trials go on at each rung."""
    max_t: int | None = None
    """ASHA: the most epochs a trial runs; ``None`` takes ``base.training.epochs``."""

    def to_dict(self) -> dict[str, Any]:
        if self.type == "fifo":
            return {"type": "fifo"}
        out: dict[str, Any] = {"type": "asha", "grace_period": self.grace_period,
                               "reduction_factor": self.reduction_factor}
        if self.max_t is not None:
            out["max_t"] = self.max_t
        return out

    @classmethod
    def from_dict(cls, data: Any, path: str) -> SchedulerSpec:
        if isinstance(data, str):
            data = {"type": data}
        f = Fields(data, path, "{type: fifo|asha, grace_period, reduction_factor, max_t}")
        kind = f.string("type", "fifo", choices=SCHEDULERS)
        grace = f.integer("grace_period", 1, lo=1)
        factor = f.number("reduction_factor", 3.0, lo=1.0, lo_open=True)
        max_t = f.integer("max_t", None, lo=1)
        if kind == "fifo":
            for key in ("grace_period", "reduction_factor", "max_t"):
                if f.has(key):
                    raise SpecError(f.at(key), "only used by the asha scheduler; accepted with type: asha")
        if max_t is not None and max_t < grace:
            raise SpecError(f.at("max_t"), f"got {max_t}, below grace_period = {grace}; accepted: max_t >= grace_period")
        f.done()
        return cls(type=kind, grace_period=grace, reduction_factor=factor, max_t=max_t)  # type: ignore[arg-type]


@dataclass(frozen=True)
class BudgetSpec:
    """When the study stops."""

    max_trials: int | None = None
    """Most trials to run (failed ones included); ``None``: until the searcher is done (grid,
    coordinate) or the time budget is spent."""
    max_concurrent_trials: int | None = None
    """Most trials running at once; ``None`` lets the runner fill the available CPUs."""
    time_budget_s: float | None = None
    """Wall-clock seconds after which no new trial starts and running ones are stopped."""
    max_failed_trials: int | None = None
    """The study stops once more than this many trials failed; ``None``: never for failures."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> BudgetSpec:
        f = Fields(data if data is not None else {}, path,
                   "{max_trials, max_concurrent_trials, time_budget_s, max_failed_trials}")
        out = cls(max_trials=f.integer("max_trials", None, lo=1),
                  max_concurrent_trials=f.integer("max_concurrent_trials", None, lo=1),
                  time_budget_s=f.number("time_budget_s", None, lo=0.0, lo_open=True),
                  max_failed_trials=f.integer("max_failed_trials", None, lo=0))
        f.done()
        return out


@dataclass(frozen=True)
class RepeatsSpec:
    """Seeds per configuration; a trial's metrics are the mean (and std) over its repeats."""

    count: int = 1
    """Repeats per configuration."""
    seeds: tuple[int, ...] | None = None
    """Explicit seeds (``count`` of them); ``None``: ``base.seed + 0, 1, ...`` (``base.seed``
    defaults to 0). Every configuration uses the same seeds (paired comparisons)."""

    def resolve(self, base_seed: int) -> tuple[int, ...]:
        """The seed of each repeat."""
        return self.seeds if self.seeds is not None else tuple(base_seed + i for i in range(self.count))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count}
        if self.seeds is not None:
            out["seeds"] = list(self.seeds)
        return out

    @classmethod
    def from_dict(cls, data: Any, path: str) -> RepeatsSpec:
        if data is None:
            return cls()
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return cls(count=as_int(data, path, lo=1))
        f = Fields(data, path, "a count, or {count, seeds}")
        count = f.integer("count", None, lo=1)
        seeds = None
        if f.has("seeds"):
            raw = as_list(f.raw("seeds"), f.at("seeds"), "integer seeds")
            seeds = tuple(as_int(s, join(f.at("seeds"), i), lo=0) for i, s in enumerate(raw))
            if not seeds:
                raise SpecError(f.at("seeds"), "got an empty list; accepted: one seed per repeat")
            if len(set(seeds)) != len(seeds):
                raise SpecError(f.at("seeds"), f"got {list(seeds)} with a seed twice; accepted: distinct seeds")
            if count is not None and count != len(seeds):
                raise SpecError(f.at("count"), f"got {count}, but {len(seeds)} seeds are listed; "
                                               "accepted: count equal to the number of seeds (or leave it out)")
            count = len(seeds)
        f.done()
        return cls(count=count or 1, seeds=seeds)


@dataclass(frozen=True)
class ResourcesSpec:
    """What each trial reserves on a worker (Ray resources); torch threads follow ``cpus``."""

    cpus: float = 1.0
    """CPUs per trial (fractions allowed); torch uses ``max(1, int(cpus))`` threads."""
    gpus: float = 0.0
    """GPUs per trial (fractions allowed)."""

    @property
    def torch_threads(self) -> int:
        """Threads torch should use inside a trial."""
        return max(1, int(self.cpus))

    def to_dict(self) -> dict[str, Any]:
        return {"cpus": self.cpus, "gpus": self.gpus}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> ResourcesSpec:
        f = Fields(data if data is not None else {}, path, "{cpus, gpus}")
        out = cls(cpus=f.number("cpus", 1.0, lo=0.0, lo_open=True), gpus=f.number("gpus", 0.0, lo=0.0))
        f.done()
        return out
