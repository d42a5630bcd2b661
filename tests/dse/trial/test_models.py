"""Model definitions: layer names agree with the torch-free list, shapes, MACs, analog conversion."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dse.trial import architectures as arch
from dse.trial.config import parse_trial_config, resolve_hardware
from dse.trial.models import build_model, count_macs


@pytest.mark.parametrize(("name", "shape", "width"), [
    ("fcnn", (1, 8, 8), 1.0), ("lenet5", (1, 28, 28), 1.0), ("lenet5", (3, 32, 32), 0.5),
    ("vgg8", (1, 8, 8), 0.25), ("vgg8", (3, 32, 32), 0.25), ("resnet18", (3, 32, 32), 0.125),
])
def test_layer_names_and_output_shape(name: str, shape: tuple[int, int, int], width: float) -> None:
    model_cfg = parse_trial_config({"model": {"name": name, "width": width},
                                    "dataset": {"name": "mnist" if shape[1] == 28 else "cifar10" if shape[1] == 32
                                                else "digits"}}).model
    net = build_model(model_cfg, shape, 10)
    names = [n for n, m in net.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert names == arch.layer_names(name, tuple(model_cfg.hidden))
    assert net(torch.zeros(3, *shape)).shape == (3, 10)


def test_fcnn_activations_and_macs() -> None:
    for act, cls in (("relu", nn.ReLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid), ("rrelu", nn.RReLU)):
        net = build_model(parse_trial_config({"model": {"hidden": [20, 10], "activation": act}}).model, (1, 8, 8), 10)
        assert [type(m) for m in net.modules() if type(m) is cls] == [cls, cls]
    net = build_model(parse_trial_config({"model": {"hidden": [20]}}).model, (1, 8, 8), 10)
    assert count_macs(net, (1, 8, 8)) == 64 * 20 + 20 * 10


def test_conv_macs_count_one_kernel_mvm_per_output_pixel() -> None:
    cfg = parse_trial_config({"model": {"name": "lenet5"}, "dataset": {"name": "mnist"}}).model
    net = build_model(cfg, (1, 28, 28), 10)
    # conv1: 16x(1x5x5) kernels on 24x24 outputs; conv2: 32x(16x5x5) on 8x8; fc1 512x128; fc2 128x10.
    assert count_macs(net, (1, 28, 28)) == 16 * 25 * 24 * 24 + 32 * 16 * 25 * 8 * 8 + 512 * 128 + 128 * 10


def test_ideal_analog_conversion_keeps_the_function_and_keep_digital() -> None:
    from dse.trial import analog

    cfg = parse_trial_config({"model": {"name": "vgg8", "width": 0.25, "keep_digital": ["fc2"]}}).model
    torch.manual_seed(0)
    net = build_model(cfg, (1, 8, 8), 10).eval()
    x = torch.rand(4, 1, 8, 8)
    expected = net(x)
    model = analog.convert(net, resolve_hardware("ideal"), keep_digital=["fc2"], seed=0).eval()
    torch.testing.assert_close(model(x), expected)
    assert analog.analog_names(model) == arch.layer_names("vgg8")[:-1]
    assert isinstance(model.fc2, nn.Linear)
