"""ISAAC-CE (Shafiee et al., ISCA 2016) priced by the cost model with the ``isaac32`` technology.

The chip is expressed as a network and a technology file: 168 linear layers, each filling one
ISAAC tile (12 IMAs x 8 arrays of 128 x 128 two-bit cells): 768 inputs x 256 outputs of 16-bit
weights, mapped on 6 x 16 tiles of 128 rows x 16 weights (8 cells each); 16-bit inputs through
1-bit DACs, one 8-bit ADC per array, no noise or bound management (ISAAC has none). Table I is
peak power, so the technology's static activity is 1 (every input bit driven). Prints ISAAC's
published figure beside ours and the error, one JSON line per figure.

    .venv/bin/python benchmarks/reproduce/cost_isaac.py
"""

from __future__ import annotations

import json
import sys
import time

import torch
from torch import nn

PUBLISHED = {  # ISAAC Table I and Table IV (ISAAC-CE), section VIII-A
    "power_w": (65.8, 0.01, "rel"),
    "area_mm2": (85.4, 0.01, "rel"),
    "gops_per_w": (627.5, 0.01, "rel"),
    "gops_per_s_mm2": (478.95, 0.02, "rel"),
    "adc_share_of_tile_power_pct": (58.0, 1.0, "abs"),
}
TILES, IMAS, ARRAYS = 168, 12, 8


def isaac_chip() -> nn.Module:
    from simulator import AnalogLinear
    from simulator.configs import IOConfig, RPUConfig, perfect_io

    rpu = RPUConfig(
        forward=IOConfig(inp_bits=16, out_bits=8, out_bound=1.0, out_noise=0.0,
                         noise_management="none", bound_management="none"),
        backward=perfect_io(),
    ).with_overrides({"update.mode": "none", "mapping.max_input_size": 128,
                      "mapping.max_output_size": 16, "cost.tech": "isaac32"})
    arrays_per_tile = IMAS * ARRAYS  # 96 = 6 row tiles x 16 column tiles
    layers = [AnalogLinear(6 * 128, 16 * 16, bias=False, rpu_config=rpu, seed=i, init_weights=False)
              for i in range(TILES)]
    assert all(layer.array.n_tiles == arrays_per_tile for layer in layers)
    return nn.ModuleList(layers)


class Chip(nn.Module):
    """The 168 layers side by side, each fed its own slice of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = isaac_chip()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = x.split(768, dim=-1)
        return torch.cat([layer(p) for layer, p in zip(self.layers, parts)], dim=-1)


def main() -> int:
    from simulator.cost import estimate_cost, load_technology

    start = time.perf_counter()
    chip = Chip()
    built = time.perf_counter() - start
    report = estimate_cost(chip, (TILES * 768,))
    tech = load_technology("isaac32")
    ht_nj = tech["p_static_chip"] * 1e-3 * report.pipeline_interval_us * 1e-6 * 1e9
    tile_nj = report.energy_per_inference_nj - ht_nj
    ours = {
        "power_w": report.power_w,
        "area_mm2": report.area_mm2,
        "gops_per_w": report.tops_per_w * 1e3,
        "gops_per_s_mm2": report.tops_per_mm2 * 1e3,
        "adc_share_of_tile_power_pct": 100.0 * report.energy_nj["adc"] / tile_nj,
    }
    ok = True
    for name, (published, tol, kind) in PUBLISHED.items():
        value = ours[name]
        error = (value - published) / published if kind == "rel" else value - published
        passed = abs(error) <= tol
        ok &= passed
        print(json.dumps({"bench": "cost_isaac", "figure": name, "published": published, "ours": round(value, 4),
                          "error": round(error, 5), "error_kind": "relative" if kind == "rel" else "points",
                          "tolerance": tol, "pass": passed}))
    print(json.dumps({"bench": "cost_isaac", "figure": "layout", "arrays": report.arrays, "cores": report.cores,
                      "tiles": report.tiles, "tops": round(report.tops, 3),
                      "pipeline_interval_us": report.pipeline_interval_us,
                      "energy_per_inference_uj": report.energy_per_inference_nj / 1e3,
                      "build_s": round(built, 2)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
