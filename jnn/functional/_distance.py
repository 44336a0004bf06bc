"""Distances: cosine similarity, pairwise distance and pdist."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["cosine_similarity", "pairwise_distance", "pdist"]


def _pnorm(x: jax.Array, p: float, axis: int, keepdims: bool = False) -> jax.Array:
    return jnp.linalg.vector_norm(x, ord=p, axis=axis, keepdims=keepdims)


def cosine_similarity(x1: ArrayLike, x2: ArrayLike, dim: int = 1, eps: float = 1e-8) -> jax.Array:
    """Cosine similarity along ``dim`` of the broadcast of ``x1`` and ``x2``; each norm is clamped to ``eps``.

    >>> import jax.numpy as jnp, jnn.functional as F
    >>> F.cosine_similarity(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 2.0]])).tolist()
    [0.0]
    """
    a, b = jnp.asarray(x1), jnp.asarray(x2)
    try:
        shape = jnp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"cosine_similarity: x1 {a.shape} and x2 {b.shape} are not broadcastable") from None
    a, b = jnp.broadcast_to(a, shape), jnp.broadcast_to(b, shape)
    if not -len(shape) <= dim < max(len(shape), 1):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-len(shape)}, {len(shape) - 1}], "
                         f"but got {dim})")
    # torch clamps the norms in place without recording it: the gradient is that of the unclamped norm
    na, nb = _pnorm(a, 2, dim, True), _pnorm(b, 2, dim, True)
    na = na + jax.lax.stop_gradient(jnp.maximum(na, eps) - na)
    nb = nb + jax.lax.stop_gradient(jnp.maximum(nb, eps) - nb)
    return ((a / na) * (b / nb)).sum(axis=dim)


def pairwise_distance(x1: ArrayLike, x2: ArrayLike, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> jax.Array:
    """``||x1 - x2 + eps||_p`` over the last dimension (inputs broadcast; 1-D inputs give a scalar).

    >>> import jax.numpy as jnp, jnn.functional as F
    >>> F.pairwise_distance(jnp.zeros((2, 4)), jnp.ones((2, 4)), eps=0.0).tolist()
    [2.0, 2.0]
    """
    a, b = jnp.asarray(x1), jnp.asarray(x2)
    out_ndim = max(a.ndim, b.ndim)
    diff = a - b + eps
    if out_ndim == 0:
        raise ValueError("pairwise_distance: expected inputs with at least 1 dimension")
    return _pnorm(diff, p, -1, keepdim)


def pdist(input: ArrayLike, p: float = 2) -> jax.Array:
    """p-norm distances between every pair of rows of ``input`` ``(N, M)``: the upper triangle, ``N*(N-1)/2``.

    >>> import jax.numpy as jnp, jnn.functional as F
    >>> F.pdist(jnp.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])).tolist()
    [5.0, 1.0, 4.242640495300293]
    """
    x = jnp.asarray(input)
    if x.ndim != 2:
        raise ValueError(f"pdist only supports 2D tensors, got: {x.ndim}D")
    if p < 0:
        raise ValueError("pdist only supports non-negative p values")
    i, j = np.triu_indices(x.shape[0], k=1)
    diff = x[i] - x[j]
    if p == 2:  # torch's backward gives 0 (not NaN) for identical rows
        sq = (diff * diff).sum(-1)
        safe = jnp.where(sq == 0, 1, sq)
        return jnp.where(sq == 0, 0, jnp.sqrt(safe))
    return _pnorm(diff, p, -1)
