"""Pixel shuffle layers: rearrange channels into space and back."""

from __future__ import annotations

import jax

from jnn import functional as F
from jnn.modules.module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle"]


class PixelShuffle(Module):
    """``(*, C * r**2, H, W) -> (*, C, H * r, W * r)`` with ``r = upscale_factor``.

    Args:
        upscale_factor: factor ``r``: ``(C * r**2, H, W)`` becomes ``(C, H * r, W * r)``.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.PixelShuffle(3)(jnp.ones((1, 9, 4, 4))).shape
    (1, 1, 12, 12)
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: jax.Array) -> jax.Array:
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """``(*, C, H * r, W * r) -> (*, C * r**2, H, W)`` with ``r = downscale_factor``.

    Args:
        downscale_factor: factor ``r``: ``(C, H * r, W * r)`` becomes ``(C * r**2, H, W)``.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.PixelUnshuffle(3)(jnp.ones((1, 1, 12, 12))).shape
    (1, 9, 4, 4)
    """

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: jax.Array) -> jax.Array:
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"
