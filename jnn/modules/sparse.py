"""Embedding layers: Embedding and EmbeddingBag."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn import functional as F
from jnn import random
from jnn._arrays import is_tracer
from jnn.modules._utils import factory_dtype, like, normal_sample, place
from jnn.modules.module import Module, Parameter

__all__ = ["Embedding", "EmbeddingBag"]


def _drawn_weight(shape: tuple[int, ...], dtype: Any, padding_idx: int | None, who: str) -> Any:
    """N(0, 1) from jnn's random stream, with the padding row zeroed."""
    w = normal_sample(random.next_source(who), tuple(shape), dtype, 0.0, 1.0)
    if padding_idx is None:
        return w
    if isinstance(w, np.ndarray):
        w[padding_idx] = 0
        return w
    return w.at[padding_idx].set(0)


def _check_weight(weight: Any, num: int, dim: int, who: str) -> jax.Array:
    w = jnp.asarray(weight)
    if w.shape != (num, dim):
        raise ValueError(f"{who}: Shape of weight does not match num_embeddings and embedding_dim "
                         f"(expected {(num, dim)}, got {w.shape})")
    return w


def _padding_idx(padding_idx: int | None, num: int) -> int | None:
    if padding_idx is None:
        return None
    if padding_idx > 0 and padding_idx >= num:
        raise ValueError("Padding_idx must be within num_embeddings")
    if padding_idx < 0 and padding_idx < -num:
        raise ValueError("Padding_idx must be within num_embeddings")
    return padding_idx + num if padding_idx < 0 else padding_idx


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``; weight drawn from N(0, 1).

    ``padding_idx``: that row starts at zero and gets no gradient. ``max_norm``: looked-up rows are rescaled to
    norm at most ``max_norm``; in eager calls the weight itself is updated (by assignment, as torch does in
    place); under a transformation only the looked-up values are renormalised (the weight cannot change
    there). ``scale_grad_by_freq`` divides gradients by index frequency in the batch. ``sparse=True`` is
    not supported (JAX gradients are dense).

    Args:
        num_embeddings: size of the vocabulary (rows of ``weight``).
        embedding_dim: size of each vector.
        padding_idx: this row is initialised to zeros and gets no gradient.
        max_norm: looked-up rows are rescaled to at most this norm (eagerly the weight itself too, as in PyTorch).
        norm_type: the p of the p-norm for ``max_norm``.
        scale_grad_by_freq: scale gradients by the inverse frequency of the words in the mini-batch.
        sparse: PyTorch's sparse gradients; JAX's gradients are dense, so only ``False`` is accepted.
        _weight: an initial weight of shape ``(num_embeddings, embedding_dim)``.
        _freeze: register the weight as a buffer (not trained), as ``Embedding.from_pretrained(freeze=True)``.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> emb = nn.Embedding(10, 3, padding_idx=0)
    >>> emb
    Embedding(10, 3, padding_idx=0)
    >>> emb(jnp.array([[0, 2], [4, 9]])).shape
    (2, 2, 3)
    """

    def __init__(
        self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
        sparse: bool = False, _weight: Any = None, _freeze: bool = False, device: Any = None, dtype: Any = None,
        *, key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        if sparse:
            raise NotImplementedError("Embedding: sparse=True is not supported in jnn (JAX gradients are dense)")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = _padding_idx(padding_idx, num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        if _weight is None:
            with random.fork(key):
                w = place(_drawn_weight((num_embeddings, embedding_dim), factory_dtype(dtype, "Embedding"),
                                        self.padding_idx, "Embedding"), device)
        else:
            w = place(_check_weight(_weight, num_embeddings, embedding_dim, "Embedding"), device)
        self.weight = Parameter(w, requires_grad=not _freeze)
        self.sparse = sparse

    def reset_parameters(self) -> None:
        """Re-draw the weight from N(0, 1) (jnn's random stream); the padding row is zeroed again."""
        self.weight = like(_drawn_weight(self.weight.shape, self.weight.dtype, self.padding_idx, "Embedding"),
                           self.weight)

    def forward(self, input: jax.Array) -> jax.Array:
        if self.max_norm is not None and not is_tracer(self.weight) and not is_tracer(input):
            self.weight = F.embedding_renorm(self.weight, input, self.max_norm, self.norm_type)
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        return s

    @classmethod
    def from_pretrained(
        cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None, max_norm: float | None = None,
        norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False,
    ) -> Embedding:
        """An Embedding whose weight is ``embeddings`` ``(num, dim)``; frozen (``requires_grad=False``) by default.

        >>> import jax.numpy as jnp, jnn as nn
        >>> nn.Embedding.from_pretrained(jnp.eye(3))(jnp.array([1])).tolist()
        [[0.0, 1.0, 0.0]]
        """
        w = jnp.asarray(embeddings)
        if w.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = w.shape
        return cls(rows, cols, _weight=w, _freeze=freeze, padding_idx=padding_idx, max_norm=max_norm,
                   norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


class EmbeddingBag(Module):
    """Sums, means or maxes of bags of embeddings (``mode``), without the intermediate per-index lookups.

    ``forward(input, offsets=None, per_sample_weights=None)``: ``input`` 2-D ``(B, N)`` (fixed-size bags) or
    1-D with ``offsets`` (bag starts). ``padding_idx`` entries are left out of their bags. ``max_norm``
    renormalises looked-up rows (the weight is updated in eager calls, as in :class:`Embedding`).

    Args:
        num_embeddings: size of the vocabulary (rows of ``weight``).
        embedding_dim: size of each vector.
        max_norm: rows looked up are renormalised to at most this norm.
        norm_type: the p of the p-norm for ``max_norm``.
        scale_grad_by_freq: scale gradients by the inverse frequency of the words in the mini-batch.
        mode: ``'sum'``, ``'mean'`` or ``'max'`` over each bag.
        sparse: PyTorch's sparse gradients; JAX's gradients are dense, so only ``False`` is accepted.
        _weight: an initial weight of shape ``(num_embeddings, embedding_dim)``.
        include_last_offset: ``offsets`` has one more entry, the end of the last bag (CSR layout).
        padding_idx: entries equal to it are left out of their bag.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> bag = nn.EmbeddingBag(10, 3, mode="sum")
    >>> bag
    EmbeddingBag(10, 3, mode='sum')
    >>> bag(jnp.array([1, 2, 4, 5, 4, 3]), jnp.array([0, 4])).shape
    (2, 3)
    """

    def __init__(
        self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None, norm_type: float = 2.0,
        scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False, _weight: Any = None,
        include_last_offset: bool = False, padding_idx: int | None = None, device: Any = None, dtype: Any = None,
        *, key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        if sparse:
            raise NotImplementedError("EmbeddingBag: sparse=True is not supported in jnn (JAX gradients are dense)")
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.padding_idx = _padding_idx(padding_idx, num_embeddings)
        if _weight is None:
            with random.fork(key):
                w = place(_drawn_weight((num_embeddings, embedding_dim), factory_dtype(dtype, "EmbeddingBag"),
                                        self.padding_idx, "EmbeddingBag"), device)
        else:
            w = place(_check_weight(_weight, num_embeddings, embedding_dim, "EmbeddingBag"), device)
        self.weight = Parameter(w)
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset

    def reset_parameters(self) -> None:
        """Re-draw the weight from N(0, 1) (jnn's random stream); the padding row is zeroed again."""
        self.weight = like(_drawn_weight(self.weight.shape, self.weight.dtype, self.padding_idx, "EmbeddingBag"),
                           self.weight)

    def forward(self, input: jax.Array, offsets: jax.Array | None = None,
                per_sample_weights: jax.Array | None = None) -> jax.Array:
        if self.max_norm is not None and not is_tracer(self.weight) and not is_tracer(input):
            self.weight = F.embedding_renorm(self.weight, input, self.max_norm, self.norm_type)
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                               self.mode, self.sparse, per_sample_weights, self.include_last_offset,
                               self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm!r}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type!r}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq!r}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx!r}"
        return s

    @classmethod
    def from_pretrained(
        cls, embeddings: Any, freeze: bool = True, max_norm: float | None = None, norm_type: float = 2.0,
        scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
        include_last_offset: bool = False, padding_idx: int | None = None,
    ) -> EmbeddingBag:
        """An EmbeddingBag whose weight is ``embeddings``; frozen by default.

        >>> import jax.numpy as jnp, jnn as nn
        >>> nn.EmbeddingBag.from_pretrained(jnp.eye(3), mode="sum")(jnp.array([[0, 2]])).tolist()
        [[1.0, 0.0, 1.0]]
        """
        w = jnp.asarray(embeddings)
        if w.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = w.shape
        bag = cls(rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse, _weight=w,
                  include_last_offset=include_last_offset, padding_idx=padding_idx)
        if freeze:
            bag.weight = Parameter(bag.weight, requires_grad=False)
        return bag
