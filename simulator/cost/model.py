"""The cost equations: energy, latency and area of a mapped network (``docs/cost-model.md``).

:func:`estimate_cost` prices one inference of a model whose analog layers are mapped on tiles:
every tile of a layer is one physical array; the layer's RPU config gives the converters' bits,
noise management and bound management, its ``cost`` section the technology
(:mod:`simulator.cost.technology`); the activity comes from a measurement
(:func:`~simulator.cost.activity.measure_activity`) or, without one, from the technology's static
values. :func:`mvm_cost` is the price of one MVM through one array, also used for the backward
MVMs of training (:mod:`simulator.cost.training`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from simulator.configs.io import IOConfig
from simulator.cost.activity import LayerActivity
from simulator.cost.adc import adc_area_um2, adc_energy_pj, adc_time_ns
from simulator.cost.report import AREA_COMPONENTS, ENERGY_COMPONENTS, CostReport, LayerCost
from simulator.cost.technology import Technology, load_technology, resolve
from simulator.cost.trace import LayerTrace, ModelTrace, trace
from simulator.mapping import TileArray

__all__ = ["Design", "MvmCost", "design", "estimate_cost", "line_capacitance_ff", "mvm_cost", "tile_activity",
           "weight_density"]

MAX_ADC_BITS = 24
"""The lossless ADC resolution is capped here (as the simulator caps its converters)."""


@dataclass
class MvmCost:
    """One MVM through one array: energy by component (pJ), time (ns) and events."""

    energy_pj: dict[str, float]
    """Energy by component."""
    time_ns: float
    """Duration (input cycles x row groups x cycle time x bound-management passes)."""
    conversions: float
    """ADC conversions."""
    cycles: int
    """Input cycles."""
    groups: int
    """Row groups read one after the other."""


@dataclass
class Design:
    """What one array of a layer is, for one MVM direction."""

    input_bits: int
    adc_bits: int
    cycles: int
    bits_per_cycle: int
    slices: int
    pair: int
    rows_parallel: int
    lossless: bool


def design(tech: Technology, io: IOConfig, rows: int) -> Design:
    """Bits, cycles and slices of an array with ``rows`` physical input lines under ``io``."""
    coded_in = not io.is_perfect and io.inp_bits is not None
    b_in = int(io.inp_bits) if coded_in else int(tech["input_bits"])
    dac = int(tech["dac_bits"])
    cycles = math.ceil(b_in / dac) if dac > 0 else 1
    per_cycle = min(dac, b_in) if dac > 0 else b_in
    wb, cb = int(tech["weight_bits"]), int(tech["cell_bits"])
    slices = math.ceil(wb / cb) if wb > 0 else 1
    pair = 2 if tech["differential"] else 1
    pr = int(tech["rows_parallel"]) or rows
    pr = min(pr, rows)
    lossless = False
    if not io.is_perfect and io.out_bits is not None:
        b_adc = int(io.out_bits)
    elif int(tech["adc_bits"]) > 0:
        b_adc = int(tech["adc_bits"])
    else:
        w = cb if wb > 0 else int(tech["act_bits"])
        b_adc = min(MAX_ADC_BITS, math.ceil(math.log2(max(pr, 1))) + per_cycle + w - 1)
        lossless = True
    return Design(b_in, b_adc, cycles, per_cycle, slices, pair, pr, lossless)


def mvm_cost(tech: Technology, d: Design, *, rows: int, outputs: int, array_rows: int,
             array_cols: int, activity: float, zero_fraction: float, weight_density: float,
             bm_repeats: float = 0.0, noise_management: bool = False,
             output_scaling: bool = False, transposed: bool = False) -> MvmCost:
    """One MVM through one array that uses ``rows`` of its ``array_rows`` input lines and drives
    ``outputs`` logical outputs (``outputs x slices`` ADC columns, ``x pair`` physical columns of
    its ``array_cols``).

    ``activity``: bit density (bit-serial input) or drive level (multi-bit DAC); ``zero_fraction``:
    inputs coded 0; ``weight_density``: mean fraction of the cells' conductance range;
    ``bm_repeats``: extra bound-management passes per MVM; ``noise_management`` and
    ``output_scaling`` add the digital rescaling of the outputs (and the input maximum).
    ``transposed``: the backward MVM of training, which drives the array's columns and reads its
    rows (``rows`` are then the driven columns, ``outputs`` the rows read; the line geometry is
    swapped).
    """
    t = tech.values
    m = 1.0 + bm_repeats
    groups = math.ceil(rows / d.rows_parallel) if rows else 0
    adc_cols = outputs * d.slices
    phys_cols = adc_cols * d.pair
    bit_serial = int(t["dac_bits"]) > 0
    drive = activity if bit_serial else 1.0 - zero_fraction  # fraction of rows driven per cycle
    cell_act = activity  # bit density, or the drive level of a pulse-width / amplitude DAC
    g_on = 1.0 / t["r_on"]
    g_cell = g_on / t["on_off"] + (g_on - g_on / t["on_off"]) * weight_density
    rows_per_group = rows / groups if groups else 0.0
    g_col = rows_per_group * cell_act * g_cell * d.pair
    conversions = d.cycles * groups * adc_cols
    mux = t["e_col_mux"] if t["cols_per_adc"] > 1 else 0.0
    e = dict.fromkeys(ENERGY_COMPONENTS, 0.0)
    e["adc"] = conversions * (adc_energy_pj(t, d.adc_bits, g_col) + mux)
    if t["sample_hold"]:
        e["sample_hold"] = conversions * t["e_sample_hold"]
    c_row, c_col = line_capacitance_ff(tech, array_rows, array_cols)
    if transposed:
        c_row, c_col = c_col, c_row
    e_drive = t["e_dac_1b"] * 2.0 ** (d.bits_per_cycle - 1) + c_row * t["v_row"] ** 2 * 1e-3  # pJ
    e["dac"] = d.cycles * rows * drive * e_drive
    e["array"] = d.cycles * groups * phys_cols * c_col * t["v_read"] ** 2 * 1e-3
    if t["adc_model"] != "neurosim_sar":
        e_cell = t["e_cell_read"]
        if e_cell is None:
            e_cell = t["v_read"] ** 2 * g_cell * t["t_read"] * 1e-9 * 1e12
        e["array"] += d.cycles * rows * cell_act * phys_cols * e_cell
    if d.cycles * d.slices * groups > 1:
        e["shift_add"] = conversions * t["e_shift_add"]
    for key in ("adc", "sample_hold", "dac", "array", "shift_add"):
        e[key] *= m
    if noise_management:
        e["digital"] += rows * t["e_compare"] + outputs * t["e_digital_mult"]
    if output_scaling:
        e["digital"] += outputs * t["e_digital_mult"]
    serve = min(int(t["cols_per_adc"]), max(adc_cols, 1))
    conv_time = serve * adc_time_ns(t, d.adc_bits)
    cycle = max(t["t_read"], conv_time) if t["sample_hold"] else t["t_read"] + conv_time
    return MvmCost(e, d.cycles * groups * cycle * m, conversions * m, d.cycles, groups)


def line_capacitance_ff(tech: Technology, array_rows: int, array_cols: int) -> tuple[float, float]:
    """(row line, column line) capacitance of an array (fF): a row line crosses the columns
    (wire and access gates), a column line crosses the rows (wire and drains)."""
    t = tech
    row = array_cols * (t["cell_width"] * t["c_wire"] + t["c_gate_cell"])
    col = array_rows * (t["cell_height"] * t["c_wire"] + t["c_drain_cell"])
    return row, col


def compound_arrays(device: Any) -> int:
    """Crossbars per tile a device model needs: 2 for a compound (fast and slow device), else 1."""
    return 2 if getattr(device, "is_compound", False) else 1


def array_area(tech: Technology, d: Design, array_rows: int, array_outputs: int) -> dict[str, float]:
    """Area of one physical array and its converters (um^2)."""
    t = tech
    adc_cols = array_outputs * d.slices
    a = dict.fromkeys(AREA_COMPONENTS, 0.0)
    a["array"] = array_rows * adc_cols * d.pair * t["a_cell"]
    a["adc"] = math.ceil(adc_cols / int(t["cols_per_adc"])) * adc_area_um2(t.values, d.adc_bits)
    a["dac"] = array_rows * t["a_dac_1b"] * 2.0 ** (d.bits_per_cycle - 1)
    if t["sample_hold"]:
        a["sample_hold"] = adc_cols * t["a_sample_hold"]
    if d.cycles * d.slices * math.ceil(array_rows / d.rows_parallel) > 1:
        a["shift_add"] = t["a_shift_add"]
    return a


_DENSITY_CHUNK = 1 << 20
"""Weights per chunk of tiles when :func:`weight_density` reads a layer."""


def weight_density(array: TileArray, tech: Technology) -> list[float]:
    """Per tile, the mean fraction of the cells' conductance range the weights use: ``|w| /
    max|w|`` for analog weights, the density of 1 bits of the weight codes when sliced. Cached
    on the array until its weights change."""
    import torch

    wb = int(tech["weight_bits"])
    key = (array.weight._version, array._token, wb)
    cached = getattr(array, "_cost_density", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    with torch.no_grad():
        w = array.stacked().detach()  # padding devices hold zero weights
        count = [float(t.in_size * t.out_size) for t in array.tiles]
        # Tiles go in chunks of about a million weights: one full-size temporary per layer costs
        # more in fresh memory pages than the arithmetic itself.
        chunk = max(1, _DENSITY_CHUNK // max(1, w.shape[1] * w.shape[2]))
        sums = torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)
        levels = 2 ** (wb - 1) - 1 if wb > 0 else 0
        lut = _popcount_table(w.device) if wb > 0 else None
        for i in range(0, w.shape[0], chunk):
            mag = w[i:i + chunk].abs()
            w_max = mag.amax((1, 2)).clamp_(min=1e-30)
            if lut is None:
                sums[i:i + chunk] = mag.sum((1, 2)).to(torch.float64) / w_max.to(torch.float64)
            else:
                q = (mag / w_max.view(-1, 1, 1) * levels).round_().to(torch.int64)
                for shift in range(0, wb - 1, 16):  # 16 magnitude bits per table lookup
                    sums[i:i + chunk] += lut[(q >> shift) & 0xFFFF].sum((1, 2), dtype=torch.float64)
        if lut is None:
            density = [v / c for v, c in zip(sums.tolist(), count)]
        else:
            density = [v / (c * max(wb - 1, 1)) for v, c in zip(sums.tolist(), count)]
    values = [min(1.0, max(0.0, float(v))) for v in density]
    array.__dict__["_cost_density"] = (key, values)
    return values


_POPCOUNT: dict[str, Any] = {}


def _popcount_table(device: Any) -> Any:
    """Number of 1 bits of every 16-bit value (int32), on ``device``."""
    import torch

    key = str(device)
    if key not in _POPCOUNT:
        v = torch.arange(1 << 16, dtype=torch.int32)
        counts = torch.zeros_like(v)
        for k in range(16):
            counts += (v >> k) & 1
        _POPCOUNT[key] = counts.to(device)
    return _POPCOUNT[key]


def tile_activity(tech: Technology, activity: LayerActivity | None, n_tiles: int,
                  bit_serial: bool) -> list[tuple[float, float, float]]:
    """(activity, zero fraction, bound-management repeats) of each tile: measured, or the
    technology's static values."""
    if activity is None:
        return [(float(tech["activity"]), float(tech["zero_fraction"]), 0.0)] * n_tiles
    act = activity.bit_density if bit_serial else activity.level
    return [(act[i], activity.zero_fraction[i], activity.bm_repeats[i]) for i in range(n_tiles)]


def estimate_cost(model: nn.Module, input_shape: tuple[int, ...],
                  activity: Mapping[str, LayerActivity] | None = None, *,
                  model_trace: ModelTrace | None = None) -> CostReport:
    """Energy, latency and area of one inference of ``model`` on examples of ``input_shape``.

    ``activity``: measured per analog layer (:func:`~simulator.cost.activity.measure_activity`);
    layers without a measurement use the technology's static ``activity`` / ``zero_fraction``.
    ``model_trace``: a :func:`~simulator.cost.trace.trace` of the model, when already taken.
    """
    tr = model_trace or trace(model, input_shape)
    layers: list[LayerCost] = []
    notes: list[str] = []
    chip_tech: Technology | None = None
    arrays = cores = 0
    leak_mw = 0.0
    for lt in tr.layers:
        if lt.analog:
            array: TileArray = lt.module.array
            tech = resolve(array.rpu.cost)
            chip_tech = chip_tech or tech
            layer = _analog_layer(lt, array, tech, (activity or {}).get(lt.name), notes)
            arrays += array.n_tiles
            cores += math.ceil(array.n_tiles / int(tech["arrays_per_core"]))
            leak_mw += array.n_tiles * tech["p_leak_array"]
        else:
            layer = None
        layers.append(layer)  # type: ignore[arg-type]
    chip = chip_tech or load_technology("rram22")
    for i, lt in enumerate(tr.layers):
        if layers[i] is None:
            layers[i] = _digital_layer(lt, chip)
    tiles = math.ceil(cores / int(chip["cores_per_tile"])) if cores else 0
    _interconnect(layers, tr.layers, chip)
    digital_ops_pj = (tr.ops.compares * chip["e_compare"] + tr.ops.nonlinear * chip["e_activation"]
                      + tr.ops.macs * chip["e_digital_mac"])
    digital_ops_ns = ((tr.ops.compares + tr.ops.nonlinear + tr.ops.macs)
                      / (int(chip["digital_macs_per_cycle"]) * chip["clock"]))
    latency_ns = sum(layer.latency_ns for layer in layers) + digital_ops_ns
    interval_ns = max([layer.latency_ns for layer in layers] + [digital_ops_ns, 1e-9])
    static_mw = (leak_mw + cores * chip["p_static_core"] + tiles * chip["p_static_tile"]
                 + (chip["p_static_chip"] if layers else 0.0))
    zeta = float(chip["post_layout_factor"])
    energy = dict.fromkeys(ENERGY_COMPONENTS, 0.0)
    for layer in layers:
        for k, v in layer.energy_pj.items():
            energy[k] += v
    energy["digital"] += digital_ops_pj
    energy["static"] += static_mw * 1e-3 * interval_ns * 1e-9 * 1e12  # W x s -> pJ
    energy_nj = {k: v * zeta / 1e3 for k, v in energy.items()}
    total_nj = sum(energy_nj.values())
    area = dict.fromkeys(AREA_COMPONENTS, 0.0)
    for layer in layers:
        for k, v in layer.area_um2.items():
            area[k] += v
    area["periphery"] += (cores * chip["a_core_periphery"] + tiles * chip["a_tile_periphery"]
                          + (chip["a_chip_periphery"] if arrays else 0.0))
    area_mm2 = {k: v / 1e6 for k, v in area.items()}
    total_mm2 = sum(area_mm2.values())
    ops = 2.0 * sum(layer.macs for layer in layers)
    interval_s = interval_ns * 1e-9
    tops = ops / interval_s / 1e12
    return CostReport(
        energy_per_inference_nj=total_nj,
        latency_per_inference_us=latency_ns / 1e3,
        pipeline_interval_us=interval_ns / 1e3,
        inferences_per_s=1.0 / interval_s,
        area_mm2=total_mm2,
        ops_per_inference=ops,
        tops=tops,
        tops_per_w=ops / (total_nj * 1e3) if total_nj > 0 else math.inf,
        tops_per_mm2=tops / total_mm2 if total_mm2 > 0 else math.inf,
        power_w=total_nj * 1e-9 / interval_s,
        energy_nj=energy_nj,
        area_by_component_mm2=area_mm2,
        layers=layers,
        arrays=arrays, cores=cores, tiles=tiles,
        technology=chip.name,
        activity_source="measured" if activity else "static",
        notes=sorted(set(notes)),
    )


def _interconnect(layers: list[LayerCost], traces: list[LayerTrace], chip: Technology) -> None:
    """Price the activations that cross the interconnect: layers take cores (and tiles) in
    order; a layer's outputs travel over the network when it spans more than one tile, when the
    next layer starts on another tile, or when either runs on the digital unit."""
    cpt = int(chip["cores_per_tile"])
    spans: list[tuple[int, int] | None] = []
    cursor = 0
    for layer in layers:
        if not layer.analog:
            spans.append(None)
            continue
        tech = load_technology(layer.tech) if layer.tech != chip.name else chip
        n = math.ceil(layer.arrays / int(tech["arrays_per_core"]))
        spans.append((cursor // cpt, (cursor + n - 1) // cpt))
        cursor += n
    for i, (layer, lt) in enumerate(zip(layers, traces)):
        if i + 1 == len(layers):
            break  # the network's outputs leave through the chip's I/O
        here, nxt = spans[i], spans[i + 1]
        if here is not None and nxt is not None and here[0] == here[1] == nxt[0]:
            continue
        layer.energy_pj["interconnect"] += (lt.vectors * lt.out_features * int(chip["act_bits"])
                                            * chip["noc_hops"] * chip["e_noc_bit"])


def _analog_layer(lt: LayerTrace, array: TileArray, tech: Technology, activity: LayerActivity | None,
                  notes: list[str]) -> LayerCost:
    rpu = array.rpu
    fwd = rpu.forward
    d = design(tech, fwd, array.tile_in)
    if d.lossless:
        notes.append(f"{lt.name}: the forward periphery has no ADC; priced with a lossless "
                     f"{d.adc_bits}-bit ADC (log2 rows + input bits + cell bits - 1)")
    if fwd.is_perfect or fwd.inp_bits is None:
        notes.append(f"{lt.name}: the forward periphery has no DAC; priced with {d.input_bits}-bit inputs")
    bit_serial = int(tech["dac_bits"]) > 0
    acts = tile_activity(tech, activity, array.n_tiles, bit_serial)
    densities = weight_density(array, tech)
    nm = not fwd.is_perfect and fwd.noise_management != "none"
    scaling = rpu.mapping.weight_scaling_omega is not None or rpu.noise.compensation != "none"
    energy = dict.fromkeys(ENERGY_COMPONENTS, 0.0)
    time_ns = conversions = 0.0
    for i, tile in enumerate(array.tiles):
        act, zero, bm = acts[i]
        c = mvm_cost(tech, d, rows=tile.in_size, outputs=tile.out_size, array_rows=array.tile_in,
                     array_cols=array.tile_out * d.slices * d.pair, activity=act, zero_fraction=zero,
                     weight_density=densities[i], bm_repeats=bm, noise_management=nm,
                     output_scaling=scaling)
        for k, v in c.energy_pj.items():
            energy[k] += v * lt.vectors
        conversions += c.conversions * lt.vectors
        time_ns = max(time_ns, c.time_ns)
    out = lt.out_features
    if array.n_row > 1:
        energy["accumulate"] += lt.vectors * (array.n_row - 1) * out * tech["e_accum_add"]
    if getattr(lt.module, "bias", None) is not None:
        energy["digital"] += lt.vectors * out * tech["e_digital_add"]
    act_bits = int(tech["act_bits"])
    energy["buffer"] += lt.vectors * (lt.in_features + out) * act_bits * tech["e_buffer_bit"]
    area = {k: v * array.n_tiles for k, v in array_area(tech, d, array.tile_in, array.tile_out).items()}
    # A compound device (Tiki-Taka family) holds its fast and slow conductances in two crossbars
    # of the same size on one periphery: twice the cells, the converters once.
    area["array"] *= compound_arrays(array.rpu.device)
    n = array.n_tiles
    return LayerCost(
        name=lt.name, kind=lt.kind, analog=True, tech=tech.name, arrays=n, array_rows=array.tile_in,
        array_cols=array.tile_out * d.slices * d.pair, vectors=lt.vectors, macs=lt.macs,
        input_bits=d.input_bits, adc_bits=d.adc_bits, input_cycles=d.cycles,
        row_groups=math.ceil(array.tile_in / d.rows_parallel), weight_slices=d.slices,
        conversions=conversions, activity=sum(a[0] for a in acts) / n,
        zero_fraction=sum(a[1] for a in acts) / n, bm_repeats=sum(a[2] for a in acts) / n,
        latency_ns=time_ns * lt.vectors, energy_pj=energy, area_um2=area)


def _digital_layer(lt: LayerTrace, tech: Technology) -> LayerCost:
    energy = dict.fromkeys(ENERGY_COMPONENTS, 0.0)
    energy["digital"] = lt.macs * tech["e_digital_mac"]
    act_bits = int(tech["act_bits"])
    energy["buffer"] = lt.vectors * (lt.in_features + lt.out_features) * act_bits * tech["e_buffer_bit"]
    time_ns = lt.macs / (int(tech["digital_macs_per_cycle"]) * tech["clock"])
    return LayerCost(
        name=lt.name, kind=lt.kind, analog=False, tech=tech.name, arrays=0, array_rows=0, array_cols=0,
        vectors=lt.vectors, macs=lt.macs, input_bits=0, adc_bits=0, input_cycles=0, row_groups=0,
        weight_slices=0, conversions=0.0, activity=0.0, zero_fraction=0.0, bm_repeats=0.0,
        latency_ns=time_ns, energy_pj=energy, area_um2=dict.fromkeys(AREA_COMPONENTS, 0.0))
