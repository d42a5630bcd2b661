"""``AnalogSGD``: SGD that drives the pulsed updates of analog tiles.

Digital parameters, and analog weights with a floating-point update (``update.mode = "none"``),
receive an ordinary ``torch.optim.SGD`` step (momentum, dampening, Nesterov, weight decay). The
weights of pulsed tiles get no gradient; their backward passes store each layer's inputs and
output gradients, and :meth:`AnalogSGD.step` hands them to the tiles' updaters with the current
learning rate of the parameter's group (so learning-rate schedulers work). Momentum and weight
decay do not apply to pulsed weights: the device decides how a weight changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from simulator.mapping import pending_arrays

__all__ = ["AnalogSGD"]


class AnalogSGD(torch.optim.SGD):
    """``torch.optim.SGD`` plus the pulsed updates of the analog tiles among ``params``."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov, **kwargs)

    def _groups_by_param(self) -> dict[int, dict[str, Any]]:
        return {id(p): group for group in self.param_groups for p in group["params"]}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply the pulsed updates of the owned analog tiles, then the SGD step of the rest."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        arrays = pending_arrays()
        if arrays:
            groups = self._groups_by_param()
            for array in arrays:
                group = groups.get(id(array.weight))
                if group is not None:
                    array.apply_pending(float(group["lr"]))
        super().step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients and the stored pulsed updates of the owned analog tiles."""
        super().zero_grad(set_to_none)
        arrays = pending_arrays()
        if arrays:
            groups = self._groups_by_param()
            for array in arrays:
                if id(array.weight) in groups:
                    array.discard_pending()
