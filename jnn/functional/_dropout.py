"""Dropout."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jnn import random as _jrandom
from jnn._arrays import is_vmapped

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]


def _draw_key(x: jax.Array, key: jax.Array | None, who: str) -> jax.Array:
    if key is not None:
        return key
    key = _jrandom.next_key(who)
    if is_vmapped(x) and not is_vmapped(key):
        raise _jrandom.MissingKeyError(
            f"{who} inside jax.vmap got no per-example key: the key drawn from jnn's stream is the same for "
            "every example, so they would all share one mask. Pass key= with a batched key (e.g. vmap over "
            "jax.random.split(key, batch_size) alongside the input), or open `jnn.random.fork(k)` inside the "
            "vmapped function with such a k.")
    return key


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
    keep = jax.random.bernoulli(_draw_key(x, key, "dropout"), 1.0 - p, x.shape)
    return x * (keep.astype(x.dtype) / jnp.asarray(1.0 - p, x.dtype))


def _check_p(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _noise_dropout(x: jax.Array, p: float, training: bool, feature: bool, alpha: bool, key: jax.Array | None,
                   who: str) -> jax.Array:
    """torch's _dropout_impl: Bernoulli(1 - p) noise per element, or per (n, c) feature map if ``feature``."""
    if not training or p == 0 or x.size == 0:
        return x
    if feature and x.ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{who}: expected a floating-point input in training mode, got dtype {x.dtype}")
    if p == 1:
        return x * 0  # like torch: NaN/inf stay NaN
    shape = x.shape[:2] + (1,) * (x.ndim - 2) if feature else x.shape
    keep = jax.random.bernoulli(_draw_key(x, key, who), 1.0 - p, shape).astype(x.dtype)
    if not alpha:
        return x * (keep / jnp.asarray(1.0 - p, x.dtype))
    a = 1.0 / math.sqrt((_SELU_ALPHA**2 * p + 1) * (1 - p))
    b = (keep - 1) * (_SELU_ALPHA * a) + _SELU_ALPHA * a * p
    return x * (keep * jnp.asarray(a, x.dtype)) + b.astype(x.dtype)


_SELU_ALPHA = 1.7580993408473766  # torch's alpha' = -selu(-inf) = scale * alpha


def dropout1d(input: ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              key: jax.Array | None = None) -> jax.Array:
    """Zero whole channels of ``(N, C, L)`` or unbatched ``(C, L)`` input with probability ``p``; scale the rest.

    Keys as in :func:`dropout`.

    >>> import jax, jnn.functional as F, jax.numpy as jnp
    >>> y = F.dropout1d(jnp.ones((2, 3, 4)), key=jax.random.key(0))
    >>> bool(((y == 0) | (y == 2)).all() and (y == y[..., :1]).all())  # one draw per channel
    True
    """
    _check_p(p)
    x = jnp.asarray(input)
    if x.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {x.ndim}D input. Note that dropout1d exists to "
            "provide channel-wise dropout on inputs with 1 spatial dimension, a channel dimension, and an optional "
            "batch dimension (i.e. 2D or 3D inputs).")
    if x.ndim == 2:
        return _noise_dropout(x[None], p, training, True, False, key, "dropout1d")[0]
    return _noise_dropout(x, p, training, True, False, key, "dropout1d")


def dropout2d(input: ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              key: jax.Array | None = None) -> jax.Array:
    """Zero whole channels of ``(N, C, H, W)`` input with probability ``p``; scale the rest by ``1 / (1 - p)``.

    As in torch, a 3D input is treated as ``(N, C, L)`` (with a warning), and other ranks warn as deprecated.

    >>> import jax, jnn.functional as F, jax.numpy as jnp
    >>> F.dropout2d(jnp.ones((2, 3, 4, 4)), key=jax.random.key(0)).shape
    (2, 3, 4, 4)
    """
    _check_p(p)
    x = jnp.asarray(input)
    if x.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated and will result in an error "
            "in a future release. To retain the behavior and silence this warning, please use dropout instead. "
            "Note that dropout2d exists to provide channel-wise dropout on inputs with 2 spatial dimensions, a "
            "channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).", stacklevel=2)
    if x.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior is "
            "desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior will "
            "change in a future release to interpret the input as one without a batch dimension, i.e. shape "
            "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using dropout1d "
            "instead.", stacklevel=2)
    return _noise_dropout(x, p, training, True, False, key, "dropout2d")


def dropout3d(input: ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              key: jax.Array | None = None) -> jax.Array:
    """Zero whole channels of ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)`` input with probability ``p``.

    >>> import jax, jnn.functional as F, jax.numpy as jnp
    >>> F.dropout3d(jnp.ones((3, 2, 2, 2)), key=jax.random.key(0)).shape
    (3, 2, 2, 2)
    """
    _check_p(p)
    x = jnp.asarray(input)
    if x.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is deprecated and will result in an error "
            "in a future release. To retain the behavior and silence this warning, please use dropout instead. "
            "Note that dropout3d exists to provide channel-wise dropout on inputs with 3 spatial dimensions, a "
            "channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).", stacklevel=2)
    if x.ndim != 5:
        return _noise_dropout(x[None], p, training, True, False, key, "dropout3d")[0]
    return _noise_dropout(x, p, training, True, False, key, "dropout3d")


def alpha_dropout(input: ArrayLike, p: float = 0.5, training: bool = False, inplace: bool = False, *,
                  key: jax.Array | None = None) -> jax.Array:
    """Dropout for SELU networks: dropped values become SELU's negative saturation, then an affine map keeps
    zero mean and unit variance. Identity unless ``training`` (torch's default here is ``training=False``).

    >>> import jax, jnn.functional as F, jax.numpy as jnp
    >>> F.alpha_dropout(jnp.ones(3)).tolist()   # training=False by default
    [1.0, 1.0, 1.0]
    """
    _check_p(p)
    return _noise_dropout(jnp.asarray(input), p, training, False, True, key, "alpha_dropout")


def feature_alpha_dropout(input: ArrayLike, p: float = 0.5, training: bool = False, inplace: bool = False, *,
                          key: jax.Array | None = None) -> jax.Array:
    """:func:`alpha_dropout` of whole channels (dim 1) of ``(N, C, *)`` input.

    >>> import jax, jnn.functional as F, jax.numpy as jnp
    >>> F.feature_alpha_dropout(jnp.ones((2, 3, 4)), training=True, key=jax.random.key(0)).shape
    (2, 3, 4)
    """
    _check_p(p)
    return _noise_dropout(jnp.asarray(input), p, training, True, True, key, "feature_alpha_dropout")
