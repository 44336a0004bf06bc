"""Upsampling layers: thin classes over :func:`jnn.functional.interpolate`."""

from __future__ import annotations

from typing import Any

import jax

from jnn import functional as F
from jnn.modules.module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


class Upsample(Module):
    """Resample ``(N, C, *spatial)`` input to ``size`` or by ``scale_factor`` (see ``F.interpolate`` for modes).

    Args:
        size: the output's spatial size (give this or ``scale_factor``).
        scale_factor: multiplier of the spatial size (a float or a tuple).
        mode: ``'nearest'``, ``'linear'``, ``'bilinear'``, ``'bicubic'``, ``'trilinear'`` or ``'nearest-exact'``.
        align_corners: for the linear modes, align the corner pixels of input and output.
        recompute_scale_factor: compute the sampling from the output size rather than from ``scale_factor``.

    >>> import jax.numpy as jnp, jnn as nn
    >>> m = nn.Upsample(scale_factor=2, mode="bilinear")
    >>> m, m(jnp.ones((1, 3, 4, 5))).shape
    (Upsample(scale_factor=2.0, mode='bilinear'), (1, 3, 8, 10))
    """

    def __init__(
        self, size: Any = None, scale_factor: Any = None, mode: str = "nearest", align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: jax.Array) -> jax.Array:
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling of ``(N, C, H, W)`` input.

    Args:
        size: the output's spatial size (give this or ``scale_factor``).
        scale_factor: multiplier of the spatial size.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.UpsamplingNearest2d(scale_factor=2)(jnp.ones((1, 1, 2, 3))).shape
    (1, 1, 4, 6)
    """

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling of ``(N, C, H, W)`` input with ``align_corners=True``.

    Args:
        size: the output's spatial size (give this or ``scale_factor``).
        scale_factor: multiplier of the spatial size.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.UpsamplingBilinear2d(size=(5, 7))(jnp.ones((1, 1, 2, 3))).shape
    (1, 1, 5, 7)
    """

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
