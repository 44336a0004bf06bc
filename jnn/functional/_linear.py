"""Linear maps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jnn._arrays import check_same_dtype

__all__ = ["linear", "bilinear"]


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
    check_same_dtype(x, w, "linear")
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


def bilinear(input1: ArrayLike, input2: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> jax.Array:
    """``y = x1^T A x2 + b`` with weight ``A`` of shape ``(out_features, in1_features, in2_features)``.

    ``input1`` is ``(*, in1_features)`` and ``input2`` ``(*, in2_features)`` with the same leading dims.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.bilinear(jnp.ones((5, 2)), jnp.ones((5, 3)), jnp.ones((4, 2, 3)), jnp.zeros(4)).shape
    (5, 4)
    """
    x1, x2, w = jnp.asarray(input1), jnp.asarray(input2), jnp.asarray(weight)
    if w.ndim != 3:
        raise ValueError(f"bilinear(): weight must be 3-dimensional, got shape {w.shape}")
    if x1.shape[:-1] != x2.shape[:-1]:
        raise ValueError(f"bilinear(): input batch dimensions do not match: got {x1.shape[:-1]} and {x2.shape[:-1]}")
    if x1.ndim == 0 or x1.shape[-1] != w.shape[1]:
        raise ValueError(f"bilinear(): input1 size does not match weight size: got {x1.shape[-1:]} but expected "
                         f"{w.shape[1]}")
    if x2.shape[-1] != w.shape[2]:
        raise ValueError(f"bilinear(): input2 size does not match weight size: got {x2.shape[-1]} but expected "
                         f"{w.shape[2]}")
    y = jnp.einsum("...oj,...j->...o", jnp.einsum("...i,oij->...oj", x1, w), x2)  # torch's order (inf stays inf)
    if bias is not None:
        b = jnp.asarray(bias)
        if b.shape != (w.shape[0],):
            raise ValueError(f"bilinear(): bias size does not match weight size: got {b.shape} but expected "
                             f"({w.shape[0]},)")
        y = y + b
    return y
