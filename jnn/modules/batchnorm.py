"""Batch normalisation: BatchNorm1d/2d/3d, their Lazy variants and SyncBatchNorm, with PyTorch's running statistics."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jnn import functional as F
from jnn.modules._utils import affine_parameters, factory_dtype, refill, reset_affine
from jnn.modules.lazy import LazyModuleMixin
from jnn.modules.module import Module, Parameter
from jnn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
    "SyncBatchNorm",
]


class _NormBase(Module):
    """Parameters and buffers shared by the batch and instance norms: ``weight``/``bias`` (affine),
    ``running_mean``/``running_var``/``num_batches_tracked`` (track_running_stats).
    ``num_batches_tracked`` is int32 unless JAX's x64 is on."""

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
        count_dtype = jax.dtypes.canonicalize_dtype(jnp.int64)
        stats = {"running_mean": (num_features, 0, dtype), "running_var": (num_features, 1, dtype),
                 "num_batches_tracked": ((), 0, count_dtype)}
        affine_parameters(self, num_features, affine, bias, dtype, device,
                          stats if track_running_stats else dict.fromkeys(stats))

    _version = 2  # version 2 added num_batches_tracked

    def _load_from_state_dict(
        self, state_dict: dict, prefix: str, local_metadata: dict, strict: bool, missing_keys: list[str],
        unexpected_keys: list[str], error_msgs: list[str],
    ) -> None:
        # As torch: a state dict saved before version 2 (or without versions) may lack num_batches_tracked.
        version = local_metadata.get("version", None)
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats and key not in state_dict:
            current = self._buffers.get("num_batches_tracked")
            state_dict[key] = current if current is not None and not is_lazy(current) else jnp.zeros((), jnp.int32)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean = refill(self.running_mean, 0)
            self.running_var = refill(self.running_var, 1)
            self.num_batches_tracked = refill(self.num_batches_tracked, 0)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        reset_affine(self)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class _BatchNorm(_NormBase):
    """Shared parts of BatchNorm{1,2,3}d: the buffers are updated on the module in training mode (unbiased
    variance; ``momentum=None`` is a cumulative average)."""

    _expected_dims: tuple[int, ...]
    _axis_name: str | None = None  # SyncBatchNorm's named axis

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
            axis_name=self._axis_name if self.training else None,
        )
        if use_batch_stats and track and self.running_mean is not None:
            self.running_mean, self.running_var = mean, var
        return output


class BatchNorm1d(_BatchNorm):
    """Batch norm over ``(N, C)`` or ``(N, C, L)`` input.

    Args:
        num_features: number of channels ``C`` (dimension 1 of the input).
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones; ``None`` for a cumulative average.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: keep ``running_mean``/``running_var`` buffers and use them in eval mode.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> bn = nn.BatchNorm1d(3)
    >>> _ = bn(jnp.arange(12.0).reshape(4, 3))
    >>> bn.running_mean.tolist()   # 0.1 * batch mean
    [0.45000001788139343, 0.550000011920929, 0.6500000357627869]
    """

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over ``(N, C, H, W)`` input.

    Args:
        num_features: number of channels ``C`` (dimension 1 of the input).
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones; ``None`` for a cumulative average.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: keep ``running_mean``/``running_var`` buffers and use them in eval mode.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.BatchNorm2d(3)(jnp.ones((2, 3, 4, 4))).shape
    (2, 3, 4, 4)
    """

    _expected_dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch norm over ``(N, C, D, H, W)`` input.

    Args:
        num_features: number of channels ``C`` (dimension 1 of the input).
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones; ``None`` for a cumulative average.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: keep ``running_mean``/``running_var`` buffers and use them in eval mode.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.BatchNorm3d(3)
    BatchNorm3d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    _expected_dims = (5,)


class _LazyNormBase(LazyModuleMixin, _NormBase):
    """A norm whose ``num_features`` is taken from the first input's channel dim (or a state dict, see
    :mod:`jnn.modules.lazy`); the module then becomes ``cls_to_become``. Until then its parameters and running
    statistics have shape ``(0,)`` and are listed in ``state_dict`` (torch's uninitialised parameters)."""

    cls_to_become: type[_NormBase]
    _lazy_listed = True
    _lazy_size_name = "num_features"
    _lazy_first_call = "num_features is inferred from the first input, which creates the parameters and statistics"

    def __init__(
        self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True, track_running_stats: bool = True,
        device: Any = None, dtype: Any = None, *, bias: bool = True,
    ) -> None:
        super().__init__(0, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        dtype = factory_dtype(dtype, type(self).__name__)
        slots: dict[str, UninitializedParameter | UninitializedBuffer] = {
            name: UninitializedParameter(device=device, dtype=dtype)
            for name in ("weight", "bias") if self._parameters.get(name) is not None
        }
        slots.update((name, UninitializedBuffer(device=device, dtype=dtype))
                     for name in ("running_mean", "running_var") if self._buffers.get(name) is not None)
        self._lazy_register(slots)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params():
            super().reset_parameters()

    def _lazy_size_from_input(self, input: Any) -> int:
        no_batch_dim = getattr(self, "_no_batch_dim", None)  # instance norms accept unbatched input
        shape = jnp.shape(input)
        self._check_input_dim(input)  # type: ignore[attr-defined]
        return int(shape[1 if no_batch_dim is None else len(shape) - no_batch_dim])

    def _lazy_size_from_state(self, shapes: dict[str, tuple[int, ...]]) -> int | None:
        sizes = [shape[0] for shape in shapes.values() if len(shape) == 1]
        return sizes[0] if sizes else None

    def _lazy_materialize(self, num_features: int) -> None:
        self.num_features = num_features
        for name, placeholder in self.__dict__["_lazy_slots"].items():
            fill = 1.0 if name in ("weight", "running_var") else 0.0
            slots = self._parameters if isinstance(placeholder, UninitializedParameter) else self._buffers
            slots[name] = placeholder.materialize((num_features,), fill)

    def forward(self, input: jax.Array) -> jax.Array:
        self.initialize_parameters(input)
        return type(self).forward(self, input)  # the class it became


class LazyBatchNorm1d(_LazyNormBase, _BatchNorm):
    """:class:`BatchNorm1d` with ``num_features`` inferred from the first input's dim 1.

    Args:
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones; ``None`` for a cumulative average.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: keep ``running_mean``/``running_var`` buffers and use them in eval mode.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> bn = nn.LazyBatchNorm1d()
    >>> _ = bn(jnp.ones((4, 3)))
    >>> bn
    BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    cls_to_become = BatchNorm1d
    _expected_dims = BatchNorm1d._expected_dims


class LazyBatchNorm2d(_LazyNormBase, _BatchNorm):
    """:class:`BatchNorm2d` with ``num_features`` inferred from the first input's dim 1.

    Args:
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones; ``None`` for a cumulative average.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: keep ``running_mean``/``running_var`` buffers and use them in eval mode.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jnn as nn
    >>> nn.LazyBatchNorm2d()
    LazyBatchNorm2d(0, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    cls_to_become = BatchNorm2d
    _expected_dims = BatchNorm2d._expected_dims


class LazyBatchNorm3d(_LazyNormBase, _BatchNorm):
    """:class:`BatchNorm3d` with ``num_features`` inferred from the first input's dim 1.

    Args:
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones; ``None`` for a cumulative average.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: keep ``running_mean``/``running_var`` buffers and use them in eval mode.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.LazyBatchNorm3d()(jnp.ones((2, 5, 1, 1, 2))).shape
    (2, 5, 1, 1, 2)
    """

    cls_to_become = BatchNorm3d
    _expected_dims = BatchNorm3d._expected_dims


class SyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are those of the whole batch across devices or shards.

    ``process_group`` (torch.distributed) is accepted and ignored; JAX names the axis instead: with
    ``axis_name`` set, the batch mean and variance are averaged over that named axis with
    ``jax.lax.pmean`` (``jax.vmap(..., axis_name=...)``, ``shard_map``, ``pmap``; shards of equal size), so
    every shard normalises with, and tracks, the statistics of the concatenated batch. Without an axis
    name it is a plain batch norm over ``(N, C, *)`` input.

    Args:
        num_features: number of channels ``C`` (dimension 1 of the input).
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch statistics in the running ones; ``None`` for a cumulative average.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: keep ``running_mean``/``running_var`` buffers and use them in eval mode.
        process_group: PyTorch's process group; jnn synchronises over ``axis_name`` instead.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        bias: learn the ``bias`` too (with ``affine``).
        axis_name: the named JAX axis (``vmap``/``shard_map``) the batch statistics are reduced over.

    >>> import jax, jax.numpy as jnp, jnn as nn
    >>> bn = nn.SyncBatchNorm(2, axis_name="batch")
    >>> x = jnp.arange(16.0).reshape(4, 2, 2)        # 4 shards of (2, 2) each
    >>> y, bn = jax.vmap(lambda m, v: (m(v), m), in_axes=(None, 0), out_axes=(0, None), axis_name="batch")(bn, x)
    >>> y.shape, round(float(y.mean()), 4)
    ((4, 2, 2), 0.0)
    """

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
        track_running_stats: bool = True, process_group: Any = None, device: Any = None, dtype: Any = None, *,
        bias: bool = True, axis_name: str | None = None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group
        self._axis_name = axis_name

    @property
    def axis_name(self) -> str | None:
        return self._axis_name

    def _check_input_dim(self, input: jax.Array) -> None:
        if input.ndim < 2:
            raise ValueError(f"expected at least 2D input (got {input.ndim}D input)")
        if input.shape[1] == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None, *,
                               axis_name: str | None = None) -> Module:
        """Replace every ``BatchNorm*d`` in ``module`` (or ``module`` itself) by a :class:`SyncBatchNorm`
        holding the same parameters, statistics and training mode.

        >>> import jnn as nn
        >>> nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.BatchNorm1d(3)), axis_name="b")[0]
        SyncBatchNorm(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
        """
        out = module
        if isinstance(module, _BatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      process_group, bias=module.bias is not None, axis_name=axis_name)
            for name in ("weight", "bias"):
                if getattr(module, name) is not None:
                    out.register_parameter(name, Parameter(getattr(module, name),
                                                           name not in module._frozen_parameters))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(out, name, getattr(module, name))
            out.training = module.training
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group, axis_name=axis_name))
        return out
