"""Dropout."""

from __future__ import annotations

import jax

from jnn import functional as F
from jnn.modules.module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zeroes elements with probability ``p`` in training mode and scales the rest by ``1/(1-p)``.

    Randomness comes from jnn's stream (``jnn.manual_seed``) in eager code, and from the key given to
    ``apply(..., key=key)`` or ``with jnn.random.fork(key):`` under a transformation.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Dropout(0.5).eval()(jnp.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
