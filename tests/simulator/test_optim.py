"""AnalogSGD: SGD for digital and float-update weights, pulsed updates with the current lr."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from simulator import AnalogSGD, convert_to_analog
from simulator.errors import SimulatorError
from simulator.layers import analog_layers
from simulator.mapping import MAX_PENDING


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 5))


def _batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [(torch.rand(8, 24, generator=gen), torch.randint(0, 5, (8,), generator=gen)) for _ in range(n)]


def test_ideal_analog_training_is_exactly_torch_sgd() -> None:
    net = _net()
    model = convert_to_analog(net, "ideal", keep_digital=["2"])  # one analog, one digital layer
    kwargs = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3, "nesterov": True}
    opt_ref = torch.optim.SGD(net.parameters(), **kwargs)
    opt = AnalogSGD(model.parameters(), **kwargs)
    for x, y in _batches(5):
        for m, o in ((net, opt_ref), (model, opt)):
            o.zero_grad()
            F.cross_entropy(m(x), y).backward()
            o.step()
    w, b = model[0].get_weights()
    assert torch.equal(w, net[0].weight.detach()) and torch.equal(b, net[0].bias.detach())
    assert torch.equal(model[2].weight, net[2].weight)


def test_pulsed_updates_use_the_scheduled_learning_rate() -> None:
    model = convert_to_analog(_net(), "gokmen_vlasov", seed=2)
    opt = AnalogSGD(model.parameters(), lr=0.5)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.0)
    snapshots = []
    for x, y in _batches(3):
        snapshots.append(torch.cat([m.array.weight.detach().flatten() for _, m in analog_layers(model)]))
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
    final = torch.cat([m.array.weight.detach().flatten() for _, m in analog_layers(model)])
    assert not torch.equal(snapshots[0], snapshots[1]), "lr 0.5 fires pulses"
    assert torch.equal(snapshots[1], snapshots[2]) and torch.equal(snapshots[2], final), "lr 0: none"


def test_weight_decay_and_momentum_do_not_touch_pulsed_weights() -> None:
    model = convert_to_analog(_net(), "gokmen_vlasov", seed=3)
    opt = AnalogSGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.5)
    before = model[0].array.weight.detach().clone()
    bias_before = model[0].bias.detach().clone()
    x = torch.zeros(4, 24)  # zero inputs: no coincidences, so no pulses on the first layer
    F.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    assert torch.equal(model[0].array.weight.detach(), before)
    assert not torch.equal(model[0].bias.detach(), bias_before), "the digital bias is SGD-trained"


def test_zero_grad_discards_stored_pulses_and_frozen_layers_store_none() -> None:
    model = convert_to_analog(_net(), "gokmen_vlasov", seed=4)
    opt = AnalogSGD(model.parameters(), lr=0.5)
    x, y = _batches(1)[0]
    F.cross_entropy(model(x), y).backward()
    assert model[0].array.has_pending()
    opt.zero_grad()
    assert not model[0].array.has_pending()
    model[0].array.weight.requires_grad_(False)
    F.cross_entropy(model(x), y).backward()
    assert not model[0].array.has_pending() and model[2].array.has_pending()


def test_backward_passes_without_analog_sgd_fail_loudly() -> None:
    layer = convert_to_analog(nn.Sequential(nn.Linear(3, 2)), "gokmen_vlasov")[0]
    x = torch.rand(2, 3)
    for _ in range(MAX_PENDING):
        layer(x).sum().backward()
    with pytest.raises(SimulatorError, match="simulator.AnalogSGD"):
        layer(x).sum().backward()
