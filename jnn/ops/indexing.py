"""Indexing and masking with torch's meaning: ``gather``/``scatter`` along a dim, ``index_select``, ``masked_fill``,
``where``, ``tril``/``triu``, and the value-dependent ``nonzero``/``masked_select`` (eager only: their result's size
depends on the values, which ``jit`` does not know).

>>> import jax.numpy as jnp
>>> x = jnp.array([[1, 2], [3, 4]])
>>> gather(x, 1, jnp.array([[1], [0]])).tolist(), masked_fill(x, x > 2, 0).tolist(), tril(x).tolist()
([[2], [3]], [[1, 2], [0, 0]], [[1, 0], [3, 4]])
"""

from __future__ import annotations

import builtins
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn.ops._core import concrete, method, normalize_dim, to_dtype
from jnn.ops._eager import host, host_cast, placed

__all__ = [
    "gather", "scatter", "scatter_add", "scatter_reduce", "index_select", "index_add", "index_copy", "index_fill",
    "index_put", "masked_fill", "masked_select", "masked_scatter", "nonzero", "argwhere", "where", "take",
    "take_along_dim", "tril", "triu", "searchsorted", "bucketize", "select_scatter", "slice_scatter",
    "diagonal_scatter",
]


def _along(index: Any, dim: int) -> tuple[Any, ...]:
    """Full advanced-index tuple addressing ``x[..., index[...], ...]`` at dim ``dim`` over ``index``'s shape."""
    grids = jnp.meshgrid(*(jnp.arange(n) for n in index.shape), indexing="ij", sparse=True)
    return tuple(index if d == dim else g for d, g in enumerate(grids))


def _check_index(x: Any, index: Any, who: str) -> jax.Array:
    index = jnp.asarray(index)
    if not jnp.issubdtype(index.dtype, jnp.integer):
        raise TypeError(f"jnn.ops.{who}: index must be an integer array, got {index.dtype}")
    if index.ndim != jnp.ndim(x) and index.size:
        raise ValueError(f"jnn.ops.{who}: index has {index.ndim} dims, input has {jnp.ndim(x)}")
    return index


@method
def gather(input: Any, dim: int, index: Any, *, sparse_grad: builtins.bool = False) -> jax.Array:
    """``out[i][j] = input[i][index[i][j]]`` (for ``dim=1``); ``index`` may be smaller than ``input`` in other dims."""
    x = jnp.asarray(input)
    d = normalize_dim(dim, x.ndim, "gather")
    index = _check_index(x, index, "gather")
    return x[_along(index, d)]


def _source(src: Any, value: Any, index: Any, dtype: Any) -> jax.Array:
    src = value if src is None else src
    src = jnp.asarray(src, dtype)
    if src.ndim == 0:
        return jnp.broadcast_to(src, index.shape)
    return src[tuple(slice(0, n) for n in index.shape)]


@method
def scatter(input: Any, dim: int, index: Any, src: Any = None, *, value: Any = None,
            reduce: str | None = None) -> jax.Array:
    """A copy of ``input`` with ``out[i][index[i][j]] = src[i][j]`` (for ``dim=1``; ``src`` may be a number);
    ``reduce="add"``/``"multiply"`` combine instead of writing. With repeated indices and no reduce, which
    write wins is unspecified (as in torch).

    >>> import jax.numpy as jnp
    >>> scatter(jnp.zeros(4), 0, jnp.array([1, 3]), jnp.array([5.0, 6.0])).tolist()
    [0.0, 5.0, 0.0, 6.0]
    """
    x = jnp.asarray(input)
    d = normalize_dim(dim, x.ndim, "scatter")
    index = _check_index(x, index, "scatter")
    where, vals = x.at[_along(index, d)], _source(src, value, index, x.dtype)
    if reduce is None:
        return where.set(vals)
    if reduce == "add":
        return where.add(vals)
    if reduce == "multiply":
        return where.multiply(vals)
    raise ValueError(f"jnn.ops.scatter: reduce must be None, 'add' or 'multiply', got {reduce!r}")


@method
def scatter_add(input: Any, dim: int, index: Any, src: Any) -> jax.Array:
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (repeated indices accumulate)."""
    return scatter(input, dim, index, src, reduce="add")


@method
def scatter_reduce(input: Any, dim: int, index: Any, src: Any, reduce: str, *,
                   include_self: builtins.bool = True) -> jax.Array:
    """Combine ``src`` into ``input`` at ``index`` along ``dim`` with ``reduce`` in ``"sum"``, ``"prod"``,
    ``"mean"``, ``"amax"``, ``"amin"`` (``include_self=False``: targeted positions start from ``src`` alone)."""
    x = jnp.asarray(input)
    d = normalize_dim(dim, x.ndim, "scatter_reduce")
    index = _check_index(x, index, "scatter_reduce")
    at, vals = _along(index, d), _source(src, None, index, x.dtype)
    ops = {"sum": ("add", 0), "mean": ("add", 0), "prod": ("multiply", 1), "amax": ("max", None),
           "amin": ("min", None)}
    if reduce not in ops:
        raise ValueError(f"jnn.ops.scatter_reduce: reduce must be one of {sorted(ops)}, got {reduce!r}")
    op, identity = ops[reduce]
    base = x
    if not include_self:
        if identity is None:
            identity = jnp.finfo(x.dtype).min if reduce == "amax" else jnp.finfo(x.dtype).max
            if not jnp.issubdtype(x.dtype, jnp.floating):
                identity = jnp.iinfo(x.dtype).min if reduce == "amax" else jnp.iinfo(x.dtype).max
        base = x.at[at].set(identity)
    out = getattr(base.at[at], op)(vals)
    if reduce == "mean":
        count = jnp.zeros(x.shape, x.dtype).at[at].add(1) + (1 if include_self else 0)
        out = out / jnp.maximum(count, 1) if jnp.issubdtype(x.dtype, jnp.inexact) else out // jnp.maximum(count, 1)
        out = out.astype(x.dtype)
    if not include_self:  # positions no index reaches keep input's value
        touched = jnp.zeros(x.shape, bool).at[at].set(True)
        out = jnp.where(touched, out, x)
    return out


@method
def index_select(input: Any, dim: int, index: Any) -> jax.Array:
    """The slices ``index`` (a 1-d integer array) of dim ``dim``."""
    x = jnp.asarray(input)
    return jnp.take(x, jnp.asarray(index), axis=normalize_dim(dim, x.ndim, "index_select"))


def _dim_index(x: Any, dim: int, index: Any, who: str) -> tuple[Any, ...]:
    return (slice(None),) * normalize_dim(dim, x.ndim, who) + (jnp.asarray(index),)


@method
def index_add(input: Any, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> jax.Array:
    """A copy of ``input`` with ``alpha * source`` slices added at ``index`` of dim ``dim``."""
    x = jnp.asarray(input)
    return x.at[_dim_index(x, dim, index, "index_add")].add(alpha * jnp.asarray(source))


@method
def index_copy(input: Any, dim: int, index: Any, source: Any) -> jax.Array:
    """A copy of ``input`` with the slices at ``index`` of dim ``dim`` replaced by ``source``."""
    x = jnp.asarray(input)
    return x.at[_dim_index(x, dim, index, "index_copy")].set(source)


@method
def index_fill(input: Any, dim: int, index: Any, value: Any) -> jax.Array:
    """A copy of ``input`` with the slices at ``index`` of dim ``dim`` set to ``value``."""
    x = jnp.asarray(input)
    return x.at[_dim_index(x, dim, index, "index_fill")].set(value)


@method
def index_put(input: Any, indices: tuple, values: Any, accumulate: builtins.bool = False) -> jax.Array:
    """``input[indices] = values`` (``+=`` with ``accumulate=True``), returned as a new array."""
    x = jnp.asarray(input)
    where = x.at[tuple(indices)]
    return where.add(values) if accumulate else where.set(values)


@method
def masked_fill(input: Any, mask: Any, value: Any) -> jax.Array:
    """``value`` where ``mask`` (broadcast to ``input``'s shape) is True, ``input`` elsewhere; keeps ``input``'s
    dtype.

    >>> import jax.numpy as jnp
    >>> masked_fill(jnp.zeros((2, 2)), jnp.array([True, False]), float("-inf")).tolist()
    [[-inf, 0.0], [-inf, 0.0]]
    """
    x = jnp.asarray(input)
    mask = jnp.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"jnn.ops.masked_fill: mask must be bool, got {mask.dtype}")
    if jnp.ndim(value) != 0:
        raise ValueError("jnn.ops.masked_fill: value must be a number or a 0-d array")
    views, fill = host(x, mask), host_cast(value, x.dtype)
    if views is not None and fill is not None:
        return placed(np.where(np.broadcast_to(views[1], x.shape), fill, views[0]))
    return jnp.where(jnp.broadcast_to(mask, x.shape), jnp.asarray(value).astype(x.dtype), x)


_SELECT_UNDER_JIT = ("Under jit use ops.where(mask, x, fill) to keep the shape, or jnp.nonzero(mask, size=N, "
                     "fill_value=...) with a static bound N.")


@method
def masked_select(input: Any, mask: Any) -> jax.Array:
    """The elements of ``input`` where ``mask`` (broadcast together) is True, as a 1-d array. Eager only."""
    concrete(mask, "masked_select", _SELECT_UNDER_JIT)
    x, mask = jnp.broadcast_arrays(jnp.asarray(input), jnp.asarray(mask))
    return x.ravel()[mask.ravel()]


@method
def masked_scatter(input: Any, mask: Any, source: Any) -> jax.Array:
    """``input`` with the True positions of ``mask`` filled, in order, from the first elements of ``source``."""
    x = jnp.asarray(input)
    mask = jnp.broadcast_to(mask, x.shape)
    position = jnp.cumsum(mask.ravel()) - 1
    taken = jnp.asarray(source).ravel()[jnp.clip(position, 0)].reshape(x.shape)
    return jnp.where(mask, taken.astype(x.dtype), x)


_NONZERO_UNDER_JIT = "Under jit use jnp.nonzero(x, size=N, fill_value=...) with a static bound N, or ops.where."


@method
def nonzero(input: Any, *, as_tuple: builtins.bool = False) -> Any:
    """Indices of the nonzero elements: an ``(n, ndim)`` array, or a tuple of ``ndim`` 1-d arrays. Eager only."""
    concrete(input, "nonzero", _NONZERO_UNDER_JIT)
    x = jnp.asarray(input)
    if x.ndim == 0:  # torch: one (empty) index row if the element is nonzero
        return (jnp.zeros(int(x != 0), to_dtype(np.int64)),) if as_tuple else jnp.zeros((int(x != 0), 0),
                                                                                            to_dtype(np.int64))
    found = tuple(i.astype(to_dtype(np.int64)) for i in jnp.nonzero(jnp.atleast_1d(x)))
    if as_tuple:
        return found
    return jnp.stack(found, axis=-1).reshape(-1, x.ndim)


@method
def argwhere(input: Any) -> jax.Array:
    """Indices of the nonzero elements as an ``(n, ndim)`` array. Eager only."""
    concrete(input, "argwhere", _NONZERO_UNDER_JIT)
    return nonzero(input)


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """``input`` where ``condition`` else ``other`` (broadcast; numbers allowed). ``where(condition)`` alone is
    ``nonzero(condition, as_tuple=True)`` (eager only)."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    views = host(condition)
    if views is not None and views[0].dtype == np.bool_:
        dtype = jnp.result_type(input, other)
        values = host_cast(input, dtype), host_cast(other, dtype)
        if values[0] is not None and values[1] is not None:
            return placed(np.where(*views, *values))
    return jnp.where(condition, input, other)


@method
def take(input: Any, index: Any) -> jax.Array:
    """Elements of the flattened ``input`` at ``index`` (result has ``index``'s shape; negative indices wrap)."""
    x = jnp.ravel(input)
    index = jnp.asarray(index)
    return x[jnp.where(index < 0, index + x.size, index)]


@method
def take_along_dim(input: Any, indices: Any, dim: int | None = None) -> jax.Array:
    """numpy's ``take_along_axis`` (the flattened array when ``dim`` is None)."""
    if dim is None:
        return jnp.ravel(input)[jnp.ravel(indices)]
    x = jnp.asarray(input)
    return jnp.take_along_axis(x, jnp.asarray(indices), axis=normalize_dim(dim, x.ndim, "take_along_dim"))


@method
def tril(input: Any, diagonal: int = 0) -> jax.Array:
    """The lower triangle of the last two dims (elements above ``diagonal`` zeroed)."""
    return jnp.tril(input, diagonal)


@method
def triu(input: Any, diagonal: int = 0) -> jax.Array:
    """The upper triangle of the last two dims (elements below ``diagonal`` zeroed)."""
    return jnp.triu(input, diagonal)


def searchsorted(sorted_sequence: Any, input: Any, *, out_int32: builtins.bool = False, right: builtins.bool = False,
                 side: str | None = None, sorter: Any = None) -> jax.Array:
    """Insertion indices of ``input`` into the last dim of ``sorted_sequence`` (``right=True``: after equal ones)."""
    side = side or ("right" if right else "left")
    seq = jnp.asarray(sorted_sequence)
    if sorter is not None:
        seq = jnp.take_along_axis(seq, jnp.asarray(sorter), axis=-1)
    dtype = np.int32 if out_int32 else to_dtype(np.int64)
    if seq.ndim <= 1:
        return jnp.searchsorted(seq, input, side=side).astype(dtype)
    rows = jax.vmap(lambda s, v: jnp.searchsorted(s, v, side=side))
    lead = seq.shape[:-1]
    values = jnp.asarray(input)
    out = rows(seq.reshape(-1, seq.shape[-1]), values.reshape(-1, values.shape[-1]))
    return out.reshape(*lead, values.shape[-1]).astype(dtype)


def bucketize(input: Any, boundaries: Any, *, out_int32: builtins.bool = False, right: builtins.bool = False) -> Any:
    """The bucket of each element given 1-d sorted ``boundaries``: ``right=False`` counts boundaries ``< x``."""
    dtype = np.int32 if out_int32 else to_dtype(np.int64)
    return jnp.searchsorted(boundaries, input, side="right" if right else "left").astype(dtype)


# --- embedding a slice, a strided range or a diagonal: select_scatter, slice_scatter, diagonal_scatter -------------

def _embed(x: jax.Array, where: tuple, src: Any, who: str) -> jax.Array:
    """``x`` with ``x[where]`` replaced by ``src`` (converted to ``x``'s dtype), which must have that part's shape."""
    src = jnp.asarray(src)
    part = jax.eval_shape(lambda a: a[where], jax.ShapeDtypeStruct(x.shape, x.dtype)).shape
    if src.shape != part:
        raise ValueError(f"jnn.ops.{who}: expected src to have the shape of the part it replaces, got src shape "
                         f"{src.shape} for a part of shape {part}")
    return x.at[where].set(src.astype(x.dtype))


@method
def select_scatter(input: Any, src: Any, dim: int, index: int) -> jax.Array:
    """``input`` with its slice at ``index`` of ``dim`` replaced by ``src`` (the slice's shape).

    >>> import jax.numpy as jnp
    >>> select_scatter(jnp.zeros((2, 2)), jnp.ones(2), 0, -1).tolist()
    [[0.0, 0.0], [1.0, 1.0]]
    """
    x = jnp.asarray(input)
    if x.ndim == 0:
        raise IndexError("jnn.ops.select_scatter cannot be applied to a 0-d array")
    axis = normalize_dim(dim, x.ndim, "select_scatter")
    if isinstance(index, (int, np.integer)) and not -x.shape[axis] <= index < x.shape[axis]:
        raise IndexError(f"jnn.ops.select_scatter: index {index} is out of range for dim {dim} of size "
                         f"{x.shape[axis]}")
    return _embed(x, (slice(None),) * axis + (index,), src, "select_scatter")


@method
def slice_scatter(input: Any, src: Any, dim: int = 0, start: int | None = None, end: int | None = None,
                  step: int = 1) -> jax.Array:
    """``input`` with ``input[..., start:end:step, ...]`` (at ``dim``) replaced by ``src`` (that part's shape).

    >>> import jax.numpy as jnp
    >>> slice_scatter(jnp.zeros(5, int), jnp.ones(2, int), start=1, step=2).tolist()
    [0, 1, 0, 1, 0]
    """
    x = jnp.asarray(input)
    if step <= 0:
        raise ValueError(f"jnn.ops.slice_scatter: slice step must be positive, got {step}")
    axis = normalize_dim(dim, x.ndim, "slice_scatter")
    return _embed(x, (slice(None),) * axis + (slice(start, end, step),), src, "slice_scatter")


@method
def diagonal_scatter(input: Any, src: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> jax.Array:
    """``input`` with its ``offset``-th diagonal in the plane ``dim1, dim2`` replaced by ``src`` (the shape of
    ``diagonal(input, offset, dim1, dim2)``).

    >>> import jax.numpy as jnp
    >>> diagonal_scatter(jnp.zeros((2, 3), int), jnp.array([1, 2]), 1).tolist()
    [[0, 1, 0], [0, 0, 2]]
    """
    x = jnp.asarray(input)
    d1, d2 = normalize_dim(dim1, x.ndim, "diagonal_scatter"), normalize_dim(dim2, x.ndim, "diagonal_scatter")
    if d1 == d2:
        raise ValueError(f"jnn.ops.diagonal_scatter: diagonal dims cannot be identical, got {dim1} and {dim2}")
    planes = jnp.moveaxis(x, (d1, d2), (-2, -1))
    rows, cols = planes.shape[-2:]
    n = builtins.max(0, builtins.min(rows + builtins.min(offset, 0), cols - builtins.max(offset, 0)))
    diagonal = (Ellipsis, np.arange(n) + builtins.max(-offset, 0), np.arange(n) + builtins.max(offset, 0))
    return jnp.moveaxis(_embed(planes, diagonal, src, "diagonal_scatter"), (-2, -1), (d1, d2))
