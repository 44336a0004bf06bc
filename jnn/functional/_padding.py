"""Padding."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

__all__ = ["pad"]

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
