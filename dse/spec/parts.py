"""The remaining parts of a study spec: scheduler, budget, repeats and resources. Each is a frozen
dataclass with ``from_dict(data, path)`` / ``to_dict()``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from dse.errors import SpecError
from dse.spec._parse import Fields, as_int, as_list, join

SCHEDULERS = ("fifo", "asha")


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


MAX_TRIALS = 1_000_000
"""Upper bound of ``budget.max_trials`` and ``budget.max_failed_trials`` (a study's store and
Pareto queries are sized for far fewer)."""
MAX_CONCURRENT_TRIALS = 10_000
"""Upper bound of ``budget.max_concurrent_trials``."""
MAX_TIME_BUDGET_S = 366 * 86_400.0
"""Upper bound of ``budget.time_budget_s`` (a year)."""
MAX_REPEATS = 1_000
"""Upper bound of ``repeats.count``."""
MAX_CPUS = 4_096.0
"""Upper bound of ``resources.cpus`` and ``resources.gpus`` per trial (a service that knows its
cluster rejects more than its largest node has)."""


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
        out = cls(max_trials=f.integer("max_trials", None, lo=1, hi=MAX_TRIALS),
                  max_concurrent_trials=f.integer("max_concurrent_trials", None, lo=1, hi=MAX_CONCURRENT_TRIALS),
                  time_budget_s=f.number("time_budget_s", None, lo=0.0, lo_open=True, hi=MAX_TIME_BUDGET_S),
                  max_failed_trials=f.integer("max_failed_trials", None, lo=0, hi=MAX_TRIALS))
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
            return cls(count=as_int(data, path, lo=1, hi=MAX_REPEATS))
        f = Fields(data, path, "a count, or {count, seeds}")
        count = f.integer("count", None, lo=1, hi=MAX_REPEATS)
        seeds = None
        if f.has("seeds"):
            raw = as_list(f.raw("seeds"), f.at("seeds"), "integer seeds")
            seeds = tuple(as_int(s, join(f.at("seeds"), i), lo=0) for i, s in enumerate(raw))
            if not seeds or len(seeds) > MAX_REPEATS:
                raise SpecError(f.at("seeds"), f"got {len(seeds)} seeds; accepted: 1 to {MAX_REPEATS}, one per repeat")
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
        out = cls(cpus=f.number("cpus", 1.0, lo=0.0, lo_open=True, hi=MAX_CPUS),
                  gpus=f.number("gpus", 0.0, lo=0.0, hi=MAX_CPUS))
        f.done()
        return out
