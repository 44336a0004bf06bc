"""Fold and Unfold: sliding local blocks to columns and back (torch's im2col / col2im)."""

from __future__ import annotations

from typing import Any

import jax

from jnn import functional as F
from jnn.modules.module import Module

__all__ = ["Fold", "Unfold"]


class Fold(Module):
    """Sum sliding blocks ``(N, C * prod(kernel_size), L)`` back into ``(N, C, *output_size)`` (see ``F.fold``).

    Args:
        output_size: spatial shape of the output ``(H, W)``.
        kernel_size: size of the sliding blocks (an int or a tuple).
        dilation: spacing between kernel elements (an int or a tuple).
        padding: implicit zero padding on both sides (an int or a tuple).
        stride: step of the sliding blocks (an int or a tuple).

    >>> import jax.numpy as jnp, jnn as nn
    >>> fold = nn.Fold(output_size=(4, 5), kernel_size=(2, 2))
    >>> fold
    Fold(output_size=(4, 5), kernel_size=(2, 2), dilation=1, padding=0, stride=1)
    >>> fold(jnp.ones((1, 3 * 2 * 2, 12))).shape
    (1, 3, 4, 5)
    """

    def __init__(self, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
                 stride: Any = 1) -> None:
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: jax.Array) -> jax.Array:
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Unfold(Module):
    """Extract sliding local blocks: ``(N, C, H, W) -> (N, C * prod(kernel_size), L)`` (see ``F.unfold``).

    Args:
        kernel_size: size of the sliding blocks (an int or a tuple).
        dilation: spacing between kernel elements (an int or a tuple).
        padding: implicit zero padding on both sides (an int or a tuple).
        stride: step of the sliding blocks (an int or a tuple).

    >>> import jax.numpy as jnp, jnn as nn
    >>> unfold = nn.Unfold(kernel_size=(2, 3))
    >>> unfold
    Unfold(kernel_size=(2, 3), dilation=1, padding=0, stride=1)
    >>> unfold(jnp.ones((2, 5, 3, 4))).shape
    (2, 30, 4)
    """

    def __init__(self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: jax.Array) -> jax.Array:
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, stride={self.stride}"
