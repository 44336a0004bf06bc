"""Activation layers: thin classes over jnn.functional."""

from __future__ import annotations

import jax

from jnn import functional as F
from jnn.modules.module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh", "Softmax"]


class ReLU(Module):
    """``max(x, 0)`` elementwise. ``inplace`` is accepted for compatibility (JAX arrays are immutable).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ReLU()(jnp.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` elementwise."""

    def forward(self, input: jax.Array) -> jax.Array:
        return F.sigmoid(input)


class Tanh(Module):
    """``tanh(x)`` elementwise."""

    def forward(self, input: jax.Array) -> jax.Array:
        return F.tanh(input)


class Softmax(Module):
    """Softmax along ``dim``.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Softmax(dim=-1)(jnp.zeros(4)).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
