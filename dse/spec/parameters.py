"""Study parameters: a typed domain, a target path in the trial config and an optional condition.

Four types::

    {type: float, low: 1e-3, high: 0.5, log: true}       # continuous (optionally on a step grid)
    {type: int, low: 16, high: 256, step: 16}            # inclusive bounds; high - low multiple of step
    {type: discrete, values: [0.001, 0.002, 0.005]}      # an ordered set of numbers
    {type: categorical, values: [relu, tanh, [64, 32]]}  # unordered choices, any plain data

A parameter is *finite* when its values can be listed (everything but a float without ``step``);
grid and coordinate search need finite parameters.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dse.errors import SpecError
from dse.spec._parse import Fields, as_list, as_name, canonical, check_json, describe, join

ParamType = Literal["float", "int", "discrete", "categorical"]
PARAM_TYPES: tuple[str, ...] = ("float", "int", "discrete", "categorical")

_GRID_RTOL = 1e-9
"""Relative tolerance of ``(high - low) / step`` being a whole number for float grids."""


def _round(x: float) -> float:
    """A float grid point without accumulated binary noise (12 significant digits)."""
    return float(f"{x:.12g}")


@dataclass(frozen=True)
class ConditionSpec:
    """Makes a parameter active only for some values of another (earlier) parameter."""

    parameter: str
    """Name of the parameter this one depends on; it must be declared earlier in ``parameters``
    and be ``int``, ``discrete`` or ``categorical``."""
    values: tuple[Any, ...]
    """The parameter is active when that parameter is active and takes one of these values."""

    def holds(self, params: Mapping[str, Any]) -> bool:
        """True when the condition is met by the (partial) assignment ``params``."""
        if self.parameter not in params:
            return False
        key = canonical(params[self.parameter])
        return any(canonical(v) == key for v in self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "in": copy.deepcopy(list(self.values))}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> ConditionSpec:
        f = Fields(data, path, "{parameter: NAME, in: [values]} or {parameter: NAME, equals: value}")
        parameter = as_name(f.raw("parameter"), f.at("parameter"), "parameter name")
        has_in, has_eq = "in" in f.data, "equals" in f.data
        if has_in == has_eq:
            raise SpecError(path, "give exactly one of 'in' (a list of values) or 'equals' (one value)")
        if has_in:
            values = as_list(f.raw("in"), f.at("in"), "values of the other parameter")
            if not values:
                raise SpecError(f.at("in"), "got an empty list; accepted: at least one value")
        else:
            f.accepted.append("equals")
            values = [f.data["equals"]]
        f.accepted += ["in", "equals"]
        f.done()
        check_json(values, f.at("in"))
        return cls(parameter=parameter, values=tuple(copy.deepcopy(values)))


@dataclass(frozen=True)
class ParameterSpec:
    """One dimension of the design space and where its value goes in the trial config."""

    name: str
    """Name in results (``param.<name>``), conditions and searcher options; defaults to the
    target path."""
    target: str
    """Dotted path in the trial config that receives the value (``training.lr``,
    ``hardware.device.dw_min``, ``model.hidden``, ``model.hidden[0]``, ``hardware.preset``)."""
    type: ParamType
    """``float``, ``int``, ``discrete`` (ordered numbers) or ``categorical`` (unordered choices)."""
    low: float | int | None = None
    """Lower bound, inclusive (``float`` and ``int``)."""
    high: float | int | None = None
    """Upper bound, inclusive (``float`` and ``int``)."""
    step: float | int | None = None
    """Grid spacing from ``low``: optional for ``float`` (makes it finite), 1 by default for
    ``int``; ``high - low`` must be a multiple of it."""
    log: bool = False
    """Search on a log scale (``float`` and ``int``; needs ``low > 0``; not with a step other
    than 1)."""
    values: tuple[Any, ...] = ()
    """The choices of ``discrete`` (numbers) and ``categorical`` (any plain data) parameters."""
    default: Any = None
    """Value used when the parameter is not being varied (coordinate search's baseline);
    ``None`` takes the trial config's own value at the target when it is in the domain, else
    the first value (``values[0]`` or ``low``)."""
    condition: ConditionSpec | None = None
    """When set, the parameter is only active (sampled and applied) when the condition holds."""

    # -- domain -----------------------------------------------------------------------------------
    @property
    def is_finite(self) -> bool:
        """True when the values can be listed (all but a float without ``step``)."""
        return not (self.type == "float" and self.step is None)

    def grid_values(self) -> tuple[Any, ...]:
        """Every value of a finite parameter, in order (``low`` upwards, or as declared)."""
        if self.type in ("discrete", "categorical"):
            return tuple(copy.deepcopy(self.values))
        if self.type == "int":
            return tuple(range(int(self.low), int(self.high) + 1, int(self.step or 1)))  # type: ignore[arg-type]
        if self.step is None:
            raise SpecError(self.name, "a float without step has no finite list of values")
        n = round((self.high - self.low) / self.step)  # type: ignore[operator]
        return tuple(_round(self.low + k * self.step) for k in range(n + 1))  # type: ignore[operator]

    def size(self) -> int | None:
        """Number of values of a finite parameter; None for a continuous float."""
        if not self.is_finite:
            return None
        if self.type in ("discrete", "categorical"):
            return len(self.values)
        return round((self.high - self.low) / (self.step or 1)) + 1  # type: ignore[operator]

    def contains(self, value: Any) -> bool:
        """True when ``value`` is in the parameter's domain (bounds, step, values)."""
        if self.type in ("discrete", "categorical"):
            key = canonical(value)
            return any(canonical(v) == key for v in self.values)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.type == "int":
            if isinstance(value, float) and not value.is_integer():
                return False
            return self.low <= value <= self.high and (int(value) - self.low) % (self.step or 1) == 0  # type: ignore[operator]
        span = self.high - self.low  # type: ignore[operator]
        tol = _GRID_RTOL * max(1.0, abs(span))
        if not (self.low - tol <= value <= self.high + tol):  # type: ignore[operator]
            return False
        if self.step is None:
            return True
        k = (value - self.low) / self.step  # type: ignore[operator]
        return abs(k - round(k)) * self.step <= tol

    def coerce(self, value: Any) -> Any:
        """``value`` in the parameter's own type (ints for ``int``, floats for ``float``)."""
        if self.type == "int":
            return int(value)
        if self.type == "float":
            return float(value)
        return copy.deepcopy(value)

    def first_value(self) -> Any:
        """``values[0]`` or ``low`` (the fallback default)."""
        return copy.deepcopy(self.values[0]) if self.values else self.coerce(self.low)

    # -- dict form --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "target": self.target, "type": self.type}
        if self.type in ("float", "int"):
            out.update(low=self.low, high=self.high)
            if self.step is not None and not (self.type == "int" and self.step == 1):
                out["step"] = self.step
            if self.log:
                out["log"] = True
        else:
            out["values"] = copy.deepcopy(list(self.values))
        if self.default is not None:
            out["default"] = copy.deepcopy(self.default)
        if self.condition is not None:
            out["condition"] = self.condition.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, path: str) -> ParameterSpec:
        f = Fields(data, path, "a parameter: {target, type, ...}")
        target = f.string("target")
        name = as_name(f.raw("name", target), f.at("name"), "parameter name")
        kind = f.string("type", choices=PARAM_TYPES)
        condition = ConditionSpec.from_dict(f.raw("condition"), f.at("condition")) if f.has("condition") else None
        default = f.raw("default")
        if kind in ("float", "int"):
            spec = cls._numeric(f, kind, name, target, default, condition)
        else:
            spec = cls._choices(f, kind, name, target, default, condition)
        f.done()
        if spec.default is not None and not spec.contains(spec.default):
            raise SpecError(f.at("default"), f"got {describe(spec.default)}, which is not in the domain "
                                             f"of {name!r}; accepted: {spec.describe_domain()}")
        return spec

    @classmethod
    def _numeric(cls, f: Fields, kind: str, name: str, target: str, default: Any,
                 condition: ConditionSpec | None) -> ParameterSpec:
        integer = kind == "int"
        read = f.integer if integer else f.number
        low, high = read("low"), read("high")
        if low >= high:
            raise SpecError(f.at("low"), f"got {low!r}, not below high = {high!r}; accepted: low < high "
                                         "(a fixed value belongs in base)")
        log = f.boolean("log", False)
        if integer:
            step = f.integer("step", 1, lo=1)
        else:
            step = f.number("step", None, lo=0.0, lo_open=True)
        if log and low <= 0:
            raise SpecError(f.at("low"), f"got {low!r} with log: true; accepted: low > 0 on a log scale")
        if log and step not in (None, 1):
            raise SpecError(f.at("step"), f"got {step!r} with log: true; accepted: no step on a log scale")
        if step is not None:
            n = (high - low) / step
            if abs(n - round(n)) > _GRID_RTOL * max(1.0, abs(n)):
                raise SpecError(f.at("step"), f"got {step!r}, but high - low = {high - low!r} is not a "
                                              "multiple of it; accepted: a step that divides high - low")
        if default is not None and not integer and isinstance(default, int) and not isinstance(default, bool):
            default = float(default)
        if f.has("values"):
            raise SpecError(f.at("values"), f"not used by type {kind}; accepted: low, high, step, log")
        f.accepted.append("values")
        return cls(name=name, target=target, type=kind, low=low, high=high, step=step, log=log,  # type: ignore[arg-type]
                   default=default, condition=condition)

    @classmethod
    def _choices(cls, f: Fields, kind: str, name: str, target: str, default: Any,
                 condition: ConditionSpec | None) -> ParameterSpec:
        values = as_list(f.raw("values"), f.at("values"), "values")
        if not values:
            raise SpecError(f.at("values"), "got an empty list; accepted: at least one value")
        seen: dict[str, int] = {}
        for i, v in enumerate(values):
            vpath = join(f.at("values"), i)
            if kind == "discrete" and (isinstance(v, bool) or not isinstance(v, (int, float))
                                       or not math.isfinite(v)):
                raise SpecError(vpath, f"got {describe(v)}; accepted: a finite number (use categorical "
                                       "for other values)")
            check_json(v, vpath)
            key = canonical(v)
            if key in seen:
                raise SpecError(vpath, f"got {describe(v)} again (also values[{seen[key]}]); accepted: "
                                       "distinct values")
            seen[key] = i
        for key in ("low", "high", "step", "log"):
            if f.has(key):
                raise SpecError(f.at(key), f"not used by type {kind}; accepted: values")
            f.accepted.append(key)
        return cls(name=name, target=target, type=kind, values=tuple(copy.deepcopy(values)),  # type: ignore[arg-type]
                   default=copy.deepcopy(default), condition=condition)

    def describe_domain(self) -> str:
        """The domain in words, for error messages."""
        if self.type in ("discrete", "categorical"):
            return "one of " + ", ".join(describe(v) for v in self.values)
        text = f"{self.type} in [{self.low}, {self.high}]"
        if self.step is not None and not (self.type == "int" and self.step == 1):
            text += f" in steps of {self.step}"
        return text + (" (log scale)" if self.log else "")
