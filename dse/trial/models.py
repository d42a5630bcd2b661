"""The trial's network architectures, built digital and then converted to analog layers.

``build_model`` returns a plain torch module whose linear / convolution layers carry the names
listed by :func:`dse.trial.architectures.layer_names`; ``build_analog_model`` converts every one
of them to an analog layer of the hardware config, except those kept digital.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dse.trial import architectures as arch
from dse.trial.config import ModelConfig


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "rrelu": nn.RReLU}[name]()


class FCNN(nn.Module):
    """Fully-connected network (paper 000): ``fc1 .. fcN`` with an activation between layers."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], classes: int, activation: str) -> None:
        super().__init__()
        widths = [in_features, *hidden, classes]
        self.names = [f"fc{i + 1}" for i in range(len(widths) - 1)]
        for i, name in enumerate(self.names):
            self.add_module(name, nn.Linear(widths[i], widths[i + 1]))
            if i < len(self.names) - 1:
                self.add_module(f"act{i + 1}", _activation(activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for i, name in enumerate(self.names):
            x = getattr(self, name)(x)
            if i < len(self.names) - 1:
                x = getattr(self, f"act{i + 1}")(x)
        return x


class LeNet5(nn.Module):
    """LeNet-5 as in aihwkit's MNIST example (paper 002): two 5×5 convolutions with 2×2
    max-pooling, then two fully-connected layers."""

    def __init__(self, shape: tuple[int, int, int], classes: int, activation: str, width: float) -> None:
        super().__init__()
        c1, c2 = (arch.scaled(c, width) for c in arch.LENET5_CHANNELS)
        self.conv1 = nn.Conv2d(shape[0], c1, kernel_size=5)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)
        self.act = _activation(activation)
        self.pool = nn.MaxPool2d(2)
        side_h = ((shape[1] - 4) // 2 - 4) // 2
        side_w = ((shape[2] - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(c2 * side_h * side_w, arch.LENET5_HIDDEN)
        self.fc2 = nn.Linear(arch.LENET5_HIDDEN, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.conv1(x)))
        x = self.pool(self.act(self.conv2(x)))
        x = self.act(self.fc1(x.flatten(1)))
        return self.fc2(x)


class VGG8(nn.Module):
    """VGG-8 as in aihwkit's CIFAR-10 example (paper 002): six 3×3 convolutions with batch norm
    (a 2×2 max-pool after every second), then two fully-connected layers."""

    def __init__(self, shape: tuple[int, int, int], classes: int, width: float) -> None:
        super().__init__()
        channels = [shape[0]] + [arch.scaled(c, width) for c in arch.VGG8_CHANNELS]
        for i in range(6):
            self.add_module(f"conv{i + 1}", nn.Conv2d(channels[i], channels[i + 1], 3, padding=1))
            self.add_module(f"bn{i + 1}", nn.BatchNorm2d(channels[i + 1]))
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        side_h, side_w = shape[1] // 8, shape[2] // 8
        hidden = arch.scaled(arch.VGG8_HIDDEN, width)
        self.fc1 = nn.Linear(channels[-1] * side_h * side_w, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(6):
            x = self.relu(getattr(self, f"bn{i + 1}")(getattr(self, f"conv{i + 1}")(x)))
            if i % 2 == 1:
                x = self.pool(x)
        return self.fc2(self.relu(self.fc1(x.flatten(1))))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 convolutions with batch norm and an identity or 1×1 shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, project: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        if project:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
            self.shortcut_bn = nn.BatchNorm2d(out_ch)
        else:
            self.shortcut = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.shortcut is None else self.shortcut_bn(self.shortcut(x))
        return self.relu(out + skip)


class ResNet18(nn.Module):
    """ResNet-18, CIFAR variant (paper 002): 3×3 stem without max-pool, four stages of two basic
    blocks, global average pooling and one fully-connected layer."""

    def __init__(self, shape: tuple[int, int, int], classes: int, width: float) -> None:
        super().__init__()
        stem = arch.scaled(arch.RESNET18_STAGES[0][0], width)
        self.conv1 = nn.Conv2d(shape[0], stem, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU()
        in_ch = stem
        base_in = arch.RESNET18_STAGES[0][0]
        for s, (base, stride) in enumerate(arch.RESNET18_STAGES):
            out_ch = arch.scaled(base, width)
            project = stride != 1 or base_in != base  # the same rule as architectures.layer_names
            blocks = [BasicBlock(in_ch, out_ch, stride, project), BasicBlock(out_ch, out_ch, 1, False)]
            self.add_module(f"layer{s + 1}", nn.Sequential(*blocks))
            in_ch, base_in = out_ch, base
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for s in range(len(arch.RESNET18_STAGES)):
            x = getattr(self, f"layer{s + 1}")(x)
        return self.fc(self.pool(x).flatten(1))


def build_model(model: ModelConfig, shape: tuple[int, int, int], classes: int) -> nn.Module:
    """The digital network for ``model`` on inputs of ``shape`` (C, H, W) with ``classes`` outputs."""
    activation = model.activation or arch.DEFAULT_ACTIVATION[model.name]
    if model.name == "fcnn":
        net: nn.Module = FCNN(shape[0] * shape[1] * shape[2], tuple(model.hidden), classes, activation)
    elif model.name == "lenet5":
        net = LeNet5(shape, classes, activation, model.width)
    elif model.name == "vgg8":
        net = VGG8(shape, classes, model.width)
    elif model.name == "resnet18":
        net = ResNet18(shape, classes, model.width)
    else:
        raise ValueError(f"model.name: got {model.name!r}; accepted: {', '.join(arch.MODELS)}")
    return net


def layer_modules(model: nn.Module, names: list[str]) -> dict[str, nn.Module]:
    """The modules of ``model`` with the given layer names, in that order."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"model has no layers {missing}")
    return {n: modules[n] for n in names}


def count_macs(model: nn.Module, shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one forward pass of one example through the linear and
    convolution layers (the MVMs an analog tile performs)."""
    total = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        weight = getattr(module, "weight", None)
        if weight is None:
            return
        if output.dim() == 4:  # convolution: one MVM of the kernel per output pixel
            total += int(weight.numel()) * int(output.shape[2] * output.shape[3])
        else:
            total += int(weight.numel())

    handles = [m.register_forward_hook(hook) for m in _mvm_layers(model)]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *shape))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return total


def _mvm_layers(model: nn.Module) -> list[nn.Module]:
    out = []
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) or type(m).__name__ in ("AnalogLinear", "AnalogConv2d"):
            out.append(m)
    return out


def build_network(model: dict[str, Any], shape: list[int], classes: int) -> nn.Module:
    """:func:`build_model` from plain data (a model section's dict form): the builder that model
    files name, so that :func:`simulator.checkpoint.load_analog_model` rebuilds the network."""
    return build_model(ModelConfig.from_dict(model), (int(shape[0]), int(shape[1]), int(shape[2])), int(classes))
