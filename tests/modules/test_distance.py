"""CosineSimilarity, PairwiseDistance and pdist against torch: values, broadcasting, gradients, repr."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn
import jnn.functional as F

SETTINGS = settings(max_examples=15, deadline=None)
T = torch.from_numpy


def both_grads(jfn, tfn, *arrays):
    """Gradients of sum(f(...) ** 2) w.r.t. every input, jnn (one compiled call) and torch."""
    gj = jax.jit(jax.grad(lambda *a: (jfn(*a) ** 2).sum(), argnums=tuple(range(len(arrays)))))(*arrays)
    ts = [T(a.copy()).requires_grad_(True) for a in arrays]
    (tfn(*ts) ** 2).sum().backward()
    return gj, [t.grad for t in ts]


@SETTINGS
@given(
    shapes=st.sampled_from([((4, 5), (4, 5)), ((3, 4, 2), (1, 4, 2)), ((5,), (5,)), ((2, 3), (3,))]),
    dim=st.sampled_from([0, -1]), eps=st.sampled_from([1e-8, 0.5]), tiny=st.booleans(), seed=st.integers(0, 2**16),
)
def test_cosine_similarity_matches_torch(shapes, dim, eps, tiny, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = rng.standard_normal(shapes[1]).astype(np.float32)
    if tiny:
        a = a * 1e-3  # norms below eps: the clamp matters
    layer, tlayer = jnn.CosineSimilarity(dim, eps), torch.nn.CosineSimilarity(dim, eps)
    assert repr(layer) == repr(tlayer)
    expected = tlayer(T(a), T(b))
    out = layer(a, b)
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    gj, gt = both_grads(lambda x, y: F.cosine_similarity(x, y, dim, eps),
                        lambda x, y: torch.nn.functional.cosine_similarity(x, y, dim, eps), a, b)
    # d cos / d x scales as 1 / |x|: so does the float32 rounding of gradients that are zero in exact arithmetic
    # (a input broadcast along dim has a direction that does not depend on it)
    smallest = min(np.linalg.norm(v, axis=dim if v.ndim > 1 else None).min() for v in (a, b))
    for ours, theirs in zip(gj, gt, strict=True):
        assert_close(ours, theirs, rtol=1e-4, atol=1e-5 / min(1.0, max(smallest, eps)))


@SETTINGS
@given(
    shapes=st.sampled_from([((4, 5), (4, 5)), ((3, 5), (5,)), ((5,), (5,)), ((2, 3, 4), (2, 3, 4))]),
    p=st.sampled_from([2.0, 1.0, 3.0, float("inf")]), eps=st.sampled_from([1e-6, 0.0]), keepdim=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pairwise_distance_matches_torch(shapes, p, eps, keepdim, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = rng.standard_normal(shapes[1]).astype(np.float32)
    layer, tlayer = jnn.PairwiseDistance(p, eps, keepdim), torch.nn.PairwiseDistance(p, eps, keepdim)
    assert repr(layer) == repr(tlayer)
    assert (layer.norm, layer.eps, layer.keepdim) == (tlayer.norm, tlayer.eps, tlayer.keepdim)
    expected = tlayer(T(a), T(b))
    out = layer(a, b)
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    gj, gt = both_grads(lambda x, y: F.pairwise_distance(x, y, p, eps, keepdim),
                        lambda x, y: torch.nn.functional.pairwise_distance(x, y, p, eps, keepdim), a, b)
    for ours, theirs in zip(gj, gt, strict=True):
        assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("p", [2.0, 1.0, 0.5, float("inf")])
def test_pdist_matches_torch(p):
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    x[3] = x[1]  # identical rows: distance 0, finite gradient
    expected = torch.nn.functional.pdist(T(x), p)
    out = F.pdist(x, p)
    assert out.shape == tuple(expected.shape) == (10,)
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    if p >= 1:
        gj, gt = both_grads(lambda v: F.pdist(v, p), lambda v: torch.nn.functional.pdist(v, p), x)
        assert np.isfinite(np.asarray(gj[0])).all()
        assert_close(gj[0], gt[0], rtol=1e-4, atol=1e-5)
    assert F.pdist(np.ones((1, 3), np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="pdist only supports 2D tensors, got: 1D"):
        F.pdist(jnp.ones(3))


def test_distance_layers_under_jit():
    a, b = jnp.ones((2, 3)), jnp.arange(6.0).reshape(2, 3)
    for layer in (jnn.CosineSimilarity(), jnn.PairwiseDistance()):
        np.testing.assert_allclose(np.asarray(jax.jit(lambda m, x, y: m(x, y))(layer, a, b)),
                                   np.asarray(layer(a, b)), rtol=1e-6)
    with pytest.raises(ValueError, match="broadcastable"):
        F.cosine_similarity(jnp.ones((2, 3)), jnp.ones((4,)))
