"""Pooling: max, average, power-average, adaptive and fractional pooling over 1-, 2- and 3-d inputs."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jnn import random
from jnn.functional._utils import _ntuple

__all__ = [
    "max_pool1d", "max_pool2d", "max_pool3d",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "lp_pool1d", "lp_pool2d", "lp_pool3d",
    "fractional_max_pool2d", "fractional_max_pool3d",
]

_Size = int | Sequence[int]
_LAYOUT = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}
_BATCHED = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


# --- argument helpers --------------------------------------------------------------------------------------


def _as_batched(input: ArrayLike, n: int, fn: str) -> tuple[jax.Array, tuple[int, ...]]:
    """The input as ``(B, C, *spatial)`` and the leading shape to restore (``()`` for unbatched input)."""
    x = jnp.asarray(input)
    if x.ndim not in (n + 1, n + 2) or 0 in x.shape[-n - 1:]:
        raise ValueError(f"{fn}: expected a {n + 1}D {_LAYOUT[n]} or {n + 2}D {_BATCHED[n]} input with non-zero "
                         f"channel and spatial sizes (only the batch may be empty), got shape {x.shape}")
    return x.reshape((-1,) + x.shape[-n - 1:]), x.shape[:-n - 1]


def _restore(res: Any, lead: tuple[int, ...], n: int) -> Any:
    return jax.tree.map(lambda a: a.reshape(lead + a.shape[-n - 1:]), res)


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside input or left padding
        out -= 1
    return out


def _low(dtype: Any) -> np.ndarray:
    return np.array(-np.inf if jnp.issubdtype(dtype, jnp.inexact) else jnp.iinfo(dtype).min, dtype)


# --- windowed max with torch's indices ---------------------------------------------------------------------


def _window_max(x: jax.Array, pos: list, ok: list, return_indices: bool, vals: jax.Array | None = None) -> Any:
    """Max over windows given per dim as positions ``pos[i]`` (``(..., o_i, k_i)``) and validity ``ok[i]``.

    The leading dims of ``pos``/``ok`` are ``()`` (the same windows for every plane, static numpy) or
    ``(B, C)`` (per-plane windows). Torch's rule: the first maximum in row-major window order wins and a
    later NaN replaces it. Indices are flat positions in the unpadded spatial volume.
    """
    n, spatial = len(pos), x.shape[2:]
    lead = pos[0].shape[:-2]
    outs, ks = tuple(q.shape[-2] for q in pos), tuple(q.shape[-1] for q in pos)
    flat, mask = 0, True
    for i in range(n):
        shape = [1] * (2 * n)
        shape[i], shape[n + i] = outs[i], ks[i]
        flat = flat * spatial[i] + pos[i].reshape(lead + tuple(shape))
        mask = mask & ok[i].reshape(lead + tuple(shape))
    full = lead + outs + (math.prod(ks),)
    xf = x.reshape(x.shape[:2] + (math.prod(spatial),))
    if isinstance(flat, np.ndarray):
        flat, mask = np.broadcast_to(flat, outs + ks).reshape(full), np.broadcast_to(mask, outs + ks).reshape(full)
        cand = xf[:, :, np.where(mask, flat, 0)]
    else:
        flat = jnp.broadcast_to(flat, lead + outs + ks).reshape(full)
        mask = jnp.broadcast_to(mask, lead + outs + ks).reshape(full)
        safe = jnp.where(mask, flat, 0).reshape(lead + (math.prod(full[len(lead):]),))
        cand = jnp.take_along_axis(xf, safe, axis=2).reshape(x.shape[:2] + full[2:])
    low = _low(x.dtype)
    cand = jnp.where(mask, cand, low)
    nan = jnp.isnan(cand) if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.zeros(cand.shape, bool)
    first = jnp.argmax(mask & (cand == cand.max(-1, keepdims=True)), axis=-1)  # the first maximum wins ties
    last_nan = cand.shape[-1] - 1 - jnp.argmax(nan[..., ::-1], axis=-1)  # torch: a later NaN replaces
    sel = jnp.where(nan.any(-1), last_nan, first)
    if vals is None:
        vals = jnp.take_along_axis(cand, sel[..., None], axis=-1)[..., 0]
    if not return_indices:
        return vals
    idx = jnp.take_along_axis(jnp.broadcast_to(flat, cand.shape), sel[..., None], axis=-1)[..., 0]
    return vals, idx


@functools.partial(jax.jit, static_argnames=("k", "s", "p", "d", "out", "return_indices"))
def _max_pool(x, k, s, p, d, out, return_indices):
    n, spatial = len(k), x.shape[2:]
    vals = None
    if all(e == 1 for e in d):  # extra high padding gives ceil_mode's last window room
        hi = [max((out[i] - 1) * s[i] + k[i] - spatial[i] - p[i], 0) for i in range(n)]
        pads = ((0, 0), (0, 0)) + tuple(zip(p, hi, strict=True))
        vals = lax.reduce_window(x, _low(x.dtype), lax.max, (1, 1, *k), (1, 1, *s), pads)
        vals = vals[(..., *(slice(0, o) for o in out))]
        if not return_indices:
            return vals
    # JAX has no reduce_window-max VJP with dilation: gather the windows and take the chosen elements instead
    pos = [np.arange(out[i])[:, None] * s[i] - p[i] + np.arange(k[i]) * d[i] for i in range(n)]
    ok = [(q >= 0) & (q < spatial[i]) for i, q in enumerate(pos)]
    return _window_max(x, pos, ok, return_indices, vals)


def _max_poolnd(n: int, fn: str, input: ArrayLike, kernel_size: _Size, stride: _Size | None, padding: _Size,
                dilation: _Size, ceil_mode: bool, return_indices: bool) -> Any:
    x, lead = _as_batched(input, n, fn)
    k = _ntuple(kernel_size, n, "kernel_size", fn)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        _ntuple(stride, n, "stride", fn)
    p, d = _ntuple(padding, n, "padding", fn), _ntuple(dilation, n, "dilation", fn)
    if min(k) <= 0 or min(s) <= 0 or min(d) <= 0:
        raise ValueError(f"{fn}: kernel_size, stride and dilation must be positive, got kernel_size={k}, "
                         f"stride={s}, dilation={d}")
    if min(p) < 0:
        raise ValueError(f"{fn}: pad must be non-negative, but got padding={p}")
    for i in range(n):
        if p[i] > (d[i] * (k[i] - 1) + 1) // 2:
            raise ValueError(f"{fn}: pad should be at most half of effective kernel size, but got "
                             f"pad={p[i]}, kernel_size={k[i]} and dilation={d[i]}")
    if any(p[i] > k[i] // 2 for i in range(n)):
        raise ValueError(f"{fn}: pad should be smaller than or equal to half of kernel size, but got "
                         f"padding={p}, kernel_size={k}")
    spatial = x.shape[2:]
    out = tuple(_pool_out(spatial[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(n))
    if min(out) < 1:
        raise ValueError(f"{fn}: given input size: ({'x'.join(map(str, x.shape[1:]))}). Calculated output size: "
                         f"({'x'.join(map(str, (x.shape[1], *out)))}). Output size is too small")
    return _restore(_max_pool(x, k, s, p, d, out, bool(return_indices)), lead, n)


def max_pool1d(input: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
               dilation: _Size = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """1-D max pooling over ``(N, C, L)`` or ``(C, L)`` input (padding is implicit ``-inf``).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.max_pool1d(jnp.array([[1.0, 3.0, 2.0, 0.0]]), 2, return_indices=True)[1].tolist()
    [[1, 2]]
    """
    return _max_poolnd(1, "max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
               dilation: _Size = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """2-D max pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input (padding is implicit ``-inf``).

    With ``return_indices=True`` also returns torch's indices: the flat position ``h * W + w`` of each
    maximum in its (unpadded) ``H x W`` plane; the first maximum wins ties and a NaN wins over numbers.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> y, i = F.max_pool2d(jnp.arange(16.0).reshape(1, 4, 4), 2, return_indices=True)
    >>> y.tolist(), i.tolist()
    ([[[5.0, 7.0], [13.0, 15.0]]], [[[5, 7], [13, 15]]])
    """
    return _max_poolnd(2, "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
               dilation: _Size = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """3-D max pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input; indices are ``(d * H + h) * W + w``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.max_pool3d(jnp.ones((2, 1, 4, 4, 4)), 2).shape
    (2, 1, 2, 2, 2)
    """
    return _max_poolnd(3, "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# --- max unpooling -----------------------------------------------------------------------------------------


def _max_unpoolnd(n: int, fn: str, input: ArrayLike, indices: ArrayLike, kernel_size: _Size,
                  stride: _Size | None, padding: _Size, output_size: Sequence[int] | None) -> jax.Array:
    x, lead = _as_batched(input, n, fn)
    idx = jnp.asarray(indices)
    if idx.shape != jnp.shape(input):
        raise ValueError(f"{fn}: expected indices of the input's shape {jnp.shape(input)}, got {idx.shape}")
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise TypeError(f"{fn}: expected integer indices, got dtype {idx.dtype}")
    k = _ntuple(kernel_size, n, "kernel_size", fn)
    s = k if stride is None else _ntuple(stride, n, "stride", fn)
    p = _ntuple(padding, n, "padding", fn)
    default = [(x.shape[2 + i] - 1) * s[i] + k[i] - 2 * p[i] for i in range(n)]
    if output_size is None:
        size = default
    else:
        size = [int(e) for e in output_size]
        if len(size) == n + 2:
            size, output_size = size[2:], output_size[2:]
        if len(size) != n:
            raise ValueError(f"output_size should be a sequence containing {n} or {n + 2} elements, but it has a "
                             f"length of '{len(size)}'")
        for i in range(n):
            lo, hi = default[i] - s[i], default[i] + s[i]
            if not lo < size[i] < hi:
                raise ValueError(f'invalid output_size "{output_size}" (dim {i} must be between {lo} and {hi})')
    if min(size) < 0:
        raise ValueError(f"{fn}: output_size must contain non-negative spatial dimensions, got {size}")
    total = math.prod(size)
    flat = idx.reshape(x.shape[:2] + (math.prod(x.shape[2:]),))
    if not isinstance(flat, jax.core.Tracer) and flat.size:
        lo_i, hi_i = int(flat.min()), int(flat.max())
        if lo_i < 0 or hi_i >= total:
            bad = hi_i if hi_i >= total else lo_i
            raise ValueError(f"{fn}: Found an invalid max index: {bad} (output volumes are of size "
                             f"{'x'.join(map(str, size))})")
    b, c = x.shape[:2]
    where = (jnp.arange(b)[:, None, None], jnp.arange(c)[None, :, None], flat)
    v = x.reshape(flat.shape)
    out = jnp.zeros((b, c, total), x.dtype).at[where].set(lax.stop_gradient(v), mode="drop")
    # torch's gradient gathers at every index (a repeated index passes it to each source): a scatter-add's VJP
    added = jnp.zeros((b, c, total), x.dtype).at[where].add(v, mode="drop")
    out = out + jnp.where(jnp.isfinite(added), added - lax.stop_gradient(added), 0)  # (value 0; inf - inf NaN)
    return out.reshape(lead + (c, *size))


def max_unpool1d(input: ArrayLike, indices: ArrayLike, kernel_size: _Size, stride: _Size | None = None,
                 padding: _Size = 0, output_size: Sequence[int] | None = None) -> jax.Array:
    """Partial inverse of :func:`max_pool1d`: puts each value at its index, zeros elsewhere.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> y, i = F.max_pool1d(jnp.array([[1.0, 3.0, 2.0, 0.0]]), 2, return_indices=True)
    >>> F.max_unpool1d(y, i, 2).tolist()
    [[0.0, 3.0, 2.0, 0.0]]
    """
    return _max_unpoolnd(1, "max_unpool1d", input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: ArrayLike, indices: ArrayLike, kernel_size: _Size, stride: _Size | None = None,
                 padding: _Size = 0, output_size: Sequence[int] | None = None) -> jax.Array:
    """Partial inverse of :func:`max_pool2d`: puts each value at its flat index ``h * W + w``, zeros elsewhere.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> y, i = F.max_pool2d(jnp.ones((1, 1, 4, 4)), 2, return_indices=True)
    >>> F.max_unpool2d(y, i, 2).shape
    (1, 1, 4, 4)
    """
    return _max_unpoolnd(2, "max_unpool2d", input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: ArrayLike, indices: ArrayLike, kernel_size: _Size, stride: _Size | None = None,
                 padding: _Size = 0, output_size: Sequence[int] | None = None) -> jax.Array:
    """Partial inverse of :func:`max_pool3d`.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> y, i = F.max_pool3d(jnp.ones((1, 2, 2, 2)), 2, return_indices=True)
    >>> F.max_unpool3d(y, i, 2).shape
    (1, 2, 2, 2)
    """
    return _max_unpoolnd(3, "max_unpool3d", input, indices, kernel_size, stride, padding, output_size)


# --- average pooling ---------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("k", "s", "p", "out", "count_include_pad", "divisor_override"))
def _avg_pool(x, k, s, p, out, count_include_pad, divisor_override):
    n, spatial = len(k), x.shape[2:]
    hi = [max((out[i] - 1) * s[i] + k[i] - spatial[i] - p[i], 0) for i in range(n)]
    pads = ((0, 0), (0, 0)) + tuple(zip(p, hi, strict=True))
    summed = lax.reduce_window(x, np.array(0, x.dtype), lax.add, (1, 1, *k), (1, 1, *s), pads)
    summed = summed[(..., *(slice(0, o) for o in out))]
    if divisor_override:
        return summed / np.array(divisor_override, x.dtype)
    div = np.ones((), np.int64)
    for i in range(n):  # torch: a window is clipped to input + padding; without count_include_pad, to the input
        start = np.arange(out[i]) * s[i] - p[i]
        end = np.minimum(start + k[i], spatial[i] + p[i])
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, spatial[i])
        div = np.multiply.outer(div, end - start)
    return summed / div.astype(x.dtype)


def _avg_poolnd(n: int, fn: str, input: ArrayLike, kernel_size: _Size, stride: _Size | None, padding: _Size,
                ceil_mode: bool, count_include_pad: bool, divisor_override: int | None) -> jax.Array:
    x, lead = _as_batched(input, n, fn)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{fn}: expected a floating-point input, got dtype {x.dtype}")
    k = _ntuple(kernel_size, n, "kernel_size", fn)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        _ntuple(stride, n, "stride", fn)
    p = _ntuple(padding, n, "padding", fn)
    if min(k) <= 0 or min(s) <= 0:
        raise ValueError(f"{fn}: kernel_size and stride must be positive, got kernel_size={k}, stride={s}")
    if min(p) < 0 or any(p[i] > k[i] // 2 for i in range(n)):
        raise ValueError(f"{fn}: pad should be smaller than or equal to half of kernel size, but got "
                         f"padding={p}, kernel_size={k}")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{fn}: divisor must be not zero")
    spatial = x.shape[2:]
    out = tuple(_pool_out(spatial[i], k[i], s[i], p[i], 1, ceil_mode) for i in range(n))
    if min(out) < 1:
        raise ValueError(f"{fn}: given input size: ({'x'.join(map(str, x.shape[1:]))}). Calculated output size: "
                         f"({'x'.join(map(str, (x.shape[1], *out)))}). Output size is too small")
    res = _avg_pool(x, k, s, p, out, bool(count_include_pad), divisor_override or None)
    return _restore(res, lead, n)


def avg_pool1d(input: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> jax.Array:
    """1-D average pooling over ``(N, C, L)`` or ``(C, L)`` input (zero padding).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.avg_pool1d(jnp.array([[1.0, 3.0, 2.0, 0.0]]), 2).tolist()
    [[2.0, 1.0]]
    """
    return _avg_poolnd(1, "avg_pool1d", input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> jax.Array:
    """2-D average pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input (zero padding).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.avg_pool2d(jnp.ones((1, 3, 3)), 2, padding=1, count_include_pad=False).tolist()
    [[[1.0, 1.0], [1.0, 1.0]]]
    """
    return _avg_poolnd(2, "avg_pool2d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)


def avg_pool3d(input: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> jax.Array:
    """3-D average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input (zero padding).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.avg_pool3d(jnp.ones((1, 1, 4, 4, 4)), 2).shape
    (1, 1, 2, 2, 2)
    """
    return _avg_poolnd(3, "avg_pool3d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)


# --- adaptive pooling --------------------------------------------------------------------------------------


def _adaptive_sizes(x: jax.Array, n: int, output_size: Any, fn: str) -> tuple[int, ...]:
    if isinstance(output_size, (tuple, list)):
        if len(output_size) == 1:
            output_size = tuple(output_size) * n
        if len(output_size) != n:
            raise ValueError(f"{fn}: output_size must be a single int or a tuple of {n} ints, got {output_size!r}")
    else:
        output_size = (output_size,) * n
    out = tuple(x.shape[2 + i] if o is None else int(o) for i, o in enumerate(output_size))
    if min(out) < 0:
        raise ValueError(f"{fn}: elements of output_size must be greater than or equal to 0 but received {out}")
    return out


def _adaptive_bounds(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    o = np.arange(out)
    return (o * size) // out, -(-((o + 1) * size) // out)  # floor(o * L / out), ceil((o + 1) * L / out)


@functools.partial(jax.jit, static_argnames=("out",))
def _adaptive_avg_pool(x, out):
    for i, o in enumerate(out):  # a box average is separable: one pass per dim
        # gather each window (padded to the longest) and sum the real members: an averaging matrix would
        # multiply a NaN or inf by the zeros of every other window
        start, end = _adaptive_bounds(x.shape[2 + i], o)
        width = int((end - start).max()) if o else 0
        idx = start[:, None] + np.arange(width)
        inside = idx < end[:, None]
        vals = jnp.take(x, np.minimum(idx, x.shape[2 + i] - 1).reshape(-1), axis=2 + i)
        vals = vals.reshape(x.shape[:2 + i] + (o, width) + x.shape[3 + i:])
        mask = inside.reshape((o, width) + (1,) * (x.ndim - 3 - i))
        y = jnp.where(mask, vals, 0).sum(3 + i) / jnp.asarray((end - start).reshape((o,) + (1,) * (x.ndim - 3 - i)),
                                                               x.dtype)
        x = y
    return x


def _adaptive_avg_poolnd(n: int, fn: str, input: ArrayLike, output_size: Any) -> jax.Array:
    x, lead = _as_batched(input, n, fn)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{fn}: expected a floating-point input, got dtype {x.dtype}")
    out = _adaptive_sizes(x, n, output_size, fn)
    if 0 in out:
        return jnp.zeros(lead + (x.shape[1], *out), x.dtype)
    return _restore(_adaptive_avg_pool(x, out), lead, n)


def adaptive_avg_pool1d(input: ArrayLike, output_size: Any) -> jax.Array:
    """1-D adaptive average pooling to ``output_size`` over ``(N, C, L)`` or ``(C, L)`` input.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.adaptive_avg_pool1d(jnp.array([[1.0, 3.0, 2.0]]), 2).tolist()
    [[2.0, 2.5]]
    """
    return _adaptive_avg_poolnd(1, "adaptive_avg_pool1d", input, output_size)


def adaptive_avg_pool2d(input: ArrayLike, output_size: Any) -> jax.Array:
    """2-D adaptive average pooling to ``output_size`` (an int, a pair, ``None`` keeps that input size).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.adaptive_avg_pool2d(jnp.ones((2, 3, 7, 5)), (2, None)).shape
    (2, 3, 2, 5)
    """
    return _adaptive_avg_poolnd(2, "adaptive_avg_pool2d", input, output_size)


def adaptive_avg_pool3d(input: ArrayLike, output_size: Any) -> jax.Array:
    """3-D adaptive average pooling to ``output_size``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.adaptive_avg_pool3d(jnp.ones((1, 3, 5, 5)), 1).shape
    (1, 1, 1, 1)
    """
    return _adaptive_avg_poolnd(3, "adaptive_avg_pool3d", input, output_size)


@functools.partial(jax.jit, static_argnames=("out", "return_indices"))
def _adaptive_max_pool(x, out, return_indices):
    pos, ok = [], []
    for i, o in enumerate(out):
        start, end = _adaptive_bounds(x.shape[2 + i], o)
        taps = np.arange(int((end - start).max()))
        ok.append(taps < (end - start)[:, None])
        pos.append(np.where(ok[-1], start[:, None] + taps, 0))
    return _window_max(x, pos, ok, return_indices)


def _adaptive_max_poolnd(n: int, fn: str, input: ArrayLike, output_size: Any, return_indices: bool) -> Any:
    x, lead = _as_batched(input, n, fn)
    out = _adaptive_sizes(x, n, output_size, fn)
    if 0 in out:
        empty = jnp.zeros(lead + (x.shape[1], *out), x.dtype)
        return (empty, empty.astype(int)) if return_indices else empty
    return _restore(_adaptive_max_pool(x, out, bool(return_indices)), lead, n)


def adaptive_max_pool1d(input: ArrayLike, output_size: Any, return_indices: bool = False) -> Any:
    """1-D adaptive max pooling to ``output_size`` over ``(N, C, L)`` or ``(C, L)`` input.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.adaptive_max_pool1d(jnp.array([[1.0, 3.0, 2.0]]), 2, return_indices=True)[1].tolist()
    [[1, 1]]
    """
    return _adaptive_max_poolnd(1, "adaptive_max_pool1d", input, output_size, return_indices)


def adaptive_max_pool2d(input: ArrayLike, output_size: Any, return_indices: bool = False) -> Any:
    """2-D adaptive max pooling to ``output_size``; indices as :func:`max_pool2d`'s.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.adaptive_max_pool2d(jnp.ones((2, 3, 7, 5)), 3).shape
    (2, 3, 3, 3)
    """
    return _adaptive_max_poolnd(2, "adaptive_max_pool2d", input, output_size, return_indices)


def adaptive_max_pool3d(input: ArrayLike, output_size: Any, return_indices: bool = False) -> Any:
    """3-D adaptive max pooling to ``output_size``; indices as :func:`max_pool3d`'s.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.adaptive_max_pool3d(jnp.ones((1, 4, 4, 4)), 2).shape
    (1, 2, 2, 2)
    """
    return _adaptive_max_poolnd(3, "adaptive_max_pool3d", input, output_size, return_indices)


# --- power-average pooling ---------------------------------------------------------------------------------


def _lp_poolnd(n: int, fn: str, input: ArrayLike, norm_type: float, kernel_size: _Size, stride: _Size | None,
               ceil_mode: bool) -> jax.Array:
    x = jnp.asarray(input)
    k = _ntuple(kernel_size, n, "kernel_size", fn)
    if norm_type == float("inf"):
        return _max_poolnd(n, fn, jnp.abs(x), k, stride, 0, 1, ceil_mode, False)
    if norm_type == -float("inf"):
        return -_max_poolnd(n, fn, -jnp.abs(x), k, stride, 0, 1, ceil_mode, False)
    out = _avg_poolnd(n, fn, x ** norm_type, k, stride, 0, ceil_mode, True, None)
    out = jnp.sign(out) * jax.nn.relu(jnp.abs(out)) * math.prod(k)
    # torch: where the windowed sum is zero the gradient is zero (not NaN from pow's derivative at 0)
    nz = out != 0
    return jnp.where(nz, jnp.where(nz, out, 1) ** (1.0 / norm_type), out ** (1.0 / norm_type))


def lp_pool1d(input: ArrayLike, norm_type: float, kernel_size: int, stride: _Size | None = None,
              ceil_mode: bool = False) -> jax.Array:
    """1-D power-average pooling: ``(sum over the window of x ** p) ** (1 / p)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.lp_pool1d(jnp.array([[3.0, 4.0]]), 2, 2).tolist()
    [[5.0]]
    """
    return _lp_poolnd(1, "lp_pool1d", input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input: ArrayLike, norm_type: float, kernel_size: _Size, stride: _Size | None = None,
              ceil_mode: bool = False) -> jax.Array:
    """2-D power-average pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.lp_pool2d(jnp.ones((1, 4, 4)), 2, 2).tolist()
    [[[2.0, 2.0], [2.0, 2.0]]]
    """
    return _lp_poolnd(2, "lp_pool2d", input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input: ArrayLike, norm_type: float, kernel_size: _Size, stride: _Size | None = None,
              ceil_mode: bool = False) -> jax.Array:
    """3-D power-average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.lp_pool3d(jnp.ones((1, 2, 2, 2)), 1, 2).tolist()
    [[[[8.0]]]]
    """
    return _lp_poolnd(3, "lp_pool3d", input, norm_type, kernel_size, stride, ceil_mode)


# --- fractional max pooling --------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("k", "out", "return_indices"))
def _fractional_max_pool(x, samples, k, out, return_indices):
    n = len(k)
    pos, ok = [], []
    for i in range(n):  # torch's generate_intervals, in the input's precision
        size, o = x.shape[2 + i], out[i]
        u = samples[..., i].astype(x.dtype)[..., None]  # (B, C, 1)
        if o > 1:
            alpha = jnp.asarray((size - k[i]) / (o - 1), x.dtype)
            seq = ((jnp.arange(o, dtype=x.dtype) + u) * alpha).astype(jnp.int32) - (u * alpha).astype(jnp.int32)
        else:
            seq = jnp.zeros(u.shape, jnp.int32)
        seq = seq.at[..., -1].set(size - k[i])
        pos.append(seq[..., None] + jnp.arange(k[i]))
        ok.append(jnp.ones(pos[-1].shape, bool))
    return _window_max(x, pos, ok, return_indices)


def _fractional_max_poolnd(n: int, fn: str, input: ArrayLike, kernel_size: _Size, output_size: Any,
                           output_ratio: Any, return_indices: bool, _random_samples: ArrayLike | None) -> Any:
    if output_size is None and output_ratio is None:
        raise ValueError(f"{fn} requires specifying either an output_size or an output_ratio")
    x, lead = _as_batched(input, n, fn)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{fn}: expected a floating-point input, got dtype {x.dtype}")
    k = _ntuple(kernel_size, n, "kernel_size", fn)
    if output_size is None:
        ratio = tuple(output_ratio) * (n if len(tuple(output_ratio)) == 1 else 1) \
            if isinstance(output_ratio, (tuple, list)) else (output_ratio,) * n
        out = tuple(int(x.shape[2 + i] * ratio[i]) for i in range(n))
    else:
        out = _ntuple(output_size, n, "output_size", fn)
    names = ("time", "height", "width")[3 - n:]
    for i in range(n):
        if out[i] + k[i] - 1 > x.shape[2 + i] - (n == 3):  # torch's 3-d check is strict, its 2-d one is not
            raise ValueError(f"{fn}(): pool {names[i]} {k[i]} too large relative to input {names[i]} "
                             f"{x.shape[2 + i]} for output size {out[i]}")
    b, c = x.shape[:2]
    if _random_samples is None:
        samples = jax.random.uniform(random.next_key(fn), (b, c, n), x.dtype)
    else:
        samples = jnp.asarray(_random_samples)
        if samples.shape != (b, c, n):
            raise ValueError(f"{fn}: expected _random_samples of shape {(b, c, n)}, got {samples.shape}")
    return _restore(_fractional_max_pool(x, samples, k, out, bool(return_indices)), lead, n)


def fractional_max_pool2d(input: ArrayLike, kernel_size: _Size, output_size: Any = None, output_ratio: Any = None,
                          return_indices: bool = False, _random_samples: ArrayLike | None = None) -> Any:
    """2-D fractional max pooling (Graham): ``kernel_size`` windows at pseudo-random steps to ``output_size``.

    The step offsets come from ``_random_samples`` (shape ``(N, C, 2)``, in [0, 1), like torch's: ``[..., 0]``
    for the width, ``[..., 1]`` for the height) or else are drawn from ``jnn.random.next_key``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.fractional_max_pool2d(jnp.ones((1, 3, 9, 9)), 2, output_size=4).shape
    (1, 3, 4, 4)
    """
    if _random_samples is not None:  # torch's samples are (width, height): reorder to this code's dim order
        _random_samples = jnp.asarray(_random_samples)[..., ::-1]
    return _fractional_max_poolnd(2, "fractional_max_pool2d", input, kernel_size, output_size, output_ratio,
                                  return_indices, _random_samples)


def fractional_max_pool3d(input: ArrayLike, kernel_size: _Size, output_size: Any = None, output_ratio: Any = None,
                          return_indices: bool = False, _random_samples: ArrayLike | None = None) -> Any:
    """3-D fractional max pooling; ``_random_samples`` has shape ``(N, C, 3)`` (time, height, width).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.fractional_max_pool3d(jnp.ones((1, 1, 6, 6, 6)), 2, output_ratio=0.5).shape
    (1, 1, 3, 3, 3)
    """
    return _fractional_max_poolnd(3, "fractional_max_pool3d", input, kernel_size, output_size, output_ratio,
                                  return_indices, _random_samples)
