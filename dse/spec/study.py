"""The study spec: what a user declares, validated once, and how parameters map to trial configs."""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dse.errors import SpecError
from dse.spec._parse import Fields, as_list, canonical, check_json, describe, join, thaw
from dse.spec.objectives import ConstraintSpec, ObjectiveSpec
from dse.spec.parameters import ParameterSpec
from dse.spec.parts import BudgetSpec, RepeatsSpec, ResourcesSpec, SchedulerSpec
from dse.spec.searcher import CoordinateOptions, SearcherSpec

STUDY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_TOP_KEYS = ("name", "description", "labels", "base", "parameters", "objectives", "constraints",
             "searcher", "scheduler", "budget", "repeats", "resources", "reuse")


@dataclass(frozen=True)
class StudySpec:
    """A design-space exploration study: the space, the objectives and how to search it."""

    name: str
    """Identifier of the study (letters, digits, ``_ . -``; also names its results)."""
    description: str = ""
    """Free text shown beside the results."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Free-form ``key: value`` tags (owner, project, paper ...)."""
    base: Mapping[str, Any] = field(default_factory=dict)
    """The fixed part of every trial config (dataset, model, hardware, training, ...)."""
    parameters: tuple[ParameterSpec, ...] = ()
    """The varied dimensions, in declaration order (a condition refers to an earlier one)."""
    objectives: tuple[ObjectiveSpec, ...] = ()
    """Metrics to optimize (at least one)."""
    constraints: tuple[ConstraintSpec, ...] = ()
    """Bounds on metrics; violating trials are infeasible for fronts, best and searchers."""
    searcher: SearcherSpec = field(default_factory=SearcherSpec)
    """How configurations are chosen."""
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    """Whether trials may be stopped early."""
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    """When the study stops."""
    repeats: RepeatsSpec = field(default_factory=RepeatsSpec)
    """Seeds per configuration (metrics reported as mean and std)."""
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    """CPUs and GPUs per trial."""
    reuse: bool = True
    """Train once per training key: a trial whose training stage (``docs/trials.md``) was already
    trained loads the stored model and only evaluates; ``false`` trains every trial."""

    # -- lookups ----------------------------------------------------------------------------------
    def index(self, name: str) -> int:
        """Position of the parameter called ``name``."""
        for i, p in enumerate(self.parameters):
            if p.name == name:
                return i
        raise SpecError("parameters", f"no parameter named {name!r}; accepted: {', '.join(self.param_names) or 'none'}")

    def parameter(self, name: str) -> ParameterSpec:
        """The parameter called ``name``."""
        return self.parameters[self.index(name)]

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names in declaration order."""
        return tuple(p.name for p in self.parameters)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Objective metrics, then constraint metrics (each once)."""
        return tuple(dict.fromkeys([o.metric for o in self.objectives] + [c.metric for c in self.constraints]))

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seed of each repeat (shared by every configuration)."""
        base_seed = self.base.get("seed", 0)
        return self.repeats.resolve(base_seed if isinstance(base_seed, int) else 0)

    @property
    def is_multi_objective(self) -> bool:
        """True with two or more objectives."""
        return len(self.objectives) > 1

    # -- assignments ------------------------------------------------------------------------------
    def is_active(self, p: ParameterSpec, params: Mapping[str, Any]) -> bool:
        """True when ``p`` has no condition or its condition holds in ``params``."""
        return p.condition is None or p.condition.holds(params)

    def active_parameters(self, params: Mapping[str, Any]) -> list[ParameterSpec]:
        """The parameters active under the (complete) assignment ``params``, in order."""
        seen: dict[str, Any] = {}
        out = []
        for p in self.parameters:
            if self.is_active(p, seen):
                out.append(p)
                if p.name in params:
                    seen[p.name] = params[p.name]
        return out

    def check_params(self, params: Mapping[str, Any], path: str = "params") -> dict[str, Any]:
        """``params`` checked against the space: every active parameter present and in its domain,
        no inactive or unknown one. Returns a copy in declaration order, values in their types."""
        if not isinstance(params, Mapping):
            raise SpecError(path, f"got {describe(params)}; accepted: a mapping of parameter names to values")
        names = set(self.param_names)
        for key in params:
            if key not in names:
                raise SpecError(join(path, str(key)), f"unknown parameter; accepted: {', '.join(self.param_names)}")
        out: dict[str, Any] = {}
        for p in self.parameters:
            active = self.is_active(p, out)
            here = join(path, p.name)
            if not active:
                if p.name in params:
                    raise SpecError(here, f"given, but inactive because {p.condition.parameter} is "  # type: ignore[union-attr]
                                          f"{describe(out.get(p.condition.parameter, 'inactive'))}; "  # type: ignore[union-attr]
                                          "accepted: leave it out")
                continue
            if p.name not in params:
                raise SpecError(here, f"missing; accepted: {p.describe_domain()}")
            value = params[p.name]
            if not p.contains(value):
                raise SpecError(here, f"got {describe(value)}; accepted: {p.describe_domain()}")
            out[p.name] = p.coerce(value)
        return out

    def complete_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A full assignment from a partial one: active parameters missing from ``params`` take
        their defaults, inactive ones are dropped (values are not checked)."""
        defaults = self.resolved_defaults
        out: dict[str, Any] = {}
        for p in self.parameters:
            if self.is_active(p, out):
                out[p.name] = copy.deepcopy(params[p.name]) if p.name in params else copy.deepcopy(defaults[p.name])
        return out

    def default_params(self) -> dict[str, Any]:
        """The baseline assignment: every active parameter at its default."""
        return self.complete_params({})

    @functools.cached_property
    def resolved_defaults(self) -> dict[str, Any]:
        """Each parameter's default: ``default`` if given, else the trial config's value at the
        target when it is in the domain, else ``values[0]`` / ``low``."""
        from dse.spec.targets import _NO_VALUE, base_value

        out = {}
        for p in self.parameters:
            if p.default is not None:
                out[p.name] = p.coerce(p.default)
                continue
            value = base_value(thaw(self.base), p.target)
            out[p.name] = p.coerce(value) if value is not _NO_VALUE and p.contains(value) else p.first_value()
        return out

    # -- trial configs ----------------------------------------------------------------------------
    def trial_config(self, params: Mapping[str, Any], seed: int | None = None, *, check: bool = True) -> dict[str, Any]:
        """The trial config of an assignment: ``base`` with each active parameter's value at its
        target and ``seed`` (default: the first repeat's seed). Not validated against the trial
        schema (``run_trial`` does that); ``check`` validates ``params`` against the space."""
        from dse.trial.config import set_path

        values = self.check_params(params) if check else dict(params)
        config = thaw(self.base)
        for p in self.active_parameters(values):
            if p.name in values:
                config = set_path(config, p.target, thaw(values[p.name]))
        config["seed"] = self.seeds[0] if seed is None else seed
        return config

    def trial_configs(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One trial config per repeat seed."""
        checked = self.check_params(params)
        return [self.trial_config(checked, seed, check=False) for seed in self.seeds]

    def iter_grid(self) -> Iterator[dict[str, Any]]:
        """Every distinct assignment of a finite space (conditions respected), the first
        parameter varying slowest."""
        def rec(i: int, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(self.parameters):
                yield dict(params)
                return
            p = self.parameters[i]
            if not self.is_active(p, params):
                yield from rec(i + 1, params)
                return
            for v in p.grid_values():
                params[p.name] = v
                yield from rec(i + 1, params)
            del params[p.name]

        return rec(0, {})

    def grid_size(self) -> int | None:
        """Number of distinct assignments of a finite space (None with a continuous parameter)."""
        if not all(p.is_finite for p in self.parameters):
            return None
        return sum(1 for _ in self.iter_grid())

    # -- dict form --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe dict; ``load_spec(spec.to_dict()) == spec``."""
        return {
            "name": self.name,
            "description": self.description,
            "labels": dict(self.labels),
            "base": thaw(self.base),
            "parameters": [p.to_dict() for p in self.parameters],
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": [c.to_dict() for c in self.constraints],
            "searcher": self.searcher.to_dict(),
            "scheduler": self.scheduler.to_dict(),
            "budget": self.budget.to_dict(),
            "repeats": self.repeats.to_dict(),
            "resources": self.resources.to_dict(),
            **({} if self.reuse else {"reuse": False}),
        }

    def to_json(self) -> str:
        """The dict form as JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        """The dict form as YAML text."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any, *, validate_targets: bool = True) -> StudySpec:
        """Parse and validate a spec from plain data (see :func:`dse.spec.load_spec`)."""
        f = Fields(data, "", "a study spec")
        name = f.raw("name")
        if not isinstance(name, str) or not STUDY_NAME_RE.match(name):
            raise SpecError("name", f"got {describe(name)}; accepted: 1-100 letters, digits, '_', '.', '-', "
                                    "starting with a letter or digit")
        description = f.raw("description", "")
        if not isinstance(description, str):
            raise SpecError("description", f"got {describe(description)}; accepted: a string")
        labels = f.raw("labels", {})
        if not isinstance(labels, Mapping):
            raise SpecError("labels", f"got {describe(labels)}; accepted: a mapping of strings to strings")
        for k, v in labels.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SpecError(join("labels", str(k)), f"got {describe(v)}; accepted: a string value under a string key")
        base = f.raw("base", {})
        if not isinstance(base, Mapping):
            raise SpecError("base", f"got {describe(base)}; accepted: a mapping (the fixed part of the trial config)")
        check_json(base, "base")
        params = tuple(ParameterSpec.from_dict(p, f"parameters[{i}]")
                       for i, p in enumerate(as_list(f.raw("parameters", []), "parameters", "parameters")))
        raw_objectives = as_list(f.raw("objectives", []), "objectives", "objectives")
        objectives = tuple(ObjectiveSpec.from_dict(o, f"objectives[{i}]") for i, o in enumerate(raw_objectives))
        constraints = tuple(ConstraintSpec.from_dict(c, f"constraints[{i}]")
                            for i, c in enumerate(as_list(f.raw("constraints", []), "constraints", "constraints")))
        spec = cls(
            name=name, description=description, labels=dict(labels), base=thaw(base), parameters=params,
            objectives=objectives, constraints=constraints,
            searcher=SearcherSpec.from_dict(f.raw("searcher", "random"), "searcher"),
            scheduler=SchedulerSpec.from_dict(f.raw("scheduler", "fifo"), "scheduler"),
            budget=BudgetSpec.from_dict(f.raw("budget", {}), "budget"),
            repeats=RepeatsSpec.from_dict(f.raw("repeats"), "repeats"),
            resources=ResourcesSpec.from_dict(f.raw("resources", {}), "resources"),
            reuse=_reuse(f.raw("reuse", True)),
        )
        f.done()
        from dse.spec.checks import check_spec

        check_spec(spec)
        if validate_targets:
            from dse.spec.targets import check_targets

            check_targets(spec)
        return spec


def _reuse(value: Any) -> bool:
    if not isinstance(value, bool):
        raise SpecError("reuse", f"got {describe(value)}; accepted: true or false")
    return value


def coordinate_steps(spec: StudySpec) -> tuple[tuple[str, ...], ...]:
    """The groups coordinate search varies, in order (each parameter alone when not given)."""
    options = spec.searcher.options
    if isinstance(options, CoordinateOptions) and options.order:
        return options.order
    return tuple((name,) for name in spec.param_names)


__all__ = ["StudySpec", "coordinate_steps", "canonical"]
