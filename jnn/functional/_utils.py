"""Argument helpers shared by the functional families."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp


def _ntuple(v: int | Sequence[int], n: int, name: str, fn: str) -> tuple[int, ...]:
    """``3 -> (3,) * n``; a length-1 sequence is repeated; any other length than ``n`` is an error naming ``fn``."""
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            v = tuple(v) * n
        if len(v) != n:
            raise ValueError(f"{fn}: {name} must be a single int or a tuple of {n} ints, got {v!r}")
        return tuple(int(e) for e in v)
    return (int(v),) * n


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
