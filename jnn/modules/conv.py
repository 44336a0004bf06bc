"""Convolution layers: Conv1d/2d/3d, ConvTranspose1d/2d/3d and their Lazy variants."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jnn import functional as F
from jnn import random
from jnn.modules._utils import _ntuple, fan_in_bound, redraw_uniform, uniform
from jnn.modules.lazy import LazyModuleMixin
from jnn.modules.module import Module, Parameter
from jnn.parameter import UninitializedParameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "LazyConv1d",
           "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class _ConvNd(Module):
    """Shared constructor, checks, init and repr of the N-d convolutions.

    Weight is ``(out, in/groups, *k)``, or ``(in, out/groups, *k)`` when ``transposed``; torch's argument order.
    """

    _dims: int

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
        transposed: bool, output_padding: Any, groups: int, bias: bool, padding_mode: str,
        device: Any = None, dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        n = self._dims
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
        self.transposed = transposed
        self.output_padding = _ntuple(output_padding, n)
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
        self._make_parameters(bias, device, dtype, key)

    def _weight_shape(self) -> tuple[int, ...]:
        g, k = self.groups, self.kernel_size
        if self.transposed:
            return (self.in_channels, self.out_channels // g, *k)
        return (self.out_channels, self.in_channels // g, *k)

    def _bound(self) -> float:
        # kaiming_uniform_(a=sqrt(5)) and torch's bias rule: fan_in is weight.size(1) * prod(kernel_size)
        return fan_in_bound(self._weight_shape()[1] * math.prod(self.kernel_size))

    def _make_parameters(self, bias: bool, device: Any, dtype: Any, key: jax.Array | None) -> None:
        name, bound = type(self).__name__, self._bound()
        with random.fork(key):
            self.weight = Parameter(uniform(self._weight_shape(), bound, dtype, device, name))
            if bias:
                self.bias = Parameter(uniform((self.out_channels,), bound, dtype, device, name))
            else:
                self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Re-draw weight and bias from the default init (jnn's random stream), keeping dtype and device."""
        bound = self._bound()
        self.weight = redraw_uniform(self.weight, bound, type(self).__name__)
        if self.bias is not None:
            self.bias = redraw_uniform(self.bias, bound, type(self).__name__)

    def _has_bias(self) -> bool:
        return self.bias is not None

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
        if not self._has_bias():
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class _ConvForward(_ConvNd):
    """Constructor and forward of Conv1d/2d/3d: explicit padding for the non-zero padding modes, then the N-d conv."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
        dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
        device: Any = None, dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False, 0, groups,
                         bias, padding_mode, device, dtype, key=key)

    def _conv_forward(self, input: jax.Array, weight: jax.Array, bias: jax.Array | None) -> jax.Array:
        # torch's hook for subclasses that transform the weight (e.g. weight standardisation) before the conv
        conv = _CONV[self._dims]
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input: jax.Array) -> jax.Array:
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_ConvForward):
    """1-D convolution over ``(N, C, L)`` or ``(C, L)`` input, with PyTorch's arguments and init.

    Args:
        in_channels: channels of the input (dimension 1).
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: padding added to both sides (an int, a tuple, ``'same'`` or ``'valid'``).
        dilation: spacing between kernel elements.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> conv = nn.Conv1d(16, 33, 3, stride=2)
    >>> conv
    Conv1d(16, 33, kernel_size=(3,), stride=(2,))
    >>> conv(jnp.ones((20, 16, 50))).shape
    (20, 33, 24)
    """

    _dims = 1


class Conv2d(_ConvForward):
    """2-D convolution over ``(N, C, H, W)`` or ``(C, H, W)`` input, with PyTorch's arguments and init.

    Args:
        in_channels: channels of the input (dimension 1).
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: padding added to both sides (an int, a tuple, ``'same'`` or ``'valid'``).
        dilation: spacing between kernel elements.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> conv = nn.Conv2d(1, 20, 3)
    >>> conv
    Conv2d(1, 20, kernel_size=(3, 3), stride=(1, 1))
    >>> conv(jnp.ones((2, 1, 28, 28))).shape
    (2, 20, 26, 26)
    """

    _dims = 2


class Conv3d(_ConvForward):
    """3-D convolution over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input, with PyTorch's arguments and init.

    Args:
        in_channels: channels of the input (dimension 1).
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: padding added to both sides (an int, a tuple, ``'same'`` or ``'valid'``).
        dilation: spacing between kernel elements.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> conv = nn.Conv3d(2, 4, (3, 5, 2), stride=(2, 1, 1), padding=(4, 2, 0))
    >>> conv
    Conv3d(2, 4, kernel_size=(3, 5, 2), stride=(2, 1, 1), padding=(4, 2, 0))
    >>> conv(jnp.ones((1, 2, 6, 7, 8))).shape
    (1, 4, 6, 7, 7)
    """

    _dims = 3


class _ConvTransposeNd(_ConvNd):
    """Transposed convolutions: ``output_padding`` or ``forward(input, output_size=...)`` picks the output size."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
        output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
        padding_mode: str = "zeros", device: Any = None, dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(padding, str):  # torch accepts it here and fails in forward; fail early instead
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of ints; padding strings "
                             f"({padding!r}) are not supported for transposed convolutions")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, True, output_padding,
                         groups, bias, padding_mode, device, dtype, key=key)

    def _output_padding(
        self, input: jax.Array, output_size: Sequence[int] | None, stride: Sequence[int], padding: Sequence[int],
        kernel_size: Sequence[int], num_spatial_dims: int, dilation: Sequence[int] | None = None,
    ) -> list[int]:
        """The ``output_padding`` that makes the output ``output_size`` (torch's rule and messages)."""
        if output_size is None:
            return list(self.output_padding)
        shape = jnp.shape(input)
        has_batch_dim = len(shape) == num_spatial_dims + 2
        num_non_spatial = 2 if has_batch_dim else 1
        output_size = [int(s) for s in output_size]
        if len(output_size) == num_non_spatial + num_spatial_dims:
            output_size = output_size[num_non_spatial:]
        if len(output_size) != num_spatial_dims:
            raise ValueError(
                f"ConvTranspose{num_spatial_dims}D: for {len(shape)}D input, output_size must have "
                f"{num_spatial_dims} or {num_non_spatial + num_spatial_dims} elements (got {len(output_size)})"
            )
        min_sizes, max_sizes = [], []
        for d in range(num_spatial_dims):
            dil = dilation[d] if dilation is not None else 1
            size = (shape[d + num_non_spatial] - 1) * stride[d] - 2 * padding[d] + dil * (kernel_size[d] - 1) + 1
            min_sizes.append(size)
            max_sizes.append(size + stride[d] - 1)
        for size, lo, hi in zip(output_size, min_sizes, max_sizes, strict=True):
            if size < lo or size > hi:
                raise ValueError(
                    f"requested an output size of {output_size}, but valid sizes range from {min_sizes} to "
                    f"{max_sizes} (for an input of {list(shape[2:])})"
                )
        return [s - lo for s, lo in zip(output_size, min_sizes, strict=True)]

    def forward(self, input: jax.Array, output_size: Sequence[int] | None = None) -> jax.Array:
        n = self._dims
        if self.padding_mode != "zeros":
            raise ValueError(f"Only `zeros` padding mode is supported for {type(self).__name__}")
        output_padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size, n,
                                              self.dilation)
        return _CONV_T[n](input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                          self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over ``(N, C, L)`` or ``(C, L)``; weight ``(in, out/groups, k)``.

    Args:
        in_channels: channels of the input (dimension 1).
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added to both sides of the input.
        output_padding: extra size added to one side of the output, to choose among the shapes a stride allows.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        dilation: spacing between kernel elements.
        padding_mode: only ``'zeros'``, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> up = nn.ConvTranspose1d(16, 8, 3, stride=2, padding=1)
    >>> up
    ConvTranspose1d(16, 8, kernel_size=(3,), stride=(2,), padding=(1,))
    >>> up(jnp.ones((1, 16, 10))).shape, up(jnp.ones((1, 16, 10)), output_size=[20]).shape
    ((1, 8, 19), (1, 8, 20))
    """

    _dims = 1


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over ``(N, C, H, W)`` or ``(C, H, W)``; weight ``(in, out/groups, kH, kW)``.

    Args:
        in_channels: channels of the input (dimension 1).
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added to both sides of the input.
        output_padding: extra size added to one side of the output, to choose among the shapes a stride allows.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        dilation: spacing between kernel elements.
        padding_mode: only ``'zeros'``, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> up = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
    >>> up
    ConvTranspose2d(16, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
    >>> up(jnp.ones((1, 16, 12, 12))).shape
    (1, 8, 24, 24)
    """

    _dims = 2


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; weight ``(in, out/groups, *k)``.

    Args:
        in_channels: channels of the input (dimension 1).
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added to both sides of the input.
        output_padding: extra size added to one side of the output, to choose among the shapes a stride allows.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        dilation: spacing between kernel elements.
        padding_mode: only ``'zeros'``, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> up = nn.ConvTranspose3d(4, 2, (3, 5, 2), stride=(2, 1, 1), padding=(0, 4, 2))
    >>> up(jnp.ones((4, 5, 10, 8))).shape
    (2, 11, 6, 5)
    """

    _dims = 3


class _LazyConvXdMixin(LazyModuleMixin):
    """``in_channels`` is inferred from the first input (or a state dict), which creates weight and bias (torch's
    Lazy modules; the mechanism is :class:`~jnn.modules.lazy.LazyModuleMixin`).

    Until then ``in_channels`` is 0 and the module holds no weight or bias (so its ``state_dict`` is empty;
    torch keeps ``UninitializedParameter`` placeholders there instead). The first forward must run eagerly:
    it draws the init from jnn's random stream (or the constructor's ``key``), then the module becomes its
    non-lazy class (``cls_to_become``), as in torch.
    """

    cls_to_become: type[_ConvNd]
    _lazy_size_name = "in_channels"
    _lazy_first_call = "the first call infers in_channels and creates weight and bias"

    def _make_parameters(self, bias: bool, device: Any, dtype: Any, key: jax.Array | None) -> None:
        # called by _ConvNd.__init__: record what to create once in_channels is known
        self.__dict__["_lazy_config"] = (bool(bias), device, dtype, key)
        slots = {"weight": UninitializedParameter(device=device, dtype=dtype)}
        if bias:
            slots["bias"] = UninitializedParameter(device=device, dtype=dtype)
        self._lazy_register(slots)
        if not bias:
            self.register_parameter("bias", None)  # type: ignore[attr-defined]

    def _has_bias(self) -> bool:
        config = self.__dict__.get("_lazy_config")
        return config[0] if config is not None else self.bias is not None  # type: ignore[attr-defined]

    def reset_parameters(self) -> None:
        """Re-draw weight and bias (a no-op before the first forward, as in torch)."""
        if not self.has_uninitialized_params():
            _ConvNd.reset_parameters(self)  # type: ignore[arg-type]

    def _lazy_size_from_input(self, input: Any) -> int:
        n = self._dims  # type: ignore[attr-defined]
        shape = jnp.shape(input)
        if len(shape) not in (n + 1, n + 2):
            raise RuntimeError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {type(self).__name__}, "
                               f"but got input of size: {shape}")
        return shape[1] if len(shape) == n + 2 else shape[0]

    def _lazy_size_from_state(self, shapes: dict[str, tuple[int, ...]]) -> int | None:
        weight = shapes.get("weight")
        if weight is None or len(weight) != self._dims + 2:  # type: ignore[attr-defined]
            return None
        return weight[0] if self.transposed else weight[1] * self.groups  # type: ignore[attr-defined]

    def _lazy_materialize(self, in_channels: int) -> None:
        if in_channels % self.groups != 0:  # type: ignore[attr-defined]
            raise ValueError("in_channels must be divisible by groups")
        self.in_channels = in_channels
        _ConvNd._make_parameters(self, *self.__dict__.pop("_lazy_config"))  # type: ignore[arg-type]

    def forward(self, input: jax.Array, *args: Any, **kwargs: Any) -> jax.Array:
        self.initialize_parameters(input)
        return type(self).forward(self, input, *args, **kwargs)  # the class it became


class _LazyConv(_LazyConvXdMixin):
    """The constructor of LazyConv1d/2d/3d: Conv's arguments without ``in_channels``."""

    def __init__(
        self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
        groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None, dtype: Any = None,
        *, key: jax.Array | None = None,
    ) -> None:
        super().__init__(0, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype, key=key)


class _LazyConvTranspose(_LazyConvXdMixin):
    """The constructor of LazyConvTranspose1d/2d/3d: ConvTranspose's arguments without ``in_channels``."""

    def __init__(
        self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
        groups: int = 1, bias: bool = True, dilation: Any = 1, padding_mode: str = "zeros", device: Any = None,
        dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        super().__init__(0, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
                         padding_mode, device, dtype, key=key)


class LazyConv1d(_LazyConv, Conv1d):
    """:class:`Conv1d` with ``in_channels`` inferred from the first input (``input.shape[-2]``).

    Args:
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: padding added to both sides (an int, a tuple, ``'same'`` or ``'valid'``).
        dilation: spacing between kernel elements.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> conv = nn.LazyConv1d(4, 3)
    >>> conv
    LazyConv1d(0, 4, kernel_size=(3,), stride=(1,))
    >>> conv(jnp.ones((2, 5, 8))).shape, conv
    ((2, 4, 6), Conv1d(5, 4, kernel_size=(3,), stride=(1,)))
    """

    cls_to_become = Conv1d


class LazyConv2d(_LazyConv, Conv2d):
    """:class:`Conv2d` with ``in_channels`` inferred from the first input (``input.shape[-3]``).

    Args:
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: padding added to both sides (an int, a tuple, ``'same'`` or ``'valid'``).
        dilation: spacing between kernel elements.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> conv = nn.LazyConv2d(4, 3, bias=False)
    >>> conv(jnp.ones((3, 6, 6))).shape, conv
    ((4, 4, 4), Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), bias=False))
    """

    cls_to_become = Conv2d


class LazyConv3d(_LazyConv, Conv3d):
    """:class:`Conv3d` with ``in_channels`` inferred from the first input (``input.shape[-4]``).

    Args:
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: padding added to both sides (an int, a tuple, ``'same'`` or ``'valid'``).
        dilation: spacing between kernel elements.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> conv = nn.LazyConv3d(2, 3, padding=1)
    >>> conv(jnp.ones((1, 3, 4, 4, 4))).shape
    (1, 2, 4, 4, 4)
    """

    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTranspose, ConvTranspose1d):
    """:class:`ConvTranspose1d` with ``in_channels`` inferred from the first input.

    Args:
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added to both sides of the input.
        output_padding: extra size added to one side of the output, to choose among the shapes a stride allows.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        dilation: spacing between kernel elements.
        padding_mode: only ``'zeros'``, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> up = nn.LazyConvTranspose1d(2, 3, stride=2)
    >>> up(jnp.ones((1, 5, 4)), output_size=[10]).shape, up
    ((1, 2, 10), ConvTranspose1d(5, 2, kernel_size=(3,), stride=(2,)))
    """

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTranspose, ConvTranspose2d):
    """:class:`ConvTranspose2d` with ``in_channels`` inferred from the first input.

    Args:
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added to both sides of the input.
        output_padding: extra size added to one side of the output, to choose among the shapes a stride allows.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        dilation: spacing between kernel elements.
        padding_mode: only ``'zeros'``, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> up = nn.LazyConvTranspose2d(2, 2, stride=2)
    >>> up(jnp.ones((1, 3, 4, 4))).shape
    (1, 2, 8, 8)
    """

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTranspose, ConvTranspose3d):
    """:class:`ConvTranspose3d` with ``in_channels`` inferred from the first input.

    Args:
        out_channels: channels the convolution produces.
        kernel_size: size of the kernel (an int or a tuple).
        stride: step of the kernel (an int or a tuple).
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added to both sides of the input.
        output_padding: extra size added to one side of the output, to choose among the shapes a stride allows.
        groups: number of blocked connections from input to output channels; both must be divisible by it.
        bias: learn an additive bias.
        dilation: spacing between kernel elements.
        padding_mode: only ``'zeros'``, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> up = nn.LazyConvTranspose3d(2, 2, stride=2)
    >>> up(jnp.ones((3, 2, 2, 2))).shape
    (2, 4, 4, 4)
    """

    cls_to_become = ConvTranspose3d
