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

from jnn.ops._core import (
    astype,
    concrete,
    is_array,
    is_traced,
    method,
    normalize_dim,
    normalize_dims,
    numpy_names,
    to_dtype,
)
from jnn.ops._eager import host, placed

__all__ = [
    "sum", "nansum", "mean", "nanmean", "prod", "std", "var", "std_mean", "var_mean", "max", "min", "amax", "amin",
    "aminmax", "argmax", "argmin", "all", "any", "count_nonzero", "norm", "logsumexp", "softmax", "log_softmax",
    "cumsum", "cumprod", "cummax", "cummin", "sort", "argsort", "msort", "topk", "kthvalue", "median", "mode",
    "unique", "diff", "logcumsumexp", "bincount", "histc", "histogram", "quantile", "nanquantile", "nanmedian", "cov",
    "corrcoef", "renorm", "trapezoid", "trapz", "cumulative_trapezoid", "unique_consecutive",
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


@numpy_names
def var_mean(input: Any, dim: Any = None, unbiased: Any = None, keepdim: builtins.bool = False, *,
             correction: Any = None) -> tuple[jax.Array, jax.Array]:
    """``(var, mean)``."""
    m = jnp.mean(input, axis=_axes(input, _correction(dim, None, None)[0], "var_mean"), keepdims=keepdim)
    return _var(input, dim, unbiased, keepdim, correction, "var_mean"), m


@numpy_names
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


# --- statistics, histograms, integrals and runs: quantile, cov, histc, trapezoid, unique_consecutive, ... ---------

_NANMEDIAN = _pair("nanmedian")
_histogram = namedtuple("histogram", ["hist", "bin_edges"])
_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _floating_input(input: Any, who: str) -> jax.Array:
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"jnn.ops.{who}: input must be a floating array, got {x.dtype} (convert with float())")
    return x


@method
def logcumsumexp(input: Any, dim: builtins.int) -> jax.Array:
    """``log(cumsum(exp(x)))`` along ``dim``, computed stably (floating input only, as torch).

    >>> import jax.numpy as jnp
    >>> [round(v, 4) for v in jnp.exp(logcumsumexp(jnp.log(jnp.array([1.0, 2.0, 3.0])), 0)).tolist()]
    [1.0, 3.0, 6.0]
    """
    x = _floating_input(input, "logcumsumexp")
    axis = normalize_dim(dim, x.ndim, "logcumsumexp")
    return jax.lax.cumlogsumexp(x, axis=axis) if x.ndim else x


@method
def bincount(input: Any, weights: Any = None, minlength: builtins.int = 0) -> jax.Array:
    """How often each value ``0, 1, ...`` occurs in a 1-d array of non-negative integers (at least ``minlength``
    counts; int64, i.e. int32 without x64), or with ``weights`` their sums per value (float64, i.e. float32).
    Not under jit: the result's length depends on the largest value.

    >>> import jax.numpy as jnp
    >>> bincount(jnp.array([1, 3, 1])).tolist(), bincount(jnp.array([1, 3, 1]), jnp.array([0.5, 1.0, 2.0])).tolist()
    ([0, 2, 0, 1], [0.0, 2.5, 0.0, 1.0])
    """
    x = jnp.asarray(concrete(input, "bincount", "Under jit use jnp.bincount(x, weights, length=N) with a static N."))
    if x.ndim != 1 or not jnp.issubdtype(x.dtype, jnp.integer) or (x.size and builtins.int(jnp.min(x)) < 0):
        raise ValueError(f"jnn.ops.bincount only supports 1-d non-negative integral inputs, got a {x.ndim}-d "
                         f"{x.dtype} array")
    if minlength < 0:
        raise ValueError(f"jnn.ops.bincount: minlength should be >= 0, got {minlength}")
    length = builtins.max(minlength, builtins.int(jnp.max(x)) + 1 if x.size else 0)
    if weights is None:
        return jnp.bincount(x, length=length).astype(_index_dtype())
    weights = jnp.asarray(weights)
    if weights.shape != x.shape:
        raise ValueError(f"jnn.ops.bincount: weights should be 1-d and have the same length as input, got shape "
                         f"{weights.shape} for input of shape {x.shape}")
    return jnp.bincount(x, weights.astype(to_dtype(np.float64)), length=length)


def _checked_range(lo: Any, hi: Any, who: str) -> None:
    """torch's checks of a histogram's range, when its values are known (not traced)."""
    if is_traced(lo) or is_traced(hi):
        return
    lo, hi = builtins.float(lo), builtins.float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"jnn.ops.{who}: range of [{lo}, {hi}] is not finite")
    if lo > hi:
        raise ValueError(f"jnn.ops.{who}: min should not exceed max, got min {lo} and max {hi}")


def _bin_counts(x: jax.Array, position: jax.Array, lo: Any, hi: Any, bins: builtins.int, weight: Any) -> jax.Array:
    """Counts (or summed ``weight``) of ``x``'s elements per bin ``position``; elements outside ``[lo, hi]`` and
    NaNs are not counted, ``hi`` itself is in the last bin."""
    inside = (x >= lo) & (x <= hi)
    amount = inside if weight is None else jnp.where(inside, jnp.asarray(weight).ravel(), 0)
    return jnp.zeros(bins, x.dtype).at[jnp.clip(position, 0, bins - 1)].add(amount.astype(x.dtype))


@method
def histc(input: Any, bins: builtins.int = 100, min: Any = 0, max: Any = 0) -> jax.Array:
    """Counts of the elements in ``bins`` equal-width bins between ``min`` and ``max`` (the data's own extremes
    when those are equal; widened by 1 on each side when they are equal too), in ``input``'s float dtype; elements
    outside are not counted.

    >>> import jax.numpy as jnp
    >>> histc(jnp.array([1.0, 2.0, 1.0, 4.0]), bins=4, min=0, max=3).tolist()
    [0.0, 2.0, 1.0, 0.0]
    """
    x = _floating_input(input, "histc").ravel()
    if bins <= 0:
        raise ValueError(f"jnn.ops.histc: bins must be > 0, got {bins}")
    lo, hi = jnp.asarray(min, x.dtype), jnp.asarray(max, x.dtype)
    if not (is_traced(min) or is_traced(max)) and builtins.bool(min == max) and x.size:
        lo, hi = jnp.min(x), jnp.max(x)
    lo, hi = jnp.where(lo == hi, lo - 1, lo), jnp.where(lo == hi, hi + 1, hi)
    _checked_range(lo, hi, "histc")
    # torch's linear bin lookup in the input's precision: (x - min) * bins / (max - min), rounded down
    position = ((x - lo) * bins / (hi - lo)).astype(_index_dtype())
    return _bin_counts(x, position, lo, hi, bins, None)


@method
def histogram(input: Any, bins: Any, *, range: Any = None, weight: Any = None,
              density: builtins.bool = False) -> Any:
    """``(hist, bin_edges)``: the elements' counts (or summed ``weight``) in ``bins`` equal-width bins over ``range``
    (the data's extremes by default, widened by 0.5 on each side when equal), or in the bins between the edges of a
    1-d ``bins`` array; the last bin includes its right edge. ``density``: normalised to integrate to 1.

    >>> import jax.numpy as jnp
    >>> hist, edges = histogram(jnp.array([1.0, 2.0, 1.0, 4.0]), 3); hist.tolist(), edges.tolist()
    ([2.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    """
    x = _floating_input(input, "histogram").ravel()
    if weight is not None:
        weight = jnp.asarray(weight)
        if weight.shape != jnp.shape(input) or weight.dtype != x.dtype:
            raise ValueError(f"jnn.ops.histogram: weight must have input's shape {jnp.shape(input)} and dtype "
                             f"{x.dtype}, got {weight.shape} {weight.dtype}")
    if is_array(bins):
        edges = jnp.asarray(bins)
        if edges.ndim != 1 or edges.dtype != x.dtype or edges.shape[0] < 2:
            raise ValueError(f"jnn.ops.histogram: bins must be a 1-d {x.dtype} array of at least 2 edges, got shape "
                             f"{edges.shape} {edges.dtype}")
    else:
        if bins <= 0:
            raise ValueError(f"jnn.ops.histogram: bins must be > 0, got {bins}")
        if range is not None:
            lo, hi = (jnp.asarray(r, x.dtype) for r in range)
        elif x.size:
            lo, hi = jnp.min(x), jnp.max(x)
        else:
            lo, hi = jnp.zeros((), x.dtype), jnp.ones((), x.dtype)
        _checked_range(lo, hi, "histogram")
        lo, hi = jnp.where(lo == hi, lo - 0.5, lo), jnp.where(lo == hi, hi + 0.5, hi)
        # torch's linspace: from the nearer end, so elements on an edge fall in the same bin as torch's
        step, i = (hi - lo) / bins, jnp.arange(bins + 1)
        edges = jnp.where(i < (bins + 1) // 2, lo + step * i, hi - step * (bins - i)).astype(x.dtype)
    position = jnp.searchsorted(edges, x, side="right") - 1
    hist = _bin_counts(x, position, edges[0], edges[-1], edges.shape[0] - 1, weight)
    if density:
        hist = hist / (jnp.sum(hist) * jnp.diff(edges))
    return _histogram(hist, edges)


def _lerp(start: jax.Array, end: jax.Array, weight: Any) -> jax.Array:
    """torch's lerp, which is exact at both ends."""
    return jnp.where(weight < 0.5, start + weight * (end - start), end - (end - start) * (1 - weight))


def _quantile(input: Any, q: Any, dim: Any, keepdim: builtins.bool, interpolation: str, who: str) -> jax.Array:
    x = jnp.asarray(input)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"jnn.ops.{who}: input must be a float32 or float64 array, got {x.dtype}")
    if x.size == 0:
        raise ValueError(f"jnn.ops.{who}: input array must be non-empty")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"jnn.ops.{who}: interpolation must be one of {', '.join(_INTERPOLATIONS)}, got "
                         f"{interpolation!r}")
    if is_array(q) and jnp.asarray(q).dtype != x.dtype:
        raise TypeError(f"jnn.ops.{who}: q must have input's dtype {x.dtype}, got {jnp.asarray(q).dtype}")
    qs = jnp.asarray(q, x.dtype)
    if qs.ndim > 1:
        raise ValueError(f"jnn.ops.{who}: q must be a scalar or a 1-d array, got {qs.ndim}-d")
    if not is_traced(qs) and not builtins.bool(jnp.all((qs >= 0) & (qs <= 1))):
        raise ValueError(f"jnn.ops.{who}: q values must be in the range [0, 1], got {np.asarray(qs).tolist()}")
    if dim is None:
        axis, rows = None, x.reshape(-1)
    else:
        axis = normalize_dim(dim, x.ndim, who)
        rows = jnp.moveaxis(x, axis, -1) if x.ndim else x.reshape(1)
    values = jnp.sort(rows, axis=-1)[..., None, :]  # NaNs last; a (q,) axis before the sorted one
    nan = jnp.isnan(values)
    if who == "nanquantile":  # the rank among the non-NaN values (0 when all are NaN: the result is NaN)
        ranks = jnp.maximum(qs.reshape(-1, 1) * (jnp.sum(~nan, axis=-1, keepdims=True) - 1), 0)
    else:  # any NaN makes the result NaN: the rank of the last (NaN) value
        ranks = jnp.where(jnp.any(nan, axis=-1, keepdims=True), rows.shape[-1] - 1,
                          qs.reshape(-1, 1) * (rows.shape[-1] - 1))
    ranks = {"lower": jnp.floor, "higher": jnp.ceil, "nearest": jnp.round}.get(interpolation, lambda r: r)(ranks)
    below = jnp.take_along_axis(values, ranks.astype(np.int32), axis=-1)
    if interpolation in ("linear", "midpoint"):
        above = jnp.take_along_axis(values, jnp.ceil(ranks).astype(np.int32), axis=-1)
        below = _lerp(below, above, 0.5 if interpolation == "midpoint" else ranks - jnp.floor(ranks))
    out = jnp.moveaxis(below[..., 0], -1, 0)  # (q, *kept dims)
    if keepdim and axis is None:
        out = out.reshape(out.shape[:1] + (1,) * x.ndim)
    elif keepdim and x.ndim:
        out = jnp.expand_dims(out, axis + 1)
    return out if qs.ndim else out[0]


@method
def quantile(input: Any, q: Any, dim: Any = None, keepdim: builtins.bool = False, *,
             interpolation: str = "linear") -> jax.Array:
    """The ``q``-th quantiles (a float, or a 1-d array whose quantiles make a new first dim) of the flattened
    input or along ``dim``, between the two nearest values by ``interpolation``: ``"linear"``, ``"lower"``,
    ``"higher"``, ``"midpoint"`` or ``"nearest"``; NaN where a NaN is among the values.

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[0.0, 1.0, 2.0, 3.0]])
    >>> quantile(x, 0.5).tolist(), quantile(x, jnp.array([0.25, 1.0]), dim=1, interpolation="lower").tolist()
    (1.5, [[0.0], [3.0]])
    """
    return _quantile(input, q, dim, keepdim, interpolation, "quantile")


@method
def nanquantile(input: Any, q: Any, dim: Any = None, keepdim: builtins.bool = False, *,
                interpolation: str = "linear") -> jax.Array:
    """As :func:`quantile`, ignoring NaNs (NaN where all values are NaN).

    >>> import jax.numpy as jnp
    >>> nanquantile(jnp.array([1.0, jnp.nan, 3.0]), 0.5).tolist()
    2.0
    """
    return _quantile(input, q, dim, keepdim, interpolation, "nanquantile")


@method
def nanmedian(input: Any, dim: Any = None, keepdim: builtins.bool = False) -> Any:
    """:func:`median` ignoring NaNs (the lower of the two middle values; NaN when all are NaN); with ``dim``,
    ``(values, indices)``. Among equal values torch names any one's index; this names one holding the value.

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[2.0, jnp.nan, 1.0], [jnp.nan, 5.0, jnp.nan]])
    >>> nanmedian(x).tolist(), nanmedian(x, 1).values.tolist(), nanmedian(x, 1).indices.tolist()
    (2.0, [1.0, 5.0], [2, 1])
    """
    x = jnp.asarray(input)
    if dim is None:
        values = jnp.sort(x.ravel())  # NaNs last
        if not values.size:
            return jnp.full((), jnp.nan, x.dtype)
        return values[jnp.maximum(jnp.sum(~jnp.isnan(values)) - 1, 0) // 2]
    axis = normalize_dim(dim, x.ndim, "nanmedian")
    rows = jnp.moveaxis(x, axis, -1) if x.ndim else x.reshape(1)
    if rows.shape[-1] == 0:
        raise IndexError(f"jnn.ops.nanmedian: expected reduction dim {dim} to have non-zero size")
    order = jnp.argsort(rows, axis=-1, stable=True)
    k = jnp.maximum(jnp.sum(~jnp.isnan(rows), axis=-1, keepdims=True) - 1, 0) // 2
    indices = jnp.take_along_axis(order, k, axis=-1)
    values = jnp.take_along_axis(rows, indices, axis=-1)
    values, indices = (jnp.moveaxis(a, -1, axis) for a in (values, indices)) if x.ndim else (values[0], indices[0])
    if x.ndim and not keepdim:
        values, indices = jnp.squeeze(values, axis), jnp.squeeze(indices, axis)
    return _NANMEDIAN(values, indices.astype(_index_dtype()))


@method
def cov(input: Any, *, correction: Any = 1, fweights: Any = None, aweights: Any = None) -> jax.Array:
    """The covariance matrix of the variables in ``input``'s rows (a 1-d input: one variable, a 0-d result),
    observations in its columns, with ``correction`` (1: Bessel's), integer frequency weights ``fweights`` and
    float observation weights ``aweights``; integer input gives a float result.

    >>> import jax.numpy as jnp
    >>> cov(jnp.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])).tolist(), round(cov(jnp.array([1, 2, 4])).item(), 4)
    ([[1.0, -1.0], [-1.0, 1.0]], 2.3333)
    """
    x = jnp.asarray(input)
    if x.ndim > 2:
        raise ValueError(f"jnn.ops.cov: expected input to have two or fewer dims, got {x.ndim}")
    x = x.reshape(1, -1) if x.ndim < 2 else x
    n = x.shape[1]
    weights = {}
    for name, given, kind in (("fweights", fweights, jnp.integer), ("aweights", aweights, jnp.floating)):
        if given is None:
            continue
        weights[name] = given = jnp.asarray(given)
        if given.ndim > 1 or given.size != n or not jnp.issubdtype(given.dtype, kind):
            raise ValueError(f"jnn.ops.cov: expected {name} to be a scalar or 1-d {kind.__name__} array with {n} "
                             f"elements (one per observation), got shape {given.shape} {given.dtype}")
        if not is_traced(given) and builtins.bool(jnp.any(given < 0)):
            raise ValueError(f"jnn.ops.cov: {name} cannot be negative")
    w = weights.get("fweights")
    if "aweights" in weights:
        w = weights["aweights"] if w is None else w * weights["aweights"]
    w_sum = n if w is None else jnp.sum(w)
    if w is not None and not is_traced(w_sum) and w_sum == 0:
        raise ValueError("jnn.ops.cov: weights sum to zero, can't be normalized")
    mean = jnp.sum(x if w is None else x * w, axis=1) / w_sum
    # One observation weighted by one kind of weights: torch (as NumPy) takes the exact answers, the mean equal to
    # the observation and, for aweights with correction 1, zero degrees of freedom (0/0: nan), not rounding noise.
    single = n == 1 and len(weights) == 1
    if w is None or aweights is None or correction == 0:
        norm = w_sum - correction
    elif single and correction == 1:
        norm = 0
    else:
        norm = w_sum - correction * jnp.sum(w * weights["aweights"]) / w_sum
    centred = jnp.zeros_like(x, dtype=mean.dtype) if single else x - mean[:, None]
    c = jnp.matmul(centred, (centred if w is None else centred * w).T.conj())
    return jnp.squeeze(c / jnp.maximum(norm, 0))


@method
def corrcoef(input: Any) -> jax.Array:
    """Pearson's correlation coefficients of the variables in ``input``'s rows (see :func:`cov`), clipped to
    ``[-1, 1]``.

    >>> import jax.numpy as jnp
    >>> corrcoef(jnp.array([[0.0, 1.0, 2.0], [0.0, 2.0, 4.0], [1.0, 0.0, 1.0]]))[0].tolist()
    [1.0, 1.0, 0.0]
    """
    c = cov(input)
    if c.ndim == 0:
        return c / c
    std = jnp.sqrt(jnp.real(jnp.diagonal(c)))
    c = c / std[:, None] / std[None, :]
    if jnp.iscomplexobj(c):
        return jax.lax.complex(jnp.clip(c.real, -1, 1), jnp.clip(c.imag, -1, 1))
    return jnp.clip(c, -1, 1)


@method
def renorm(input: Any, p: Any, dim: builtins.int, maxnorm: Any) -> jax.Array:
    """``input`` with each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` scaled down to that norm.

    >>> import jax.numpy as jnp
    >>> [[round(v, 4) for v in row] for row in renorm(jnp.array([[3.0, 4.0], [0.3, 0.4]]), 2, 0, 1.0).tolist()]
    [[0.6, 0.8], [0.3, 0.4]]
    """
    x = _floating_input(input, "renorm")
    if x.ndim < 2:
        raise ValueError(f"jnn.ops.renorm: input needs at least 2 dims, got {x.ndim}")
    if p <= 0:
        raise ValueError(f"jnn.ops.renorm: p must be positive (non-positive norms are not supported), got {p}")
    if maxnorm < 0:
        raise ValueError(f"jnn.ops.renorm: expected maxnorm to be >= 0, got {maxnorm}")
    axis = normalize_dim(dim, x.ndim, "renorm")
    norms = jnp.linalg.vector_norm(x, ord=p, axis=tuple(a for a in builtins.range(x.ndim) if a != axis),
                                   keepdims=True)
    return (x * jnp.where(norms > maxnorm, maxnorm / (norms + 1e-7), 1)).astype(x.dtype)


def _spacing(y: Any, x: Any, dx: Any, dim: builtins.int, who: str) -> tuple[jax.Array, builtins.int, Any]:
    """``(y, axis, spacing)``: the sample spacing along ``axis`` as a number (``dx``) or an array (``x``'s steps,
    shaped to multiply ``y[1:] + y[:-1]``)."""
    y = jnp.asarray(y)
    if y.ndim == 0:
        raise IndexError(f"jnn.ops.{who}: dim {dim} is out of range for a 0-d array")
    axis = normalize_dim(dim, y.ndim, who)
    if x is None:
        return y, axis, 1 if dx is None else dx
    if dx is not None:
        raise TypeError(f"jnn.ops.{who}: give the sample points x or their spacing dx, not both")
    x = jnp.asarray(x)
    if x.ndim == 1:
        if x.shape[0] != y.shape[axis]:
            raise ValueError(f"jnn.ops.{who}: there must be one x value for each sample point, got {x.shape[0]} for "
                             f"{y.shape[axis]}")
        return y, axis, jnp.diff(x).reshape((-1,) + (1,) * (y.ndim - 1 - axis))
    x = x.reshape((1,) * (y.ndim - x.ndim) + x.shape)  # torch pads x's shape on the left to y's rank
    return y, axis, jnp.diff(x, axis=axis)


def _pairs(y: jax.Array, axis: builtins.int) -> jax.Array:
    """``y[1:] + y[:-1]`` along ``axis``."""
    n = y.shape[axis]
    return (jax.lax.slice_in_dim(y, builtins.min(1, n), n, axis=axis)
            + jax.lax.slice_in_dim(y, 0, builtins.max(n - 1, 0), axis=axis))


def trapezoid(y: Any, x: Any = None, *, dx: Any = None, dim: builtins.int = -1) -> jax.Array:
    """The trapezoidal rule's integral of ``y`` along ``dim``, at sample points ``x`` (1-d, or broadcasting with
    ``y``) or spaced ``dx`` apart (default 1).

    >>> import jax.numpy as jnp
    >>> y = jnp.array([1.0, 2.0, 4.0])
    >>> trapezoid(y).tolist(), trapezoid(y, dx=2).tolist(), trapezoid(y, jnp.array([0.0, 1.0, 3.0])).tolist()
    (4.5, 9.0, 7.5)
    """
    y, axis, spacing = _spacing(y, x, dx, dim, "trapezoid")
    if y.shape[axis] == 0:
        return jnp.zeros(y.shape[:axis] + y.shape[axis + 1:], y.dtype)
    if not is_array(spacing):  # torch's formula for a constant spacing
        ends = jnp.take(y, 0, axis=axis) + jnp.take(y, -1, axis=axis)
        return (jnp.sum(y, axis=axis) - ends * 0.5) * spacing
    return jnp.sum(spacing * _pairs(y, axis), axis=axis) / 2.0


def trapz(y: Any, x: Any = None, *, dx: Any = None, dim: builtins.int = -1) -> jax.Array:
    """torch's older name of :func:`trapezoid`.

    >>> import jax.numpy as jnp
    >>> trapz(jnp.array([1.0, 2.0, 4.0]), dx=2).tolist()
    9.0
    """
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y: Any, x: Any = None, *, dx: Any = None, dim: builtins.int = -1) -> jax.Array:
    """The running trapezoidal integral of ``y`` along ``dim`` (one element shorter), arguments as
    :func:`trapezoid`.

    >>> import jax.numpy as jnp
    >>> cumulative_trapezoid(jnp.array([1.0, 2.0, 4.0])).tolist()
    [1.5, 4.5]
    """
    y, axis, spacing = _spacing(y, x, dx, dim, "cumulative_trapezoid")
    pairs = _pairs(y, axis)
    steps = spacing / 2.0 * pairs if not is_array(spacing) else spacing * pairs / 2.0
    return jnp.cumsum(steps, axis=axis)


@method
def unique_consecutive(input: Any, return_inverse: builtins.bool = False, return_counts: builtins.bool = False,
                       dim: Any = None) -> Any:
    """The first element of each run of equal consecutive elements (or slices along ``dim``), optionally with each
    element's run number (``return_inverse``) and the runs' lengths (``return_counts``). Not under jit (the result's
    size depends on the values).

    >>> import jax.numpy as jnp
    >>> values, counts = unique_consecutive(jnp.array([1, 1, 2, 2, 2, 1]), return_counts=True)
    >>> values.tolist(), counts.tolist()
    ([1, 2, 1], [2, 3, 1])
    """
    x = jnp.asarray(concrete(input, "unique_consecutive", "Under jit, mark the run starts with x[1:] != x[:-1] and "
                             "use jnp.nonzero(starts, size=N) with a static bound N."))
    axis = 0 if dim is None else normalize_dim(dim, x.ndim, "unique_consecutive")
    slices = x.reshape(-1) if dim is None else jnp.moveaxis(x, axis, 0)
    rows = slices.reshape(slices.shape[0], builtins.int(np.prod(slices.shape[1:])))
    starts = jnp.concatenate([jnp.ones(builtins.min(rows.shape[0], 1), bool), jnp.any(rows[1:] != rows[:-1], 1)])
    first = jnp.nonzero(starts)[0]
    result = [slices[first] if dim is None else jnp.moveaxis(slices[first], 0, axis)]
    if return_inverse:
        inverse = jnp.cumsum(starts) - 1
        result.append((inverse.reshape(x.shape) if dim is None else inverse).astype(_index_dtype()))
    if return_counts:
        result.append(jnp.diff(first, append=rows.shape[0]).astype(_index_dtype()))
    return tuple(result) if len(result) > 1 else result[0]
