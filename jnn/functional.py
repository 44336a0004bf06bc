"""Functional layer of jnn: ``torch.nn.functional`` on top of ``jax.nn`` / ``jax.lax`` / ``jax.numpy``.

Every function has PyTorch's name, argument names, argument order, defaults and semantics, so
``import jnn.functional as F`` replaces ``import torch.nn.functional as F``. Inputs may be JAX or NumPy
arrays; outputs are JAX arrays. Where JAX forces a difference it is small and documented:

- No in-place ops: ``inplace=True`` (``relu``, ``dropout``) is accepted and returns a new array, so use the
  result (``x = F.relu(x, inplace=True)``), as ``nn.ReLU(inplace=True)`` does.
- ``batch_norm`` cannot update the running statistics it is given; :func:`batch_norm_with_stats` returns them.
- ``dropout`` draws its key from :mod:`jnn.random` (or takes ``key=``); under ``jax.jit`` without a key or a
  ``jnn.random.fork`` context, or under ``jax.vmap`` without a per-example key, it raises
  :class:`jnn.random.MissingKeyError`.
- Integer outputs (``max_pool2d`` indices) are int32 unless ``jax_enable_x64`` is on; integer class targets
  may be int32 or int64 (or uint8, as in torch).
- Out-of-range class targets raise ``IndexError`` eagerly like torch; under ``jit`` the values cannot be
  inspected, so those losses come out NaN instead of silently wrong.
- ``cross_entropy`` raises for ``label_smoothing < 0`` (torch silently ignores it for class-index targets).
- ``max_pool2d``: where a window holds a NaN, values and indices match torch, but (without dilation) the
  gradient goes to the window's largest number rather than to the NaN, as JAX's max-pool VJP does.
- Errors raised by torch's C++ checks as ``RuntimeError`` are ``ValueError`` here (``TypeError``,
  ``IndexError`` and ``NotImplementedError`` where torch uses those), each naming the function.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from jnn import random as _jrandom

__all__ = [
    "relu", "sigmoid", "tanh", "softmax", "log_softmax", "linear", "pad", "conv2d", "dropout",
    "batch_norm", "batch_norm_with_stats", "max_pool2d", "nll_loss", "cross_entropy", "mse_loss",
]

_IntOrPair = int | Sequence[int]


def _pair(v: _IntOrPair, name: str, fn: str) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(2,) -> (2, 2)``, ``(2, 3) -> (2, 3)``; anything else is an error naming ``fn``."""
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            v = (v[0], v[0])
        if len(v) != 2:
            raise ValueError(f"{fn}: {name} must be a single int or a tuple of two ints, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _get_reduction(fn: str, size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    # torch's _Reduction.legacy_get_string: the deprecated flags, when given, override `reduction`.
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if (size_average and reduce) else "sum" if reduce else "none"
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
                      "instead.", stacklevel=3)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{fn}: {reduction!r} is not a valid value for reduction "
                         "(expected 'none', 'mean' or 'sum')")
    return reduction


def _reduce(loss: jax.Array, reduction: str, weight_sum_of: jax.Array | None = None) -> jax.Array:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if weight_sum_of is None:
        return loss.sum() / loss.size
    # torch: an all-ignored 'mean' is NaN (0 / 0) but its gradient is 0, not NaN
    total = weight_sum_of.sum()
    return loss.sum() / jnp.where(total == 0, 1, total) + jnp.where(total == 0, jnp.nan, 0.0)


# ----------------------------------------------------------------------------------------- activations
def relu(input: ArrayLike, inplace: bool = False) -> jax.Array:
    """Rectified linear unit, ``max(0, x)`` (gradient 0 at 0, as in torch).

    ``inplace`` is accepted for compatibility; JAX arrays are immutable, so a new array is returned.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.relu(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """
    return jax.nn.relu(jnp.asarray(input))


def _float(x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def sigmoid(input: ArrayLike) -> jax.Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``; integer input gives float32, like torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.sigmoid(jnp.array([0.0])).tolist()
    [0.5]
    """
    return jax.nn.sigmoid(_float(input))


def tanh(input: ArrayLike) -> jax.Array:
    """Hyperbolic tangent; integer input gives float32, like torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.tanh(jnp.array([0.0])).tolist()
    [0.0]
    """
    return jnp.tanh(_float(input))


def _softmax(name: str, fn, input: ArrayLike, dim: int | None, stacklevel: int,
             dtype: DTypeLike | None) -> jax.Array:
    x = jnp.asarray(input)
    if dtype is not None:
        x = x.astype(dtype)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype} "
                        f"(pass dtype=jnp.float32 to cast first)")
    if dim is None:  # torch's deprecated implicit choice (functional._get_softmax_dim)
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                      "Change the call to include dim=X as an argument.", stacklevel=stacklevel)
        dim = 0 if x.ndim in (0, 1, 3) else 1
    n = max(x.ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{name}: dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim}) for input of shape {x.shape}")
    if x.ndim == 0:
        return fn(x.reshape(1), axis=0).reshape(())
    return fn(x, axis=dim)


def softmax(input: ArrayLike, dim: int | None = None, _stacklevel: int = 3,
            dtype: DTypeLike | None = None) -> jax.Array:
    """Softmax along ``dim`` (cast to ``dtype`` first if given).

    With ``dim=None`` torch's deprecated implicit choice applies (dim 0 for 0-D, 1-D and 3-D input, else 1)
    and a warning is issued.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.softmax(jnp.zeros((1, 2)), dim=1).tolist()
    [[0.5, 0.5]]
    """
    return _softmax("softmax", jax.nn.softmax, input, dim, _stacklevel, dtype)


def log_softmax(input: ArrayLike, dim: int | None = None, _stacklevel: int = 3,
                dtype: DTypeLike | None = None) -> jax.Array:
    """Logarithm of the softmax along ``dim``, computed stably; same ``dim``/``dtype`` rules as :func:`softmax`.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.log_softmax(jnp.zeros(4), dim=0)[0]), 4)
    -1.3863
    """
    return _softmax("log_softmax", jax.nn.log_softmax, input, dim, _stacklevel, dtype)


# ----------------------------------------------------------------------------------------------- linear
def linear(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> jax.Array:
    """``y = x @ weight.T + bias`` with torch's layout: weight ``(out_features, in_features)``.

    ``input`` is ``(*, in_features)`` (any number of leading dims, or 1-D).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.linear(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.zeros(4)).shape
    (2, 4)
    """
    x, w = jnp.asarray(input), jnp.asarray(weight)
    if x.ndim == 0 or w.ndim not in (1, 2):
        raise ValueError(f"linear: expected input of shape (*, in_features) and weight of shape "
                         f"(out_features, in_features), got input {x.shape} and weight {w.shape}")
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features in its last dimension (shape {x.shape}) "
                         f"but weight of shape {w.shape} expects {w.shape[-1]} (weight is (out, in))")
    y = jnp.matmul(x, w.T)
    if bias is not None:
        b = jnp.asarray(bias)
        try:
            ok = jnp.broadcast_shapes(y.shape, b.shape) == y.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"linear: bias of shape {b.shape} does not broadcast to the output shape {y.shape}")
        y = y + b
    return y


# -------------------------------------------------------------------------------------------------- pad
_NONCONST_PAD = {(2, 2), (2, 3), (4, 3), (4, 4), (6, 4), (6, 5)}


def pad(input: ArrayLike, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> jax.Array:
    """Pad the last ``len(pad) // 2`` dims; ``pad`` lists (left, right) pairs from the *last* dim backwards.

    Modes ``'constant'`` (any rank; negative pads crop), ``'reflect'``, ``'replicate'`` and ``'circular'``
    (the last 1/2/3 dims of a 2-3/3-4/4-5-D input, as in torch).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.pad(jnp.array([[1.0, 2.0, 3.0]]), (2, 1), mode="reflect").tolist()
    [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
    """
    x = jnp.asarray(input)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2, got {len(pad)} values {pad}")
    m = len(pad) // 2
    if m > x.ndim:
        raise ValueError(f"pad: padding length should be less than or equal to two times the input dimension "
                         f"but got padding length {len(pad)} and input of dimension {x.ndim}")
    widths = [(0, 0)] * (x.ndim - m) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(m))]
    zero = jnp.zeros((), x.dtype)
    if mode == "constant":
        for d, (lo, hi) in enumerate(widths):
            if x.shape[d] + lo + hi < 0:
                raise ValueError(f"pad: padding ({lo}, {hi}) crops dimension {d} of size {x.shape[d]} "
                                 "below zero")
        fill = zero if value is None else jnp.asarray(value).astype(x.dtype)
        return lax.pad(x, fill, [(lo, hi, 0) for lo, hi in widths])
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: unrecognised padding mode {mode!r}; expected 'constant', 'reflect', "
                         "'replicate' or 'circular'")
    if value is not None and value != 0:
        raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument")
    if (len(pad), x.ndim) not in _NONCONST_PAD:
        raise NotImplementedError(
            f"pad: padding size {len(pad)} is not supported for {x.ndim}D input in {mode!r} mode. Supported: "
            "2D or 3D input with padding size 2, 3D or 4D with 4, 4D or 5D with 6")
    for d in range(x.ndim - m, x.ndim):
        lo, hi = widths[d]
        if x.shape[d] == 0:
            raise ValueError(f"pad: {mode!r} padding needs non-empty padded dimensions, got input shape {x.shape}")
        if mode == "reflect" and not (lo < x.shape[d] and hi < x.shape[d]):
            raise ValueError(f"pad: padding size should be less than the corresponding input dimension in "
                             f"'reflect' mode, but got padding ({lo}, {hi}) at dimension {d} of input shape "
                             f"{x.shape}")
        if mode == "circular" and not (lo <= x.shape[d] and hi <= x.shape[d]):
            raise ValueError(f"pad: padding value causes wrapping around more than once (circular padding "
                             f"({lo}, {hi}) at dimension {d} of input shape {x.shape})")
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    crop = [(min(lo, 0), min(hi, 0), 0) for lo, hi in widths]
    if mode == "circular":  # torch crops first, then wraps around what is left
        x = lax.pad(x, zero, crop)
        for d, (lo, hi) in enumerate(grow):
            if max(lo, hi) > x.shape[d]:
                raise ValueError(f"pad: circular padding ({lo}, {hi}) at dimension {d} is larger than that "
                                 f"dimension after cropping ({x.shape[d]})")
        return jnp.pad(x, grow, mode="wrap")
    for d in range(x.ndim):
        if x.shape[d] + sum(widths[d]) < 0:
            raise ValueError(f"pad: padding {widths[d]} crops dimension {d} of size {x.shape[d]} below zero")
    y = jnp.pad(x, grow, mode="reflect" if mode == "reflect" else "edge")
    return lax.pad(y, zero, crop)


# ----------------------------------------------------------------------------------------------- conv2d
def conv2d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: _IntOrPair = 1,
           padding: str | _IntOrPair = 0, dilation: _IntOrPair = 1, groups: int = 1) -> jax.Array:
    """2-D convolution (cross-correlation, as in torch) over ``(N, C, H, W)`` or unbatched ``(C, H, W)`` input.

    ``weight`` is ``(out_channels, in_channels / groups, kH, kW)``. ``padding`` is an int, a pair,
    ``'valid'`` (no padding) or ``'same'`` (output size = input size; stride 1 only, the odd extra padding
    goes on the bottom/right as in torch).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.conv2d(jnp.ones((1, 3, 8, 8)), jnp.ones((4, 3, 3, 3)), padding="same").shape
    (1, 4, 8, 8)
    """
    x, w = jnp.asarray(input), jnp.asarray(weight)
    if x.ndim not in (3, 4):
        raise ValueError(f"conv2d: expected 3D (unbatched C, H, W) or 4D (batched N, C, H, W) input, "
                         f"got input of shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"conv2d: expected 4D weight (out_channels, in_channels/groups, kH, kW), "
                         f"got weight of shape {w.shape}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    if groups < 1 or w.shape[0] % groups:
        raise ValueError(f"conv2d: given groups={groups}, expected weight to be divisible by {groups} at "
                         f"dimension 0 (out_channels), but got weight of shape {w.shape}")
    if x.shape[1] != w.shape[1] * groups:
        raise ValueError(f"conv2d: given groups={groups}, weight of shape {w.shape}, expected input of shape "
                         f"{tuple(jnp.shape(input))} to have {w.shape[1] * groups} channels, but got "
                         f"{x.shape[1]} channels instead")
    stride, dilation = _pair(stride, "stride", "conv2d"), _pair(dilation, "dilation", "conv2d")
    if min(stride) <= 0 or min(dilation) <= 0:
        raise ValueError(f"conv2d: stride and dilation must be positive, got stride={stride}, "
                         f"dilation={dilation}")
    eff = [d * (k - 1) + 1 for d, k in zip(dilation, w.shape[2:], strict=True)]
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0), (0, 0)]
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError("conv2d: padding='same' is not supported for strided convolutions "
                                 f"(got stride={stride})")
            pads = [((e - 1) // 2, (e - 1) - (e - 1) // 2) for e in eff]
        else:
            raise ValueError(f"conv2d: invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    else:
        p = _pair(padding, "padding", "conv2d")
        if min(p) < 0:
            raise ValueError(f"conv2d: negative padding is not supported, got padding={p}")
        pads = [(p[0], p[0]), (p[1], p[1])]
    padded = [x.shape[2 + i] + sum(pads[i]) for i in range(2)]
    if padded[0] < eff[0] or padded[1] < eff[1]:
        raise ValueError(f"conv2d: calculated padded input size per channel: ({padded[0]} x {padded[1]}). "
                         f"Kernel size (dilated): ({eff[0]} x {eff[1]}). Kernel size can't be greater than "
                         "actual input size")
    y = lax.conv_general_dilated(x, w, window_strides=stride, padding=pads, rhs_dilation=dilation,
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups)
    if bias is not None:
        b = jnp.asarray(bias)
        if b.shape != (w.shape[0],):
            raise ValueError(f"conv2d: given weight of shape {w.shape}, expected bias of shape ({w.shape[0]},), "
                             f"got {b.shape}")
        y = y + b[:, None, None]
    return y[0] if unbatched else y


# ---------------------------------------------------------------------------------------------- dropout
def _vmapped(a: object) -> bool:
    # jax.vmap's tracer class is private (jax._src.interpreters.batching.BatchTracer); match it by name.
    return isinstance(a, jax.core.Tracer) and type(a).__name__ == "BatchTracer"


def dropout(input: ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            key: jax.Array | None = None) -> jax.Array:
    """Zero each element with probability ``p`` and scale the kept ones by ``1 / (1 - p)``; identity if not training.

    The mask comes from ``key`` if given, else from :func:`jnn.random.next_key` (the innermost
    ``jnn.random.fork(key)`` context, or the global stream seeded by ``jnn.manual_seed``). Under ``jax.jit``
    with neither, it raises :class:`jnn.random.MissingKeyError`; so it does under ``jax.vmap`` when the
    drawn key is not batched (every example would share one mask). ``inplace`` is accepted and ignored.

    >>> import jax, jnn.functional as F, jax.numpy as jnp
    >>> y = F.dropout(jnp.ones(6), p=0.5, key=jax.random.key(0))
    >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    x = jnp.asarray(input)
    if not training or p == 0 or x.size == 0:
        return x
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"dropout: expected a floating-point input in training mode, got dtype {x.dtype}")
    if p == 1:
        return x * 0  # like torch: NaN/inf stay NaN
    if key is None:
        key = _jrandom.next_key("dropout")
        if _vmapped(x) and not _vmapped(key):
            raise _jrandom.MissingKeyError(
                "dropout inside jax.vmap got no per-example key: the key drawn from jnn's stream is the same for "
                "every example, so they would all share one mask. Pass key= with a batched key (e.g. vmap over "
                "jax.random.split(key, batch_size) alongside the input), or open `jnn.random.fork(k)` inside the "
                "vmapped function with such a k.")
    keep = jax.random.bernoulli(key, 1.0 - p, x.shape)
    return x * (keep.astype(x.dtype) / jnp.asarray(1.0 - p, x.dtype))


# ------------------------------------------------------------------------------------------- batch_norm
@functools.partial(jax.jit, static_argnames=("training",))
def _batch_norm(x, rm, rv, weight, bias, training, momentum, eps):
    c, n = x.shape[1], x.shape[0] * math.prod(x.shape[2:])
    cdt = jnp.promote_types(x.dtype, jnp.float32)  # statistics in float32 at least
    xc = x.astype(cdt)
    axes, shape = (0, *range(2, x.ndim)), (1, c) + (1,) * (x.ndim - 2)
    if training:
        mean = xc.mean(axes)
        var = jnp.square(xc - mean.reshape(shape)).mean(axes)  # biased, used to normalise
        if rm is not None and n > 0:  # torch leaves the statistics alone for an empty batch
            rm = ((1 - momentum) * rm.astype(cdt) + momentum * mean).astype(rm.dtype)
            rv = ((1 - momentum) * rv.astype(cdt) + momentum * var * (n / (n - 1))).astype(rv.dtype)
    else:
        mean, var = rm.astype(cdt).reshape(c), rv.astype(cdt).reshape(c)
    y = (xc - mean.reshape(shape)) * lax.rsqrt(var + eps).reshape(shape)
    if weight is not None:
        y = y * weight.astype(cdt).reshape(shape)
    if bias is not None:
        y = y + bias.astype(cdt).reshape(shape)
    return y.astype(x.dtype), rm, rv


def batch_norm_with_stats(
    input: ArrayLike, running_mean: ArrayLike | None, running_var: ArrayLike | None,
    weight: ArrayLike | None = None, bias: ArrayLike | None = None, training: bool = False,
    momentum: float = 0.1, eps: float = 1e-5,
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """:func:`batch_norm` that also returns the updated running statistics: ``(output, new_mean, new_var)``.

    In training the new statistics are ``(1 - momentum) * running + momentum * batch``, with the unbiased
    batch variance, exactly what torch writes into the buffers in place; otherwise (or when the running
    statistics are ``None``, or the batch is empty) they are returned unchanged.

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
    if training and x.shape[0] * math.prod(x.shape[2:]) == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean must be defined in evaluation mode (training=False); "
                         "pass training=True to normalise with batch statistics")
    return _batch_norm(x, *args.values(), bool(training), momentum, eps)


def batch_norm(
    input: ArrayLike, running_mean: ArrayLike | None, running_var: ArrayLike | None,
    weight: ArrayLike | None = None, bias: ArrayLike | None = None, training: bool = False,
    momentum: float = 0.1, eps: float = 1e-5,
) -> jax.Array:
    """Batch normalisation over channel dim 1 of ``(N, C, *)`` input; returns the output only.

    Training normalises with the biased batch variance; evaluation uses the running statistics. JAX arrays
    are immutable, so unlike torch the running statistics passed in are *not* updated: a training call with
    running statistics warns; use :func:`batch_norm_with_stats` or a ``jnn.BatchNorm*`` module instead.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.batch_norm(jnp.array([[1.0], [3.0]]), jnp.array([1.0]), jnp.array([4.0]), eps=0.0).ravel().tolist()
    [0.0, 1.0]
    """
    out = batch_norm_with_stats(input, running_mean, running_var, weight, bias, training, momentum, eps)[0]
    if training and running_mean is not None:
        warnings.warn("jnn.functional.batch_norm cannot update running_mean/running_var in place (JAX arrays "
                      "are immutable); they are left unchanged. Use jnn.functional.batch_norm_with_stats(...), "
                      "which returns the updated statistics, or a jnn.BatchNorm1d/2d/3d module.", stacklevel=2)
    return out


# ------------------------------------------------------------------------------------------- max_pool2d
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


# ----------------------------------------------------------------------------------------------- losses
def _class_target(fn: str, x: jax.Array, target: ArrayLike, ignore_index: int,
                  weight: ArrayLike | None) -> tuple[jax.Array, jax.Array | None]:
    """Check an integer class-index target (and class weights) against input of shape (C,) or (N, C, *)."""
    t = jnp.asarray(target)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(f"{fn}: expected an integer class-index target (int32, int64 or uint8), got dtype "
                        f"{t.dtype}" + (" (class probabilities need a target of the same shape as input)"
                                        if fn == "cross_entropy" else ""))
    if x.ndim == 0:
        raise ValueError(f"{fn}: expected input of shape (C,), (N, C) or (N, C, d1, ...), got a scalar")
    if x.ndim == 1:
        if t.ndim > 1 or t.size != 1:
            raise ValueError(f"{fn}: for 1D input (C,), the target must be a single class index, got target "
                             f"of shape {t.shape}")
    elif t.shape[:1] != x.shape[:1]:
        raise ValueError(f"{fn}: expected input batch_size ({x.shape[0]}) to match target batch_size "
                         f"({t.shape[0] if t.ndim else 'none: scalar target'}).")
    elif t.shape != x.shape[:1] + x.shape[2:]:
        raise ValueError(f"{fn}: expected target size {x.shape[:1] + x.shape[2:]} for input of shape "
                         f"{x.shape}, got {t.shape}")
    c = x.shape[0 if x.ndim == 1 else 1]
    if weight is not None:
        weight = jnp.asarray(weight)
        if weight.shape != (c,):
            raise ValueError(f"{fn}: weight tensor should be defined either for all {c} classes or no classes "
                             f"but got weight tensor of shape: {weight.shape}")
    if not isinstance(t, jax.core.Tracer):  # eager: check like torch (under jit such losses come out NaN)
        tn = np.asarray(t)
        bad = (tn != ignore_index) & ((tn < 0) | (tn >= c))
        if bad.any():
            raise IndexError(f"{fn}: Target {tn[bad][0]} is out of bounds (expected class indices in "
                             f"[0, {c - 1}] or ignore_index={ignore_index}).")
    return (t if t.dtype == jnp.int64 else t.astype(jnp.int32)), weight


@functools.partial(jax.jit, static_argnames=("ignore_index", "reduction", "label_smoothing", "logits"))
def _class_loss(x, t, weight, ignore_index, reduction, label_smoothing, logits):
    unbatched = x.ndim == 1
    if unbatched:
        x, t = x[None], t.reshape(1)
    logp = jax.nn.log_softmax(x, axis=1) if logits else x
    c = x.shape[1]
    ignored = t == ignore_index
    bad = ~ignored & ((t < 0) | (t >= c))
    safe = jnp.where(ignored | bad, 0, t)
    picked = jnp.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    wt = (~ignored).astype(logp.dtype) * (1 if weight is None else weight[safe])
    loss = jnp.where(bad, jnp.nan, -picked * wt)  # out-of-range targets (only reachable under jit): NaN
    if label_smoothing:
        w = 1 if weight is None else weight.reshape((c,) + (1,) * (x.ndim - 2))
        smooth = jnp.where(ignored, 0.0, -(logp * w).sum(1))
        loss, smooth = (loss[0], smooth[0]) if unbatched else (loss, smooth)
        return (1 - label_smoothing) * _reduce(loss, reduction, wt) + \
            _reduce(smooth, reduction, wt) * (label_smoothing / c)
    return _reduce(loss[0] if unbatched else loss, reduction, wt)


@functools.partial(jax.jit, static_argnames=("reduction", "label_smoothing"))
def _prob_loss(x, t, weight, reduction, label_smoothing):
    cdim = 0 if x.ndim == 1 else 1
    c = x.shape[cdim]
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / c
    prod = jax.nn.log_softmax(x, axis=cdim) * t
    if weight is not None:
        prod = prod * weight.reshape((c,) + (1,) * (x.ndim - 1 - cdim))
    loss = -prod.sum(cdim)
    return loss.sum() / (x.size // c) if reduction == "mean" else _reduce(loss, reduction)


def nll_loss(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None,
             size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
             reduction: str = "mean") -> jax.Array:
    """Negative log-likelihood of class indices given log-probabilities.

    ``input`` is ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``; ``target`` holds class indices of shape ``()``,
    ``(N,)`` or ``(N, d1, ...)``. ``'mean'`` divides by the summed weights of the non-ignored targets.
    ``size_average``/``reduce`` are deprecated and mapped onto ``reduction`` with a warning, as in torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.nll_loss(jnp.log(jnp.array([[0.5, 0.5]])), jnp.array([1]))), 4)
    0.6931
    """
    reduction = _get_reduction("nll_loss", size_average, reduce, reduction)
    x = jnp.asarray(input)
    t, weight = _class_target("nll_loss", x, target, ignore_index, weight)
    return _class_loss(x, t, weight, int(ignore_index), reduction, 0.0, False)


def cross_entropy(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None,
                  size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> jax.Array:
    """Cross entropy between logits ``input`` and class indices or class probabilities ``target``.

    Shapes as :func:`nll_loss`; a floating ``target`` of the same shape as ``input`` holds class
    probabilities (then ``'mean'`` divides by the number of samples, and ``ignore_index`` is not allowed).
    ``label_smoothing`` in ``[0, 1]`` mixes the target with the uniform distribution.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 3]))), 4)
    1.3863
    """
    reduction = _get_reduction("cross_entropy", size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    x, t = jnp.asarray(input), jnp.asarray(target)
    if x.ndim == 0:
        raise ValueError("cross_entropy: expected input of shape (C,), (N, C) or (N, C, d1, ...), got a scalar")
    if t.shape != x.shape:
        t, weight = _class_target("cross_entropy", x, t, ignore_index, weight)
        return _class_loss(x, t, weight, int(ignore_index), reduction, float(label_smoothing), True)
    if not jnp.issubdtype(t.dtype, jnp.inexact):
        raise TypeError(f"cross_entropy: expected floating point type for target with class probabilities "
                        f"(same shape as input), got {t.dtype}")
    if ignore_index >= 0:
        raise ValueError("cross_entropy: ignore_index is not supported for floating point target "
                         "(class probabilities)")
    c = x.shape[0 if x.ndim == 1 else 1]
    if weight is not None and jnp.shape(weight) != (c,):
        raise ValueError(f"cross_entropy: weight tensor should be defined either for all {c} classes or no "
                         f"classes but got weight tensor of shape: {jnp.shape(weight)}")
    return _prob_loss(x, t, None if weight is None else jnp.asarray(weight), reduction, float(label_smoothing))


def mse_loss(input: ArrayLike, target: ArrayLike, size_average: bool | None = None, reduce: bool | None = None,
             reduction: str = "mean", weight: ArrayLike | None = None) -> jax.Array:
    """Mean squared error ``(input - target) ** 2``, optionally weighted element-wise.

    Shapes broadcast (with torch's warning when they differ). With ``weight`` (same shape as ``input``),
    ``'mean'`` is ``sum(weight * err) / sum(weight)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.mse_loss(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0])).tolist()
    2.0
    """
    x, t = jnp.asarray(input), jnp.asarray(target)
    if x.shape != t.shape:
        warnings.warn(f"Using a target size ({t.shape}) that is different to the input size ({x.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=2)
    reduction = _get_reduction("mse_loss", size_average, reduce, reduction)
    try:
        jnp.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise ValueError(f"mse_loss: input of shape {x.shape} and target of shape {t.shape} cannot be "
                         "broadcast together") from None
    err = jnp.square(x - t)
    if weight is None:
        return _reduce(err, reduction)
    w = jnp.asarray(weight)
    if w.shape != x.shape:
        raise ValueError(f"mse_loss: weights and input must have the same size, got weight of shape {w.shape} "
                         f"and input of shape {x.shape}")
    err = err * w
    return err.sum() / w.sum() if reduction == "mean" else _reduce(err, reduction)
