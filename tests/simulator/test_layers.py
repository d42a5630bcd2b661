"""Analog layers and model conversion: the ideal preset is torch, im2col, seeds, state dicts."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from simulator import AnalogConv2d, AnalogLinear, AnalogSGD, convert_to_analog, n_tiles
from simulator.configs import IOConfig, get_preset
from simulator.errors import ConfigError, SimulatorError
from simulator.layers import analog_layers


def _grads(module: nn.Module, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Output, input gradient, weight gradient (torch layout) and bias gradient (or None)."""
    xi = x.clone().requires_grad_(True)
    y = module(xi)
    y.backward(g)
    bias = module.bias.grad if module.bias is not None else None
    if isinstance(module, (AnalogLinear, AnalogConv2d)):
        array = module.array
        grads = array.stacked(array.weight.grad)
        rows = []
        for r in range(array.n_row):
            cols = [grads[t, : tile.out_size, : tile.in_size]
                    for t, tile in enumerate(array.tiles) if tile.row == r]
            rows.append(torch.cat(cols, dim=0))
        weight = torch.cat(rows, dim=1).view_as(module.get_weights()[0])
    else:
        weight = module.weight.grad
    return y.detach(), xi.grad, weight, bias


@pytest.mark.parametrize(("n_in", "n_out", "shape"), [(784, 256, (32,)), (30, 7, (4, 3)), (600, 520, (5,))])
def test_ideal_linear_is_exactly_nn_linear(n_in: int, n_out: int, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    ref = nn.Linear(n_in, n_out)
    layer = AnalogLinear.from_linear(ref, get_preset("ideal"))
    assert layer.array.ideal_active
    x = torch.randn(*shape, n_in)
    g = torch.randn(*shape, n_out)
    for got, want in zip(_grads(layer, x, g), _grads(ref, x, g)):
        assert torch.equal(got, want)


@pytest.mark.parametrize("kwargs", [
    {"kernel_size": 3},
    {"kernel_size": (3, 2), "stride": 2, "padding": 1},
    {"kernel_size": 3, "padding": "same", "dilation": 2},
    {"kernel_size": 5, "padding": 2, "bias": False},
])
def test_ideal_conv_is_exactly_nn_conv2d(kwargs: dict) -> None:
    torch.manual_seed(1)
    ref = nn.Conv2d(3, 8, **kwargs)
    layer = AnalogConv2d.from_conv(ref, get_preset("ideal"))
    x = torch.randn(2, 3, 9, 11)
    y_ref = ref(x)
    g = torch.randn_like(y_ref)
    for got, want in zip(_grads(layer, x, g), _grads(ref, x, g)):
        assert (got is None and want is None) or torch.equal(got, want)


CLEAN = IOConfig(inp_bits=None, out_bits=None, out_bound=None, out_noise=0.0, w_noise=0.0,
                 bound_management="none")


@pytest.mark.parametrize("kwargs", [{"kernel_size": 3, "padding": 1}, {"kernel_size": (2, 3), "stride": (2, 1)},
                                    {"kernel_size": 3, "padding": "same"}])
def test_im2col_path_matches_conv2d(kwargs: dict) -> None:
    torch.manual_seed(2)
    ref = nn.Conv2d(4, 6, **kwargs).double()
    cfg = get_preset("ideal").with_overrides({"forward": CLEAN, "backward": CLEAN,
                                              "mapping.max_input_size": 16})
    layer = AnalogConv2d.from_conv(ref, cfg)
    assert not layer.array.ideal_active and layer.array.n_tiles == -(-layer.array.in_features // 16)
    x = torch.randn(3, 4, 7, 8, dtype=torch.float64)
    y_ref = ref(x)
    g = torch.randn_like(y_ref)
    for got, want in zip(_grads(layer, x, g), _grads(ref, x, g)):
        torch.testing.assert_close(got, want)


def test_pulsed_conv_update_receives_the_patches() -> None:
    torch.manual_seed(3)
    ref = nn.Conv2d(2, 3, 3, padding=1)
    layer = AnalogConv2d.from_conv(ref, get_preset("gokmen_vlasov"))
    x = torch.rand(2, 2, 5, 5)
    y = layer(x)
    g = torch.randn_like(y)
    y.backward(g)
    array = layer.array
    assert array.has_pending() and layer.bias.grad is not None
    slots, d = array._pending[0]
    patches = F.unfold(x, 3, padding=1).transpose(1, 2).reshape(-1, 18)
    assert torch.equal(slots, patches)
    assert torch.equal(d, g.permute(0, 2, 3, 1).reshape(-1, 3))
    before = array.weight.detach().clone()
    AnalogSGD(layer.parameters(), lr=0.5).step()
    assert not array.has_pending() and not torch.equal(array.weight.detach(), before)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 20), nn.ReLU(), nn.Linear(20, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def test_convert_to_analog_replaces_layers_and_keeps_digital_ones() -> None:
    torch.manual_seed(4)
    net = _Net()
    model = convert_to_analog(net, "ideal", keep_digital=["head.3"], seed=1)
    kinds = {name: type(m).__name__ for name, m in model.named_modules()}
    assert kinds["features.0"] == "AnalogConv2d" and kinds["head.1"] == "AnalogLinear"
    assert kinds["head.3"] == "Linear" and type(net.head[1]) is nn.Linear, "the original is untouched"
    assert [name for name, _ in analog_layers(model)] == ["features.0", "head.1"]
    assert n_tiles(model) == 2
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(model(x), net(x))
    digital_features = convert_to_analog(net, "ideal", keep_digital=["features"])
    assert [name for name, _ in analog_layers(digital_features)] == ["head.1", "head.3"]


def test_convert_to_analog_rejects_unknown_names_and_unsupported_layers() -> None:
    with pytest.raises(ConfigError) as info:
        convert_to_analog(_Net(), "ideal", keep_digital=["head.9"])
    assert info.value.path == "keep_digital[0]" and "head.3" in str(info.value)
    with pytest.raises(ConfigError, match="accepted: ideal, idealized"):
        convert_to_analog(_Net(), "no_such_preset")
    with pytest.raises(SimulatorError, match="groups=1"):
        convert_to_analog(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), "ideal")


def _train(preset: str, seed: int, steps: int = 3) -> torch.Tensor:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))
    model = convert_to_analog(net, preset, seed=seed)
    opt = AnalogSGD(model.parameters(), lr=0.1, momentum=0.5)
    gen = torch.Generator().manual_seed(9)
    for _ in range(steps):
        x = torch.rand(8, 20, generator=gen)
        y = torch.randint(0, 4, (8,), generator=gen)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()] + [model(x).detach().flatten()])


@pytest.mark.parametrize("preset", ["gokmen_vlasov", "hwa_standard"])
def test_a_seed_gives_bit_identical_reruns(preset: str) -> None:
    a, b, c = _train(preset, 5), _train(preset, 5), _train(preset, 6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_state_dict_round_trip_restores_weights_and_device_state() -> None:
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))
    model = convert_to_analog(net, "gokmen_vlasov", seed=2)
    state = copy.deepcopy(model.state_dict())
    assert any(".updater." in k for k in state), "device-to-device state is checkpointed"
    other = convert_to_analog(net, "gokmen_vlasov", seed=3)
    other.load_state_dict(state)
    for (name, a), (_, b) in zip(analog_layers(model), analog_layers(other)):
        assert torch.equal(a.array.weight, b.array.weight), name
        assert torch.equal(a.array.tiles[0].updater.w_max, b.array.tiles[0].updater.w_max), name
