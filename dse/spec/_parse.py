"""Reading plain data into spec dataclasses with errors that name the dotted path of the field."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from dse.errors import SpecError

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-\[\]]*$")
"""Parameter and metric names: a letter or underscore, then letters, digits, ``_ . - [ ]``."""

_MISSING = object()


def join(path: str, key: str | int) -> str:
    """``path`` extended by a key (``a.b``) or an index (``a[2]``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def canonical(value: Any) -> str:
    """A key that identifies a parameter value: numbers compare by value (``1`` and ``1.0`` are the
    same), booleans and strings are distinct from numbers (``true``, ``1`` and ``"1"`` differ)."""
    return json.dumps(_numeric_normal(value), sort_keys=True, separators=(",", ":"))


def _numeric_normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _numeric_normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numeric_normal(v) for v in value]
    return value


def describe(value: Any) -> str:
    """``repr`` of a value, shortened for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Fields:
    """Takes the fields of one mapping in turn; :meth:`done` rejects the keys nobody took."""

    def __init__(self, data: Any, path: str, what: str) -> None:
        if not isinstance(data, Mapping):
            raise SpecError(path, f"got {describe(data)}; accepted: a mapping ({what})")
        for key in data:
            if not isinstance(key, str):
                raise SpecError(path, f"key {describe(key)} is not a string")
        self.data = dict(data)
        self.path = path
        self.accepted: list[str] = []

    def has(self, key: str) -> bool:
        """True when ``key`` is present and not null."""
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` as given (``default`` when absent or null)."""
        self.accepted.append(key)
        value = self.data.get(key, _MISSING)
        return default if value is _MISSING or value is None else value

    def at(self, key: str) -> str:
        """The dotted path of ``key``."""
        return join(self.path, key)

    def string(self, key: str, default: Any = _MISSING, *, choices: tuple[str, ...] | None = None) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        return as_string(value, self.at(key), choices)

    def integer(self, key: str, default: Any = _MISSING, *, lo: int | None = None, hi: int | None = None) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        return as_int(value, self.at(key), lo=lo, hi=hi)

    def number(self, key: str, default: Any = _MISSING, *, lo: float | None = None, lo_open: bool = False,
               hi: float | None = None) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        return as_number(value, self.at(key), lo=lo, lo_open=lo_open, hi=hi)

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, bool):
            raise SpecError(self.at(key), f"got {describe(value)}; accepted: true or false")
        return value

    def _get(self, key: str, default: Any) -> Any:
        self.accepted.append(key)
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                raise SpecError(self.at(key), "missing; this field is required")
            return default
        return value

    def done(self) -> None:
        unknown = [k for k in self.data if k not in self.accepted]
        if unknown:
            raise SpecError(self.at(unknown[0]), f"unknown field; accepted: {', '.join(sorted(set(self.accepted)))}")


def as_string(value: Any, path: str, choices: tuple[str, ...] | None = None) -> str:
    """``value`` if it is a string (one of ``choices`` when given)."""
    if not isinstance(value, str) or not value:
        accepted = f"one of {', '.join(choices)}" if choices else "a non-empty string"
        raise SpecError(path, f"got {describe(value)}; accepted: {accepted}")
    if choices is not None and value not in choices:
        raise SpecError(path, f"got {value!r}; accepted: one of {', '.join(choices)}")
    return value


def as_name(value: Any, path: str, what: str = "name") -> str:
    """A parameter or metric name (see :data:`NAME_RE`)."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise SpecError(path, f"got {describe(value)}; accepted: a {what} made of letters, digits, "
                              "'_', '.', '-', starting with a letter or '_'")
    return value


def as_int(value: Any, path: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int (an integral float is accepted), at least ``lo`` and at most ``hi``."""
    accepted = "an integer" + (f" from {lo} to {hi}" if lo is not None and hi is not None
                               else f" >= {lo}" if lo is not None else f" <= {hi}" if hi is not None else "")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(path, f"got {describe(value)}; accepted: {accepted}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise SpecError(path, f"got {value}; accepted: {accepted}")
    return value


def as_number(value: Any, path: str, *, lo: float | None = None, lo_open: bool = False,
              hi: float | None = None) -> float:
    """``value`` as a finite float, at least (or above, with ``lo_open``) ``lo`` and at most ``hi``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise SpecError(path, f"got {describe(value)}; accepted: a finite number")
    value = float(value)
    low = f"{'>' if lo_open else '>='} {lo:.10g}" if lo is not None else ""
    accepted = "a number " + " and ".join(x for x in (low, f"<= {hi:.10g}" if hi is not None else "") if x)
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise SpecError(path, f"got {value!r}; accepted: {accepted}")
    if hi is not None and value > hi:
        raise SpecError(path, f"got {value!r}; accepted: {accepted}")
    return value


def as_list(value: Any, path: str, what: str) -> list[Any]:
    """``value`` if it is a list or tuple (not a string)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise SpecError(path, f"got {describe(value)}; accepted: a list of {what}")
    return list(value)


def thaw(value: Any) -> Any:
    """A deep, JSON-shaped copy (tuples back to lists)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def check_json(value: Any, path: str) -> None:
    """Raise unless ``value`` is plain JSON data (mappings with string keys, lists, scalars)."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(path, f"got {value!r}; accepted: a finite number")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise SpecError(path, f"key {describe(k)} is not a string")
            check_json(v, join(path, k))
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_json(v, join(path, i))
        return
    raise SpecError(path, f"got {describe(value)} ({type(value).__name__}); accepted: plain data "
                          "(mappings, lists, strings, numbers, booleans, null)")
