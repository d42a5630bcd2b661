"""aihwkit's pulse-by-pulse update order, for reference (slow: tests and benchmarks only).

Sample by sample and slot by slot, as aihwkit's ``PulsedRPUWeightUpdater::updateVectorWithDevice``
does: the slot's input and error bits are drawn, and every device whose two bits coincide gets
one pulse through the device's single-pulse rule (:meth:`DeviceModel.pulse_`: cycle-to-cycle
noise per pulse, clipping after every pulse). A device gets at most one pulse per slot, so the
order inside a slot does not matter.
"""

from __future__ import annotations

import torch

from simulator.configs.update import UpdateConfig
from simulator.pulsed.devices import DeviceModel, State
from simulator.pulsed.management import probabilities
from simulator.rng import RandomSource

__all__ = ["reference_update_"]


@torch.no_grad()
def reference_update_(
    model: DeviceModel,
    state: State,
    weight: torch.Tensor,
    x: torch.Tensor,
    d: torch.Tensor,
    lr: float,
    update_cfg: UpdateConfig,
    granularity: float,
    rng: RandomSource,
) -> torch.Tensor:
    """Pulse-by-pulse update of ``weight`` in place (``lr > 0``)."""
    probs = probabilities(x, d, lr, granularity, update_cfg)
    p_x, p_d = probs.p_x(), probs.p_d()
    out_size, in_size = weight.shape
    for b in range(x.shape[0]):
        # -sign(x d): +1 up, -1 down
        sign = -torch.sign(d[b]).unsqueeze(1) * torch.sign(x[b]).unsqueeze(0)
        for _ in range(int(probs.bl[b])):
            x_bits = rng.uniform((in_size,), dtype=weight.dtype).to(weight.device) < p_x[b]
            d_bits = rng.uniform((out_size,), dtype=weight.dtype).to(weight.device) < p_d[b]
            hit = d_bits.unsqueeze(1) & x_bits.unsqueeze(0)
            direction = torch.where(hit, sign, 0.0)
            xi = rng.normal((out_size, in_size), dtype=weight.dtype).to(weight.device)
            model.pulse_(weight, state, direction, xi)
    return weight
