"""Cross-field checks of a study spec: combinations that cannot work are rejected up front."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dse.errors import SpecError
from dse.spec._parse import canonical, describe, join
from dse.spec.searcher import CoordinateOptions

if TYPE_CHECKING:
    from dse.spec.study import StudySpec

UNBOUNDED_SEARCHERS = ("random", "tpe", "nsga2", "gp")
"""Searchers that never run out of suggestions: they need max_trials or a time budget."""


def check_spec(spec: StudySpec) -> None:
    """Raise :class:`SpecError` (with the path of the field to change) for an invalid combination."""
    _check_parameters(spec)
    _check_objectives(spec)
    _check_searcher(spec)
    _check_scheduler(spec)
    _check_budget(spec)


def _check_parameters(spec: StudySpec) -> None:
    names: dict[str, int] = {}
    for i, p in enumerate(spec.parameters):
        where = f"parameters[{i}]"
        if p.name in names:
            raise SpecError(join(where, "name"), f"got {p.name!r}, already the name of parameters[{names[p.name]}]; "
                                                 "accepted: a unique name")
        if p.target == "seed" or p.target.startswith(("seed.", "seed[")):
            raise SpecError(join(where, "target"), "got 'seed', which each repeat sets; accepted: another "
                                                   "path (choose seeds with repeats.seeds)")
        if p.condition is not None:
            cpath = join(where, "condition.parameter")
            parent = p.condition.parameter
            if parent not in names:
                later = parent in spec.param_names
                raise SpecError(cpath, f"got {parent!r}, which is " + ("declared after this parameter"
                                if later else "not a parameter") + "; accepted: the name of an earlier "
                                "parameter: " + (", ".join(names) or "none"))
            q = spec.parameters[names[parent]]
            if q.type == "float":
                raise SpecError(cpath, f"got {parent!r}, a float parameter; accepted: a condition on an int, "
                                       "discrete or categorical parameter")
            for j, v in enumerate(p.condition.values):
                if not q.contains(v):
                    raise SpecError(join(where, f"condition.in[{j}]"), f"got {describe(v)}, not a value of "
                                                                       f"{parent!r}; accepted: {q.describe_domain()}")
        names[p.name] = i
    for i, p in enumerate(spec.parameters):
        for j in range(i):
            q = spec.parameters[j]
            overlap = (p.target == q.target or p.target.startswith(q.target + ".")
                       or p.target.startswith(q.target + "[") or q.target.startswith(p.target + ".")
                       or q.target.startswith(p.target + "["))
            if overlap and not _exclusive(spec, i, j):
                raise SpecError(f"parameters[{i}].target",
                                f"got {p.target!r}, which overlaps parameters[{j}].target = {q.target!r} while "
                                "both can be active; accepted: distinct paths, or conditions on the same "
                                "parameter with disjoint values")


def _exclusive(spec: StudySpec, i: int, j: int) -> bool:
    """True when parameters ``i`` and ``j`` are never active together (same parent, disjoint values)."""
    a, b = spec.parameters[i].condition, spec.parameters[j].condition
    if a is None or b is None or a.parameter != b.parameter:
        return False
    return not ({canonical(v) for v in a.values} & {canonical(v) for v in b.values})


def _check_objectives(spec: StudySpec) -> None:
    if not spec.objectives:
        raise SpecError("objectives", "got none; accepted: at least one {metric, goal}")
    seen: dict[str, int] = {}
    for i, o in enumerate(spec.objectives):
        if o.metric in seen:
            raise SpecError(f"objectives[{i}].metric", f"got {o.metric!r} again (objectives[{seen[o.metric]}]); "
                                                       "accepted: each metric once")
        seen[o.metric] = i


def _check_searcher(spec: StudySpec) -> None:
    kind = spec.searcher.type
    if kind in ("grid", "coordinate"):
        for i, p in enumerate(spec.parameters):
            if not p.is_finite:
                raise SpecError(f"parameters[{i}].step",
                                f"searcher {kind} lists each parameter's values, but {p.name!r} is a continuous "
                                "float; accepted: a step (a float grid), type discrete, or another searcher")
    options = spec.searcher.options
    if isinstance(options, CoordinateOptions):
        placed: dict[str, int] = {}
        for i, group in enumerate(options.order):
            for name in group:
                if name not in spec.param_names:
                    raise SpecError(f"searcher.order[{i}]", f"got {name!r}, not a parameter; accepted: "
                                                            + ", ".join(spec.param_names))
                if name in placed:
                    raise SpecError(f"searcher.order[{i}]", f"got {name!r} again (also order[{placed[name]}]); "
                                                            "accepted: each parameter in one step")
                placed[name] = i
        metrics = [o.metric for o in spec.objectives]
        if options.objective is not None and options.objective not in metrics:
            raise SpecError("searcher.objective", f"got {options.objective!r}; accepted: one of the objectives: "
                                                  + ", ".join(metrics))
        if options.mode == "independent" and options.passes != 1:
            raise SpecError("searcher.passes", f"got {options.passes} with mode independent, which varies each "
                                               "step from the baseline once; accepted: 1, or mode sequential")


def _check_scheduler(spec: StudySpec) -> None:
    if spec.scheduler.type != "asha":
        return
    if len(spec.objectives) != 1:
        metrics = ", ".join(o.metric for o in spec.objectives)
        raise SpecError("scheduler.type", f"got asha with {len(spec.objectives)} objectives ({metrics}); ASHA stops "
                                          "trials by ranking one metric across trials at each rung, which is "
                                          "undefined for several objectives; accepted: fifo, or one objective")
    if spec.repeats.count > 1:
        raise SpecError("scheduler.type", f"got asha with repeats.count = {spec.repeats.count}; ASHA stops a trial "
                                          "from its per-epoch reports, which several repeats would interleave; "
                                          "accepted: fifo, or repeats.count = 1")


def _check_budget(spec: StudySpec) -> None:
    b = spec.budget
    if spec.searcher.type in UNBOUNDED_SEARCHERS and b.max_trials is None and b.time_budget_s is None:
        raise SpecError("budget.max_trials", f"missing; searcher {spec.searcher.type} never runs out of "
                                             "suggestions; accepted: budget.max_trials or budget.time_budget_s")
