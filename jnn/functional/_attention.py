"""Attention: scaled dot-product attention and the multi-head attention forward pass."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jnn.functional._dropout import dropout as _dropout
from jnn.functional._linear import linear as _linear

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


def _safe_softmax(scores: jax.Array) -> jax.Array:
    """Softmax over the last axis; a row that is entirely ``-inf`` gives zeros (torch's ``_safe_softmax``)."""
    m = jnp.max(scores, axis=-1, keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(jnp.isneginf(m), 0, m))
    e = jnp.exp(scores - m)
    s = e.sum(axis=-1, keepdims=True)
    return e / jnp.where(s == 0, 1, s)


def _causal_mask(L: int, S: int) -> jax.Array:
    return jnp.tril(jnp.ones((L, S), bool))


def scaled_dot_product_attention(
    query: ArrayLike, key: ArrayLike, value: ArrayLike, attn_mask: ArrayLike | None = None,
    dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False, *,
    dropout_key: jax.Array | None = None,
) -> jax.Array:
    """``softmax(q @ k^T * scale + mask) @ v`` over inputs ``(N..., L, E)``, ``(N..., S, E)``, ``(N..., S, Ev)``.

    ``attn_mask`` is boolean (True = may attend) or floating (added to the scores) and broadcasts to
    ``(N..., L, S)``; ``is_causal`` applies a lower-triangular mask (not together with ``attn_mask``).
    ``enable_gqa`` repeats key/value heads (dim -3) to the number of query heads. ``dropout_p`` drops attention
    weights (always, as in torch: pass 0 in evaluation) with a key from ``dropout_key`` or :mod:`jnn.random`.
    A query row with no position to attend to gives zeros, as torch does. Without dropout, 4-D (or 3-D) inputs
    whose key and value have equal shapes go through :func:`jax.nn.dot_product_attention`.

    >>> import jax.numpy as jnp, jnn.functional as F
    >>> F.scaled_dot_product_attention(jnp.ones((2, 3, 5, 4)), jnp.ones((2, 3, 6, 4)), jnp.ones((2, 3, 6, 8))).shape
    (2, 3, 5, 8)
    """
    q, k, v = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"scaled_dot_product_attention: expected query, key and value with at least 2 dims "
                         f"(..., L, E), got shapes {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention: query and key must have the same embedding size, got "
                         f"{q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: key and value must have the same sequence length, got "
                         f"{k.shape[-2]} and {v.shape[-2]}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {dropout_p}")
    mask = None if attn_mask is None else jnp.asarray(attn_mask)
    if is_causal and mask is not None:
        raise ValueError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    if mask is not None and mask.dtype != jnp.bool_ and not jnp.issubdtype(mask.dtype, jnp.floating):
        raise TypeError(f"scaled_dot_product_attention: attn_mask must be boolean or floating, got {mask.dtype}")
    L, S, E = q.shape[-2], k.shape[-2], q.shape[-1]
    if enable_gqa and q.ndim >= 3 and k.ndim >= 3:
        hq, hk, hv = q.shape[-3], k.shape[-3], v.shape[-3]
        if hq % hk or hq % hv:
            raise ValueError(f"scaled_dot_product_attention: number of query heads ({hq}) must be divisible by "
                             f"the number of key ({hk}) and value ({hv}) heads with enable_gqa=True")
        k, v = jnp.repeat(k, hq // hk, axis=-3), jnp.repeat(v, hq // hv, axis=-3)
    scale_val = 1.0 / math.sqrt(E) if scale is None else scale
    if mask is not None:
        try:
            ok = mask.ndim >= 1 and jnp.broadcast_shapes(mask.shape[-2:], (L, S)) == (L, S)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"scaled_dot_product_attention: attn_mask of shape {mask.shape} does not broadcast "
                             f"to the scores' shape (..., {L}, {S})")

    use_jax = (dropout_p == 0 and q.ndim in (3, 4) and k.shape == v.shape and q.ndim == k.ndim
               and q.shape[:-2] == k.shape[:-2] and q.dtype == k.dtype == v.dtype and min(L, S, E) > 0
               and q.size > 0 and (mask is None or mask.ndim <= 4))
    if use_jax:
        qt, kt, vt = (jnp.swapaxes(t, -2, -3) for t in (q, k, v))  # (B, L, H, E)
        bias = bool_mask = None
        if mask is not None and mask.dtype == jnp.bool_:
            bool_mask = mask
        elif mask is not None:
            bias = mask.astype(q.dtype)
        out = jax.nn.dot_product_attention(qt, kt, vt, bias=bias, mask=bool_mask, scale=scale_val,
                                           is_causal=is_causal)
        out = jnp.swapaxes(out, -2, -3)
        if mask is not None:  # rows with nothing to attend to are zeros in torch (jax averages the values)
            allowed = mask if mask.dtype == jnp.bool_ else ~jnp.isneginf(mask)
            any_allowed = jnp.broadcast_to(allowed, (*allowed.shape[:-2], L, S)).any(axis=-1, keepdims=True)
            out = jnp.where(any_allowed, out, 0)
        return out

    scores = jnp.matmul(q, jnp.swapaxes(k, -1, -2)) * jnp.asarray(scale_val, q.dtype)
    if is_causal:
        scores = jnp.where(_causal_mask(L, S), scores, -jnp.inf)
    if mask is not None:
        scores = jnp.where(mask, scores, -jnp.inf) if mask.dtype == jnp.bool_ else scores + mask.astype(q.dtype)
    weights = _safe_softmax(scores)
    if dropout_p > 0:
        weights = _dropout(weights, dropout_p, True, key=dropout_key)
    return jnp.matmul(weights, v)


def _none_or_dtype(input: ArrayLike | None) -> jnp.dtype | None:
    """``input``'s dtype, or None for None: torch.nn.functional's private helper, which model code written against
    ``F.multi_head_attention_forward``'s internals calls (torchaudio's WavLM attention, via ``jnn.port``).

    >>> import jax.numpy as jnp
    >>> _none_or_dtype(jnp.zeros(2)), _none_or_dtype(None)
    (dtype('float32'), None)
    """
    if input is None:
        return None
    if isinstance(input, (jax.Array, np.ndarray)):
        return input.dtype
    raise TypeError(f"input to _none_or_dtype() must be None or an array, got {type(input).__name__}")


def _canonical_mask(mask: ArrayLike | None, mask_name: str, other_type: jnp.dtype | None, other_name: str,
                    target_type: jnp.dtype, check_other: bool = True) -> jax.Array | None:
    """An attention mask as an additive float mask (torch.nn.functional's private helper, which model code calls):
    a boolean ``mask`` becomes ``-inf`` where True and ``0`` elsewhere, in ``target_type``; a floating one is
    returned as it is; ``None`` stays ``None``. As torch, it warns when ``check_other`` and ``other_type`` (the
    dtype of the other mask, from :func:`_none_or_dtype`) differs from the mask's dtype.

    >>> import jax.numpy as jnp
    >>> _canonical_mask(jnp.array([True, False]), "key_padding_mask", None, "", jnp.float32).tolist()
    [-inf, 0.0]
    """
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_ and not jnp.issubdtype(mask.dtype, jnp.floating):
        raise TypeError(f"only bool and floating types of {mask_name} are supported")
    if check_other and other_type is not None and mask.dtype != other_type:
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type for both "
                      "instead.", stacklevel=2)
    return _to_float_mask(mask, mask_name, target_type)


def _to_float_mask(mask: jax.Array | None, name: str, dtype: jnp.dtype) -> jax.Array | None:
    if mask is None:
        return None
    if mask.dtype != jnp.bool_ and not jnp.issubdtype(mask.dtype, jnp.floating):
        raise TypeError(f"only bool and floating types of {name} are supported")
    if mask.dtype == jnp.bool_:
        return jnp.where(mask, -jnp.inf, 0).astype(dtype)
    return mask


def multi_head_attention_forward(
    query: ArrayLike, key: ArrayLike, value: ArrayLike, embed_dim_to_check: int, num_heads: int,
    in_proj_weight: ArrayLike | None, in_proj_bias: ArrayLike | None, bias_k: ArrayLike | None,
    bias_v: ArrayLike | None, add_zero_attn: bool, dropout_p: float, out_proj_weight: ArrayLike,
    out_proj_bias: ArrayLike | None, training: bool = True, key_padding_mask: ArrayLike | None = None,
    need_weights: bool = True, attn_mask: ArrayLike | None = None, use_separate_proj_weight: bool = False,
    q_proj_weight: ArrayLike | None = None, k_proj_weight: ArrayLike | None = None,
    v_proj_weight: ArrayLike | None = None, static_k: ArrayLike | None = None, static_v: ArrayLike | None = None,
    average_attn_weights: bool = True, is_causal: bool = False, *, dropout_key: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array | None]:
    """Multi-head attention over sequence-first inputs ``(L, N, E)`` (or unbatched ``(L, E)``), as torch's.

    Returns ``(attn_output, attn_weights)``; the weights are ``None`` unless ``need_weights``, averaged over
    heads when ``average_attn_weights``. Masks: ``key_padding_mask`` ``(N, S)`` and ``attn_mask`` ``(L, S)`` or
    ``(N * num_heads, L, S)``, boolean (True = masked out) or floating (added). ``is_causal`` is a hint that
    ``attn_mask`` is the causal mask (it needs ``attn_mask``). Dropout draws from ``dropout_key`` or
    :mod:`jnn.random`.

    >>> import jax.numpy as jnp, jnn.functional as F
    >>> E = 4
    >>> out, w = F.multi_head_attention_forward(jnp.ones((3, 2, E)), jnp.ones((5, 2, E)), jnp.ones((5, 2, E)),
    ...     E, 2, jnp.ones((3 * E, E)), jnp.zeros(3 * E), None, None, False, 0.0, jnp.ones((E, E)), None)
    >>> out.shape, w.shape
    ((3, 2, 4), (2, 3, 5))
    """
    query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
    kpm = None if key_padding_mask is None else jnp.asarray(key_padding_mask)
    mask = None if attn_mask is None else jnp.asarray(attn_mask)
    if query.ndim == 3:
        is_batched = True
        if key.ndim != 3 or value.ndim != 3:
            raise ValueError("For batched (3-D) `query`, expected `key` and `value` to be 3-D"
                             f" but found {key.ndim}-D and {value.ndim}-D tensors respectively")
        if kpm is not None and kpm.ndim != 2:
            raise ValueError("For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D"
                             f" but found {kpm.ndim}-D tensor instead")
        if mask is not None and mask.ndim not in (2, 3):
            raise ValueError("For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D"
                             f" but found {mask.ndim}-D tensor instead")
    elif query.ndim == 2:
        is_batched = False
        if key.ndim != 2 or value.ndim != 2:
            raise ValueError("For unbatched (2-D) `query`, expected `key` and `value` to be 2-D"
                             f" but found {key.ndim}-D and {value.ndim}-D tensors respectively")
        if kpm is not None and kpm.ndim != 1:
            raise ValueError("For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D"
                             f" but found {kpm.ndim}-D tensor instead")
        if mask is not None:
            if mask.ndim not in (2, 3):
                raise ValueError("For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D"
                                 f" but found {mask.ndim}-D tensor instead")
            if mask.ndim == 3 and mask.shape != (num_heads, query.shape[0], key.shape[0]):
                raise ValueError(f"Expected `attn_mask` shape to be {(num_heads, query.shape[0], key.shape[0])} "
                                 f"but got {mask.shape}")
    else:
        raise ValueError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query tensor")
    if not is_batched:
        query, key, value = query[:, None], key[:, None], value[:, None]
        if kpm is not None:
            kpm = kpm[None]

    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    kpm = _to_float_mask(kpm, "key_padding_mask", query.dtype)
    if is_causal and mask is None:
        raise ValueError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                         "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and kpm is None and not need_weights:
        mask = None
    else:
        mask = _to_float_mask(mask, "attn_mask", query.dtype)
        if kpm is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise ValueError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise ValueError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if key.shape[:2] != value.shape[:2]:
            raise ValueError(f"key's sequence and batch dims {key.shape[:2]} do not match value's {value.shape[:2]}")
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise ValueError("use_separate_proj_weight is True but q_proj_weight, k_proj_weight or v_proj_weight "
                             "is None")
        b_q = b_k = b_v = None
        if in_proj_bias is not None:
            b_q, b_k, b_v = jnp.split(jnp.asarray(in_proj_bias), 3)
        q = _linear(query, q_proj_weight, b_q)
        k = _linear(key, k_proj_weight, b_k)
        v = _linear(value, v_proj_weight, b_v)
    else:
        if key.shape != value.shape:
            raise ValueError(f"key shape {key.shape} does not match value shape {value.shape}")
        if in_proj_weight is None:
            raise ValueError("use_separate_proj_weight is False but in_proj_weight is None")
        w_q, w_k, w_v = jnp.split(jnp.asarray(in_proj_weight), 3)
        b_q = b_k = b_v = None
        if in_proj_bias is not None:
            b_q, b_k, b_v = jnp.split(jnp.asarray(in_proj_bias), 3)
        q, k, v = _linear(query, w_q, b_q), _linear(key, w_k, b_k), _linear(value, w_v, b_v)

    if mask is not None:
        if mask.ndim == 2:
            if mask.shape != (tgt_len, src_len):
                raise ValueError(f"The shape of the 2D attn_mask is {mask.shape}, but should be "
                                 f"{(tgt_len, src_len)}.")
            mask = mask[None]
        elif mask.shape != (bsz * num_heads, tgt_len, src_len):
            raise ValueError(f"The shape of the 3D attn_mask is {mask.shape}, but should be "
                             f"{(bsz * num_heads, tgt_len, src_len)}.")

    pad_last = lambda m: None if m is None else jnp.pad(m, [(0, 0)] * (m.ndim - 1) + [(0, 1)])  # noqa: E731
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise ValueError("bias cannot be added to static key or value.")
        k = jnp.concatenate([k, jnp.broadcast_to(jnp.asarray(bias_k), (1, bsz, embed_dim))])
        v = jnp.concatenate([v, jnp.broadcast_to(jnp.asarray(bias_v), (1, bsz, embed_dim))])
        mask, kpm = pad_last(mask), pad_last(kpm)
    elif bias_k is not None or bias_v is not None:
        raise ValueError("bias_k and bias_v must be given together")

    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(1, 0, 2)
    if static_k is None:
        k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(1, 0, 2)
    else:
        k = jnp.asarray(static_k)
        if k.shape[0] != bsz * num_heads or k.shape[2] != head_dim:
            raise ValueError(f"expecting static_k of shape ({bsz * num_heads}, *, {head_dim}), got {k.shape}")
    if static_v is None:
        v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(1, 0, 2)
    else:
        v = jnp.asarray(static_v)
        if v.shape[0] != bsz * num_heads or v.shape[2] != head_dim:
            raise ValueError(f"expecting static_v of shape ({bsz * num_heads}, *, {head_dim}), got {v.shape}")
    if add_zero_attn:
        k = jnp.concatenate([k, jnp.zeros((bsz * num_heads, 1, head_dim), k.dtype)], axis=1)
        v = jnp.concatenate([v, jnp.zeros((bsz * num_heads, 1, head_dim), v.dtype)], axis=1)
        mask, kpm = pad_last(mask), pad_last(kpm)
    src_len = k.shape[1]

    if kpm is not None:
        if kpm.shape != (bsz, src_len):
            raise ValueError(f"Expected key_padding_mask of shape {(bsz, src_len)}, but got {kpm.shape}")
        kpm = jnp.broadcast_to(kpm[:, None, None, :], (bsz, num_heads, 1, src_len)).reshape(bsz * num_heads, 1,
                                                                                              src_len)
        mask = kpm if mask is None else mask + kpm
    if not training:
        dropout_p = 0.0

    if need_weights:
        scores = jnp.matmul(q * jnp.asarray(math.sqrt(1.0 / head_dim), q.dtype), k.transpose(0, 2, 1))
        if mask is not None:
            scores = scores + mask
        weights = jax.nn.softmax(scores, axis=-1)
        if dropout_p > 0.0:
            weights = _dropout(weights, dropout_p, True, key=dropout_key)
        out = jnp.matmul(weights, v).transpose(1, 0, 2).reshape(tgt_len * bsz, embed_dim)
        out = _linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(axis=1)
        if not is_batched:
            out, weights = out[:, 0], weights[0]
        return out, weights

    if mask is not None:
        mask = mask[None] if mask.shape[0] == 1 else mask.reshape(bsz, num_heads, -1, src_len)
    out = scaled_dot_product_attention(
        q.reshape(bsz, num_heads, tgt_len, head_dim), k.reshape(bsz, num_heads, src_len, head_dim),
        v.reshape(bsz, num_heads, src_len, head_dim), mask, dropout_p, is_causal, dropout_key=dropout_key)
    out = out.transpose(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    out = _linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
    if not is_batched:
        out = out[:, 0]
    return out, None
