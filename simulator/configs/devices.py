"""Device models for in-memory training: what one update pulse does to a cross-point.

The kinds, their field names and defaults follow IBM's aihwkit (``aihwkit.simulator.configs.devices``
and the ``rpu_*_device.cpp`` update rules), so a study written against aihwkit's parameters means
the same here. Every pulsed device shares the device-to-device (``*_dtod``, sampled once per
cross-point when a tile is built) and cycle-to-cycle (``dw_min_std``, drawn for every pulse)
variation of :class:`PulsedDeviceConfig`:

* bounds ``b_max = w_max (1 + w_max_dtod xi)``, ``b_min = w_min (1 + w_min_dtod xi)``;
* step sizes ``dw_up = (1 + up_bias + g + r) dw_min`` and ``dw_down = (1 + down_bias + g - r) dw_min``
  with gain ``g = dw_min_dtod xi`` (or ``exp(dw_min_dtod xi) - 1`` when ``dw_min_dtod_log_normal``),
  ``r = up_down_dtod xi`` and ``up_bias = min(up_down, 0)``, ``down_bias = min(-up_down, 0)``.

One pulse in the *down* direction (sign of ``x * d`` positive, as in SGD) then applies, with
``s = 1 + dw_min_std xi`` and the result clipped into ``[b_min, b_max]``:

===================  =========================================================================
kind                 response to one down pulse (up pulses mirror it)
===================  =========================================================================
ConstantStep         ``w -= dw_down s``
LinearStep           ``w -= (dw_down + slope_down w) s`` (``mult_noise``) or
                     ``w -= dw_down s + slope_down w``; ``slope_down = |gamma_down'| dw_down / |w_min|``
SoftBounds           LinearStep with ``gamma = 1`` at each device's own bounds: step 0 at the bound
ExpStep              ``w -= dw_down s max(1 - A_down exp(-gamma_down z), 0)``,
                     ``z = 2 a w / (b_max - b_min) + b``
PowStep              ``w -= dw_down s ((w - b_min) / (b_max - b_min)) ** gamma_down_ij``
Ideal                floating-point update (no pulses)
===================  =========================================================================

The reference devices (:class:`SoftBoundsReferenceDevice`, :class:`PowStepReferenceDevice`) store
the weight as the difference ``w = g - r`` of a conductance ``g`` (which follows the soft-bounds
or power-step rule between ``b_min`` and ``b_max``) and a fixed reference ``r`` per device,
``r = reference_mean + reference_std xi`` (plus the device's symmetry point with
``subtract_symmetry_point``): zero-shifting (Kim et al. 2019) and its offset errors.

This module is torch-free (the DSE engine validates hardware paths without loading torch); the
implementation lives in :mod:`simulator.pulsed`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator._config import Config, check_range
from simulator.errors import ConfigError

__all__ = [
    "ConstantStepDevice",
    "DeviceConfig",
    "ExpStepDevice",
    "IdealDevice",
    "LinearStepDevice",
    "PowStepDevice",
    "PowStepReferenceDevice",
    "PulsedDeviceConfig",
    "SoftBoundsDevice",
    "SoftBoundsReferenceDevice",
]


def _finite(name: str, value: float) -> None:
    check_range(name, value, -math.inf, math.inf, lo_open=True, hi_open=True)


def _non_negative(name: str, value: float) -> None:
    check_range(name, value, 0.0, math.inf, hi_open=True)


@dataclass
class DeviceConfig(Config):
    """A device model (polymorphic: the dict form names the kind under ``"type"``)."""

    @property
    def is_pulsed(self) -> bool:
        """Whether updates are applied as device pulses (False: floating-point update)."""
        return False

    @property
    def is_compound(self) -> bool:
        """Whether a cross-point holds several devices with transfers (the Tiki-Taka family)."""
        return False

    def weight_granularity(self) -> float:
        """Mean weight change of one pulse, used by update management (aihwkit's granularity)."""
        raise ConfigError("device", f"{type(self).__name__} has no pulse granularity")


@dataclass
class IdealDevice(DeviceConfig):
    """Ideal update: the pulsed update is replaced by the floating-point ``W -= lr d^T x``.

    Forward and backward passes can still be non-ideal (see the IO configs).
    """


@dataclass
class PulsedDeviceConfig(DeviceConfig):
    """Parameters shared by every pulsed device (aihwkit's ``PulsedDevice``)."""

    dw_min: float = 0.001
    """Mean (across devices and directions) weight change of one pulse; must be > 0."""

    dw_min_dtod: float = 0.3
    """Device-to-device spread of the step size, relative to ``dw_min`` (std of the gain)."""

    dw_min_dtod_log_normal: bool = False
    """Draw the device-to-device gain log-normally (``exp(dw_min_dtod xi)``) instead of normally."""

    dw_min_std: float = 0.3
    """Cycle-to-cycle spread of each pulse's step, relative to the device's step (>= 0)."""

    up_down: float = 0.0
    """Systematic up/down asymmetry: > 0 weakens down steps by ``up_down``, < 0 weakens up steps."""

    up_down_dtod: float = 0.01
    """Device-to-device spread of the up/down asymmetry, relative to ``dw_min``."""

    w_max: float = 0.6
    """Mean upper weight bound across devices (>= 0)."""

    w_max_dtod: float = 0.3
    """Device-to-device spread of the upper bound, relative to ``w_max``."""

    w_min: float = -0.6
    """Mean lower weight bound across devices (<= 0)."""

    w_min_dtod: float = 0.3
    """Device-to-device spread of the lower bound, relative to ``|w_min|``."""

    enforce_consistency: bool = True
    """Make every sampled step positive and every device's bounds straddle zero (aihwkit default).

    If false, a device whose sampled lower bound exceeds its upper bound is stuck at their mean.
    """

    perfect_bias: bool = False
    """The devices of the analog bias column get ideal steps (``dw_min``) and 100x wider bounds
    (only on the tile that holds the layer's analog bias; no effect with a digital bias)."""

    corrupt_devices_prob: float = 0.0
    """Probability that a device is stuck at a random value (within ``corrupt_devices_range``)."""

    corrupt_devices_range: float = 0.1
    """Half-width of the range around zero where corrupt devices are stuck."""

    @property
    def is_pulsed(self) -> bool:
        """Pulsed devices are updated by coincidences of stochastic pulse trains."""
        return True

    def weight_granularity(self) -> float:
        """Mean step of one pulse at ``w = 0`` (``dw_min`` unless the kind says otherwise)."""
        return self.dw_min

    def validate(self) -> None:
        check_range("dw_min", self.dw_min, 0.0, math.inf, lo_open=True, hi_open=True)
        for name in ("dw_min_dtod", "dw_min_std", "up_down_dtod", "w_max_dtod", "w_min_dtod"):
            _non_negative(name, getattr(self, name))
        check_range("up_down", self.up_down, -1.0, 1.0)
        check_range("w_max", self.w_max, 0.0, math.inf, hi_open=True)
        check_range("w_min", self.w_min, -math.inf, 0.0, lo_open=True)
        if self.w_max - self.w_min <= 0.0:
            raise ConfigError("w_max", f"got {self.w_max!r} with w_min = {self.w_min!r}; "
                                       "accepted: w_min <= 0 <= w_max with w_max > w_min")
        check_range("corrupt_devices_prob", self.corrupt_devices_prob, 0.0, 1.0)
        _non_negative("corrupt_devices_range", self.corrupt_devices_range)


@dataclass
class ConstantStepDevice(PulsedDeviceConfig):
    """Constant step up to hard bounds (aihwkit ``ConstantStepDevice``): ``w -= dw_d (1 + std xi)``."""


@dataclass
class LinearStepDevice(PulsedDeviceConfig):
    """Step size linear in the weight (aihwkit ``LinearStepDevice``).

    ``w -= (dw_down + slope_down w)(1 + std xi)`` with ``slope_down = |gamma_down + gamma_down_dtod
    xi| dw_down / |w_min|`` (up mirrored with ``w_max``); ``gamma = 1`` gives soft bounds.
    """

    gamma_up: float = 0.0
    """Relative decrease of the up step at the upper bound (0.1: 10% smaller than at w = 0)."""

    gamma_down: float = 0.0
    """Relative decrease of the down step at the lower bound."""

    gamma_up_dtod: float = 0.05
    """Device-to-device spread (absolute std) of ``gamma_up``."""

    gamma_down_dtod: float = 0.05
    """Device-to-device spread (absolute std) of ``gamma_down``."""

    allow_increasing: bool = False
    """Allow sampled gammas to be negative (steps that grow towards the bound); else ``|gamma|``."""

    mean_bound_reference: bool = True
    """Scale the slopes by the mean bounds ``w_max`` / ``w_min`` (else by each device's bounds)."""

    mult_noise: bool = True
    """Cycle-to-cycle noise multiplies the whole step (else it multiplies only the constant part)."""

    write_noise_std: float = 0.0
    """Write noise in units of ``dw_min`` (see :class:`SoftBoundsDevice`); 0 turns it off."""

    apply_write_noise_on_set: bool = True
    """Whether writing the weights (tile initialisation, ``clip_``) already adds write noise."""

    def validate(self) -> None:
        super().validate()
        for name in ("gamma_up", "gamma_down"):
            _finite(name, getattr(self, name))
        for name in ("gamma_up_dtod", "gamma_down_dtod", "write_noise_std"):
            _non_negative(name, getattr(self, name))


@dataclass
class SoftBoundsDevice(PulsedDeviceConfig):
    """Soft bounds (aihwkit ``SoftBoundsDevice``): the step shrinks linearly to 0 at each bound.

    ``w += dw_up (1 - w / b_max)(1 + std xi)`` up, ``w -= dw_down (1 - w / b_min)(1 + std xi)`` down,
    with the device's own (device-to-device varied) bounds ``b_max``, ``b_min``.
    """

    mult_noise: bool = True
    """Cycle-to-cycle noise multiplies the whole step (else it multiplies only the constant part)."""

    write_noise_std: float = 0.0
    """Write noise in units of ``dw_min``: after each update the weight the forward pass reads is
    the persistent (hidden) weight plus ``write_noise_std * dw_min * N(0, 1)``, drawn anew."""

    apply_write_noise_on_set: bool = True
    """Whether writing the weights (tile initialisation, ``clip_``) already adds write noise."""

    def validate(self) -> None:
        super().validate()
        _non_negative("write_noise_std", self.write_noise_std)


@dataclass
class ExpStepDevice(PulsedDeviceConfig):
    """Exponential (CMOS-like) step (aihwkit ``ExpStepDevice``).

    ``w -= dw_down (1 + std xi) max(1 - A_down exp(-gamma_down z), 0)`` and
    ``w += dw_up (1 + std xi) max(1 - A_up exp(gamma_up z), 0)`` with
    ``z = 2 a w / (b_max - b_min) + b``.
    """

    A_up: float = 0.00081
    """Factor ``A`` of the up direction."""

    A_down: float = 0.36833
    """Factor ``A`` of the down direction."""

    gamma_up: float = 12.44625
    """Exponent of the up direction."""

    gamma_down: float = 12.78785
    """Exponent of the down direction."""

    a: float = 0.244
    """Global slope of ``z`` in the weight."""

    b: float = 0.2425
    """Global offset of ``z``."""

    dw_min_std_add: float = 0.0
    """Additive part of the cycle-to-cycle noise (units of ``dw_min_std``); with
    ``dw_min_std_slope`` non-zero the pulse noise std is ``dw_min_std (|dw| + add + slope |w|)``."""

    dw_min_std_slope: float = 0.0
    """Weight-proportional part of the cycle-to-cycle noise (see ``dw_min_std_add``)."""

    write_noise_std: float = 0.0
    """Write noise in units of ``dw_min`` (see :class:`SoftBoundsDevice`); 0 turns it off."""

    apply_write_noise_on_set: bool = True
    """Whether writing the weights (tile initialisation, ``clip_``) already adds write noise."""

    def weight_granularity(self) -> float:
        """aihwkit's ExpStep granularity: the down step at ``w = 0`` (``dw_min`` if that is 0)."""
        down_bias = -self.up_down if self.up_down > 0 else 0.0
        y_down = max(1.0 - self.A_down * math.exp(-self.gamma_down * self.b), 0.0)
        granularity = (1.0 + down_bias) * self.dw_min * y_down
        return granularity if granularity > 0.0 else self.dw_min

    def validate(self) -> None:
        super().validate()
        for name in ("A_up", "A_down", "gamma_up", "gamma_down", "a", "b"):
            _finite(name, getattr(self, name))  # fits may be negative (aihwkit's ReRamESPreset)
        for name in ("dw_min_std_add", "dw_min_std_slope", "write_noise_std"):
            _non_negative(name, getattr(self, name))


@dataclass
class PowStepDevice(PulsedDeviceConfig):
    """Power-law step (aihwkit ``PowStepDevice``, a shifted Fusi & Abbott synapse).

    ``w += dw_up (1 + std xi) ((b_max - w) / (b_max - b_min)) ** gamma_up_ij`` up and
    ``w -= dw_down (1 + std xi) ((w - b_min) / (b_max - b_min)) ** gamma_down_ij`` down, with
    ``gamma_ij^d = pow_gamma (1 + d_bias + g +/- r)`` sampled per device.
    """

    pow_gamma: float = 1.0
    """Mean exponent (1 behaves like soft bounds)."""

    pow_gamma_dtod: float = 0.1
    """Device-to-device spread of the exponent, relative to ``pow_gamma``."""

    pow_up_down: float = 0.0
    """Up/down bias of the exponent (> 0 lowers the down exponent, < 0 the up exponent)."""

    pow_up_down_dtod: float = 0.0
    """Device-to-device spread of the exponent's up/down bias, relative to ``pow_gamma``."""

    write_noise_std: float = 0.0
    """Write noise in units of ``dw_min`` (see :class:`SoftBoundsDevice`); 0 turns it off."""

    apply_write_noise_on_set: bool = True
    """Whether writing the weights (tile initialisation, ``clip_``) already adds write noise."""

    def weight_granularity(self) -> float:
        """aihwkit's PowStep granularity: ``dw_min * 0.5 ** pow_gamma`` (the step mid-range)."""
        return self.dw_min * 0.5**self.pow_gamma

    def validate(self) -> None:
        super().validate()
        check_range("pow_gamma", self.pow_gamma, 0.0, math.inf, lo_open=True, hi_open=True)
        for name in ("pow_gamma_dtod", "pow_up_down_dtod", "write_noise_std"):
            _non_negative(name, getattr(self, name))
        check_range("pow_up_down", self.pow_up_down, -1.0, 1.0)


class _ReferenceFields:
    """Validation of the reference fields shared by the reference devices."""

    reference_std: float
    reference_mean: float

    def _validate_reference(self) -> None:
        _finite("reference_mean", self.reference_mean)
        _non_negative("reference_std", self.reference_std)


@dataclass
class SoftBoundsReferenceDevice(PulsedDeviceConfig, _ReferenceFields):
    """Soft bounds on a conductance read against a reference (aihwkit ``SoftBoundsReferenceDevice``).

    The stored (visible) weight is ``w = g - r``; a pulse changes ``g = w + r``:
    ``g += dw_up (1 - g / b_max)(1 + std xi)`` up and ``g -= dw_down (1 - g / b_min)(1 + std xi)``
    down (with ``mult_noise`` false, the default, the noise ``std xi`` is added inside the bracket
    instead), then ``g`` is clipped into ``[b_min, b_max]``. The reference of each device is
    ``r = reference_mean + reference_std xi`` and, with ``subtract_symmetry_point``, also the
    device's symmetry point ``w* = (dw_up - dw_down) / (dw_up / b_max - dw_down / b_min)``, so that
    ``w = 0`` is the point where up and down steps are equal (zero-shifting) up to the offset.
    """

    mult_noise: bool = False
    """Cycle-to-cycle noise multiplies the whole step (else it is added inside the bracket, i.e.
    its std is ``dw_min_std`` times the constant step; aihwkit's default)."""

    write_noise_std: float = 0.0
    """Write noise in units of ``dw_min`` (see :class:`SoftBoundsDevice`); 0 turns it off."""

    apply_write_noise_on_set: bool = True
    """Whether writing the weights (tile initialisation, ``clip_``) already adds write noise."""

    slope_up_dtod: float = 0.0
    """Device-to-device spread of the up slope ``dw_up / b_max``, relative to it."""

    slope_down_dtod: float = 0.0
    """Device-to-device spread of the down slope ``dw_down / |b_min|``, relative to it."""

    reference_mean: float = 0.0
    """Mean of the reference ``r`` (a systematic offset of the stored weight's zero)."""

    reference_std: float = 0.0
    """Device-to-device std of the reference (the reference error sigma_r of Rasch et al.)."""

    subtract_symmetry_point: bool = False
    """Add each device's symmetry point to its reference (zero-shifting): ``w = 0`` is then the
    symmetry point up to ``reference_mean + reference_std xi``."""

    def validate(self) -> None:
        super().validate()
        for name in ("write_noise_std", "slope_up_dtod", "slope_down_dtod"):
            _non_negative(name, getattr(self, name))
        self._validate_reference()


@dataclass
class PowStepReferenceDevice(PowStepDevice, _ReferenceFields):
    """Power-law steps on a conductance read against a reference (aihwkit ``PowStepReferenceDevice``).

    As :class:`PowStepDevice` for the conductance ``g = w + r`` between ``b_min`` and ``b_max``
    (the stored weight's bounds are ``b - r``). With ``subtract_symmetry_point`` the reference
    includes the device's symmetry point, the root of ``dw_up ((b_max - g) / range) ** gamma_up =
    dw_down ((g - b_min) / range) ** gamma_down`` (solved by bisection; aihwkit iterates the
    pulse map ``n_estimation_steps`` times, which converges to the same point).
    """

    reference_mean: float = 0.0
    """Mean of the reference ``r`` (a systematic offset of the stored weight's zero)."""

    reference_std: float = 0.0
    """Device-to-device std of the reference (the reference error sigma_r)."""

    subtract_symmetry_point: bool = False
    """Add each device's symmetry point to its reference (zero-shifting)."""

    def validate(self) -> None:
        super().validate()
        self._validate_reference()


DeviceConfig.register_kinds(
    IdealDevice,
    ConstantStepDevice,
    LinearStepDevice,
    SoftBoundsDevice,
    ExpStepDevice,
    PowStepDevice,
    SoftBoundsReferenceDevice,
    PowStepReferenceDevice,
)
PulsedDeviceConfig.register_kinds(
    ConstantStepDevice,
    LinearStepDevice,
    SoftBoundsDevice,
    ExpStepDevice,
    PowStepDevice,
    SoftBoundsReferenceDevice,
    PowStepReferenceDevice,
)
