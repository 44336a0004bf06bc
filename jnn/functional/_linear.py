"""Linear maps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["linear"]


def linear(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> jax.Array:
    """``y = x @ weight.T + bias`` with torch's layout: weight ``(out_features, in_features)``.

    ``input`` is ``(*, in_features)`` (any number of leading dims, or 1-D).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.linear(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.zeros(4)).shape
    (2, 4)
    """
    x, w = jnp.asarray(input), jnp.asarray(weight)
    if x.ndim == 0 or w.ndim not in (1, 2):
        raise ValueError(f"linear: expected input of shape (*, in_features) and weight of shape "
                         f"(out_features, in_features), got input {x.shape} and weight {w.shape}")
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features in its last dimension (shape {x.shape}) "
                         f"but weight of shape {w.shape} expects {w.shape[-1]} (weight is (out, in))")
    y = jnp.matmul(x, w.T)
    if bias is not None:
        b = jnp.asarray(bias)
        try:
            ok = jnp.broadcast_shapes(y.shape, b.shape) == y.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"linear: bias of shape {b.shape} does not broadcast to the output shape {y.shape}")
        y = y + b
    return y
