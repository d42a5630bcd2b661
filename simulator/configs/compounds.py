"""Compound devices for training on asymmetric devices: the Tiki-Taka family (aihwkit's compounds).

Each cross-point of a compound tile holds two devices: ``fast`` (aihwkit's ``unit_cell_devices[0]``,
the gradient accumulator ``A``) and ``slow`` (``unit_cell_devices[1]``, the weight ``C``). The
gradient is pulsed into ``A`` only; every ``transfer_every`` updates one column of ``A`` is read
through the transfer periphery (``transfer_forward``) and written into the same column of ``C``
with pulses (``transfer_update``). The tile shows ``W = gamma_A A + gamma_C C`` (``W = C`` with the
default ``gamma = 0``: fully hidden).

=============================  ====================================================================
kind                           algorithm
=============================  ====================================================================
TransferCompound               Tiki-Taka v1 (Gokmen & Haensch 2020): ``C[:, k] += lr_tr A[:, k]``
BufferedTransferCompound       TTv2 (Gokmen 2021): reads accumulate in a digital buffer ``H``; ``C``
                               gets one pulse per element whose buffer crosses the threshold
ChoppedTransferCompound        c-TTv2 (Rasch et al. 2024): TTv2 with sign-flipping choppers on the
                               inputs (and outputs) of ``A``, undone in ``H``: offsets cancel
DynamicTransferCompound        AGAD (Rasch et al. 2024): c-TTv2 with an on-the-fly reference, the
                               tail mean of each chopper period, subtracted from every read
=============================  ====================================================================

Field names and defaults are aihwkit 1.2.0's Python ones (the specification is
``docs/simulator.md``, section "Training on asymmetric devices"). The two devices may be any single
pulsed device model. The implementation is :mod:`simulator.pulsed.transfer`; this module is
torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from simulator._config import check_range
from simulator.configs.devices import ConstantStepDevice, DeviceConfig, PulsedDeviceConfig
from simulator.configs.io import IOConfig
from simulator.configs.update import UpdateConfig
from simulator.errors import ConfigError

__all__ = [
    "BufferedTransferCompound",
    "ChoppedTransferCompound",
    "DynamicTransferCompound",
    "TransferCompound",
]


def _buffered_update() -> UpdateConfig:
    """aihwkit's ``transfer_update`` of the buffered compounds: one pulse per threshold crossing."""
    return UpdateConfig(desired_bl=1, update_bl_management=False, update_management=False)


@dataclass
class TransferCompound(DeviceConfig):
    """Tiki-Taka v1 (aihwkit ``TransferCompound``): ``A`` learns, columns of ``A`` move to ``C``."""

    fast: PulsedDeviceConfig = field(default_factory=ConstantStepDevice)
    """The fast device ``A`` (aihwkit ``unit_cell_devices[0]``): receives the gradient pulses."""

    slow: PulsedDeviceConfig = field(default_factory=ConstantStepDevice)
    """The slow device ``C`` (aihwkit ``unit_cell_devices[1]``): receives the transfer writes."""

    gamma: float = 0.0
    """Weight of ``A`` in the visible weight ``W = gamma A + C``; 0: fully hidden (``W = C``)."""

    gamma_vec: tuple[float, ...] = ()
    """Explicit weights ``(gamma_A, gamma_C)`` of the visible weight (overrides ``gamma``; the last
    must be non-zero); empty: ``(gamma, 1)``."""

    transfer_every: float = 1.0
    """Updates between two transfers (in mini-batches with ``units_in_mbatch``, else in vector
    updates, i.e. samples times convolution patches); <= 0: never."""

    units_in_mbatch: bool = True
    """Count ``transfer_every`` in mini-batches (``ceil(transfer_every * m_batch)`` vectors)."""

    n_reads_per_transfer: int = 1
    """Consecutive columns (rows) read and written per transfer."""

    transfer_columns: bool = True
    """Read columns of ``A`` (forward direction); false: rows (backward direction)."""

    with_reset_prob: float = 0.0
    """Probability that a column of ``A`` is reset to zero right after its transfer."""

    random_selection: bool = False
    """Start every transfer at a random column instead of the next one in order."""

    fast_lr: float = 1.0
    """Learning rate of the pulses into ``A`` (<= 0: the optimizer's rate)."""

    scale_fast_lr: bool = True
    """Multiply ``fast_lr`` by the optimizer's learning rate (aihwkit 1.2 default for v1/TTv2)."""

    transfer_lr: float = 1.0
    """Learning rate of the transfer writes into ``C``."""

    scale_transfer_lr: bool = True
    """Multiply ``transfer_lr`` by the optimizer's learning rate."""

    transfer_forward: IOConfig = field(default_factory=IOConfig)
    """Periphery of the transfer read (DAC, ADC, noise); noise and bound management are always
    off for it, as in aihwkit."""

    transfer_update: UpdateConfig = field(default_factory=UpdateConfig)
    """Pulse trains of the transfer write (BL and update management). Its ``mode`` and ``rng``
    are not used: the write follows the tile's ``update.mode``."""

    # -- derived ---------------------------------------------------------------------------------
    @property
    def is_pulsed(self) -> bool:
        """Compounds are trained by pulses."""
        return True

    @property
    def is_compound(self) -> bool:
        """Two devices per cross-point with transfers between them."""
        return True

    def weight_granularity(self) -> float:
        """Granularity of the update pulses, those of ``A``."""
        return self.fast.weight_granularity()

    def gammas(self) -> tuple[float, float]:
        """``(gamma_A, gamma_C)`` of the visible weight."""
        if self.gamma_vec:
            return float(self.gamma_vec[0]), float(self.gamma_vec[1])
        return float(self.gamma), 1.0

    def fully_hidden(self) -> bool:
        """Whether the tile's weight is ``C`` alone."""
        g_a, g_c = self.gammas()
        return g_a == 0.0 and g_c == 1.0

    def validate(self) -> None:
        _check_finite("gamma", self.gamma)
        if self.gamma_vec:
            if len(self.gamma_vec) != 2:
                raise ConfigError("gamma_vec", f"got {list(self.gamma_vec)!r}; accepted: empty or two "
                                               "numbers (gamma_A, gamma_C)")
            if self.gamma_vec[1] == 0.0:
                raise ConfigError("gamma_vec", f"got {list(self.gamma_vec)!r}; accepted: a non-zero last "
                                               "entry (the weight of C)")
        _check_finite("transfer_every", self.transfer_every)
        check_range("n_reads_per_transfer", self.n_reads_per_transfer, 1, None)
        check_range("with_reset_prob", self.with_reset_prob, 0.0, 1.0)
        _check_finite("fast_lr", self.fast_lr)
        _check_finite("transfer_lr", self.transfer_lr)


@dataclass
class BufferedTransferCompound(TransferCompound):
    """TTv2 (aihwkit ``BufferedTransferCompound``): reads of ``A`` accumulate in a digital buffer ``H``.

    Per read of column ``k``: ``omega = H + |lr_tr| v``, ``n = clip(trunc(omega / (thres_scale
    dw_C)), -B, B)`` with ``B = transfer_update.desired_bl``, ``C[:, k] += n step dw_C`` (pulsed),
    and ``H = momentum omega`` where ``n != 0`` (``forget_buffer``) or ``H = omega - (1 - momentum) n
    thres_scale dw_C``.
    """

    thres_scale: float = 1.0
    """Threshold of the buffer in units of ``C``'s granularity."""

    step: float = 1.0
    """Size of one transfer write in units of ``C``'s granularity."""

    momentum: float = 0.1
    """Fraction of the buffer kept after a write."""

    forget_buffer: bool = True
    """After a write keep ``momentum * omega`` (else subtract ``(1 - momentum)`` of what was written)."""

    transfer_update: UpdateConfig = field(default_factory=_buffered_update)
    """Pulse trains of the transfer write (default: one pulse per unit of ``n``)."""

    def validate(self) -> None:
        super().validate()
        check_range("thres_scale", self.thres_scale, 0.0, math.inf, lo_open=True, hi_open=True)
        check_range("step", self.step, 0.0, math.inf, lo_open=True, hi_open=True)
        check_range("momentum", self.momentum, 0.0, 1.0)


@dataclass
class ChoppedTransferCompound(TransferCompound):
    """c-TTv2 (aihwkit ``ChoppedTransferCompound``; TTv2 with ``in_chop_prob = 0``).

    The gradient pulses into ``A`` have their signs flipped per input by ``in_chopper`` (and per
    output by ``out_chopper``); a read of column ``k`` is multiplied by the same signs before it
    enters the dimensionless buffer ``H`` (``omega = H + s v lr_scale``); where ``|omega| >= 1``,
    ``C[:, k]`` gets ``n = clip(trunc(omega), -B, B)`` pulses of ``step dw_C``. A constant offset
    of ``A`` (a reference or symmetry-point error) then changes sign with the chopper and
    averages out of ``H``. The chopper of column ``k`` flips after its read.
    """

    in_chop_prob: float = 0.1
    """Input chopper flip probability per read of its column (random), or its frequency (regular:
    every ``max(ceil(1 / p), 2)`` sweeps); 0: no chopper (TTv2)."""

    in_chop_random: bool = True
    """Flip the input choppers at random (else regularly, all in the same sweep)."""

    out_chop_prob: float = 0.0
    """Flip probability of each output chopper at the end of every sweep over the columns."""

    buffer_granularity: float = 1.0
    """Threshold of ``H`` in units of ``A``'s granularity (<= 0: 1)."""

    auto_granularity: float = 0.0
    """If > 0: the threshold is also scaled by ``auto_granularity / (in_size |transfer_every|)``."""

    step: float = 1.0
    """Size of one transfer write in units of ``C``'s granularity."""

    momentum: float = 0.0
    """Fraction of the buffer kept after a write."""

    forget_buffer: bool = True
    """After a write keep ``momentum * omega`` (else subtract ``(1 - momentum) n``)."""

    no_buffer: bool = False
    """Start every read from an empty buffer (Tiki-Taka v1 through this path)."""

    units_in_mbatch: bool = False
    """Count ``transfer_every`` in mini-batches (default: in vector updates)."""

    auto_scale: bool = False
    """Scale the fast learning rate by running maxima of ``|x|`` and ``|d|`` (``fast_lr desired_bl
    dw_A / (m_x m_d)``), so that a pulse train has about ``fast_lr desired_bl`` pulses."""

    auto_momentum: float = 0.99
    """Momentum of the running maxima of ``auto_scale`` (per mini-batch)."""

    correct_gradient_magnitudes: bool = False
    """Threshold in units of ``C``'s granularity and ``lr_scale`` divided by the fast rate."""

    fast_lr: float = 1.0
    """Learning rate of the pulses into ``A``: absolute unless ``scale_fast_lr`` (aihwkit 1.2)."""

    scale_fast_lr: bool = False
    """Multiply ``fast_lr`` by the optimizer's learning rate."""

    transfer_update: UpdateConfig = field(default_factory=_buffered_update)
    """Pulse trains of the transfer write (default: one pulse per unit of ``n``)."""

    def validate(self) -> None:
        super().validate()
        if self.n_reads_per_transfer != 1:
            raise ConfigError("n_reads_per_transfer", f"got {self.n_reads_per_transfer!r}; accepted: 1 "
                                                      f"({type(self).__name__} reads one column per transfer)")
        if self.random_selection:
            raise ConfigError("random_selection", f"got True; accepted: False ({type(self).__name__} "
                                                  "reads the columns in order)")
        if self.with_reset_prob != 0.0:
            raise ConfigError("with_reset_prob", f"got {self.with_reset_prob!r}; accepted: 0 "
                                                 f"({type(self).__name__} never resets A)")
        for name in ("in_chop_prob", "out_chop_prob", "momentum", "auto_momentum"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("step", self.step, 0.0, math.inf, lo_open=True, hi_open=True)
        _check_finite("buffer_granularity", self.buffer_granularity)
        check_range("auto_granularity", self.auto_granularity, 0.0, math.inf, hi_open=True)


@dataclass
class DynamicTransferCompound(ChoppedTransferCompound):
    """AGAD (aihwkit ``DynamicTransferCompound``): c-TTv2 with a dynamic reference.

    Per read of column ``k``: the raw read ``v`` enters ``H`` as ``(v - P[:, k]) s lr_scale``, where
    ``P`` is the tail mean ``M`` of the reads in the previous chopper period (``M`` is an
    exponential average of weight ``min(tail_weightening / n_s, 1)``, copied to ``P`` when the
    column's chopper flips). Any constant read offset cancels. No writes into ``C`` happen in the
    first ``n_s + 1`` sweeps (warm-up); output choppers are never flipped.
    """

    in_chop_prob: float = 0.1
    """Chopper frequency: every column's chopper flips every ``n_s = max(ceil(1 / p), 2)`` sweeps
    (must be > 0)."""

    in_chop_random: bool = False
    """Also flip each chopper at random with probability ``in_chop_prob`` per read."""

    tail_weightening: float = 5.0
    """Weight of the latest reads in the running mean: ``beta = min(tail_weightening / n_s, 1)``."""

    buffer_cap: float = 0.0
    """If > 0 (and not ``forget_buffer``): clip ``H`` to ``+- buffer_cap B`` after a write."""

    experimental_correct_accumulation: bool = False
    """Divide ``lr_scale`` by the position in the chopper period (``min(cur, 1 / dw_A)``)."""

    def validate(self) -> None:
        super().validate()
        check_range("in_chop_prob", self.in_chop_prob, 0.0, 1.0, lo_open=True)
        check_range("auto_momentum", self.auto_momentum, 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("tail_weightening", self.tail_weightening, 0.0, math.inf, lo_open=True, hi_open=True)
        check_range("buffer_cap", self.buffer_cap, 0.0, math.inf, hi_open=True)


def _check_finite(name: str, value: float) -> None:
    check_range(name, value, -math.inf, math.inf, lo_open=True, hi_open=True)


DeviceConfig.register_kinds(
    TransferCompound,
    BufferedTransferCompound,
    ChoppedTransferCompound,
    DynamicTransferCompound,
)
