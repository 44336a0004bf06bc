"""``torch.ops.torchvision``: torchvision's compiled operators, in JAX, with the meaning of its CPU kernels.

torchvision's Python functions (``torchvision.ops.nms``, ``roi_align``, ``roi_pool``, ``batched_nms``) call these;
ported by ``python -m jnn.port`` they run unchanged. ``nms`` keeps a number of boxes that depends on their values,
so it runs eagerly only; ``roi_align`` and ``roi_pool`` trace under ``jax.jit`` and differentiate.

>>> import jax, jax.numpy as jnp
>>> from jnn.ops.ops import torchvision as tv
>>> boxes = jnp.array([[0.0, 0.0, 4.0, 4.0], [0.5, 0.0, 4.0, 4.0], [8.0, 8.0, 9.0, 9.0]])
>>> tv.nms(boxes, jnp.array([0.5, 0.9, 0.5]), 0.7).tolist()
[1, 2]
>>> x = jnp.arange(16.0).reshape(1, 1, 4, 4)
>>> rois = jnp.array([[0.0, 0.0, 0.0, 2.0, 2.0]])
>>> jax.jit(tv.roi_align, static_argnums=(2, 3, 4, 5, 6))(x, rois, 1.0, 1, 1, 2, False).tolist()
[[[[5.0]]]]
>>> tv.roi_pool(x, rois, 1.0, 1, 1)[0].tolist()
[[[[10.0]]]]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jnn.ops._core import concrete, to_dtype

__all__ = ["nms", "roi_align", "roi_pool", "_cuda_version"]

_HIGHEST = jax.lax.Precision.HIGHEST


def _divide(x: jax.Array, n: int) -> jax.Array:
    """``x / n`` rounded as the kernels round it: XLA compiles a division by a constant as a multiplication by its
    reciprocal (``6 / 7`` then rounds up, and ``ceil(7 * (6 / 7))`` is 7), so ``n`` is kept out of its sight."""
    return x / jax.lax.optimization_barrier(jnp.asarray(n, x.dtype))


def _cuda_version() -> int:
    """The CUDA version torchvision's kernels were built with: -1, none (torchvision's CPU-only build says the same).

    >>> _cuda_version()
    -1
    """
    return -1


def nms(dets: jax.Array, scores: jax.Array, iou_threshold: float) -> jax.Array:
    """Greedy non-maximum suppression: the indices of the boxes kept, highest score first.

    Boxes are ``(x1, y1, x2, y2)`` rows of ``dets`` ``(N, 4)``; visited by decreasing score (equal scores by index),
    each box not yet suppressed is kept and suppresses every later box whose IoU with it is above
    ``iou_threshold`` (an IoU that is 0/0, of two empty boxes, suppresses nothing). The result is an int64 (int32
    without ``jax_enable_x64``) array. Eager only: how many boxes are kept depends on their values.

    >>> import jax.numpy as jnp
    >>> nms(jnp.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 1.9]]), jnp.array([0.4, 0.6]), 0.5).tolist()
    [1]
    """
    concrete(dets, "ops.torchvision.nms", "It keeps a number of boxes that depends on their values; under jit "
             "keep a fixed number, e.g. ops.topk of the scores, and mask the rest.")
    concrete(scores, "ops.torchvision.nms", "")
    boxes, score = np.asarray(dets), np.asarray(scores)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"nms: boxes should be a 2-d array of shape (N, 4), got shape {boxes.shape}")
    if score.ndim != 1 or score.shape[0] != boxes.shape[0]:
        raise ValueError(f"nms: scores should be a 1-d array with one score per box ({boxes.shape[0]}), got shape "
                         f"{score.shape}")
    if boxes.dtype != score.dtype:
        raise ValueError(f"nms: boxes ({boxes.dtype}) and scores ({score.dtype}) should have the same dtype")
    index = to_dtype(np.int64)
    if boxes.shape[0] == 0:
        return jnp.zeros((0,), index)
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-score, kind="stable")
    suppressed = np.zeros(boxes.shape[0], bool)
    keep = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for position, i in enumerate(order):
            if suppressed[i]:
                continue
            keep.append(i)
            rest = order[position + 1:]
            w = np.maximum(np.zeros((), boxes.dtype), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
            h = np.maximum(np.zeros((), boxes.dtype), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
            inter = w * h
            suppressed[rest[inter / (areas[i] + areas[rest] - inter) > iou_threshold]] = True
    return jnp.asarray(np.asarray(keep, np.int64), index)


def _check_rois(input: jax.Array, rois: jax.Array, who: str) -> None:
    if jnp.ndim(input) != 4:
        raise ValueError(f"{who}: input should be (N, C, H, W), got shape {jnp.shape(input)}")
    if jnp.ndim(rois) != 2 or jnp.shape(rois)[1] != 5:
        raise ValueError(f"{who}: rois should be (K, 5) rows of (batch index, x1, y1, x2, y2), got shape "
                         f"{jnp.shape(rois)}")


def _sample_weights(start: jax.Array, bin_size: jax.Array, grid: jax.Array, pooled: int, size: int,
                    samples: int, exact: bool) -> jax.Array:
    """``(K, pooled, size)``: for each roi and bin, the sum over the bin's sample points of their bilinear weights
    on each of ``size`` rows (or columns), by the rules of torchvision's kernel (points beyond ``[-1, size]`` weigh
    nothing; below 0 they clamp to 0; at or past the last row they take it)."""
    dtype = start.dtype
    p = jnp.arange(pooled, dtype=dtype)[None, :, None]
    bin_start = start[:, None, None] + p * bin_size[:, None, None]
    step = bin_size / grid
    j = jnp.arange(samples)[None, None, :]
    if exact:
        i = j
    else:  # ``samples`` consecutive points from the first one at or above -1 hold every point that weighs anything
        first = jnp.floor((-1 - bin_start) / step[:, None, None] - 0.5)
        i = jnp.clip(first, 0, None).astype(jnp.int32) + j
    y = bin_start + (i.astype(dtype) + 0.5) * bin_size[:, None, None] / grid[:, None, None]
    valid = (y >= -1.0) & (y <= size) & (i < grid[:, None, None])
    y = jnp.maximum(y, 0)
    low = jnp.floor(y).astype(jnp.int32)
    last = low >= size - 1
    low = jnp.where(last, size - 1, low)
    high = jnp.where(last, size - 1, low + 1)
    frac = jnp.where(last, 0, y - low.astype(dtype))
    rows = jnp.arange(size)
    weights = ((1 - frac)[..., None] * (rows == low[..., None]) + frac[..., None] * (rows == high[..., None]))
    return jnp.sum(jnp.where(valid[..., None], weights, 0), axis=2)


def roi_align(input: jax.Array, rois: jax.Array, spatial_scale: float, pooled_height: int, pooled_width: int,
              sampling_ratio: int, aligned: bool) -> jax.Array:
    """RoIAlign (Mask R-CNN): ``(K, C, pooled_height, pooled_width)``, each bin the mean of bilinear samples of
    ``input`` ``(N, C, H, W)`` on a regular grid, for ``rois`` ``(K, 5)`` rows ``(batch index, x1, y1, x2, y2)``.

    Box coordinates are scaled by ``spatial_scale`` (and shifted by -0.5 when ``aligned``; otherwise boxes are at
    least 1 wide and high). Each bin has ``sampling_ratio`` x ``sampling_ratio`` samples, or when it is <= 0
    ``ceil(roi_height / pooled_height)`` x ``ceil(roi_width / pooled_width)`` of them, per roi. Samples beyond one
    pixel outside the map count as zeros, as in torchvision's C++ kernel (its pure-PyTorch ``_roi_align`` clamps
    them to the border instead). Traces under ``jax.jit``; the integer arguments are static.

    >>> import jax.numpy as jnp
    >>> x = jnp.arange(16.0).reshape(1, 1, 4, 4)
    >>> roi_align(x, jnp.array([[0.0, 1.0, 1.0, 3.0, 3.0]]), 1.0, 2, 2, -1, True)[0, 0].tolist()
    [[5.0, 6.0], [9.0, 10.0]]
    """
    _check_rois(input, rois, "roi_align")
    pooled_height, pooled_width, sampling_ratio = int(pooled_height), int(pooled_width), int(sampling_ratio)
    x = jnp.asarray(input)
    dtype = x.dtype
    rois = jnp.asarray(rois).astype(dtype)
    height, width = x.shape[2], x.shape[3]
    offset = 0.5 if aligned else 0.0
    start_w, start_h, end_w, end_h = (rois[:, c] * spatial_scale - offset for c in (1, 2, 3, 4))
    roi_w, roi_h = end_w - start_w, end_h - start_h
    if not aligned:
        roi_w, roi_h = jnp.maximum(roi_w, 1.0), jnp.maximum(roi_h, 1.0)
    bin_h, bin_w = _divide(roi_h, pooled_height), _divide(roi_w, pooled_width)
    exact = sampling_ratio > 0
    if exact:
        grid_h = grid_w = jnp.full(rois.shape[:1], sampling_ratio, dtype)
        samples_h = samples_w = sampling_ratio
    else:
        grid_h, grid_w = jnp.ceil(bin_h), jnp.ceil(bin_w)
        # a bin's samples are at most 1 apart (or it has one), so at most 2 * size + 3 land in [-1, size]
        samples_h, samples_w = 2 * height + 6, 2 * width + 6
    wy = _sample_weights(start_h, bin_h, grid_h, pooled_height, height, samples_h, exact)
    wx = _sample_weights(start_w, bin_w, grid_w, pooled_width, width, samples_w, exact)
    count = jnp.maximum(grid_h * grid_w, 1)
    features = x[rois[:, 0].astype(jnp.int32)]                                      # (K, C, H, W)
    rows = jnp.einsum("kph,kchw->kcpw", wy, features, precision=_HIGHEST)
    out = jnp.einsum("kcpw,kqw->kcpq", rows, wx, precision=_HIGHEST)
    return out / count[:, None, None, None]


def roi_pool(input: jax.Array, rois: jax.Array, spatial_scale: float, pooled_height: int,
             pooled_width: int) -> tuple[jax.Array, jax.Array]:
    """RoIPool (Fast R-CNN): ``(output, argmax)``, each ``(K, C, pooled_height, pooled_width)``: the maximum of
    ``input`` ``(N, C, H, W)`` over each bin of each roi (``(batch index, x1, y1, x2, y2)`` rows, coordinates
    scaled by ``spatial_scale`` and rounded, half away from zero), and its flat index ``h * W + w`` in the map (the
    first one in row-major order; an empty bin gives 0 and -1). Traces under ``jax.jit``.

    >>> import jax.numpy as jnp
    >>> out, where = roi_pool(jnp.arange(16.0).reshape(1, 1, 4, 4), jnp.array([[0.0, 0, 0, 3, 1]]), 1.0, 1, 2)
    >>> out[0, 0].tolist(), where[0, 0].tolist()
    ([[5.0, 7.0]], [[5, 7]])
    """
    _check_rois(input, rois, "roi_pool")
    pooled_height, pooled_width = int(pooled_height), int(pooled_width)
    x = jnp.asarray(input)
    height, width = x.shape[2], x.shape[3]
    rois = jnp.asarray(rois).astype(x.dtype)
    scaled = rois[:, 1:] * spatial_scale
    corners = (jnp.sign(scaled) * jnp.floor(jnp.abs(scaled) + 0.5)).astype(jnp.int32)  # std::round
    lowest = jnp.finfo(x.dtype).min

    def bins(start: jax.Array, end: jax.Array, pooled: int, size: int) -> tuple[jax.Array, jax.Array]:
        extent = jnp.maximum(end - start + 1, 1).astype(x.dtype)
        bin_size = _divide(extent, pooled)
        p = jnp.arange(pooled, dtype=x.dtype)
        lo = jnp.floor(p * bin_size).astype(jnp.int32) + start
        hi = jnp.ceil((p + 1) * bin_size).astype(jnp.int32) + start
        lo, hi = jnp.clip(lo, 0, size), jnp.clip(hi, 0, size)
        cells = jnp.arange(size)
        return (cells >= lo[:, None]) & (cells < hi[:, None]), hi <= lo

    def one(features: jax.Array, box: jax.Array) -> tuple[jax.Array, jax.Array]:
        rows, empty_h = bins(box[1], box[3], pooled_height, height)                # (PH, H)
        cols, empty_w = bins(box[0], box[2], pooled_width, width)                  # (PW, W)
        inside = rows[:, None, :, None] & cols[None, :, None, :]                   # (PH, PW, H, W)
        values = jnp.where(inside, features[:, None, None], -jnp.inf)             # (C, PH, PW, H, W)
        values = values.reshape(*values.shape[:3], height * width)
        best = jnp.max(values, axis=-1)
        where = jnp.argmax(values, axis=-1).astype(jnp.int32)
        empty = (empty_h[:, None] | empty_w[None, :])[None]
        never = empty | ~(best > lowest)
        return jnp.where(empty, 0, jnp.maximum(best, lowest)), jnp.where(never, -1, where)

    out, where = jax.lax.map(lambda args: one(*args), (x[rois[:, 0].astype(jnp.int32)], corners))
    return out.reshape(rois.shape[0], x.shape[1], pooled_height, pooled_width), where.astype(to_dtype(np.int64))
