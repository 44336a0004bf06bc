"""Convolution layers."""

from __future__ import annotations

import math
from typing import Any

import jax

from jnn import functional as F
from jnn import random
from jnn.modules._utils import _ntuple, fan_in_bound, redraw_uniform, uniform
from jnn.modules.module import Module, Parameter

__all__ = ["Conv2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared constructor, checks, init and repr of the N-d convolutions (weight ``(out, in/groups, *k)``)."""

    _dims: int

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
        dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
        device: Any = None, dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        name, n = type(self).__name__, self._dims
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in _ntuple(stride, n)):
                raise ValueError("padding='same' is not supported for strided convolutions")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {set(_PADDING_MODES)}, but got padding_mode='{padding_mode}'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride, n)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, n)
        self.dilation = _ntuple(dilation, n)
        self.transposed = False
        self.output_padding = (0,) * n
        self.groups = groups
        self.padding_mode = padding_mode
        if padding == "valid":
            total = (0,) * n
        elif padding == "same":
            total = tuple(d * (k - 1) for d, k in zip(self.dilation, self.kernel_size, strict=True))
        else:
            total = tuple(2 * p for p in self.padding)
        # F.pad's argument for the non-zero padding modes: last dim first, (left, right) per dim.
        self._reversed_padding_repeated_twice = tuple(
            x for t in reversed(total) for x in (t // 2, t - t // 2)
        )
        fan_in = in_channels // groups * math.prod(self.kernel_size)
        bound = fan_in_bound(fan_in)
        with random.fork(key):
            shape = (out_channels, in_channels // groups, *self.kernel_size)
            self.weight = Parameter(uniform(shape, bound, dtype, device, name))
            if bias:
                self.bias = Parameter(uniform((out_channels,), bound, dtype, device, name))
            else:
                self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Re-draw weight and bias from the default init (jnn's random stream), keeping dtype and device."""
        bound = fan_in_bound(self.in_channels // self.groups * math.prod(self.kernel_size))
        self.weight = redraw_uniform(self.weight, bound, type(self).__name__)
        if self.bias is not None:
            self.bias = redraw_uniform(self.bias, bound, type(self).__name__)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * len(self.padding):
            text += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class Conv2d(_ConvNd):
    """2-D convolution over ``(N, C, H, W)`` or ``(C, H, W)`` input, with PyTorch's arguments and init.

    >>> import jax.numpy as jnp, jnn as nn
    >>> conv = nn.Conv2d(1, 20, 3)
    >>> conv
    Conv2d(1, 20, kernel_size=(3, 3), stride=(1, 1))
    >>> conv(jnp.ones((2, 1, 28, 28))).shape
    (2, 20, 26, 26)
    """

    _dims = 2

    def _conv_forward(self, input: jax.Array, weight: jax.Array, bias: jax.Array | None) -> jax.Array:
        # torch's hook for subclasses that transform the weight (e.g. weight standardisation) before the conv
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input: jax.Array) -> jax.Array:
        return self._conv_forward(input, self.weight, self.bias)
