"""What the cost model reports: :class:`CostReport` (per inference) and :class:`TrainingCost`
(in-situ pulsed training), with their per-layer, per-component breakdowns, plain-dict forms
and text tables.

Units are in the names: energies in pJ per example inside the layers and nJ in the totals,
areas in um^2 inside the layers and mm^2 in the totals, times in ns / us.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["AREA_COMPONENTS", "ENERGY_COMPONENTS", "CostReport", "LayerCost", "TrainingCost", "format_report"]

ENERGY_COMPONENTS = ("array", "adc", "dac", "sample_hold", "shift_add", "accumulate", "digital", "buffer",
                     "interconnect", "static")
"""Energy components: cell reads and bit lines; ADCs (with their column multiplexers); input
drivers and row lines; sample-and-hold; shift-and-add of input cycles and weight slices; digital
partial sums across arrays; digital periphery (noise management, biases, activations, pooling,
batch norm, layers kept digital); buffer traffic; interconnect; static power over the pipeline
interval."""

AREA_COMPONENTS = ("array", "adc", "dac", "sample_hold", "shift_add", "periphery")
"""Area components: cells; ADCs; input drivers; sample-and-hold; shift-and-add; the periphery of
cores, tiles and the chip (registers, buffers, routers, I/O)."""


@dataclass
class LayerCost:
    """One layer's share of an inference."""

    name: str
    """Module name."""
    kind: str
    """``linear`` or ``conv``."""
    analog: bool
    """On analog arrays (else a layer kept digital, priced as digital MACs)."""
    tech: str
    """Technology it is priced with."""
    arrays: int
    """Physical arrays (tiles) it occupies."""
    array_rows: int
    """Rows of one array (the tile's inputs)."""
    array_cols: int
    """Columns of one array (outputs x cells per weight)."""
    vectors: float
    """MVMs per example (a convolution's output positions)."""
    macs: float
    """Multiply-accumulates per example."""
    input_bits: int
    """Input resolution priced."""
    adc_bits: int
    """ADC resolution priced."""
    input_cycles: int
    """Input cycles per MVM (bits / DAC bits; 1 with a multi-bit DAC)."""
    row_groups: int
    """Row groups read one after the other (rows / rows read in parallel)."""
    weight_slices: int
    """Cells per weight along a row (weight bits / cell bits)."""
    conversions: float
    """ADC conversions per example."""
    activity: float
    """Mean input activity used (bit density or drive level)."""
    zero_fraction: float
    """Mean fraction of zero inputs used."""
    bm_repeats: float
    """Mean extra bound-management passes per MVM."""
    latency_ns: float
    """Time per example with all its arrays in parallel."""
    energy_pj: dict[str, float] = field(default_factory=dict)
    """Energy per example by component (pJ)."""
    area_um2: dict[str, float] = field(default_factory=dict)
    """Area by component (um^2)."""

    @property
    def energy_total_pj(self) -> float:
        """Energy per example (pJ)."""
        return sum(self.energy_pj.values())


@dataclass
class CostReport:
    """Energy, latency and area of one inference of a mapped network (see ``docs/cost-model.md``)."""

    energy_per_inference_nj: float
    """Energy per inference at the pipelined throughput, static power included (nJ)."""
    latency_per_inference_us: float
    """Latency of one inference, layer after layer (us)."""
    pipeline_interval_us: float
    """Time between inferences with the layers pipelined: the slowest layer (us)."""
    inferences_per_s: float
    """Pipelined throughput."""
    area_mm2: float
    """Chip area (mm^2)."""
    ops_per_inference: float
    """Operations per inference (one op is half a MAC, as ISAAC and NeuroSim count)."""
    tops: float
    """Throughput in tera-operations per second (pipelined)."""
    tops_per_w: float
    """Energy efficiency (TOPS/W = ops per pJ)."""
    tops_per_mm2: float
    """Area efficiency."""
    power_w: float
    """Power at the pipelined throughput (W)."""
    energy_nj: dict[str, float]
    """Energy per inference by component (nJ)."""
    area_by_component_mm2: dict[str, float]
    """Area by component (mm^2)."""
    layers: list[LayerCost]
    """Per-layer breakdown."""
    arrays: int
    """Physical arrays of the chip."""
    cores: int
    """Cores (array groups) of the chip."""
    tiles: int
    """Tiles (core groups) of the chip."""
    technology: str
    """Technology of the chip-level constants (that of the first analog layer)."""
    activity_source: str
    """``measured`` (on the examples of the measurement) or ``static`` (the technology's values)."""
    notes: list[str] = field(default_factory=list)
    """What the numbers assume, when it is not the obvious (ideal periphery priced lossless, ...)."""

    def metrics(self) -> dict[str, float]:
        """The trial metrics (names carry units)."""
        return {
            "energy_per_inference_nj": self.energy_per_inference_nj,
            "latency_per_inference_us": self.latency_per_inference_us,
            "area_mm2": self.area_mm2,
            "tops_per_w": self.tops_per_w,
            "tops": self.tops,
            "tops_per_mm2": self.tops_per_mm2,
            "inferences_per_s": self.inferences_per_s,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (layers as a list of dicts)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostReport:
        """The report :meth:`to_dict` gave."""
        d = dict(data)
        d["layers"] = [LayerCost(**layer) for layer in d.get("layers", [])]
        return cls(**d)


@dataclass
class TrainingCost:
    """Energy and time of in-situ pulsed training (forward and backward MVMs and the updates)."""

    train_energy_mj: float
    """Total energy of training (mJ)."""
    update_time_s: float
    """Time spent pulsing updates (slots x pulse width, tiles in parallel, layers in sequence)."""
    epochs: list[dict[str, float]]
    """Per epoch: ``samples``, ``device_pulses``, ``line_pulses``, ``transfer_reads``,
    ``energy_mj`` and its parts ``pulse_energy_mj``, ``line_energy_mj``, ``transfer_energy_mj``,
    ``forward_energy_mj``, ``backward_energy_mj``, and ``update_time_s``, ``transfer_time_s``."""
    layers: list[dict[str, Any]]
    """Per layer: ``name``, ``device_pulses``, ``row_pulses``, ``col_pulses``, ``slots``,
    ``vectors``, ``clipped_vectors`` (those whose pulse train saturated), ``transfer_reads``
    (compound devices), ``energy_mj`` (updates and transfers), ``update_time_s`` and
    ``transfer_time_s``, over the whole training."""
    transfer_time_s: float = 0.0
    """Time spent reading the fast arrays of compound devices for their transfers (one MVM per
    read, tiles in parallel, layers in sequence); 0 without compound devices."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.4g}"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def format_report(report: CostReport, training: TrainingCost | None = None) -> str:
    """The per-layer breakdown table and the totals, as text."""
    comps = [c for c in ENERGY_COMPONENTS if c != "static" and any(layer.energy_pj.get(c, 0.0) for layer in report.layers)]
    head = ["layer", "arrays", "MVMs", "in/adc bits", "activity", "latency us", "energy nJ"] + \
        [f"{c} nJ" for c in comps] + ["area mm2"]
    rows = [head]
    for layer in report.layers:
        bits = f"{layer.input_bits}/{layer.adc_bits}" if layer.analog else "digital"
        rows.append([layer.name, str(layer.arrays), _fmt(layer.vectors), bits,
                     _fmt(layer.activity) if layer.analog else "-", _fmt(layer.latency_ns / 1e3),
                     _fmt(layer.energy_total_pj / 1e3)]
                    + [_fmt(layer.energy_pj.get(c, 0.0) / 1e3) for c in comps]
                    + [_fmt(sum(layer.area_um2.values()) / 1e6)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    total_e = report.energy_per_inference_nj
    parts = ", ".join(f"{c} {_fmt(v)} ({100 * v / total_e:.0f}%)" for c, v in report.energy_nj.items()
                      if v > 0 and total_e > 0)
    area_parts = ", ".join(f"{c} {_fmt(v)}" for c, v in report.area_by_component_mm2.items() if v > 0)
    lines += [
        "",
        (f"technology {report.technology}; {_n(report.arrays, 'array')} in {_n(report.cores, 'core')}, "
         f"{_n(report.tiles, 'tile')}; activity {report.activity_source}"),
        f"energy per inference  {_fmt(total_e)} nJ   ({parts})",
        (f"latency per inference {_fmt(report.latency_per_inference_us)} us (layer by layer); "
         f"pipelined: one every {_fmt(report.pipeline_interval_us)} us = {_fmt(report.inferences_per_s)} "
         "inferences/s"),
        f"area                  {_fmt(report.area_mm2)} mm2   ({area_parts})",
        (f"throughput            {_fmt(report.tops)} TOPS, {_fmt(report.tops_per_w)} TOPS/W, "
         f"{_fmt(report.tops_per_mm2)} TOPS/mm2, {_fmt(report.power_w)} W"),
    ]
    if training is not None:
        lines.append(f"training              {_fmt(training.train_energy_mj)} mJ over {len(training.epochs)} epochs, "
                     f"{_fmt(training.update_time_s)} s of update pulses"
                     + (f", {_fmt(training.transfer_time_s)} s of transfer reads" if training.transfer_time_s else ""))
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
