"""Dropout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jnn import random as _jrandom

__all__ = ["dropout"]


def _vmapped(a: object) -> bool:
    # jax.vmap's tracer class is private (jax._src.interpreters.batching.BatchTracer); match it by name.
    return isinstance(a, jax.core.Tracer) and type(a).__name__ == "BatchTracer"


def dropout(input: ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            key: jax.Array | None = None) -> jax.Array:
    """Zero each element with probability ``p`` and scale the kept ones by ``1 / (1 - p)``; identity if not training.

    The mask comes from ``key`` if given, else from :func:`jnn.random.next_key` (the innermost
    ``jnn.random.fork(key)`` context, or the global stream seeded by ``jnn.manual_seed``). Under ``jax.jit``
    with neither, it raises :class:`jnn.random.MissingKeyError`; so it does under ``jax.vmap`` when the
    drawn key is not batched (every example would share one mask). ``inplace`` is accepted and ignored.

    >>> import jax, jnn.functional as F, jax.numpy as jnp
    >>> y = F.dropout(jnp.ones(6), p=0.5, key=jax.random.key(0))
    >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    x = jnp.asarray(input)
    if not training or p == 0 or x.size == 0:
        return x
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"dropout: expected a floating-point input in training mode, got dtype {x.dtype}")
    if p == 1:
        return x * 0  # like torch: NaN/inf stay NaN
    if key is None:
        key = _jrandom.next_key("dropout")
        if _vmapped(x) and not _vmapped(key):
            raise _jrandom.MissingKeyError(
                "dropout inside jax.vmap got no per-example key: the key drawn from jnn's stream is the same for "
                "every example, so they would all share one mask. Pass key= with a batched key (e.g. vmap over "
                "jax.random.split(key, batch_size) alongside the input), or open `jnn.random.fork(k)` inside the "
                "vmapped function with such a k.")
    keep = jax.random.bernoulli(key, 1.0 - p, x.shape)
    return x * (keep.astype(x.dtype) / jnp.asarray(1.0 - p, x.dtype))
