"""torch's sparse COO tensor (``x.to_sparse()``) over JAX arrays: its ``indices()`` and ``values()``, as torch has them.

A :class:`SparseCOOTensor` is a JAX pytree of its two arrays (``indices``: ``(sparse_dim, nnz)`` integers, ``values``:
``(nnz, *dense_shape)``), so it passes through ``jax.jit`` and may be a module buffer (Whisper registers its
alignment heads as one). It stores what torch stores and converts back with ``to_dense()``; JAX has no sparse
kernels behind it here, so arithmetic on it goes through ``to_dense()``. Made by :func:`jnn.ops.to_sparse`. A
buffer holding one should be non-persistent (Whisper's is): ``jnn.save`` and ``load_state_dict`` take dense arrays
only, and refuse it with an error naming its key.

>>> import jax.numpy as jnp
>>> from jnn import ops
>>> s = ops.to_sparse(jnp.array([[0.0, 1.0], [2.0, 0.0]]))
>>> s.indices().tolist(), s.values().tolist(), s.is_sparse, s._nnz()
([[0, 1], [1, 0]], [1.0, 2.0], True, 2)
>>> s.to_dense().tolist()
[[0.0, 1.0], [2.0, 0.0]]
"""

from __future__ import annotations

import builtins
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SparseCOOTensor"]

sparse_coo = "sparse_coo"  # torch.sparse_coo, the layout


@jax.tree_util.register_pytree_node_class
class SparseCOOTensor:
    """A coalesced sparse COO tensor of ``size``: ``values[i]`` at the sparse position ``indices[:, i]`` (torch's
    layout), the positions distinct and sorted row-major.

    Args:
        indices: integer array ``(sparse_dim, nnz)``.
        values: array ``(nnz, *dense_shape)``.
        size: the dense shape, ``indices``' rows first then ``values``' trailing dims.
    """

    is_sparse = True
    layout = sparse_coo

    def __init__(self, indices: Any, values: Any, size: tuple[int, ...]) -> None:
        size = tuple(int(n) for n in size)
        if np.ndim(indices) != 2 or np.shape(indices)[1] != np.shape(values)[0]:
            raise ValueError(f"SparseCOOTensor: indices must be (sparse_dim, nnz) and values (nnz, ...), got "
                             f"{np.shape(indices)} and {np.shape(values)}")
        if np.shape(indices)[0] + np.ndim(values) - 1 != len(size) or tuple(np.shape(values)[1:]) != \
                size[np.shape(indices)[0]:]:
            raise ValueError(f"SparseCOOTensor: size {size} does not match indices {np.shape(indices)} and values "
                             f"{np.shape(values)}")
        self._idx, self._val, self._size = indices, values, size

    def tree_flatten(self) -> tuple[tuple[Any, Any], tuple[int, ...]]:
        return (self._idx, self._val), self._size

    @classmethod
    def tree_unflatten(cls, size: tuple[int, ...], children: tuple[Any, Any]) -> SparseCOOTensor:
        new = object.__new__(cls)
        new._idx, new._val = children
        new._size = size
        return new

    def indices(self) -> Any:
        """The ``(sparse_dim, nnz)`` positions, sorted row-major."""
        return self._idx

    def values(self) -> Any:
        """The ``(nnz, *dense_shape)`` values."""
        return self._val

    def is_coalesced(self) -> bool:
        return True

    def coalesce(self) -> SparseCOOTensor:
        """Itself: :func:`jnn.ops.to_sparse` makes coalesced tensors (sorted, distinct positions)."""
        return self

    def to_dense(self, dtype: Any = None) -> jax.Array:
        """The dense array (traceable under ``jax.jit``)."""
        values = jnp.asarray(self._val)
        if self.sparse_dim() == 0:  # no positions: the one stored value, or nothing
            dense = values[0] if self._nnz() else jnp.zeros(self._size, values.dtype)
        else:
            dense = jnp.zeros(self._size, values.dtype).at[tuple(jnp.asarray(self._idx))].set(values)
        return dense if dtype is None else dense.astype(dtype)

    def to_sparse(self, sparse_dim: int | None = None, **kwargs: Any) -> SparseCOOTensor:
        """Itself (torch refuses another ``sparse_dim``)."""
        if sparse_dim is not None and sparse_dim != self.sparse_dim():
            raise RuntimeError("to_sparse: conversion from Sparse to Sparse with sparse_dim argument "
                               "!=self.sparse_dim() is not supported")
        return self

    def _nnz(self) -> int:
        return int(np.shape(self._val)[0])

    def sparse_dim(self) -> int:
        return int(np.shape(self._idx)[0])

    def dense_dim(self) -> int:
        return np.ndim(self._val) - 1

    @property
    def shape(self) -> tuple[int, ...]:
        return self._size

    def size(self, dim: int | None = None) -> Any:
        return self._size if dim is None else self._size[dim]

    def dim(self) -> int:
        return len(self._size)

    ndim = property(dim)

    def numel(self) -> int:
        return int(np.prod(self._size))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._val.dtype)

    def astype(self, dtype: Any) -> SparseCOOTensor:
        """The same positions with the values cast (``Module.to(dtype)`` casts floating buffers with this)."""
        return SparseCOOTensor(self._idx, jnp.asarray(self._val).astype(dtype), self._size)

    def __repr__(self) -> str:
        return (f"SparseCOOTensor(indices={np.asarray(self._idx).tolist()}, "
                f"values={np.asarray(self._val).tolist()}, size={self._size}, nnz={self._nnz()}, "
                f"layout={self.layout})")


def dense_to_sparse(x: Any, sparse_dim: int | None = None) -> SparseCOOTensor:
    """``x`` (a concrete array) as a coalesced COO tensor over its first ``sparse_dim`` dims (all by default); a
    position is stored when any of its values is nonzero."""
    x = np.asarray(x)
    sparse_dim = x.ndim if sparse_dim is None else sparse_dim
    if not isinstance(sparse_dim, (int, np.integer)) or isinstance(sparse_dim, bool) or \
            not 0 <= sparse_dim <= x.ndim:
        raise RuntimeError(f"dense_to_sparse: sparse_dim argument must be in [0,{x.ndim}] range, but "
                           f"{sparse_dim} is given")
    if sparse_dim == 0 and x.ndim:
        raise RuntimeError("dense_to_sparse: sparse_dim argument must be in >0 when self.dim()>0")
    occupied = (x != 0).reshape(*x.shape[:sparse_dim], -1).any(axis=-1) if x.size else \
        np.zeros(x.shape[:sparse_dim], dtype=bool)
    if sparse_dim:
        index_dtype = jax.dtypes.canonicalize_dtype(np.int64)
        rows = np.stack(np.nonzero(occupied)).astype(index_dtype)
        values = x[tuple(rows)]
    else:
        nnz = builtins.int(bool(occupied))
        rows = np.zeros((0, nnz), dtype=jax.dtypes.canonicalize_dtype(np.int64))
        values = x[None][:nnz]
    return SparseCOOTensor(jnp.asarray(rows), jnp.asarray(values), x.shape)
