"""Checking parameter targets against the trial config schema (torch-free).

A study parameter is only useful if the trial accepts its values at its target path. For each
parameter, :func:`check_targets` builds trial configs from ``base`` with the parameter set to each
*probe* value (every value of a small finite domain; the bounds and the default otherwise), the
other parameters at their defaults and the parameter's condition satisfied, and validates them
with :func:`dse.trial.config.validate_trial_config`. When every probe fails, the target itself
is wrong (``parameters[i].target``); when only some fail, the offending value is named.

Parameters that switch the structure of the trial (a hardware preset, a device / algorithm /
model / dataset kind) change which paths exist, so each other parameter is also probed against
every value of those *structural* parameters that can be active at the same time: an
unconditional ``hardware.device.dw_min`` beside a ``hardware.preset`` that includes ``ideal``
is rejected with the list of presets for which it is valid, to put in a condition.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dse.errors import SpecError
from dse.spec._parse import canonical, describe, join

if TYPE_CHECKING:
    from dse.spec.parameters import ParameterSpec
    from dse.spec.study import StudySpec

MAX_PROBES_PER_PARAMETER = 16
"""A finite domain with at most this many values is probed value by value."""

_STRUCTURAL_TARGETS = ("hardware.preset", "dataset.name", "model.name", "algorithm.type", "algorithm")
_NO_VALUE = object()


def is_structural(p: ParameterSpec) -> bool:
    """True for a parameter that selects a kind (preset, model, dataset, algorithm, ``*.type``)."""
    return p.type == "categorical" and (p.target in _STRUCTURAL_TARGETS or p.target.endswith(".type"))


def probe_values(p: ParameterSpec) -> list[tuple[str, Any]]:
    """``(spec path suffix, value)`` pairs that stand for the parameter's domain."""
    if p.is_finite and (p.size() or 0) <= MAX_PROBES_PER_PARAMETER:
        if p.type in ("discrete", "categorical"):
            return [(f"values[{i}]", v) for i, v in enumerate(p.values)]
        return [("low" if i == 0 else ("high" if v == p.high else "step"), v)
                for i, v in enumerate(p.grid_values())]
    out = [("low", p.coerce(p.low)), ("high", p.coerce(p.high))] if p.type in ("float", "int") \
        else [(f"values[{i}]", v) for i, v in enumerate(p.values[:MAX_PROBES_PER_PARAMETER])]
    if p.default is not None and all(canonical(p.default) != canonical(v) for _, v in out):
        out.append(("default", p.default))
    return out


def validate_trial(config: dict[str, Any]) -> dict[str, Any]:
    """``dse.trial.config.validate_trial_config`` (imported on first use)."""
    from dse.trial.config import validate_trial_config

    return validate_trial_config(config)


def base_value(base: dict[str, Any], target: str) -> Any:
    """The value the trial config has at ``target`` when only ``base`` is given (defaults filled
    in, hardware fields read from the resolved simulator config), or ``_NO_VALUE``."""
    from dse.trial.config import get_path, parse_trial_config, resolve_hardware
    from simulator.errors import ConfigError

    try:
        if target.startswith("hardware.") and target != "hardware.preset":
            tc = parse_trial_config(base)
            rpu = resolve_hardware(tc.hardware, tc.algorithm)
            value = rpu.get_path(target[len("hardware."):])
            return value.to_dict() if hasattr(value, "to_dict") else value
        return get_path(validate_trial(base), target)
    except (SpecError, ConfigError, KeyError, TypeError):
        return _NO_VALUE


def _assignments(spec: StudySpec, i: int) -> Iterator[tuple[dict[str, Any], str]]:
    """Assignments (defaults, condition of parameter ``i`` satisfied, structural values varied)
    for probing parameter ``i``, each with a text naming the varied structural values."""
    p = spec.parameters[i]
    fixed = _satisfy(spec, i)
    yield fixed, ""
    for j, q in enumerate(spec.parameters):
        if j == i or not is_structural(q):
            continue
        for v in q.values:
            trial = dict(fixed)
            trial[q.name] = v
            trial = spec.complete_params(trial)
            if q.name in trial and p.name in trial:
                yield trial, f" when {q.name} = {describe(v)}"


def _satisfy(spec: StudySpec, i: int) -> dict[str, Any]:
    """Defaults, with the ancestors of parameter ``i`` set so that it is active."""
    chain = []
    cond = spec.parameters[i].condition
    while cond is not None:
        chain.append(cond)
        cond = spec.parameter(cond.parameter).condition
    params = spec.default_params()
    for cond in reversed(chain):
        if not cond.holds(params):
            params[cond.parameter] = cond.values[0]
        params = spec.complete_params(params)
    return params


def _related(target: str, path: str) -> bool:
    """True when an error at ``path`` concerns the value set at ``target``."""
    return any(x == y or x.startswith(y + ".") or x.startswith(y + "[") for x, y in ((path, target), (target, path)))


def _owner(spec: StudySpec, path: str, params: dict[str, Any]) -> int | None:
    """Index of the active parameter whose target the error at ``path`` concerns (the longest)."""
    best = None
    for j, q in enumerate(spec.parameters):
        if q.name in params and _related(q.target, path):
            if best is None or len(q.target) > len(spec.parameters[best].target):
                best = j
    return best


def _error(spec: StudySpec, params: dict[str, Any]) -> SpecError | None:
    try:
        validate_trial(spec.trial_config(params, check=False))
    except SpecError as exc:
        return exc
    return None


def _detail(exc: SpecError) -> str:
    return f"{exc.path}: {exc.reason}" if exc.path else exc.reason


def check_targets(spec: StudySpec) -> None:
    """Raise :class:`SpecError` for a parameter whose target or value the trial config rejects."""
    try:
        validate_trial(dict(spec.base))
    except SpecError as exc:
        raise SpecError(join("base", exc.path) if exc.path else "base", exc.reason) from None
    defaults = spec.default_params()
    exc = _error(spec, defaults)
    if exc is not None:
        k = _owner(spec, exc.path, defaults)
        if k is None:
            raise SpecError("parameters", f"the baseline (every parameter at its default: "
                                          f"{describe(defaults)}) is rejected by the trial config ({_detail(exc)})")
        _explain(spec, k)
        raise _interaction(spec, k, None, defaults, exc)
    for i, p in enumerate(spec.parameters):
        for params, context in _assignments(spec, i):
            for _, value in probe_values(p):
                trial = spec.complete_params({**params, p.name: value})
                exc = _error(spec, trial) if p.name in trial else None
                if exc is None:
                    continue
                k = _owner(spec, exc.path, trial)
                if k is not None and k != i:
                    raise _interaction(spec, k, i, trial, exc)
                if context and not is_structural(p):
                    raise _interaction(spec, i, spec.index(context.split(" when ", 1)[1].split(" = ", 1)[0]),
                                       trial, exc)
                _explain(spec, i)
                raise _interaction(spec, i, None, trial, exc)


def _explain(spec: StudySpec, k: int) -> None:
    """Raise the error for parameter ``k`` alone (its other parameters at their defaults): a wrong
    target when every probe fails and no structural value helps, else the first bad value.
    Returns when ``k``'s probes only fail together with a structural parameter."""
    p = spec.parameters[k]
    params = _satisfy(spec, k)
    probes = probe_values(p)
    failures = []
    for suffix, value in probes:
        trial = spec.complete_params({**params, p.name: value})
        exc = _error(spec, trial)
        if exc is not None and _owner(spec, exc.path, trial) in (k, None):
            failures.append((suffix, value, exc))
    if not failures:
        return
    if len(failures) == len(probes):
        for j, q in enumerate(spec.parameters):
            if j != k and is_structural(q) and _valid_values(spec, k, j):
                return
        raise SpecError(f"parameters[{k}].target", f"{p.target!r} is rejected by the trial config with every "
                                                   f"value tried ({_detail(failures[0][2])})")
    suffix, value, exc = failures[0]
    raise SpecError(f"parameters[{k}].{suffix}", f"{describe(value)} at {p.target!r} is rejected by the trial "
                                                 f"config ({_detail(exc)})")


def _interaction(spec: StudySpec, k: int, i: int | None, params: dict[str, Any], exc: SpecError) -> SpecError:
    """The error for parameter ``k`` failing beside other parameters' values, with a condition that
    would fix it when a structural parameter is involved."""
    p = spec.parameters[k]
    others = {q.name: params[q.name] for q in spec.parameters
              if q.name in params and q.name != p.name and (is_structural(q) or spec.index(q.name) == i)}
    context = ", ".join(f"{n} = {describe(v)}" for n, v in others.items())
    hint = ""
    for name in others:
        q = spec.parameter(name)
        if is_structural(q) and p.condition is None:
            ok = _valid_values(spec, k, spec.index(name))
            if ok:
                hint = f"; make it conditional: condition: {{parameter: {name}, in: [{', '.join(map(str, ok))}]}}"
                break
    value = params.get(p.name)
    return SpecError(f"parameters[{k}].target",
                     f"{p.target!r} = {describe(value)} is rejected by the trial config"
                     + (f" when {context}" if context else "") + f" ({_detail(exc)}){hint}")


def _valid_values(spec: StudySpec, k: int, j: int) -> list[Any]:
    """Values of structural parameter ``j`` under which every probe of parameter ``k`` validates."""
    p, q = spec.parameters[k], spec.parameters[j]
    good = []
    for v in q.values:
        base = spec.complete_params({**_satisfy(spec, k), q.name: v})
        ok = True
        for _, value in probe_values(p):
            trial = spec.complete_params({**base, p.name: value})
            if p.name not in trial or _error(spec, trial) is not None:
                ok = False
                break
        if ok:
            good.append(v)
    return good
