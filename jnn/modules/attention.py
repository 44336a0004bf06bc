"""Attention layers: MultiheadAttention."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jnn import functional as F
from jnn import random
from jnn.modules._utils import factory_dtype, full, normal, uniform
from jnn.modules.linear import Linear
from jnn.modules.module import Module, Parameter

__all__ = ["MultiheadAttention"]


class NonDynamicallyQuantizableLinear(Linear):
    """A :class:`Linear` under torch's name for ``MultiheadAttention.out_proj`` (so ``repr`` matches torch)."""


def _xavier_uniform(shape: tuple[int, ...], dtype: Any, device: Any) -> jax.Array:
    fan_in, fan_out = shape[1], shape[0]
    return uniform(shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype, device, "MultiheadAttention")


def _xavier_normal(shape: tuple[int, ...], dtype: Any, device: Any) -> jax.Array:
    rf = math.prod(shape[2:])
    std = math.sqrt(2.0 / (shape[1] * rf + shape[0] * rf))
    return normal(shape, std, dtype, device, "MultiheadAttention")


def _canonical(mask: Any, name: str, dtype: Any) -> jax.Array | None:
    if mask is None:
        return None
    m = jnp.asarray(mask)
    if m.dtype != jnp.bool_ and not jnp.issubdtype(m.dtype, jnp.floating):
        raise TypeError(f"only bool and floating types of {name} are supported")
    return jnp.where(m, -jnp.inf, 0).astype(dtype) if m.dtype == jnp.bool_ else m


class MultiheadAttention(Module):
    """Multi-head attention (``Attention Is All You Need``), torch's parameters, masks and return values.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` returns ``(attn_output, attn_weights or None)``. Inputs are
    ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``) or unbatched ``(L, E)``. Dropout on the attention
    weights draws from :mod:`jnn.random`. torch's inference fast path is not separate here: results are the
    same math.

    Args:
        embed_dim: the model dimension (query size and output size).
        num_heads: number of heads; ``embed_dim`` must be divisible by it.
        dropout: dropout probability on the attention weights (training mode).
        bias: add biases to the input and output projections.
        add_bias_kv: append a learnable bias to the key and value sequences.
        add_zero_attn: append a batch of zeros to the key and value sequences.
        kdim: the key's feature size (default ``embed_dim``).
        vdim: the value's feature size (default ``embed_dim``).
        batch_first: inputs and outputs are ``(batch, seq, feature)`` instead of ``(seq, batch, feature)``.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> mha = nn.MultiheadAttention(8, 2, batch_first=True)
    >>> out, w = mha(jnp.ones((3, 5, 8)), jnp.ones((3, 7, 8)), jnp.ones((3, 7, 8)))
    >>> out.shape, w.shape
    ((3, 5, 8), (3, 5, 7))
    """

    def __init__(
        self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True, add_bias_kv: bool = False,
        add_zero_attn: bool = False, kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
        device: Any = None, dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                             f"num_heads={num_heads} instead")
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise ValueError("embed_dim must be divisible by num_heads")
        with random.fork(key):
            if not self._qkv_same_embed_dim:
                self.q_proj_weight = Parameter(_xavier_uniform((embed_dim, embed_dim), dtype, device))
                self.k_proj_weight = Parameter(_xavier_uniform((embed_dim, self.kdim), dtype, device))
                self.v_proj_weight = Parameter(_xavier_uniform((embed_dim, self.vdim), dtype, device))
                self.register_parameter("in_proj_weight", None)
            else:
                self.in_proj_weight = Parameter(_xavier_uniform((3 * embed_dim, embed_dim), dtype, device))
                self.register_parameter("q_proj_weight", None)
                self.register_parameter("k_proj_weight", None)
                self.register_parameter("v_proj_weight", None)
            zeros = lambda n: full((n,), 0, factory_dtype(dtype, "MultiheadAttention"), device)  # noqa: E731
            if bias:
                self.in_proj_bias = Parameter(zeros(3 * embed_dim))
            else:
                self.register_parameter("in_proj_bias", None)
            self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, device=device,
                                                            dtype=dtype)
            if bias:
                self.out_proj.bias = zeros(embed_dim)
            if add_bias_kv:
                self.bias_k = Parameter(_xavier_normal((1, 1, embed_dim), dtype, device))
                self.bias_v = Parameter(_xavier_normal((1, 1, embed_dim), dtype, device))
            else:
                self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn

    def forward(
        self, query: jax.Array, key: jax.Array, value: jax.Array, key_padding_mask: jax.Array | None = None,
        need_weights: bool = True, attn_mask: jax.Array | None = None, average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[jax.Array, jax.Array | None]:
        query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
        is_batched = query.ndim == 3
        key_padding_mask = _canonical(key_padding_mask, "key_padding_mask", query.dtype)
        attn_mask = _canonical(attn_mask, "attn_mask", query.dtype)
        if self.batch_first and is_batched:
            query, key, value = (jnp.swapaxes(x, 0, 1) for x in (query, key, value))
        separate = not self._qkv_same_embed_dim
        out, weights = F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
            self.bias_k, self.bias_v, self.add_zero_attn, self.dropout, self.out_proj.weight, self.out_proj.bias,
            training=self.training, key_padding_mask=key_padding_mask, need_weights=need_weights,
            attn_mask=attn_mask, use_separate_proj_weight=separate, q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal)
        if self.batch_first and is_batched:
            out = jnp.swapaxes(out, 0, 1)
        return out, weights
