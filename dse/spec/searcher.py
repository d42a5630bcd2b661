"""The searcher section of a study spec and the options of each searcher type."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from dse.errors import SpecError
from dse.spec._parse import Fields, as_int, as_list, as_name, as_number, describe, join

SEARCHERS = ("grid", "random", "tpe", "nsga2", "gp", "coordinate")
"""Searcher types: exhaustive grid, uniform random, Optuna's TPE / NSGA-II / GP, and coordinate
(one-at-a-time) search."""


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
