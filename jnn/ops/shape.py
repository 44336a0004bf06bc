"""Shape and view operations with torch's meaning: ``view``/``reshape`` with ``-1``, ``transpose(a, b)`` swapping two
axes, ``permute``, ``flatten(start, end)``, ``expand`` with ``-1``, ``split``/``chunk``, ``size()``/``dim()``, ...

JAX arrays are immutable, so a "view" is a new array; ``contiguous`` returns its input.

>>> import jax.numpy as jnp
>>> x = jnp.zeros((2, 3, 4))
>>> view(x, 2, -1).shape, transpose(x, 0, 2).shape, flatten(x, 1).shape, size(x), size(x, -1)
((2, 12), (4, 3, 2), (2, 12), Size([2, 3, 4]), 4)
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn.ops._core import default_float, method, normalize_dim, normalize_dims, numpy_names, sizes, to_dtype
from jnn.ops._eager import host, placed, xp
from jnn.ops.dtypes import Size

__all__ = [
    "view", "view_as", "reshape", "reshape_as", "squeeze", "unsqueeze", "flatten", "unflatten", "ravel", "permute",
    "transpose", "swapaxes", "swapdims", "t", "movedim", "moveaxis", "expand", "expand_as", "broadcast_to",
    "broadcast_tensors", "broadcast_shapes", "repeat", "tile", "repeat_interleave", "narrow", "select", "unbind",
    "split", "tensor_split", "chunk", "cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "flip",
    "fliplr", "flipud", "roll", "rot90", "size", "dim", "ndimension", "numel", "nelement", "contiguous",
    "is_contiguous", "unfold", "diagonal", "meshgrid", "atleast_1d", "atleast_2d", "atleast_3d", "block_diag",
    "cartesian_prod", "combinations", "column_stack", "row_stack", "hsplit", "vsplit", "dsplit", "split_with_sizes",
    "adjoint",
]


def _shape(args: Sequence[Any], who: str) -> tuple[int, ...]:
    shape = sizes(args, who)
    if builtins.sum(1 for s in shape if s == -1) > 1 or builtins.any(s < -1 for s in shape):
        raise ValueError(f"jnn.ops.{who}: invalid shape {shape} (at most one -1, no other negative size)")
    return shape


@method
def view(input: Any, *shape: Any) -> jax.Array:
    """torch's ``x.view(*shape)`` (one size may be -1); ``x.view(dtype)`` reinterprets the bits as torch does.

    >>> import jax.numpy as jnp
    >>> view(jnp.arange(6), -1, 3).shape, view(jnp.ones(2), jnp.int32).tolist()
    ((2, 3), [1065353216, 1065353216])
    """
    if len(shape) == 1 and not isinstance(shape[0], (builtins.int, tuple, list, np.integer)):
        dtype = to_dtype(shape[0])
        if dtype.itemsize != input.dtype.itemsize:
            raise ValueError(f"jnn.ops.view: reinterpreting {input.dtype} as {dtype} needs equal item sizes")
        return jax.lax.bitcast_convert_type(input, dtype)
    return xp(input).reshape(input, _shape(shape, "view"))


@method
def reshape(input: Any, *shape: Any) -> jax.Array:
    """torch's ``reshape``: ``reshape(x, 2, -1)`` or ``reshape(x, (2, -1))``."""
    return xp(input).reshape(input, _shape(shape, "reshape"))


@method
def view_as(input: Any, other: Any) -> jax.Array:
    """``x`` reshaped to ``other``'s shape."""
    return xp(input).reshape(input, other.shape)


@method
def reshape_as(input: Any, other: Any) -> jax.Array:
    """``x`` reshaped to ``other``'s shape."""
    return xp(input).reshape(input, other.shape)


@method
def squeeze(input: Any, dim: Any = None) -> jax.Array:
    """Drop size-1 dims (all, or those of ``dim``: an int or tuple); a named dim that is not size 1 is kept.

    >>> import jax.numpy as jnp
    >>> squeeze(jnp.zeros((1, 2, 1)), 1).shape, squeeze(jnp.zeros((1, 2, 1))).shape
    ((1, 2, 1), (2,))
    """
    axes = normalize_dims(dim, input.ndim, "squeeze")
    if axes is None:
        return xp(input).squeeze(input)
    return xp(input).squeeze(input, tuple(a for a in axes if input.ndim and input.shape[a] == 1))


@method
def unsqueeze(input: Any, dim: builtins.int) -> jax.Array:
    """Insert a size-1 dim at ``dim`` (``-1`` appends)."""
    return xp(input).expand_dims(input, normalize_dim(dim, input.ndim + 1, "unsqueeze"))


@method
def flatten(input: Any, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> jax.Array:
    """Merge dims ``start_dim..end_dim`` into one (a 0-d array becomes 1-d).

    >>> import jax.numpy as jnp
    >>> flatten(jnp.zeros((2, 3, 4, 5)), 1, 2).shape
    (2, 12, 5)
    """
    if input.ndim == 0:
        return xp(input).reshape(input, (1,))
    start, end = normalize_dim(start_dim, input.ndim, "flatten"), normalize_dim(end_dim, input.ndim, "flatten")
    if start > end:
        raise ValueError(f"jnn.ops.flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = input.shape
    return xp(input).reshape(input, (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:]))


@method
def unflatten(input: Any, dim: builtins.int, sizes: Sequence[builtins.int]) -> jax.Array:
    """Split dim ``dim`` into ``sizes`` (one may be -1)."""
    d = normalize_dim(dim, input.ndim, "unflatten")
    return xp(input).reshape(input, (*input.shape[:d], *_shape([sizes], "unflatten"), *input.shape[d + 1:]))


@method
def ravel(input: Any) -> jax.Array:
    """The array as 1-d."""
    return xp(input).ravel(input)


@method
def permute(input: Any, *dims: Any) -> jax.Array:
    """Reorder the dims: ``permute(x, 0, 2, 1)`` or ``permute(x, (0, 2, 1))``; negative dims allowed."""
    axes = normalize_dims(sizes(dims, "permute"), input.ndim, "permute")
    if len(axes) != input.ndim:
        raise ValueError(f"jnn.ops.permute: got {len(axes)} dims for a {input.ndim}-d array")
    return xp(input).transpose(input, axes)


@method
def transpose(input: Any, dim0: builtins.int, dim1: builtins.int) -> jax.Array:
    """Swap two dims (torch's meaning, not numpy's full permutation)."""
    return xp(input).swapaxes(input, normalize_dim(dim0, input.ndim, "transpose"), normalize_dim(dim1, input.ndim,
                                                                                           "transpose"))


swapaxes = method(transpose, name="swapaxes")
swapdims = method(transpose, name="swapdims")


@method
def t(input: Any) -> jax.Array:
    """Transpose a 2-d array (0-d and 1-d are returned as they are)."""
    if input.ndim > 2:
        raise ValueError(f"jnn.ops.t expects an array of at most 2 dims, got {input.ndim}; use transpose(x, a, b)")
    return xp(input).transpose(input)


@method
def movedim(input: Any, source: Any, destination: Any) -> jax.Array:
    """Move dim(s) ``source`` to position(s) ``destination``."""
    return xp(input).moveaxis(input, normalize_dims(source, input.ndim, "movedim"),
                        normalize_dims(destination, input.ndim, "movedim"))


moveaxis = method(movedim, name="moveaxis")


@method
def expand(input: Any, *sizes_: Any) -> jax.Array:
    """Broadcast to ``sizes`` (``-1`` keeps a dim; new leading dims allowed); only size-1 dims can grow.

    >>> import jax.numpy as jnp
    >>> expand(jnp.zeros((3, 1)), 2, -1, 4).shape
    (2, 3, 4)
    """
    shape = sizes(sizes_, "expand")
    lead = len(shape) - input.ndim
    if lead < 0:
        raise ValueError(f"jnn.ops.expand: {len(shape)} sizes for a {input.ndim}-d array")
    target = tuple(input.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    if builtins.any(s < 0 for s in target):
        raise ValueError(f"jnn.ops.expand: -1 is not allowed for a new leading dim, got {shape}")
    return xp(input).broadcast_to(input, target)


@method
def expand_as(input: Any, other: Any) -> jax.Array:
    """Broadcast to ``other``'s shape."""
    return xp(input).broadcast_to(input, other.shape)


@method
def broadcast_to(input: Any, size: Sequence[builtins.int]) -> jax.Array:
    """Broadcast to ``size`` (``-1`` keeps a dim)."""
    return expand(input, tuple(size))


def broadcast_tensors(*tensors: Any) -> tuple[jax.Array, ...]:
    """All arrays broadcast to their common shape."""
    return tuple(xp(*tensors).broadcast_arrays(*tensors))


def broadcast_shapes(*shapes: Any) -> Size:
    """The broadcast shape of ``shapes``."""
    return Size(jnp.broadcast_shapes(*(tuple(s) if isinstance(s, (tuple, list)) else (s,) for s in shapes)))


@method
def repeat(input: Any, *repeats: Any) -> jax.Array:
    """torch's ``repeat``: tile the array ``repeats[i]`` times along each dim (at least ``ndim`` counts).

    >>> import jax.numpy as jnp
    >>> repeat(jnp.array([1, 2]), 2, 2).tolist()
    [[1, 2, 1, 2], [1, 2, 1, 2]]
    """
    reps = sizes(repeats, "repeat")
    if len(reps) < input.ndim:
        raise ValueError(f"jnn.ops.repeat: {len(reps)} repeat counts for a {input.ndim}-d array (need at least "
                         f"{input.ndim})")
    return xp(input).tile(input, reps)


@method
def tile(input: Any, dims: Sequence[builtins.int]) -> jax.Array:
    """numpy's ``tile`` (fewer counts than dims are padded with 1 on the left)."""
    return xp(input).tile(input, tuple(dims))


@method
def repeat_interleave(input: Any, repeats: Any = None, dim: builtins.int | None = None, *,
                      output_size: builtins.int | None = None) -> jax.Array:
    """Repeat each element ``repeats`` times along ``dim`` (the flattened array if ``None``). Under jit, an array
    ``repeats`` needs ``output_size`` (the result's length must be static).

    >>> import jax.numpy as jnp
    >>> repeat_interleave(jnp.array([[1, 2], [3, 4]]), 2, dim=0).tolist()
    [[1, 2], [1, 2], [3, 4], [3, 4]]
    """
    if repeats is None:  # torch.repeat_interleave(repeats): indices repeated by their count
        input, repeats = jnp.arange(jnp.shape(input)[0]), input
    axis = None if dim is None else normalize_dim(dim, input.ndim, "repeat_interleave")
    return jnp.repeat(input, repeats, axis=axis, total_repeat_length=output_size)


@method
def narrow(input: Any, dim: builtins.int, start: Any, length: builtins.int) -> jax.Array:
    """``length`` elements of dim ``dim`` from ``start`` (negative ``start`` counts from the end; may be traced)."""
    d = normalize_dim(dim, input.ndim, "narrow")
    if isinstance(start, (builtins.int, np.integer)):
        start = builtins.int(start) + input.shape[d] if start < 0 else builtins.int(start)
        if start + length > input.shape[d]:
            raise IndexError(f"jnn.ops.narrow: start {start} + length {length} exceeds size {input.shape[d]} of "
                             f"dim {dim}")
        views = host(input)
        if views is not None:
            return placed(views[0][(slice(None),) * d + (slice(start, start + length),)])
        return jax.lax.slice_in_dim(input, start, start + length, axis=d)
    return jax.lax.dynamic_slice_in_dim(input, start, length, axis=d)


@method
def select(input: Any, dim: builtins.int, index: Any) -> jax.Array:
    """The slice at ``index`` of dim ``dim``, that dim removed (``x.select(1, 0)`` is ``x[:, 0]``)."""
    d = normalize_dim(dim, input.ndim, "select")
    views = host(input) if isinstance(index, (builtins.int, np.integer)) else None
    if views is not None and -input.shape[d] <= index < input.shape[d]:
        return placed(views[0][(slice(None),) * d + (index,)])
    return input[(slice(None),) * d + (index,)]


@method
def unbind(input: Any, dim: builtins.int = 0) -> tuple[jax.Array, ...]:
    """The slices along ``dim``, as a tuple."""
    d = normalize_dim(dim, input.ndim, "unbind")
    views = host(input)
    if views is not None:
        return tuple(placed(v) for v in np.moveaxis(views[0], d, 0))
    return tuple(jnp.moveaxis(input, d, 0))


@method
def split(tensor: Any, split_size_or_sections: Any, dim: builtins.int = 0) -> tuple[jax.Array, ...]:
    """Pieces of ``split_size_or_sections`` elements along ``dim`` (the last may be smaller), or of the sizes in a
    list (which must add up to the dim's size).

    >>> import jax.numpy as jnp
    >>> [p.shape for p in split(jnp.zeros((5, 2)), [1, 4])]
    [(1, 2), (4, 2)]
    """
    d = normalize_dim(dim, tensor.ndim, "split")
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, (builtins.int, np.integer)):
        step = builtins.int(split_size_or_sections)
        if step <= 0 and n:
            raise ValueError(f"jnn.ops.split: split size must be positive, got {step}")
        lengths = [builtins.min(step, n - i) for i in range(0, n, step)] if n else [0]
    else:
        lengths = [builtins.int(s) for s in split_size_or_sections]
        if builtins.sum(lengths) != n:
            raise ValueError(f"jnn.ops.split: sections {lengths} add up to {builtins.sum(lengths)}, but dim {dim} "
                             f"has size {n}")
    return tuple(xp(tensor).split(tensor, [builtins.int(b) for b in np.cumsum(lengths[:-1])], axis=d))


@method
def tensor_split(input: Any, indices_or_sections: Any = None, dim: builtins.int = 0, *, sections: Any = None,
                 indices: Any = None, tensor_indices_or_sections: Any = None) -> tuple[jax.Array, ...]:
    """numpy's ``array_split``: ``sections`` nearly equal pieces along ``dim`` (the first ones one longer), or pieces
    cut at ``indices``. torch's overloads by keyword (``sections=``, ``indices=``, ``tensor_indices_or_sections=``:
    a 0-d array for sections, a 1-d one for indices) take one of them, as the positional argument does.

    >>> import jax.numpy as jnp
    >>> [p.shape[0] for p in tensor_split(jnp.zeros(7), 3)]
    [3, 2, 2]
    >>> [p.shape[0] for p in tensor_split(jnp.zeros(7), indices=(1, 5))]
    [1, 4, 2]
    """
    given = [v for v in (indices_or_sections, sections, indices, tensor_indices_or_sections) if v is not None]
    if len(given) != 1:
        raise TypeError("jnn.ops.tensor_split: give one of indices_or_sections (positional), sections=, indices= or "
                        f"tensor_indices_or_sections=, got {len(given)}")
    how = given[0]
    d = normalize_dim(dim, input.ndim, "tensor_split")
    if np.ndim(how) == 0:
        how = builtins.int(how)
    else:  # cut points as python slices read them (negative from the end, clamped to the size), as torch
        n = input.shape[d]
        how = [slice(builtins.int(i)).indices(n)[1] for i in np.asarray(how).reshape(-1)]
        if builtins.any(b < a for a, b in zip(how, how[1:], strict=False)):  # overlapping: jnp.array_split cannot
            bounds = [0, *how, n]
            return tuple(input[(slice(None),) * d + (slice(a, b),)] for a, b in zip(bounds, bounds[1:], strict=False))
    return tuple(xp(input).array_split(input, how, axis=d))


@method
def chunk(input: Any, chunks: builtins.int, dim: builtins.int = 0) -> tuple[jax.Array, ...]:
    """torch's ``chunk``: pieces of ``ceil(size / chunks)`` along ``dim`` (so possibly fewer than ``chunks``).

    >>> import jax.numpy as jnp
    >>> [p.shape[0] for p in chunk(jnp.zeros(6), 4)]
    [2, 2, 2]
    """
    if chunks <= 0:
        raise ValueError(f"jnn.ops.chunk: chunks must be positive, got {chunks}")
    n = input.shape[normalize_dim(dim, input.ndim, "chunk")]
    return split(input, builtins.max(-(-n // chunks), 1), dim)


def cat(tensors: Sequence[Any], dim: builtins.int = 0, *, axis: builtins.int | None = None) -> jax.Array:
    """Join arrays along an existing ``dim``.

    >>> import jax.numpy as jnp
    >>> cat([jnp.zeros((2, 3)), jnp.ones((2, 1))], dim=-1).shape
    (2, 4)
    """
    tensors = list(tensors)
    if not tensors:
        raise ValueError("jnn.ops.cat expects a non-empty list of arrays")
    dim = dim if axis is None else axis
    dtype = jnp.result_type(*tensors)
    # torch leaves out 1-d empty arrays whatever the others' rank (``torch.cat([x, torch.empty(0)])`` is ``x``)
    tensors = [t for t in tensors if jnp.shape(t) != (0,)] or tensors[:1]
    return xp(*tensors).concatenate(tensors, axis=normalize_dim(dim, jnp.ndim(tensors[0]), "cat"), dtype=dtype)


concat = cat
concatenate = cat


@numpy_names
def stack(tensors: Sequence[Any], dim: builtins.int = 0) -> jax.Array:
    """Join arrays along a new ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("jnn.ops.stack expects a non-empty list of arrays")
    return xp(*tensors).stack(tensors, axis=normalize_dim(dim, jnp.ndim(tensors[0]) + 1, "stack"),
                              dtype=jnp.result_type(*tensors))


def hstack(tensors: Sequence[Any]) -> jax.Array:
    """Join along dim 1 (dim 0 for 1-d arrays)."""
    return jnp.hstack(list(tensors))


def vstack(tensors: Sequence[Any]) -> jax.Array:
    """Join along dim 0 (1-d arrays become rows)."""
    return jnp.vstack(list(tensors))


def dstack(tensors: Sequence[Any]) -> jax.Array:
    """Join along dim 2."""
    return jnp.dstack(list(tensors))


@method
def flip(input: Any, *dims: Any) -> jax.Array:
    """Reverse the order along ``dims`` (a tuple, or several ints)."""
    axes = normalize_dims(sizes(dims, "flip"), input.ndim, "flip")
    return xp(input).flip(input, axes) if axes else input


@method
def fliplr(input: Any) -> jax.Array:
    """Reverse dim 1."""
    return xp(input).fliplr(input)


@method
def flipud(input: Any) -> jax.Array:
    """Reverse dim 0."""
    return xp(input).flipud(input)


@method
def roll(input: Any, shifts: Any, dims: Any = None) -> jax.Array:
    """Shift elements cyclically along ``dims`` (the flattened array when ``dims`` is None)."""
    axes = normalize_dims(dims, input.ndim, "roll")
    return xp(input).roll(input, shifts, axis=axes)


@method
def rot90(input: Any, k: builtins.int = 1, dims: Sequence[builtins.int] = (0, 1)) -> jax.Array:
    """Rotate by 90 degrees ``k`` times in the plane of ``dims``."""
    return xp(input).rot90(input, k, axes=normalize_dims(dims, input.ndim, "rot90"))


@method
def size(input: Any, dim: builtins.int | None = None) -> Any:
    """The shape as :class:`Size`, or the size of one ``dim`` (an int, static under jit)."""
    if dim is None:
        return Size(input.shape)
    return input.shape[normalize_dim(dim, input.ndim, "size")] if input.ndim else 1


@method
def dim(input: Any) -> builtins.int:
    """The number of dims."""
    return jnp.ndim(input)


ndimension = method(dim, name="ndimension")


@method
def numel(input: Any) -> builtins.int:
    """The number of elements."""
    return builtins.int(np.prod(jnp.shape(input), dtype=np.int64))


nelement = method(numel, name="nelement")


@method
def contiguous(input: Any, memory_format: Any = None) -> Any:
    """The array itself: JAX arrays have no strides, so every array is contiguous."""
    return input


@method
def is_contiguous(input: Any, memory_format: Any = None) -> builtins.bool:
    """Always True (JAX arrays have no strides)."""
    return True


@method
def unfold(input: Any, dimension: builtins.int, size: builtins.int, step: builtins.int) -> jax.Array:
    """``Tensor.unfold``: windows of ``size`` taken every ``step`` along ``dimension``; the windows form a new last dim.

    >>> import jax.numpy as jnp
    >>> unfold(jnp.arange(5), 0, 2, 2).tolist()
    [[0, 1], [2, 3]]
    """
    d = normalize_dim(dimension, input.ndim, "unfold")
    n = (input.shape[d] - size) // step + 1 if input.ndim else 1
    if n < 1 or size < 0 or step <= 0:
        raise ValueError(f"jnn.ops.unfold: size {size} with step {step} does not fit dim of size {input.shape[d]}")
    index = np.arange(n)[:, None] * step + np.arange(size)
    windows = jnp.take(input, index, axis=d)  # the window axis is inserted at d + 1
    return jnp.moveaxis(windows, d + 1, -1)


@method
def diagonal(input: Any, offset: builtins.int = 0, dim1: builtins.int = 0, dim2: builtins.int = 1) -> jax.Array:
    """The diagonal of the plane ``dim1, dim2`` (appended as the last dim)."""
    return xp(input).diagonal(input, offset, normalize_dim(dim1, input.ndim, "diagonal"),
                        normalize_dim(dim2, input.ndim, "diagonal"))


def meshgrid(*tensors: Any, indexing: str = "ij") -> tuple[jax.Array, ...]:
    """Coordinate grids; torch's default ``indexing="ij"`` (numpy's is ``"xy"``)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    return tuple(xp(*tensors).meshgrid(*tensors, indexing=indexing))


def atleast_1d(*tensors: Any) -> Any:
    """The arrays with at least one dim."""
    return jnp.atleast_1d(*tensors)


def atleast_2d(*tensors: Any) -> Any:
    """The arrays with at least two dims."""
    return jnp.atleast_2d(*tensors)


def atleast_3d(*tensors: Any) -> Any:
    """The arrays with at least three dims."""
    return jnp.atleast_3d(*tensors)


# --- block matrices, products of sets, column/row stacking, splits by axis name, adjoint ---------------------------

def block_diag(*tensors: Any) -> jax.Array:
    """A block-diagonal matrix of the arguments (0-d: 1x1, 1-d: one row, 2-d), in their promoted dtype.

    >>> import jax.numpy as jnp
    >>> block_diag(jnp.array(1), jnp.array([[2, 3], [4, 5]])).tolist()
    [[1, 0, 0], [0, 2, 3], [0, 4, 5]]
    """
    blocks = [jnp.asarray(t) for t in tensors]
    for i, b in enumerate(blocks):
        if b.ndim > 2:
            raise ValueError(f"jnn.ops.block_diag: input arrays must have 2 or fewer dims, input {i} has {b.ndim}")
    if not blocks:
        return jnp.zeros((1, 0), default_float())
    return jax.scipy.linalg.block_diag(*(jnp.atleast_2d(b) for b in blocks)).astype(jnp.result_type(*blocks))


def _vectors(tensors: Sequence[Any], who: str) -> list[jax.Array]:
    vectors = [jnp.asarray(t) for t in tensors]
    for v in vectors:
        if v.ndim != 1:
            raise ValueError(f"jnn.ops.{who}: expected 1-d arrays, got shape {v.shape}")
    if len({v.dtype for v in vectors}) > 1:
        raise TypeError(f"jnn.ops.{who}: expected arrays of one dtype, got {sorted({str(v.dtype) for v in vectors})}")
    return vectors


def cartesian_prod(*tensors: Any) -> jax.Array:
    """Every combination of one element from each 1-d array, as the rows of a matrix (itertools.product's order);
    one array is returned as it is.

    >>> import jax.numpy as jnp
    >>> cartesian_prod(jnp.array([1, 2]), jnp.array([3, 4])).tolist()
    [[1, 3], [1, 4], [2, 3], [2, 4]]
    """
    vectors = _vectors(tensors, "cartesian_prod")
    if len(vectors) == 1:
        return vectors[0]
    return jnp.stack([g.ravel() for g in jnp.meshgrid(*vectors, indexing="ij")], axis=1)


def combinations(input: Any, r: builtins.int = 2, with_replacement: builtins.bool = False) -> jax.Array:
    """The length-``r`` combinations of a 1-d array's elements, as the rows of a matrix (itertools.combinations'
    order; ``with_replacement``: combinations_with_replacement's).

    >>> import jax.numpy as jnp
    >>> combinations(jnp.array([1, 2, 3])).tolist(), combinations(jnp.array([1, 2]), with_replacement=True).tolist()
    ([[1, 2], [1, 3], [2, 3]], [[1, 1], [1, 2], [2, 2]])
    """
    (x,) = _vectors([input], "combinations")
    if r < 0:
        raise ValueError(f"jnn.ops.combinations: r must be non-negative, got {r}")
    if r == 0:
        return x[:0]
    # as torch: every r-tuple of indices (row-major), kept when increasing (non-decreasing with replacement)
    grid = np.indices((x.shape[0],) * r).reshape(r, -1)
    ordered = np.all(grid[1:] >= grid[:-1] if with_replacement else grid[1:] > grid[:-1], axis=0)
    return x[grid[:, ordered].T]


def column_stack(tensors: Sequence[Any]) -> jax.Array:
    """Join along dim 1, 0-d and 1-d arrays becoming columns.

    >>> import jax.numpy as jnp
    >>> column_stack([jnp.array([1, 2]), jnp.array([[3, 4], [5, 6]])]).tolist()
    [[1, 3, 4], [2, 5, 6]]
    """
    arrays = [jnp.asarray(t) for t in tensors]
    if not arrays:
        raise ValueError("jnn.ops.column_stack expects a non-empty list of arrays")
    return jnp.concatenate([a.reshape(-1, 1) if a.ndim < 2 else a for a in arrays], axis=1)


def row_stack(tensors: Sequence[Any]) -> jax.Array:
    """torch's other name of :func:`vstack`: join along dim 0, 1-d arrays becoming rows.

    >>> import jax.numpy as jnp
    >>> row_stack([jnp.array([1, 2]), jnp.array([[3, 4]])]).tolist()
    [[1, 2], [3, 4]]
    """
    return vstack(tensors)


def _split_along(input: Any, indices_or_sections: Any, dim: builtins.int, least: builtins.int,
                 who: str) -> tuple[jax.Array, ...]:
    if jnp.ndim(input) < least:
        raise ValueError(f"jnn.ops.{who} requires an array with at least {least} dims, got {jnp.ndim(input)}")
    if isinstance(indices_or_sections, (builtins.int, np.integer)):
        n = jnp.shape(input)[dim]
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ValueError(f"jnn.ops.{who}: the size {n} of dim {dim} is not divisible by the split size "
                             f"{indices_or_sections}")
    return tensor_split(jnp.asarray(input), indices_or_sections, dim)


@method
def hsplit(input: Any, indices_or_sections: Any) -> tuple[jax.Array, ...]:
    """Split along dim 1 (dim 0 of a 1-d array) into equal sections (an int that divides the size) or at indices.

    >>> import jax.numpy as jnp
    >>> [p.shape for p in hsplit(jnp.zeros((2, 4)), 2)], [p.shape for p in hsplit(jnp.zeros(5), [1, 3])]
    ([(2, 2), (2, 2)], [(1,), (2,), (2,)])
    """
    return _split_along(input, indices_or_sections, 0 if jnp.ndim(input) == 1 else 1, 1, "hsplit")


@method
def vsplit(input: Any, indices_or_sections: Any) -> tuple[jax.Array, ...]:
    """Split an array of 2 or more dims along dim 0, as :func:`hsplit`.

    >>> import jax.numpy as jnp
    >>> [p.shape for p in vsplit(jnp.zeros((4, 2)), [3])]
    [(3, 2), (1, 2)]
    """
    return _split_along(input, indices_or_sections, 0, 2, "vsplit")


@method
def dsplit(input: Any, indices_or_sections: Any) -> tuple[jax.Array, ...]:
    """Split an array of 3 or more dims along dim 2, as :func:`hsplit`.

    >>> import jax.numpy as jnp
    >>> [p.shape for p in dsplit(jnp.zeros((1, 2, 4)), 2)]
    [(1, 2, 2), (1, 2, 2)]
    """
    return _split_along(input, indices_or_sections, 2, 3, "dsplit")


@method
def split_with_sizes(input: Any, split_sizes: Sequence[builtins.int], dim: builtins.int = 0) -> tuple[jax.Array, ...]:
    """Pieces of the given sizes along ``dim``, which must add up to the dim's size.

    >>> import jax.numpy as jnp
    >>> [p.shape for p in split_with_sizes(jnp.zeros((5, 2)), [2, 3])]
    [(2, 2), (3, 2)]
    """
    n = jnp.shape(input)[normalize_dim(dim, jnp.ndim(input), "split_with_sizes")]
    split_sizes = [builtins.int(s) for s in split_sizes]
    if builtins.sum(split_sizes) != n or builtins.any(s < 0 for s in split_sizes):
        raise ValueError(f"jnn.ops.split_with_sizes expects split_sizes to be non-negative and sum exactly to {n} (the "
                         f"size of dim {dim}), got {split_sizes}")
    return split(jnp.asarray(input), split_sizes, dim)


@method
def adjoint(input: Any) -> jax.Array:
    """The conjugate transpose of the matrices in the last two dims.

    >>> import jax.numpy as jnp
    >>> adjoint(jnp.array([[1 + 2j, 3j]])).tolist()
    [[(1-2j)], [-3j]]
    """
    x = jnp.asarray(input)
    if x.ndim < 2:
        raise ValueError(f"jnn.ops.adjoint is only supported on matrices or batches of matrices, got a {x.ndim}-d "
                         "array")
    return jnp.swapaxes(x, -1, -2).conj()
