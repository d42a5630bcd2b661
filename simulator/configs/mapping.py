"""How a layer's weight matrix is mapped onto physical tiles.

A layer with more inputs than ``max_input_size`` (or more outputs than ``max_output_size``) is
split over a grid of tiles: the first tiles of each direction are full (``512`` by default) and
the last one holds the remainder (784 inputs: 512 + 272). Every tile has its own periphery
(noise and bound management, DAC, ADC); the partial outputs of tiles that share outputs are added
digitally.

The bias is either digital (added after the ADC, exact) or analog: an extra weight column fed by a
constant input ``s`` (paper 001): ``x_out = [W b/s][x; s]``. ``s`` matches the range of the bias
column to the range of the weights, so both use the full conductance range; ``bias_scale=None``
picks ``s = max|b| / max|W|`` when the weights are first written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator._config import Config, check_range

__all__ = ["MappingConfig"]


@dataclass
class MappingConfig(Config):
    """Tile size, bias placement and weight scaling (aihwkit ``MappingParameter``)."""

    max_input_size: int = 512
    """Largest number of inputs (crossbar rows) of one tile; 0: no limit."""

    max_output_size: int = 512
    """Largest number of outputs (crossbar columns) of one tile; 0: no limit."""

    digital_bias: bool = True
    """Add the bias digitally after the ADC; if false the bias is an analog weight column."""

    bias_scale: float | None = 1.0
    """Constant input ``s`` of the analog bias column (stores ``b / s``, paper 001); ``None``:
    range-matched ``s = max|b| / max|W|`` when the weights are first written."""

    weight_scaling_omega: float | None = None
    """Rescale each tile's weights so their absolute maximum is ``omega`` before every MVM (the
    scale is applied digitally to the outputs; floating-point update only); ``None``: off."""

    weight_scaling_columnwise: bool = False
    """Weight scaling per output (each output's own maximum) instead of per tile."""

    def validate(self) -> None:
        check_range("max_input_size", self.max_input_size, 0, None)
        check_range("max_output_size", self.max_output_size, 0, None)
        check_range("bias_scale", self.bias_scale, 0.0, math.inf, lo_open=True, hi_open=True,
                    allow_none=True)
        check_range("weight_scaling_omega", self.weight_scaling_omega, 0.0, math.inf,
                    lo_open=True, hi_open=True, allow_none=True)
