"""Technology files: the constants of a technology, each with a unit and a source.

A technology file is YAML (the subset of :mod:`simulator.cost.yamlish`)::

    name: rram22
    description: 22 nm 1T1R ReRAM crossbars with NeuroSim's periphery
    inherits: null                      # or another technology (a shipped name or a path)
    constants:
      c_wire: {value: 0.2, unit: fF/um, source: "NeuroSim V1.4 SubArray.cpp (capCol)"}
      adc_model: {value: neurosim_sar, source: "..."}

``constants`` may hold exactly the fields of :class:`~simulator.configs.cost.CostConfig` (except
``tech``). A numeric constant needs a ``unit`` of the same dimension as the field's canonical
unit and is converted to it; categorical and boolean ones have none. After inheritance every
constant must be present. Errors (:class:`~simulator.errors.ConfigError`) name the file and the
key: an unknown key, a missing or wrong unit, a negative or non-finite value.

:func:`resolve` turns the ``cost`` section of an RPU config into a :class:`Technology`: the file's
constants with the section's non-``None`` fields on top (their source is ``"override"``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.configs.cost import CostConfig, check_value, constant_names, constant_unit
from simulator.configs.techs import TECH_DIR, accepted_technologies, locate, shipped_technologies
from simulator.cost.units import convert
from simulator.cost.yamlish import YamlError, loads
from simulator.errors import ConfigError

__all__ = ["TECH_DIR", "Technology", "load_technology", "resolve", "shipped_technologies"]

NULLABLE = frozenset({"e_cell_read"})
"""Constants a technology may leave null (the cost model derives them)."""

_TOP_KEYS = ("name", "description", "inherits", "constants")
_MAX_DEPTH = 8


@dataclass(frozen=True)
class Technology:
    """A complete set of constants (canonical units) and where each came from."""

    name: str
    """Name of the technology (the file's ``name``)."""
    path: str
    """The file it was read from."""
    description: str
    """What it describes."""
    values: Mapping[str, Any]
    """Every constant of :func:`~simulator.configs.cost.constant_names`, in canonical units."""
    sources: Mapping[str, str]
    """The source of each constant (``"override"`` for values set in the cost section)."""

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def with_values(self, overrides: Mapping[str, Any]) -> Technology:
        """A copy with some constants replaced (their source becomes ``"override"``)."""
        values, sources = dict(self.values), dict(self.sources)
        for name, value in overrides.items():
            values[name] = value
            sources[name] = "override"
        return dataclasses.replace(self, values=values, sources=sources)

    def table(self) -> list[dict[str, Any]]:
        """One row per constant: name, value, canonical unit, source."""
        return [{"name": n, "value": self.values[n], "unit": constant_unit(n), "source": self.sources[n]}
                for n in constant_names()]


def _accepted() -> str:
    return accepted_technologies()


_CACHE: dict[tuple[str, float], Technology] = {}


def load_technology(tech: str) -> Technology:
    """The complete technology ``tech`` (a shipped name or a path), read once per file version."""
    path = locate(tech)
    key = (str(path), path.stat().st_mtime)
    cached = _CACHE.get(key)
    if cached is None:
        values, sources, doc = _read(path, 0)
        missing = [n for n in constant_names() if n not in values]
        if missing:
            raise ConfigError("tech", f"{path}: incomplete technology, missing {', '.join(missing)} "
                                      "(set them or inherit from a complete technology)")
        cached = Technology(name=str(doc.get("name") or path.stem), path=str(path),
                            description=str(doc.get("description") or ""),
                            values=values, sources=sources)
        _CACHE[key] = cached
    return cached


_RESOLVED: dict[tuple[Any, ...], Technology] = {}
_CONSTANTS = tuple(constant_names())


def resolve(cost: CostConfig) -> Technology:
    """The technology a cost section prices with: its file plus the section's overrides."""
    tech = load_technology(cost.tech)
    overrides = {}
    for name in _CONSTANTS:
        value = getattr(cost, name)
        if value is not None:
            overrides[name] = value
    if not overrides:
        return tech
    key = (id(tech), tuple(sorted(overrides.items())))
    hit = _RESOLVED.get(key)
    if hit is None or hit.path != tech.path:
        if len(_RESOLVED) > 256:
            _RESOLVED.clear()
        hit = _RESOLVED[key] = tech.with_values(overrides)
    return hit


def _read(path: Path, depth: int) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    if depth > _MAX_DEPTH:
        raise ConfigError("tech", f"{path}: 'inherits' nests deeper than {_MAX_DEPTH} files (a cycle?)")
    try:
        doc = loads(path.read_text())
    except YamlError as exc:
        raise ConfigError("tech", f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError("tech", f"{path}: cannot be read ({exc.strerror})") from None
    for key in doc:
        if key not in _TOP_KEYS:
            raise ConfigError("tech", f"{path}: unknown key {key!r}; accepted: {', '.join(_TOP_KEYS)}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    base = doc.get("inherits")
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError("tech", f"{path}: inherits: got {base!r}; accepted: a technology name or path")
        target = TECH_DIR / f"{base}.yaml" if (TECH_DIR / f"{base}.yaml").is_file() else path.parent / base
        if not target.is_file():
            raise ConfigError("tech", f"{path}: inherits {base!r}, which is neither a shipped technology "
                                      f"nor a file next to it; accepted: {_accepted()}")
        values, sources, _ = _read(target, depth + 1)
    constants = doc.get("constants") or {}
    if not isinstance(constants, Mapping):
        raise ConfigError("tech", f"{path}: constants: accepted: a mapping of constant names")
    names = set(constant_names())
    for name, entry in constants.items():
        where = f"{path}: constants.{name}"
        if name not in names:
            raise ConfigError(f"cost.{name}", f"{where}: unknown constant; accepted: "
                                              f"{', '.join(constant_names())}")
        values[name], sources[name] = _constant(name, entry, where)
    return values, sources, doc


def _constant(name: str, entry: Any, where: str) -> tuple[Any, str]:
    if not isinstance(entry, Mapping) or "value" not in entry:
        raise ConfigError(f"cost.{name}", f"{where}: got {entry!r}; accepted: "
                                          "{value: ..., unit: ..., source: ...}")
    unknown = sorted(set(entry) - {"value", "unit", "source"})
    if unknown:
        raise ConfigError(f"cost.{name}", f"{where}: unknown key {unknown[0]!r}; accepted: value, unit, source")
    source = entry.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(f"cost.{name}", f"{where}: missing source; every constant says where it comes from")
    value = entry["value"]
    canonical = constant_unit(name)
    if value is None:
        if name not in NULLABLE:
            raise ConfigError(f"cost.{name}", f"{where}: got null; only {', '.join(sorted(NULLABLE))} "
                                              "may be null (derived from other constants)")
        return None, source
    if canonical in ("", "count", "bit") or isinstance(value, (bool, str)):
        if "unit" in entry and canonical in ("", ) and entry["unit"] not in (None, ""):
            raise ConfigError(f"cost.{name}", f"{where}: a {canonical or 'categorical'} constant has no unit")
        if canonical in ("count", "bit") and isinstance(value, (int, float)) and not isinstance(value, bool):
            unit = entry.get("unit", canonical)
            if unit != canonical:
                raise ConfigError(f"cost.{name}", f"{where}: unit {unit!r}; accepted: {canonical!r}")
        checked = _field_check(name, value, where)
        return checked, source
    if "unit" not in entry or entry["unit"] in (None, ""):
        raise ConfigError(f"cost.{name}", f"{where}: missing unit; accepted: a unit of the same kind as "
                                          f"{canonical!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(f"cost.{name}", f"{where}: got {value!r}; accepted: a finite number")
    try:
        converted = convert(value, str(entry["unit"]), canonical)
    except ValueError as exc:
        raise ConfigError(f"cost.{name}", f"{where}: {exc}") from None
    return _field_check(name, converted, where), source


def _field_check(name: str, value: Any, where: str) -> Any:
    """The value as the CostConfig field would accept it (type and range)."""
    try:
        cfg = CostConfig.from_dict({name: value})
    except ConfigError as exc:
        raise ConfigError(f"cost.{name}", f"{where}: {exc.reason}") from None
    checked = getattr(cfg, name)
    if not isinstance(checked, (bool, str)):
        check_value(name, checked)
    return checked
