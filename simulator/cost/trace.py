"""How a network maps onto hardware, per example: :func:`trace` runs one example through the
model with every analog array replaced by a shape-only stand-in (no MVM is computed), and
records what each layer does per example.

- an analog layer: the input vectors its tile array receives (1 for a linear layer on a flat
  input, the output positions of a convolution), its logical size and its tiles;
- a linear / convolution layer kept digital: its multiply-accumulates;
- the digital operations between layers, by module: comparisons (ReLU and its relatives,
  max-pooling), nonlinear activations (sigmoid, tanh, ...), and multiply-accumulates of batch
  norm and average pooling (one per element).

Operations written as functions in a ``forward`` (``F.relu``, a residual ``+``) are not seen;
the residual additions of a ResNet are a few thousand additions per example, next to millions of
MACs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from simulator.layers import AnalogConv2d, _AnalogLayer, analog_layers
from simulator.mapping import TileArray

__all__ = ["DigitalOps", "LayerTrace", "ModelTrace", "trace"]

_COMPARE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.RReLU, nn.PReLU, nn.Hardtanh, nn.Threshold)
_NONLINEAR = (nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU, nn.ELU, nn.Softmax, nn.LogSoftmax, nn.Softplus,
              nn.Mish, nn.Hardsigmoid, nn.Hardswish)
_MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
_ELEMENTWISE_MAC = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
                    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)


@dataclass
class LayerTrace:
    """One linear or convolution layer, per example."""

    name: str
    """Qualified module name."""
    kind: str
    """``linear`` or ``conv``."""
    analog: bool
    """On analog tiles (else kept digital)."""
    in_features: int
    """Inputs of one MVM (a convolution's patch size), without an analog bias row."""
    out_features: int
    """Outputs of one MVM."""
    vectors: float
    """MVM input vectors per example (output positions of a convolution)."""
    macs: float
    """Multiply-accumulates per example."""
    out_elements: float
    """Output values per example."""
    module: Any = field(default=None, repr=False, compare=False)
    """The module itself (an analog layer holds its ``array``)."""


@dataclass
class DigitalOps:
    """Digital operations between the layers, per example."""

    compares: float = 0.0
    """Comparisons (ReLU-like activations, max-pooling)."""
    nonlinear: float = 0.0
    """Nonlinear activations (sigmoid, tanh, ...)."""
    macs: float = 0.0
    """Multiply-accumulates of batch norm and average pooling."""


@dataclass
class ModelTrace:
    """What one example does on the hardware."""

    input_shape: tuple[int, ...]
    """Shape of one example."""
    layers: list[LayerTrace]
    """Linear and convolution layers in execution order (each once)."""
    ops: DigitalOps
    """Digital operations between layers."""


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> ModelTrace:
    """Trace one example of ``input_shape`` through ``model`` (restored as it was afterwards)."""
    shape = tuple(int(s) for s in input_shape)
    layers: dict[int, LayerTrace] = {}
    ops = DigitalOps()
    analog = {id(m): name for name, m in analog_layers(model)}
    handles = []

    def layer_hook(name: str, module: nn.Module) -> Any:
        def hook(mod: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            n = max(1, int(output.shape[0])) if output.dim() > 1 else 1
            if isinstance(mod, _AnalogLayer):
                in_f, out_f = mod.array.in_features, mod.array.out_features
                kind = "conv" if isinstance(mod, AnalogConv2d) else "linear"
            elif isinstance(mod, nn.Conv2d):
                in_f = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
                out_f = mod.out_channels
                kind = "conv"
            else:
                in_f, out_f = mod.in_features, mod.out_features
                kind = "linear"
            # one MVM per output position (a convolution) or per leading index (a linear layer)
            vectors = float(output.numel()) / n / out_f
            entry = layers.get(id(mod))
            if entry is None:
                layers[id(mod)] = LayerTrace(name, kind, isinstance(mod, _AnalogLayer), in_f, out_f,
                                             vectors, vectors * in_f * out_f, vectors * out_f, mod)
            else:  # a module called twice per example
                entry.vectors += vectors
                entry.macs += vectors * in_f * out_f
                entry.out_elements += vectors * out_f
        return hook

    def op_hook(mod: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        n = max(1, int(output.shape[0])) if output.dim() > 1 else 1
        x = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else output
        if isinstance(mod, _COMPARE):
            ops.compares += output.numel() / n
        elif isinstance(mod, _NONLINEAR):
            ops.nonlinear += output.numel() / n
        elif isinstance(mod, _MAXPOOL):
            ops.compares += x.numel() / n
        elif isinstance(mod, _ELEMENTWISE_MAC):
            ops.macs += x.numel() / n

    arrays, convs, training = [], [], []
    for name, module in model.named_modules():
        if module.training:
            training.append(module)
        if isinstance(module, TileArray):
            arrays.append(module)
        if id(module) in analog:
            handles.append(module.register_forward_hook(layer_hook(name, module)))
            if isinstance(module, AnalogConv2d):
                convs.append(module)
        elif isinstance(module, (nn.Linear, nn.Conv2d)) and not _inside_analog(name, analog.values()):
            handles.append(module.register_forward_hook(layer_hook(name, module)))
        elif isinstance(module, _COMPARE + _NONLINEAR + _MAXPOOL + _ELEMENTWISE_MAC):
            handles.append(module.register_forward_hook(op_hook))
    try:
        for m in training:
            m.__dict__["training"] = False
        with torch.no_grad(), _shape_only(arrays, convs):
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
            model(torch.zeros((1, *shape), device=device, dtype=dtype))
    finally:
        for m in training:
            m.__dict__["training"] = True
        for h in handles:
            h.remove()
    return ModelTrace(shape, list(layers.values()), ops)


def _inside_analog(name: str, analog_names: Any) -> bool:
    return any(name.startswith(a + ".") for a in analog_names)


@contextlib.contextmanager
def _shape_only(arrays: list[TileArray], convs: list[AnalogConv2d]) -> Iterator[None]:
    """Every tile array and analog convolution returns zeros of its output shape (no MVM, no
    im2col is computed)."""

    def fake(self: TileArray, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return x.new_zeros((*x.shape[:-1], self.out_features))

    def fake_conv(self: AnalogConv2d, x: torch.Tensor) -> torch.Tensor:
        left, right, top, bottom = self._explicit_padding()
        h, w = x.shape[-2] + top + bottom, x.shape[-1] + left + right
        out = []
        for size, k, s, d in zip((h, w), self.kernel_size, self.stride, self.dilation):
            out.append((size - d * (k - 1) - 1) // s + 1)
        return x.new_zeros((*x.shape[:-3], self.out_channels, *out))

    for arr in arrays:
        arr.__dict__["forward"] = fake.__get__(arr)
    for conv in convs:
        conv.__dict__["forward"] = fake_conv.__get__(conv)
    try:
        yield
    finally:
        for module in (*arrays, *convs):
            module.__dict__.pop("forward", None)
