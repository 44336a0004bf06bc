"""Loss layers: thin classes over the losses in :mod:`jnn.functional`, with torch.nn's constructors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
from jax.typing import ArrayLike

from jnn import functional as F
from jnn.functional._loss import LinearCrossEntropyOptions
from jnn.functional._utils import _get_reduction
from jnn.modules.distance import PairwiseDistance
from jnn.modules.linear import Linear
from jnn.modules.module import Module

__all__ = [
    "L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss", "HuberLoss",
    "SmoothL1Loss", "SoftMarginLoss", "MultiLabelSoftMarginLoss", "MultiLabelMarginLoss", "MultiMarginLoss",
    "CosineEmbeddingLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "TripletMarginLoss",
    "TripletMarginWithDistanceLoss", "PoissonNLLLoss", "GaussianNLLLoss", "CTCLoss", "LinearCrossEntropyLoss",
    "LinearCrossEntropyOptions",
]


class _Loss(Module):
    """Holds ``reduction`` (the deprecated ``size_average``/``reduce`` flags map onto it with torch's warning)."""

    _reductions: tuple[str, ...] = ("none", "mean", "sum")

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__()
        name = type(self).__name__
        if size_average is not None or reduce is not None:
            reduction = _get_reduction(name, size_average, reduce, reduction)
        elif reduction not in self._reductions:
            raise ValueError(f"{name}: {reduction!r} is not a valid value for reduction (expected "
                             + ", ".join(repr(r) for r in self._reductions) + ")")
        self.reduction = reduction


class _WeightedLoss(_Loss):
    """A loss with an optional ``weight`` buffer (absent from the state_dict when None, as in torch)."""

    def __init__(self, weight: ArrayLike | None = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """Mean absolute error; see :func:`jnn.functional.l1_loss`.

    Args:
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.L1Loss()(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0])).tolist()
    1.0
    """

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error; see :func:`jnn.functional.mse_loss`.

    Args:
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.MSELoss(reduction="sum")(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0])).tolist()
    4.0
    """

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.mse_loss(input, target, reduction=self.reduction)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices; see :func:`jnn.functional.nll_loss`.

    Args:
        weight: a manual rescaling weight per class, of shape ``(C,)``.
        size_average: deprecated (PyTorch's); use ``reduction``.
        ignore_index: targets equal to it contribute nothing (nor to the mean's divisor).
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.NLLLoss(weight=jnp.ones(3))
    NLLLoss()
    """

    def __init__(self, weight: ArrayLike | None = None, size_average: bool | None = None, ignore_index: int = -100,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy of logits against class indices or probabilities; see :func:`jnn.functional.cross_entropy`.

    Args:
        weight: a manual rescaling weight per class, of shape ``(C,)``.
        size_average: deprecated (PyTorch's); use ``reduction``.
        ignore_index: targets equal to it contribute nothing (nor to the mean's divisor).
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).
        label_smoothing: in [0, 1]: the share of the target mass spread uniformly over the classes.

    >>> import jax.numpy as jnp, jnn as nn
    >>> round(float(nn.CrossEntropyLoss()(jnp.zeros((2, 4)), jnp.array([0, 3]))), 4)
    1.3863
    """

    def __init__(self, weight: ArrayLike | None = None, size_average: bool | None = None, ignore_index: int = -100,
                 reduce: bool | None = None, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class BCELoss(_WeightedLoss):
    """Binary cross entropy of probabilities; see :func:`jnn.functional.binary_cross_entropy`.

    Args:
        weight: a rescaling weight broadcast against the input.
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> round(float(nn.BCELoss()(jnp.array([0.5, 1.0]), jnp.array([1.0, 1.0]))), 4)
    0.3466
    """

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross entropy; ``weight`` and ``pos_weight`` are buffers.

    See :func:`jnn.functional.binary_cross_entropy_with_logits`.

    Args:
        weight: a rescaling weight broadcast against the input.
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).
        pos_weight: a weight for the positive examples, per class.

    >>> import jax.numpy as jnp, jnn as nn
    >>> list(nn.BCEWithLogitsLoss(pos_weight=jnp.ones(3)).state_dict())
    ['pos_weight']
    """

    def __init__(self, weight: ArrayLike | None = None, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", pos_weight: ArrayLike | None = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, pos_weight=self.pos_weight,
                                                  reduction=self.reduction)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence; ``reduction`` may also be ``'batchmean'``. See :func:`jnn.functional.kl_div`.

    Args:
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'batchmean'`` (the mathematically correct one), ``'sum'`` or ``'none'``.
        log_target: the target is given as log-probabilities.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.KLDivLoss(reduction="batchmean", log_target=True)(jnp.zeros((2, 3)), jnp.zeros((2, 3))).tolist()
    0.0
    """

    _reductions = ("none", "mean", "sum", "batchmean")

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
                 log_target: bool = False) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class HuberLoss(_Loss):
    """Huber loss with threshold ``delta``; see :func:`jnn.functional.huber_loss`.

    Args:
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).
        delta: where the loss changes from quadratic to linear.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.HuberLoss(delta=2.0)(jnp.array([0.0]), jnp.array([3.0])).tolist()
    4.0
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        if not isinstance(delta, (float, int)):
            raise TypeError(f"delta must be a float or int, got: {type(delta)}")
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """Smooth L1 loss with threshold ``beta``; see :func:`jnn.functional.smooth_l1_loss`.

    Args:
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).
        beta: where the loss changes from quadratic to linear (0: plain L1).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.SmoothL1Loss(beta=0.5)(jnp.array([0.0]), jnp.array([3.0])).tolist()
    2.75
    """

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class SoftMarginLoss(_Loss):
    """Two-class logistic loss; see :func:`jnn.functional.soft_margin_loss`.

    Args:
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.SoftMarginLoss()
    SoftMarginLoss()
    """

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """One-vs-all logistic loss; see :func:`jnn.functional.multilabel_soft_margin_loss`.

    Args:
        weight: a manual rescaling weight per class, of shape ``(C,)``.
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.MultiLabelSoftMarginLoss(reduction="none")(jnp.zeros((2, 3)), jnp.ones((2, 3))).shape
    (2,)
    """

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.multilabel_soft_margin_loss(input, target, weight=self.weight, reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    """Multi-class multi-label hinge loss; see :func:`jnn.functional.multilabel_margin_loss`.

    Args:
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> round(float(nn.MultiLabelMarginLoss()(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[3, 0, -1, 1]]))), 4)
    0.85
    """

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.multilabel_margin_loss(input, target, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge loss (``p`` 1 or 2); see :func:`jnn.functional.multi_margin_loss`.

    Args:
        p: 1 or 2, the power of the hinge.
        margin: the margin.
        weight: a manual rescaling weight per class, of shape ``(C,)``.
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> round(float(nn.MultiMarginLoss()(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))), 4)
    0.325
    """

    def __init__(self, p: int = 1, margin: float = 1.0, weight: ArrayLike | None = None,
                 size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if p != 1 and p != 2:
            raise ValueError("only p == 1 and p == 2 supported")
        if self.weight is not None and self.weight.ndim != 1:
            raise ValueError(f"MultiMarginLoss: expected weight to be None or 1D tensor, got {self.weight.ndim}D "
                             "instead")
        self.p = p
        self.margin = margin

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight,
                                   reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    """Cosine-similarity embedding loss; see :func:`jnn.functional.cosine_embedding_loss`.

    Args:
        margin: the margin for dissimilar pairs, in [-1, 1].
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.CosineEmbeddingLoss(margin=0.5)(jnp.ones((2, 3)), jnp.ones((2, 3)), jnp.array([1, 1])).tolist()
    0.0
    """

    def __init__(self, margin: float = 0.0, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: jax.Array, input2: jax.Array, target: jax.Array) -> jax.Array:
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """Ranking hinge loss; see :func:`jnn.functional.margin_ranking_loss`.

    Args:
        margin: the margin.
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.MarginRankingLoss(margin=1.0)(jnp.array([2.0]), jnp.array([1.0]), jnp.array([1.0])).tolist()
    0.0
    """

    def __init__(self, margin: float = 0.0, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: jax.Array, input2: jax.Array, target: jax.Array) -> jax.Array:
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """Hinge embedding loss; see :func:`jnn.functional.hinge_embedding_loss`.

    Args:
        margin: the margin.
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.HingeEmbeddingLoss(margin=2.0)(jnp.array([0.5]), jnp.array([-1])).tolist()
    1.5
    """

    def __init__(self, margin: float = 1.0, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return F.hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """Triplet loss with pairwise p-norm distances; see :func:`jnn.functional.triplet_margin_loss`.

    Args:
        margin: the margin.
        p: the norm degree of the pairwise distance.
        eps: added against a zero norm.
        swap: use the distance between positive and negative if it is smaller (the distance swap).
        size_average: deprecated (PyTorch's); use ``reduction``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.TripletMarginLoss(reduction="none")(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones((2, 3))).shape
    (2,)
    """

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got {margin} instead")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor: jax.Array, positive: jax.Array, negative: jax.Array) -> jax.Array:
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p, eps=self.eps,
                                     swap=self.swap, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """Triplet loss with any distance function (default: a ``PairwiseDistance()`` submodule, as in torch).

    See :func:`jnn.functional.triplet_margin_with_distance_loss`.

    Args:
        distance_function: a callable of two arrays returning distances (default ``F.pairwise_distance``).
        margin: the margin.
        swap: use the distance between positive and negative if it is smaller.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.TripletMarginWithDistanceLoss(margin=0.5)
    TripletMarginWithDistanceLoss(
      (distance_function): PairwiseDistance()
    )
    """

    def __init__(self, *, distance_function: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
                 margin: float = 1.0, swap: bool = False, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} "
                             "instead")
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin = margin
        self.swap = swap

    def forward(self, anchor: jax.Array, positive: jax.Array, negative: jax.Array) -> jax.Array:
        return F.triplet_margin_with_distance_loss(anchor, positive, negative,
                                                   distance_function=self.distance_function, margin=self.margin,
                                                   swap=self.swap, reduction=self.reduction)


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood; see :func:`jnn.functional.poisson_nll_loss`.

    Args:
        log_input: the input is the log of the rate (``exp(input) - target * input``).
        full: add the Stirling approximation term.
        size_average: deprecated (PyTorch's); use ``reduction``.
        eps: added to the rate when ``log_input=False``, against ``log(0)``.
        reduce: deprecated (PyTorch's); use ``reduction``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.PoissonNLLLoss()(jnp.zeros(2), jnp.ones(2)).tolist()
    1.0
    """

    def __init__(self, log_input: bool = True, full: bool = False, size_average: bool | None = None,
                 eps: float = 1e-8, reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: jax.Array, target: jax.Array) -> jax.Array:
        return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                  reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood; see :func:`jnn.functional.gaussian_nll_loss`.

    Args:
        full: add the constant ``0.5 * log(2 * pi)``.
        eps: lower clamp of the variance.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the unreduced per-element loss).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.GaussianNLLLoss()(jnp.zeros(3), jnp.ones(3), jnp.ones(3)).tolist()
    0.5
    """

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: jax.Array, target: jax.Array, var: jax.Array | float) -> jax.Array:
        return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)


class CTCLoss(_Loss):
    """Connectionist Temporal Classification loss; see :func:`jnn.functional.ctc_loss`.

    Args:
        blank: the blank label's index.
        reduction: ``'mean'`` (each loss divided by its target length, then averaged), ``'sum'`` or ``'none'`` (the
            unreduced per-element loss).
        zero_infinity: replace infinite losses (impossible alignments) and their gradients by zero.

    >>> import jax, jax.numpy as jnp, jnn as nn
    >>> lp = jax.nn.log_softmax(jnp.zeros((5, 4)), axis=-1)
    >>> nn.CTCLoss(reduction="none")(lp, jnp.array([1, 2]), 5, 2).shape
    ()
    """

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> None:
        super().__init__(reduction=reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs: jax.Array, targets: jax.Array, input_lengths: Any,
                target_lengths: Any) -> jax.Array:
        return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                          self.zero_infinity)


class LinearCrossEntropyLoss(_WeightedLoss):
    """Cross entropy of the logits of its own ``Linear`` layer; see :func:`jnn.functional.linear_cross_entropy`.

    Holds ``linear`` (``Linear(in_features, num_classes * prod(out_features), bias=bias)``, reshaped to
    ``(num_classes, *out_features, in_features)`` in forward) and the optional class ``weight`` buffer, so its
    ``state_dict`` is torch's (``weight``, ``linear.weight``, ``linear.bias``). The loss is computed in chunks over
    the classes whatever ``options`` is (see :class:`LinearCrossEntropyOptions`).

    >>> import jax.numpy as jnp, jnn as nn
    >>> loss = nn.LinearCrossEntropyLoss(5, 10, out_features=(4, 3))
    >>> loss  # doctest: +ELLIPSIS
    LinearCrossEntropyLoss(
      in_features=5, num_classes=10, out_features=(4, 3), bias=False, reduction=mean, ..., options=None
      (linear): Linear(in_features=5, out_features=120, bias=False)
    )
    >>> loss(jnp.ones((2, 5)), jnp.zeros((2, 4, 3), jnp.int32)).shape
    ()
    """

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple[int, ...] = (), bias: bool = False,
                 device: Any = None, dtype: Any = None, reduction: str = "mean", weight: ArrayLike | None = None,
                 ignore_index: int | None = None, label_smoothing: float = 0.0,
                 options: LinearCrossEntropyOptions | None = None, key: jax.Array | None = None) -> None:
        if weight is not None and tuple(weight.shape) != (num_classes,):
            raise RuntimeError(f"expected weight shape to be {(num_classes,)}, got {tuple(weight.shape)}")
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise RuntimeError(f"expected label_smoothing to be in range [0, 1], got {label_smoothing}")
        if options is not None and not isinstance(options, LinearCrossEntropyOptions):
            raise TypeError(f"LinearCrossEntropyLoss: options must be a jnn.LinearCrossEntropyOptions or None, got "
                            f"{type(options).__name__}")
        super().__init__(weight, None, None, reduction)
        self.num_classes = num_classes
        self.out_features = tuple(out_features)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.linear = Linear(in_features, math.prod(out_features, start=num_classes), bias=bias, device=device,
                             dtype=dtype, key=key)
        self.options = options

    def forward(self, input: jax.Array, target: jax.Array) -> jax.Array:
        shape = (self.num_classes, *self.out_features)
        bias = None if self.linear.bias is None else self.linear.bias.reshape(shape)
        return F.linear_cross_entropy(input, self.linear.weight.reshape(*shape, self.linear.in_features), target,
                                      linear_bias=bias, weight=self.weight, reduction=self.reduction,
                                      ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
                                      options=self.options)

    def extra_repr(self) -> str:
        return (f"in_features={self.linear.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={self.linear.bias is not None}, reduction={self.reduction}, "
                f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, options={self.options}")
