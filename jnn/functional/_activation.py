"""Activation functions."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

__all__ = ["relu", "sigmoid", "tanh", "softmax", "log_softmax"]


def relu(input: ArrayLike, inplace: bool = False) -> jax.Array:
    """Rectified linear unit, ``max(0, x)`` (gradient 0 at 0, as in torch).

    ``inplace`` is accepted for compatibility; JAX arrays are immutable, so a new array is returned.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.relu(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """
    return jax.nn.relu(jnp.asarray(input))


def _float(x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def sigmoid(input: ArrayLike) -> jax.Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``; integer input gives float32, like torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.sigmoid(jnp.array([0.0])).tolist()
    [0.5]
    """
    return jax.nn.sigmoid(_float(input))


def tanh(input: ArrayLike) -> jax.Array:
    """Hyperbolic tangent; integer input gives float32, like torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.tanh(jnp.array([0.0])).tolist()
    [0.0]
    """
    return jnp.tanh(_float(input))


def _softmax(name: str, fn, input: ArrayLike, dim: int | None, stacklevel: int,
             dtype: DTypeLike | None) -> jax.Array:
    x = jnp.asarray(input)
    if dtype is not None:
        x = x.astype(dtype)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype} "
                        f"(pass dtype=jnp.float32 to cast first)")
    if dim is None:  # torch's deprecated implicit choice (functional._get_softmax_dim)
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                      "Change the call to include dim=X as an argument.", stacklevel=stacklevel)
        dim = 0 if x.ndim in (0, 1, 3) else 1
    n = max(x.ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{name}: dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim}) for input of shape {x.shape}")
    if x.ndim == 0:
        return fn(x.reshape(1), axis=0).reshape(())
    return fn(x, axis=dim)


def softmax(input: ArrayLike, dim: int | None = None, _stacklevel: int = 3,
            dtype: DTypeLike | None = None) -> jax.Array:
    """Softmax along ``dim`` (cast to ``dtype`` first if given).

    With ``dim=None`` torch's deprecated implicit choice applies (dim 0 for 0-D, 1-D and 3-D input, else 1)
    and a warning is issued.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.softmax(jnp.zeros((1, 2)), dim=1).tolist()
    [[0.5, 0.5]]
    """
    return _softmax("softmax", jax.nn.softmax, input, dim, _stacklevel, dtype)


def log_softmax(input: ArrayLike, dim: int | None = None, _stacklevel: int = 3,
                dtype: DTypeLike | None = None) -> jax.Array:
    """Logarithm of the softmax along ``dim``, computed stably; same ``dim``/``dtype`` rules as :func:`softmax`.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.log_softmax(jnp.zeros(4), dim=0)[0]), 4)
    -1.3863
    """
    return _softmax("log_softmax", jax.nn.log_softmax, input, dim, _stacklevel, dtype)
