"""Loss functions."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jnn.functional._utils import _get_reduction, _reduce

__all__ = ["nll_loss", "cross_entropy", "mse_loss"]


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
