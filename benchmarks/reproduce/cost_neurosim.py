"""DNN+NeuroSim V1.4's Table VII (VGG-8 on CIFAR-10 at 22 nm, RRAM) priced by the cost model.

NeuroSim V1.4's manual, section 11, Table VII: VGG-8 (NeuroSim's: 128-128-256-256-512-512
convolutions, 8192-1024-10 fully connected), 8-bit weights and activations, 1T1R RRAM with one
bit per cell (on/off 17), 22 nm, 128 x 128 subarrays, a 4-bit ADC per 8 columns, bit-serial
inputs, 32 or 64 rows read in parallel; it reports 11.25 TOPS/W (32 rows) and 19.88 TOPS/W (64
rows), with its post-layout factor zeta = 1.22 applied. Here the same mapping is the ``rram22``
technology with those choices as overrides, and the input activity is measured by running the
analog VGG-8 through the simulator: CIFAR-10 is not among the datasets on this machine, so the
input is synthetic (smooth random CIFAR-shaped images: white noise low-pass filtered by an 8x8
box, per-channel, in [0, 1]) and the network is untrained (torch's default initialization). The
activity of a trained network on real images differs; NeuroSim's own published numbers move by
about +-20% with it. Prints one JSON line per figure: published, ours, error, tolerance.

    .venv/bin/python benchmarks/reproduce/cost_neurosim.py [--images 32]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

PUBLISHED = {32: {"tops_per_w": 11.25, "tops": 6.25, "area_mm2": 381.90},
             64: {"tops_per_w": 19.88, "tops": 8.16, "area_mm2": 378.06}}
TOL_TOPS_PER_W = 0.30
TOL_RATIO = 0.15


class NeuroSimVGG8(nn.Module):
    """NeuroSim's VGG-8 for CIFAR-10 (its NetWork_VGG8.csv)."""

    def __init__(self) -> None:
        super().__init__()
        ch = [3, 128, 128, 256, 256, 512, 512]
        self.convs = nn.ModuleList(nn.Conv2d(ch[i], ch[i + 1], 3, padding=1) for i in range(6))
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(512 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = self.relu(conv(x))
            if i % 2 == 1:
                x = self.pool(x)
        return self.fc2(self.relu(self.fc1(x.flatten(1))))


def synthetic_images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, 3, 32 + 7, 32 + 7, generator=g)
    smooth = F.avg_pool2d(noise, 8, stride=1)
    lo = smooth.amin((2, 3), keepdim=True)
    hi = smooth.amax((2, 3), keepdim=True)
    return (smooth - lo) / (hi - lo).clamp(min=1e-6)


def rpu(rows_parallel: int):
    from simulator.configs import IOConfig, RPUConfig, perfect_io

    return RPUConfig(
        forward=IOConfig(inp_bits=8, out_bits=4, out_bound=20.0, out_noise=0.0,
                         noise_management="abs_max", bound_management="none"),
        backward=perfect_io(),
    ).with_overrides({
        "update.mode": "none", "mapping.max_input_size": 128, "mapping.max_output_size": 16,
        "cost.tech": "rram22", "cost.weight_bits": 8, "cost.cell_bits": 1, "cost.differential": False,
        "cost.dac_bits": 1, "cost.rows_parallel": rows_parallel, "cost.cols_per_adc": 8,
        "cost.post_layout_factor": 1.22,
    })


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=32, help="synthetic images the activity is measured on")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from simulator import convert_to_analog
    from simulator.cost import estimate_cost, measure_activity

    torch.manual_seed(0)
    net = NeuroSimVGG8().eval()
    images = synthetic_images(args.images)
    results = {}
    for pr in (32, 64):
        model = convert_to_analog(net, rpu(pr), seed=0).eval()
        start = time.perf_counter()
        with torch.no_grad(), measure_activity(model) as meter:
            for chunk in images.split(8):
                model(chunk)
        activity = meter.result()
        measured_s = time.perf_counter() - start
        report = estimate_cost(model, (3, 32, 32), activity)
        results[pr] = report
        conv_act = [layer.activity for layer in report.layers if layer.analog]
        for figure in ("tops_per_w", "tops", "area_mm2"):
            published = PUBLISHED[pr][figure]
            ours = getattr(report, figure)
            error = (ours - published) / published
            line = {"bench": "cost_neurosim", "rows_parallel": pr, "figure": figure, "published": published,
                    "ours": round(ours, 4), "error": round(error, 4)}
            if figure == "tops_per_w":
                line.update(tolerance=TOL_TOPS_PER_W, passed=abs(error) <= TOL_TOPS_PER_W)
            else:
                line.update(informational=True)
            print(json.dumps(line))
        print(json.dumps({"bench": "cost_neurosim", "rows_parallel": pr, "figure": "details",
                          "energy_per_image_uj": report.energy_per_inference_nj / 1e3,
                          "ops_per_image": report.ops_per_inference,
                          "energy_share": {k: round(v / report.energy_per_inference_nj, 4)
                                           for k, v in report.energy_nj.items() if v},
                          "input_bit_density_by_layer": [round(a, 4) for a in conv_act],
                          "activity_from": f"{args.images} synthetic CIFAR-shaped images (CIFAR-10 absent)",
                          "measure_s": round(measured_s, 1)}))
    ratio = results[64].tops_per_w / results[32].tops_per_w
    published_ratio = PUBLISHED[64]["tops_per_w"] / PUBLISHED[32]["tops_per_w"]
    error = (ratio - published_ratio) / published_ratio
    ok = abs(error) <= TOL_RATIO and all(
        abs(results[pr].tops_per_w - PUBLISHED[pr]["tops_per_w"]) / PUBLISHED[pr]["tops_per_w"] <= TOL_TOPS_PER_W
        for pr in (32, 64))
    print(json.dumps({"bench": "cost_neurosim", "figure": "tops_per_w_ratio_64_to_32", "published": round(published_ratio, 4),
                      "ours": round(ratio, 4), "error": round(error, 4), "tolerance": TOL_RATIO,
                      "passed": abs(error) <= TOL_RATIO}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
