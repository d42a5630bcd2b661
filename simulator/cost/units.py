"""Units of technology constants: parsing and conversion to the canonical units of the fields.

A technology file states every numeric constant with its unit (``{value: 0.2, unit: fF/um}``);
:func:`convert` turns it into the canonical unit of the :class:`~simulator.configs.cost.CostConfig`
field, or raises :class:`ValueError` when the dimensions differ (``pJ`` given for a time).
"""

from __future__ import annotations

__all__ = ["UNITS", "convert", "dimension"]

_PREFIX = {"a": 1e-18, "f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0,
           "k": 1e3, "M": 1e6, "G": 1e9}


def _family(base: str, dim: str, prefixes: str) -> dict[str, tuple[str, float]]:
    return {p + base: (dim, _PREFIX[p]) for p in prefixes.split(",")}


UNITS: dict[str, tuple[str, float]] = {
    **_family("J", "energy", "a,f,p,n,u,m,"),
    **_family("s", "time", "f,p,n,u,m,"),
    **_family("W", "power", "n,u,m,,k"),
    **_family("F", "capacitance", "a,f,p,n,u,"),
    **_family("V", "voltage", "m,"),
    **_family("Hz", "frequency", ",k,M,G"),
    **_family("ohm", "resistance", ",k,M,G"),
    "m^2": ("area", 1.0), "mm^2": ("area", 1e-6), "um^2": ("area", 1e-12), "nm^2": ("area", 1e-18),
    "m": ("length", 1.0), "mm": ("length", 1e-3), "um": ("length", 1e-6), "nm": ("length", 1e-9),
    "fF/um": ("capacitance/length", 1e-15 / 1e-6), "F/m": ("capacitance/length", 1.0),
    "aF/um": ("capacitance/length", 1e-18 / 1e-6),
    "1": ("dimensionless", 1.0), "%": ("dimensionless", 0.01),
    "bit": ("bits", 1.0), "count": ("count", 1.0),
}
"""Accepted unit names -> (dimension, factor to the SI unit)."""


def dimension(unit: str) -> str:
    """The dimension of ``unit`` (``ValueError`` for an unknown unit)."""
    try:
        return UNITS[unit][0]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}; accepted: {', '.join(UNITS)}") from None


def convert(value: float, unit: str, to: str) -> float:
    """``value`` given in ``unit`` expressed in ``to`` (both in :data:`UNITS`, same dimension)."""
    dim_from, dim_to = dimension(unit), dimension(to)
    if dim_from != dim_to:
        raise ValueError(f"unit {unit!r} is a {dim_from}, but this constant is a {dim_to} "
                         f"(canonical unit {to!r})")
    return float(value) * UNITS[unit][1] / UNITS[to][1]
