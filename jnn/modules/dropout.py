"""Dropout layers: Dropout, Dropout1d/2d/3d (whole channels), AlphaDropout, FeatureAlphaDropout."""

from __future__ import annotations

import jax

from jnn import functional as F
from jnn.modules.module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]


class _DropoutNd(Module):
    """Shared constructor, checks and repr of the dropout layers (torch's ``_DropoutNd``).

    Randomness comes from jnn's stream (``jnn.manual_seed``) in eager code, and from the key given to
    ``apply(..., key=key)`` or ``with jnn.random.fork(key):`` under a transformation. ``inplace`` is
    accepted and ignored (JAX arrays are immutable).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zeroes elements with probability ``p`` in training mode and scales the rest by ``1/(1-p)``.

    Randomness comes from jnn's stream (``jnn.manual_seed``) in eager code, and from the key given to
    ``apply(..., key=key)`` or ``with jnn.random.fork(key):`` under a transformation.

    Args:
        p: probability of an element (or channel) being zeroed, in ``[0, 1]``.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Dropout(0.5).eval()(jnp.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.dropout(input, self.p, self.training)


class Dropout1d(_DropoutNd):
    """Zeroes whole channels of ``(N, C, L)`` or ``(C, L)`` input with probability ``p`` in training mode.

    Args:
        p: probability of an element (or channel) being zeroed, in ``[0, 1]``.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Dropout1d(0.2)
    Dropout1d(p=0.2, inplace=False)
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.dropout1d(input, self.p, self.training)


class Dropout2d(_DropoutNd):
    """Zeroes whole channels of ``(N, C, H, W)`` input with probability ``p`` in training mode (a 3D input is
    taken as ``(N, C, L)`` with torch's warning).

    Args:
        p: probability of an element (or channel) being zeroed, in ``[0, 1]``.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Dropout2d().eval()(jnp.ones((1, 2, 2, 2))).shape
    (1, 2, 2, 2)
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.dropout2d(input, self.p, self.training)


class Dropout3d(_DropoutNd):
    """Zeroes whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input with probability ``p`` in training.

    Args:
        p: probability of an element (or channel) being zeroed, in ``[0, 1]``.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Dropout3d().eval()(jnp.ones((2, 2, 2, 2))).shape
    (2, 2, 2, 2)
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.dropout3d(input, self.p, self.training)


class AlphaDropout(_DropoutNd):
    """Dropout that keeps SELU activations' zero mean and unit variance (see
    :func:`jnn.functional.alpha_dropout`).

    Args:
        p: probability of an element (or channel) being zeroed, in ``[0, 1]``.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.AlphaDropout(0.2).eval()(jnp.ones(2)).tolist()
    [1.0, 1.0]
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """:class:`AlphaDropout` of whole channels (dim 1) of ``(N, C, *)`` input.

    Args:
        p: probability of an element (or channel) being zeroed, in ``[0, 1]``.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.FeatureAlphaDropout(0.2)
    FeatureAlphaDropout(p=0.2, inplace=False)
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.feature_alpha_dropout(input, self.p, self.training)
