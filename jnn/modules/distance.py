"""Distance layers: CosineSimilarity and PairwiseDistance."""

from __future__ import annotations

import jax

from jnn import functional as F
from jnn.modules.module import Module

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class CosineSimilarity(Module):
    """Cosine similarity of ``x1`` and ``x2`` along ``dim`` (norms clamped to ``eps``).

    Args:
        dim: the dimension the similarity is computed over (negative counts from the end).
        eps: lower bound of each norm, against division by zero.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.CosineSimilarity(dim=1)(jnp.ones((4, 3)), jnp.ones((4, 3))).shape
    (4,)
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1: jax.Array, x2: jax.Array) -> jax.Array:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """``||x1 - x2 + eps||_p`` over the last dimension.

    Args:
        p: the norm degree.
        eps: added to the difference, against a zero norm's gradient.
        keepdim: keep the reduced last dimension as size 1.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.PairwiseDistance(p=1.0, eps=0.0)(jnp.zeros((2, 3)), jnp.ones((2, 3))).tolist()
    [3.0, 3.0]
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: jax.Array, x2: jax.Array) -> jax.Array:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
