"""Flatten."""

from __future__ import annotations

import math

import jax

from jnn.modules.module import Module

__all__ = ["Flatten"]


class Flatten(Module):
    """Flattens dims ``start_dim`` to ``end_dim`` into one.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Flatten()(jnp.ones((2, 3, 4, 5))).shape
    (2, 60)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: jax.Array) -> jax.Array:
        ndim = max(input.ndim, 1)
        start, end = self.start_dim % ndim, self.end_dim % ndim
        if not (-ndim <= self.start_dim < ndim and -ndim <= self.end_dim < ndim):
            raise IndexError(
                f"Flatten: dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
                f"but got start_dim={self.start_dim}, end_dim={self.end_dim})"
            )
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        shape = input.shape
        return input.reshape(shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
