"""Base machinery for simulator configs: small nested dataclasses, validated on construction.

Every config is a ``@dataclass`` that subclasses :class:`Config`. Fields carry a docstring (the
string literal right below the field, read by :func:`field_docs`), are type-checked when the
object is built, and each class adds its own range checks in :meth:`Config.validate` with the
helpers below. A config round-trips through plain dicts (:meth:`Config.to_dict` /
:meth:`Config.from_dict`, JSON-safe) and any field can be set by a dotted path
(:meth:`Config.with_overrides`), which is how the DSE engine sweeps hardware parameters.

Polymorphic fields (a device, a programming-noise model, ...) are annotated with a base class
that calls :meth:`Config.register_kinds`; their dict form carries a ``"type"`` key naming the
concrete class (``{"type": "ConstantStepDevice", "dw_min": 0.001}``).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

from simulator.errors import ConfigError

C = TypeVar("C", bound="Config")

TYPE_KEY = "type"
"""Key that names the concrete class of a polymorphic config in its dict form."""


class Config:
    """Mixin for simulator config dataclasses (subclasses must be ``@dataclass``)."""

    _kinds: ClassVar[dict[str, type[Config]] | None] = None

    # -- construction and validation -------------------------------------------------------
    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(getattr(self, f.name), _hints(type(self))[f.name], f.name))
        self.validate()

    def validate(self) -> None:
        """Check cross-field constraints and ranges; raise :class:`ConfigError` when invalid."""

    # -- polymorphism ----------------------------------------------------------------------
    @classmethod
    def register_kinds(cls, *kinds: type[Config]) -> None:
        """Declare the concrete classes a field annotated with ``cls`` may hold."""
        if cls.__dict__.get("_kinds") is None:
            cls._kinds = {}
        for kind in kinds:
            cls._kinds[kind.__name__] = kind

    @classmethod
    def kinds(cls) -> dict[str, type[Config]]:
        """The registered concrete classes by name (empty for non-polymorphic configs)."""
        return dict(cls.__dict__.get("_kinds") or {})

    # -- dict round trip -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe dict of every field (nested configs as dicts, tuples as lists)."""
        out: dict[str, Any] = {}
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            out[f.name] = _plain(getattr(self, f.name), hints[f.name])
        return out

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any] | None = None, path: str = "") -> C:
        """Build from a dict; unknown keys and invalid values raise with their dotted path."""
        return _coerce(dict(data or {}), cls, path)

    # -- dotted paths ----------------------------------------------------------------------
    def get_path(self, path: str) -> Any:
        """Value of the field at a dotted path (``"device.dw_min"``)."""
        node: Any = self
        for i, part in enumerate(path.split(".")):
            if not isinstance(node, Config) or part not in {f.name for f in dataclasses.fields(node)}:
                done = ".".join(path.split(".")[:i])
                raise ConfigError(path, f"unknown field {part!r}; accepted: {_accepted(node, done)}")
            node = getattr(node, part)
        return node

    def with_overrides(self: C, overrides: Mapping[str, Any]) -> C:
        """A validated copy with fields set by dotted path, e.g. ``{"forward.out_bits": 7}``.

        Setting ``"<field>.type"`` (or the field itself to a class name) switches a polymorphic
        field to another kind with that kind's defaults; the other overrides apply on top, so
        ``{"device.type": "ExpStepDevice", "device.dw_min": 0.002}`` works in one call.
        """
        data = self.to_dict()
        ordered = sorted(overrides.items(), key=lambda kv: (_depth(kv[0]), kv[0]))
        for path, value in ordered:
            _set_path(self, data, path, value)
        return type(self).from_dict(data)


def field_docs(cls: type) -> dict[str, str]:
    """Docstrings of a dataclass's fields (the string literal below each field), by name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        docs.update(_own_field_docs(klass))
    return docs


@functools.cache
def _own_field_docs(klass: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


# -- validation helpers used by the configs' validate() ----------------------------------------
def check_range(
    name: str,
    value: float | int | None,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    allow_none: bool = False,
) -> None:
    """Raise unless ``lo <= value <= hi`` (``<`` for open ends); the message shows the range."""
    if value is None:
        if allow_none:
            return
        raise ConfigError(name, f"got None; accepted: {_range_text(lo, hi, lo_open, hi_open)}")
    bad = (
        isinstance(value, float) and math.isnan(value)
        or (lo is not None and (value <= lo if lo_open else value < lo))
        or (hi is not None and (value >= hi if hi_open else value > hi))
    )
    if bad:
        raise ConfigError(name, f"got {value!r}; accepted: {_range_text(lo, hi, lo_open, hi_open)}")


def check_order(low_name: str, low: float, high_name: str, high: float) -> None:
    """Raise unless ``low <= high``."""
    if low > high:
        raise ConfigError(low_name, f"got {low!r}, which exceeds {high_name} = {high!r}; "
                                    f"accepted: {low_name} <= {high_name}")


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is None and hi is None:
        return "a number"
    if hi is None:
        return f"a number {'>' if lo_open else '>='} {lo}"
    if lo is None:
        return f"a number {'<' if hi_open else '<='} {hi}"
    return f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


# -- internals ---------------------------------------------------------------------------------
@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _accepted(node: Any, done: str) -> str:
    if isinstance(node, Config):
        return ", ".join(f.name for f in dataclasses.fields(node))
    return f"nothing ({done or 'the value'} is not a config)"


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin is tuple:
        return "a list of " + _type_name(typing.get_args(hint)[0])
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and issubclass(hint, Config):
        kinds = hint.kinds()
        return ("a mapping with type one of " + ", ".join(kinds)) if kinds else "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``hint`` (converting dicts to configs)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(path, f"got {value!r}; accepted: {_type_name(hint)}")
    if origin is Literal:
        if value in typing.get_args(hint) and not isinstance(value, bool):
            return value
        raise ConfigError(path, f"got {value!r}; accepted: {_type_name(hint)}")
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"got {value!r}; accepted: {_type_name(hint)}")
        (item,) = [a for a in typing.get_args(hint) if a is not Ellipsis][:1]
        return tuple(_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(hint, type) and issubclass(hint, Config):
        return _coerce_config(value, hint, path)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is bool or hint is str:
        if isinstance(value, hint):
            return value
    elif hint is Any:
        return value
    raise ConfigError(path, f"got {value!r}; accepted: {_type_name(hint)}")


def _coerce_config(value: Any, hint: type[Config], path: str) -> Config:
    kinds = hint.kinds()
    if isinstance(value, hint):
        return value
    if isinstance(value, str) and kinds:
        value = {TYPE_KEY: value}
    if not isinstance(value, Mapping):
        raise ConfigError(path, f"got {value!r}; accepted: {_type_name(hint)}")
    data = dict(value)
    cls: type[Config] = hint
    if kinds:
        name = data.pop(TYPE_KEY, None)
        if name is None:
            if dataclasses.is_dataclass(hint) and not inspect.isabstract(hint) and hint.__name__ in kinds:
                name = hint.__name__
            else:
                raise ConfigError(_join(path, TYPE_KEY), f"missing; accepted: {', '.join(kinds)}")
        if name not in kinds:
            raise ConfigError(_join(path, TYPE_KEY), f"got {name!r}; accepted: {', '.join(kinds)}")
        cls = kinds[name]
    elif TYPE_KEY in data and data[TYPE_KEY] == hint.__name__:
        data.pop(TYPE_KEY)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(_join(path, str(unknown[0])),
                          f"unknown field for {cls.__name__}; accepted: {', '.join(sorted(names))}")
    hints = _hints(cls)
    kwargs = {k: _coerce(v, hints[k], _join(path, k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise exc.prefixed(path) if path else exc from None


def _plain(value: Any, hint: Any) -> Any:
    if isinstance(value, Config):
        out = value.to_dict()
        if _is_polymorphic(hint):
            out = {TYPE_KEY: type(value).__name__, **out}
        return out
    if isinstance(value, tuple):
        return [_plain(v, Any) for v in value]
    return value


def _is_polymorphic(hint: Any) -> bool:
    return bool(_poly_kinds(hint))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _set_path(config: Config, data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node_cfg: Any = config
    node = data
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        last = i == len(parts) - 1
        if part == TYPE_KEY and last and isinstance(node_cfg, Config):
            parent = ".".join(parts[:-1])
            raise ConfigError(here, f"{parent or 'this config'} is not polymorphic; "
                                    f"accepted fields: {_accepted(node_cfg, parent)}")
        if not isinstance(node_cfg, Config) or part not in node:
            raise ConfigError(here, f"unknown field; accepted: {_accepted(node_cfg, '.'.join(parts[:i]))}")
        field_hint = _hints(type(node_cfg))[part]
        child = getattr(node_cfg, part)
        if last:
            node[part] = _plain(value, field_hint) if isinstance(value, Config) else value
            return
        if _is_polymorphic(field_hint) and parts[i + 1] == TYPE_KEY and i + 2 == len(parts):
            node[part] = {TYPE_KEY: value}
            return
        if isinstance(node[part], str) and _is_polymorphic(field_hint):
            node[part] = {TYPE_KEY: node[part]}
        if not isinstance(node[part], dict):
            raise ConfigError(here, f"is {node[part]!r}, not a config; cannot set {'.'.join(parts[i + 1:])}")
        node = node[part]
        node_cfg = child
        kinds = _poly_kinds(field_hint)
        name = node.get(TYPE_KEY, type(child).__name__)
        if kinds and (name != type(child).__name__ or set(node) == {TYPE_KEY}):
            # The kind was set by an earlier override (to another kind, or to the same one, which
            # resets it): resolve the fields against that kind's defaults.
            if name not in kinds:
                raise ConfigError(_join(here, TYPE_KEY), f"got {name!r}; accepted: {', '.join(kinds)}")
            node_cfg = kinds[name]()
            node.update({k: v for k, v in node_cfg.to_dict().items() if k not in node})


def _depth(path: str) -> int:
    """Order of application: a kind switch before the fields of that kind."""
    parts = path.split(".")
    return len(parts) - (1 if parts[-1] == TYPE_KEY else 0)


def _poly_kinds(hint: Any) -> dict[str, type[Config]]:
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    kinds: dict[str, type[Config]] = {}
    for a in args:
        if isinstance(a, type) and issubclass(a, Config):
            kinds.update(a.kinds())
    return kinds
