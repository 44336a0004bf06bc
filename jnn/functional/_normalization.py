"""Normalisation."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

__all__ = [
    "batch_norm_with_stats", "batch_norm", "instance_norm_with_stats", "instance_norm", "layer_norm", "group_norm",
    "rms_norm", "local_response_norm", "normalize",
]


def _stats_dtype(dtype: jnp.dtype) -> jnp.dtype:
    return jnp.promote_types(dtype, jnp.float32)  # statistics in float32 at least (bfloat16/float16 inputs)


def _scale_shift(x: jax.Array, mean: jax.Array, inv_std: jax.Array, weight: jax.Array | None,
                 bias: jax.Array | None, shape: tuple[int, ...]) -> jax.Array:
    """``(x - mean) * inv_std * weight + bias`` in torch's CPU form, ``x * scale + (bias - mean * scale)``, so that
    non-finite weights give torch's NaN/inf pattern (``inf * x - inf * mean``)."""
    scale = inv_std if weight is None else inv_std * weight.astype(x.dtype).reshape(shape)
    shift = -mean * scale if bias is None else bias.astype(x.dtype).reshape(shape) - mean * scale
    return x * scale + shift


@functools.partial(jax.jit, static_argnames=("training", "axis_name"))
def _batch_norm(x, rm, rv, weight, bias, training, momentum, eps, axis_name=None):
    c, n = x.shape[1], x.shape[0] * math.prod(x.shape[2:])
    cdt = _stats_dtype(x.dtype)
    xc = x.astype(cdt)
    axes, shape = (0, *range(2, x.ndim)), (1, c) + (1,) * (x.ndim - 2)
    if training:
        mean = xc.mean(axes)
        if axis_name is not None:  # SyncBatchNorm: every shard holds the same number of values
            mean = lax.pmean(mean, axis_name)
        var = jnp.square(xc - mean.reshape(shape)).mean(axes)  # biased, used to normalise
        total = n
        if axis_name is not None:
            var = lax.pmean(var, axis_name)
            total = n * lax.psum(jnp.ones((), cdt), axis_name)
        if rm is not None and n > 0:  # torch leaves the statistics alone for an empty batch
            rm = ((1 - momentum) * rm.astype(cdt) + momentum * mean).astype(rm.dtype)
            rv = ((1 - momentum) * rv.astype(cdt) + momentum * var * (total / (total - 1))).astype(rv.dtype)
    else:
        mean, var = rm.astype(cdt).reshape(c), rv.astype(cdt).reshape(c)
    y = _scale_shift(xc, mean.reshape(shape), lax.rsqrt(var + eps).reshape(shape), weight, bias, shape)
    return y.astype(x.dtype), rm, rv


def batch_norm_with_stats(
    input: ArrayLike, running_mean: ArrayLike | None, running_var: ArrayLike | None,
    weight: ArrayLike | None = None, bias: ArrayLike | None = None, training: bool = False,
    momentum: float = 0.1, eps: float = 1e-5, *, axis_name: str | None = None,
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """:func:`batch_norm` that also returns the updated running statistics: ``(output, new_mean, new_var)``.

    In training the new statistics are ``(1 - momentum) * running + momentum * batch``, with the unbiased
    batch variance, exactly what torch writes into the buffers in place; otherwise (or when the running
    statistics are ``None``, or the batch is empty) they are returned unchanged.

    ``axis_name`` (jnn only, used by ``jnn.SyncBatchNorm``): in training, average the batch statistics over
    that named axis with ``jax.lax.pmean`` (``jax.vmap(..., axis_name=...)``, ``shard_map``, ``pmap``), so
    each shard normalises with the statistics of the whole, equally split, batch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> y, m, v = F.batch_norm_with_stats(jnp.array([[0.0], [2.0]]), jnp.zeros(1), jnp.ones(1), training=True)
    >>> [round(float(a), 4) for a in (*y.ravel(), *m, *v)]
    [-1.0, 1.0, 0.1, 1.1]
    """
    x = jnp.asarray(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, *) with at least 2 dims, got {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must either both be None or neither be None")
    c = x.shape[1]
    args = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    args = {k: None if a is None else jnp.asarray(a) for k, a in args.items()}
    for name, a in args.items():
        if a is not None and a.size != c:
            raise ValueError(f"batch_norm: {name} should contain {c} elements (one per channel, dim 1 of input "
                             f"shape {x.shape}) not {a.size}")
    if training and axis_name is None and x.shape[0] * math.prod(x.shape[2:]) == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean must be defined in evaluation mode (training=False); "
                         "pass training=True to normalise with batch statistics")
    return _batch_norm(x, *args.values(), bool(training), momentum, eps, axis_name if training else None)


def batch_norm(
    input: ArrayLike, running_mean: ArrayLike | None, running_var: ArrayLike | None,
    weight: ArrayLike | None = None, bias: ArrayLike | None = None, training: bool = False,
    momentum: float = 0.1, eps: float = 1e-5,
) -> jax.Array:
    """Batch normalisation over channel dim 1 of ``(N, C, *)`` input; returns the output only.

    Training normalises with the biased batch variance; evaluation uses the running statistics. As in torch, a
    training call updates the running statistics it is given when they are a module's buffers just read
    (``F.batch_norm(x, self.running_mean, self.running_var, ...)`` in a forward, as timm's norm layers do): the
    module gets the new ones, eagerly and in the copy a ``jax.jit``-ed function traces. Any other array cannot
    change (JAX arrays are immutable), which warns: use :func:`batch_norm_with_stats` for the new statistics.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.batch_norm(jnp.array([[1.0], [3.0]]), jnp.array([1.0]), jnp.array([4.0]), eps=0.0).ravel().tolist()
    [0.0, 1.0]
    """
    out, mean, var = batch_norm_with_stats(input, running_mean, running_var, weight, bias, training, momentum, eps)
    if training and running_mean is not None:
        _update_in_place("batch_norm", running_mean, running_var, mean, var)
    return out


def _update_in_place(who: str, running_mean: ArrayLike, running_var: ArrayLike, mean: jax.Array,
                     var: jax.Array) -> None:
    """torch's in-place update of the running statistics passed to ``who``: where they are buffers a module just
    handed out, those buffers get the new values (the write-back ``jnn.init`` uses); otherwise a warning."""
    from jnn.modules._pytree import write_back

    if not all([write_back(running_mean, mean), write_back(running_var, var)]):
        warnings.warn(f"jnn.functional.{who} cannot update running_mean/running_var in place: they are not buffers "
                      f"just read from a module (JAX arrays are immutable), so they are left unchanged. Use "
                      f"jnn.functional.{who}_with_stats(...), which returns the updated statistics.", stacklevel=3)


def _check_per_channel(name: str, fn: str, a: jax.Array | None, c: int, shape: tuple) -> jax.Array | None:
    if a is None:
        return None
    a = jnp.asarray(a)
    if a.size != c:
        raise ValueError(f"{fn}: {name} should contain {c} elements (one per channel, dim 1 of input shape {shape}) "
                         f"not {a.size}")
    return a


@functools.partial(jax.jit, static_argnames=("use_input_stats",))
def _instance_norm(x, rm, rv, weight, bias, use_input_stats, momentum, eps):
    c, s = x.shape[1], math.prod(x.shape[2:])
    cdt = _stats_dtype(x.dtype)
    xc = x.astype(cdt)
    spatial, shape = tuple(range(2, x.ndim)), (1, c) + (1,) * (x.ndim - 2)
    if use_input_stats:
        mean = xc.mean(spatial, keepdims=True)
        var = jnp.square(xc - mean).mean(spatial, keepdims=True)
        if rm is not None:  # torch: the mean over the batch of each instance's statistics (NaN for an empty batch)
            inst_mean, inst_var = mean.reshape(x.shape[0], c), var.reshape(x.shape[0], c) * (s / max(s - 1, 1))
            rm = ((1 - momentum) * rm.astype(cdt) + momentum * inst_mean.mean(0)).astype(rm.dtype)
            rv = ((1 - momentum) * rv.astype(cdt) + momentum * inst_var.mean(0)).astype(rv.dtype)
    else:
        mean, var = rm.astype(cdt).reshape(shape), rv.astype(cdt).reshape(shape)
    y = _scale_shift(xc, mean, lax.rsqrt(var + eps), weight, bias, shape)
    return y.astype(x.dtype), rm, rv


def instance_norm_with_stats(
    input: ArrayLike, running_mean: ArrayLike | None = None, running_var: ArrayLike | None = None,
    weight: ArrayLike | None = None, bias: ArrayLike | None = None, use_input_stats: bool = True,
    momentum: float = 0.1, eps: float = 1e-5,
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """:func:`instance_norm` that also returns the updated running statistics: ``(output, new_mean, new_var)``.

    With ``use_input_stats`` and running statistics, the new ones are ``(1 - momentum) * running + momentum *
    s``, where ``s`` is the batch mean of each instance's mean (and unbiased variance), as torch updates them.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> y, m, v = F.instance_norm_with_stats(jnp.array([[[0.0, 2.0]]]), jnp.zeros(1), jnp.ones(1))
    >>> [round(float(a), 4) for a in (*y.ravel(), *m, *v)]
    [-1.0, 1.0, 0.1, 1.1]
    """
    x = jnp.asarray(input)
    if x.ndim < 2:
        raise ValueError(f"instance_norm: expected input of shape (N, C, *) with at least 2 dims, got {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("instance_norm: running_mean and running_var must either both be None or neither be None")
    if use_input_stats and math.prod(x.shape[2:]) == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {_size(x.shape)}")
    if not use_input_stats and running_mean is None:
        raise ValueError("Expected running_mean and running_var to be defined when use_input_stats is false")
    c = x.shape[1]
    args = [_check_per_channel(n, "instance_norm", a, c, x.shape) for n, a in
            (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias))]
    return _instance_norm(x, *args, bool(use_input_stats), momentum, eps)


def instance_norm(
    input: ArrayLike, running_mean: ArrayLike | None = None, running_var: ArrayLike | None = None,
    weight: ArrayLike | None = None, bias: ArrayLike | None = None, use_input_stats: bool = True,
    momentum: float = 0.1, eps: float = 1e-5,
) -> jax.Array:
    """Instance normalisation: each ``(n, c)`` slice of ``(N, C, *)`` input normalised over its spatial dims.

    Like :func:`batch_norm`, running statistics that are a module's buffers just read are updated as torch
    updates them in place (otherwise a warning: use :func:`instance_norm_with_stats` or ``jnn.InstanceNorm*d``).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.instance_norm(jnp.array([[[1.0, 3.0], [0.0, 4.0]]]), eps=0.0).tolist()
    [[[-1.0, 1.0], [-1.0, 1.0]]]
    """
    out, mean, var = instance_norm_with_stats(input, running_mean, running_var, weight, bias, use_input_stats,
                                              momentum, eps)
    if use_input_stats and running_mean is not None:
        _update_in_place("instance_norm", running_mean, running_var, mean, var)
    return out


def _size(shape: tuple) -> str:
    return f"torch.Size({list(shape)})"


def _normalized_shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int, np.integer)):
        return (int(normalized_shape),)
    return tuple(int(d) for d in normalized_shape)


def _check_normalized(fn: str, x: jax.Array, shape: tuple[int, ...], **params: jax.Array | None) -> None:
    k = len(shape)
    if k == 0:
        raise ValueError(f"{fn}: Expected normalized_shape to be at least 1-dimensional, i.e., containing at "
                         "least one element, but got normalized_shape = []")
    if x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                         f"{', '.join(map(str, shape))}], but got input of size{list(x.shape)}")
    for name, a in params.items():
        if a is not None and tuple(jnp.shape(a)) != shape:
            raise ValueError(f"{fn}: Expected {name} to be of same shape as normalized_shape, but got {name} of "
                             f"shape {list(jnp.shape(a))} and normalized_shape = {list(shape)}")


@functools.partial(jax.jit, static_argnames=("k",))
def _layer_norm(x, weight, bias, eps, k):
    cdt = _stats_dtype(x.dtype)
    xc = x.astype(cdt)
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = xc.mean(axes, keepdims=True)
    var = jnp.square(xc - mean).mean(axes, keepdims=True)
    y = (xc - mean) * lax.rsqrt(var + eps)
    if weight is not None:
        y = y * weight.astype(cdt)
    if bias is not None:
        y = y + bias.astype(cdt)
    return y.astype(x.dtype)


def layer_norm(
    input: ArrayLike, normalized_shape: int | Sequence[int], weight: ArrayLike | None = None,
    bias: ArrayLike | None = None, eps: float = 1e-5,
) -> jax.Array:
    """Normalise over the trailing ``normalized_shape`` dims (biased variance), then scale and shift.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.layer_norm(jnp.array([[1.0, 3.0]]), (2,), eps=0.0).tolist()
    [[-1.0, 1.0]]
    """
    x = jnp.asarray(input)
    shape = _normalized_shape(normalized_shape)
    _check_normalized("layer_norm", x, shape, weight=weight, bias=bias)
    weight = None if weight is None else jnp.asarray(weight)
    bias = None if bias is None else jnp.asarray(bias)
    return _layer_norm(x, weight, bias, eps, len(shape))


@functools.partial(jax.jit, static_argnames=("k",))
def _rms_norm(x, weight, eps, k):
    cdt = _stats_dtype(x.dtype)
    xc = x.astype(cdt)
    ms = jnp.square(xc).mean(tuple(range(x.ndim - k, x.ndim)), keepdims=True)
    y = xc * lax.rsqrt(ms + eps)
    if weight is not None:
        y = y * weight.astype(cdt)
    return y.astype(x.dtype)


def rms_norm(
    input: ArrayLike, normalized_shape: int | Sequence[int], weight: ArrayLike | None = None,
    eps: float | None = None,
) -> jax.Array:
    """Divide by the root mean square over the trailing ``normalized_shape`` dims, then scale by ``weight``.

    ``eps=None`` is the machine epsilon of the dtype the statistics are computed in (float32 for
    bfloat16/float16/float32 input), as in torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> [round(v, 4) for v in F.rms_norm(jnp.array([3.0, 4.0]), (2,), eps=0.0).tolist()]  # rms = sqrt(12.5)
    [0.8485, 1.1314]
    """
    x = jnp.asarray(input)
    shape = _normalized_shape(normalized_shape)
    _check_normalized("rms_norm", x, shape, weight=weight)
    if eps is None:
        eps = float(jnp.finfo(_stats_dtype(x.dtype)).eps)
    weight = None if weight is None else jnp.asarray(weight)
    return _rms_norm(x, weight, eps, len(shape))


@functools.partial(jax.jit, static_argnames=("num_groups",))
def _group_norm(x, num_groups, weight, bias, eps):
    n, c = x.shape[:2]
    cdt = _stats_dtype(x.dtype)
    xg = x.astype(cdt).reshape(n, num_groups, c // num_groups * math.prod(x.shape[2:]))
    mean = xg.mean(2, keepdims=True)
    var = jnp.square(xg - mean).mean(2, keepdims=True)
    shape = (1, c) + (1,) * (x.ndim - 2)
    per_channel = (n, c) + (1,) * (x.ndim - 2)
    mean = jnp.repeat(mean, c // num_groups, axis=1).reshape(per_channel)
    inv = jnp.repeat(lax.rsqrt(var + eps), c // num_groups, axis=1).reshape(per_channel)
    return _scale_shift(x.astype(cdt), mean, inv, weight, bias, shape).astype(x.dtype)


def group_norm(
    input: ArrayLike, num_groups: int, weight: ArrayLike | None = None, bias: ArrayLike | None = None,
    eps: float = 1e-5,
) -> jax.Array:
    """Normalise ``(N, C, *)`` input over each group of ``C // num_groups`` channels (and the spatial dims).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.group_norm(jnp.array([[[1.0], [3.0], [5.0], [7.0]]]), 2, eps=0.0).ravel().tolist()
    [-1.0, 1.0, -1.0, 1.0]
    """
    x = jnp.asarray(input)
    if x.ndim < 2:
        raise ValueError(f"Expected at least 2 dimensions for input tensor but received {x.ndim}")
    n, c = x.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                         f"shape {list(x.shape)} and num_groups={num_groups}")
    if n * c // num_groups * math.prod(x.shape[2:]) == 1:
        size = [n * c // num_groups, num_groups, *x.shape[2:]]
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {size}")
    weight, bias = (_check_per_channel(k, "group_norm", a, c, x.shape) for k, a in (("weight", weight),
                                                                                  ("bias", bias)))
    return _group_norm(x, int(num_groups), weight, bias, eps)


def local_response_norm(input: ArrayLike, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> jax.Array:
    """Divide each value by ``(k + alpha / size * sum of squares over `size` neighbouring channels) ** beta``.

    The window over channel dim 1 is zero-padded with ``size // 2`` channels before and ``(size - 1) // 2``
    after, as in torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.local_response_norm(jnp.ones((1, 3, 2)), 2, alpha=1.0, beta=1.0, k=0.0).tolist()
    [[[2.0, 2.0], [1.0, 1.0], [1.0, 1.0]]]
    """
    x = jnp.asarray(input)
    if x.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality                          input (got {x.ndim} "
                         "dimensions)")
    if x.size == 0:
        return x
    return _local_response_norm(x, int(size), alpha, beta, k)


@functools.partial(jax.jit, static_argnames=("size",))
def _local_response_norm(x, size, alpha, beta, k):
    cdt = _stats_dtype(x.dtype)
    sq = jnp.square(x.astype(cdt))
    pad = [(0, 0)] * x.ndim
    pad[1] = (size // 2, (size - 1) // 2)
    window = (1, size) + (1,) * (x.ndim - 2)
    summed = lax.reduce_window(jnp.pad(sq, pad), 0.0, lax.add, window, (1,) * x.ndim, "VALID")
    div = (summed * (alpha / size) + k) ** beta
    return (x.astype(cdt) / div).astype(x.dtype)


def normalize(input: ArrayLike, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: None = None) -> jax.Array:
    """``input / max(norm_p(input, dim), eps)``: unit ``p``-norm slices along ``dim``.

    ``out=`` cannot be written in place in JAX; passing one raises.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.normalize(jnp.array([[3.0, 4.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    if out is not None:
        raise TypeError("normalize: out= is not supported in jnn (JAX arrays are immutable); use the return value")
    x = jnp.asarray(input)
    if x.ndim == 0:
        dim = None
    elif not -x.ndim <= dim < x.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-x.ndim}, {x.ndim - 1}], but got "
                         f"{dim})")
    return x / jnp.maximum(_vector_norm(x, float(p), dim), eps)


def _vector_norm(x: jax.Array, p: float, dim: int | None) -> jax.Array:
    a = jnp.abs(x)
    if p == math.inf:
        return a.max(dim, keepdims=True, initial=0.0)
    if p == -math.inf:
        return a.min(dim, keepdims=True)
    if p == 0:
        return (a != 0).astype(x.dtype).sum(dim, keepdims=True)
    nonzero = a != 0  # torch's norm has a zero subgradient at zero entries; a**p there would give inf/NaN
    s = jnp.where(nonzero, jnp.where(nonzero, a, 1.0) ** p, 0.0).sum(dim, keepdims=True)
    positive = s != 0  # (a NaN sum stays NaN)
    # torch's norm has a zero subgradient at the zero vector; sqrt/pow at 0 would give NaN
    return jnp.where(positive, jnp.where(positive, s, 1.0) ** (1.0 / p), 0.0)
