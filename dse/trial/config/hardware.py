"""The hardware section of a trial config: a simulator preset plus ``RPUConfig`` overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dse.trial.config.algorithms import AlgorithmConfig, HASGDAlgorithm, HWAAlgorithm
from simulator._config import TYPE_KEY
from simulator.errors import ConfigError

# -- hardware section ----------------------------------------------------------------------------
DEFAULT_PRESET = "ideal"
"""Preset used when the hardware section is omitted or names none."""

PRESET_KEY = "preset"


def normalize_hardware(hardware: Any) -> dict[str, Any]:
    """The hardware section in canonical form: ``{"preset": name, <nested overrides>}``.

    Accepts ``None`` (the default preset), a preset name, or a mapping whose non-``preset`` keys
    are ``RPUConfig`` paths, nested or dotted (``device.dw_min``); raises :class:`ConfigError`
    with the ``hardware.*`` path of a malformed entry.
    """
    if hardware is None:
        return {PRESET_KEY: DEFAULT_PRESET}
    if isinstance(hardware, str):
        return {PRESET_KEY: hardware}
    if not isinstance(hardware, Mapping):
        raise ConfigError("hardware", f"got {hardware!r}; accepted: a preset name or a mapping "
                                      "{preset: NAME, <RPUConfig path>: value, ...}")
    preset = hardware.get(PRESET_KEY, DEFAULT_PRESET)
    if not isinstance(preset, str):
        raise ConfigError("hardware.preset", f"got {preset!r}; accepted: a preset name (a string)")
    out: dict[str, Any] = {PRESET_KEY: preset}
    for path, value in flatten_overrides({k: v for k, v in hardware.items() if k != PRESET_KEY}).items():
        _nest_into(out, path, value)
    return out


def flatten_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Nested / dotted hardware overrides as ``{"device.dw_min": value, ...}`` (leaves only).

    A mapping value is descended into; the same path given twice (nested and dotted) is an error.
    """
    flat: dict[str, Any] = {}
    _flatten_into(flat, overrides, "")
    return flat


def _flatten_into(flat: dict[str, Any], overrides: Mapping[str, Any], prefix: str) -> None:
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"hardware.{prefix}{key}", "hardware keys must be non-empty strings")
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if not value:
                raise ConfigError(f"hardware.{path}", "got an empty mapping; accepted: field overrides")
            _flatten_into(flat, value, f"{path}.")
        elif path in flat:
            raise ConfigError(f"hardware.{path}", f"given twice ({flat[path]!r} and {value!r})")
        else:
            flat[path] = list(value) if isinstance(value, tuple) else value


def _nest_into(root: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = root
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str):  # a polymorphic field named by kind, then refined
            child = node[part] = {TYPE_KEY: child}
        elif not isinstance(child, dict):
            raise ConfigError("hardware." + ".".join(parts[: i + 1]),
                              f"is {child!r}, not a config; cannot set {'.'.join(parts[i + 1:])}")
        node = child
    leaf = parts[-1]
    if leaf in node and node[leaf] != value:
        raise ConfigError(f"hardware.{path}", f"given twice ({node[leaf]!r} and {value!r})")
    if isinstance(node.get(leaf), dict) and isinstance(value, str):
        node[leaf][TYPE_KEY] = value
    else:
        node[leaf] = value


def hardware_overrides(hardware: Mapping[str, Any]) -> dict[str, Any]:
    """The dotted ``RPUConfig`` overrides of a (normalized) hardware section."""
    return flatten_overrides({k: v for k, v in hardware.items() if k != PRESET_KEY})


def algorithm_overrides(algorithm: AlgorithmConfig | None) -> dict[str, Any]:
    """``RPUConfig`` overrides an algorithm imposes (floating-point updates for hwa / ha_sgd)."""
    if isinstance(algorithm, (HWAAlgorithm, HASGDAlgorithm)):
        return {"update.mode": "none"}
    return {}


def resolve_hardware(hardware: Any, algorithm: AlgorithmConfig | None = None) -> Any:
    """The simulator ``RPUConfig`` of a hardware section (torch-free).

    Raises :class:`ConfigError` with the ``hardware.*`` path of an unknown preset, an unknown
    field or an invalid value.
    """
    from simulator.configs import get_preset  # torch-free

    hw = normalize_hardware(hardware)
    try:
        rpu = get_preset(hw[PRESET_KEY])
    except ConfigError as exc:
        raise ConfigError("hardware.preset", exc.reason) from None
    try:
        rpu = rpu.with_overrides(hardware_overrides(hw))
    except ConfigError as exc:
        raise exc.prefixed("hardware") from None
    try:
        from simulator.cost.technology import resolve as resolve_technology  # torch-free

        resolve_technology(rpu.cost)  # the technology file is complete and valid
    except ConfigError as exc:
        raise exc.prefixed("hardware") if exc.path.startswith("cost") else ConfigError(
            "hardware.cost.tech", exc.reason) from None
    extra = algorithm_overrides(algorithm)
    if extra:
        try:
            rpu = rpu.with_overrides(extra)
        except ConfigError as exc:
            raise ConfigError("algorithm.type", f"{algorithm.kind} needs {extra} on this hardware, "  # type: ignore[union-attr]
                                                f"which is invalid: {exc}") from None
    return rpu
