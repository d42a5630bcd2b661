"""The update of compound tiles (Tiki-Taka, TTv2, c-TTv2, AGAD): :class:`TransferUpdater`.

A compound tile holds per cross-point the fast device ``A`` and the slow device ``C``, each a
:class:`~simulator.pulsed.PulsedUpdater` of its own (device-to-device state, write noise, pulse
counter), plus the digital state of the algorithm: the buffer ``H`` (TTv2 and later), the
choppers (c-TTv2, AGAD), the running and past means ``M`` and ``P`` (AGAD), the update counter
``t``, the next column and the number of completed sweeps (``transfer_counter``).

One call of :meth:`TransferUpdater.update_` with the ``N`` vectors of a mini-batch

1. computes the fast learning rate ``lambda_A`` (with ``auto_scale``, from running maxima of the
   inputs and errors, updated once per mini-batch);
2. finds the transfers due in the batch (after vector ``s`` when ``(t + s + 1) % every == 0``) and
   the columns they read, in order, as Python integers;
3. cuts the batch into chunks: in the ``exact`` mode after every transfer (aihwkit's CPU order:
   each read sees ``A`` after exactly the vectors before it); in the ``aggregate`` mode only where a
   column would be read twice (``in_size`` reads per chunk), so a batch that reads fewer columns
   than the tile has is one chunk: ``A`` is updated for the whole chunk, then all its columns are
   read (see ``docs/simulator.md`` for this deviation);
4. per chunk: pulses the chunk into ``A`` with the chopper signs of the chunk start; reads the
   chunk's columns through the transfer periphery in one batched MVM of one-hot inputs; updates
   ``H`` (and ``M``, ``P``) for all of them at once; writes the integer pulse counts (or, for
   Tiki-Taka v1, the read itself) into ``C`` with one pulsed update of one-hot inputs, which
   touches only the read columns; then flips the choppers due after these reads;
5. shows ``W = gamma_A A + gamma_C C`` (de-chopped) in the tile's weight.

Everything in step 4 is a batched tensor operation over the chunk's reads; the only Python loop
is over chunks (one per mini-batch unless the batch sweeps the whole tile).

With ``transfer_columns`` false the compound works on the transposed arrays (rows of ``A`` are
read by a backward MVM, which is a forward MVM of ``A^T``): the devices are built ``(in, out)``
and the update sees ``(d, x)`` for ``(x, d)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from simulator.configs.compounds import (
    BufferedTransferCompound,
    ChoppedTransferCompound,
    DynamicTransferCompound,
    TransferCompound,
)
from simulator.configs.update import UpdateConfig
from simulator.errors import ConfigError
from simulator.io import AnalogIO
from simulator.pulsed.counters import PulseCounter
from simulator.pulsed.updater import PulsedUpdater
from simulator.rng import RandomSource, derive_seed

__all__ = ["CounterGroup", "TransferUpdater"]


class CounterGroup:
    """The pulse totals of several updaters (the devices of a compound) as one counter."""

    def __init__(self, counters: list[PulseCounter], swap_lines: bool = False) -> None:
        self.counters = counters
        self.swap_lines = swap_lines
        """Whether the members count on transposed arrays (their rows are the tile's columns)."""

    def totals(self) -> dict[str, float]:
        """The summed totals (see :class:`~simulator.pulsed.counters.PulseCounter`)."""
        out = PulseCounter.sum(self.counters)  # type: ignore[arg-type]
        if self.swap_lines:
            out["row_pulses"], out["col_pulses"] = out["col_pulses"], out["row_pulses"]
        return out

    def reset(self) -> None:
        """Start all members from zero."""
        for c in self.counters:
            c.reset()


class TransferUpdater:
    """Pulsed update of a compound tile ``(out, in)`` (the :class:`PulsedUpdater` contract)."""

    model = None
    """No single device model (a tile of compounds is never stacked with others)."""

    write_noise = 0.0
    """The tile's weight is always written whole by this updater (write noise lives in ``A`` and
    ``C``), so the tile hands over its weight view."""

    def __init__(self, device_cfg: TransferCompound, update_cfg: UpdateConfig, out_size: int,
                 in_size: int, rng: RandomSource, dtype: torch.dtype = torch.float32) -> None:
        if update_cfg.mode not in ("exact", "aggregate"):
            raise ConfigError("update.mode", f"got {update_cfg.mode!r}; a compound device needs "
                                             "'exact' or 'aggregate'")

        cfg = device_cfg
        self.device_cfg = cfg
        self.update_cfg = update_cfg
        self.out_size, self.in_size = int(out_size), int(in_size)
        self.transposed = not cfg.transfer_columns
        # the core works on "columns": (core_out, core_in) = (out, in), or (in, out) for rows
        self.c_out, self.c_in = (self.in_size, self.out_size) if self.transposed else (self.out_size, self.in_size)
        self.rng = rng
        self.dtype = dtype
        device = rng.device
        seed = rng.generator.initial_seed()
        self.slow_rng = RandomSource(derive_seed(seed, 0x510), device=device, mode=update_cfg.rng)
        self.transfer_rng = RandomSource(derive_seed(seed, 0x7A), device=device, mode=update_cfg.rng)
        self.fast = PulsedUpdater(cfg.fast, update_cfg, self.c_out, self.c_in, rng, dtype)
        write_cfg = cfg.transfer_update.with_overrides({"mode": update_cfg.mode, "rng": update_cfg.rng,
                                                            "fused": update_cfg.fused})
        self.slow = PulsedUpdater(cfg.slow, write_cfg, self.c_out, self.c_in, self.slow_rng, dtype)
        read_cfg = cfg.transfer_forward.with_overrides({"noise_management": "none",
                                                        "bound_management": "none"})
        self.read_io = AnalogIO(read_cfg)
        self.gamma_a, self.gamma_c = cfg.gammas()
        self.dw_a = cfg.fast.weight_granularity()
        self.dw_c = cfg.slow.weight_granularity()
        self.granularity = self.dw_a
        self.kind = ("dynamic" if isinstance(cfg, DynamicTransferCompound) else
                     "chopped" if isinstance(cfg, ChoppedTransferCompound) else
                     "buffered" if isinstance(cfg, BufferedTransferCompound) else "v1")
        self.counter = CounterGroup([self.fast.counter, self.slow.counter], swap_lines=self.transposed)
        shape = (self.c_out, self.c_in)
        def z() -> torch.Tensor:
            return torch.zeros(shape, dtype=dtype, device=device)

        self.A = z()
        self.C = z()
        self.H = z() if self.kind != "v1" else None
        self.M = z() if self.kind == "dynamic" else None
        self.P = z() if self.kind == "dynamic" else None
        self.in_chopper = torch.zeros(self.c_in, dtype=torch.bool, device=device)
        self.out_chopper = torch.zeros(self.c_out, dtype=torch.bool, device=device)
        self.in_switched = torch.zeros(self.c_in, dtype=torch.bool, device=device)
        self.update_count = 0
        """``t``: vector updates since the weights were last set."""
        self.slice_index = 0
        """The next column to read."""
        self.transfer_counter = 0
        """Completed sweeps over the columns (chopped and dynamic)."""
        self.transfers = 0
        """Transfer events so far (reads of ``n_reads_per_transfer`` columns each)."""
        self.m_x = 0.0
        self.m_d = 0.0
        self.last_fast_lr = 0.0
        """``lambda_A`` of the last update (aihwkit's ``tmp_count_lr``)."""
        self.fast.clip_(self.A)
        self.slow.clip_(self.C)

    # -- the contract -----------------------------------------------------------------------
    @property
    def transfer_reads(self) -> int:
        """Columns (rows with ``transfer_columns`` false) of ``A`` read by transfers so far: one
        MVM of a one-hot input each (the training cost's input)."""
        return self.transfers * min(self.device_cfg.n_reads_per_transfer, self.c_in)

    @property
    def w_min(self) -> torch.Tensor:
        """Lower bound of the visible weight of every cross-point ``(out, in)``."""
        return self._tile_layout(self._combine(self.fast.w_min, self.slow.w_min, self.fast.w_max))

    @property
    def w_max(self) -> torch.Tensor:
        """Upper bound of the visible weight of every cross-point ``(out, in)``."""
        return self._tile_layout(self._combine(self.fast.w_max, self.slow.w_max, self.fast.w_min))

    @torch.no_grad()
    def clip_(self, weight: torch.Tensor) -> torch.Tensor:
        """Set the weights (aihwkit ``onSetWeights``): ``A = 0``, ``C = W / gamma_C`` clipped into
        C's bounds; the update counter and the next column restart (choppers and sweeps do not);
        ``weight`` then shows the visible weight."""
        core = weight.detach().t() if self.transposed else weight.detach()
        self.A.zero_()
        self.fast.clip_(self.A)
        self.C.copy_(core / self.gamma_c)
        self.slow.clip_(self.C)
        self.update_count = 0
        self.slice_index = 0
        self._show(weight)
        return weight

    @torch.no_grad()
    def update_(self, weight: torch.Tensor, x: torch.Tensor, d: torch.Tensor, lr: float) -> torch.Tensor:
        """Update with inputs ``x`` ``(N, in)`` and errors ``d`` ``(N, out)``; ``weight`` shows the
        visible weight afterwards."""
        lr = float(lr)
        x = x.detach().reshape(-1, self.in_size).to(self.dtype)
        d = d.detach().reshape(-1, self.out_size).to(self.dtype)
        if x.shape[0] != d.shape[0]:
            raise ValueError(f"x has {x.shape[0]} rows but d has {d.shape[0]}; they must be the same samples")
        n = x.shape[0]
        if lr == 0.0 or n == 0:
            return weight
        if lr < 0.0:
            lr, d = -lr, -d
        if self.transposed:
            x, d = d, x
        fast_lr = self._fast_lr(x, d, lr)
        self.last_fast_lr = fast_lr
        begin = 0
        for end, cols, k0 in self._plan(n, self._every(n)):
            self._pulse_fast(x[begin:end], d[begin:end], fast_lr)
            if cols is not None:
                self._transfer(cols, k0, lr, fast_lr)
            begin = end
        self.update_count += n
        self._show(weight)
        return weight

    def to(self, device: torch.device | str) -> TransferUpdater:
        """Move every state tensor to ``device``."""
        self.fast.to(device)
        self.slow.to(device)
        for name in ("A", "C", "H", "M", "P", "in_chopper", "out_chopper", "in_switched"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        if self.rng.device != torch.device(device):
            for name in ("slow_rng", "transfer_rng"):
                old = getattr(self, name)
                setattr(self, name, RandomSource(old.generator.initial_seed(), device=device,
                                                 mode=old.mode))
            self.slow.rng = self.slow_rng
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Devices, buffers, choppers and counters by name (tensors)."""
        out: dict[str, torch.Tensor] = {}
        for prefix, upd in (("fast.", self.fast), ("slow.", self.slow)):
            out.update({prefix + k: v for k, v in upd.state_dict().items()})
        for name in ("A", "C", "H", "M", "P", "in_chopper", "out_chopper", "in_switched"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.clone()
        out["counters"] = torch.tensor([self.update_count, self.slice_index, self.transfer_counter,
                                        self.transfers], dtype=torch.int64)
        out["running_max"] = torch.tensor([self.m_x, self.m_d, self.last_fast_lr], dtype=torch.float64)
        return out

    def load_state_dict(self, data: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned."""
        mine = self.state_dict()
        missing = sorted(set(mine) - set(data))
        if missing:
            raise ValueError(f"compound state lacks {', '.join(missing)}")
        unknown = sorted(k for k in set(data) - set(mine) if not k.endswith(".hidden"))
        if unknown:
            raise ValueError(f"compound state has unknown entries {', '.join(unknown)}")
        for prefix, upd in (("fast.", self.fast), ("slow.", self.slow)):
            upd.load_state_dict({k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)})
        for name in ("A", "C", "H", "M", "P", "in_chopper", "out_chopper", "in_switched"):
            if getattr(self, name) is not None:
                setattr(self, name, data[name].clone())
        self.update_count, self.slice_index, self.transfer_counter, self.transfers = (
            int(v) for v in data["counters"].tolist())
        self.m_x, self.m_d, self.last_fast_lr = (float(v) for v in data["running_max"].tolist())

    # -- the visible weight -----------------------------------------------------------------
    def visible(self) -> torch.Tensor:
        """``gamma_A A + gamma_C C`` in the core layout (``A`` de-chopped for chopped kinds)."""
        w = self.C if self.gamma_c == 1.0 else self.C * self.gamma_c
        if self.gamma_a == 0.0:
            return w
        a = self.A
        if self.kind in ("chopped", "dynamic"):
            sign = self._sign(self.out_chopper)[:, None] * self._sign(self.in_chopper)[None, :]
            a = a * sign
        return w + self.gamma_a * a

    def _show(self, weight: torch.Tensor) -> None:
        weight.copy_(self._tile_layout(self.visible()))

    def _tile_layout(self, core: torch.Tensor) -> torch.Tensor:
        return core.t() if self.transposed else core

    def _combine(self, a_bound: torch.Tensor, c_bound: torch.Tensor, a_other: torch.Tensor) -> torch.Tensor:
        a = a_bound if self.gamma_a >= 0.0 else a_other
        c = self.gamma_c * c_bound
        return c + self.gamma_a * a if self.gamma_a != 0.0 else c

    @staticmethod
    def _sign(flags: torch.Tensor) -> torch.Tensor:
        """Chopper flags (True: -1) as signs."""
        return 1.0 - 2.0 * flags.to(torch.float32)

    # -- schedule ---------------------------------------------------------------------------
    def _every(self, m_batch: int) -> int:
        """Vector updates between transfers (0: never)."""
        cfg = self.device_cfg
        te = cfg.transfer_every
        if te < 0.0 and self.kind in ("chopped", "dynamic"):
            fast = cfg.fast
            n_states = (fast.w_max - fast.w_min) / self.dw_a
            return max(1, round(n_states / self.c_in * abs(te)))
        if te <= 0.0:
            return 0
        if cfg.units_in_mbatch:
            return max(1, math.ceil(te * m_batch))
        return max(1, round(te))

    def _plan(self, n: int, every: int) -> list[tuple[int, torch.Tensor | None, int]]:
        """The chunks of a batch of ``n`` vectors: ``(end, columns, first column)``: vectors up to
        ``end`` are pulsed into ``A``, then ``columns`` (a tensor, None: no transfer) are read and
        written. Advances the column pointer."""
        if every <= 0:
            return [(n, None, 0)]
        t = self.update_count
        first = (t // every + 1) * every - t - 1  # the first vector that completes a period
        samples = range(first, n, every)
        count = len(samples)
        if count == 0:
            return [(n, None, 0)]
        cfg = self.device_cfg
        n_reads = min(cfg.n_reads_per_transfer, self.c_in)
        device = self.A.device
        offsets = torch.arange(n_reads, device=device)
        if cfg.random_selection:
            u = self.transfer_rng.uniform((count,), dtype=torch.float64, fresh=True).to(device)
            starts = (u * self.c_in).long().clamp_(max=self.c_in - 1)
            cols = ((starts[:, None] + offsets[None, :]) % self.c_in).reshape(-1)
            self.slice_index = int((starts[-1] + n_reads) % self.c_in)
            k0 = 0
            group = 1  # random columns may repeat: one transfer per chunk
        else:
            k0 = self.slice_index
            cols = (k0 + torch.arange(count * n_reads, device=device)) % self.c_in
            self.slice_index = (k0 + count * n_reads) % self.c_in
            group = 1 if self.update_cfg.mode == "exact" else max(1, self.c_in // n_reads)
        chunks: list[tuple[int, torch.Tensor | None, int]] = []
        for g in range(0, count, group):
            last = min(g + group, count) - 1
            end = samples[last] + 1
            chunks.append((end, cols[g * n_reads:(last + 1) * n_reads], (k0 + g * n_reads) % self.c_in))
        if self.update_cfg.mode == "exact":
            if chunks[-1][0] < n:
                chunks.append((n, None, 0))
        else:  # the last chunk's reads come after the whole batch
            end, c, k = chunks[-1]
            chunks[-1] = (n, c, k)
        self.transfers += count
        return chunks

    # -- the fast update --------------------------------------------------------------------
    def _fast_lr(self, x: torch.Tensor, d: torch.Tensor, lr: float) -> float:
        """``lambda_A`` of this mini-batch (aihwkit ``getPulseCountLearningRate``)."""
        cfg = self.device_cfg
        if self.kind in ("chopped", "dynamic") and cfg.auto_scale:
            stats = torch.stack([x.abs().amax(-1).mean(), d.abs().amax(-1).mean()]).tolist()
            tau = 1.0 - cfg.auto_momentum
            for name, new in zip(("m_x", "m_d"), stats):
                m = getattr(self, name)
                if m <= 0.0:
                    m = new
                elif new > 0.0:
                    m = (1.0 - tau) * m + tau * new
                setattr(self, name, m)
            if cfg.fast_lr > 0.0:
                rate = cfg.fast_lr * self.update_cfg.desired_bl * self.dw_a
                if self.m_x > 0.0 and self.m_d > 0.0:
                    rate /= self.m_x * self.m_d
                return rate * lr if cfg.scale_fast_lr else rate
        if cfg.fast_lr > 0.0:
            return cfg.fast_lr * lr if cfg.scale_fast_lr else cfg.fast_lr
        return lr

    def _pulse_fast(self, x: torch.Tensor, d: torch.Tensor, fast_lr: float) -> None:
        if x.shape[0] == 0:
            return
        if self.kind in ("chopped", "dynamic"):
            x = x * self._sign(self.in_chopper).to(x.dtype)
            d = d * self._sign(self.out_chopper).to(d.dtype)
        self.fast.update_(self.A, x, d, fast_lr)

    # -- the transfer -----------------------------------------------------------------------
    def _read(self, cols: torch.Tensor) -> torch.Tensor:
        """``v = read(A, e_k)`` for every column of ``cols`` ``(R,)``: ``(c_out, R)``.

        A forward MVM of one-hot inputs through the transfer periphery; only the read columns
        enter the product (the others meet a zero input)."""
        r = cols.numel()
        w = self.A.index_select(1, cols).unsqueeze(0)  # (1, out, R)
        eye = torch.eye(r, dtype=self.A.dtype, device=self.A.device).unsqueeze(0)
        y = self.read_io.mvm(eye, w, self.transfer_rng)  # (1, R, out)
        return y[0].t()

    def _write(self, cols: torch.Tensor, counts: torch.Tensor, lr: float) -> None:
        """Pulse ``C[:, cols] += lr counts`` (``counts`` ``(c_out, R)``) with one-hot inputs (only
        the read columns are touched)."""
        eye = torch.eye(cols.numel(), dtype=self.C.dtype, device=self.C.device)
        self.slow.update_columns_(self.C, cols, eye, -counts.t(), lr)

    def _transfer_lr(self, lr: float) -> float:
        cfg = self.device_cfg
        lr_tr = cfg.transfer_lr * (lr if cfg.scale_transfer_lr else 1.0)
        if self.kind != "v1" and self.gamma_a > 0.0 and self.gamma_c > 0.0:
            lr_tr *= self.gamma_a / self.gamma_c
        return lr_tr

    def _transfer(self, cols: torch.Tensor, k0: int, lr: float, fast_lr: float) -> None:
        v = self._read(cols)
        if self.kind == "v1":
            self._transfer_v1(cols, v, lr)
        elif self.kind == "buffered":
            self._transfer_buffered(cols, v, lr)
        else:
            self._transfer_chopped(cols, k0, v, lr, fast_lr)

    def _transfer_v1(self, cols: torch.Tensor, v: torch.Tensor, lr: float) -> None:
        lr_tr = self._transfer_lr(lr)
        if lr_tr != 0.0:
            if lr_tr < 0.0:
                lr_tr, v = -lr_tr, -v
            self._write(cols, v, lr_tr)
        self._after_reads(cols)

    def _reset_columns(self, cols: torch.Tensor) -> None:
        """Reset columns of ``A`` to zero (hidden and shown weight)."""
        if cols.numel() == 0:
            return
        self.A.index_fill_(1, cols, 0.0)
        hidden = self.fast._hidden
        if hidden is not None:
            hidden.index_fill_(1, cols, 0.0)
            self.fast._seen_version = self.A._version

    def _transfer_buffered(self, cols: torch.Tensor, v: torch.Tensor, lr: float) -> None:
        cfg: BufferedTransferCompound = self.device_cfg  # type: ignore[assignment]
        bound = float(cfg.transfer_update.desired_bl)
        bg = cfg.thres_scale * self.dw_c
        omega = self.H.index_select(1, cols).add_(v, alpha=abs(self._transfer_lr(lr)))
        n = torch.trunc(omega / bg).clamp_(-bound, bound)
        fired = n != 0
        if cfg.forget_buffer:
            omega = torch.where(fired, cfg.momentum * omega, omega)
        else:
            omega = omega - (1.0 - cfg.momentum) * n * bg
        self.H.index_copy_(1, cols, omega)
        self._write(cols, n, cfg.step * self.dw_c)
        self._after_reads(cols)

    def _after_reads(self, cols: torch.Tensor) -> None:
        p = self.device_cfg.with_reset_prob
        if p > 0.0:
            reset = self.transfer_rng.uniform((cols.numel(),), dtype=self.A.dtype) < p
            self._reset_columns(cols[reset.to(cols.device)])

    def _lr_scale(self, lr: float, fast_lr: float) -> float:
        cfg: ChoppedTransferCompound = self.device_cfg  # type: ignore[assignment]
        bg = (cfg.buffer_granularity if cfg.buffer_granularity > 0.0 else 1.0) * self.dw_a
        if cfg.auto_granularity > 0.0:
            te = abs(cfg.transfer_every) if cfg.transfer_every != 0.0 else 1.0
            bg *= cfg.auto_granularity / (self.c_in * te)
        lr_tr = abs(self._transfer_lr(lr))
        if cfg.correct_gradient_magnitudes:
            bg *= self.dw_c / self.dw_a
            return lr_tr / fast_lr / bg if fast_lr > 0.0 else 0.0
        return lr_tr / bg

    def _transfer_chopped(self, cols: torch.Tensor, k0: int, v: torch.Tensor, lr: float,
                          fast_lr: float) -> None:
        cfg: ChoppedTransferCompound = self.device_cfg  # type: ignore[assignment]
        dynamic = self.kind == "dynamic"
        r = cols.numel()
        device = self.A.device
        # The chunk reads the consecutive columns k0, k0 + 1, ... (at most in_size of them); the
        # sweep counter advances after the read of the last column.
        last_at = self.c_in - 1 - k0  # index of the read of the last column (>= r: none)
        ends = cols == self.c_in - 1
        tc_t = self.transfer_counter + torch.cumsum(ends.long(), 0) - ends.long()
        sweeps = self.transfer_counter + (1 if last_at < r else 0)
        p = cfg.in_chop_prob
        n_s = max(math.ceil(1.0 / p), 2) if p > 0.0 else 0
        # output choppers in force at each read: flipped after the read of the last column
        out_flip = None
        if not dynamic and cfg.out_chop_prob > 0.0 and last_at < r:
            out_flip = self.transfer_rng.uniform((self.c_out,), dtype=self.A.dtype).to(device) < cfg.out_chop_prob
        out_sign = self._sign(self.out_chopper).to(v.dtype)[:, None].expand(self.c_out, r)
        if out_flip is not None:
            after = torch.arange(r, device=device) > last_at
            out_sign = torch.where(out_flip[:, None] & after[None, :], -out_sign, out_sign)
        in_sign = self._sign(self.in_chopper.index_select(0, cols)).to(v.dtype)
        sign = out_sign * in_sign[None, :]
        bound = float(cfg.transfer_update.desired_bl)
        lr_scale = self._lr_scale(lr, fast_lr)
        if dynamic:
            cur = tc_t % n_s + 1
            beta = min(cfg.tail_weightening / n_s, 1.0)
            switched = self.in_switched.index_select(0, cols)
            self.in_switched.index_fill_(0, cols, False)
            past = torch.where(switched[None, :], self.M.index_select(1, cols), self.P.index_select(1, cols))
            self.P.index_copy_(1, cols, past)
            scale = torch.full((r,), lr_scale, dtype=v.dtype, device=device)
            if cfg.experimental_correct_accumulation:
                scale = scale / torch.clamp(cur.to(v.dtype), max=1.0 / self.dw_a)
            omega = self.H.index_select(1, cols).addcmul_((v - past) * sign, scale[None, :])
        else:
            omega = (v * sign).mul_(lr_scale)
            if not cfg.no_buffer:
                omega.add_(self.H.index_select(1, cols))
        fired = omega.abs() >= 1.0
        n = torch.where(fired, torch.trunc(omega).clamp_(-bound, bound), torch.zeros_like(omega))
        if cfg.forget_buffer:
            kept = cfg.momentum * omega
        else:
            kept = omega - (1.0 - cfg.momentum) * n
            if dynamic and cfg.buffer_cap > 0.0:
                cap = cfg.buffer_cap * bound
                kept = kept.clamp(-cap, cap)
        omega = torch.where(fired, kept, omega)
        self.H.index_copy_(1, cols, omega)
        if dynamic:
            m = self.M.index_select(1, cols).mul_(1.0 - beta).add_(v, alpha=beta)
            self.M.index_copy_(1, cols, m)
            n = n * (tc_t > n_s).to(n.dtype)[None, :]  # warm-up: no writes in the first n_s + 1 sweeps
        self._write(cols, n, cfg.step * self.dw_c)
        # choppers flip after their column's read
        if p > 0.0:
            if dynamic:
                flip = cur == n_s
                if cfg.in_chop_random:
                    flip = flip | (self.transfer_rng.uniform((r,), dtype=self.A.dtype).to(device) < p)
            elif cfg.in_chop_random:
                flip = self.transfer_rng.uniform((r,), dtype=self.A.dtype).to(device) < p
            else:
                flip = (tc_t % n_s) + 1 == n_s
            self.in_chopper.index_copy_(0, cols, self.in_chopper.index_select(0, cols) ^ flip)
            if dynamic:
                self.in_switched.index_copy_(0, cols, flip)
        if out_flip is not None:
            self.out_chopper ^= out_flip
        self.transfer_counter = sweeps

    # -- introspection (tests, docs) --------------------------------------------------------
    def hidden_state(self) -> dict[str, Any]:
        """The algorithm's state in the tile's layout (copies; for tests and inspection)."""
        out: dict[str, Any] = {"A": self._tile_layout(self.A).clone(), "C": self._tile_layout(self.C).clone()}
        for name in ("H", "M", "P"):
            value = getattr(self, name)
            if value is not None:
                out[name] = self._tile_layout(value).clone()
        out.update(in_chopper=self.in_chopper.clone(), out_chopper=self.out_chopper.clone(),
                   update_count=self.update_count, transfers=self.transfers,
                   transfer_counter=self.transfer_counter, slice_index=self.slice_index)
        return out
