"""Reductions, sorting and scans with torch's ``dim=``/``keepdim=``: ``sum``, ``mean``, ``std``/``var`` (Bessel's
correction by default), ``max``/``min`` (a ``(values, indices)`` pair when ``dim`` is given), ``topk``, ``sort``,
``cumsum``, ``norm``, ``softmax``, ...

Indices are int32 without ``jax_enable_x64`` (torch's are int64).

>>> import jax.numpy as jnp
>>> x = jnp.array([[1.0, 5.0], [4.0, 2.0]])
>>> max(x, dim=1).indices.tolist(), max(x).tolist(), std(x, dim=0).tolist(), var(x, unbiased=False).tolist()
([1, 0], 5.0, [2.1213202476501465, 2.1213202476501465], 2.5)
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn.ops._core import astype, concrete, is_array, method, normalize_dim, normalize_dims, to_dtype
from jnn.ops._eager import host, placed

__all__ = [
    "sum", "nansum", "mean", "nanmean", "prod", "std", "var", "std_mean", "var_mean", "max", "min", "amax", "amin",
    "aminmax", "argmax", "argmin", "all", "any", "count_nonzero", "norm", "logsumexp", "softmax", "log_softmax",
    "cumsum", "cumprod", "cummax", "cummin", "sort", "argsort", "msort", "topk", "kthvalue", "median", "mode",
    "unique", "diff",
]

def _pair(name: str) -> type:
    return namedtuple(name, ["values", "indices"])  # torch.return_types.<name>: values, indices


_MAX, _MIN, _SORT, _TOPK, _KTH, _MEDIAN, _MODE = (_pair(n) for n in ("max", "min", "sort", "topk", "kthvalue",
                                                                     "median", "mode"))
_CUMMAX, _CUMMIN = _pair("cummax"), _pair("cummin")
_aminmax = namedtuple("aminmax", ["min", "max"])


def _axes(input: Any, dim: Any, who: str) -> tuple[int, ...] | None:
    axes = normalize_dims(dim, jnp.ndim(input), who)
    # torch reads an empty dim list as "all dims"; dim 0 of a 0-d array is the array itself
    return None if axes == () or jnp.ndim(input) == 0 else axes


def _axis(input: Any, dim: Any, who: str) -> int | None:
    """One torch dim as an axis; None for a 0-d array (whose dims 0 and -1 are the array itself)."""
    axis = normalize_dim(dim, jnp.ndim(input), who)
    return axis if jnp.ndim(input) else None


def _index_dtype() -> np.dtype:
    return to_dtype(np.int64)


def _accumulator(input: Any, dtype: Any) -> jax.Array:
    """``input`` in the dtype torch sums it in: ``dtype``, else int64 (int32 without x64) for bools and integers."""
    x = jnp.asarray(input)
    if dtype is None and (x.dtype == np.bool_ or jnp.issubdtype(x.dtype, jnp.integer)):
        dtype = np.int64
    return astype(x, dtype)


@method
def sum(input: Any, dim: Any = None, keepdim: builtins.bool = False, *, dtype: Any = None) -> jax.Array:
    """Sum over ``dim`` (an int, a tuple, or None: all); bool and integer sums are integers (int32 without x64)."""
    views = host(input)
    if views is not None and dtype is None and views[0].dtype.kind in "biu":  # exact in any order
        return placed(np.sum(views[0], axis=_axes(input, dim, "sum"), keepdims=keepdim, dtype=to_dtype(np.int64)))
    x = _accumulator(input, dtype)
    return jnp.sum(x, axis=_axes(x, dim, "sum"), keepdims=keepdim)


@method
def nansum(input: Any, dim: Any = None, keepdim: builtins.bool = False, *, dtype: Any = None) -> jax.Array:
    """Sum ignoring NaNs."""
    return jnp.nansum(input, axis=_axes(input, dim, "nansum"), keepdims=keepdim, dtype=to_dtype(dtype))


@method
def mean(input: Any, dim: Any = None, keepdim: builtins.bool = False, *, dtype: Any = None) -> jax.Array:
    """Mean over ``dim``; torch refuses integer inputs (pass ``dtype=``), so does this."""
    x = astype(input, dtype)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"jnn.ops.mean: input dtype {x.dtype} is not floating; pass dtype= or convert with float()")
    return jnp.mean(x, axis=_axes(x, dim, "mean"), keepdims=keepdim)


@method
def nanmean(input: Any, dim: Any = None, keepdim: builtins.bool = False, *, dtype: Any = None) -> jax.Array:
    """Mean ignoring NaNs."""
    x = astype(input, dtype)
    return jnp.nanmean(x, axis=_axes(x, dim, "nanmean"), keepdims=keepdim)


@method
def prod(input: Any, dim: Any = None, keepdim: builtins.bool = False, *, dtype: Any = None) -> jax.Array:
    """Product over ``dim`` (all when None)."""
    x = _accumulator(input, dtype)
    return jnp.prod(x, axis=_axes(x, dim, "prod"), keepdims=keepdim)


def _correction(dim: Any, unbiased: Any, correction: Any) -> tuple[Any, float]:
    if isinstance(dim, builtins.bool):  # torch.std(x, False): the legacy positional ``unbiased``
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return dim, float(correction)


def _var(input: Any, dim: Any, unbiased: Any, keepdim: builtins.bool, correction: Any, who: str) -> jax.Array:
    dim, ddof = _correction(dim, unbiased, correction)
    return jnp.var(input, axis=_axes(input, dim, who), ddof=ddof, keepdims=keepdim)


@method
def var(input: Any, dim: Any = None, unbiased: Any = None, keepdim: builtins.bool = False, *,
        correction: Any = None) -> jax.Array:
    """Variance over ``dim`` with Bessel's correction (``unbiased=False`` or ``correction=0`` for the population
    variance); torch's legacy ``var(x, False)`` means ``unbiased=False``."""
    return _var(input, dim, unbiased, keepdim, correction, "var")


@method
def std(input: Any, dim: Any = None, unbiased: Any = None, keepdim: builtins.bool = False, *,
        correction: Any = None) -> jax.Array:
    """Standard deviation; arguments as :func:`var`."""
    return jnp.sqrt(_var(input, dim, unbiased, keepdim, correction, "std"))


def var_mean(input: Any, dim: Any = None, unbiased: Any = None, keepdim: builtins.bool = False, *,
             correction: Any = None) -> tuple[jax.Array, jax.Array]:
    """``(var, mean)``."""
    m = jnp.mean(input, axis=_axes(input, _correction(dim, None, None)[0], "var_mean"), keepdims=keepdim)
    return _var(input, dim, unbiased, keepdim, correction, "var_mean"), m


def std_mean(input: Any, dim: Any = None, unbiased: Any = None, keepdim: builtins.bool = False, *,
             correction: Any = None) -> tuple[jax.Array, jax.Array]:
    """``(std, mean)``."""
    v, m = var_mean(input, dim, unbiased, keepdim, correction=correction)
    return jnp.sqrt(v), m


def _extreme(input: Any, dim: Any, keepdim: builtins.bool, who: str) -> Any:
    largest = who == "max"
    if dim is None:
        return jnp.max(input) if largest else jnp.min(input)
    if is_array(dim) or isinstance(dim, (builtins.float, complex)):  # torch.max(a, b): elementwise
        return jnp.maximum(input, dim) if largest else jnp.minimum(input, dim)
    axis = _axis(input, dim, who)
    x = jnp.asarray(input)
    values = jnp.max(x, axis=axis, keepdims=keepdim) if largest else jnp.min(x, axis=axis, keepdims=keepdim)
    indices = jnp.argmax(x, axis=axis, keepdims=keepdim) if largest else jnp.argmin(x, axis=axis, keepdims=keepdim)
    return (_MAX if largest else _MIN)(values, indices.astype(_index_dtype()))


@method
def max(input: Any, dim: Any = None, keepdim: builtins.bool = False) -> Any:
    """``max(x)``: the largest element; ``max(x, dim, keepdim=False)``: ``(values, indices)`` (a namedtuple, first
    index among ties); ``max(x, other_array)``: elementwise maximum.

    >>> import jax.numpy as jnp
    >>> v, i = max(jnp.array([[1, 3], [2, 0]]), 1, keepdim=True); v.tolist(), i.tolist()
    ([[3], [2]], [[1], [0]])
    """
    return _extreme(input, dim, keepdim, "max")


@method
def min(input: Any, dim: Any = None, keepdim: builtins.bool = False) -> Any:
    """As :func:`max`, for the smallest."""
    return _extreme(input, dim, keepdim, "min")


@method
def amax(input: Any, dim: Any = (), keepdim: builtins.bool = False) -> jax.Array:
    """Largest values over ``dim`` (an int or tuple; all dims when empty)."""
    return jnp.max(input, axis=_axes(input, dim, "amax"), keepdims=keepdim)


@method
def amin(input: Any, dim: Any = (), keepdim: builtins.bool = False) -> jax.Array:
    """Smallest values over ``dim`` (an int or tuple; all dims when empty)."""
    return jnp.min(input, axis=_axes(input, dim, "amin"), keepdims=keepdim)


@method
def aminmax(input: Any, *, dim: Any = None, keepdim: builtins.bool = False) -> Any:
    """``(min, max)`` over ``dim``."""
    return _aminmax(amin(input, () if dim is None else dim, keepdim), amax(input, () if dim is None else dim, keepdim))


@method
def argmax(input: Any, dim: Any = None, keepdim: builtins.bool = False) -> jax.Array:
    """Index of the largest element (of the flattened array when ``dim`` is None; first among ties)."""
    axis = None if dim is None else _axis(input, dim, "argmax")
    return jnp.argmax(input, axis=axis, keepdims=keepdim).astype(_index_dtype())


@method
def argmin(input: Any, dim: Any = None, keepdim: builtins.bool = False) -> jax.Array:
    """Index of the smallest element (of the flattened array when ``dim`` is None; first among ties)."""
    axis = None if dim is None else _axis(input, dim, "argmin")
    return jnp.argmin(input, axis=axis, keepdims=keepdim).astype(_index_dtype())


@method
def all(input: Any, dim: Any = None, keepdim: builtins.bool = False) -> jax.Array:
    """Whether every element (over ``dim``) is nonzero."""
    return jnp.all(input, axis=_axes(input, dim, "all"), keepdims=keepdim)


@method
def any(input: Any, dim: Any = None, keepdim: builtins.bool = False) -> jax.Array:
    """Whether any element (over ``dim``) is nonzero."""
    return jnp.any(input, axis=_axes(input, dim, "any"), keepdims=keepdim)


@method
def count_nonzero(input: Any, dim: Any = None) -> jax.Array:
    """The number of nonzero elements over ``dim``."""
    return jnp.count_nonzero(input, axis=_axes(input, dim, "count_nonzero")).astype(_index_dtype())


@method
def norm(input: Any, p: Any = "fro", dim: Any = None, keepdim: builtins.bool = False, dtype: Any = None) -> jax.Array:
    """torch's ``norm``: ``p="fro"`` (default) or a number: the vector p-norm over ``dim`` (all elements when None;
    ``inf``/``-inf``: largest/smallest absolute value; 0: the number of nonzeros); ``p="nuc"``: nuclear norm of the
    matrices in the last two dims (or ``dim``).

    >>> import jax.numpy as jnp
    >>> norm(jnp.array([3.0, -4.0])).tolist(), norm(jnp.array([3.0, -4.0]), 1).tolist()
    (5.0, 7.0)
    """
    x = astype(input, dtype)
    if p == "nuc":
        axes = normalize_dims((-2, -1) if dim is None else dim, x.ndim, "norm")
        return jnp.linalg.norm(x, "nuc", axis=axes, keepdims=keepdim)
    axes = _axes(x, dim, "norm")
    p = 2 if p in ("fro", None) else p
    a = jnp.abs(x)
    if p == float("inf"):
        return jnp.max(a, axis=axes, keepdims=keepdim)
    if p == -float("inf"):
        return jnp.min(a, axis=axes, keepdims=keepdim)
    if p == 0:
        return jnp.sum(a != 0, axis=axes, keepdims=keepdim).astype(a.dtype)
    if p == 2:
        return jnp.sqrt(jnp.sum(a * a, axis=axes, keepdims=keepdim))
    return jnp.sum(a ** p, axis=axes, keepdims=keepdim) ** (1.0 / p)


@method
def logsumexp(input: Any, dim: Any, keepdim: builtins.bool = False) -> jax.Array:
    """``log(sum(exp(x)))`` over ``dim``, computed stably."""
    return jax.nn.logsumexp(input, axis=_axes(input, dim, "logsumexp"), keepdims=keepdim)


@method
def softmax(input: Any, dim: builtins.int, dtype: Any = None) -> jax.Array:
    """Softmax along ``dim``."""
    x = astype(input, dtype)
    return jax.nn.softmax(x, axis=_axis(x, dim, "softmax"))


@method
def log_softmax(input: Any, dim: builtins.int, dtype: Any = None) -> jax.Array:
    """Log-softmax along ``dim``."""
    x = astype(input, dtype)
    return jax.nn.log_softmax(x, axis=_axis(x, dim, "log_softmax"))


@method
def cumsum(input: Any, dim: builtins.int, *, dtype: Any = None) -> jax.Array:
    """Running sum along ``dim`` (integers and bools accumulate as int64, i.e. int32 without x64)."""
    x = _accumulator(input, dtype)
    return jnp.cumsum(x, axis=normalize_dim(dim, x.ndim, "cumsum")) if x.ndim else x


@method
def cumprod(input: Any, dim: builtins.int, *, dtype: Any = None) -> jax.Array:
    """Running product along ``dim``."""
    x = _accumulator(input, dtype)
    return jnp.cumprod(x, axis=normalize_dim(dim, x.ndim, "cumprod")) if x.ndim else x


def _cum_extreme(input: Any, dim: builtins.int, largest: builtins.bool, who: str) -> Any:
    x = jnp.asarray(input)
    axis = normalize_dim(dim, x.ndim, who)
    values = (jax.lax.cummax if largest else jax.lax.cummin)(x, axis=axis) if x.ndim else x
    position = jax.lax.broadcasted_iota(_index_dtype(), x.shape, axis) if x.ndim else jnp.zeros((), _index_dtype())
    # torch reports the last position where the running extreme was reached
    indices = jax.lax.cummax(jnp.where(x == values, position, 0), axis=axis) if x.ndim else position
    return (_CUMMAX if largest else _CUMMIN)(values, indices)


@method
def cummax(input: Any, dim: builtins.int) -> Any:
    """Running maximum along ``dim``: ``(values, indices)``."""
    return _cum_extreme(input, dim, True, "cummax")


@method
def cummin(input: Any, dim: builtins.int) -> Any:
    """Running minimum along ``dim``: ``(values, indices)``."""
    return _cum_extreme(input, dim, False, "cummin")


@method
def sort(input: Any, dim: builtins.int = -1, descending: builtins.bool = False, stable: builtins.bool = False) -> Any:
    """``(values, indices)`` sorted along ``dim`` (stable: equal elements keep their order).

    >>> import jax.numpy as jnp
    >>> sort(jnp.array([3, 1, 2]), descending=True).indices.tolist()
    [0, 2, 1]
    """
    x = jnp.asarray(input)
    if x.ndim == 0:
        return _SORT(x, jnp.zeros((), _index_dtype()))
    axis = normalize_dim(dim, x.ndim, "sort")
    indices = jnp.argsort(x, axis=axis, stable=True, descending=descending)
    return _SORT(jnp.take_along_axis(x, indices, axis=axis), indices.astype(_index_dtype()))


@method
def argsort(input: Any, dim: builtins.int = -1, descending: builtins.bool = False,
            stable: builtins.bool = False) -> jax.Array:
    """The indices that sort along ``dim``."""
    return sort(input, dim, descending).indices


@method
def msort(input: Any) -> jax.Array:
    """Sorted along dim 0."""
    return sort(input, 0).values


@method
def topk(input: Any, k: builtins.int, dim: builtins.int = -1, largest: builtins.bool = True,
         sorted: builtins.bool = True) -> Any:
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim``: ``(values, indices)``, in order.

    >>> import jax.numpy as jnp
    >>> v, i = topk(jnp.array([1.0, 4.0, 2.0, 3.0]), 2); v.tolist(), i.tolist()
    ([4.0, 3.0], [1, 3])
    """
    x = jnp.asarray(input)
    axis = normalize_dim(dim, x.ndim, "topk")
    n = x.shape[axis] if x.ndim else 1
    if not 0 <= k <= n:
        raise ValueError(f"jnn.ops.topk: k={k} is out of range for a dim of size {n}")
    if x.ndim == 0:  # torch gives the element itself
        return _TOPK(x, jnp.zeros((), _index_dtype()))
    last = jnp.moveaxis(x, axis, -1)
    if largest and jnp.issubdtype(x.dtype, jnp.floating):  # XLA's TopK: earlier index first among ties, as torch
        indices = jax.lax.top_k(last, k)[1]
    else:
        indices = jnp.argsort(last, axis=-1, stable=True, descending=largest)[..., :k]
    indices = jnp.moveaxis(indices, -1, axis)
    return _TOPK(jnp.take_along_axis(x, indices, axis=axis), indices.astype(_index_dtype()))


@method
def kthvalue(input: Any, k: builtins.int, dim: builtins.int = -1, keepdim: builtins.bool = False) -> Any:
    """The ``k``-th smallest element (1-based) along ``dim``: ``(values, indices)``."""
    s = sort(input, dim)
    axis = normalize_dim(dim, jnp.ndim(input), "kthvalue")
    return _KTH(*(jax.lax.index_in_dim(a, k - 1, axis, keepdims=keepdim) for a in s))


@method
def median(input: Any, dim: Any = None, keepdim: builtins.bool = False) -> Any:
    """torch's median: the *lower* of the two middle values; with ``dim``, ``(values, indices)``."""
    x = jnp.asarray(input)
    if dim is None:
        flat = jnp.sort(x.ravel())
        return flat[(flat.size - 1) // 2]
    axis = normalize_dim(dim, x.ndim, "median")
    r = kthvalue(x, (x.shape[axis] - 1) // 2 + 1 if x.ndim else 1, axis, keepdim)
    return _MEDIAN(r.values, r.indices)


@method
def mode(input: Any, dim: builtins.int = -1, keepdim: builtins.bool = False) -> Any:
    """The most frequent value along ``dim`` (the smallest among equally frequent ones): ``(values, indices)``."""
    x = jnp.asarray(input)
    axis = normalize_dim(dim, x.ndim, "mode")
    moved = jnp.moveaxis(x, axis, -1)
    counts = jnp.sum(moved[..., :, None] == moved[..., None, :], axis=-1)
    best = jnp.max(counts, axis=-1, keepdims=True)
    values = jnp.min(jnp.where(counts == best, moved, jnp.max(moved)), axis=-1, keepdims=True)
    # torch reports the last position holding the mode
    last = moved.shape[-1] - 1 - jnp.argmax(jnp.flip(moved == values, -1), axis=-1, keepdims=True)
    values, last = jnp.moveaxis(values, -1, axis), jnp.moveaxis(last, -1, axis)
    if not keepdim:
        values, last = jnp.squeeze(values, axis), jnp.squeeze(last, axis)
    return _MODE(values, last.astype(_index_dtype()))


@method
def unique(input: Any, sorted: builtins.bool = True, return_inverse: builtins.bool = False,
           return_counts: builtins.bool = False, dim: Any = None) -> Any:
    """The distinct values (sorted), optionally with inverse indices and counts. Not under jit (the result's size
    depends on the values)."""
    concrete(input, "unique", "Under jit use jnp.unique(x, size=N, fill_value=...) with a static bound N.")
    result = jnp.unique(input, return_inverse=return_inverse, return_counts=return_counts, axis=dim)
    if not isinstance(result, tuple):
        return result
    result = list(result)
    if return_inverse:
        result[1] = result[1].reshape(jnp.shape(input) if dim is None else result[1].shape).astype(_index_dtype())
    if return_counts:
        result[-1] = result[-1].astype(_index_dtype())
    return tuple(result)


@method
def diff(input: Any, n: builtins.int = 1, dim: builtins.int = -1, prepend: Any = None, append: Any = None) -> Any:
    """The ``n``-th forward difference along ``dim``."""
    return jnp.diff(input, n=n, axis=normalize_dim(dim, jnp.ndim(input), "diff"), prepend=prepend, append=append)
