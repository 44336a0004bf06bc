"""Instance normalisation: InstanceNorm1d/2d/3d (and Lazy variants), optionally with running statistics."""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jnn import functional as F
from jnn.modules.batchnorm import _LazyNormBase, _NormBase

__all__ = [
    "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
]


class _InstanceNorm(_NormBase):
    """Normalises each ``(n, c)`` slice over its spatial dims. With ``track_running_stats`` the running
    statistics move on the module in training (``num_batches_tracked`` is not counted, as in torch) and are
    used in evaluation."""

    _no_batch_dim: int

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = False,
        track_running_stats: bool = False, device: Any = None, dtype: Any = None, *, bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def _check_input_dim(self, input: jax.Array) -> None:
        d = self._no_batch_dim
        if input.ndim not in (d, d + 1):
            raise ValueError(f"expected {d}D or {d + 1}D input (got {input.ndim}D input)")

    def _apply_instance_norm(self, input: jax.Array) -> jax.Array:
        use_input_stats = self.training or not self.track_running_stats
        out, mean, var = F.instance_norm_with_stats(
            input, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats,
            self.momentum if self.momentum is not None else 0.0, self.eps,
        )
        if use_input_stats and self.running_mean is not None:
            self.running_mean, self.running_var = mean, var
        return out

    def forward(self, input: jax.Array) -> jax.Array:
        input = jnp.asarray(input)
        self._check_input_dim(input)
        feature_dim = input.ndim - self._no_batch_dim
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(
                    f"expected input's size at dim={feature_dim} to match num_features ({self.num_features}), "
                    f"but got: {input.shape[feature_dim]}."
                )
            warnings.warn(
                f"input's size at dim={feature_dim} does not match num_features. You can silence this warning by "
                "not passing in num_features, which is not used because affine=False",
                stacklevel=2,
            )
        if input.ndim == self._no_batch_dim:
            return self._apply_instance_norm(input[None])[0]
        return self._apply_instance_norm(input)


class InstanceNorm1d(_InstanceNorm):
    """Instance norm over ``(N, C, L)`` or unbatched ``(C, L)`` input.

    Args:
        num_features: number of channels ``C`` (dimension 1 of the input).
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros); off by default, as in PyTorch.
        track_running_stats: keep running statistics and use them in eval mode; off by default, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> m = nn.InstanceNorm1d(2, eps=0.0)
    >>> m
    InstanceNorm1d(2, eps=0.0, momentum=0.1, affine=False, bias=False, track_running_stats=False)
    >>> m(jnp.array([[1.0, 3.0], [2.0, 6.0]])).tolist()
    [[-1.0, 1.0], [-1.0, 1.0]]
    """

    _no_batch_dim = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance norm over ``(N, C, H, W)`` or unbatched ``(C, H, W)`` input.

    Args:
        num_features: number of channels ``C`` (dimension 1 of the input).
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros); off by default, as in PyTorch.
        track_running_stats: keep running statistics and use them in eval mode; off by default, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.InstanceNorm2d(3, affine=True)(jnp.ones((2, 3, 4, 4))).shape
    (2, 3, 4, 4)
    """

    _no_batch_dim = 3


class InstanceNorm3d(_InstanceNorm):
    """Instance norm over ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)`` input.

    Args:
        num_features: number of channels ``C`` (dimension 1 of the input).
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros); off by default, as in PyTorch.
        track_running_stats: keep running statistics and use them in eval mode; off by default, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.InstanceNorm3d(3, track_running_stats=True)(jnp.ones((3, 2, 2, 2))).shape
    (3, 2, 2, 2)
    """

    _no_batch_dim = 4


class LazyInstanceNorm1d(_LazyNormBase, _InstanceNorm):
    """:class:`InstanceNorm1d` with ``num_features`` inferred from the first input (torch's defaults:
    ``affine=True, track_running_stats=True``). Unlike torch, an unbatched first input ``(C, L)`` gives ``C``.

    Args:
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros); off by default, as in PyTorch.
        track_running_stats: keep running statistics and use them in eval mode; off by default, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> m = nn.LazyInstanceNorm1d()
    >>> _ = m(jnp.ones((2, 3, 4)))
    >>> m
    InstanceNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    cls_to_become = InstanceNorm1d
    _no_batch_dim = InstanceNorm1d._no_batch_dim


class LazyInstanceNorm2d(_LazyNormBase, _InstanceNorm):
    """:class:`InstanceNorm2d` with ``num_features`` inferred from the first input.

    Args:
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros); off by default, as in PyTorch.
        track_running_stats: keep running statistics and use them in eval mode; off by default, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.LazyInstanceNorm2d()(jnp.ones((3, 2, 2))).shape
    (3, 2, 2)
    """

    cls_to_become = InstanceNorm2d
    _no_batch_dim = InstanceNorm2d._no_batch_dim


class LazyInstanceNorm3d(_LazyNormBase, _InstanceNorm):
    """:class:`InstanceNorm3d` with ``num_features`` inferred from the first input.

    Args:
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros); off by default, as in PyTorch.
        track_running_stats: keep running statistics and use them in eval mode; off by default, as in PyTorch.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jnn as nn
    >>> nn.LazyInstanceNorm3d(affine=False)
    LazyInstanceNorm3d(0, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=True)
    """

    cls_to_become = InstanceNorm3d
    _no_batch_dim = InstanceNorm3d._no_batch_dim
