"""Linear maps."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jnn._arrays import check_same_dtype

__all__ = ["linear", "bilinear", "grouped_mm"]


def linear(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> jax.Array:
    """``y = x @ weight.T + bias`` with torch's layout: weight ``(out_features, in_features)``.

    ``input`` is ``(*, in_features)`` (any number of leading dims, or 1-D).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.linear(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.zeros(4)).shape
    (2, 4)
    """
    x, w = jnp.asarray(input), jnp.asarray(weight)
    if x.ndim == 0 or w.ndim not in (1, 2):
        raise ValueError(f"linear: expected input of shape (*, in_features) and weight of shape "
                         f"(out_features, in_features), got input {x.shape} and weight {w.shape}")
    check_same_dtype(x, w, "linear")
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features in its last dimension (shape {x.shape}) "
                         f"but weight of shape {w.shape} expects {w.shape[-1]} (weight is (out, in))")
    y = jnp.matmul(x, w.T)
    if bias is not None:
        b = jnp.asarray(bias)
        try:
            ok = jnp.broadcast_shapes(y.shape, b.shape) == y.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"linear: bias of shape {b.shape} does not broadcast to the output shape {y.shape}")
        y = y + b
    return y


def bilinear(input1: ArrayLike, input2: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> jax.Array:
    """``y = x1^T A x2 + b`` with weight ``A`` of shape ``(out_features, in1_features, in2_features)``.

    ``input1`` is ``(*, in1_features)`` and ``input2`` ``(*, in2_features)`` with the same leading dims.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.bilinear(jnp.ones((5, 2)), jnp.ones((5, 3)), jnp.ones((4, 2, 3)), jnp.zeros(4)).shape
    (5, 4)
    """
    x1, x2, w = jnp.asarray(input1), jnp.asarray(input2), jnp.asarray(weight)
    if w.ndim != 3:
        raise ValueError(f"bilinear(): weight must be 3-dimensional, got shape {w.shape}")
    if x1.shape[:-1] != x2.shape[:-1]:
        raise ValueError(f"bilinear(): input batch dimensions do not match: got {x1.shape[:-1]} and {x2.shape[:-1]}")
    if x1.ndim == 0 or x1.shape[-1] != w.shape[1]:
        raise ValueError(f"bilinear(): input1 size does not match weight size: got {x1.shape[-1:]} but expected "
                         f"{w.shape[1]}")
    if x2.shape[-1] != w.shape[2]:
        raise ValueError(f"bilinear(): input2 size does not match weight size: got {x2.shape[-1]} but expected "
                         f"{w.shape[2]}")
    y = jnp.einsum("...oj,...j->...o", jnp.einsum("...i,oij->...oj", x1, w), x2)  # torch's order (inf stays inf)
    if bias is not None:
        b = jnp.asarray(bias)
        if b.shape != (w.shape[0],):
            raise ValueError(f"bilinear(): bias size does not match weight size: got {b.shape} but expected "
                             f"({w.shape[0]},)")
        y = y + b
    return y


def grouped_mm(mat_a: ArrayLike, mat_b: ArrayLike, *, offs: ArrayLike | None = None, bias: ArrayLike | None = None,
               out_dtype: Any = None) -> jax.Array:
    """torch's grouped matrix multiply (mixture-of-experts layers): ``offs`` (int, increasing) ends each group of
    the jagged dimension of a 2-D operand. 2-D ``(M, K)`` @ 3-D ``(G, K, N)``: rows ``offs[g-1]:offs[g]`` use
    matrix ``g`` (``jax.lax.ragged_dot``), rows past ``offs[-1]`` give zeros; 2-D @ 2-D: ``K`` is split, one
    ``(M, N)`` product per group; 3-D ``(G, M, K)`` @ 2-D ``(K, N)``: ``N`` is split; 3-D @ 3-D: a batched
    product, without ``offs``. ``out_dtype``: the accumulation and result dtype.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.grouped_mm(jnp.ones((3, 2)), jnp.stack([jnp.eye(2), 2 * jnp.eye(2)]), offs=jnp.array([1, 3])).tolist()
    [[1.0, 1.0], [2.0, 2.0], [2.0, 2.0]]
    """
    a, b = jnp.asarray(mat_a), jnp.asarray(mat_b)
    if a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise ValueError(f"grouped_mm: expected 2-D or 3-D operands, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2] or (a.ndim == b.ndim == 3 and a.shape[0] != b.shape[0]):
        raise ValueError(f"grouped_mm: shapes {a.shape} and {b.shape} cannot be multiplied (contraction dims "
                         f"{a.shape[-1]} and {b.shape[-2]}, groups as the first dim of 3-D operands)")
    if (offs is None) != (a.ndim == b.ndim == 3):
        raise ValueError("grouped_mm: offs is required when an operand is 2-D, and must be None when both are 3-D")
    dtype = jnp.dtype(out_dtype if out_dtype is not None else jnp.result_type(a, b))
    if offs is None:
        out = jnp.matmul(a, b, preferred_element_type=dtype)
    else:
        ends = jnp.asarray(offs).astype(jnp.int32)
        starts = jnp.concatenate([jnp.zeros(1, jnp.int32), ends[:-1]])
        if a.ndim == 2 and b.ndim == 3:
            out = jax.lax.ragged_dot(a, b, (ends - starts).astype(jnp.int32), preferred_element_type=dtype)
        else:
            size = a.shape[1] if a.ndim == 2 else b.shape[1]  # the split dim: K (2-D @ 2-D) or N (3-D @ 2-D)
            index = jnp.arange(size)
            mask = (index >= starts[:, None]) & (index < ends[:, None])  # (groups, size)
            if a.ndim == 2:  # selected, not multiplied by the mask: a NaN stays in its own group, as in torch
                a_g, b_g = jnp.where(mask[:, None, :], a, 0), jnp.where(mask[:, :, None], b, 0)
                out = jnp.einsum("gmk,gkn->gmn", a_g, b_g, preferred_element_type=dtype)
            else:
                full = jnp.einsum("gmk,kn->gmn", a, b, preferred_element_type=dtype)
                out = jnp.where(mask[:, None, :], full, 0).sum(0, dtype=dtype)
    if bias is not None:
        out = out + jnp.asarray(bias)
    return out.astype(dtype)
