"""Embedding, EmbeddingBag and one_hot against torch: repr, state dicts, lookups, bags, gradients, max_norm."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn
import jnn.functional as F

SETTINGS = settings(max_examples=15, deadline=None)
T = torch.from_numpy


def weight_grad_jnn(module, *args, **kw):
    apply, params, buffers = jnn.split(module)
    return jax.jit(jax.grad(lambda p: (apply(p, buffers, *args, **kw)[0] ** 2).sum()))(params)["weight"]


def weight_grad_torch(module, *args, **kw):
    module.zero_grad()
    (module(*args, **kw) ** 2).sum().backward()
    return module.weight.grad


@pytest.mark.parametrize("kw", [{}, {"padding_idx": -1, "max_norm": 1.0, "norm_type": 3.0,
                                     "scale_grad_by_freq": True}, {"padding_idx": 0}])
def test_embedding_repr_state_and_init(kw):
    t, j = torch.nn.Embedding(10, 3, **kw), jnn.Embedding(10, 3, **kw)
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(torch_state(t)) == ["weight"]
    assert j.weight.shape == (10, 3) and j.padding_idx == t.padding_idx
    if t.padding_idx is not None:
        assert not np.asarray(j.weight)[t.padding_idx].any()
    jnn.manual_seed(0)
    w = np.asarray(jnn.Embedding(1000, 100).weight)  # N(0, 1)
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01
    with pytest.raises(ValueError, match="Padding_idx must be within num_embeddings"):
        jnn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(NotImplementedError, match="sparse"):
        jnn.Embedding(5, 2, sparse=True)


@SETTINGS
@given(
    shape=st.sampled_from([(4,), (2, 3), (0,), ()]),
    padding_idx=st.sampled_from([None, 0, -2]), scale_grad_by_freq=st.booleans(), seed=st.integers(0, 2**16),
)
def test_embedding_matches_torch(shape, padding_idx, scale_grad_by_freq, seed):
    torch.manual_seed(seed)
    t = torch.nn.Embedding(6, 3, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)
    j = copy_torch_weights(jnn.Embedding(6, 3, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq), t)
    idx = np.random.default_rng(seed).integers(0, 6, shape)
    out = j(jnp.asarray(idx, jnp.int32))
    expected = t(T(idx))
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, rtol=0, atol=0)
    if idx.size:
        assert_close(weight_grad_jnn(j, jnp.asarray(idx, jnp.int32)), weight_grad_torch(t, T(idx)), rtol=1e-5,
                     atol=1e-6)


def test_embedding_max_norm_updates_weight_eagerly_like_torch():
    torch.manual_seed(0)
    t = torch.nn.Embedding(6, 4, max_norm=1.0)
    with torch.no_grad():
        t.weight.mul_(3)
    j = copy_torch_weights(jnn.Embedding(6, 4, max_norm=1.0), t)
    idx = np.array([[0, 2], [2, 5]])
    untouched = np.asarray(j.weight)[1].copy()
    assert_close(j(jnp.asarray(idx)), t(T(idx)), rtol=1e-5, atol=1e-6)
    assert_close(j.weight, t.weight, rtol=1e-5, atol=1e-6)  # the looked-up rows were renormalised
    np.testing.assert_array_equal(np.asarray(j.weight)[1], untouched)
    # under jit the looked-up values are renormalised but the weight cannot change
    fresh = copy_torch_weights(jnn.Embedding(6, 4, max_norm=1.0), torch.nn.Embedding(6, 4))
    before = np.asarray(fresh.weight).copy()
    out = jax.jit(lambda m, i: m(i))(fresh, jnp.asarray(idx))
    assert np.all(np.linalg.norm(np.asarray(out), axis=-1) <= 1.0 + 1e-5)
    np.testing.assert_array_equal(np.asarray(fresh.weight), before)
    # gradient: as torch's w.r.t. the renormalised weight
    t2 = torch.nn.Embedding(6, 4, max_norm=0.5)
    j2 = copy_torch_weights(jnn.Embedding(6, 4, max_norm=0.5), t2)
    assert_close(weight_grad_jnn(j2, jnp.asarray(idx)), weight_grad_torch(t2, T(idx)), rtol=1e-5, atol=1e-6)
    renormed = np.asarray(F.embedding_renorm(before, idx, 1.0))
    assert_close(renormed[idx], F.embedding(idx, before, max_norm=1.0), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(renormed[[1, 3, 4]], before[[1, 3, 4]])


def test_embedding_from_pretrained_and_errors():
    w = np.arange(12, dtype=np.float32).reshape(4, 3)
    t = torch.nn.Embedding.from_pretrained(T(w), padding_idx=1)
    j = jnn.Embedding.from_pretrained(jnp.asarray(w), padding_idx=1)
    assert repr(j) == repr(t)
    assert_close(j(jnp.array([1, 3])), t(torch.tensor([1, 3])), rtol=0, atol=0)
    apply, params, buffers = jnn.split(j)
    assert params == {} and list(buffers) == ["weight"]  # frozen
    j2 = jnn.Embedding.from_pretrained(jnp.asarray(w), freeze=False)
    assert list(jnn.split(j2)[1]) == ["weight"]
    with pytest.raises(ValueError, match="Embeddings parameter is expected to be 2-dimensional"):
        jnn.Embedding.from_pretrained(jnp.ones(3))
    with pytest.raises(IndexError, match="index out of range in self"):
        j(jnp.array([4]))
    with pytest.raises(TypeError, match="integer"):
        j(jnp.array([1.0]))


@SETTINGS
@given(
    mode=st.sampled_from(["sum", "mean", "max"]), layout=st.sampled_from(["2d", "offsets", "last_offset"]),
    padding_idx=st.sampled_from([None, 1]), weighted=st.booleans(), seed=st.integers(0, 2**16),
)
def test_embedding_bag_matches_torch(mode, layout, padding_idx, weighted, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    weighted = weighted and mode == "sum"
    kw = {"mode": mode, "padding_idx": padding_idx, "include_last_offset": layout == "last_offset"}
    t = torch.nn.EmbeddingBag(7, 3, **kw)
    j = copy_torch_weights(jnn.EmbeddingBag(7, 3, **kw), t)
    assert repr(j) == repr(t)
    if layout == "2d":
        idx, offsets = rng.integers(0, 7, (3, 4)), None
    else:
        idx = rng.integers(0, 7, 8)
        offsets = np.array([0, 2, 2, 5] + ([8] if layout == "last_offset" else []))  # an empty bag too
    psw = rng.standard_normal(idx.shape).astype(np.float32) if weighted else None
    args = (jnp.asarray(idx), None if offsets is None else jnp.asarray(offsets))
    out = j(*args, per_sample_weights=psw)
    targs = (T(idx), None if offsets is None else T(offsets))
    expected = t(*targs, per_sample_weights=None if psw is None else T(psw))
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert_close(weight_grad_jnn(j, *args, per_sample_weights=psw),
                 weight_grad_torch(t, *targs, per_sample_weights=None if psw is None else T(psw)),
                 rtol=1e-5, atol=1e-5)


def test_embedding_bag_errors_and_from_pretrained():
    w = np.eye(4, dtype=np.float32)
    t = torch.nn.EmbeddingBag.from_pretrained(T(w), mode="max")
    j = jnn.EmbeddingBag.from_pretrained(jnp.asarray(w), mode="max")
    assert repr(j) == repr(t)
    assert_close(j(jnp.array([[0, 2], [3, 3]])), t(torch.tensor([[0, 2], [3, 3]])), rtol=0, atol=0)
    assert jnn.split(j)[1] == {}
    with pytest.raises(ValueError, match="offsets has to be None"):
        j(jnp.array([[0, 1]]), jnp.array([0]))
    with pytest.raises(NotImplementedError, match="per_sample_weights is only supported for mode='sum'"):
        j(jnp.array([[0, 1]]), per_sample_weights=jnp.ones((1, 2)))
    with pytest.raises(ValueError, match="mode has to be one of sum, mean or max"):
        jnn.EmbeddingBag(3, 2, mode="median")


def test_one_hot_matches_torch_and_jit():
    x = np.array([[0, 3], [2, 1]])
    assert_close(F.one_hot(jnp.asarray(x)), torch.nn.functional.one_hot(T(x)), rtol=0, atol=0)
    assert_close(F.one_hot(jnp.asarray(x), 6), torch.nn.functional.one_hot(T(x), 6), rtol=0, atol=0)
    assert F.one_hot(jnp.asarray(x), 6).shape == (2, 2, 6)
    assert jax.jit(lambda v: F.one_hot(v, 5))(jnp.asarray(x)).shape == (2, 2, 5)
    with pytest.raises(ValueError, match="pass num_classes explicitly"):
        jax.jit(lambda v: F.one_hot(v))(jnp.asarray(x))
    with pytest.raises(ValueError, match="Class values must be smaller than num_classes."):
        F.one_hot(jnp.asarray(x), 3)
    with pytest.raises(ValueError, match="Class values must be non-negative."):
        F.one_hot(jnp.array([-1]), 3)
    with pytest.raises(TypeError, match="LongTensor"):
        F.one_hot(jnp.array([1.0]), 3)


def test_embedding_under_jit_and_key():
    a, b = jnn.Embedding(5, 2, key=jax.random.key(0)), jnn.Embedding(5, 2, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(a.weight), np.asarray(b.weight))
    idx = jnp.array([[1, 4]])
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda m, i: m(i))(a, idx)), np.asarray(a(idx)))


def test_embedding_bag_max_norm_like_torch():
    torch.manual_seed(1)
    t = torch.nn.EmbeddingBag(6, 4, max_norm=0.7, mode="mean")
    j = copy_torch_weights(jnn.EmbeddingBag(6, 4, max_norm=0.7, mode="mean"), t)
    idx = np.array([[0, 2, 2], [5, 1, 0]])
    assert_close(j(jnp.asarray(idx)), t(T(idx)), rtol=1e-5, atol=1e-6)
    assert_close(j.weight, t.weight, rtol=1e-5, atol=1e-6)  # rows 0, 1, 2, 5 renormalised, as torch does
