"""Convolutions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jnn.functional._utils import _IntOrPair, _pair

__all__ = ["conv2d"]


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
