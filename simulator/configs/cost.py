"""What a design costs: the technology and the architecture choices the cost model prices.

:class:`CostConfig` is the ``cost`` section of an :class:`~simulator.configs.rpu.RPUConfig`. It
names a technology file (``tech``: a shipped name such as ``rram22`` or a path to a YAML file)
and may override any single constant of it; every field except ``tech`` defaults to ``None``,
meaning "as the technology file says". So a study sweeps ``hardware.cost.cols_per_adc`` or
``hardware.cost.tech`` like any other hardware field, and the constants of a technology file are
exactly these fields.

Every numeric field is in the canonical unit of its ``metadata["unit"]`` (the docstrings repeat
it); technology files give each constant with an explicit unit and a source, and are converted to
these units when loaded (see :mod:`simulator.cost.technology`). ``docs/cost-model.md`` has the
equations that use them.

Counts: an *array* is one simulated tile (its rows are the tile's inputs; its columns the tile's
outputs times the cells per weight), a *core* groups ``arrays_per_core`` arrays with their input
and output registers (ISAAC's IMA, NeuroSim's PE), a *tile* groups ``cores_per_tile`` cores with
buffers and a router, the chip holds the tiles and its I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from simulator._config import Config, check_range
from simulator.errors import ConfigError

__all__ = ["ADC_MODELS", "CostConfig", "constant_names", "constant_unit"]

ADC_MODELS = ("neurosim_sar", "isaac_table", "survey")
"""The ADC energy models (see :mod:`simulator.cost.adc`)."""

AdcModel = Literal["neurosim_sar", "isaac_table", "survey"]


def _c(unit: str) -> Any:
    """A constant field: ``None`` (from the technology file) with its canonical unit."""
    return field(default=None, metadata={"unit": unit})


@dataclass
class CostConfig(Config):
    """Technology file and overrides of its constants (``None``: as the file says)."""

    tech: str = "rram22"
    """Technology file: a shipped name (``rram22``, ``pcm22``, ``ecram22``, ``capacitor22``,
    ``isaac32``) or the path of a YAML technology file."""

    # -- architecture: how the network's tiles become hardware ------------------------------
    adc_model: AdcModel | None = _c("")
    """ADC energy model: ``neurosim_sar`` (NeuroSim's 22 nm SAR fit, including its column-current
    term), ``isaac_table`` (ISAAC's 8-bit ADC scaled by resolution), ``survey`` (Murmann-survey
    fit of the Accelergy ADC plug-in)."""
    adc_bits: int | None = _c("bit")
    """ADC resolution priced when the forward periphery has no ADC (``is_perfect`` or
    ``out_bits: null``); 0: the lossless resolution ``log2(rows read) + input bits per cycle +
    cell bits - 1`` (ISAAC §V), so an ideal periphery is not free. A forward ``out_bits``
    always wins."""
    input_bits: int | None = _c("bit")
    """Input (DAC) resolution priced when the forward periphery has no DAC; a forward
    ``inp_bits`` always wins."""
    dac_bits: int | None = _c("bit")
    """Bits converted per input cycle: 1 is a bit-serial input (ISAAC, NeuroSim), 0 a multi-bit
    DAC that converts the whole input in one cycle (the MVM as the simulator computes it)."""
    cols_per_adc: int | None = _c("count")
    """Columns sharing one ADC (time-multiplexed; NeuroSim ``numColMuxed``)."""
    rows_parallel: int | None = _c("count")
    """Rows read at once (NeuroSim ``parallelRead``); 0: every row of the array."""
    weight_bits: int | None = _c("bit")
    """Bits of a weight sliced over cells of ``cell_bits`` (ISAAC, NeuroSim); 0: the weight is
    one analog conductance (per device of a pair), as the simulator trains it."""
    cell_bits: int | None = _c("bit")
    """Bits stored per cell when weights are sliced (``weight_bits > 0``)."""
    differential: bool | None = _c("")
    """Signed weights as a pair of devices (two cells per weight, the currents subtracted before
    the ADC); false: one cell per weight with an offset."""
    sample_hold: bool | None = _c("")
    """Sample-and-hold after the array: reading the next cycle overlaps the conversions (cycle
    time ``max(t_read, cols_per_adc t_adc)``); false: they add up."""
    arrays_per_core: int | None = _c("count")
    """Arrays per core (ISAAC: 8 per IMA)."""
    cores_per_tile: int | None = _c("count")
    """Cores per tile (ISAAC: 12 IMAs per tile)."""
    psum_bits: int | None = _c("bit")
    """Width of digital partial sums (tile outputs added across arrays)."""
    act_bits: int | None = _c("bit")
    """Width of activations moved through buffers and the interconnect."""
    noc_hops: float | None = _c("1")
    """Mean interconnect hops of an activation between layers."""
    digital_macs_per_cycle: int | None = _c("count")
    """Multiply-accumulates per clock cycle of the digital unit that runs layers kept digital."""
    post_layout_factor: float | None = _c("1")
    """Energy multiplier for post-layout overheads (NeuroSim's ζ 1.22 when reproducing it; 1
    otherwise)."""

    # -- activity used when nothing was measured ------------------------------------------------
    activity: float | None = _c("1")
    """Input activity: probability that an input bit is 1 (bit-serial) or mean drive level as a
    fraction of full scale (multi-bit DAC)."""
    zero_fraction: float | None = _c("1")
    """Fraction of inputs that are exactly zero (their rows are not driven)."""
    weight_density: float | None = _c("1")
    """Fraction of a cell's conductance range in use (mean ``|w| / w_max``, or the density of
    1 bits of sliced weights); used when the weights are not known."""

    # -- technology: the array ------------------------------------------------------------------
    node: float | None = _c("nm")
    """Technology node (nm)."""
    vdd: float | None = _c("V")
    """Supply voltage of the digital periphery (V)."""
    clock: float | None = _c("GHz")
    """Clock of the digital periphery (GHz)."""
    a_cell: float | None = _c("um^2")
    """Area of one cell (um^2)."""
    cell_width: float | None = _c("um")
    """Cell pitch along a row (um): a row line crosses ``columns x cell_width``."""
    cell_height: float | None = _c("um")
    """Cell pitch along a column (um): a column line crosses ``rows x cell_height``."""
    c_wire: float | None = _c("fF/um")
    """Wire capacitance per length (fF/um)."""
    c_gate_cell: float | None = _c("fF")
    """Gate capacitance a row line sees per cell (fF)."""
    c_drain_cell: float | None = _c("fF")
    """Drain capacitance a column line sees per cell (fF)."""
    v_read: float | None = _c("V")
    """Read voltage on the columns (V)."""
    v_row: float | None = _c("V")
    """Row (word-line) drive voltage (V)."""
    r_on: float | None = _c("ohm")
    """Low-resistance state of a cell (ohm)."""
    on_off: float | None = _c("1")
    """Ratio of the high to the low resistance of a cell."""
    t_read: float | None = _c("ns")
    """Read (integration) time of the array per input cycle (ns)."""
    e_cell_read: float | None = _c("pJ")
    """Energy per cell read per input cycle (pJ); unset: ``v_read^2 G t_read`` from the cell's
    conductance (not added with ``neurosim_sar``, whose column term holds the cell current)."""

    # -- technology: converters -----------------------------------------------------------------
    adc_rate: float | None = _c("GHz")
    """Conversion rate of one ADC (GHz) for ``isaac_table`` and ``survey``."""
    e_adc_ref: float | None = _c("pJ")
    """``isaac_table``: energy of one 8-bit conversion (pJ), scaled by resolution."""
    a_adc_ref: float | None = _c("um^2")
    """Area of one 8-bit ADC (um^2), scaled by resolution (``isaac_table``, ``neurosim_sar``)."""
    adc_energy_scale: float | None = _c("1")
    """Multiplier of the ADC model's energy (technology scaling)."""
    e_dac_1b: float | None = _c("pJ")
    """Energy of a 1-bit input driver per row drive (pJ); a ``b``-bit DAC takes
    ``e_dac_1b 2^(b-1)`` (the doubling per bit of ISAAC's / MNSIM's DAC table)."""
    a_dac_1b: float | None = _c("um^2")
    """Area of a 1-bit row driver (um^2); ``b`` bits take ``a_dac_1b 2^(b-1)``."""
    e_sample_hold: float | None = _c("pJ")
    """Energy per sample-and-hold sample (pJ)."""
    a_sample_hold: float | None = _c("um^2")
    """Area of a sample-and-hold per column (um^2)."""
    e_col_mux: float | None = _c("pJ")
    """Energy of the column multiplexer per conversion (pJ)."""

    # -- technology: digital periphery ----------------------------------------------------------
    e_shift_add: float | None = _c("pJ")
    """Shift-and-add per ADC output combined across input cycles or weight slices (pJ)."""
    a_shift_add: float | None = _c("um^2")
    """Area of the shift-and-add units per array (um^2)."""
    e_accum_add: float | None = _c("pJ")
    """Digital addition of a partial sum across arrays (pJ)."""
    e_digital_add: float | None = _c("pJ")
    """Digital addition per output (a digital bias) (pJ)."""
    e_digital_mult: float | None = _c("pJ")
    """Digital multiplication per output (noise-management rescaling, weight scaling) (pJ)."""
    e_compare: float | None = _c("pJ")
    """Digital comparison (the input maximum of noise management, ReLU, max-pooling) (pJ)."""
    e_activation: float | None = _c("pJ")
    """A nonlinear activation (sigmoid, tanh) per element (pJ)."""
    e_digital_mac: float | None = _c("pJ")
    """Multiply-accumulate of a layer kept digital, batch norm and average pooling (pJ)."""
    e_buffer_bit: float | None = _c("pJ")
    """Buffer (SRAM) access per bit (pJ)."""
    e_noc_bit: float | None = _c("pJ")
    """Interconnect energy per bit and hop (pJ)."""

    # -- static power and area of the hierarchy -------------------------------------------------
    p_leak_array: float | None = _c("mW")
    """Leakage per array (mW)."""
    p_static_core: float | None = _c("mW")
    """Power of a core's periphery priced as power (registers; ISAAC's IR and OR) (mW)."""
    p_static_tile: float | None = _c("mW")
    """Power of a tile's periphery priced as power (ISAAC: eDRAM, bus, router, ...) (mW)."""
    p_static_chip: float | None = _c("mW")
    """Power of the chip's periphery (ISAAC: HyperTransport links) (mW)."""
    a_core_periphery: float | None = _c("um^2")
    """Area of a core's periphery (um^2)."""
    a_tile_periphery: float | None = _c("um^2")
    """Area of a tile's periphery: buffers, accumulators, router (um^2)."""
    a_chip_periphery: float | None = _c("um^2")
    """Area of the chip's periphery (I/O) (um^2)."""

    # -- in-situ training ------------------------------------------------------------------
    e_pulse: float | None = _c("pJ")
    """Energy of one programming pulse through a device (pJ)."""
    t_pulse: float | None = _c("ns")
    """Width of one programming pulse (ns)."""
    v_write: float | None = _c("V")
    """Amplitude of the update pulses on the lines (V)."""
    e_half_select: float | None = _c("pJ")
    """Energy per half-selected cell per line pulse (pJ; 0 with a selector)."""

    def validate(self) -> None:
        from simulator.configs.techs import locate  # finds the file, reads nothing

        locate(self.tech)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "tech" or value is None or isinstance(value, (bool, str)):
                continue
            check_value(f.name, value)


_POSITIVE = {"clock", "a_cell", "cell_width", "cell_height", "v_read", "v_row", "r_on", "t_read",
             "adc_rate", "node", "vdd", "t_pulse", "post_layout_factor"}
"""Constants that must be strictly positive (others may be 0)."""

_BOUNDS: dict[str, tuple[float, float]] = {
    "activity": (0.0, 1.0), "zero_fraction": (0.0, 1.0), "weight_density": (0.0, 1.0),
    "on_off": (1.0, math.inf), "adc_bits": (0, 24), "input_bits": (1, 24), "dac_bits": (0, 24),
    "weight_bits": (0, 64), "cell_bits": (1, 16), "cols_per_adc": (1, 1 << 20),
    "rows_parallel": (0, 1 << 20), "arrays_per_core": (1, 1 << 20), "cores_per_tile": (1, 1 << 20),
    "psum_bits": (1, 64), "act_bits": (1, 64), "digital_macs_per_cycle": (1, 1 << 30),
}


def check_value(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an accepted value of the constant ``name``."""
    lo, hi = _BOUNDS.get(name, (0.0, math.inf))
    lo_open = name in _POSITIVE
    check_range(name, value, lo, hi, lo_open=lo_open, hi_open=hi == math.inf)


def constant_names() -> list[str]:
    """The names of every constant a technology file may set (all fields but ``tech``)."""
    return [f.name for f in fields(CostConfig) if f.name != "tech"]


def constant_unit(name: str) -> str:
    """The canonical unit of a constant (``""`` for categorical ones, ``"1"`` dimensionless)."""
    for f in fields(CostConfig):
        if f.name == name and f.name != "tech":
            return str(f.metadata.get("unit", ""))
    raise ConfigError(name, f"unknown constant; accepted: {', '.join(constant_names())}")
