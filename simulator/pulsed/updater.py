"""``PulsedUpdater``: the analog tile's weight update (the contract in ``docs/architecture.md``)."""

from __future__ import annotations

import torch

from simulator.configs.devices import ConstantStepDevice, DeviceConfig, PulsedDeviceConfig
from simulator.configs.update import UpdateConfig
from simulator.errors import ConfigError
from simulator.pulsed.counters import PulseCounter
from simulator.pulsed.devices import DeviceModel, State, device_model
from simulator.pulsed.exact import exact_counts
from simulator.pulsed.fused import WriteNoise, aggregate_update_
from simulator.pulsed.management import probabilities
from simulator.rng import RandomSource

__all__ = ["PulsedUpdater"]


class PulsedUpdater:
    """Applies ``W -= lr d^T x`` to an ``(out, in)`` weight through pulsed devices.

    ``update_`` receives the layer inputs ``x`` ``(N, in)`` and the output gradients
    ``d = dL/dy`` ``(N, out)`` of a mini-batch (``N`` = batch, or batch x patches); per sample the
    expected change is ``-lr d_b^T x_b``, realised as device pulses (``update_cfg.mode``:
    ``"exact"`` bit streams or ``"aggregate"`` counts, see :mod:`simulator.pulsed`). An
    :class:`~simulator.configs.devices.IdealDevice` gets the floating-point update.

    All randomness comes from ``rng``; device-to-device variation is drawn once, here.
    ``bias_column``: the weight's last input column is the layer's analog bias (the devices
    ``device.perfect_bias`` makes ideal).

    ``update.snr_db`` sets the devices' cycle-to-cycle noise ``dw_min_std``.

    Write noise (``device.write_noise_std``): the updater keeps the devices'
    hidden (persistent) weights; after an update every device that received a pulse shows the
    tile ``hidden + sigma * N(0, 1)``. ``clip_`` takes the weight it is given as the new hidden
    state (call it after writing weights); a weight changed by anyone else between two updates is
    also taken as the new hidden state.

    ``counter`` (a :class:`~simulator.pulsed.counters.PulseCounter`) totals the pulses fired:
    counted in the exact mode, expected in the aggregate mode (the training cost's input).
    """

    def __init__(
        self,
        device_cfg: DeviceConfig,
        update_cfg: UpdateConfig,
        out_size: int,
        in_size: int,
        rng: RandomSource,
        dtype: torch.dtype = torch.float32,
        bias_column: bool = False,
    ) -> None:
        if update_cfg.mode not in ("exact", "aggregate"):
            raise ConfigError("update.mode", f"got {update_cfg.mode!r}; a PulsedUpdater needs "
                                             "'exact' or 'aggregate' ('none' trains the weight by SGD)")
        if out_size < 1 or in_size < 1:
            raise ConfigError("", f"got a weight of shape ({out_size}, {in_size}); accepted: sizes >= 1")
        torch.set_flush_denormal(True)
        snr_std = update_cfg.snr_noise_std()
        if snr_std is not None and isinstance(device_cfg, PulsedDeviceConfig):
            device_cfg = device_cfg.with_overrides({"dw_min_std": snr_std})
        self.device_cfg = device_cfg
        self.update_cfg = update_cfg
        self.out_size, self.in_size = int(out_size), int(in_size)
        self.rng = rng
        self.dtype = dtype
        self.model: DeviceModel | None = None
        self.granularity = 0.0
        if isinstance(device_cfg, PulsedDeviceConfig):
            self.model = device_model(device_cfg)
            self.granularity = device_cfg.weight_granularity()
            self.state: State = self.model.sample_state(self.out_size, self.in_size, rng, dtype, bias_column)
        else:
            inf = torch.full((self.out_size, self.in_size), float("inf"), dtype=dtype, device=rng.device)
            self.state = {"w_min": -inf, "w_max": inf.clone()}
        self.write_noise = self._write_noise_std()
        # the signed sum of p^2 splits the count variance by direction; symmetric constant steps
        # do without it (see simulator.pulsed.aggregate)
        self._signed_q = not (isinstance(device_cfg, ConstantStepDevice) and device_cfg.up_down == 0.0)
        self._scratch: dict[str, torch.Tensor] = {}
        # the compiled update pays off where the step depends on w (see simulator.pulsed.fused)
        self.fused = (bool(update_cfg.fused) and update_cfg.mode == "aggregate" and self.model is not None
                      and self.model.nonlinear)
        self.counter = PulseCounter()
        self._hidden: torch.Tensor | None = None
        self._seen_version: int | None = None

    # -- the contract -----------------------------------------------------------------------
    @property
    def w_min(self) -> torch.Tensor:
        """Lower bound of every device ``(out, in)`` (after device-to-device variation)."""
        return self.state["w_min"]

    @property
    def w_max(self) -> torch.Tensor:
        """Upper bound of every device ``(out, in)``."""
        return self.state["w_max"]

    @torch.no_grad()
    def clip_(self, weight: torch.Tensor) -> torch.Tensor:
        """Clip ``weight`` into the per-device bounds, in place (and set the hidden weights)."""
        torch.clamp(weight, min=self.w_min, max=self.w_max, out=weight)
        if self.write_noise > 0.0:
            self._hidden = weight.detach().clone()
            if self._apply_noise_on_set():
                weight.add_(self._normal(weight), alpha=self.write_noise)
            self._seen_version = weight._version
        return weight

    @torch.no_grad()
    def update_(self, weight: torch.Tensor, x: torch.Tensor, d: torch.Tensor, lr: float) -> torch.Tensor:
        """Pulsed update of ``weight`` in place with inputs ``x`` ``(N, in)`` and errors ``d`` ``(N, out)``."""
        lr = float(lr)
        x = x.detach().reshape(-1, self.in_size).to(weight.dtype)
        d = d.detach().reshape(-1, self.out_size).to(weight.dtype)
        if x.shape[0] != d.shape[0]:
            raise ValueError(f"x has {x.shape[0]} rows but d has {d.shape[0]}; they must be the same samples")
        if lr == 0.0 or x.shape[0] == 0:
            return weight
        if lr < 0.0:
            lr, d = -lr, -d
        target = self._target(weight)
        if self.model is None:
            target.addmm_(d.t(), x, alpha=-lr)
            if self.write_noise > 0.0:
                self._show_(weight, target, None)
        else:
            self._pulsed_update_(self.model, weight, target, x, d, lr)
        return weight

    @torch.no_grad()
    def update_columns_(self, weight: torch.Tensor, cols: torch.Tensor, x: torch.Tensor,
                        d: torch.Tensor, lr: float) -> torch.Tensor:
        """Pulsed update of the columns ``cols`` ``(R,)`` of ``weight`` only, in place.

        ``x`` ``(N, R)`` are the inputs on those columns (every other column gets a zero input, so
        it receives no pulse) and ``d`` ``(N, out)`` the errors; the result is that of
        :meth:`update_` with the full zero-padded inputs, computed on the ``(out, R)`` sub-array
        (the transfer write of compound devices).
        """
        lr = float(lr)
        if lr == 0.0 or x.shape[0] == 0 or self.model is None:
            if self.model is None and lr != 0.0:
                sub = weight.index_select(1, cols).addmm_(d.t(), x, alpha=-lr)
                weight.index_copy_(1, cols, sub)
            return weight
        if lr < 0.0:
            lr, d = -lr, -d
        target = self._target(weight)
        sub = target.index_select(1, cols)
        state = {k: v.index_select(1, cols) for k, v in self.state.items() if not k.startswith("_")}
        probs = probabilities(x, d, lr, self.granularity, self.update_cfg)
        xi = self._normal(sub)
        out = self.out_size
        if self.update_cfg.mode == "exact":
            n = exact_counts(probs, self.rng, self.counter)
            touched = (n[:out] + n[out:]) > 0
            self.model.respond_(sub, state, n, xi)
            target.index_copy_(1, cols, sub)
            if self.write_noise > 0.0:
                noise = self._normal(sub)
                shown = torch.where(touched, sub + self.write_noise * noise, weight.index_select(1, cols))
                weight.index_copy_(1, cols, shown)
                self._seen_version = weight._version
            return weight
        normals = self._line_normals(x, d)
        write = None
        if self.write_noise > 0.0:
            write = WriteNoise(weight.index_select(1, cols), self._uniform(sub), self._normal(sub),
                               self.write_noise)
        aggregate_update_(self.model, sub, state, probs, normals, xi, signed_q=self._signed_q,
                          counter=self.counter, write_noise=write, fused=self.fused)
        target.index_copy_(1, cols, sub)
        if write is not None:
            weight.index_copy_(1, cols, write.shown)
            self._seen_version = weight._version
        return weight

    def to(self, device: torch.device | str) -> PulsedUpdater:
        """Move the per-device state (and hidden weights) to ``device``."""
        self.state = {k: v.to(device) for k, v in self.state.items() if not k.startswith("_")}
        if self._hidden is not None:
            self._hidden = self._hidden.to(device)
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Per-device state tensors by name (and ``"hidden"``: the hidden weights, with write noise)."""
        out = {k: v.clone() for k, v in self.state.items() if not k.startswith("_")}
        if self._hidden is not None:
            out["hidden"] = self._hidden.clone()
        return out

    def load_state_dict(self, data: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned."""
        names = {k for k in self.state if not k.startswith("_")}
        missing = sorted(names - set(data))
        if missing:
            raise ValueError(f"updater state lacks {', '.join(missing)}")
        unknown = sorted(set(data) - names - {"hidden"})
        if unknown:
            raise ValueError(f"updater state has unknown entries {', '.join(unknown)}")
        self.state = {k: data[k].clone() for k in names}
        hidden = data.get("hidden")
        self._hidden = None if hidden is None else hidden.clone()
        self._seen_version = None

    # -- internals ----------------------------------------------------------------------------
    def _pulsed_update_(self, model: DeviceModel, weight: torch.Tensor, w: torch.Tensor, x: torch.Tensor,
                        d: torch.Tensor, lr: float) -> None:
        """Update the devices' weights ``w`` (the hidden ones with write noise, then shown in
        ``weight``; else ``weight`` itself)."""
        probs = probabilities(x, d, lr, self.granularity, self.update_cfg)
        xi = self._normal(w)
        if self.update_cfg.mode == "exact":
            n = exact_counts(probs, self.rng, self.counter)
            model.respond_(w, self.state, n, xi)
            if self.write_noise > 0.0:
                self._show_(weight, w, (n[: self.out_size] + n[self.out_size :]) > 0)
            return
        normals = self._line_normals(x, d)
        write = None
        if self.write_noise > 0.0:
            write = WriteNoise(weight, self._uniform(w), self._normal(w), self.write_noise)
        aggregate_update_(model, w, self.state, probs, normals, xi, signed_q=self._signed_q,
                          counter=self.counter, scratch=self._scratch, write_noise=write, fused=self.fused)
        if write is not None:
            self._seen_version = weight._version

    def _write_noise_std(self) -> float:
        cfg = self.device_cfg
        std = float(getattr(cfg, "write_noise_std", 0.0))
        return std * float(getattr(cfg, "dw_min", 1.0)) if std > 0.0 else 0.0

    def _apply_noise_on_set(self) -> bool:
        return bool(getattr(self.device_cfg, "apply_write_noise_on_set", True))

    def _target(self, weight: torch.Tensor) -> torch.Tensor:
        if self.write_noise <= 0.0:
            return weight
        if self._hidden is None or self._seen_version != weight._version or self._hidden.shape != weight.shape:
            self._hidden = torch.clamp(weight.detach(), min=self.w_min, max=self.w_max)
        return self._hidden

    def _show_(self, weight: torch.Tensor, hidden: torch.Tensor, touched: torch.Tensor | None) -> None:
        """Redraw the write noise of the touched devices (all if ``touched`` is None)."""
        noisy = torch.add(hidden, self._normal(weight), alpha=self.write_noise)
        if touched is None:
            weight.copy_(noisy)
        else:
            weight.copy_(torch.where(touched, noisy, weight))
        self._seen_version = weight._version

    def _normal(self, like: torch.Tensor) -> torch.Tensor:
        """One standard normal per element of ``like``, on its device."""
        z = self.rng.normal(like.shape, dtype=like.dtype)
        return z if z.device == like.device else z.to(like.device)

    def _line_normals(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One standard normal per sample and error line, and per sample and input line (the
        aggregate mode's shared count fluctuation, :func:`~simulator.pulsed.aggregate.
        aggregate_moments`)."""
        z_d = self.rng.normal(d.shape, dtype=d.dtype)
        z_x = self.rng.normal(x.shape, dtype=x.dtype)
        return z_d.to(d.device), z_x.to(x.device)

    def _uniform(self, like: torch.Tensor) -> torch.Tensor:
        """One uniform in [0, 1) per element of ``like``, on its device."""
        u = self.rng.uniform(like.shape, dtype=like.dtype)
        return u if u.device == like.device else u.to(like.device)
