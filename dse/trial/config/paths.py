"""Reading and setting values at dotted paths of a plain trial-config dict."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from dse.errors import SpecError
from dse.trial.config.hardware import PRESET_KEY, normalize_hardware
from simulator._config import TYPE_KEY
from simulator.errors import ConfigError

_SEGMENT = re.compile(r"^([^.\[\]]+)((?:\[\d+\])*)$")


def _split_path(path: str) -> list[str | int]:
    if not isinstance(path, str) or not path:
        raise SpecError(str(path), "a path must be a non-empty dotted string such as training.lr")
    parts: list[str | int] = []
    for segment in path.split("."):
        m = _SEGMENT.match(segment)
        if not m:
            raise SpecError(path, f"malformed path segment {segment!r}; accepted: name or name[index]")
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return parts


def set_path(config: Mapping[str, Any] | None, path: str, value: Any) -> dict[str, Any]:
    """A copy of ``config`` with ``value`` at the dotted ``path`` (intermediate mappings created).

    ``model.hidden[1]`` indexes a list (an index one past the end appends); a section given as a
    string (``algorithm: ha_sgd``, a device kind) becomes ``{type: ...}`` before a field below it
    is set (``{preset: ...}`` for ``hardware``); the hardware section is nested first, so
    ``hardware.device.dw_min`` meets a ``device.dw_min`` key given in dotted form. Values are not
    validated here: call :func:`validate_trial_config` on the result.
    """
    root = dict(copy.deepcopy(dict(config or {})))
    parts = _split_path(path)
    if parts[0] == "hardware" and len(parts) > 1:
        try:
            root["hardware"] = normalize_hardware(root.get("hardware"))
        except ConfigError as exc:
            raise SpecError(exc.path, exc.reason) from None
    node: Any = root
    for i, part in enumerate(parts[:-1]):
        here = _join_parts(parts[: i + 1])
        nxt = parts[i + 1]
        child = node[part] if _has(node, part) else None
        if child is None:
            child = [] if isinstance(nxt, int) else {}
        elif isinstance(child, str) and not isinstance(nxt, int):
            child = {PRESET_KEY if here == "hardware" else TYPE_KEY: child}
        elif isinstance(child, tuple):
            child = list(child)
        elif isinstance(child, Mapping):
            child = dict(child)
        if isinstance(nxt, int) and not isinstance(child, list):
            raise SpecError(here, f"is {child!r}, not a list; cannot index it with [{nxt}]")
        if not isinstance(nxt, int) and not isinstance(child, dict):
            raise SpecError(here, f"is {child!r}, not a mapping; cannot set {nxt!r} in it")
        _put(node, part, child, here)
        node = child
    _put(node, parts[-1], value, path)
    return root


def get_path(config: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a (normalized) config; :class:`SpecError` if absent."""
    node: Any = config
    parts = _split_path(path)
    for i, part in enumerate(parts):
        if not _has(node, part):
            raise SpecError(_join_parts(parts[: i + 1]), "no such key in the trial config")
        node = node[part]
    return node


def _has(node: Any, part: str | int) -> bool:
    if isinstance(part, int):
        return isinstance(node, (list, tuple)) and 0 <= part < len(node)
    return isinstance(node, Mapping) and part in node


def _put(node: Any, part: str | int, value: Any, here: str) -> None:
    if isinstance(part, int):
        if part < len(node):
            node[part] = value
        elif part == len(node):
            node.append(value)
        else:
            raise SpecError(here, f"index {part} is past the end of a list of {len(node)} (set the whole "
                                  "list, or set paths on a normalized config where defaults are filled in)")
    else:
        node[part] = value


def _join_parts(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out
