"""Flatten and Unflatten."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax

from jnn.modules.module import Module

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Flattens dims ``start_dim`` to ``end_dim`` into one.

    Args:
        start_dim: first dimension to flatten.
        end_dim: last dimension to flatten (inclusive).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Flatten()(jnp.ones((2, 3, 4, 5))).shape
    (2, 60)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: jax.Array) -> jax.Array:
        ndim = max(input.ndim, 1)
        start, end = self.start_dim % ndim, self.end_dim % ndim
        if not (-ndim <= self.start_dim < ndim and -ndim <= self.end_dim < ndim):
            raise IndexError(
                f"Flatten: dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
                f"but got start_dim={self.start_dim}, end_dim={self.end_dim})"
            )
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        shape = input.shape
        return input.reshape(shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands dim ``dim`` into ``unflattened_size`` (a tuple of ints; one of them may be ``-1``).

    Args:
        dim: the dimension to unflatten.
        unflattened_size: the shape it becomes (one entry may be -1).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Unflatten(1, (2, 5, 5))(jnp.ones((2, 50))).shape
    (2, 2, 5, 5)
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError("unflattened_size must be a tuple of ints, but found type "
                            f"{type(unflattened_size).__name__}")
        for idx, elem in enumerate(unflattened_size):
            if not isinstance(elem, int):
                raise TypeError(f"unflattened_size must be tuple of ints, but found element of type "
                                f"{type(elem).__name__} at pos {idx}")
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input: jax.Array) -> jax.Array:
        if not isinstance(self.dim, int):
            raise TypeError(f"Unflatten: dim must be an int (jnn has no named tensors), got {self.dim!r}")
        ndim, sizes = input.ndim, list(self.unflattened_size)
        if not sizes:
            raise RuntimeError("unflatten: sizes must be non-empty")
        if not -max(ndim, 1) <= self.dim < max(ndim, 1) or ndim == 0:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-max(ndim, 1)}, "
                             f"{max(ndim, 1) - 1}], but got {self.dim})")
        dim = self.dim % ndim
        total = input.shape[dim]
        if sizes.count(-1) > 1:
            raise RuntimeError("only one dimension can be inferred")
        known = math.prod(s for s in sizes if s != -1)
        if -1 in sizes and known == 0 and total == 0:
            raise RuntimeError(f"cannot reshape tensor of {total} elements into shape {sizes} because the "
                               "unspecified dimension size -1 can be any value and is ambiguous")
        if -1 in sizes and known and total % known == 0:
            sizes[sizes.index(-1)] = total // known
        elif -1 in sizes or known != total:
            raise RuntimeError(f"unflatten: Provided sizes {sizes} don't multiply up to the size of dim {self.dim} "
                               f"({total}) in the input tensor")
        return input.reshape(input.shape[:dim] + tuple(sizes) + input.shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
