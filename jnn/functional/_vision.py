"""Resampling and rearranging images: interpolate, pixel_shuffle, channel_shuffle, affine_grid, grid_sample."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jnn.functional._pooling import adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pixel_shuffle", "pixel_unshuffle",
           "channel_shuffle", "affine_grid", "grid_sample"]

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_RANK = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
_f32 = np.float32


def _input_scale(size: int, out: int, scale: float | None) -> np.float32:
    """torch's compute_scales_value: ``1 / scale_factor`` when one was given, else ``in / out`` (float32)."""
    return _f32(1.0 / scale) if scale is not None and scale > 0 else _f32(size) / _f32(out)


def _nearest_index(size: int, out: int, scale: float | None, exact: bool, shortcut: bool) -> np.ndarray:
    o = np.arange(out)
    # torch's 2-d nearest kernel (only it) skips the scale for same-size and exact 2x outputs
    if shortcut and out == size:
        return o
    if shortcut and out == 2 * size:
        return o >> 1
    sc = _input_scale(size, out, scale)
    src = _f32((o + 0.5) * np.float64(sc)) if exact else o.astype(_f32) * sc
    return np.minimum(np.floor(src).astype(np.int64), size - 1)


def _source_coord(size: int, out: int, scale: float | None, align_corners: bool, cubic: bool) -> np.ndarray:
    """torch's area_pixel_compute_source_index, in float32 like its CPU kernels."""
    o = np.arange(out)
    if align_corners:
        sc = _f32(size - 1) / _f32(out - 1) if out > 1 else _f32(0)
        return o.astype(_f32) * sc
    src = _f32(np.float64(_input_scale(size, out, scale)) * (o + 0.5) - 0.5)
    return src if cubic else np.maximum(src, _f32(0))


def _taps(size: int, out: int, scale: float | None, mode: str, align_corners: bool, dims: int) -> list:
    """``[(indices, weights), ...]`` per tap for one spatial dim: output[o] = sum_t w_t[o] * input[i_t[o]]."""
    if mode in ("nearest", "nearest-exact"):
        exact = mode == "nearest-exact"
        return [(_nearest_index(size, out, scale, exact, shortcut=not exact and dims == 2), None)]
    if mode != "bicubic" and out == size:  # torch's linear kernels keep a same-size dim as is, whatever the scale
        scale = None
    src = _source_coord(size, out, scale, align_corners, mode == "bicubic")
    if mode == "bicubic":
        i0 = np.floor(src).astype(np.int64)
        t = (src - i0.astype(_f32)).astype(_f32)
        a = _f32(-0.75)

        def near(v):  # cubic_convolution1, |v| <= 1
            return ((a + 2) * v - (a + 3)) * v * v + 1

        def far(v):  # cubic_convolution2, 1 < |v| < 2
            return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a

        one = _f32(1)
        weights = [far(t + one), near(t), near(one - t), far(one - t + one)]
        return [(np.clip(i0 - 1 + j, 0, size - 1), weights[j].astype(_f32)) for j in range(4)]
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    lam = np.clip(src - i0.astype(_f32), 0, 1).astype(_f32)
    return [(i0, (_f32(1) - lam).astype(_f32)), (np.minimum(i0 + 1, size - 1), lam)]


def _aa_filter(x: np.ndarray, mode: str) -> np.ndarray:
    """torch's antialiasing filters: the triangle (bilinear), Keys' cubic with a = -0.5 as in PIL (bicubic)."""
    x = np.abs(x)
    if mode == "bilinear":
        return np.where(x < 1, _f32(1) - x, _f32(0)).astype(_f32)
    a = _f32(-0.5)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1, near, np.where(x < 2, far, _f32(0))).astype(_f32)


def _aa_taps(size: int, out: int, scale: float | None, mode: str, align_corners: bool) -> list:
    """torch's antialiased taps for one spatial dim (its CPU kernel's _compute_weights_aa, in float32): when
    shrinking, the filter is widened by the scale, so every input pixel contributes."""
    if align_corners:
        sc = _f32(size - 1) / _f32(out - 1) if out > 1 else _f32(0)
    else:
        sc = _input_scale(size, out, scale)
    half = _f32(2 if mode == "bilinear" else 4) * _f32(0.5)
    support = half * sc if sc >= 1 else half
    invscale = _f32(1) / sc if sc >= 1 else _f32(1)
    width = int(math.ceil(support)) * 2 + 1
    center = sc * (np.arange(out).astype(_f32) + _f32(0.5))
    xmin = np.maximum((center - support + _f32(0.5)).astype(np.int64), 0)
    xsize = np.minimum((center + support + _f32(0.5)).astype(np.int64), size) - xmin
    j = np.arange(width)
    w = _aa_filter(((j[None, :] + xmin[:, None]).astype(_f32) - center[:, None] + _f32(0.5)) * invscale, mode)
    w = np.where(j[None, :] < xsize[:, None], w, _f32(0))
    total = w.sum(axis=1, dtype=_f32, keepdims=True)
    w = np.where(total != 0, w / np.where(total != 0, total, _f32(1)), w).astype(_f32)
    return [(np.clip(xmin + t, 0, size - 1), w[:, t]) for t in range(width)]


def _resample(x: jax.Array, sizes: Sequence[int], scales: Sequence[float | None], mode: str,
              align_corners: bool, antialias: bool = False) -> jax.Array:
    # every mode but area is separable: one spatial dim at a time (antialiased: the last first, as torch does)
    for i in reversed(range(len(sizes))) if antialias else range(len(sizes)):
        out, axis = sizes[i], 2 + i
        if antialias:
            taps = _aa_taps(x.shape[axis], out, scales[i], mode, align_corners)
        else:
            taps = _taps(x.shape[axis], out, scales[i], mode, align_corners, len(sizes))
        if taps[0][1] is None:
            x = jnp.take(x, taps[0][0], axis=axis)
            continue
        shape = [1] * x.ndim
        shape[axis] = out
        y = None
        for idx, w in taps:
            term = jnp.take(x, idx, axis=axis) * jnp.asarray(w.reshape(shape), x.dtype)
            y = term if y is None else y + term
        x = y
    return x


def interpolate(input: ArrayLike, size: int | Sequence[int] | None = None,
                scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> jax.Array:
    """Resample ``(N, C, *spatial)`` input to ``size`` or by ``scale_factor``, like ``torch.nn.functional.interpolate``.

    Modes: ``nearest``, ``nearest-exact`` (1-3 spatial dims), ``linear`` (3D input), ``bilinear``/``bicubic``
    (4D), ``trilinear`` (5D), ``area`` (adaptive average pooling). Source coordinates are computed in
    float32 as torch's CPU kernels do. ``antialias=True`` (bilinear and bicubic) widens the filter when
    shrinking, as torch's (and PIL's) antialiasing does.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.interpolate(jnp.array([[[1.0, 2.0]]]), scale_factor=2, mode="linear").tolist()
    [[[1.0, 1.25, 1.75, 2.0]]]
    """
    x = jnp.asarray(input)
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: unknown mode {mode!r} (expected one of {', '.join(_MODES)})")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    if x.ndim not in (3, 4, 5):
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {x.ndim}D) for the "
                                  f"modes: nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact "
                                  f"(got {mode})")
    if mode in _RANK and x.ndim != _RANK[mode]:
        raise NotImplementedError(f"Got {x.ndim}D input, but {mode} mode needs {_RANK[mode]}D input")
    dim = x.ndim - 2
    scales: list[float | None] = [None] * dim
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input "
                                 f"with spatial dimensions of {list(x.shape[2:])} and output size of {size}. Please "
                                 "provide input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                                 "(o1, o2, ...,oK) format.")
            out = [int(s) for s in size]
        else:
            out = [int(size)] * dim
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got "
                                 f"input with spatial dimensions of {list(x.shape[2:])} and scale_factor of shape "
                                 f"{scale_factor}. Please provide input tensor in (N, C, d1, d2, ...,dK) format "
                                 "and scale_factor in (s1, s2, ...,sK) format.")
            factors = [float(s) for s in scale_factor]
        else:
            factors = [float(scale_factor)] * dim
        out = [int(math.floor(x.shape[2 + i] * factors[i])) for i in range(dim)]
        if not (recompute_scale_factor or mode == "area"):  # torch passes the factors on to its kernels
            scales = factors
    else:
        raise ValueError("either size or scale_factor should be defined")
    if antialias and (mode not in ("bilinear", "bicubic") or x.ndim != 4):
        raise ValueError("Anti-alias option is restricted to bilinear and bicubic modes and requires a 4-D "
                         "tensor as input")
    if (min(out) <= 0 and mode != "area") or 0 in x.shape[1:]:
        raise ValueError(f"interpolate: input and output sizes should be greater than 0, but got input "
                         f"{tuple(x.shape[2:])} and output {tuple(out)}")
    if mode == "area":
        return (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[dim - 1](x, out)
    return _resample(x, out, scales, mode, bool(align_corners), antialias)


def upsample(input: ArrayLike, size: int | Sequence[int] | None = None,
             scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
             align_corners: bool | None = None) -> jax.Array:
    """Deprecated alias of :func:`interpolate` (warns, like torch).

    >>> import warnings, jnn.functional as F, jax.numpy as jnp
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     F.upsample(jnp.ones((1, 1, 2, 2)), scale_factor=2).shape
    (1, 1, 4, 4)
    """
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: ArrayLike, size: int | Sequence[int] | None = None,
                     scale_factor: float | Sequence[float] | None = None) -> jax.Array:
    """Deprecated: ``interpolate(input, size, scale_factor, mode="nearest")`` (warns, like torch).

    >>> import warnings, jnn.functional as F, jax.numpy as jnp
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     F.upsample_nearest(jnp.ones((1, 1, 2, 2)), 3).shape
    (1, 1, 3, 3)
    """
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: ArrayLike, size: int | Sequence[int] | None = None,
                      scale_factor: float | Sequence[float] | None = None) -> jax.Array:
    """Deprecated: ``interpolate(..., mode="bilinear", align_corners=True)`` (warns, like torch).

    >>> import warnings, jnn.functional as F, jax.numpy as jnp
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     F.upsample_bilinear(jnp.ones((1, 1, 2, 2)), scale_factor=2).shape
    (1, 1, 4, 4)
    """
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _check_factor(name: str, factor: int, what: str) -> int:
    if int(factor) <= 0:
        raise ValueError(f"{name} expects a positive {what}, but got {factor}")
    return int(factor)


def pixel_shuffle(input: ArrayLike, upscale_factor: int) -> jax.Array:
    """``(*, C * r**2, H, W) -> (*, C, H * r, W * r)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.pixel_shuffle(jnp.ones((1, 8, 2, 3)), 2).shape
    (1, 2, 4, 6)
    """
    x = jnp.asarray(input)
    r = _check_factor("pixel_shuffle", upscale_factor, "upscale_factor")
    if x.ndim < 3:
        raise ValueError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                         f"{x.ndim} dimension(s)")
    *lead, c, h, w = x.shape
    if c % (r * r):
        raise ValueError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                         f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    n = len(lead)
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.transpose(*range(n + 1), n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: ArrayLike, downscale_factor: int) -> jax.Array:
    """``(*, C, H * r, W * r) -> (*, C * r**2, H, W)``, the inverse of :func:`pixel_shuffle`.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.pixel_unshuffle(jnp.ones((1, 2, 4, 6)), 2).shape
    (1, 8, 2, 3)
    """
    x = jnp.asarray(input)
    r = _check_factor("pixel_unshuffle", downscale_factor, "downscale_factor")
    if x.ndim < 3:
        raise ValueError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
                         f"{x.ndim} dimension(s)")
    *lead, c, h, w = x.shape
    for name, v, i in (("height", h, -2), ("width", w, -1)):
        if v % r:
            raise ValueError(f"pixel_unshuffle expects {name} to be divisible by downscale_factor, but "
                             f"input.size({i})={v} is not divisible by {r}")
    n = len(lead)
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    y = y.transpose(*range(n + 1), n + 2, n + 4, n + 1, n + 3)
    return y.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input: ArrayLike, groups: int) -> jax.Array:
    """Split the channels (dim 1) of ``(N, C, *)`` input into ``groups`` and interleave them.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.channel_shuffle(jnp.arange(4.0).reshape(1, 4, 1), 2)[0, :, 0].tolist()
    [0.0, 2.0, 1.0, 3.0]
    """
    x = jnp.asarray(input)
    if x.ndim <= 2:
        raise ValueError(f"channel_shuffle expects input with > 2 dims, but got input with sizes {list(x.shape)}")
    if int(groups) <= 0:
        raise ValueError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    g, c = int(groups), x.shape[1]
    if c % g:
        raise ValueError(f"Number of channels must be divisible by groups. Got {c} channels and {g} groups.")
    y = x.reshape(x.shape[0], g, c // g, *x.shape[2:])
    return jnp.swapaxes(y, 1, 2).reshape(x.shape)


_ALIGN_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. Please "
                  "specify align_corners=True if the old behavior is desired. See the documentation of grid_sample "
                  "for details.")


def _linspace_from_neg_one(n: int, align_corners: bool, dtype) -> jax.Array:
    if n <= 1:
        return jnp.zeros((max(n, 0),), dtype)
    r = jnp.linspace(-1.0, 1.0, n, dtype=dtype)
    return r if align_corners else r * jnp.asarray((n - 1) / n, dtype)


def affine_grid(theta: ArrayLike, size: Sequence[int], align_corners: bool | None = None) -> jax.Array:
    """Sampling grid for :func:`grid_sample` from a batch of affine matrices, like ``torch.nn.functional.affine_grid``.

    ``theta`` is ``(N, 2, 3)`` for ``size=(N, C, H, W)`` (grid ``(N, H, W, 2)``) or ``(N, 3, 4)`` for
    ``size=(N, C, D, H, W)`` (grid ``(N, D, H, W, 3)``). ``align_corners=None`` means False, with torch's warning.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.affine_grid(jnp.array([[[1.0, 0, 0], [0, 1, 0]]]), (1, 1, 2, 2), align_corners=True)[0, 0].tolist()
    [[-1.0, -1.0], [1.0, -1.0]]
    """
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    t = jnp.asarray(theta)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        raise ValueError(f"Expected theta to have floating point type, but got {t.dtype}")
    size = tuple(int(v) for v in size)
    if len(size) == 4:
        if t.ndim != 3 or t.shape[-2:] != (2, 3):
            raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {size}. Got "
                             f"{tuple(t.shape)}.")
        spatial = size[-2:]
    elif len(size) == 5:
        if t.ndim != 3 or t.shape[-2:] != (3, 4):
            raise ValueError(f"Expected a batch of 3D affine matrices of shape Nx3x4 for size {size}. Got "
                             f"{tuple(t.shape)}.")
        spatial = size[-3:]
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation "
                      "of affine_grid for details.", stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    if t.shape[0] != size[0]:
        raise ValueError(f"affine_grid: theta has batch size {t.shape[0]} but size asks for {size[0]}")
    # base grid [..., (x, y[, z], 1)] with x along the last spatial dim
    axes = [_linspace_from_neg_one(n, bool(align_corners), t.dtype) for n in spatial]
    mesh = jnp.meshgrid(*axes, indexing="ij")  # one array per spatial dim, in (D,) H, W order
    base = jnp.stack([*mesh[::-1], jnp.ones(spatial, t.dtype)], axis=-1)
    grid = jnp.einsum("...k,njk->n...j", base, t, precision=jax.lax.Precision.HIGHEST)
    return grid.astype(t.dtype)


def _where_clip(c: jax.Array, size: int) -> jax.Array:
    # torch's clip_coordinates: gradient 0 on and beyond either bound
    hi = jnp.asarray(size - 1, c.dtype)
    return jnp.where(c <= 0, jnp.zeros((), c.dtype), jnp.where(c >= hi, hi, c))


def _reflect(c: jax.Array, twice_low: int, twice_high: int) -> jax.Array:
    if twice_low == twice_high:
        return jnp.zeros_like(c)
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    c = jnp.where(c < lo, lo - c, c - lo)
    extra = jnp.fmod(c, span)
    flips = jnp.floor(jax.lax.stop_gradient(c) / span)
    return jnp.where(jnp.fmod(flips, 2) == 0, extra + lo, span - extra + lo)


def _pad_coord(c: jax.Array, size: int, padding_mode: str, align_corners: bool) -> jax.Array:
    if padding_mode == "border":
        return _where_clip(c, size)
    if padding_mode == "reflection":
        c = _reflect(c, 0, 2 * (size - 1)) if align_corners else _reflect(c, -1, 2 * size - 1)
        return _where_clip(c, size)
    return c


def _gather(x: jax.Array, idx: list, valid: jax.Array | None) -> jax.Array:
    """``x[n, :, idx_0, idx_1, ...]`` for (N, *O) integer index arrays; zero where not ``valid``."""
    n, c, *spatial = x.shape
    flat = jnp.zeros_like(idx[0])
    for i, size in zip(idx, spatial, strict=True):
        flat = flat * size + jnp.clip(i, 0, size - 1)
    out_shape = flat.shape[1:]
    m = math.prod(out_shape)
    flat = flat.reshape(n, 1, m)
    v = jnp.take_along_axis(x.reshape(n, c, math.prod(spatial)), jnp.broadcast_to(flat, (n, c, m)), axis=2)
    v = v.reshape(n, c, *out_shape)
    if valid is not None:
        v = jnp.where(valid[:, None], v, jnp.zeros((), v.dtype))
    return v


def _in_bounds(idx: list, spatial: Sequence[int]) -> jax.Array:
    ok = None
    for i, size in zip(idx, spatial, strict=True):
        k = (i >= 0) & (i < size)
        ok = k if ok is None else ok & k
    return ok


def _cubic_coeffs(t: jax.Array) -> list:
    a = -0.75

    def near(v):
        return ((a + 2) * v - (a + 3)) * v * v + 1

    def far(v):
        return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample(input: ArrayLike, grid: ArrayLike, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> jax.Array:
    """Sample ``input`` at the normalised ``grid`` locations, like ``torch.nn.functional.grid_sample``.

    ``input`` ``(N, C, H, W)`` with ``grid`` ``(N, Ho, Wo, 2)``, or ``(N, C, D, H, W)`` with ``(N, Do, Ho, Wo, 3)``;
    ``grid[..., 0]`` is x (width), ``grid[..., 1]`` is y (height)[, ``grid[..., 2]`` is z (depth)], in [-1, 1].
    Modes ``bilinear`` (trilinear for 5-D), ``nearest`` (round half to even) and ``bicubic`` (4-D only);
    padding ``zeros``, ``border``, ``reflection``. ``align_corners=None`` means False, with torch's warning.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> x = jnp.arange(4.0).reshape(1, 1, 2, 2)
    >>> F.grid_sample(x, jnp.zeros((1, 1, 1, 2)), align_corners=True).tolist()
    [[[[1.5]]]]
    """
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', but "
                         f"got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    x, g = jnp.asarray(input), jnp.asarray(grid)
    if x.dtype != g.dtype:
        raise ValueError(f"grid_sampler(): expected input and grid to have same dtype, but input has {x.dtype} and "
                         f"grid has {g.dtype}")
    if x.ndim == 0 or g.ndim == 0:
        raise ValueError(f"grid_sampler(): expected 4D or 5D input and grid, but got input with sizes "
                         f"{list(x.shape)} and grid with sizes {list(g.shape)}")
    if x.shape[0] != g.shape[0]:
        raise ValueError(f"grid_sampler(): expected grid and input to have same batch size, but got input with sizes "
                         f"{list(x.shape)} and grid with sizes {list(g.shape)}")
    d = x.ndim - 2
    if g.shape[-1] != d:
        raise ValueError(f"grid_sampler(): expected grid to have size {d} in last dimension, but got grid with sizes "
                         f"{list(g.shape)}")
    for i in range(2, x.ndim):
        if x.shape[i] <= 0:
            raise ValueError(f"grid_sampler(): expected input to have non-empty spatial dimensions, but input has "
                             f"sizes {list(x.shape)} with dimension {i} being empty")
    if mode == "bicubic" and d != 2:
        raise ValueError("grid_sampler(): bicubic interpolation only supports 4D input")
    if x.ndim not in (4, 5) or g.ndim != x.ndim:
        raise ValueError(f"grid_sampler(): expected {4 if x.ndim == 4 else 5}D input and grid with same number of "
                         f"dimensions, but got input with sizes {list(x.shape)} and grid with sizes {list(g.shape)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"grid_sample: expected floating point input and grid, but got {x.dtype}")
    spatial = x.shape[2:]
    ac = bool(align_corners)
    # coordinate along spatial axis k (0 = first spatial dim) is grid[..., d - 1 - k]
    coords = []
    for k, size in enumerate(spatial):
        c = g[..., d - 1 - k]
        coords.append(((c + 1) / 2) * (size - 1) if ac else ((c + 1) * size - 1) / 2)
    if mode == "bicubic":
        bases = [jnp.floor(jax.lax.stop_gradient(c)) for c in coords]
        ws = [_cubic_coeffs(c - b) for c, b in zip(coords, bases, strict=True)]
        out = None
        for iy in range(4):
            for ix in range(4):
                taps = []
                for k, size in enumerate(spatial):
                    j = iy if k == 0 else ix
                    tap = _pad_coord(bases[k] - 1 + j, size, padding_mode, ac)
                    taps.append(tap.astype(jnp.int32))
                valid = _in_bounds(taps, spatial) if padding_mode == "zeros" else None
                w = ws[1][ix] * ws[0][iy]
                term = _gather(x, taps, valid) * w[:, None]
                out = term if out is None else out + term
        return out
    coords = [_pad_coord(c, size, padding_mode, ac) for c, size in zip(coords, spatial, strict=True)]
    if mode == "nearest":
        idx = [jnp.round(jax.lax.stop_gradient(c)).astype(jnp.int32) for c in coords]
        return _gather(x, idx, _in_bounds(idx, spatial))
    lows = [jnp.floor(jax.lax.stop_gradient(c)) for c in coords]
    out = None
    for corner in np.ndindex(*([2] * d)):
        w = None
        for k in reversed(range(d)):  # weights multiplied x first, as torch does
            lo, c = lows[k], coords[k]
            wk = (c - lo) if corner[k] else (lo + 1 - c)
            w = wk if w is None else w * wk
        idx = [(lows[k] + corner[k]).astype(jnp.int32) for k in range(d)]
        term = _gather(x, idx, _in_bounds(idx, spatial)) * w[:, None]
        out = term if out is None else out + term
    return out
