"""Running totals of the pulses a pulsed update fires: :class:`PulseCounter`.

The training cost of in-situ pulsed training is the pulses the update actually fired, times the
energy per pulse of the device technology, plus the charging of the lines that carried them
(see :mod:`simulator.cost`). Every updater keeps a counter:

- ``device_pulses``: coincidences at devices (each one a programming pulse through a device);
- ``row_pulses`` / ``col_pulses``: voltage pulses on the input (row) and error (column) lines,
  one per bit set in a slot of a line's stochastic stream;
- ``slots``: pulse slots, ``sum_b BL_b`` over the update vectors; every slot lasts one pulse
  width and all devices of a tile are pulsed in parallel, so this is the update latency of the
  tile in pulse widths;
- ``vectors``: update vectors (samples, or patches of a convolution);
- ``clipped_vectors``: update vectors whose pulse train saturated: a scaled input or error
  beyond 1, so its bit probability is capped at 1 and the device gets fewer pulses than
  ``lr |x_j d_i| / dw_min`` (with update management: ``lr max|x| max|d| > desired_bl dw_min``,
  the pulse count clipped at the bit length). Counted exactly in both modes (it depends on the
  probabilities only, not on the drawn bits).

The exact mode counts the bits and coincidences it drew; the aggregate mode adds the expected
counts that its moments already hold (``E[n] = sum_b BL_b p_x p_d`` per device). The totals stay
on the updater's device as one small tensor (no host synchronization per update) until
:meth:`totals` reads them.
"""

from __future__ import annotations

import torch

__all__ = ["COUNTS", "PulseCounter"]

COUNTS = ("device_pulses", "row_pulses", "col_pulses", "slots", "vectors", "clipped_vectors")
"""The names of the totals, in the order of :meth:`PulseCounter.totals`."""


class PulseCounter:
    """Totals of the pulses of one updater (see the module doc)."""

    __slots__ = ("_acc",)

    def __init__(self) -> None:
        self._acc: torch.Tensor | None = None

    def add(self, device_pulses: torch.Tensor | float, row_pulses: torch.Tensor | float,
            col_pulses: torch.Tensor | float, slots: torch.Tensor | float,
            vectors: torch.Tensor | float, clipped_vectors: torch.Tensor | float = 0.0) -> None:
        """Add the pulses of one update (scalars or 0-d tensors, on any one device)."""
        values = (device_pulses, row_pulses, col_pulses, slots, vectors, clipped_vectors)
        like = next((v for v in values if isinstance(v, torch.Tensor)), None)
        device = like.device if like is not None else torch.device("cpu")
        step = torch.stack([v.detach().to(torch.float64).reshape(()) if isinstance(v, torch.Tensor)
                            else torch.tensor(float(v), dtype=torch.float64, device=device)
                            for v in values])
        if self._acc is None:
            self._acc = step
        else:
            if self._acc.device != step.device:
                self._acc = self._acc.to(step.device)
            self._acc.add_(step)

    def totals(self) -> dict[str, float]:
        """The totals so far by name (all 0 before the first update)."""
        if self._acc is None:
            return dict.fromkeys(COUNTS, 0.0)
        return dict(zip(COUNTS, (float(v) for v in self._acc.cpu())))

    def reset(self) -> None:
        """Start counting from zero."""
        self._acc = None

    @staticmethod
    def sum(counters: list[PulseCounter]) -> dict[str, float]:
        """The totals of several counters added up."""
        out = dict.fromkeys(COUNTS, 0.0)
        for c in counters:
            for k, v in c.totals().items():
                out[k] += v
        return out
