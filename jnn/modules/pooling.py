"""Pooling layers: max, max-unpool, average, power-average, adaptive and fractional pooling in 1, 2 and 3 d."""

from __future__ import annotations

from typing import Any

import jax

from jnn import functional as F
from jnn.modules._utils import _ntuple
from jnn.modules.module import Module

__all__ = [
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
    "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "LPPool1d", "LPPool2d", "LPPool3d",
    "FractionalMaxPool2d", "FractionalMaxPool3d",
]


class _MaxPoolNd(Module):
    _fn: Any = None

    def __init__(
        self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
        return_indices: bool = False, ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: jax.Array) -> Any:
        return type(self)._fn(
            input, self.kernel_size, self.stride, self.padding, self.dilation,
            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling over ``(N, C, L)`` or ``(C, L)`` input; ``stride`` defaults to ``kernel_size``.

    Args:
        kernel_size: size of the pooling window (an int or a tuple).
        stride: step of the window; default ``kernel_size``.
        padding: implicit padding on both sides (``-inf`` for max pooling, zeros for average pooling); at most half the
            window.
        dilation: spacing between window elements.
        return_indices: also return the flat indices of the maxima (for ``MaxUnpool``).
        ceil_mode: round the output size up instead of down (windows starting in the padding are dropped).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.MaxPool1d(3, stride=2)(jnp.ones((2, 4, 9))).shape
    (2, 4, 4)
    """

    _fn = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input; ``stride`` defaults to ``kernel_size``.

    Args:
        kernel_size: size of the pooling window (an int or a tuple).
        stride: step of the window; default ``kernel_size``.
        padding: implicit padding on both sides (``-inf`` for max pooling, zeros for average pooling); at most half the
            window.
        dilation: spacing between window elements.
        return_indices: also return the flat indices of the maxima (for ``MaxUnpool``).
        ceil_mode: round the output size up instead of down (windows starting in the padding are dropped).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.MaxPool2d(2)(jnp.ones((1, 3, 8, 8))).shape
    (1, 3, 4, 4)
    """

    _fn = staticmethod(F.max_pool2d)


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input; ``stride`` defaults to ``kernel_size``.

    Args:
        kernel_size: size of the pooling window (an int or a tuple).
        stride: step of the window; default ``kernel_size``.
        padding: implicit padding on both sides (``-inf`` for max pooling, zeros for average pooling); at most half the
            window.
        dilation: spacing between window elements.
        return_indices: also return the flat indices of the maxima (for ``MaxUnpool``).
        ceil_mode: round the output size up instead of down (windows starting in the padding are dropped).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.MaxPool3d(2)(jnp.ones((1, 2, 4, 4, 4))).shape
    (1, 2, 2, 2, 2)
    """

    _fn = staticmethod(F.max_pool3d)


class _MaxUnpoolNd(Module):
    _n = 0
    _fn: Any = None

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size = _ntuple(kernel_size, self._n)
        self.stride = _ntuple(stride if stride is not None else kernel_size, self._n)
        self.padding = _ntuple(padding, self._n)

    def forward(self, input: jax.Array, indices: jax.Array, output_size: Any = None) -> jax.Array:
        return type(self)._fn(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Partial inverse of :class:`MaxPool1d`: ``forward(input, indices, output_size=None)``.

    Args:
        kernel_size: the window size of the max pooling being inverted.
        stride: its stride; default ``kernel_size``.
        padding: its padding.

    >>> import jax.numpy as jnp, jnn as nn
    >>> y, i = nn.MaxPool1d(2, return_indices=True)(jnp.ones((1, 1, 4)))
    >>> nn.MaxUnpool1d(2)(y, i).shape
    (1, 1, 4)
    """

    _n, _fn = 1, staticmethod(F.max_unpool1d)


class MaxUnpool2d(_MaxUnpoolNd):
    """Partial inverse of :class:`MaxPool2d`: ``forward(input, indices, output_size=None)``.

    Args:
        kernel_size: the window size of the max pooling being inverted.
        stride: its stride; default ``kernel_size``.
        padding: its padding.

    >>> import jax.numpy as jnp, jnn as nn
    >>> y, i = nn.MaxPool2d(2, return_indices=True)(jnp.ones((1, 1, 5, 5)))
    >>> nn.MaxUnpool2d(2)(y, i, output_size=(5, 5)).shape
    (1, 1, 5, 5)
    """

    _n, _fn = 2, staticmethod(F.max_unpool2d)


class MaxUnpool3d(_MaxUnpoolNd):
    """Partial inverse of :class:`MaxPool3d`: ``forward(input, indices, output_size=None)``.

    Args:
        kernel_size: the window size of the max pooling being inverted.
        stride: its stride; default ``kernel_size``.
        padding: its padding.

    >>> import jax.numpy as jnp, jnn as nn
    >>> y, i = nn.MaxPool3d(2, return_indices=True)(jnp.ones((1, 4, 4, 4)))
    >>> nn.MaxUnpool3d(2)(y, i).shape
    (1, 4, 4, 4)
    """

    _n, _fn = 3, staticmethod(F.max_unpool3d)


class _AvgPoolNd(Module):
    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling over ``(N, C, L)`` or ``(C, L)`` input.

    Args:
        kernel_size: size of the pooling window (an int or a tuple).
        stride: step of the window; default ``kernel_size``.
        padding: implicit padding on both sides (``-inf`` for max pooling, zeros for average pooling); at most half the
            window.
        ceil_mode: round the output size up instead of down (windows starting in the padding are dropped).
        count_include_pad: count the zero padding in the average's divisor.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.AvgPool1d(2)(jnp.ones((3, 6))).shape
    (3, 3)
    """

    def __init__(
        self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = _ntuple(kernel_size, 1)
        self.stride = _ntuple(stride if stride is not None else kernel_size, 1)
        self.padding = _ntuple(padding, 1)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: jax.Array) -> jax.Array:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class _AvgPool23d(_AvgPoolNd):
    _fn: Any = None

    def __init__(
        self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
        count_include_pad: bool = True, divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: jax.Array) -> jax.Array:
        return type(self)._fn(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                              self.count_include_pad, self.divisor_override)


class AvgPool2d(_AvgPool23d):
    """2-D average pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input.

    Args:
        kernel_size: size of the pooling window (an int or a tuple).
        stride: step of the window; default ``kernel_size``.
        padding: implicit padding on both sides (``-inf`` for max pooling, zeros for average pooling); at most half the
            window.
        ceil_mode: round the output size up instead of down (windows starting in the padding are dropped).
        count_include_pad: count the zero padding in the average's divisor.
        divisor_override: divide every window by this number instead.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.AvgPool2d(3, stride=2, padding=1)(jnp.ones((1, 2, 7, 7))).shape
    (1, 2, 4, 4)
    """

    _fn = staticmethod(F.avg_pool2d)


class AvgPool3d(_AvgPool23d):
    """3-D average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input.

    Args:
        kernel_size: size of the pooling window (an int or a tuple).
        stride: step of the window; default ``kernel_size``.
        padding: implicit padding on both sides (``-inf`` for max pooling, zeros for average pooling); at most half the
            window.
        ceil_mode: round the output size up instead of down (windows starting in the padding are dropped).
        count_include_pad: count the zero padding in the average's divisor.
        divisor_override: divide every window by this number instead.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.AvgPool3d(2)(jnp.ones((1, 4, 4, 4))).shape
    (1, 2, 2, 2)
    """

    _fn = staticmethod(F.avg_pool3d)


class _AdaptiveAvgPoolNd(Module):
    _fn: Any = None

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: jax.Array) -> jax.Array:
        return type(self)._fn(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-D adaptive average pooling to ``output_size`` for any input length.

    Args:
        output_size: the output's spatial size (an int, a tuple; ``None`` keeps that input size).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.AdaptiveAvgPool1d(5)(jnp.ones((1, 64, 8))).shape
    (1, 64, 5)
    """

    _fn = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-D adaptive average pooling to ``output_size`` (``None`` keeps that input size).

    Args:
        output_size: the output's spatial size (an int, a tuple; ``None`` keeps that input size).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.AdaptiveAvgPool2d((5, None))(jnp.ones((1, 64, 8, 9))).shape
    (1, 64, 5, 9)
    """

    _fn = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-D adaptive average pooling to ``output_size``.

    Args:
        output_size: the output's spatial size (an int, a tuple; ``None`` keeps that input size).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.AdaptiveAvgPool3d(1)(jnp.ones((2, 3, 4, 5, 6))).shape
    (2, 3, 1, 1, 1)
    """

    _fn = staticmethod(F.adaptive_avg_pool3d)


class _AdaptiveMaxPoolNd(Module):
    _fn: Any = None

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input: jax.Array) -> Any:
        return type(self)._fn(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """1-D adaptive max pooling to ``output_size``; ``return_indices`` as :class:`MaxPool1d`.

    Args:
        output_size: the output's spatial size (an int, a tuple; ``None`` keeps that input size).
        return_indices: also return the flat indices of the maxima (for ``MaxUnpool``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.AdaptiveMaxPool1d(5)(jnp.ones((1, 64, 8))).shape
    (1, 64, 5)
    """

    _fn = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """2-D adaptive max pooling to ``output_size``; ``return_indices`` as :class:`MaxPool2d`.

    Args:
        output_size: the output's spatial size (an int, a tuple; ``None`` keeps that input size).
        return_indices: also return the flat indices of the maxima (for ``MaxUnpool``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.AdaptiveMaxPool2d(7)(jnp.ones((1, 64, 10, 9))).shape
    (1, 64, 7, 7)
    """

    _fn = staticmethod(F.adaptive_max_pool2d)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """3-D adaptive max pooling to ``output_size``; ``return_indices`` as :class:`MaxPool3d`.

    Args:
        output_size: the output's spatial size (an int, a tuple; ``None`` keeps that input size).
        return_indices: also return the flat indices of the maxima (for ``MaxUnpool``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.AdaptiveMaxPool3d((1, 2, 3))(jnp.ones((1, 4, 4, 4))).shape
    (1, 1, 2, 3)
    """

    _fn = staticmethod(F.adaptive_max_pool3d)


class _LPPoolNd(Module):
    _fn: Any = None

    def __init__(self, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input: jax.Array) -> jax.Array:
        return type(self)._fn(input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """1-D power-average pooling: ``(sum over the window of x ** p) ** (1 / p)``.

    Args:
        norm_type: the power ``p`` of ``(sum x**p)**(1/p)`` over each window.
        kernel_size: size of the pooling window (an int or a tuple).
        stride: step of the window; default ``kernel_size``.
        ceil_mode: round the output size up instead of down (windows starting in the padding are dropped).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.LPPool1d(2, 3, stride=2)(jnp.ones((1, 2, 7))).shape
    (1, 2, 3)
    """

    _fn = staticmethod(F.lp_pool1d)


class LPPool2d(_LPPoolNd):
    """2-D power-average pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input.

    Args:
        norm_type: the power ``p`` of ``(sum x**p)**(1/p)`` over each window.
        kernel_size: size of the pooling window (an int or a tuple).
        stride: step of the window; default ``kernel_size``.
        ceil_mode: round the output size up instead of down (windows starting in the padding are dropped).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.LPPool2d(2, 2)(jnp.ones((1, 2, 4, 6))).shape
    (1, 2, 2, 3)
    """

    _fn = staticmethod(F.lp_pool2d)


class LPPool3d(_LPPoolNd):
    """3-D power-average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input.

    Args:
        norm_type: the power ``p`` of ``(sum x**p)**(1/p)`` over each window.
        kernel_size: size of the pooling window (an int or a tuple).
        stride: step of the window; default ``kernel_size``.
        ceil_mode: round the output size up instead of down (windows starting in the padding are dropped).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.LPPool3d(1, 2)(jnp.ones((1, 4, 4, 4))).shape
    (1, 2, 2, 2)
    """

    _fn = staticmethod(F.lp_pool3d)


class _FractionalMaxPoolNd(Module):
    _n = 0
    _fn: Any = None

    def __init__(
        self, kernel_size: Any, output_size: Any = None, output_ratio: Any = None, return_indices: bool = False,
        _random_samples: Any = None,
    ) -> None:
        super().__init__()
        name, n = type(self).__name__, self._n
        if (isinstance(kernel_size, int) and kernel_size <= 0) or (
            isinstance(kernel_size, (tuple, list)) and not all(k > 0 for k in kernel_size)
        ):
            raise ValueError(f"kernel_size must be greater than 0, but got {kernel_size}")
        self.kernel_size = _ntuple(kernel_size, n)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = _ntuple(output_size, n) if output_size is not None else None
        self.output_ratio = _ntuple(output_ratio, n) if output_ratio is not None else None
        if output_size is None and output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input: jax.Array) -> Any:
        return type(self)._fn(input, self.kernel_size, self.output_size, self.output_ratio, self.return_indices,
                              _random_samples=self._random_samples)


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """2-D fractional max pooling; the random step offsets come from ``jnn.random`` (or ``_random_samples``).

    Args:
        kernel_size: size of the pooling window (an int or a tuple).
        output_size: the output's spatial size (give this or ``output_ratio``).
        output_ratio: the output size as a fraction of the input size, in (0, 1).
        return_indices: also return the flat indices of the maxima (for ``MaxUnpool``).
        _random_samples: fixed samples in [0, 1) of shape ``(N, C, 2)`` instead of drawing them.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.FractionalMaxPool2d(3, output_ratio=(0.5, 0.5))(jnp.ones((1, 2, 10, 12))).shape
    (1, 2, 5, 6)
    """

    _n, _fn = 2, staticmethod(F.fractional_max_pool2d)


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """3-D fractional max pooling; the random step offsets come from ``jnn.random`` (or ``_random_samples``).

    Args:
        kernel_size: size of the pooling window (an int or a tuple).
        output_size: the output's spatial size (give this or ``output_ratio``).
        output_ratio: the output size as a fraction of the input size, in (0, 1).
        return_indices: also return the flat indices of the maxima (for ``MaxUnpool``).
        _random_samples: fixed samples in [0, 1) of shape ``(N, C, 3)`` instead of drawing them.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.FractionalMaxPool3d(2, output_size=(3, 3, 3))(jnp.ones((1, 7, 7, 7))).shape
    (1, 3, 3, 3)
    """

    _n, _fn = 3, staticmethod(F.fractional_max_pool3d)
