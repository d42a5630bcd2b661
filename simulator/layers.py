"""Analog layers and the conversion of a torch model: ``AnalogLinear``, ``AnalogConv2d``.

Both layers keep their weights on a :class:`~simulator.mapping.TileArray` (``layer.array``); the
digital bias (``layer.bias``) is added after the ADC. ``AnalogConv2d`` maps the convolution onto
its tiles with im2col: every patch of the input is one input vector of the tiles, so the forward
and backward passes are MVMs of ``N * L`` vectors (``L`` output positions) and the pulsed update
receives the patches and their output gradients.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simulator.configs.presets import get_preset
from simulator.configs.rpu import RPUConfig
from simulator.errors import ConfigError, SimulatorError
from simulator.mapping import TileArray
from simulator.tile import derive_seed

__all__ = ["AnalogConv2d", "AnalogLinear", "analog_layers", "convert_to_analog", "n_tiles"]


def _resolve(rpu_config: RPUConfig | str | None) -> RPUConfig:
    if rpu_config is None:
        return RPUConfig()
    if isinstance(rpu_config, str):
        return get_preset(rpu_config)
    if not isinstance(rpu_config, RPUConfig):
        raise ConfigError("rpu_config", f"got {type(rpu_config).__name__}; accepted: an RPUConfig "
                                        "or a preset name")
    return rpu_config


class _AnalogLayer(nn.Module):
    """Common parts: the tile array, the digital bias and weight access."""

    array: TileArray
    bias: nn.Parameter | None

    def _build(self, in_features: int, out_features: int, bias: bool, rpu: RPUConfig, seed: int,
               device: Any, dtype: Any) -> None:
        self.rpu_config = rpu
        digital = bias and rpu.mapping.digital_bias
        self.array = TileArray(in_features, out_features, rpu, analog_bias=bias and not digital,
                               seed=seed, device=device, dtype=dtype or torch.float32)
        if digital:
            self.bias = nn.Parameter(torch.zeros(out_features, device=self.array.weight.device,
                                                 dtype=self.array.weight.dtype))
        else:
            self.register_parameter("bias", None)
        self.has_bias = bias

    @property
    def n_tiles(self) -> int:
        """Physical tiles of this layer."""
        return self.array.n_tiles

    def get_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Copies of the weight (torch layout) and bias (digital or analog; None without bias)."""
        w, b = self.array.get_weights()
        if self.bias is not None:
            b = self.bias.detach().clone()
        return w.view(self._torch_shape()), b

    @torch.no_grad()
    def set_weights(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Write the weight (torch layout) and bias onto the tiles (pulsed tiles clip to bounds)."""
        self.array.set_weights(weight.reshape(self.array.out_features, -1),
                               bias if self.array.analog_bias else None)
        if self.bias is not None and bias is not None:
            self.bias.copy_(bias)

    def _torch_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _reset(self, fan_in: int) -> None:
        # torch's default init (kaiming_uniform with a=sqrt(5), bias U(-1/sqrt(fan_in), ...)).
        w = torch.empty(self._torch_shape(), dtype=self.array.weight.dtype)
        nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        b = None
        if self.has_bias:
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            b = torch.empty(self.array.out_features, dtype=w.dtype).uniform_(-bound, bound)
        self.set_weights(w, b)


class AnalogLinear(_AnalogLayer):
    """``nn.Linear`` on analog tiles."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rpu_config: RPUConfig | str | None = None, *, seed: int = 0,
                 device: Any = None, dtype: Any = None, init_weights: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._build(in_features, out_features, bias, _resolve(rpu_config), seed, device, dtype)
        if init_weights:
            self._reset(in_features)

    def _torch_shape(self) -> tuple[int, ...]:
        return (self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.array(x, self.bias)

    @classmethod
    def from_linear(cls, module: nn.Linear, rpu_config: RPUConfig | str | None = None, *,
                    seed: int = 0) -> AnalogLinear:
        """An analog copy of ``module`` (same weights and bias)."""
        layer = cls(module.in_features, module.out_features, module.bias is not None, rpu_config,
                    seed=seed, device=module.weight.device, dtype=module.weight.dtype,
                    init_weights=False)
        layer.set_weights(module.weight.detach(),
                          None if module.bias is None else module.bias.detach())
        return layer

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.has_bias}"


class AnalogConv2d(_AnalogLayer):
    """``nn.Conv2d`` on analog tiles (im2col; ``groups=1``, zero padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", rpu_config: RPUConfig | str | None = None, *,
                 seed: int = 0, device: Any = None, dtype: Any = None,
                 init_weights: bool = True) -> None:
        super().__init__()
        if groups != 1:
            raise SimulatorError(f"AnalogConv2d supports groups=1, got groups={groups}; keep this "
                                 "layer digital")
        if padding_mode != "zeros":
            raise SimulatorError(f"AnalogConv2d supports padding_mode='zeros', got {padding_mode!r}; "
                                 "keep this layer digital")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = nn.modules.utils._pair(kernel_size)
        self.stride = nn.modules.utils._pair(stride)
        self.dilation = nn.modules.utils._pair(dilation)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise SimulatorError(f"padding must be an int, a pair, 'same' or 'valid'; got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise SimulatorError("padding='same' needs stride 1 (as in torch)")
        self.padding = padding if isinstance(padding, str) else nn.modules.utils._pair(padding)
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self._build(fan_in, out_channels, bias, _resolve(rpu_config), seed, device, dtype)
        if init_weights:
            self._reset(fan_in)

    def _torch_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels, *self.kernel_size)

    def _explicit_padding(self) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) zero padding of the input."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            pads = []
            for k, d in zip(reversed(self.kernel_size), reversed(self.dilation)):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return tuple(pads)  # type: ignore[return-value]
        ph, pw = self.padding  # type: ignore[misc]
        return (pw, pw, ph, ph)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = self.array
        if array.ideal_active:
            w = array.logical_weight()
            b = self.bias
            if array.analog_bias:
                b = w[:, array.in_features] * array.bias_input
                w = w[:, : array.in_features]
            return F.conv2d(x, w.reshape(self._torch_shape()), b, self.stride, self.padding,
                            self.dilation, 1)
        batched = x.dim() == 4
        if not batched:
            x = x.unsqueeze(0)
        left, right, top, bottom = self._explicit_padding()
        if left or right or top or bottom:
            x = F.pad(x, (left, right, top, bottom))
        n, _, h, w_in = x.shape
        kh, kw = self.kernel_size
        out_h = (h - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        out_w = (w_in - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        cols = F.unfold(x, self.kernel_size, dilation=self.dilation, stride=self.stride)
        patches = cols.transpose(1, 2).reshape(n * out_h * out_w, array.in_features)
        y = array(patches, self.bias)
        y = y.view(n, out_h * out_w, self.out_channels).transpose(1, 2)
        y = y.reshape(n, self.out_channels, out_h, out_w)
        return y if batched else y[0]

    @classmethod
    def from_conv(cls, module: nn.Conv2d, rpu_config: RPUConfig | str | None = None, *,
                  seed: int = 0) -> AnalogConv2d:
        """An analog copy of ``module`` (same weights and bias)."""
        layer = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                    module.padding, module.dilation, module.groups, module.bias is not None,
                    module.padding_mode, rpu_config, seed=seed, device=module.weight.device,
                    dtype=module.weight.dtype, init_weights=False)
        layer.set_weights(module.weight.detach(),
                          None if module.bias is None else module.bias.detach())
        return layer

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.has_bias}")


def analog_layers(model: nn.Module) -> list[tuple[str, _AnalogLayer]]:
    """The analog layers of ``model`` with their qualified names, in module order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, _AnalogLayer)]


def n_tiles(model: nn.Module) -> int:
    """Number of physical tiles of all analog layers of ``model``."""
    return sum(m.array.n_tiles for _, m in analog_layers(model))


def convert_to_analog(model: nn.Module, rpu_config: RPUConfig | str | None = None, *,
                      keep_digital: Iterable[str] = (), seed: int = 0,
                      inplace: bool = False) -> nn.Module:
    """Replace every ``nn.Linear`` and ``nn.Conv2d`` of ``model`` by its analog version.

    ``keep_digital`` names modules (as in ``named_modules()``) that stay floating point, with
    everything inside them. Weights and biases are copied; each layer gets its own seed derived
    from ``seed`` and its position. ``rpu_config`` is an :class:`RPUConfig` or a preset name.
    """
    rpu = _resolve(rpu_config)
    keep = list(keep_digital)
    names = {name for name, _ in model.named_modules() if name}
    for i, name in enumerate(keep):
        if name not in names:
            raise ConfigError(f"keep_digital[{i}]", f"got {name!r}, not a module of the model; "
                                                    f"accepted: {', '.join(sorted(names))}")
    if not inplace:
        model = copy.deepcopy(model)
    targets = []
    for name, module in model.named_modules():
        if not name or any(name == k or name.startswith(k + ".") for k in keep):
            continue
        if isinstance(module, (nn.Linear, nn.Conv2d)) and not isinstance(module, _AnalogLayer):
            targets.append((name, module))
    for index, (name, module) in enumerate(targets):
        layer_seed = derive_seed(seed, index)
        if isinstance(module, nn.Linear):
            analog: nn.Module = AnalogLinear.from_linear(module, rpu, seed=layer_seed)
        else:
            analog = AnalogConv2d.from_conv(module, rpu, seed=layer_seed)
        analog.train(module.training)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, analog)
    return model
