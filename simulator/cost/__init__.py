"""The hardware cost model: energy, latency and area of a mapped network, and the cost of
in-situ pulsed training (``docs/cost-model.md``).

The technology side (:mod:`~simulator.cost.technology`, :mod:`~simulator.cost.units`,
:mod:`~simulator.cost.adc`) is torch-free; the rest is imported on first access::

    from simulator.cost import estimate_cost, measure_activity

    with measure_activity(model) as meter:
        evaluate(model, test_batches)            # any forward passes through the analog model
    report = estimate_cost(model, (1, 28, 28), meter.result())
    print(report.energy_per_inference_nj, report.tops_per_w)
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str | tuple[str, str]] = {
    "CostReport": "simulator.cost.report",
    "LayerCost": "simulator.cost.report",
    "TrainingCost": "simulator.cost.report",
    "format_report": "simulator.cost.report",
    "Technology": "simulator.cost.technology",
    "load_technology": "simulator.cost.technology",
    "resolve": "simulator.cost.technology",
    "shipped_technologies": "simulator.cost.technology",
    "estimate_cost": "simulator.cost.model",
    "measure_activity": "simulator.cost.activity",
    "LayerActivity": "simulator.cost.activity",
    "trace_model": ("simulator.cost.trace", "trace"),
    "PulseLog": "simulator.cost.training",
    "training_cost": "simulator.cost.training",
}

__all__ = [
    "CostReport",
    "LayerActivity",
    "LayerCost",
    "PulseLog",
    "Technology",
    "TrainingCost",
    "estimate_cost",
    "format_report",
    "load_technology",
    "measure_activity",
    "resolve",
    "shipped_technologies",
    "trace_model",
    "training_cost",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'simulator.cost' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
