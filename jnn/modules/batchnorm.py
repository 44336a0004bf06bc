"""Batch normalisation: BatchNorm1d and BatchNorm2d, with PyTorch's running statistics."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jnn import functional as F
from jnn.modules._utils import factory_dtype, place
from jnn.modules.module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    """Shared parts of BatchNorm{1,2}d: ``weight``/``bias`` (affine), ``running_mean``/``running_var``/
    ``num_batches_tracked`` buffers, updated on the module in training mode (unbiased variance;
    ``momentum=None`` is a cumulative average). ``num_batches_tracked`` is int32 unless JAX's x64 is on."""

    _expected_dims: tuple[int, ...]

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
        track_running_stats: bool = True, device: Any = None, dtype: Any = None, *, bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = factory_dtype(dtype, type(self).__name__)
        if affine:
            self.weight = Parameter(place(jnp.ones(num_features, dtype), device))
            if bias:
                self.bias = Parameter(place(jnp.zeros(num_features, dtype), device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", place(jnp.zeros(num_features, dtype), device))
            self.register_buffer("running_var", place(jnp.ones(num_features, dtype), device))
            count_dtype = jax.dtypes.canonicalize_dtype(jnp.int64)
            self.register_buffer("num_batches_tracked", place(jnp.zeros((), count_dtype), device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean = jnp.zeros_like(self.running_mean)
            self.running_var = jnp.ones_like(self.running_var)
            self.num_batches_tracked = jnp.zeros_like(self.num_batches_tracked)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight = jnp.ones_like(self.weight)
            if self.bias is not None:
                self.bias = jnp.zeros_like(self.bias)

    def _check_input_dim(self, input: jax.Array) -> None:
        if input.ndim not in self._expected_dims:
            wanted = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ValueError(f"expected {wanted} input (got {input.ndim}D input)")

    def forward(self, input: jax.Array) -> jax.Array:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked = self.num_batches_tracked + 1
            if self.momentum is None:
                factor = 1.0 / self.num_batches_tracked.astype(jnp.float32)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        output, mean, var = F.batch_norm_with_stats(
            input, self.running_mean if track else None, self.running_var if track else None,
            self.weight, self.bias, use_batch_stats, factor, self.eps,
        )
        if use_batch_stats and track and self.running_mean is not None:
            self.running_mean, self.running_var = mean, var
        return output

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm over ``(N, C)`` or ``(N, C, L)`` input.

    >>> import jax.numpy as jnp, jnn as nn
    >>> bn = nn.BatchNorm1d(3)
    >>> _ = bn(jnp.arange(12.0).reshape(4, 3))
    >>> bn.running_mean.tolist()   # 0.1 * batch mean
    [0.45000001788139343, 0.550000011920929, 0.6500000357627869]
    """

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over ``(N, C, H, W)`` input."""

    _expected_dims = (4,)
