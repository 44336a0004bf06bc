"""Normalisation layers: LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm, CrossMapLRN2d."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn import functional as F
from jnn.modules._utils import affine_parameters, factory_dtype, place, reset_affine
from jnn.modules.module import Module, Parameter

__all__ = ["LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm", "CrossMapLRN2d"]


def _as_shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(d) for d in normalized_shape)


class LayerNorm(Module):
    """Normalises over the trailing ``normalized_shape`` dims; ``weight`` (ones) and ``bias`` (zeros) have that
    shape when ``elementwise_affine``.

    Args:
        normalized_shape: the trailing shape normalised over (an int or a tuple).
        eps: added to the variance for numerical stability.
        elementwise_affine: learn a per-element ``weight`` (ones) and ``bias`` (zeros).
        bias: learn the ``bias`` too (with ``elementwise_affine``).
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).

    >>> import jax.numpy as jnp, jnn as nn
    >>> ln = nn.LayerNorm((2, 3))
    >>> ln, ln(jnp.ones((4, 2, 3))).shape
    (LayerNorm((2, 3), eps=1e-05, elementwise_affine=True, bias=True), (4, 2, 3))
    """

    def __init__(
        self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
        bias: bool = True, device: Any = None, dtype: Any = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = factory_dtype(dtype, type(self).__name__)
        affine_parameters(self, self.normalized_shape, elementwise_affine, bias, dtype, device)

    def reset_parameters(self) -> None:
        reset_affine(self)

    def forward(self, input: jax.Array) -> jax.Array:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalises ``(N, C, *)`` input over groups of ``num_channels // num_groups`` channels; per-channel
    ``weight``/``bias`` when ``affine``.

    Args:
        num_groups: number of groups the channels are split into.
        num_channels: number of channels, dimension 1 of the input; divisible by ``num_groups``.
        eps: added to the variance for numerical stability.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> gn = nn.GroupNorm(2, 4)
    >>> gn, gn(jnp.ones((3, 4, 5))).shape
    (GroupNorm(2, 4, eps=1e-05, affine=True, bias=True), (3, 4, 5))
    """

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device: Any = None,
        dtype: Any = None, *, bias: bool = True,
    ) -> None:
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        dtype = factory_dtype(dtype, type(self).__name__)
        affine_parameters(self, num_channels, affine, bias, dtype, device)

    def reset_parameters(self) -> None:
        reset_affine(self)

    def forward(self, input: jax.Array) -> jax.Array:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    """Divides by the root mean square over the trailing ``normalized_shape`` dims, then scales by ``weight``.

    Args:
        normalized_shape: the trailing shape normalised over (an int or a tuple).
        eps: added to the mean square; ``None`` uses the input dtype's machine epsilon, as PyTorch.
        elementwise_affine: learn a per-element ``weight`` (ones).
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.RMSNorm([2, 3])
    RMSNorm((2, 3), eps=None, elementwise_affine=True)
    """

    def __init__(
        self, normalized_shape: int | Sequence[int], eps: float | None = None, elementwise_affine: bool = True,
        device: Any = None, dtype: Any = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = factory_dtype(dtype, type(self).__name__)
        if elementwise_affine:
            self.weight = Parameter(place(jnp.ones(self.normalized_shape, dtype), device))
        else:
            self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            self.weight = jnp.ones_like(self.weight)

    def forward(self, x: jax.Array) -> jax.Array:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class LocalResponseNorm(Module):
    """Local response normalisation across channels (dim 1) of ``(N, C, *)`` input; see
    :func:`jnn.functional.local_response_norm`.

    Args:
        size: number of neighbouring channels normalised over.
        alpha: multiplicative factor.
        beta: exponent.
        k: additive factor.

    >>> import jax.numpy as jnp, jnn as nn
    >>> lrn = nn.LocalResponseNorm(2)
    >>> lrn, lrn(jnp.ones((1, 4, 3, 3))).shape
    (LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0), (1, 4, 3, 3))
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: jax.Array) -> jax.Array:
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class CrossMapLRN2d(LocalResponseNorm):
    """torch's legacy cross-channel LRN for 4D ``(N, C, H, W)`` input:
    ``x / (k + alpha / size * sum of squares over a window of size channels) ** beta``.

    Args:
        size: number of neighbouring channels normalised over.
        alpha: multiplicative factor.
        beta: exponent.
        k: additive factor.

    >>> import jax.numpy as jnp, jnn as nn
    >>> lrn = nn.CrossMapLRN2d(3)
    >>> lrn, lrn(jnp.ones((1, 4, 2, 2))).shape
    (CrossMapLRN2d(3, alpha=0.0001, beta=0.75, k=1), (1, 4, 2, 2))
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1) -> None:
        super().__init__(size, alpha, beta, k)  # same attributes and repr; only torch's default k differs

    def forward(self, input: jax.Array) -> jax.Array:
        x = jnp.asarray(input)
        if x.ndim != 4:
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {x.ndim}D instead.")
        # torch's _cross_map_lrn2d: a running window sum over channels [c - pre + 1, c + pre - 1] (clipped),
        # pre = (size - 1) // 2 + 1, in which channel 0, once added, is never removed again.
        c, pre = x.shape[1], (self.size - 1) // 2 + 1
        sq = jnp.square(x.astype(jnp.promote_types(x.dtype, jnp.float32)))
        csum = jnp.concatenate([jnp.zeros_like(sq[:, :1]), jnp.cumsum(sq, axis=1)], axis=1)
        idx = np.arange(c)
        hi, lo = np.minimum(idx + pre, c), np.maximum(idx - pre + 1, 0)
        summed = csum[:, hi] - csum[:, lo] + jnp.where((lo >= 1)[:, None, None], sq[:, :1], 0.0)
        scale = self.k + (self.alpha / self.size) * summed
        return (x / scale**self.beta).astype(x.dtype)
