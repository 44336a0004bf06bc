"""Embeddings: lookup tables, bags of embeddings and one-hot encoding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jnn.checking import check_indices

__all__ = ["embedding", "embedding_bag", "one_hot", "embedding_renorm"]


def _concrete(x: object) -> np.ndarray | None:
    """The values of ``x`` when they are known (not traced), computed with NumPy (jnp would be staged under jit)."""
    return None if isinstance(x, jax.core.Tracer) else np.asarray(x)


def _check_indices(idx: jax.Array, fn: str) -> None:
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise TypeError(f"{fn}: expected an integer index array (Long or Int), got dtype {idx.dtype}")


def _norm_padding_idx(padding_idx: int | None, num: int, fn: str) -> int | None:
    if padding_idx is None:
        return None
    if not -num <= padding_idx < num:
        raise ValueError(f"{fn}: padding_idx must be within num_embeddings")
    return padding_idx + num if padding_idx < 0 else padding_idx


def _renorm_scale(rows: jax.Array, max_norm: float, norm_type: float) -> jax.Array:
    """torch's embedding_renorm_ factor per row: ``max_norm / (norm + 1e-7)`` where ``norm > max_norm``, else 1."""
    norm = jnp.linalg.norm(rows.astype(jnp.float32), ord=norm_type, axis=-1, keepdims=True)
    return jax.lax.stop_gradient(jnp.where(norm > max_norm, max_norm / (norm + 1e-7), 1.0).astype(rows.dtype))


def embedding_renorm(weight: ArrayLike, input: ArrayLike, max_norm: float, norm_type: float = 2.0) -> jax.Array:
    """``weight`` with the rows that ``input`` indexes rescaled to norm at most ``max_norm`` (a new array).

    This is what torch's ``embedding_renorm_`` does in place; ``nn.Embedding`` uses it to update its weight.

    >>> import jax.numpy as jnp, jnn.functional as F
    >>> F.embedding_renorm(jnp.full((3, 2), 3.0), jnp.array([0]), 1.0).shape
    (3, 2)
    """
    w, idx = jnp.asarray(weight), jnp.asarray(input).reshape(-1)
    rows = w[idx]
    return w.at[idx].set(rows * _renorm_scale(rows, max_norm, norm_type))


def embedding(
    input: ArrayLike, weight: ArrayLike, padding_idx: int | None = None, max_norm: float | None = None,
    norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False,
) -> jax.Array:
    """Look up rows of ``weight`` ``(num_embeddings, embedding_dim)`` at the integer ``input``: ``(*, dim)``.

    ``padding_idx``: that row gets no gradient. ``scale_grad_by_freq``: gradients are divided by how often
    each index occurs in ``input``. ``max_norm``: looked-up rows with a larger ``norm_type``-norm are rescaled
    to ``max_norm``, as torch does; torch also rewrites those rows of ``weight`` in place, which a JAX array
    cannot do here: the weight is not changed (``nn.Embedding`` does it by assignment in eager calls; or use
    :func:`embedding_renorm`). The gradient is the one torch gives w.r.t. the renormalised weight. Out-of-range
    indices are an ``IndexError`` eagerly; under ``jit`` they cannot be checked (JAX clamps them).
    ``sparse=True`` is not supported (JAX gradients are dense).

    >>> import jax.numpy as jnp, jnn.functional as F
    >>> F.embedding(jnp.array([[0, 2], [1, 1]]), jnp.arange(6.0).reshape(3, 2)).tolist()
    [[[0.0, 1.0], [4.0, 5.0]], [[2.0, 3.0], [2.0, 3.0]]]
    """
    if sparse:
        raise NotImplementedError("embedding: sparse=True is not supported in jnn (JAX gradients are dense)")
    idx, w = jnp.asarray(input), jnp.asarray(weight)
    _check_indices(idx, "embedding")
    if w.ndim != 2:
        raise ValueError(f"embedding: 'weight' must be 2-D, got shape {w.shape}")
    num = w.shape[0]
    vals = _concrete(input)
    if vals is not None and vals.size and (int(vals.min()) < 0 or int(vals.max()) >= num):
        raise IndexError(f"index out of range in self (embedding: indices must be in [0, {num}), got values in "
                         f"[{int(vals.min())}, {int(vals.max())}])")
    check_indices(idx, 0, num, "embedding")  # under jit, enforced by jnn.checked (JAX clamps the lookup)
    pad = _norm_padding_idx(padding_idx, num, "embedding")
    out = w[idx]
    if max_norm is not None:  # the gradient flows as if to the renormalised weight, as in torch
        out = out + jax.lax.stop_gradient(out * _renorm_scale(out, max_norm, norm_type) - out)
    if scale_grad_by_freq:
        counts = jnp.zeros((num,), w.dtype).at[idx.reshape(-1)].add(1)[idx][..., None]
        fixed = jax.lax.stop_gradient(out)
        out = fixed + (out - fixed) / counts  # same value, gradient divided by the count
    if pad is not None:
        out = jnp.where((idx == pad)[..., None], jax.lax.stop_gradient(out), out)
    return out


def embedding_bag(
    input: ArrayLike, weight: ArrayLike, offsets: ArrayLike | None = None, max_norm: float | None = None,
    norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
    per_sample_weights: ArrayLike | None = None, include_last_offset: bool = False, padding_idx: int | None = None,
) -> jax.Array:
    """Sums, means or maxes of bags of embeddings, without materialising the per-index lookups per bag.

    ``input`` 2-D ``(B, N)``: B bags of N indices (``offsets`` must be None). ``input`` 1-D with ``offsets``
    ``(B,)`` (or ``(B + 1,)`` with ``include_last_offset``): bag ``i`` is ``input[offsets[i]:offsets[i+1]]``.
    ``per_sample_weights`` (``input``'s shape) scale each embedding, ``mode='sum'`` only. Indices equal to
    ``padding_idx`` are left out of their bag; empty bags give zeros. Returns ``(B, embedding_dim)``.
    ``max_norm`` rescales looked-up rows like :func:`embedding` (``weight`` itself is not changed).

    >>> import jax.numpy as jnp, jnn.functional as F
    >>> w = jnp.arange(6.0).reshape(3, 2)
    >>> F.embedding_bag(jnp.array([0, 1, 2, 2]), w, jnp.array([0, 3]), mode="sum").tolist()
    [[6.0, 9.0], [4.0, 5.0]]
    """
    if sparse:
        raise NotImplementedError("embedding_bag: sparse=True is not supported in jnn (JAX gradients are dense)")
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode has to be one of sum, mean or max, got {mode!r}")
    idx, w = jnp.asarray(input), jnp.asarray(weight)
    _check_indices(idx, "embedding_bag")
    if w.ndim != 2:
        raise ValueError(f"embedding_bag: weight has to be a 2D Tensor, but got Tensor of dimension {w.ndim}")
    psw = None if per_sample_weights is None else jnp.asarray(per_sample_weights)
    if psw is not None:
        if mode != "sum":
            raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                      f"supported for mode='sum' (got mode='{mode}'). Please open a feature "
                                      "request on GitHub.")
        if psw.shape != idx.shape:
            raise ValueError(f"embedding_bag: per_sample_weights ({psw.shape}) and input ({idx.shape}) must have "
                             "the same shape")
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             "fixed length sequences.")
        bags, length = idx.shape
        seg = jnp.repeat(jnp.arange(bags), length)
        idx = idx.reshape(-1)
        psw = None if psw is None else psw.reshape(-1)
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        off = jnp.asarray(offsets)
        if off.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        _check_indices(off, "embedding_bag")
        bags = off.shape[0] - 1 if include_last_offset else off.shape[0]
        starts = off[:bags]
        seg = jnp.searchsorted(starts, jnp.arange(idx.shape[0]), side="right") - 1
        if include_last_offset:  # entries at or past the last offset belong to no bag
            seg = jnp.where(jnp.arange(idx.shape[0]) >= off[-1], bags, seg)
        seg = jnp.where(seg < 0, bags, seg)
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {idx.ndim}")
    num = w.shape[0]
    vals = _concrete(input)
    if vals is not None and vals.size and (int(vals.min()) < 0 or int(vals.max()) >= num):
        raise IndexError(f"embedding_bag: index out of range, expected indices in [0, {num})")
    pad = _norm_padding_idx(padding_idx, num, "embedding_bag")
    rows = embedding(idx, w, None, max_norm, norm_type, scale_grad_by_freq)
    keep = jnp.ones(idx.shape, bool) if pad is None else idx != pad
    seg = jnp.where(keep, seg, bags)  # padding goes to a discarded extra segment
    if psw is not None:
        rows = rows * psw[:, None].astype(rows.dtype)
    if mode == "max":
        # torch keeps a running max replaced only by greater values: a NaN sticks only as the bag's first row
        pos = jnp.arange(seg.shape[0])
        first = pos == jax.ops.segment_min(pos, seg, num_segments=bags + 1)[seg]
        rows = jnp.where(jnp.isnan(rows) & ~first[:, None], -jnp.inf, rows)
        out = jax.ops.segment_max(rows, seg, num_segments=bags + 1)[:bags]
        count = jax.ops.segment_sum(jnp.ones_like(seg), seg, num_segments=bags + 1)[:bags]
        return jnp.where((count > 0)[:, None], out, 0).astype(w.dtype)
    out = jax.ops.segment_sum(rows, seg, num_segments=bags + 1)[:bags]
    if mode == "mean":
        count = jax.ops.segment_sum(jnp.ones(seg.shape, w.dtype), seg, num_segments=bags + 1)[:bags]
        out = out / jnp.maximum(count, 1)[:, None]
    return out


def one_hot(tensor: ArrayLike, num_classes: int = -1) -> jax.Array:
    """One-hot encoding of integer ``tensor``: shape ``(*, num_classes)``, integer dtype.

    ``num_classes=-1`` means ``tensor.max() + 1``, which needs concrete values: under ``jit`` pass it
    explicitly. The result is int32 (torch: int64) unless ``jax_enable_x64`` is on.

    >>> import jax.numpy as jnp, jnn.functional as F
    >>> F.one_hot(jnp.array([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    x = jnp.asarray(tensor)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError("one_hot is only applicable to index tensor of type LongTensor.")
    vals = _concrete(tensor)
    if num_classes == -1:
        if vals is None:
            raise ValueError("one_hot: num_classes=-1 infers the number of classes from the values, which is not "
                             "possible under a JAX transformation; pass num_classes explicitly")
        if x.size == 0:
            raise ValueError("Can not infer total number of classes from empty tensor.")
        num_classes = int(vals.max()) + 1
    elif num_classes < -1:
        raise ValueError("one_hot: num_classes should be -1 or a non-negative integer")
    if vals is not None and vals.size:
        if int(vals.min()) < 0:
            raise ValueError("Class values must be non-negative.")
        if int(vals.max()) >= num_classes:
            raise ValueError("Class values must be smaller than num_classes.")
    return jax.nn.one_hot(x, num_classes, dtype=jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
