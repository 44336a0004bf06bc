"""Transformer, its encoder/decoder stacks and layers against torch.nn: structure, outputs, masks, gradients."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn

SETTINGS = settings(max_examples=8, deadline=None)
SMALL = settings(max_examples=5, deadline=None)
TOL = {"rtol": 1e-4, "atol": 2e-5}
T = torch.from_numpy
warnings.filterwarnings("ignore", message="enable_nested_tensor is True")


def check_structure(j, t) -> None:
    assert repr(j) == repr(t)
    ours, theirs = j.state_dict(), torch_state(t)
    assert list(ours) == list(theirs)
    assert [ours[k].shape for k in ours] == [theirs[k].shape for k in theirs]


def perturb_(t: torch.nn.Module, seed: int) -> None:
    """Random LayerNorm affines and biases, so that every parameter matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in t.parameters():
            if p.ndim == 1:
                p.add_(0.3 * torch.randn(p.shape, generator=g))


def tmask(m):
    return None if m is None else T(m)


def causal_mask(n: int, kind: str):
    if kind == "float":
        return np.asarray(jnn.Transformer.generate_square_subsequent_mask(n))
    return np.triu(np.ones((n, n), bool), k=1)


def padding_mask(rng, n: int, s: int, kind: str):
    pad = rng.random((n, s)) > 0.6
    pad[:, 0] = False  # never a fully padded sequence
    return pad if kind == "bool" else np.where(pad, -np.inf, 0).astype(np.float32)


@pytest.mark.parametrize("kw", [{}, {"norm_first": True, "bias": False, "activation": "gelu", "batch_first": True}])
def test_layers_repr_and_state_dict(kw):
    for name in ("TransformerEncoderLayer", "TransformerDecoderLayer"):
        t, j = getattr(torch.nn, name)(8, 2, 16, **kw), getattr(jnn, name)(8, 2, 16, **kw)
        check_structure(j, t)
        assert [n for n, _ in j.named_modules()] == [n for n, _ in t.named_modules()]
    t = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, **kw), 3, torch.nn.LayerNorm(8))
    j = jnn.TransformerEncoder(jnn.TransformerEncoderLayer(8, 2, 16, **kw), 3, jnn.LayerNorm(8))
    check_structure(j, t)
    # deep copies: every layer starts from the same weights, as in torch
    w = [np.asarray(layer.linear1.weight) for layer in j.layers]
    np.testing.assert_array_equal(w[0], w[2])
    assert j.layers[0] is not j.layers[1]


@SETTINGS
@given(
    norm_first=st.booleans(), batch_first=st.booleans(), bias=st.booleans(),
    activation=st.sampled_from(["relu", "gelu"]), batched=st.booleans(), num_layers=st.sampled_from([1, 2]),
    src_mask=st.sampled_from([None, "float", "bool"]), kpm=st.sampled_from([None, "bool", "float"]),
    train=st.booleans(), final_norm=st.booleans(), seed=st.integers(0, 2**16),
)
def test_encoder_matches_torch(norm_first, batch_first, bias, activation, batched, num_layers, src_mask, kpm, train,
                               final_norm, seed):
    torch.manual_seed(seed)
    kw = {"norm_first": norm_first, "batch_first": batch_first, "bias": bias, "activation": activation,
          "dropout": 0.0}
    t = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 12, **kw), num_layers,
                                    torch.nn.LayerNorm(8) if final_norm else None, enable_nested_tensor=False)
    perturb_(t, seed)
    j = copy_torch_weights(jnn.TransformerEncoder(jnn.TransformerEncoderLayer(8, 2, 12, **kw), num_layers,
                                                  jnn.LayerNorm(8) if final_norm else None), t)
    t.train(train)
    j.train(train)
    rng = np.random.default_rng(seed)
    N, S = 2, 5
    shape = ((N, S, 8) if batch_first else (S, N, 8)) if batched else (S, 8)
    x = rng.standard_normal(shape).astype(np.float32)
    mask = None if src_mask is None else causal_mask(S, src_mask)
    pad = None if kpm is None else padding_mask(rng, N, S, kpm)
    if pad is not None and not batched:
        pad = pad[0]
    tx = T(x.copy()).requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = t(tx, mask=tmask(mask), src_key_padding_mask=tmask(pad))
    (expected ** 2).sum().backward()
    apply, params, buffers = jnn.split(j)

    def loss(p, v):
        out = apply(p, buffers, v, mask=mask, src_key_padding_mask=pad)[0]
        return (out ** 2).sum(), out

    (_, out), (gp, gx) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, x)
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, **TOL)
    tg = {n: p.grad for n, p in t.named_parameters()}
    assert sorted(gp) == sorted(tg)
    for name in tg:
        assert_close(gp[name], tg[name], rtol=1e-3, atol=1e-4)
    assert_close(gx, tx.grad, rtol=1e-3, atol=1e-4)


@SMALL
@given(
    norm_first=st.booleans(), batch_first=st.booleans(), bias=st.booleans(), batched=st.booleans(),
    tgt_mask=st.sampled_from([None, "float", "bool"]), tgt_kpm=st.sampled_from([None, "bool"]),
    mem_kpm=st.sampled_from([None, "bool", "float"]), memory_mask=st.booleans(), train=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_transformer_matches_torch(norm_first, batch_first, bias, batched, tgt_mask, tgt_kpm, mem_kpm, memory_mask,
                                   train, seed):
    torch.manual_seed(seed)
    kw = {"d_model": 8, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 12,
          "dropout": 0.0, "norm_first": norm_first, "batch_first": batch_first, "bias": bias}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.nn.Transformer(**kw)
    perturb_(t, seed)
    j = copy_torch_weights(jnn.Transformer(**kw), t)
    t.train(train)
    j.train(train)
    rng = np.random.default_rng(seed)
    N, S, L = 2, 5, 4

    def seq(n):
        shape = ((N, n, 8) if batch_first else (n, N, 8)) if batched else (n, 8)
        return rng.standard_normal(shape).astype(np.float32)

    src, tgt = seq(S), seq(L)
    masks = {
        "tgt_mask": None if tgt_mask is None else causal_mask(L, tgt_mask),
        "memory_mask": (rng.random((L, S)) > 0.7) & (np.arange(S) > 0) if memory_mask else None,
        "tgt_key_padding_mask": None if tgt_kpm is None else padding_mask(rng, N, L, tgt_kpm),
        "memory_key_padding_mask": None if mem_kpm is None else padding_mask(rng, N, S, mem_kpm),
        "src_key_padding_mask": None if mem_kpm is None else padding_mask(rng, N, S, mem_kpm),
    }
    if not batched:
        masks = {k: (m[0] if m is not None and "padding" in k else m) for k, m in masks.items()}
    if masks["memory_key_padding_mask"] is not None and masks["memory_mask"] is not None:
        masks["memory_mask"] = masks["memory_mask"].astype(masks["memory_key_padding_mask"].dtype)
        if masks["memory_mask"].dtype != np.bool_:
            masks["memory_mask"] = np.where(masks["memory_mask"] > 0, -np.inf, 0).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = t(T(src), T(tgt), **{k: tmask(m) for k, m in masks.items()})
    (expected ** 2).sum().backward()
    apply, params, buffers = jnn.split(j)

    def loss(p, a, b):
        out = apply(p, buffers, a, b, **masks)[0]
        return (out ** 2).sum(), out

    (_, out), gp = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, src, tgt)
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, **TOL)
    tg = {n: p.grad for n, p in t.named_parameters()}
    assert sorted(gp) == sorted(tg)
    for name in tg:
        assert_close(gp[name], tg[name], rtol=1e-3, atol=1e-4)


def test_transformer_structure_init_and_mask():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.nn.Transformer(16, 4, 2, 2, 32)
    jnn.manual_seed(0)
    j = jnn.Transformer(16, 4, 2, 2, 32)
    check_structure(j, t)
    assert (j.d_model, j.nhead, j.batch_first) == (16, 4, False)
    # torch's _reset_parameters: xavier_uniform_ on every parameter with more than one dimension
    w = np.asarray(j.encoder.layers[0].linear1.weight)
    bound = np.sqrt(6 / (16 + 32))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    a, b = np.asarray(j.encoder.layers[0].linear1.weight), np.asarray(j.encoder.layers[1].linear1.weight)
    assert not np.allclose(a, b)  # re-drawn per layer after the copies, as torch's init does
    ow = np.asarray(j.decoder.layers[0].self_attn.out_proj.weight)
    assert np.abs(ow).max() <= np.sqrt(6 / 32)
    for sz in (1, 4):
        assert_close(jnn.Transformer.generate_square_subsequent_mask(sz),
                     torch.nn.Transformer.generate_square_subsequent_mask(sz), rtol=0, atol=0)
    assert jnn.Transformer.generate_square_subsequent_mask(3, dtype=jnp.bfloat16).dtype == jnp.bfloat16
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        j(jnp.ones((5, 2, 16)), jnp.ones((4, 3, 16)))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
        j(jnp.ones((5, 2, 8)), jnp.ones((4, 2, 8)))
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        jnn.TransformerEncoderLayer(8, 2, activation="tanh")


def test_callable_activation_custom_parts_jit_and_dropout():
    t = torch.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation=torch.tanh)
    j = copy_torch_weights(jnn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation=jnp.tanh), t)
    x = np.random.default_rng(0).standard_normal((5, 2, 8)).astype(np.float32)
    assert_close(j(x), t(T(x)), **TOL)
    t2 = torch.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation=torch.nn.GELU())
    j2 = copy_torch_weights(jnn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation=jnn.GELU()), t2)
    check_structure(j2, t2)  # a Module activation is a submodule, as in torch
    assert_close(jax.jit(lambda m, v: m(v))(j2, x), t2(T(x)), **TOL)
    # custom encoder / decoder
    enc = jnn.TransformerEncoder(jnn.TransformerEncoderLayer(8, 2, 12), 1)
    model = jnn.Transformer(8, 2, custom_encoder=enc, num_decoder_layers=1, dim_feedforward=12)
    assert model.encoder is enc and len(model.decoder.layers) == 1
    # dropout in training: random, reproducible with a key, identity in eval
    layer = jnn.TransformerEncoderLayer(8, 2, 12, dropout=0.5)
    with jnn.random.fork(jax.random.key(0)):
        a = layer(x)
    with jnn.random.fork(jax.random.key(0)):
        b = layer(x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(layer.eval()(x)))
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(lambda m, v: m(v))(layer.train(), x)
