"""Device models in torch: per-device state, the single-pulse rule and the response to pulse counts.

Every model works on a whole ``(out, in)`` array of devices at once. Its state (a dict of tensors
of that shape) is sampled once from the device-to-device variation of the config, exactly as
aihwkit's ``PulsedRPUDevice::populate`` and the kinds' ``populate`` do:

``w_min``, ``w_max``
    the device's bounds (never exceeded);
``scale_up``, ``scale_down``
    the device's step sizes ``dw_up``, ``dw_down`` (positive with ``enforce_consistency``);
kind-specific
    ``slope_up`` / ``slope_down`` (LinearStep, SoftBounds), ``z_slope`` (ExpStep),
    ``gamma_up`` / ``gamma_down`` and ``inv_range`` (PowStep).

Two rules use it:

* :meth:`DeviceModel.pulse_` — one pulse per device, aihwkit's ``update_once`` verbatim in
  meaning (cycle-to-cycle noise per pulse, clipping after every pulse). It is the reference the
  tests and :mod:`simulator.pulsed.reference` use.
* :meth:`DeviceModel.respond_` / :meth:`DeviceModel.respond_moments_` — the response to the
  ``n_up`` up and ``n_down`` down pulses of a mini-batch applied together, in closed form, from
  exact counts or from their moments (see :mod:`simulator.pulsed.response`).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from simulator.configs.devices import (
    ConstantStepDevice,
    DeviceConfig,
    ExpStepDevice,
    LinearStepDevice,
    PowStepDevice,
    PowStepReferenceDevice,
    PulsedDeviceConfig,
    SoftBoundsDevice,
    SoftBoundsReferenceDevice,
)
from simulator.errors import ConfigError
from simulator.pulsed.aggregate import Moments
from simulator.pulsed.response import State, respond_counts_, respond_moments_
from simulator.rng import RandomSource

__all__ = [
    "ConstantStepModel",
    "DeviceModel",
    "ExpStepModel",
    "LinearStepModel",
    "PowStepModel",
    "PowStepReferenceModel",
    "SoftBoundsReferenceModel",
    "State",
    "device_model",
]


class DeviceModel:
    """Pulse response of a pulsed device kind, vectorised over an ``(out, in)`` device array."""

    nonlinear: ClassVar[bool] = True
    """Whether the step depends on the weight (the response then uses a midpoint evaluation)."""

    def __init__(self, cfg: PulsedDeviceConfig) -> None:
        self.cfg = cfg
        self.dw_min_std = float(cfg.dw_min_std)

    # -- device-to-device variation --------------------------------------------------------------
    def sample_state(self, out_size: int, in_size: int, rng: RandomSource, dtype: torch.dtype,
                     bias_column: bool = False) -> State:
        """Per-device parameters drawn from the device-to-device variation (fresh draws);
        ``bias_column``: the last input column holds the layer's analog bias (``perfect_bias``
        applies to it)."""
        cfg = self.cfg
        shape = (out_size, in_size)
        xi = rng.normal((4, *shape), dtype=dtype, fresh=True)
        w_max = cfg.w_max * (1.0 + cfg.w_max_dtod * xi[0])
        w_min = cfg.w_min * (1.0 + cfg.w_min_dtod * xi[1])
        gain = torch.exp(cfg.dw_min_dtod * xi[2]) if cfg.dw_min_dtod_log_normal else 1.0 + cfg.dw_min_dtod * xi[2]
        r = cfg.up_down_dtod * xi[3]
        up_bias = min(cfg.up_down, 0.0)
        down_bias = min(-cfg.up_down, 0.0)
        scale_up = (up_bias + gain + r) * cfg.dw_min
        scale_down = (down_bias + gain - r) * cfg.dw_min
        if cfg.enforce_consistency:
            scale_up, scale_down = scale_up.abs(), scale_down.abs()
            lo, hi = torch.minimum(w_min, w_max), torch.maximum(w_min, w_max)
            w_max, w_min = hi.abs(), -lo.abs()
        else:
            mid = 0.5 * (w_min + w_max)
            crossed = w_min > w_max
            w_max = torch.where(crossed, mid, w_max)
            w_min = torch.where(crossed, mid, w_min)
        if cfg.corrupt_devices_prob > 0.0:
            u = rng.uniform((2, *shape), dtype=dtype, fresh=True)
            corrupt = cfg.corrupt_devices_prob > u[0]
            rng_half = abs(cfg.corrupt_devices_range)
            lo = torch.clamp(torch.minimum(w_max, w_min), min=-rng_half)
            hi = torch.clamp(torch.maximum(w_max, w_min), max=rng_half)
            value = lo + (hi - lo) * u[1]
            w_max = torch.where(corrupt, value, w_max)
            w_min = torch.where(corrupt, value, w_min)
            scale_up = torch.where(corrupt, 0.0, scale_up)
            scale_down = torch.where(corrupt, 0.0, scale_down)
        if cfg.perfect_bias and bias_column:
            scale_up[:, -1] = cfg.dw_min
            scale_down[:, -1] = cfg.dw_min
            w_min[:, -1] = 100.0 * cfg.w_min
            w_max[:, -1] = 100.0 * cfg.w_max
        state = {"w_min": w_min.contiguous(), "w_max": w_max.contiguous(),
                 "scale_up": scale_up.contiguous(), "scale_down": scale_down.contiguous()}
        state.update(self._sample_extra(state, rng, dtype))
        return state

    def _sample_extra(self, state: State, rng: RandomSource, dtype: torch.dtype) -> State:
        return {}

    # -- the step of one pulse ------------------------------------------------------------------
    def steps(self, w: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise-free magnitudes ``(up, down)`` of one pulse at weight ``w``: up adds, down subtracts."""
        raise NotImplementedError

    def pulse_noise_std(self, w: torch.Tensor, step: torch.Tensor, state: State, up: bool) -> torch.Tensor:
        """Factor of one pulse's cycle-to-cycle noise ``xi`` for a pulse of mean magnitude ``step``.

        (Its square is the noise variance; a sign is kept where aihwkit multiplies ``step`` by
        ``1 + std xi``, so that a single pulse reproduces aihwkit's rule realisation by realisation.)
        """
        return self.dw_min_std * step

    def pulse_(self, w: torch.Tensor, state: State, direction: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """One pulse per device (``direction`` +1 up, -1 down, 0 none), then clip; in place.

        ``xi`` holds one standard normal per device for the cycle-to-cycle noise.
        """
        up, down = self.steps(w, state)
        up_std = self.pulse_noise_std(w, up, state, True)
        down_std = self.pulse_noise_std(w, down, state, False)
        dw_up = up + up_std * xi
        dw_down = down + down_std * xi
        delta = torch.where(direction > 0, dw_up, torch.where(direction < 0, -dw_down, torch.zeros_like(w)))
        w.add_(delta)
        return self.clip_(w, state)

    # -- the response to counts -----------------------------------------------------------------
    def respond_(self, w: torch.Tensor, state: State, n: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """Apply counted pulses per device in closed form, then clip; in place.

        ``n`` is ``(2 out, in)``: the down counts, then the up counts; ``xi`` is one standard
        normal per device. See :mod:`simulator.pulsed.response`.
        """
        return respond_counts_(self, w, state, n, xi)

    def respond_moments_(self, w: torch.Tensor, state: State, moments: Moments, xi: torch.Tensor) -> torch.Tensor:
        """Apply a mini-batch's aggregate count moments ``(t, m, q)`` (consumed), then clip; in place."""
        return respond_moments_(self, w, state, moments, xi)

    @staticmethod
    def clip_(w: torch.Tensor, state: State) -> torch.Tensor:
        """Clip into the per-device bounds, in place."""
        return torch.clamp(w, min=state["w_min"], max=state["w_max"], out=w)


class ConstantStepModel(DeviceModel):
    """``w += dw_up (1 + std xi)`` / ``w -= dw_down (1 + std xi)``."""

    nonlinear = False

    def steps(self, w: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        return state["scale_up"], state["scale_down"]


class LinearStepModel(DeviceModel):
    """Step ``dw + slope w`` (LinearStep; SoftBounds with unit gamma at the device's own bounds)."""

    def __init__(self, cfg: LinearStepDevice | SoftBoundsDevice) -> None:
        super().__init__(cfg)
        self.mult_noise = bool(cfg.mult_noise)
        if isinstance(cfg, SoftBoundsDevice):
            self.gamma_up = self.gamma_down = 1.0
            self.gamma_up_dtod = self.gamma_down_dtod = 0.0
            self.allow_increasing = False
            self.mean_bound_reference = False
        else:
            self.gamma_up, self.gamma_down = float(cfg.gamma_up), float(cfg.gamma_down)
            self.gamma_up_dtod, self.gamma_down_dtod = float(cfg.gamma_up_dtod), float(cfg.gamma_down_dtod)
            self.allow_increasing = bool(cfg.allow_increasing)
            self.mean_bound_reference = bool(cfg.mean_bound_reference)

    def _sample_extra(self, state: State, rng: RandomSource, dtype: torch.dtype) -> State:
        xi = rng.normal((2, *state["w_min"].shape), dtype=dtype, fresh=True)
        g_up = self.gamma_up + self.gamma_up_dtod * xi[0]
        g_down = self.gamma_down + self.gamma_down_dtod * xi[1]
        if not self.allow_increasing:
            g_up, g_down = g_up.abs(), g_down.abs()
        if self.mean_bound_reference:
            ref_up = torch.full_like(g_up, self.cfg.w_max)
            ref_down = torch.full_like(g_down, self.cfg.w_min)
        else:
            ref_up, ref_down = state["w_max"], state["w_min"]
        safe_up = torch.where(ref_up == 0, 1.0, ref_up)
        safe_down = torch.where(ref_down == 0, 1.0, ref_down)
        slope_up = torch.where(ref_up == 0, 0.0, -g_up * state["scale_up"] / safe_up)
        slope_down = torch.where(ref_down == 0, 0.0, -g_down * state["scale_down"] / safe_down)
        return {"slope_up": slope_up.contiguous(), "slope_down": slope_down.contiguous()}

    def steps(self, w: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        up = torch.addcmul(state["scale_up"], state["slope_up"], w)
        down = torch.addcmul(state["scale_down"], state["slope_down"], w)
        return up, down

    def pulse_noise_std(self, w: torch.Tensor, step: torch.Tensor, state: State, up: bool) -> torch.Tensor:
        if self.mult_noise:
            return self.dw_min_std * step
        return self.dw_min_std * state["scale_up" if up else "scale_down"]


class ExpStepModel(DeviceModel):
    """``y = max(1 - A exp(+-gamma z), 0)`` times the step, ``z = 2 a w / (b_max - b_min) + b``."""

    def __init__(self, cfg: ExpStepDevice) -> None:
        super().__init__(cfg)
        self.A_up, self.A_down = float(cfg.A_up), float(cfg.A_down)
        self.gamma_up, self.gamma_down = float(cfg.gamma_up), float(cfg.gamma_down)
        self.a, self.b = float(cfg.a), float(cfg.b)
        self.complex_noise = cfg.dw_min_std > 0 and (cfg.dw_min_std_add != 0 or cfg.dw_min_std_slope != 0)
        self.std_add, self.std_slope = float(cfg.dw_min_std_add), float(cfg.dw_min_std_slope)

    def _sample_extra(self, state: State, rng: RandomSource, dtype: torch.dtype) -> State:
        diff = state["w_max"] - state["w_min"]
        alive = diff > 0
        # aihwkit skips devices without range entirely; zero steps do the same.
        for key in ("scale_up", "scale_down"):
            state[key] = torch.where(alive, state[key], 0.0)
        z_slope = torch.where(alive, 2.0 * self.a / torch.where(alive, diff, 1.0), 0.0)
        return {"z_slope": z_slope.contiguous()}

    def steps(self, w: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.addcmul(torch.full_like(w, self.b), state["z_slope"], w)
        y_up = torch.exp(z * self.gamma_up).mul_(-self.A_up).add_(1.0).clamp_(min=0.0)
        y_down = torch.exp(z * -self.gamma_down).mul_(-self.A_down).add_(1.0).clamp_(min=0.0)
        return y_up.mul_(state["scale_up"]), y_down.mul_(state["scale_down"])

    def pulse_noise_std(self, w: torch.Tensor, step: torch.Tensor, state: State, up: bool) -> torch.Tensor:
        if self.complex_noise:
            # aihwkit adds this noise with a + sign in both directions (w += dw + std xi).
            std = self.dw_min_std * (step.abs() + self.std_add + self.std_slope * w.abs())
            return std if up else -std
        return self.dw_min_std * step


class PowStepModel(DeviceModel):
    """Step ``dw ((b_max - w) / range) ** gamma_up`` up and ``dw ((w - b_min) / range) ** gamma_down`` down."""

    def __init__(self, cfg: PowStepDevice) -> None:
        super().__init__(cfg)

    def _sample_extra(self, state: State, rng: RandomSource, dtype: torch.dtype) -> State:
        cfg: PowStepDevice = self.cfg  # type: ignore[assignment]
        xi = rng.normal((2, *state["w_min"].shape), dtype=dtype, fresh=True)
        gain = 1.0 + cfg.pow_gamma_dtod * xi[0]
        r = cfg.pow_up_down_dtod * xi[1]
        up_bias = min(cfg.pow_up_down, 0.0)
        down_bias = min(-cfg.pow_up_down, 0.0)
        gamma_up = (up_bias + gain + r) * cfg.pow_gamma
        gamma_down = (down_bias + gain - r) * cfg.pow_gamma
        if cfg.enforce_consistency:
            gamma_up, gamma_down = gamma_up.abs(), gamma_down.abs()
        diff = state["w_max"] - state["w_min"]
        inv_range = torch.where(diff > 0, 1.0 / torch.where(diff > 0, diff, 1.0), 0.0)
        return {"gamma_up": gamma_up.contiguous(), "gamma_down": gamma_down.contiguous(),
                "inv_range": inv_range.contiguous()}

    def steps(self, w: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        to_max = (state["w_max"] - w).mul_(state["inv_range"]).clamp_(min=0.0)
        to_min = (w - state["w_min"]).mul_(state["inv_range"]).clamp_(min=0.0)
        up = torch.pow(to_max, state["gamma_up"]).mul_(state["scale_up"])
        down = torch.pow(to_min, state["gamma_down"]).mul_(state["scale_down"])
        alive = state["inv_range"] > 0
        return torch.where(alive, up, 0.0), torch.where(alive, down, 0.0)


def _reference(cfg: SoftBoundsReferenceDevice | PowStepReferenceDevice, state: State,
               rng: RandomSource, dtype: torch.dtype, symmetry_point: torch.Tensor | None) -> torch.Tensor:
    """Per-device reference ``r = reference_mean + reference_std xi (+ symmetry point)``."""
    r = torch.full_like(state["w_min"], float(cfg.reference_mean))
    if cfg.reference_std > 0.0:
        r.add_(rng.normal(r.shape, dtype=dtype, fresh=True), alpha=float(cfg.reference_std))
    if symmetry_point is not None:
        r.add_(symmetry_point)
    return r


class SoftBoundsReferenceModel(LinearStepModel):
    """Soft bounds on ``g = w + r``: with ``g``'s bounds ``b``, the step in ``w`` is linear,
    ``dw_up (1 - r / b_max) - (dw_up / b_max) w`` up and ``dw_down (1 - r / b_min) - (dw_down /
    b_min) w`` down, and ``w`` lies in ``[b_min - r, b_max - r]``."""

    def __init__(self, cfg: SoftBoundsReferenceDevice) -> None:
        DeviceModel.__init__(self, cfg)
        self.mult_noise = bool(cfg.mult_noise)

    def _sample_extra(self, state: State, rng: RandomSource, dtype: torch.dtype) -> State:
        cfg: SoftBoundsReferenceDevice = self.cfg  # type: ignore[assignment]
        b_max, b_min = state["w_max"], state["w_min"]
        a_up, a_down = state["scale_up"], state["scale_down"]
        xi = rng.normal((2, *b_max.shape), dtype=dtype, fresh=True)
        safe_max = torch.where(b_max > 0, b_max, 1.0)
        safe_min = torch.where(b_min < 0, b_min, -1.0)
        k_up = torch.where(b_max > 0, a_up / safe_max, 0.0) * (1.0 + cfg.slope_up_dtod * xi[0])
        k_down = torch.where(b_min < 0, -a_down / safe_min, 0.0) * (1.0 + cfg.slope_down_dtod * xi[1])
        sp = None
        if cfg.subtract_symmetry_point:
            # up step a_up - k_up g equals the down step a_down + k_down g at g*
            denom = k_up + k_down
            sp = torch.where(denom > 0, (a_up - a_down) / torch.where(denom > 0, denom, 1.0), 0.0)
        r = _reference(cfg, state, rng, dtype, sp)
        extra = {
            "noise_up": a_up.clone(), "noise_down": a_down.clone(), "reference": r.contiguous(),
            "slope_up": (-k_up).contiguous(), "slope_down": k_down.contiguous(),
        }
        state["scale_up"] = (a_up - k_up * r).contiguous()
        state["scale_down"] = (a_down + k_down * r).contiguous()
        state["w_max"] = (b_max - r).contiguous()
        state["w_min"] = (b_min - r).contiguous()
        return extra

    def pulse_noise_std(self, w: torch.Tensor, step: torch.Tensor, state: State, up: bool) -> torch.Tensor:
        if self.mult_noise:
            return self.dw_min_std * step
        return self.dw_min_std * state["noise_up" if up else "noise_down"]


class PowStepReferenceModel(PowStepModel):
    """Power-law steps on ``g = w + r``: PowStep with the bounds shifted by ``-r``."""

    def _sample_extra(self, state: State, rng: RandomSource, dtype: torch.dtype) -> State:
        cfg: PowStepReferenceDevice = self.cfg  # type: ignore[assignment]
        extra = super()._sample_extra(state, rng, dtype)
        sp = None
        if cfg.subtract_symmetry_point:
            sp = self._symmetry_point({**state, **extra})
        r = _reference(cfg, state, rng, dtype, sp)
        state["w_max"] = (state["w_max"] - r).contiguous()
        state["w_min"] = (state["w_min"] - r).contiguous()
        extra["reference"] = r.contiguous()
        return extra

    def _symmetry_point(self, state: State) -> torch.Tensor:
        """Root of ``up(g) = down(g)`` in ``[b_min, b_max]`` by bisection (up - down decreases)."""
        lo, hi = state["w_min"].clone(), state["w_max"].clone()
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            up, down = self.steps(mid, state)
            above = up > down  # still below the symmetry point
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        return 0.5 * (lo + hi)


_MODELS: dict[type[DeviceConfig], type[DeviceModel]] = {
    ConstantStepDevice: ConstantStepModel,
    LinearStepDevice: LinearStepModel,
    SoftBoundsDevice: LinearStepModel,
    ExpStepDevice: ExpStepModel,
    PowStepDevice: PowStepModel,
    SoftBoundsReferenceDevice: SoftBoundsReferenceModel,
    PowStepReferenceDevice: PowStepReferenceModel,
}


def device_model(cfg: DeviceConfig) -> DeviceModel:
    """The torch model of a pulsed device config."""
    model = _MODELS.get(type(cfg))
    if model is None:
        raise ConfigError("device", f"{type(cfg).__name__} has no pulse response; accepted: "
                                    f"{', '.join(k.__name__ for k in _MODELS)}")
    return model(cfg)  # type: ignore[arg-type]
