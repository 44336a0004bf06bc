"""Transformer layers: Transformer, its encoder and decoder stacks and their layers."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn import functional as F
from jnn import random
from jnn._arrays import is_tracer
from jnn.modules._utils import factory_dtype, place, uniform
from jnn.modules.attention import MultiheadAttention, _canonical
from jnn.modules.container import ModuleList
from jnn.modules.dropout import Dropout
from jnn.modules.linear import Linear
from jnn.modules.module import Module
from jnn.modules.normalization import LayerNorm

__all__ = ["Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
           "TransformerDecoderLayer"]

def _get_activation_fn(activation: str) -> Callable[[jax.Array], jax.Array]:
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


def _generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> jax.Array:
    dt = factory_dtype(dtype, "generate_square_subsequent_mask")
    mask = jnp.where(jnp.triu(jnp.ones((sz, sz), bool), k=1), -jnp.inf, 0).astype(dt)
    return place(mask, device)


def _detect_is_causal_mask(mask: Any, is_causal: bool | None = None, size: int | None = None) -> bool:
    """torch's hint detection: an explicit ``is_causal`` wins; else compare ``mask`` with the causal mask.

    Under a transformation the mask's values are unknown, so the hint is False there (the mask is applied
    all the same, so results do not change).
    """
    if is_causal is not None:
        return bool(is_causal)
    if mask is None or is_tracer(mask):
        return False
    m = np.asarray(mask)  # concrete values: compare with NumPy (jnp would be staged under jit)
    sz = size if size is not None else m.shape[-2]
    if m.shape != (sz, sz):
        return False
    upper = np.triu(np.ones((sz, sz), bool), k=1)
    if m.dtype == np.bool_:
        return bool((m == upper).all())
    return bool((m == np.where(upper, -np.inf, 0)).all())


def _xavier_redraw(module: Module, key: jax.Array | None) -> None:
    """``xavier_uniform_`` on every parameter with more than one dimension (torch's Transformer init)."""
    with random.fork(key):
        for name, p in list(module.named_parameters()):
            if p.ndim > 1:
                fan_in, fan_out = p.shape[1] * math.prod(p.shape[2:]), p.shape[0] * math.prod(p.shape[2:])
                value = uniform(p.shape, math.sqrt(6.0 / (fan_in + fan_out)), p.dtype, None, "Transformer")
                owner, _, leaf = name.rpartition(".")
                setattr(module.get_submodule(owner) if owner else module, leaf,
                        value if is_tracer(p) else jax.device_put(value, p.sharding))


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each with dropout, residual and LayerNorm (post- or pre-norm).

    ``forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``. ``activation`` is
    ``"relu"``, ``"gelu"`` or a callable (a Module becomes the submodule ``activation``).

    Args:
        d_model: the model dimension.
        nhead: number of attention heads.
        dim_feedforward: hidden size of the feed-forward block.
        dropout: dropout probability (training mode).
        activation: the feed-forward activation: ``'relu'``, ``'gelu'`` or a callable.
        layer_norm_eps: the LayerNorms' ``eps``.
        batch_first: inputs and outputs are ``(batch, seq, feature)`` instead of ``(seq, batch, feature)``.
        norm_first: LayerNorm before attention and feed-forward (pre-norm) instead of after.
        bias: biases in the linear layers and LayerNorms.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True).eval()
    >>> layer(jnp.ones((3, 5, 8))).shape
    (3, 5, 8)
    """

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
        activation: str | Callable[[jax.Array], jax.Array] = F.relu, layer_norm_eps: float = 1e-5,
        batch_first: bool = False, norm_first: bool = False, bias: bool = True, device: Any = None,
        dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        with random.fork(key):
            self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                                **fk)
            self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **fk)
            self.dropout = Dropout(dropout)
            self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **fk)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):
            activation = _get_activation_fn(activation)
        self.activation = activation

    def forward(self, src: jax.Array, src_mask: jax.Array | None = None,
                src_key_padding_mask: jax.Array | None = None, is_causal: bool = False) -> jax.Array:
        x = jnp.asarray(src)
        src_key_padding_mask = _canonical(src_key_padding_mask, "src_key_padding_mask", x.dtype)
        src_mask = _canonical(src_mask, "src_mask", x.dtype)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x: jax.Array, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> jax.Array:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x: jax.Array) -> jax.Array:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoderLayer(Module):
    """Self-attention, attention over the encoder's memory and a feed-forward block (post- or pre-norm).

    ``forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False)``.

    Args:
        d_model: the model dimension.
        nhead: number of attention heads.
        dim_feedforward: hidden size of the feed-forward block.
        dropout: dropout probability (training mode).
        activation: the feed-forward activation: ``'relu'``, ``'gelu'`` or a callable.
        layer_norm_eps: the LayerNorms' ``eps``.
        batch_first: inputs and outputs are ``(batch, seq, feature)`` instead of ``(seq, batch, feature)``.
        norm_first: LayerNorm before attention and feed-forward (pre-norm) instead of after.
        bias: biases in the linear layers and LayerNorms.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> layer = nn.TransformerDecoderLayer(d_model=8, nhead=2, dim_feedforward=16).eval()
    >>> layer(jnp.ones((4, 3, 8)), jnp.ones((6, 3, 8))).shape
    (4, 3, 8)
    """

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
        activation: str | Callable[[jax.Array], jax.Array] = F.relu, layer_norm_eps: float = 1e-5,
        batch_first: bool = False, norm_first: bool = False, bias: bool = True, device: Any = None,
        dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        with random.fork(key):
            self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias,
                                                **fk)
            self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first,
                                                     bias=bias, **fk)
            self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **fk)
            self.dropout = Dropout(dropout)
            self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **fk)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        if isinstance(activation, str):
            activation = _get_activation_fn(activation)
        self.activation = activation

    def forward(
        self, tgt: jax.Array, memory: jax.Array, tgt_mask: jax.Array | None = None,
        memory_mask: jax.Array | None = None, tgt_key_padding_mask: jax.Array | None = None,
        memory_key_padding_mask: jax.Array | None = None, tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> jax.Array:
        x = jnp.asarray(tgt)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x: jax.Array, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> jax.Array:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, is_causal=is_causal,
                           need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x: jax.Array, mem: jax.Array, attn_mask: Any, key_padding_mask: Any,
                   is_causal: bool) -> jax.Array:
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                is_causal=is_causal, need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x: jax.Array) -> jax.Array:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (deep copies: the same initial weights, as in torch), then
    an optional ``norm``. ``forward(src, mask=None, src_key_padding_mask=None, is_causal=None)``.

    torch's nested-tensor fast path (eval mode with a padding mask) writes zeros at padded positions; jnn
    computes them like the other positions (``enable_nested_tensor`` is accepted and ignored).

    Args:
        encoder_layer: the layer; ``num_layers`` independent copies of it are stacked.
        num_layers: number of layers.
        norm: an optional final normalisation module.
        enable_nested_tensor: PyTorch's nested-tensor fast path; accepted and ignored (JAX has no nested tensors;
            results are the same).
        mask_check: PyTorch's check of the padding mask for the nested-tensor path; accepted and ignored.

    >>> import jax.numpy as jnp, jnn as nn
    >>> enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), num_layers=2).eval()
    >>> enc(jnp.ones((5, 3, 8))).shape
    (5, 3, 8)
    """

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

    def forward(self, src: jax.Array, mask: jax.Array | None = None, src_key_padding_mask: jax.Array | None = None,
                is_causal: bool | None = None) -> jax.Array:
        output = jnp.asarray(src)
        src_key_padding_mask = _canonical(src_key_padding_mask, "src_key_padding_mask", output.dtype)
        mask = _canonical(mask, "mask", output.dtype)
        batch_first = getattr(getattr(self.layers[0], "self_attn", None), "batch_first", False) if len(
            self.layers) else False
        seq_len = output.shape[1] if (batch_first and output.ndim == 3) else output.shape[0]
        is_causal = _detect_is_causal_mask(mask, is_causal, seq_len)
        for mod in self.layers:
            output = mod(output, src_mask=mask, is_causal=is_causal, src_key_padding_mask=src_key_padding_mask)
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer`` (same initial weights, as in torch), then an optional ``norm``.

    ``forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False)``.

    Args:
        decoder_layer: the layer; ``num_layers`` independent copies of it are stacked.
        num_layers: number of layers.
        norm: an optional final normalisation module.

    >>> import jax.numpy as jnp, jnn as nn
    >>> dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), num_layers=2).eval()
    >>> dec(jnp.ones((4, 3, 8)), jnp.ones((6, 3, 8))).shape
    (4, 3, 8)
    """

    def __init__(self, decoder_layer: Module, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self, tgt: jax.Array, memory: jax.Array, tgt_mask: jax.Array | None = None,
        memory_mask: jax.Array | None = None, tgt_key_padding_mask: jax.Array | None = None,
        memory_key_padding_mask: jax.Array | None = None, tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> jax.Array:
        output = jnp.asarray(tgt)
        batch_first = getattr(getattr(self.layers[0], "self_attn", None), "batch_first", False) if len(
            self.layers) else False
        seq_len = output.shape[1] if (batch_first and output.ndim == 3) else output.shape[0]
        tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, seq_len)
        for mod in self.layers:
            output = mod(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                         tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                         tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(Module):
    """The encoder-decoder Transformer of ``Attention Is All You Need``, with torch's submodules and init.

    ``forward(src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
    tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
    memory_is_causal=False)``. Every parameter with more than one dimension is drawn from ``xavier_uniform_``.

    Args:
        d_model: the model dimension.
        nhead: number of attention heads.
        num_encoder_layers: number of encoder layers.
        num_decoder_layers: number of decoder layers.
        dim_feedforward: hidden size of the feed-forward block.
        dropout: dropout probability (training mode).
        activation: the feed-forward activation: ``'relu'``, ``'gelu'`` or a callable.
        custom_encoder: a module used as the encoder instead.
        custom_decoder: a module used as the decoder instead.
        layer_norm_eps: the LayerNorms' ``eps``.
        batch_first: inputs and outputs are ``(batch, seq, feature)`` instead of ``(seq, batch, feature)``.
        norm_first: LayerNorm before attention and feed-forward (pre-norm) instead of after.
        bias: biases in the linear layers and LayerNorms.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
    ...                        dim_feedforward=16).eval()
    >>> model(jnp.ones((5, 3, 8)), jnp.ones((4, 3, 8))).shape
    (4, 3, 8)
    >>> nn.Transformer.generate_square_subsequent_mask(3).tolist()
    [[0.0, -inf, -inf], [0.0, 0.0, -inf], [0.0, 0.0, 0.0]]
    """

    def __init__(
        self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
        dim_feedforward: int = 2048, dropout: float = 0.1,
        activation: str | Callable[[jax.Array], jax.Array] = F.relu, custom_encoder: Module | None = None,
        custom_decoder: Module | None = None, layer_norm_eps: float = 1e-5, batch_first: bool = False,
        norm_first: bool = False, bias: bool = True, device: Any = None, dtype: Any = None, *,
        key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        with random.fork(key):
            if custom_encoder is not None:
                self.encoder = custom_encoder
            else:
                layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                                batch_first, norm_first, bias, **fk)
                self.encoder = TransformerEncoder(layer, num_encoder_layers,
                                                  LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk))
            if custom_decoder is not None:
                self.decoder = custom_decoder
            else:
                layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                                batch_first, norm_first, bias, **fk)
                self.decoder = TransformerDecoder(layer, num_decoder_layers,
                                                  LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk))
            _xavier_redraw(self, None)
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def forward(
        self, src: jax.Array, tgt: jax.Array, src_mask: jax.Array | None = None, tgt_mask: jax.Array | None = None,
        memory_mask: jax.Array | None = None, src_key_padding_mask: jax.Array | None = None,
        tgt_key_padding_mask: jax.Array | None = None, memory_key_padding_mask: jax.Array | None = None,
        src_is_causal: bool | None = None, tgt_is_causal: bool | None = None, memory_is_causal: bool = False,
    ) -> jax.Array:
        src, tgt = jnp.asarray(src), jnp.asarray(tgt)
        is_batched = src.ndim == 3
        if not self.batch_first and src.shape[1] != tgt.shape[1] and is_batched:
            raise RuntimeError("the batch number of src and tgt must be equal")
        if self.batch_first and src.shape[0] != tgt.shape[0] and is_batched:
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> jax.Array:
        """A float ``(sz, sz)`` mask: ``-inf`` above the diagonal, ``0.0`` elsewhere."""
        return _generate_square_subsequent_mask(sz, device, dtype)
