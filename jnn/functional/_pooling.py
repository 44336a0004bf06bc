"""Pooling."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jnn.functional._utils import _IntOrPair, _pair

__all__ = ["max_pool2d"]


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside input or left padding
        out -= 1
    return out


@functools.partial(jax.jit, static_argnames=("k", "s", "p", "d", "out", "return_indices"))
def _max_pool2d(x, k, s, p, d, out, return_indices):
    n, c, h, w = x.shape
    low = np.array(-np.inf if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.iinfo(x.dtype).min, x.dtype)
    if not return_indices and d == (1, 1):  # extra right/bottom padding gives ceil_mode's last window room
        hi = [max((out[i] - 1) * s[i] + k[i] - x.shape[2 + i] - p[i], 0) for i in range(2)]
        pads = ((0, 0), (0, 0), (p[0], hi[0]), (p[1], hi[1]))
        return lax.reduce_window(x, low, lax.max, (1, 1, *k), (1, 1, *s), pads)[..., :out[0], :out[1]]
    # Gather every window, (N, C, oh, ow, kH*kW) in torch's scan order, straight from the unpadded plane.
    kk = jnp.arange(k[0] * k[1])
    rows = jnp.arange(out[0])[:, None, None] * s[0] - p[0] + (kk // k[1]) * d[0]
    cols = jnp.arange(out[1])[None, :, None] * s[1] - p[1] + (kk % k[1]) * d[1]
    ok = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    cand = jnp.where(ok, x.reshape(n, c, h * w)[:, :, jnp.where(ok, rows * w + cols, 0)], low)
    nan = jnp.isnan(cand) if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.zeros(cand.shape, bool)
    first = jnp.argmax(ok & (cand == cand.max(-1, keepdims=True)), axis=-1)  # the first maximum wins ties
    last_nan = cand.shape[-1] - 1 - jnp.argmax(nan[..., ::-1], axis=-1)  # torch: a later NaN replaces
    sel = jnp.where(nan.any(-1), last_nan, first)
    if d == (1, 1):
        vals = _max_pool2d(x, k, s, p, d, out, False)
    else:  # JAX has no reduce_window-max VJP with dilation: take the chosen elements instead
        vals = jnp.take_along_axis(cand, sel[..., None], axis=-1)[..., 0]
    if not return_indices:
        return vals
    r = jnp.arange(out[0])[:, None] * s[0] - p[0] + (sel // k[1]) * d[0]
    return vals, r * w + jnp.arange(out[1]) * s[1] - p[1] + (sel % k[1]) * d[1]


def max_pool2d(input: ArrayLike, kernel_size: _IntOrPair, stride: _IntOrPair | None = None,
               padding: _IntOrPair = 0, dilation: _IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
    """2-D max pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input (padding is implicit ``-inf``).

    With ``return_indices=True`` also returns torch's indices: the flat position ``h * W + w`` of each
    maximum in its (unpadded) ``H x W`` plane; the first maximum wins ties and a NaN wins over numbers.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> y, i = F.max_pool2d(jnp.arange(16.0).reshape(1, 4, 4), 2, return_indices=True)
    >>> y.tolist(), i.tolist()
    ([[[5.0, 7.0], [13.0, 15.0]]], [[[5, 7], [13, 15]]])
    """
    x = jnp.asarray(input)
    if x.ndim not in (3, 4) or 0 in x.shape[-3:]:
        raise ValueError(f"max_pool2d: expected a 3D (C, H, W) or 4D (N, C, H, W) input with non-zero C, H, W "
                         f"(only the batch may be empty), got shape {x.shape}")
    k = _pair(kernel_size, "kernel_size", "max_pool2d")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        _pair(stride, "stride", "max_pool2d")
    p, d = _pair(padding, "padding", "max_pool2d"), _pair(dilation, "dilation", "max_pool2d")
    if min(k) <= 0 or min(s) <= 0 or min(d) <= 0:
        raise ValueError(f"max_pool2d: kernel_size, stride and dilation must be positive, got kernel_size={k}, "
                         f"stride={s}, dilation={d}")
    if min(p) < 0:
        raise ValueError(f"max_pool2d: pad must be non-negative, but got padding={p}")
    for i in range(2):
        if p[i] > (d[i] * (k[i] - 1) + 1) // 2:
            raise ValueError(f"max_pool2d: pad should be at most half of effective kernel size, but got "
                             f"pad={p[i]}, kernel_size={k[i]} and dilation={d[i]}")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"max_pool2d: pad should be smaller than or equal to half of kernel size, but got "
                         f"padding={p}, kernel_size={k}")
    c, h, w = x.shape[-3:]
    out = (_pool_out(h, k[0], s[0], p[0], d[0], ceil_mode), _pool_out(w, k[1], s[1], p[1], d[1], ceil_mode))
    if min(out) < 1:
        raise ValueError(f"max_pool2d: given input size: ({c}x{h}x{w}). Calculated output size: "
                         f"({c}x{out[0]}x{out[1]}). Output size is too small")
    res = _max_pool2d(x.reshape((-1, c, h, w)), k, s, p, d, out, bool(return_indices))
    return jax.tree.map(lambda a: a.reshape(x.shape[:-2] + a.shape[-2:]), res)
