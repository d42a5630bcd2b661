"""ADC models: energy per conversion, conversion time and area, selected by ``adc_model``.

Published ADC figures differ 10-25x at 22 nm (``../shared/research/hardware-cost.md`` §1.4), so
the model is a choice of the technology file:

``neurosim_sar``
    DNN+NeuroSim V1.4's low-power 22 nm SAR fit (``SarADC.cpp``): the column's power is
    ``P = (0.538 b + 4.3753) uW + 0.072341 / R'`` W with ``R' = R_col 0.5 / V_read`` (``R_col``
    the resistance of the cells read in parallel on the column, ohm), energy ``P (b + 1) ns``,
    conversion time ``(b + 1) ns``. The second term is the column current through the cells,
    which is why the array term of the cost model adds no cell read energy with this model.
``isaac_table``
    ISAAC's 8-bit ADC (Table I: 2 mW at 1.28 GS/s, 1200 um^2 at 32 nm) scaled to other
    resolutions by CiMLoop's ``isaac_adc.csv`` table (4 to 10 bits, 32 nm); the technology gives
    the 8-bit energy ``e_adc_ref`` and area ``a_adc_ref``; the conversion takes ``1 / adc_rate``.
``survey``
    The Murmann-survey fit of the Accelergy ADC plug-in (``adc_data/model.yaml``): a Schreier
    figure of merit falling with the sampling rate, capped per resolution, times a technology and
    resolution correction; area from technology, rate and energy. ``1 / adc_rate`` per
    conversion. The fit starts at 4 bits; fewer bits cost what 4 bits cost.

Every model's energy is multiplied by the technology's ``adc_energy_scale``. Area of the
``neurosim_sar`` ADC comes from the ``isaac_table`` scaling of ``a_adc_ref`` (NeuroSim's own SAR
area needs its transistor-sizing model, which is not carried over).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["adc_area_um2", "adc_energy_pj", "adc_time_ns", "isaac_ratio", "sar_energy_pj",
           "survey_area_um2", "survey_energy_pj"]

# -- NeuroSim V1.4 SAR, 22 nm LP (SarADC.cpp) -------------------------------------------------------
SAR_SLOPE_W = 0.538e-6
"""W per bit of the SAR's column power."""
SAR_OFFSET_W = 4.3753e-6
"""W of the SAR's column power at 0 bits."""
SAR_R_COEFF = 0.072341
"""W ohm: the column-current term ``0.072341 / R'``."""
SAR_T_BIT_S = 1e-9
"""Seconds per conversion step; ``b + 1`` steps per conversion."""

# -- ISAAC ADC by resolution, 32 nm (CiMLoop isaac_adc.csv) ------------------------------------------
ISAAC_TABLE: dict[int, tuple[float, float]] = {
    4: (0.79, 361.0), 5: (0.99, 477.0), 6: (1.20, 627.0), 7: (1.42, 845.0),
    8: (1.67, 1200.0), 9: (1.97, 1828.0), 10: (2.38, 3002.0),
}
"""bits -> (energy pJ, area um^2) at 32 nm and 1.2 GS/s."""

# -- Accelergy ADC plug-in survey fit (adc_data/model.yaml) ------------------------------------------
SURVEY = {
    "foms_intercept": 213.7806687348118, "foms_freq": -2.8719030399529957,
    "foms_max_by_enob_0": 128.3068287398817, "foms_max_by_enob_step": 3.2205115109777537,
    "foms_max_by_enob_last": 20,
    "tech_intercept": 26.0496215686518, "tech_slope": 1.8800369206815004,
    "enob_slope": -2.8291256050594527, "energy_residual": -1.4702022133784405,
    "area_intercept": 1.3461916439910742, "area_tech": 0.9932794744745022,
    "area_freq": 0.18071538424508238, "area_energy": 0.29912426192653485,
}
"""Coefficients of the fit (natural logs of Hz, nm, pJ and um^2; FOM in dB)."""


def sar_energy_pj(bits: int, g_col_s: float, v_read: float) -> float:
    """NeuroSim's SAR energy per conversion (pJ) for a column conductance ``g_col_s`` (S)."""
    power = SAR_SLOPE_W * bits + SAR_OFFSET_W + SAR_R_COEFF * g_col_s * v_read / 0.5
    return power * (bits + 1) * SAR_T_BIT_S * 1e12


def isaac_ratio(bits: int) -> tuple[float, float]:
    """(energy, area) of a ``bits`` ADC relative to the 8-bit one, from the ISAAC table;
    log-linear extrapolation from the two nearest resolutions outside 4 to 10 bits."""
    table = ISAAC_TABLE
    if bits in table:
        e, a = table[bits]
    else:
        lo, hi = (4, 5) if bits < 4 else (9, 10)
        e = _loglinear(bits, lo, hi, table[lo][0], table[hi][0])
        a = _loglinear(bits, lo, hi, table[lo][1], table[hi][1])
    return e / table[8][0], a / table[8][1]


def _loglinear(x: int, x0: int, x1: int, y0: float, y1: float) -> float:
    return math.exp(math.log(y0) + (x - x0) * (math.log(y1) - math.log(y0)) / (x1 - x0))


def survey_energy_pj(bits: int, node_nm: float, rate_hz: float) -> float:
    """The survey fit's energy per conversion (pJ) at a resolution, node and rate."""
    c = SURVEY
    enob = max(4.0, float(bits))
    foms = c["foms_intercept"] + c["foms_freq"] * math.log(rate_hz)
    cap_index = max(min(math.ceil(enob), int(c["foms_max_by_enob_last"])), 0)
    foms = min(foms, c["foms_max_by_enob_0"] + c["foms_max_by_enob_step"] * cap_index)
    sndr = enob * 20.0 * math.log10(2.0) + 10.0 * math.log10(1.5)
    energy = 1.0 / (10.0 ** ((foms - sndr) / 10.0) * 2.0)
    return energy * math.exp(c["tech_intercept"] + c["tech_slope"] * math.log(node_nm)
                             + c["enob_slope"] * math.log(enob) + c["energy_residual"])


def survey_area_um2(bits: int, node_nm: float, rate_hz: float) -> float:
    """The survey fit's area of one ADC (um^2)."""
    c = SURVEY
    e = survey_energy_pj(bits, node_nm, rate_hz)
    return math.exp(c["area_intercept"] + c["area_tech"] * math.log(node_nm)
                    + c["area_freq"] * math.log(rate_hz) + c["area_energy"] * math.log(e))


def adc_energy_pj(tech: Mapping[str, Any], bits: int, g_col_s: float = 0.0) -> float:
    """Energy of one conversion (pJ) under the technology's ADC model (``g_col_s``: conductance
    of the cells read on the column, used by ``neurosim_sar``)."""
    model = tech["adc_model"]
    if model == "neurosim_sar":
        e = sar_energy_pj(bits, g_col_s, tech["v_read"])
    elif model == "isaac_table":
        e = tech["e_adc_ref"] * isaac_ratio(bits)[0]
    else:
        e = survey_energy_pj(bits, tech["node"], tech["adc_rate"] * 1e9)
    return e * tech["adc_energy_scale"]


def adc_time_ns(tech: Mapping[str, Any], bits: int) -> float:
    """Time of one conversion (ns)."""
    if tech["adc_model"] == "neurosim_sar":
        return (bits + 1) * SAR_T_BIT_S * 1e9
    return 1.0 / tech["adc_rate"]


def adc_area_um2(tech: Mapping[str, Any], bits: int) -> float:
    """Area of one ADC (um^2)."""
    if tech["adc_model"] == "survey":
        return survey_area_um2(bits, tech["node"], tech["adc_rate"] * 1e9)
    return tech["a_adc_ref"] * isaac_ratio(bits)[1]
