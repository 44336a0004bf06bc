"""Padding layers: Zero/Constant/Reflection/Replication/Circular padding in 1, 2 and 3 dimensions."""

from __future__ import annotations

from typing import Any

import jax

from jnn import functional as F
from jnn.modules._utils import _ntuple
from jnn.modules.module import Module

__all__ = ["CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
           "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"]


def _padding(padding: Any, dims: int) -> tuple[int, ...]:
    # torch: an int is repeated 2 * dims times; a sequence is taken as given (F.pad checks it)
    return _ntuple(padding, 2 * dims)


class _PadNd(Module):
    """``padding`` is an int or ``(left, right[, top, bottom[, front, back]])``, last dimension first."""

    _dims: int
    _mode: str

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _padding(padding, self._dims)

    def forward(self, input: jax.Array) -> jax.Array:
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _CircularPadNd(_PadNd):
    _mode = "circular"

    def forward(self, input: jax.Array) -> jax.Array:
        ndim, n = input.ndim, self._dims
        if ndim not in (n + 1, n + 2):
            raise ValueError(f"expected {n + 1}D or {n + 2}D input (got {ndim}D input)")
        return F.pad(input, self.padding, "circular")


class CircularPad1d(_CircularPadNd):
    """Pad the last dimension of ``(N, C, W)`` / ``(C, W)`` input by wrapping around.

    Args:
        padding: the same amount on every side (an int), or a 2-tuple (left, right).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.CircularPad1d((1, 2))(jnp.arange(3.0)[None]).tolist()
    [[2.0, 0.0, 1.0, 2.0, 0.0, 1.0]]
    """

    _dims = 1


class CircularPad2d(_CircularPadNd):
    """Pad the last two dimensions of ``(N, C, H, W)`` / ``(C, H, W)`` input by wrapping around.

    Args:
        padding: the same amount on every side (an int), or a 4-tuple (left, right, top, bottom).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.CircularPad2d(1)(jnp.ones((1, 2, 3))).shape
    (1, 4, 5)
    """

    _dims = 2


class CircularPad3d(_CircularPadNd):
    """Pad the last three dimensions of ``(N, C, D, H, W)`` / ``(C, D, H, W)`` input by wrapping around.

    Args:
        padding: the same amount on every side (an int), or a 6-tuple (left, right, top, bottom, front, back).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.CircularPad3d((1, 0, 0, 1, 2, 2))(jnp.ones((1, 3, 3, 3))).shape
    (1, 7, 4, 4)
    """

    _dims = 3


class _ConstantPadNd(_PadNd):
    _mode = "constant"

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input: jax.Array) -> jax.Array:
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dimension with ``value`` (negative padding crops).

    Args:
        padding: the same amount on every side (an int), or a 2-tuple (left, right).
        value: the fill value.

    >>> import jax.numpy as jnp, jnn as nn
    >>> pad = nn.ConstantPad1d((2, 1), 3.5)
    >>> pad, pad(jnp.zeros((1, 2))).tolist()
    (ConstantPad1d(padding=(2, 1), value=3.5), [[3.5, 3.5, 0.0, 0.0, 3.5]])
    """

    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dimensions with ``value``.

    Args:
        padding: the same amount on every side (an int), or a 4-tuple (left, right, top, bottom).
        value: the fill value.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ConstantPad2d((1, 1, 2, 0), 1.0)(jnp.zeros((2, 3, 3))).shape
    (2, 5, 5)
    """

    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dimensions with ``value``.

    Args:
        padding: the same amount on every side (an int), or a 6-tuple (left, right, top, bottom, front, back).
        value: the fill value.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ConstantPad3d(1, 0.5)(jnp.zeros((2, 3, 3, 3))).shape
    (2, 5, 5, 5)
    """

    _dims = 3


class ZeroPad1d(ConstantPad1d):
    """Pad the last dimension with zeros.

    Args:
        padding: the same amount on every side (an int), or a 2-tuple (left, right).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ZeroPad1d((1, 2))(jnp.ones((1, 2))).tolist()
    [[0.0, 1.0, 1.0, 0.0, 0.0]]
    """

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dimensions with zeros.

    Args:
        padding: the same amount on every side (an int), or a 4-tuple (left, right, top, bottom).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ZeroPad2d(1), nn.ZeroPad2d(1)(jnp.ones((1, 2, 2))).shape
    (ZeroPad2d((1, 1, 1, 1)), (1, 4, 4))
    """

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """Pad the last three dimensions with zeros.

    Args:
        padding: the same amount on every side (an int), or a 6-tuple (left, right, top, bottom, front, back).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ZeroPad3d((1, 1, 0, 0, 2, 2))(jnp.ones((1, 1, 2, 2, 2))).shape
    (1, 1, 6, 2, 4)
    """

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Pad the last dimension of ``(N, C, W)`` / ``(C, W)`` input with its reflection (edge not repeated).

    Args:
        padding: the same amount on every side (an int), or a 2-tuple (left, right).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ReflectionPad1d(2)(jnp.arange(4.0)[None]).tolist()
    [[2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0]]
    """

    _dims, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Pad the last two dimensions with their reflection.

    Args:
        padding: the same amount on every side (an int), or a 4-tuple (left, right, top, bottom).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ReflectionPad2d((1, 1, 2, 0))(jnp.ones((1, 3, 3))).shape
    (1, 5, 5)
    """

    _dims, _mode = 2, "reflect"


class ReflectionPad3d(_PadNd):
    """Pad the last three dimensions with their reflection.

    Args:
        padding: the same amount on every side (an int), or a 6-tuple (left, right, top, bottom, front, back).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ReflectionPad3d(1)(jnp.ones((1, 1, 2, 2, 2))).shape
    (1, 1, 4, 4, 4)
    """

    _dims, _mode = 3, "reflect"


class ReplicationPad1d(_PadNd):
    """Pad the last dimension by repeating its edge values.

    Args:
        padding: the same amount on every side (an int), or a 2-tuple (left, right).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ReplicationPad1d((2, 1))(jnp.arange(3.0)[None]).tolist()
    [[0.0, 0.0, 0.0, 1.0, 2.0, 2.0]]
    """

    _dims, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Pad the last two dimensions by repeating their edge values.

    Args:
        padding: the same amount on every side (an int), or a 4-tuple (left, right, top, bottom).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ReplicationPad2d(2)(jnp.ones((1, 1, 3, 3))).shape
    (1, 1, 7, 7)
    """

    _dims, _mode = 2, "replicate"


class ReplicationPad3d(_PadNd):
    """Pad the last three dimensions by repeating their edge values.

    Args:
        padding: the same amount on every side (an int), or a 6-tuple (left, right, top, bottom, front, back).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ReplicationPad3d(1)(jnp.ones((1, 1, 2, 2, 2))).shape
    (1, 1, 4, 4, 4)
    """

    _dims, _mode = 3, "replicate"
