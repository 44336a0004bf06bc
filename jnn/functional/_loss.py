"""Loss functions."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jnn.checking import check_indices
from jnn.functional._distance import pairwise_distance
from jnn.functional._utils import _get_reduction, _reduce

__all__ = [
    "nll_loss", "cross_entropy", "mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "kl_div", "huber_loss", "smooth_l1_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
    "multilabel_margin_loss", "multi_margin_loss", "cosine_embedding_loss", "margin_ranking_loss",
    "hinge_embedding_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss", "poisson_nll_loss",
    "gaussian_nll_loss", "ctc_loss", "linear_cross_entropy",
]


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
    _check_bounds(fn, t, c, ignore_index)
    return (t if t.dtype == jnp.int64 else t.astype(jnp.int32)), weight


def _check_bounds(fn: str, t: jax.Array, c: int, ignore_index) -> None:
    """Eagerly, class indices outside [0, c) that are not ``ignore_index`` raise as in torch; under jit, where the
    values cannot be read, such losses come out NaN unless the step runs under :func:`jnn.checked`."""
    check_indices(t, 0, c, fn, ignore_index)  # staged only when traced
    if isinstance(t, jax.core.Tracer) or isinstance(ignore_index, jax.core.Tracer):
        return
    tn = np.asarray(t)
    bad = (tn != ignore_index) & ((tn < 0) | (tn >= c))
    if bad.any():
        raise IndexError(f"{fn}: Target {tn[bad][0]} is out of bounds (expected class indices in "
                         f"[0, {c - 1}] or ignore_index={ignore_index}).")


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


# ------------------------------------------------------------------------------------------ element-wise losses
def _warn_size(x: jax.Array, t: jax.Array, fn: str) -> None:
    if x.shape != t.shape:
        warnings.warn(f"Using a target size ({t.shape}) that is different to the input size ({x.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=3)
    try:
        jnp.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise ValueError(f"{fn}: input of shape {x.shape} and target of shape {t.shape} cannot be "
                         "broadcast together") from None


def _weighted(fn: str, err: jax.Array, x: jax.Array, weight: ArrayLike | None, reduction: str,
              mean_by_weight: bool) -> jax.Array:
    """Multiply by an element-wise ``weight`` (input's shape); 'mean' is sum(w * err) / sum(w) or mean(w * err)."""
    if weight is None:
        return _reduce(err, reduction)
    w = jnp.asarray(weight)
    if w.shape != x.shape:
        raise ValueError(f"{fn}: weights and input must have the same size, got weight of shape {w.shape} "
                         f"and input of shape {x.shape}")
    err = err * w
    return err.sum() / w.sum() if reduction == "mean" and mean_by_weight else _reduce(err, reduction)


def l1_loss(input: ArrayLike, target: ArrayLike, size_average: bool | None = None, reduce: bool | None = None,
            reduction: str = "mean", weight: ArrayLike | None = None) -> jax.Array:
    """Mean absolute error ``|input - target|``, optionally weighted element-wise.

    Shapes broadcast (with torch's warning when they differ). With ``weight`` (same shape as ``input``),
    ``'mean'`` is ``sum(weight * err) / sum(weight)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.l1_loss(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0])).tolist()
    1.0
    """
    x, t = jnp.asarray(input), jnp.asarray(target)
    _warn_size(x, t, "l1_loss")
    reduction = _get_reduction("l1_loss", size_average, reduce, reduction)
    return _weighted("l1_loss", jnp.abs(x - t), x, weight, reduction, True)


def smooth_l1_loss(input: ArrayLike, target: ArrayLike, size_average: bool | None = None,
                   reduce: bool | None = None, reduction: str = "mean", beta: float = 1.0) -> jax.Array:
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta`` (``beta=0`` is the L1 loss).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.smooth_l1_loss(jnp.array([0.0, 0.0]), jnp.array([0.5, 3.0]), reduction="none").tolist()
    [0.125, 2.5]
    """
    x, t = jnp.asarray(input), jnp.asarray(target)
    _warn_size(x, t, "smooth_l1_loss")
    reduction = _get_reduction("smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss does not support negative values for beta, got beta={beta}")
    d = jnp.abs(x - t)
    if beta == 0.0:
        return _reduce(d, reduction)
    return _reduce(jnp.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def huber_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean", delta: float = 1.0,
               weight: ArrayLike | None = None) -> jax.Array:
    """``0.5 * d**2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 * delta)``; optionally weighted.

    With ``weight`` (same shape as ``input``), ``'mean'`` is the plain mean of ``weight * loss`` (as in torch).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.huber_loss(jnp.array([0.0, 0.0]), jnp.array([0.5, 3.0]), reduction="none", delta=2.0).tolist()
    [0.125, 4.0]
    """
    x, t = jnp.asarray(input), jnp.asarray(target)
    _warn_size(x, t, "huber_loss")
    reduction = _get_reduction("huber_loss", None, None, reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss does not support non-positive values for delta, got delta={delta}")
    d = jnp.abs(x - t)
    err = jnp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _weighted("huber_loss", err, x, weight, reduction, False)


def _same_size(fn: str, x: jax.Array, t: jax.Array, deprecated: bool) -> None:
    if x.shape != t.shape:
        raise ValueError(f"{fn}: Using a target size ({t.shape}) that is different to the input size ({x.shape}) "
                         "is deprecated. Please ensure they have the same size." if deprecated else
                         f"{fn}: Target size ({t.shape}) must be the same as input size ({x.shape})")


def binary_cross_entropy(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> jax.Array:
    """Binary cross entropy between probabilities ``input`` and ``target`` (same shape), logs clamped at -100.

    ``weight`` broadcasts against ``target``. Eagerly, inputs outside ``[0, 1]`` are an error, as in torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.binary_cross_entropy(jnp.array([0.5, 1.0]), jnp.array([1.0, 1.0]))), 4)
    0.3466
    """
    reduction = _get_reduction("binary_cross_entropy", size_average, reduce, reduction)
    x, t = jnp.asarray(input), jnp.asarray(target)
    _same_size("binary_cross_entropy", x, t, True)
    if not isinstance(x, jax.core.Tracer) and x.size and not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1")
    loss = -(t * jnp.maximum(jnp.log(x), -100.0) + (1 - t) * jnp.maximum(jnp.log1p(-x), -100.0))
    if weight is not None:
        w = jnp.asarray(weight)
        try:
            jnp.broadcast_to(w, jnp.broadcast_shapes(t.shape, w.shape))
            if jnp.broadcast_shapes(t.shape, w.shape) != t.shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"binary_cross_entropy: weight of shape {w.shape} cannot be broadcast to the "
                             f"target's shape {t.shape}") from None
        loss = loss * w
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None,
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean", pos_weight: ArrayLike | None = None) -> jax.Array:
    """Sigmoid + binary cross entropy in one numerically stable step.

    ``pos_weight`` weighs the positive term and broadcasts along the last (class) dimension; ``weight``
    multiplies the element-wise loss.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.binary_cross_entropy_with_logits(jnp.zeros(3), jnp.ones(3))), 4)
    0.6931
    """
    reduction = _get_reduction("binary_cross_entropy_with_logits", size_average, reduce, reduction)
    x, t = jnp.asarray(input), jnp.asarray(target)
    _same_size("binary_cross_entropy_with_logits", x, t, False)
    neg_logsig = jax.nn.softplus(-x)  # -log(sigmoid(x))
    if pos_weight is None:
        loss = (1 - t) * x + neg_logsig
    else:
        loss = (1 - t) * x + ((jnp.asarray(pos_weight) - 1) * t + 1) * neg_logsig
    if weight is not None:
        loss = loss * jnp.asarray(weight)
    return _reduce(loss, reduction)


def kl_div(input: ArrayLike, target: ArrayLike, size_average: bool | None = None, reduce: bool | None = None,
           reduction: str = "mean", log_target: bool = False) -> jax.Array:
    """Kullback-Leibler divergence ``target * (log(target) - input)`` with ``input`` given as log-probabilities.

    ``log_target=True`` takes ``target`` as log-probabilities too. ``'batchmean'`` divides the sum by the batch
    size (the mathematical KL divergence); ``'mean'`` divides by the number of elements (torch warns about it).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.kl_div(jnp.log(jnp.array([[0.5, 0.5]])), jnp.array([[0.5, 0.5]]), reduction="batchmean").tolist()
    0.0
    """
    if size_average is not None or reduce is not None:
        red = _get_reduction("kl_div", size_average, reduce, "mean")
    else:
        if reduction == "mean":
            warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                          "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                          "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                          stacklevel=2)
        red = "sum" if reduction == "batchmean" else _get_reduction("kl_div", None, None, reduction)
    x, t = jnp.asarray(input), jnp.asarray(target)
    loss = jnp.exp(t) * (t - x) if log_target else jax.scipy.special.xlogy(t, t) - t * x
    out = _reduce(loss, red)
    if reduction == "batchmean" and x.ndim != 0:
        out = out / x.shape[0]
    return out


def poisson_nll_loss(input: ArrayLike, target: ArrayLike, log_input: bool = True, full: bool = False,
                     size_average: bool | None = None, eps: float = 1e-8, reduce: bool | None = None,
                     reduction: str = "mean") -> jax.Array:
    """Poisson negative log-likelihood: ``exp(input) - target * input`` (``log_input``) or
    ``input - target * log(input + eps)``; ``full`` adds Stirling's term where ``target > 1``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.poisson_nll_loss(jnp.zeros(2), jnp.ones(2)).tolist()
    1.0
    """
    reduction = _get_reduction("poisson_nll_loss", size_average, reduce, reduction)
    x, t = jnp.asarray(input), jnp.asarray(target)
    loss = jnp.exp(x) - t * x if log_input else x - t * jnp.log(x + eps)
    if full:
        ts = jnp.where(t > 1, t, 2.0)
        stirling = ts * jnp.log(ts) - ts + 0.5 * jnp.log(2 * np.pi * ts)
        loss = loss + jnp.where(t > 1, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: ArrayLike, target: ArrayLike, var: ArrayLike | float, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> jax.Array:
    """Gaussian negative log-likelihood ``0.5 * (log(var) + (input - target)**2 / var)`` (+ const if ``full``).

    ``var`` has input's shape, or one dimension fewer, or a single mismatched size-1 dimension (homoscedastic),
    or is a float. It is clamped to ``eps`` for stability, with the gradient passing straight through, as in
    torch. Eagerly, negative variances are an error.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.gaussian_nll_loss(jnp.zeros(3), jnp.ones(3), jnp.ones(3))), 4)
    0.5
    """
    x, t = jnp.asarray(input), jnp.asarray(target)
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError("gaussian_nll_loss: var has negative entry/entries")
        v = jnp.full(x.shape, var, x.dtype)
    else:
        v = jnp.asarray(var)
        if not isinstance(v, jax.core.Tracer) and bool((v < 0).any()):
            raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    if v.shape != x.shape:
        if x.shape[:-1] == v.shape:
            v = v[..., None]
        elif not (x.ndim == v.ndim and sum(b for a, b in zip(x.shape, v.shape, strict=True) if a != b) == 1):
            raise ValueError(f"gaussian_nll_loss: var is of incorrect size: got var of shape {v.shape} for input "
                             f"of shape {x.shape}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"gaussian_nll_loss: {reduction} is not valid")
    v = jnp.where(v < eps, v + jax.lax.stop_gradient(eps - v), v)  # clamp, gradient straight through; inf stays
    loss = 0.5 * (jnp.log(v) + (x - t) ** 2 / v)
    if full:
        loss = loss + 0.5 * float(np.log(2 * np.pi))
    return _reduce(loss, reduction)


# --------------------------------------------------------------------------------------------- margin losses
def soft_margin_loss(input: ArrayLike, target: ArrayLike, size_average: bool | None = None,
                     reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """Two-class logistic loss ``log(1 + exp(-target * input))`` with targets in ``{-1, 1}``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.soft_margin_loss(jnp.zeros(2), jnp.array([1.0, -1.0]))), 4)
    0.6931
    """
    reduction = _get_reduction("soft_margin_loss", size_average, reduce, reduction)
    x, t = jnp.asarray(input), jnp.asarray(target)
    return _reduce(jax.nn.softplus(-t * x), reduction)


def multilabel_soft_margin_loss(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None,
                                size_average: bool | None = None, reduce: bool | None = None,
                                reduction: str = "mean") -> jax.Array:
    """One-vs-all logistic loss averaged over the classes (last dimension) of ``(N, C)`` or ``(C,)`` input.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.multilabel_soft_margin_loss(jnp.zeros((2, 3)), jnp.ones((2, 3)), reduction="none").shape
    (2,)
    """
    reduction = _get_reduction("multilabel_soft_margin_loss", size_average, reduce, reduction)
    x, t = jnp.asarray(input), jnp.asarray(target)
    if x.ndim == 0:
        raise ValueError("multilabel_soft_margin_loss: expected input of shape (C,) or (N, C), got a scalar")
    loss = t * jax.nn.softplus(-x) + (1 - t) * jax.nn.softplus(x)
    if weight is not None:
        loss = loss * jnp.asarray(weight)
    return _reduce(loss.sum(-1) / x.shape[-1], reduction)


def _margin_target(fn: str, x: jax.Array, target: ArrayLike) -> jax.Array:
    """Check a class-index target for ``(C,)``/``(N, C)`` input (the margin losses)."""
    t = jnp.asarray(target)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(f"{fn}: expected an integer class-index target, got dtype {t.dtype}")
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        raise ValueError(f"{fn}: Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
                         f"{x.shape}")
    return t if t.dtype == jnp.int64 else t.astype(jnp.int32)


def _hinge(z: jax.Array) -> jax.Array:
    """``max(0, z)`` as torch's margin losses compute it, ``z > 0 ? z : 0``: a NaN term counts as 0."""
    return jnp.where(z > 0, z, jnp.zeros((), z.dtype))


def multilabel_margin_loss(input: ArrayLike, target: ArrayLike, size_average: bool | None = None,
                           reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """Multi-class multi-label hinge loss.

    ``target`` (same shape as ``input``, ``(C,)`` or ``(N, C)``) lists each sample's target classes, ended by
    the first ``-1``. Each loss is ``sum_{j, i} max(0, 1 - (x[y_j] - x[i])) / C`` over target classes ``y_j``
    and non-target classes ``i``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.multilabel_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[3, 0, -1, 1]]))), 4)
    0.85
    """
    reduction = _get_reduction("multilabel_margin_loss", size_average, reduce, reduction)
    x = jnp.asarray(input)
    t = _margin_target("multilabel_margin_loss", x, target)
    if t.shape != x.shape:
        raise ValueError(f"multilabel_margin_loss: inconsistent target size: {t.shape} for input of size: "
                         f"{x.shape}")
    c = x.shape[-1]
    if not isinstance(t, jax.core.Tracer) and t.size:
        tn = np.asarray(t)
        if ((tn < -1) | (tn >= c)).any():
            raise IndexError(f"multilabel_margin_loss: target values must be in [-1, {c - 1}] (-1 ends the "
                             f"list of target classes), got {tn[(tn < -1) | (tn >= c)][0]}")
    check_indices(t, -1, c, "multilabel_margin_loss")  # under jit, enforced by jnn.checked
    return _multilabel_margin(x, t, reduction)


@functools.partial(jax.jit, static_argnames=("reduction",))
def _multilabel_margin(x, t, reduction):
    c = x.shape[-1]
    valid = jnp.cumprod(t >= 0, axis=-1).astype(bool)  # entries before the first -1
    safe = jnp.where(valid, t, 0)
    is_target = (jax.nn.one_hot(safe, c, dtype=bool) & valid[..., None]).any(-2)
    xy = jnp.take_along_axis(x, safe, axis=-1)
    hinge = _hinge(1 - xy[..., :, None] + x[..., None, :])
    mask = valid[..., :, None] & ~is_target[..., None, :]
    return _reduce(jnp.where(mask, hinge, 0.0).sum((-2, -1)) / c, reduction)


def multi_margin_loss(input: ArrayLike, target: ArrayLike, p: int = 1, margin: float = 1.0,
                      weight: ArrayLike | None = None, size_average: bool | None = None,
                      reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """Multi-class hinge loss ``sum_{i != y} w[y] * max(0, margin - x[y] + x[i])**p / C``.

    ``input`` is ``(C,)`` or ``(N, C)``; ``target`` holds class indices of shape ``()``/``(1,)`` or ``(N,)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))), 4)
    0.325
    """
    reduction = _get_reduction("multi_margin_loss", size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("multi_margin_loss: only p == 1 and p == 2 supported")
    x = jnp.asarray(input)
    t = _margin_target("multi_margin_loss", x, target)
    c = x.shape[-1]
    if weight is not None:
        weight = jnp.asarray(weight)
        if weight.ndim != 1:
            raise ValueError("multi_margin_loss: weight must be one-dimensional")
        if weight.shape != (c,):
            raise ValueError(f"multi_margin_loss: inconsistent weight size, expected ({c},) but got "
                             f"{weight.shape}")
    n = 1 if x.ndim == 1 else x.shape[0]
    if t.size != n or (x.ndim == 2 and t.ndim != 1) or t.ndim > 1:
        raise ValueError(f"multi_margin_loss: inconsistent target size, expected ({n},) but got {t.shape}")
    if not isinstance(t, jax.core.Tracer) and t.size:
        tn = np.asarray(t)
        if ((tn < 0) | (tn >= c)).any():
            raise IndexError(f"multi_margin_loss: target out of range: {tn[(tn < 0) | (tn >= c)][0]} (expected "
                             f"class indices in [0, {c - 1}])")
    check_indices(t, 0, c, "multi_margin_loss")  # under jit, enforced by jnn.checked
    out = _multi_margin(x, t.reshape(()) if x.ndim == 1 else t, weight, p, float(margin), reduction)
    return out.reshape(t.shape) if reduction == "none" else out  # unbatched: () or (1,), like the target


@functools.partial(jax.jit, static_argnames=("p", "margin", "reduction"))
def _multi_margin(x, t, weight, p, margin, reduction):
    c = x.shape[-1]
    xy = jnp.take_along_axis(x, t[..., None], axis=-1)
    z = _hinge(margin - xy + x)
    z = z if p == 1 else z * z
    if weight is not None:
        z = z * weight[t][..., None]
    z = jnp.where(jax.nn.one_hot(t, c, dtype=bool), 0.0, z)
    return _reduce(z.sum(-1) / c, reduction)


def _pm_target(t: ArrayLike, dtype) -> jax.Array:
    t = jnp.asarray(t)
    return t if jnp.issubdtype(t.dtype, jnp.inexact) else t.astype(dtype)


def hinge_embedding_loss(input: ArrayLike, target: ArrayLike, margin: float = 1.0,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> jax.Array:
    """``x`` where ``target == 1``, ``max(0, margin - x)`` where ``target == -1`` (shapes broadcast).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.hinge_embedding_loss(jnp.array([0.3, 0.3]), jnp.array([1, -1]), reduction="none").tolist()
    [0.30000001192092896, 0.699999988079071]
    """
    reduction = _get_reduction("hinge_embedding_loss", size_average, reduce, reduction)
    x = jnp.asarray(input)
    t = _pm_target(target, x.dtype)
    loss = jnp.where(t != 1, jnp.maximum(0.0, margin - x), 0.0) + jnp.where(t != -1, x, 0.0)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1: ArrayLike, input2: ArrayLike, target: ArrayLike, margin: float = 0,
                        size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> jax.Array:
    """``max(0, -target * (input1 - input2) + margin)`` with ``target`` in ``{-1, 1}``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.margin_ranking_loss(jnp.array([1.0]), jnp.array([2.0]), jnp.array([1.0])).tolist()
    1.0
    """
    reduction = _get_reduction("margin_ranking_loss", size_average, reduce, reduction)
    x1, x2 = jnp.asarray(input1), jnp.asarray(input2)
    t = _pm_target(target, x1.dtype)
    if x1.ndim != x2.ndim or x1.ndim != t.ndim:
        raise ValueError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                         f"input1: {x1.shape}, input2: {x2.shape}, target: {t.shape} ")
    return _reduce(jnp.maximum(0.0, -t * (x1 - x2) + margin), reduction)


def cosine_embedding_loss(input1: ArrayLike, input2: ArrayLike, target: ArrayLike, margin: float = 0,
                          size_average: bool | None = None, reduce: bool | None = None,
                          reduction: str = "mean") -> jax.Array:
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where ``target == -1``.

    Inputs are ``(N, D)`` with target ``(N,)``, or ``(D,)`` with a scalar target.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.cosine_embedding_loss(jnp.ones((2, 3)), jnp.ones((2, 3)), jnp.array([1, -1]), reduction="none").shape
    (2,)
    """
    reduction = _get_reduction("cosine_embedding_loss", size_average, reduce, reduction)
    x1, x2 = jnp.asarray(input1), jnp.asarray(input2)
    t = _pm_target(target, x1.dtype)
    if t.ndim > 1:
        raise ValueError("cosine_embedding_loss: 0D or 1D target tensor expected, multi-target not supported")
    if x1.ndim != t.ndim + 1 or x2.ndim != t.ndim + 1:
        raise ValueError(f"cosine_embedding_loss: {t.ndim}D target tensor expects {t.ndim + 1}D input tensors, "
                         f"but found inputs with sizes {x1.shape} and {x2.shape}.")
    eps = 1e-12
    prod = (x1 * x2).sum(-1)
    cos = prod / jnp.sqrt(((x1 * x1).sum(-1) + eps) * ((x2 * x2).sum(-1) + eps))
    loss = jnp.where(t == 1, 1 - cos, 0.0) + jnp.where(t == -1, jnp.maximum(cos - margin, 0.0), 0.0)
    return _reduce(loss, reduction)


def _triplet_dims(fn: str, a: jax.Array, p: jax.Array, n: jax.Array) -> None:
    if not a.ndim == p.ndim == n.ndim:
        raise ValueError(f"{fn}: The anchor, positive, and negative tensors are expected to have the same number "
                         f"of dimensions, but got: anchor {a.ndim}D, positive {p.ndim}D, and negative {n.ndim}D "
                         "inputs")


def triplet_margin_loss(anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False, size_average: bool | None = None,
                        reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """``max(0, margin + d(a, p) - d(a, n))`` with ``d`` the pairwise p-norm distance (``swap``: use
    ``min(d(a, n), d(p, n))``). Inputs are ``(N, D)`` or ``(D,)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.triplet_margin_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones((2, 3)), reduction="none").shape
    (2,)
    """
    reduction = _get_reduction("triplet_margin_loss", size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin must be greater than 0, got {margin}")
    a, pos, neg = jnp.asarray(anchor), jnp.asarray(positive), jnp.asarray(negative)
    _triplet_dims("triplet_margin_loss", a, pos, neg)
    if a.ndim not in (1, 2):
        raise ValueError(f"triplet_margin_loss: expected 1D (D,) or 2D (N, D) inputs, got {a.ndim}D")
    d_pos = pairwise_distance(a, pos, p, eps)
    d_neg = pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = jnp.minimum(d_neg, pairwise_distance(pos, neg, p, eps))
    return _reduce(jnp.maximum(margin + d_pos - d_neg, 0.0), reduction)


def triplet_margin_with_distance_loss(anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike, *,
                                      distance_function=None, margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean") -> jax.Array:
    """:func:`triplet_margin_loss` with any ``distance_function(x1, x2)`` (default: pairwise L2 distance).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.triplet_margin_with_distance_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones((2, 3)),
    ...     distance_function=lambda x, y: jnp.abs(x - y).sum(-1)).tolist()
    0.0
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"triplet_margin_with_distance_loss: {reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"triplet_margin_with_distance_loss: margin must be greater than 0, got {margin}")
    a, pos, neg = jnp.asarray(anchor), jnp.asarray(positive), jnp.asarray(negative)
    _triplet_dims("triplet_margin_with_distance_loss", a, pos, neg)
    dist = pairwise_distance if distance_function is None else distance_function
    d_pos, d_neg = dist(a, pos), dist(a, neg)
    if swap:
        d_neg = jnp.minimum(d_neg, dist(pos, neg))
    return _reduce(jnp.maximum(margin + d_pos - d_neg, 0.0), reduction)


# ------------------------------------------------------------------------------------------------------ CTC
def _lse(*xs: jax.Array) -> jax.Array:
    """logsumexp of a few arrays, element-wise, -inf-safe in value and gradient (all -inf gives -inf, grad 0)."""
    m = functools.reduce(jnp.maximum, xs)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    s = sum(jnp.exp(x - m) for x in xs)
    return jnp.where(s == 0, -jnp.inf, jnp.log(jnp.where(s == 0, 1.0, s)) + m)  # (a NaN stays NaN)


@functools.partial(jax.jit, static_argnames=("blank",))
def _ctc_nll(lp: jax.Array, labels: jax.Array, il: jax.Array, tl: jax.Array, blank: int) -> jax.Array:
    """Per-sample -log p(labels | lp) by the CTC forward algorithm in log space. lp (T, N, C), labels (N, S)."""
    t_max, n, c = lp.shape
    s = labels.shape[1]
    labels = jnp.clip(labels, 0, c - 1)  # padding past each target length is never read; keep it in range
    ext = jnp.full((n, 2 * s + 1), blank, labels.dtype).at[:, 1::2].set(labels)
    skip = jnp.zeros((n, 2 * s + 1), bool).at[:, 3::2].set(labels[:, 1:] != labels[:, :-1])
    lpe = jnp.take_along_axis(lp, jnp.broadcast_to(ext[None], (t_max,) + ext.shape), axis=2)  # (T, N, 2S+1)
    ninf = jnp.full((n, 1), -jnp.inf, lp.dtype)
    alpha = jnp.full(ext.shape, -jnp.inf, lp.dtype).at[:, :2].set(lpe[0, :, :2])

    def step(alpha, xs):
        lpe_t, t = xs
        prev1 = jnp.concatenate([ninf, alpha[:, :-1]], axis=1)
        prev2 = jnp.where(skip, jnp.concatenate([ninf, ninf, alpha[:, :-2]], axis=1), -jnp.inf)
        new = _lse(alpha, prev1, prev2) + lpe_t
        return jnp.where((t < il)[:, None], new, alpha), None

    alpha, _ = jax.lax.scan(step, alpha, (lpe[1:], jnp.arange(1, t_max)))
    last = jnp.take_along_axis(alpha, (2 * tl)[:, None], axis=1)[:, 0]
    before = jnp.where(tl > 0, jnp.take_along_axis(alpha, jnp.maximum(2 * tl - 1, 0)[:, None], axis=1)[:, 0],
                       -jnp.inf)
    ll = _lse(last, before)
    ll = jnp.where(il == 0, jnp.where(tl == 0, 0.0, -jnp.inf), ll)
    return -ll


def _lengths(v: ArrayLike, what: str, n: int, unbatched: bool) -> jax.Array:
    a = jnp.asarray(v)
    if not jnp.issubdtype(a.dtype, jnp.integer):
        raise TypeError(f"ctc_loss: {what} must be integers, got dtype {a.dtype}")
    if a.size != n or (a.ndim > 1) or (not unbatched and a.ndim != 1):
        raise ValueError(f"ctc_loss: expected {what} of shape " + ("() for unbatched input" if unbatched else
                         f"({n},)") + f", got {a.shape}")
    return a.reshape(n).astype(jnp.int32)


def ctc_loss(log_probs: ArrayLike, targets: ArrayLike, input_lengths: ArrayLike, target_lengths: ArrayLike,
             blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> jax.Array:
    """Connectionist Temporal Classification loss (forward algorithm in log space; gradients by autodiff).

    ``log_probs`` is ``(T, N, C)`` (or unbatched ``(T, C)``) log-probabilities, e.g. from ``log_softmax``;
    ``targets`` is padded ``(N, S)`` or the concatenation of all targets ``(sum(target_lengths),)`` (unbatched:
    ``(S,)``); ``input_lengths``/``target_lengths`` are ``(N,)`` (unbatched: scalars). ``'mean'`` divides each
    loss by its target length, then averages over the batch. ``zero_infinity`` zeroes impossible alignments'
    infinite losses and their gradients.

    Unlike torch's native kernel, whose gradient w.r.t. ``log_probs`` assumes they come from ``log_softmax``,
    this gradient is the exact derivative; through ``log_softmax`` both agree.

    >>> import jnn.functional as F, jax, jax.numpy as jnp
    >>> lp = jax.nn.log_softmax(jnp.zeros((5, 2, 4)), axis=-1)
    >>> F.ctc_loss(lp, jnp.array([[1, 2], [3, 3]]), jnp.array([5, 5]), jnp.array([2, 2]), reduction="none").shape
    (2,)
    """
    reduction = _get_reduction("ctc_loss", None, None, reduction)
    lp = jnp.asarray(log_probs)
    if lp.ndim not in (2, 3):
        raise ValueError(f"ctc_loss: expected log_probs of shape (T, N, C) or (T, C), got {lp.shape}")
    unbatched = lp.ndim == 2
    if unbatched:
        lp = lp[:, None]
    t_max, n, c = lp.shape
    if not 0 <= blank < c:
        raise ValueError(f"ctc_loss: blank must be in label range [0, {c - 1}], got {blank}")
    tg = jnp.asarray(targets)
    if not jnp.issubdtype(tg.dtype, jnp.integer):
        raise TypeError(f"ctc_loss: targets must be integers, got dtype {tg.dtype}")
    il = _lengths(input_lengths, "input_lengths", n, unbatched)
    tl = _lengths(target_lengths, "target_lengths", n, unbatched)
    tg = tg.astype(jnp.int32)
    if unbatched:
        if tg.ndim != 1:
            raise ValueError(f"ctc_loss: expected targets of shape (S,) for unbatched input, got {tg.shape}")
        labels = tg[None]
    elif tg.ndim == 1:  # concatenated: pad to the static bound sum(target_lengths) <= len(targets)
        total = tg.shape[0]
        offsets = jnp.cumsum(tl) - tl
        idx = offsets[:, None] + jnp.arange(total)[None]
        labels = tg[jnp.clip(idx, 0, max(total - 1, 0))] if total else jnp.zeros((n, 0), jnp.int32)
    elif tg.ndim == 2:
        if tg.shape[0] != n:
            raise ValueError(f"ctc_loss: expected targets of shape ({n}, S), got {tg.shape}")
        labels = tg
    else:
        raise ValueError(f"ctc_loss: expected targets of shape (N, S) or (sum(target_lengths),), got {tg.shape}")
    if not any(isinstance(a, jax.core.Tracer) for a in (il, tl)):
        iln, tln = np.asarray(il), np.asarray(tl)
        if (iln < 0).any() or (iln > t_max).any():
            raise ValueError(f"ctc_loss: Expected input_lengths to have value at most {t_max} (and at least 0), "
                             f"but got {iln.tolist()}")
        if (tln < 0).any() or (tln > labels.shape[1]).any() or (tg.ndim == 1 and not unbatched
                                                                 and tln.sum() > tg.shape[0]):
            raise ValueError(f"ctc_loss: target_lengths {tln.tolist()} do not fit targets of shape {tg.shape}")
    loss = _ctc_nll(lp, labels, il, tl, int(blank))
    if zero_infinity:
        loss = jnp.where(jnp.isinf(loss), 0.0, loss)
    if reduction == "mean":
        return (loss / jnp.maximum(tl, 1).astype(loss.dtype)).mean()
    if reduction == "sum":
        return loss.sum()
    return loss[0] if unbatched else loss


# --- linear_cross_entropy: cross entropy of a linear layer's logits, the logits never all at once ----------------


@dataclasses.dataclass(frozen=True)
class LinearCrossEntropyOptions:
    """How :func:`linear_cross_entropy` chunks its work: torch's fields, checked as torch checks them.

    jnn always computes in chunks over the classes (the vocabulary), with an online log-sum-exp forward and a
    backward that recomputes each chunk's logits, so neither pass holds ``batch x classes`` logits. The fields
    size those chunks:

    - ``vocab_chunk_size`` (jnn's own; left out of the repr): classes per chunk.
    - ``batch_chunk_size`` / ``chunking_method`` (torch's ``"aspect_ratio[:N]"``): torch chunks over the batch;
      jnn gives each vocabulary chunk the logits buffer size torch's choice would have,
      ``batch_chunk_size x num_classes`` elements. With neither (``"auto"``), and with ``options=None``, a chunk's
      logits are about the size of the input (at least 2**20 elements).
    - ``acc_dtype``: the dtype of the log-sum-exp accumulation (default: float32 for float16/bfloat16 input,
      else the input's dtype).
    - ``acc_policy``, ``allow_retain_graph``: checked and kept for torch's API; they change nothing here (XLA picks
      the precision of the matmuls; a JAX gradient can be taken any number of times).

    >>> from jnn import LinearCrossEntropyOptions
    >>> LinearCrossEntropyOptions(batch_chunk_size=2, acc_dtype="float32")  # doctest: +ELLIPSIS
    LinearCrossEntropyOptions(allow_retain_graph=False, batch_chunk_size=2, ..., acc_dtype=dtype('float32'))
    """

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: str = "auto"
    acc_dtype: Any = None
    vocab_chunk_size: int | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.acc_policy not in {"auto", "accurate", "balanced", "compact"}:
            raise ValueError(f"invalid acc_policy: {self.acc_policy!r}")
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = self.chunking_method.partition(":")
            if not (name == "aspect_ratio" and (not sep or factor.isdigit() and int(factor) > 0)):
                raise ValueError(f"invalid chunking_method: {self.chunking_method!r}")
        for field in ("batch_chunk_size", "vocab_chunk_size"):
            value = getattr(self, field)
            if not (value is None or isinstance(value, int) and not isinstance(value, bool) and value > 0):
                raise ValueError(f"{field} must be positive int or None, got {value!r}")
        if self.acc_dtype is not None:
            acc = self.acc_dtype
            dtype = jnp.dtype(str(acc).removeprefix("torch.") if type(acc).__module__ == "torch" else acc)
            if dtype not in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64):
                raise ValueError(f"acc_dtype must be one of None, float16, bfloat16, float32, float64, got "
                                 f"{self.acc_dtype!r}. Pass acc_dtype=None to let the op pick automatically.")
            object.__setattr__(self, "acc_dtype", dtype)

    def _vocab_chunk(self, num_batches: int, in_features: int, num_classes: int, rows: int) -> int:
        """Classes per chunk for ``rows`` rows of logits (``num_batches x prod(out_features)``)."""
        if self.vocab_chunk_size is not None:
            return min(self.vocab_chunk_size, num_classes)
        method = self.chunking_method
        if method == "auto":
            if self.batch_chunk_size is None:
                return _default_vocab_chunk(rows, in_features, num_classes)
            method = None
        batch_chunk = num_batches if self.batch_chunk_size is None else min(self.batch_chunk_size, num_batches)
        if method is not None:
            factor = int(method.split(":", 1)[1]) if ":" in method else 1
            target = -(-num_batches // -(-num_classes // in_features))
            batch_chunk = min((1 << (target - 1).bit_length()) // factor, num_batches)
        return min(num_classes, -(-max(batch_chunk, 1) * num_classes // max(num_batches, 1)))


def _default_vocab_chunk(rows: int, in_features: int, num_classes: int) -> int:
    """Classes per chunk: a chunk's logits about the size of the input (at least 2**20 elements), a power of 2."""
    target = max(rows * in_features, 1 << 20) // max(rows, 1)
    return int(min(num_classes, max(128, 1 << (max(target, 1) - 1).bit_length())))


def _chunk_logits(x, w, b, start, size, acc):
    """Logits of classes ``[start, start + size)``: (N, K, size), classes last (the fast layout for XLA's CPU
    reductions), in the accumulation dtype."""
    wc = jax.lax.dynamic_slice_in_dim(w, start, size, 0)
    z = jnp.einsum("nd,ckd->nkc", x, wc).astype(acc)
    if b is not None:
        z = z + jax.lax.dynamic_slice_in_dim(b, start, size, 0).T.astype(acc)
    return z


def _chunks(num_classes: int, size: int) -> tuple[int, Any]:
    """Number of chunks and, for chunk i, its start (the last one shifted back to stay inside) and the mask of its
    columns not already covered by the previous chunk."""
    count = -(-num_classes // size)

    def at(i):
        start = jnp.minimum(i * size, num_classes - size)
        return start, (start + jnp.arange(size) >= i * size)[None, None, :]

    return count, at


def _loop(count: int, body, init):
    """``fori_loop`` over the chunks; one chunk (a small vocabulary) runs straight, without a loop."""
    return body(0, init) if count == 1 else jax.lax.fori_loop(0, count, body, init)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _chunked_lse(x, w, b, size, acc):
    """``logsumexp_c (x @ w[c, k].T + b[c, k])``: (N, K), over class chunks of ``size``."""
    return _chunked_lse_fwd(x, w, b, size, acc)[0]


def _chunked_lse_fwd(x, w, b, size, acc):
    count, at = _chunks(w.shape[0], size)

    def body(i, carry):
        m, s = carry
        start, fresh = at(i)
        z = jnp.where(fresh, _chunk_logits(x, w, b, start, size, acc), -jnp.inf)
        m_new = jnp.maximum(m, z.max(-1))
        return m_new, s * jnp.exp(m - m_new) + jnp.exp(z - m_new[..., None]).sum(-1)

    shape = (x.shape[0], w.shape[1])
    m, s = _loop(count, body, (jnp.full(shape, -jnp.inf, acc), jnp.zeros(shape, acc)))
    lse = m + jnp.log(s)
    return lse, (x, w, b, lse)


def _chunked_lse_bwd(size, acc, res, g):
    x, w, b, lse = res
    count, at = _chunks(w.shape[0], size)
    g = g.astype(acc)

    def body(i, carry):
        dx, dw, db = carry
        start, fresh = at(i)
        p = jnp.where(fresh, jnp.exp(_chunk_logits(x, w, b, start, size, acc) - lse[..., None]), 0.0) * g[..., None]
        dx = dx + jnp.einsum("nkc,ckd->nd", p, jax.lax.dynamic_slice_in_dim(w, start, size, 0).astype(acc))
        dwc = jnp.einsum("nkc,nd->ckd", p, x.astype(acc))
        dw = jax.lax.dynamic_update_slice_in_dim(
            dw, jax.lax.dynamic_slice_in_dim(dw, start, size, 0) + dwc.astype(dw.dtype), start, 0)
        if db is not None:
            db = jax.lax.dynamic_update_slice_in_dim(
                db, jax.lax.dynamic_slice_in_dim(db, start, size, 0) + p.sum(0).T.astype(db.dtype), start, 0)
        return dx, dw, db

    init = (jnp.zeros(x.shape, acc), jnp.zeros_like(w), None if b is None else jnp.zeros_like(b))
    dx, dw, db = _loop(count, body, init)
    return dx.astype(x.dtype), dw, db


_chunked_lse.defvjp(_chunked_lse_fwd, _chunked_lse_bwd)


@functools.partial(jax.jit, static_argnames=("reduction", "probabilities", "smooth", "size", "acc", "out_shape"))
def _linear_ce(x, w, b, t, weight, ignore_index, label_smoothing, *, reduction, probabilities, smooth, size, acc,
               out_shape):
    """``x`` (N, D), ``w`` (C, K, D), ``b`` (C, K) or None; ``t`` class indices (N, K) or probabilities (N, C, K)."""
    c, k = w.shape[0], w.shape[1]
    lse = _chunked_lse(x, w, b, size, acc)
    wc = jnp.ones((c,), acc) if weight is None else weight.astype(acc)
    if probabilities:
        t = t.astype(acc) * (1 - label_smoothing) + label_smoothing / c
        coef = t * wc[None, :, None]  # (N, C, K)
        picked = jnp.einsum("nd,nkd->nk", x, jnp.einsum("nck,ckd->nkd", coef, w.astype(acc)),
                            preferred_element_type=acc)
        if b is not None:
            picked = picked + jnp.einsum("nck,ck->nk", coef, b.astype(acc))
        loss = lse * coef.sum(1) - picked
        if reduction == "mean":
            return (loss.sum() / loss.size).astype(x.dtype)
        loss = loss.sum() if reduction == "sum" else loss.reshape(out_shape)
        return loss.astype(x.dtype)
    ignored = t == ignore_index
    bad = ~ignored & ((t < 0) | (t >= c))
    safe = jnp.where(ignored | bad, 0, t)
    rows = w[safe, jnp.arange(k)[None, :]]  # (N, K, D): the target classes' weight rows
    z_t = jnp.einsum("nd,nkd->nk", x, rows, preferred_element_type=acc)
    if b is not None:
        z_t = z_t + b[safe, jnp.arange(k)[None, :]].astype(acc)
    w_t = jnp.where(ignored, 0.0, wc[safe])
    loss = jnp.where(bad, jnp.nan, (lse - z_t) * w_t)  # out-of-range targets (only reachable under jit): NaN
    if smooth:  # sum_c w_c (lse - z_c), without the target's weight
        zbar = jnp.einsum("nd,kd->nk", x, jnp.einsum("c,ckd->kd", wc, w.astype(acc)), preferred_element_type=acc)
        if b is not None:
            zbar = zbar + jnp.einsum("c,ck->k", wc, b.astype(acc))
        smooth = jnp.where(ignored, 0.0, lse * wc.sum() - zbar)
        loss = (1 - label_smoothing) * loss + (label_smoothing / c) * smooth
    if reduction == "none":
        return loss.reshape(out_shape).astype(x.dtype)
    if reduction == "sum":
        return loss.sum().astype(x.dtype)
    return _reduce(loss, "mean", w_t).astype(x.dtype)


def linear_cross_entropy(input: ArrayLike, linear_weight: ArrayLike, target: ArrayLike, *,
                         linear_bias: ArrayLike | None = None, weight: ArrayLike | None = None,
                         reduction: str = "mean", ignore_index: int | None = None, label_smoothing: float = 0.0,
                         options: LinearCrossEntropyOptions | None = None) -> jax.Array:
    """``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)`` without all the logits at once.

    ``input`` is ``(N, in_features)`` or ``(in_features,)``; ``linear_weight`` ``(C, in_features)`` or
    ``(C, d1, ..., dK, in_features)`` for a K-dimensional loss (logits ``(N, C, d1, ..., dK)``); ``target`` holds
    class indices ``(N, d1, ..., dK)`` or class probabilities of the logits' shape. ``ignore_index=None`` means
    -100 for class indices and is required for probabilities, as in torch. The logits are computed in chunks
    over the classes (``options`` sizes them; see :class:`LinearCrossEntropyOptions`), forward and backward, so
    peak memory stays near one chunk's logits instead of ``N x C``; ``options=None`` uses a default chunk size
    (torch's ``None`` means its unchunked reference path: the results are the same to rounding).

    >>> import jax.numpy as jnp, jnn.functional as F
    >>> x, w = jnp.ones((2, 3)), jnp.zeros((4, 3))
    >>> round(float(F.linear_cross_entropy(x, w, jnp.array([0, 3]))), 4)
    1.3863
    """
    fn = "linear_cross_entropy"
    x, w = jnp.asarray(input), jnp.asarray(linear_weight)
    t = target if isinstance(target, jax.Array) else jnp.asarray(target)
    if x.ndim < 1 or x.ndim > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {x.ndim}")
    if w.ndim < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {w.ndim}")
    if x.shape[-1] != w.shape[-1]:
        raise RuntimeError("expected equal input and linear_weight last dimensions (in_features), "
                           f"got {x.shape[-1]} and {w.shape[-1]}, respectively")
    c, out_features, d = w.shape[0], w.shape[1:-1], w.shape[-1]
    b = None if linear_bias is None else jnp.asarray(linear_bias)
    if b is not None and b.shape != (c, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(c, *out_features)}, got {tuple(b.shape)}")
    unbatched = x.ndim == 1
    if out_features and unbatched:
        raise RuntimeError(f"K-dimensional loss defined by linear_weight shape {tuple(w.shape)} requires batched "
                           f"input, (N, {d}), got unbatched input with shape {tuple(x.shape)}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{fn}: {reduction!r} is not a valid value for reduction (expected 'none', 'mean', 'sum')")
    traced_smoothing = isinstance(label_smoothing, jax.core.Tracer)
    if not traced_smoothing and not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    n = 1 if unbatched else x.shape[0]
    logits_shape = (*x.shape[:-1], c, *out_features)
    probabilities = tuple(t.shape) == logits_shape
    if probabilities and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    if ignore_index is None:
        ignore_index = -100
    elif not isinstance(ignore_index, jax.core.Tracer):
        ignore_index = int(ignore_index)
    if weight is not None:
        weight = jnp.asarray(weight)
        if weight.shape != (c,):
            raise ValueError(f"{fn}: weight tensor should be defined either for all {c} classes or no classes but "
                             f"got weight tensor of shape: {tuple(weight.shape)}")
    k = math.prod(out_features)
    if probabilities:
        if not jnp.issubdtype(t.dtype, jnp.inexact):
            raise TypeError(f"{fn}: Expected floating point type for target with class probabilities, got {t.dtype}")
        t = t.reshape(n, c, k)
        out_shape = () if unbatched else (n, *out_features)
    else:
        want = () if unbatched else (n, *out_features)
        if not unbatched and (t.ndim == 0 or t.shape[0] != n):
            raise ValueError(f"Expected input batch_size ({n}) to match target batch_size "
                             f"({t.shape[0] if t.ndim else 'none: scalar target'}).")
        if not jnp.issubdtype(t.dtype, jnp.integer):
            raise TypeError(f"{fn}: expected an integer class-index target (int32, int64 or uint8), got dtype "
                            f"{t.dtype} (class probabilities need a target of the logits' shape {logits_shape})")
        if tuple(t.shape) != want:
            raise ValueError(f"{fn}: expected target size {want} for logits of shape {logits_shape}, got "
                             f"{tuple(t.shape)}")
        _check_bounds(fn, t, c, ignore_index)
        t = t.reshape(n, k)
        t = t if t.dtype == jnp.int64 else t.astype(jnp.int32)
        out_shape = want
    options = LinearCrossEntropyOptions() if options is None else options
    if not isinstance(options, LinearCrossEntropyOptions):
        raise TypeError(f"{fn}: options must be a jnn.LinearCrossEntropyOptions or None, got "
                        f"{type(options).__name__}")
    dtype = jnp.result_type(x, w)
    acc = options.acc_dtype or (jnp.float32 if dtype in (jnp.float16, jnp.bfloat16) else dtype)
    size = options._vocab_chunk(n, d, c, n * k)
    return _linear_ce(x.reshape(n, d), w.reshape(c, k, d), None if b is None else b.reshape(c, k), t, weight,
                      ignore_index, label_smoothing, reduction=reduction, probabilities=probabilities,
                      smooth=traced_smoothing or bool(label_smoothing), size=size, acc=jnp.dtype(acc),
                      out_shape=out_shape)
