"""torch's top-level neural-network functions (``torch.conv2d``, ``torch.layer_norm``, ``torch.dropout``, ...)
with their ATen signatures, over :mod:`jnn.functional`. Where ATen's argument order differs from
``torch.nn.functional``'s, this keeps ATen's: ``torch.dropout(x, p, train)``, ``torch.embedding(weight, indices)``,
``torch.batch_norm(x, weight, bias, mean, var, training, momentum, eps, cudnn)``, integer loss reductions
(0 none, 1 mean, 2 sum).

>>> import jax.numpy as jnp
>>> from jnn import ops
>>> ops.embedding(jnp.eye(3), jnp.array([2, 0])).tolist()
[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

import jnn.functional as F

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "pixel_shuffle",
           "pixel_unshuffle", "channel_shuffle", "bilinear", "hardshrink", "prelu", "avg_pool1d",
           "adaptive_avg_pool1d", "cosine_similarity", "pairwise_distance", "pdist", "celu", "selu", "threshold",
           "rms_norm", "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "layer_norm", "group_norm",
           "batch_norm", "instance_norm", "embedding", "dropout", "alpha_dropout", "feature_dropout",
           "feature_alpha_dropout", "rrelu", "constant_pad_nd", "kl_div", "binary_cross_entropy_with_logits",
           "hinge_embedding_loss", "poisson_nll_loss", "margin_ranking_loss", "triplet_margin_loss",
           "cosine_embedding_loss"]

# the same signature as torch.nn.functional's
conv1d, conv2d, conv3d = F.conv1d, F.conv2d, F.conv3d
conv_transpose1d, conv_transpose2d, conv_transpose3d = F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d
pixel_shuffle, pixel_unshuffle, channel_shuffle = F.pixel_shuffle, F.pixel_unshuffle, F.channel_shuffle
bilinear, hardshrink, prelu, celu, selu, threshold = F.bilinear, F.hardshrink, F.prelu, F.celu, F.selu, F.threshold
avg_pool1d, adaptive_avg_pool1d = F.avg_pool1d, F.adaptive_avg_pool1d
max_pool1d, max_pool2d, max_pool3d = F.max_pool1d, F.max_pool2d, F.max_pool3d
cosine_similarity, pairwise_distance, pdist, rms_norm = F.cosine_similarity, F.pairwise_distance, F.pdist, F.rms_norm

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction: int | str) -> str:
    return reduction if isinstance(reduction, str) else _REDUCTIONS[reduction]


def adaptive_max_pool1d(input: Any, output_size: Any) -> tuple[jax.Array, jax.Array]:
    """``(values, indices)``, as ATen returns them."""
    return F.adaptive_max_pool1d(input, output_size, return_indices=True)


def layer_norm(input: Any, normalized_shape: Sequence[int], weight: Any = None, bias: Any = None,
               eps: float = 1e-5, cudnn_enable: bool = True) -> jax.Array:
    """torch.layer_norm: :func:`jnn.functional.layer_norm` (``cudnn_enable`` has no meaning here)."""
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5,
               cudnn_enabled: bool = True) -> jax.Array:
    """torch.group_norm: :func:`jnn.functional.group_norm`."""
    return F.group_norm(input, num_groups, weight, bias, eps)


def batch_norm(input: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any, training: bool,
               momentum: float, eps: float, cudnn_enabled: bool = True) -> jax.Array:
    """torch.batch_norm (ATen's order: weight and bias first): :func:`jnn.functional.batch_norm`."""
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any, use_input_stats: bool,
                  momentum: float, eps: float, cudnn_enabled: bool = True) -> jax.Array:
    """torch.instance_norm (ATen's order): :func:`jnn.functional.instance_norm`."""
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def embedding(weight: Any, indices: Any, padding_idx: int = -1, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> jax.Array:
    """torch.embedding (ATen's order: the table first): rows of ``weight``. ``padding_idx`` only matters for the
    gradient, which JAX takes through the lookup as for any row."""
    return F.embedding(indices, weight)


def dropout(input: Any, p: float, train: bool) -> jax.Array:
    """torch.dropout(input, p, train): :func:`jnn.functional.dropout`."""
    return F.dropout(input, p, train)


def alpha_dropout(input: Any, p: float, train: bool) -> jax.Array:
    """torch.alpha_dropout(input, p, train)."""
    return F.alpha_dropout(input, p, train)


def feature_dropout(input: Any, p: float, train: bool) -> jax.Array:
    """torch.feature_dropout(input, p, train): whole channels (dim 1) zeroed."""
    return F.dropout2d(input, p, train) if input.ndim == 4 else F.dropout1d(input, p, train) if input.ndim in (
        2, 3) else F.dropout3d(input, p, train)


def feature_alpha_dropout(input: Any, p: float, train: bool) -> jax.Array:
    """torch.feature_alpha_dropout(input, p, train)."""
    return F.feature_alpha_dropout(input, p, train)


def rrelu(input: Any, lower: float = 1 / 8, upper: float = 1 / 3, training: bool = False,
          generator: Any = None) -> jax.Array:
    """torch.rrelu: :func:`jnn.functional.rrelu`."""
    return F.rrelu(input, lower, upper, training)


def constant_pad_nd(input: Any, pad: Sequence[int], value: float = 0) -> jax.Array:
    """torch.constant_pad_nd: :func:`jnn.functional.pad` with ``value``."""
    return F.pad(input, pad, "constant", value)


def kl_div(input: Any, target: Any, reduction: int = 1, *, log_target: bool = False) -> jax.Array:
    """torch.kl_div (ATen: reduction 1 is the mean over elements, not batchmean)."""
    return F.kl_div(input, target, reduction=_reduction(reduction), log_target=log_target)


def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any = None, pos_weight: Any = None,
                                     reduction: int = 1) -> jax.Array:
    """torch.binary_cross_entropy_with_logits (ATen's order: ``pos_weight`` before ``reduction``)."""
    return F.binary_cross_entropy_with_logits(input, target, weight, reduction=_reduction(reduction),
                                              pos_weight=pos_weight)


def hinge_embedding_loss(input: Any, target: Any, margin: float = 1.0, reduction: int = 1) -> jax.Array:
    """torch.hinge_embedding_loss."""
    return F.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


def poisson_nll_loss(input: Any, target: Any, log_input: bool, full: bool, eps: float, reduction: int) -> jax.Array:
    """torch.poisson_nll_loss (ATen: every argument positional)."""
    return F.poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_reduction(reduction))


def margin_ranking_loss(input1: Any, input2: Any, target: Any, margin: float = 0.0, reduction: int = 1) -> jax.Array:
    """torch.margin_ranking_loss."""
    return F.margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def triplet_margin_loss(anchor: Any, positive: Any, negative: Any, margin: float = 1.0, p: float = 2.0,
                        eps: float = 1e-6, swap: bool = False, reduction: int = 1) -> jax.Array:
    """torch.triplet_margin_loss."""
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction=_reduction(reduction))


def cosine_embedding_loss(input1: Any, input2: Any, target: Any, margin: float = 0.0, reduction: int = 1) -> jax.Array:
    """torch.cosine_embedding_loss."""
    return F.cosine_embedding_loss(input1, input2, target, margin, reduction=_reduction(reduction))
