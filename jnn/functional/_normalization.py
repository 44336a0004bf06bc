"""Normalisation."""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

__all__ = ["batch_norm_with_stats", "batch_norm"]


@functools.partial(jax.jit, static_argnames=("training",))
def _batch_norm(x, rm, rv, weight, bias, training, momentum, eps):
    c, n = x.shape[1], x.shape[0] * math.prod(x.shape[2:])
    cdt = jnp.promote_types(x.dtype, jnp.float32)  # statistics in float32 at least
    xc = x.astype(cdt)
    axes, shape = (0, *range(2, x.ndim)), (1, c) + (1,) * (x.ndim - 2)
    if training:
        mean = xc.mean(axes)
        var = jnp.square(xc - mean.reshape(shape)).mean(axes)  # biased, used to normalise
        if rm is not None and n > 0:  # torch leaves the statistics alone for an empty batch
            rm = ((1 - momentum) * rm.astype(cdt) + momentum * mean).astype(rm.dtype)
            rv = ((1 - momentum) * rv.astype(cdt) + momentum * var * (n / (n - 1))).astype(rv.dtype)
    else:
        mean, var = rm.astype(cdt).reshape(c), rv.astype(cdt).reshape(c)
    y = (xc - mean.reshape(shape)) * lax.rsqrt(var + eps).reshape(shape)
    if weight is not None:
        y = y * weight.astype(cdt).reshape(shape)
    if bias is not None:
        y = y + bias.astype(cdt).reshape(shape)
    return y.astype(x.dtype), rm, rv


def batch_norm_with_stats(
    input: ArrayLike, running_mean: ArrayLike | None, running_var: ArrayLike | None,
    weight: ArrayLike | None = None, bias: ArrayLike | None = None, training: bool = False,
    momentum: float = 0.1, eps: float = 1e-5,
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """:func:`batch_norm` that also returns the updated running statistics: ``(output, new_mean, new_var)``.

    In training the new statistics are ``(1 - momentum) * running + momentum * batch``, with the unbiased
    batch variance, exactly what torch writes into the buffers in place; otherwise (or when the running
    statistics are ``None``, or the batch is empty) they are returned unchanged.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> y, m, v = F.batch_norm_with_stats(jnp.array([[0.0], [2.0]]), jnp.zeros(1), jnp.ones(1), training=True)
    >>> [round(float(a), 4) for a in (*y.ravel(), *m, *v)]
    [-1.0, 1.0, 0.1, 1.1]
    """
    x = jnp.asarray(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, *) with at least 2 dims, got {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must either both be None or neither be None")
    c = x.shape[1]
    args = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    args = {k: None if a is None else jnp.asarray(a) for k, a in args.items()}
    for name, a in args.items():
        if a is not None and a.size != c:
            raise ValueError(f"batch_norm: {name} should contain {c} elements (one per channel, dim 1 of input "
                             f"shape {x.shape}) not {a.size}")
    if training and x.shape[0] * math.prod(x.shape[2:]) == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean must be defined in evaluation mode (training=False); "
                         "pass training=True to normalise with batch statistics")
    return _batch_norm(x, *args.values(), bool(training), momentum, eps)


def batch_norm(
    input: ArrayLike, running_mean: ArrayLike | None, running_var: ArrayLike | None,
    weight: ArrayLike | None = None, bias: ArrayLike | None = None, training: bool = False,
    momentum: float = 0.1, eps: float = 1e-5,
) -> jax.Array:
    """Batch normalisation over channel dim 1 of ``(N, C, *)`` input; returns the output only.

    Training normalises with the biased batch variance; evaluation uses the running statistics. JAX arrays
    are immutable, so unlike torch the running statistics passed in are *not* updated: a training call with
    running statistics warns; use :func:`batch_norm_with_stats` or a ``jnn.BatchNorm*`` module instead.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.batch_norm(jnp.array([[1.0], [3.0]]), jnp.array([1.0]), jnp.array([4.0]), eps=0.0).ravel().tolist()
    [0.0, 1.0]
    """
    out = batch_norm_with_stats(input, running_mean, running_var, weight, bias, training, momentum, eps)[0]
    if training and running_mean is not None:
        warnings.warn("jnn.functional.batch_norm cannot update running_mean/running_var in place (JAX arrays "
                      "are immutable); they are left unchanged. Use jnn.functional.batch_norm_with_stats(...), "
                      "which returns the updated statistics, or a jnn.BatchNorm1d/2d/3d module.", stacklevel=2)
    return out
