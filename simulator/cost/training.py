"""The cost of in-situ pulsed training: :class:`PulseLog` and :func:`training_cost`.

A training epoch on the chip costs

- the forward MVMs of every training example, priced as inference MVMs (with the activity
  measured on the test set), and the backward MVMs that carry the errors (every analog layer
  but the first, whose input needs no gradient), priced through the backward periphery with
  the array's columns driven and its rows read;
- the update pulses: every device pulse the update fired (counted in the exact mode, expected
  in the aggregate mode; :mod:`simulator.pulsed.counters`) times the technology's ``e_pulse``,
  every line pulse charging its row or column line (``C_line v_write^2``), and half-selected
  cells (``e_half_select`` per cell on a pulsed line, 0 with a selector);
- update time: the slots of the pulse trains times ``t_pulse``, all devices of a tile (and all
  tiles of a layer) in parallel, the layers one after the other;
- the transfers of compound devices (Tiki-Taka family): every transfer read is one MVM of a
  one-hot input through the fast array, priced with the transfer-read periphery
  (``transfer_forward``: its input and ADC bits; one line driven, every output converted); the
  buffered kinds (TTv2, c-TTv2, AGAD) then accumulate the read vector into their digital buffer
  ``H``: per element one digital add and a read and a write of an ``act_bits`` word of buffer
  memory. The writes into the slow array are pulses and counted with the update pulses. Reads
  take one MVM time each, one after the other within a tile, the tiles in parallel
  (``transfer_time_s``).

Layers whose tiles are not pulsed (floating-point updates, hardware-aware training) are trained
off-chip: :func:`training_cost` returns ``None`` when no layer is pulsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from simulator.cost.activity import LayerActivity
from simulator.cost.model import design, estimate_cost, line_capacitance_ff, mvm_cost, tile_activity
from simulator.cost.report import TrainingCost
from simulator.cost.technology import resolve
from simulator.cost.trace import ModelTrace, trace
from simulator.layers import analog_layers
from simulator.pulsed.counters import COUNTS

__all__ = ["PulseLog", "training_cost"]

_PJ_PER_MJ = 1e9


@dataclass
class PulseLog:
    """The pulses each pulsed analog layer fired in each epoch (start it before training)."""

    model: nn.Module
    """The model being trained."""
    epochs: list[dict[str, Any]] = field(default_factory=list)
    """Per epoch: ``samples`` and, per layer name, the totals of that epoch."""

    def __post_init__(self) -> None:
        self._last: dict[str, dict[str, float]] = {}
        self._reads: dict[str, list[int]] = {}
        for name, layer in analog_layers(self.model):
            if layer.array.is_pulsed:
                self._last[name] = layer.array.pulse_totals()
                self._reads[name] = layer.array.transfer_reads()

    @property
    def pulsed(self) -> bool:
        """Whether any analog layer is trained by pulses."""
        return bool(self._last)

    def end_epoch(self, samples: int) -> dict[str, Any]:
        """Close an epoch of ``samples`` training examples; returns its per-layer pulses."""
        entry: dict[str, Any] = {"samples": int(samples), "layers": {}}
        for name, layer in analog_layers(self.model):
            if name not in self._last:
                continue
            now = layer.array.pulse_totals()
            reads = layer.array.transfer_reads()
            per_tile = [r - r0 for r, r0 in zip(reads, self._reads[name])]
            entry["layers"][name] = {**{k: now[k] - self._last[name][k] for k in COUNTS},
                                     "transfer_reads": float(sum(per_tile)), "transfer_reads_per_tile": per_tile}
            self._last[name], self._reads[name] = now, reads
        self.epochs.append(entry)
        return entry


def training_cost(model: nn.Module, input_shape: tuple[int, ...], log: PulseLog,
                  activity: dict[str, LayerActivity] | None = None, *,
                  model_trace: ModelTrace | None = None) -> TrainingCost | None:
    """The cost of the training recorded in ``log`` (None when no layer was trained by pulses)."""
    if not log.pulsed:
        return None
    tr = model_trace or trace(model, input_shape)
    inference = estimate_cost(model, input_shape, activity, model_trace=tr)
    forward_pj = sum(sum(v for k, v in layer.energy_pj.items() if k != "static") for layer in inference.layers)
    chip_zeta = _zeta(model)
    forward_pj *= chip_zeta
    backward_pj = 0.0
    modules = dict(analog_layers(model))
    for index, lt in enumerate(tr.layers):
        if not lt.analog or index == 0:
            continue
        backward_pj += _backward_pj(modules[lt.name].array, lt.vectors, (activity or {}).get(lt.name))
    backward_pj *= chip_zeta
    epochs = []
    per_layer: dict[str, dict[str, float]] = {}
    total_pj = total_time = 0.0
    total_transfer_time = 0.0
    layer_keys = (*COUNTS, "transfer_reads", "energy_mj", "update_time_s", "transfer_time_s")
    for entry in log.epochs:
        pulse_pj = line_pj = transfer_pj = time_s = transfer_s = 0.0
        device = lines = reads = 0.0
        for name, counts in entry["layers"].items():
            array = modules[name].array
            p, ln, t = _update_cost(array, counts)
            tr_pj, tr_s = _transfer_cost(array, counts.get("transfer_reads_per_tile", ()))
            pulse_pj += p
            line_pj += ln
            transfer_pj += tr_pj
            time_s += t
            transfer_s += tr_s
            device += counts["device_pulses"]
            lines += counts["row_pulses"] + counts["col_pulses"]
            reads += counts.get("transfer_reads", 0.0)
            acc = per_layer.setdefault(name, dict.fromkeys(layer_keys, 0.0))
            for k in COUNTS:
                acc[k] += counts[k]
            acc["transfer_reads"] += counts.get("transfer_reads", 0.0)
            acc["energy_mj"] += (p + ln + tr_pj) * chip_zeta / _PJ_PER_MJ
            acc["update_time_s"] += t
            acc["transfer_time_s"] += tr_s
        fwd = entry["samples"] * forward_pj
        bwd = entry["samples"] * backward_pj
        energy = (pulse_pj + line_pj + transfer_pj) * chip_zeta + fwd + bwd
        epochs.append({
            "samples": float(entry["samples"]), "device_pulses": device, "line_pulses": lines,
            "transfer_reads": reads, "energy_mj": energy / _PJ_PER_MJ,
            "pulse_energy_mj": pulse_pj * chip_zeta / _PJ_PER_MJ,
            "line_energy_mj": line_pj * chip_zeta / _PJ_PER_MJ,
            "transfer_energy_mj": transfer_pj * chip_zeta / _PJ_PER_MJ, "forward_energy_mj": fwd / _PJ_PER_MJ,
            "backward_energy_mj": bwd / _PJ_PER_MJ, "update_time_s": time_s, "transfer_time_s": transfer_s,
        })
        total_pj += energy
        total_time += time_s
        total_transfer_time += transfer_s
    layers = [{"name": name, **values} for name, values in per_layer.items()]
    return TrainingCost(train_energy_mj=total_pj / _PJ_PER_MJ, update_time_s=total_time, epochs=epochs,
                        layers=layers, transfer_time_s=total_transfer_time)


def _zeta(model: nn.Module) -> float:
    for _, layer in analog_layers(model):
        return float(resolve(layer.array.rpu.cost)["post_layout_factor"])
    return 1.0


def _backward_pj(array: Any, vectors: float, activity: LayerActivity | None) -> float:
    """Energy per example of the backward MVMs of one layer (pJ)."""
    tech = resolve(array.rpu.cost)
    bwd = array.rpu.backward
    pair = 2 if tech["differential"] else 1
    d = design(tech, bwd, array.tile_out * pair)
    d.slices, d.pair = 1, 1
    acts = tile_activity(tech, activity, array.n_tiles, int(tech["dac_bits"]) > 0)
    nm = not bwd.is_perfect and bwd.noise_management != "none"
    total = 0.0
    for i, tile in enumerate(array.tiles):
        act, zero, _ = acts[i]
        c = mvm_cost(tech, d, rows=tile.out_size * pair, outputs=tile.in_size, array_rows=array.tile_in,
                     array_cols=array.tile_out * pair, activity=act, zero_fraction=zero,
                     weight_density=float(tech["weight_density"]), noise_management=nm, transposed=True)
        total += sum(c.energy_pj.values())
    if array.n_col > 1:  # partial input gradients of the tile columns added digitally
        total += (array.n_col - 1) * array.in_features * tech["e_accum_add"]
    return total * vectors


def _transfer_cost(array: Any, reads_per_tile: Any) -> tuple[float, float]:
    """(energy pJ, time s) of the transfer reads ``reads_per_tile`` of a compound layer's tiles
    (see the module doc)."""
    if not any(reads_per_tile):
        return 0.0, 0.0
    tech = resolve(array.rpu.cost)
    pair = 2 if tech["differential"] else 1
    energy_pj = time_s = 0.0
    for tile, reads in zip(array.tiles, reads_per_tile):
        upd = tile.updater
        if not reads or upd is None or not hasattr(upd, "transfer_reads"):
            continue
        io = upd.device_cfg.transfer_forward
        # one line of A driven, every line across it converted: a forward MVM of a one-hot input
        # (columns of A read), or with transfer_columns false a transposed one, like the backward
        # pass (rows of A read)
        if upd.transposed:
            d = design(tech, io, array.tile_out * pair)
            d.slices, d.pair = 1, 1
            c = mvm_cost(tech, d, rows=pair, outputs=tile.in_size, array_rows=array.tile_in,
                         array_cols=array.tile_out * pair, activity=1.0, zero_fraction=0.0,
                         weight_density=float(tech["weight_density"]), transposed=True)
        else:
            d = design(tech, io, array.tile_in)
            c = mvm_cost(tech, d, rows=1, outputs=tile.out_size, array_rows=array.tile_in,
                         array_cols=array.tile_out * d.slices * d.pair, activity=1.0, zero_fraction=0.0,
                         weight_density=float(tech["weight_density"]))
        per_read = sum(c.energy_pj.values())
        if upd.H is not None:  # buffered kinds: H[:, k] += v, one word read and written per element
            per_read += upd.c_out * (tech["e_digital_add"] + 2 * int(tech["act_bits"]) * tech["e_buffer_bit"])
        energy_pj += reads * per_read
        time_s = max(time_s, reads * c.time_ns * 1e-9)
    return energy_pj, time_s


def _update_cost(array: Any, counts: dict[str, float]) -> tuple[float, float, float]:
    """(device pulse energy pJ, line energy pJ, update time s) of a layer's pulses."""
    tech = resolve(array.rpu.cost)
    pair = 2 if tech["differential"] else 1
    cols = array.tile_out * pair
    c_row, c_col = line_capacitance_ff(tech, array.tile_in, cols)
    v2 = tech["v_write"] ** 2
    pulses = counts["device_pulses"] * tech["e_pulse"]
    lines = (counts["row_pulses"] * c_row + counts["col_pulses"] * c_col) * v2 * 1e-3
    half = tech["e_half_select"] * (counts["row_pulses"] * max(cols - 1, 0)
                                    + counts["col_pulses"] * max(array.tile_in - 1, 0))
    time_s = counts["slots"] / max(array.n_tiles, 1) * tech["t_pulse"] * 1e-9
    return pulses + half, lines, time_s
