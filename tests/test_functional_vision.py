"""gumbel_softmax, affine_grid and grid_sample against torch."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn
import jnn.functional as F
from tests.helpers import assert_close

SETTINGS = settings(max_examples=20, deadline=None)


# ---------------------------------------------------------------- gumbel_softmax

def test_gumbel_soft_sums_to_one_and_hard_is_one_hot():
    logits = jnp.asarray(np.random.default_rng(0).standard_normal((5, 7)), jnp.float32)
    soft = F.gumbel_softmax(logits, tau=0.5, key=jax.random.key(1))
    assert soft.shape == (5, 7)
    assert_close(soft.sum(-1), np.ones(5))
    assert bool((soft > 0).all())
    hard = F.gumbel_softmax(logits, hard=True, dim=0, key=jax.random.key(2))
    assert set(np.unique(np.asarray(hard)).tolist()) <= {0.0, 1.0}
    assert_close(hard.sum(0), np.ones(7))
    # the hard sample sits at the argmax of the soft sample with the same key
    soft0 = F.gumbel_softmax(logits, hard=False, dim=0, key=jax.random.key(2))
    assert (np.asarray(hard).argmax(0) == np.asarray(soft0).argmax(0)).all()


@pytest.mark.parametrize("tau", [1.0, 0.3])
def test_gumbel_hard_frequencies_match_softmax(tau):
    logits = jnp.array([1.0, -0.5, 0.0, 2.0])
    draws = 40000
    hard = F.gumbel_softmax(jnp.broadcast_to(logits, (draws, 4)), tau=tau, hard=True, key=jax.random.key(3))
    freq = np.asarray(hard).mean(0)
    # argmax of logits + gumbel noise is categorical(softmax(logits)), whatever tau
    np.testing.assert_allclose(freq, np.asarray(jax.nn.softmax(logits)), atol=0.01)


def test_gumbel_soft_mean_is_not_degenerate():
    logits = jnp.zeros((20000, 3))
    soft = np.asarray(F.gumbel_softmax(logits, key=jax.random.key(4)))
    np.testing.assert_allclose(soft.mean(0), np.full(3, 1 / 3), atol=0.01)
    assert soft.std(0).min() > 0.1


def test_gumbel_hard_gradient_is_soft_gradient():
    logits = jnp.asarray(np.random.default_rng(5).standard_normal((3, 6)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(6).standard_normal((3, 6)), jnp.float32)
    key = jax.random.key(7)

    def loss(lg, hard):
        return (w * F.gumbel_softmax(lg, tau=0.7, hard=hard, key=key)).sum()

    g_hard = jax.grad(loss)(logits, True)
    g_soft = jax.grad(loss)(logits, False)
    assert_close(g_hard, g_soft, atol=1e-6)
    assert float(jnp.abs(g_soft).max()) > 0


def test_gumbel_keys():
    logits = jnp.zeros((4, 5))
    a = F.gumbel_softmax(logits, key=jax.random.key(0))
    b = F.gumbel_softmax(logits, key=jax.random.key(0))
    c = F.gumbel_softmax(logits, key=jax.random.key(1))
    assert bool((a == b).all()) and not bool((a == c).all())
    jnn.manual_seed(3)
    d = F.gumbel_softmax(logits)
    jnn.manual_seed(3)
    e = F.gumbel_softmax(logits)
    f = F.gumbel_softmax(logits)
    assert bool((d == e).all()) and not bool((e == f).all())
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(lambda x: F.gumbel_softmax(x))(logits)
    jitted = jax.jit(lambda x, k: F.gumbel_softmax(x, hard=True, key=k))
    assert bool((jitted(logits, jax.random.key(0)) == F.gumbel_softmax(logits, hard=True,
                                                                       key=jax.random.key(0))).all())

    def forked(x, k):
        with jnn.random.fork(k):
            return F.gumbel_softmax(x)

    assert jax.jit(forked)(logits, jax.random.key(9)).shape == (4, 5)


def test_gumbel_eps_warns_and_int_logits():
    with pytest.warns(UserWarning, match="`eps` parameter is deprecated and has no effect."):
        F.gumbel_softmax(jnp.zeros(3), eps=1e-5, key=jax.random.key(0))
    y = F.gumbel_softmax(jnp.array([0, 1, 2]), key=jax.random.key(0))
    assert y.dtype == jnp.float32


# ---------------------------------------------------------------- affine_grid

def _torch_err(fn):
    with pytest.raises(Exception) as info:
        fn()
    return str(info.value)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), dims=st.sampled_from([2, 3]), ac=st.booleans(),
       size=st.sampled_from([(2, 3, 4, 5), (1, 1, 1, 3), (3, 2, 6, 1), (1, 2, 7, 2)]))
def test_affine_grid_matches_torch(seed, dims, ac, size):
    if dims == 3:
        size = size[:2] + (size[2] % 3 + 1,) + size[2:]
    theta = np.random.default_rng(seed).standard_normal((size[0], dims, dims + 1)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = TF.affine_grid(torch.tensor(theta), size, align_corners=ac)
        got = F.affine_grid(theta, size, align_corners=ac)
    assert got.shape == tuple(expected.shape) and got.dtype == jnp.float32
    assert_close(got, expected, rtol=1e-6, atol=1e-6)
    g_torch = torch.tensor(theta, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (TF.affine_grid(g_torch, size, align_corners=ac) ** 2).sum().backward()
        g = jax.grad(lambda t: (F.affine_grid(t, size, align_corners=ac) ** 2).sum())(jnp.asarray(theta))
    assert_close(g, g_torch.grad, rtol=1e-5, atol=1e-5)


def test_affine_grid_warnings_and_errors():
    theta = np.eye(2, 3, dtype=np.float32)[None]
    with pytest.warns(UserWarning, match="Default grid_sample and affine_grid behavior has changed"):
        a = F.affine_grid(theta, (1, 1, 2, 3))
    assert_close(a, F.affine_grid(theta, (1, 1, 2, 3), align_corners=False))
    with pytest.warns(UserWarning, match="for unit-size grids when align_corners=True"):
        F.affine_grid(theta, (1, 1, 1, 3), align_corners=True)
    cases = [
        (theta.astype(np.int32), (1, 1, 2, 2)),
        (theta, (1, 1, 2, 2, 2)),
        (np.zeros((1, 3, 4), np.float32), (1, 1, 2, 2)),
        (theta, (1, 1, 2)),
        (theta, (1, 1, 0, 2)),
        (theta[0], (1, 1, 2, 2)),
    ]
    for th, size in cases:
        expected = _torch_err(lambda th=th, size=size: TF.affine_grid(torch.tensor(th), size, align_corners=False))
        with pytest.raises((ValueError, NotImplementedError)) as info:
            F.affine_grid(th, size, align_corners=False)
        msg = str(info.value).replace("(", "[").replace(")", "]").replace("int32", "")
        ref = expected.replace("torch.Size(", "").replace("(", "[").replace(")", "]").replace("torch.int32", "")
        assert msg.split("Got")[0] == ref.split("Got")[0], (msg, expected)


# ---------------------------------------------------------------- grid_sample

SHAPES_2D = [((2, 3, 4, 5), (2, 3, 4)), ((1, 2, 1, 3), (1, 2, 5)), ((1, 1, 5, 1), (1, 1, 3))]
SHAPES_3D = [((2, 2, 3, 4, 2), (2, 2, 3, 2)), ((1, 1, 1, 2, 3), (1, 3, 1, 2))]


def _grid(rng, shape, spread):
    g = rng.uniform(-spread, spread, shape).astype(np.float32)
    # a few exact special points: corners, centre, just outside
    flat = g.reshape(-1)
    specials = np.array([-1.0, 1.0, 0.0, 1.3, -1.7, 3.2], np.float32)
    k = min(len(specials), flat.size // 3)
    flat[:k] = specials[:k]
    return flat.reshape(shape)


def _compare(x, g, mode, pm, ac, check_grid_grad=True):
    tx = torch.tensor(x, requires_grad=True)
    tg = torch.tensor(g, requires_grad=True)
    expected = TF.grid_sample(tx, tg, mode=mode, padding_mode=pm, align_corners=ac)
    w = np.random.default_rng(1).standard_normal(tuple(expected.shape)).astype(np.float32)
    (expected * torch.tensor(w)).sum().backward()
    got = F.grid_sample(x, g, mode, pm, ac)
    assert got.shape == tuple(expected.shape)
    assert_close(got, expected, rtol=1e-5, atol=1e-5)
    gx, gg = jax.grad(lambda a, b: (F.grid_sample(a, b, mode, pm, ac) * w).sum(), argnums=(0, 1))(
        jnp.asarray(x), jnp.asarray(g))
    assert_close(gx, tx.grad, rtol=1e-4, atol=1e-4)
    if check_grid_grad:
        assert_close(gg, tg.grad, rtol=1e-4, atol=2e-4)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), shapes=st.sampled_from(SHAPES_2D),
       mode=st.sampled_from(["bilinear", "nearest", "bicubic"]), pm=st.sampled_from(["zeros", "border", "reflection"]),
       ac=st.booleans(), spread=st.sampled_from([1.0, 1.5, 4.0]))
def test_grid_sample_2d_matches_torch(seed, shapes, mode, pm, ac, spread):
    (xs, gs), rng = shapes, np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    g = _grid(rng, (*gs, 2), spread)
    _compare(x, g, mode, pm, ac)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), shapes=st.sampled_from(SHAPES_3D),
       mode=st.sampled_from(["bilinear", "nearest"]), pm=st.sampled_from(["zeros", "border", "reflection"]),
       ac=st.booleans(), spread=st.sampled_from([1.0, 1.5, 4.0]))
def test_grid_sample_3d_matches_torch(seed, shapes, mode, pm, ac, spread):
    (xs, gs), rng = shapes, np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    g = _grid(rng, (*gs, 3), spread)
    _compare(x, g, mode, pm, ac)


def test_grid_sample_with_affine_grid_identity_and_jit():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    theta = np.tile(np.eye(2, 3, dtype=np.float32), (2, 1, 1))
    for ac in (True, False):
        y = F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=ac), align_corners=ac)
        assert_close(y, x, atol=1e-5)
    f = jax.jit(lambda a, b: F.grid_sample(a, b, "bicubic", "reflection", True))
    g = _grid(np.random.default_rng(1), (2, 3, 3, 2), 1.5)
    assert_close(f(x, g), TF.grid_sample(torch.tensor(x), torch.tensor(g), "bicubic", "reflection", True), atol=1e-5)


def test_grid_sample_empty_shapes():
    for xs, gs in [((0, 2, 3, 4), (0, 2, 2, 2)), ((2, 0, 3, 4), (2, 2, 2, 2)), ((1, 2, 3, 4), (1, 0, 2, 2))]:
        x, g = np.zeros(xs, np.float32), np.zeros(gs, np.float32)
        expected = TF.grid_sample(torch.tensor(x), torch.tensor(g), align_corners=False)
        assert F.grid_sample(x, g, align_corners=False).shape == tuple(expected.shape)


def test_grid_sample_warnings_and_errors():
    x, g = np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 1, 2), np.float32)
    with pytest.warns(UserWarning, match="Default grid_sample and affine_grid behavior has changed"):
        F.grid_sample(x, g)
    for kw in ({"mode": "linear"}, {"padding_mode": "wrap"}):
        expected = _torch_err(lambda kw=kw: TF.grid_sample(torch.tensor(x), torch.tensor(g), align_corners=False,
                                                           **kw))
        with pytest.raises(ValueError) as info:
            F.grid_sample(x, g, align_corners=False, **kw)
        assert str(info.value) == expected
    cases = [
        (np.zeros((1, 1, 2), np.float32), g, "bilinear"),
        (np.zeros((1, 1, 2), np.float32), np.zeros((1, 1, 1, 1), np.float32), "bilinear"),
        (x, np.zeros((1, 1, 1, 1, 2), np.float32), "bilinear"),
        (np.zeros((1, 1, 2, 2, 2), np.float32), np.zeros((1, 1, 1, 3), np.float32), "bilinear"),
        (np.zeros((2, 1, 2, 2), np.float32), g, "bilinear"),
        (x, np.zeros((1, 1, 1, 3), np.float32), "bilinear"),
        (np.zeros((1, 1, 0, 2), np.float32), g, "bilinear"),
        (np.zeros((1, 1, 2, 2, 2), np.float32), np.zeros((1, 1, 1, 1, 3), np.float32), "bicubic"),
    ]
    for a, b, mode in cases:
        expected = _torch_err(lambda a=a, b=b, mode=mode: TF.grid_sample(torch.tensor(a), torch.tensor(b), mode,
                                                                           align_corners=False))
        with pytest.raises(ValueError) as info:
            F.grid_sample(a, b, mode, align_corners=False)
        assert str(info.value) == expected.split("\n")[0]
