"""Dropout against torch.nn.Dropout: repr, errors, eval identity, mask statistics, keys under transformations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn


def error_of(fn) -> tuple[type, str]:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    raise AssertionError("no error raised")


@pytest.mark.parametrize("args, kw", [((), {}), ((0.2,), {}), ((), {"p": 0.0, "inplace": True}), ((1.0,), {})])
def test_dropout_repr_and_state_match_torch(args, kw):
    t, j = torch.nn.Dropout(*args, **kw), jnn.Dropout(*args, **kw)
    assert repr(j) == repr(t)
    assert (j.p, j.inplace) == (t.p, t.inplace)
    assert list(j.state_dict()) == list(t.state_dict()) == []


def test_dropout_repr_literal_text():
    assert repr(jnn.Dropout()) == "Dropout(p=0.5, inplace=False)"


@pytest.mark.parametrize("p", [-0.1, 1.5, -1, 2])
def test_dropout_probability_outside_unit_interval_raises_like_torch(p):
    assert error_of(lambda: jnn.Dropout(p)) == error_of(lambda: torch.nn.Dropout(p))


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
def test_dropout_eval_is_identity(p):
    drop = jnn.Dropout(p).eval()
    x = jax.random.normal(jax.random.key(0), (4, 5))
    np.testing.assert_array_equal(np.asarray(drop(x)), np.asarray(x))
    # eval needs no randomness, so it runs under jit without a key
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda m, v: m(v))(drop, x)), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(torch.nn.Dropout(p).eval()(torch.from_numpy(np.asarray(x)))),
                                  np.asarray(x))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_dropout_train_mask_statistics(p):
    jnn.manual_seed(0)
    n = 200_000
    x = jnp.full((n,), 3.0)
    y = np.asarray(jnn.Dropout(p)(x))
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    # kept values are scaled by 1/(1-p), as torch scales them
    ty = torch.nn.Dropout(p)(torch.full((1000,), 3.0)).numpy()
    np.testing.assert_allclose(y[kept], 3.0 / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(y[kept], ty[ty != 0][0], rtol=1e-6)
    assert set(np.unique(y[kept])) == {np.float32(y[kept][0])}
    # the mask is independent per element, not e.g. per row: no long runs
    blocks = kept[: n - n % 100].reshape(-1, 100).mean(1)
    assert blocks.std() < 3 * np.sqrt(p * (1 - p) / 100)


def test_dropout_p0_identity_and_p1_zeros_in_training_like_torch():
    values = np.array([1.0, np.nan, np.inf, -2.0, 0.5], np.float32)
    for p in (0.0, 1.0):
        out = np.asarray(jnn.Dropout(p)(jnp.asarray(values)))
        expected = torch.nn.Dropout(p)(torch.from_numpy(values)).numpy()
        np.testing.assert_array_equal(out, expected)
    assert np.asarray(jnn.Dropout(1.0)(jnp.ones((3, 4)))).tolist() == [[0.0] * 4] * 3
    # p=0 and p=1 need no randomness: they run under jit without a key
    assert jax.jit(lambda m, v: m(v))(jnn.Dropout(1.0), jnp.ones(3)).tolist() == [0.0, 0.0, 0.0]
    assert jax.jit(lambda m, v: m(v))(jnn.Dropout(0.0), jnp.ones(3)).tolist() == [1.0, 1.0, 1.0]


@settings(max_examples=12, deadline=None)
@given(shape=st.sampled_from([(), (0,), (7,), (3, 4), (2, 0, 3), (2, 3, 4, 5)]), p=st.floats(0.05, 0.95),
       seed=st.integers(0, 2**16))
def test_dropout_any_shape_keeps_shape_dtype_and_values(shape, p, seed):
    x = jax.random.normal(jax.random.key(seed), shape) + 10.0  # no zeros in the input
    with jnn.random.fork(jax.random.key(seed)):
        y = jnn.Dropout(p)(x)
    assert y.shape == x.shape == tuple(torch.nn.Dropout(p)(torch.zeros(shape)).shape) and y.dtype == x.dtype
    y, x = np.asarray(y), np.asarray(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / np.float32(1 - p), rtol=1e-5)


def test_dropout_keeps_low_precision_dtypes():
    for dtype in (jnp.bfloat16, jnp.float16):
        with jnn.random.fork(jax.random.key(0)):
            y = jnn.Dropout(0.5)(jnp.ones(64, dtype))
        assert y.dtype == dtype
        assert set(np.asarray(y, np.float32).tolist()) == {0.0, 2.0}


# --- randomness: the global stream, keys, transformations ---------------------------------------------------


def test_dropout_eager_draws_fresh_masks_and_manual_seed_reproduces_them():
    drop, x = jnn.Dropout(0.5), jnp.ones(256)
    jnn.manual_seed(123)
    a, b = np.asarray(drop(x)), np.asarray(drop(x))
    assert not np.array_equal(a, b)  # a fresh mask per call
    jnn.manual_seed(123)
    np.testing.assert_array_equal(np.asarray(drop(x)), a)
    np.testing.assert_array_equal(np.asarray(drop(x)), b)


def test_dropout_under_jit_needs_a_key():
    drop, x = jnn.Dropout(0.5), jnp.ones(16)
    with pytest.raises(jnn.random.MissingKeyError, match="fork"):
        jax.jit(lambda m, v: m(v))(drop, x)
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(jax.grad(lambda v: drop(v).sum()))(x)
    apply, params, buffers = jnn.split(drop)
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(apply)(params, buffers, x)


def test_dropout_under_eager_grad_draws_from_the_global_stream():
    drop, x = jnn.Dropout(0.5), jnp.ones(256)
    jnn.manual_seed(5)
    g1 = np.asarray(jax.grad(lambda v: drop(v).sum())(x))
    g2 = np.asarray(jax.grad(lambda v: drop(v).sum())(x))
    assert set(g1.tolist()) == {0.0, 2.0} and not np.array_equal(g1, g2)
    jnn.manual_seed(5)
    np.testing.assert_array_equal(np.asarray(drop(x)), g1)  # the same draw as an eager forward


def test_dropout_under_vmap_without_key_does_not_reuse_one_mask():
    """Design: without a key, randomness under a transformation raises rather than silently repeating a mask.

    torch.func.vmap raises on dropout by default (randomness='error'); jnn must either raise
    MissingKeyError or give each vmapped example its own mask, never one mask copied across the batch.
    """
    drop = jnn.Dropout(0.5)
    try:
        y = np.asarray(jax.vmap(drop)(jnp.ones((8, 64))))
    except jnn.random.MissingKeyError:
        return
    assert any(not np.array_equal(y[0], y[i]) for i in range(1, 8)), "every example got the same mask"


def test_dropout_fork_gives_reproducible_masks_under_jit():
    drop, x = jnn.Dropout(0.5), jnp.ones(256)

    @jax.jit
    def f(m, v, key):
        with jnn.random.fork(key):
            return m(v), m(v)

    a1, a2 = f(drop, x, jax.random.key(1))
    b1, b2 = f(drop, x, jax.random.key(1))
    c1, _ = f(drop, x, jax.random.key(2))
    np.testing.assert_array_equal(np.asarray(a1), np.asarray(b1))
    np.testing.assert_array_equal(np.asarray(a2), np.asarray(b2))
    assert not np.array_equal(np.asarray(a1), np.asarray(a2))  # two draws inside one fork differ
    assert not np.array_equal(np.asarray(a1), np.asarray(c1))
    # the same key eagerly gives the same masks as under jit
    with jnn.random.fork(jax.random.key(1)):
        np.testing.assert_array_equal(np.asarray(drop(x)), np.asarray(a1))


def test_dropout_split_apply_with_key_is_reproducible_and_train_flag_works():
    net = jnn.Sequential(jnn.Linear(8, 64), jnn.Dropout(0.5))
    apply, params, buffers = jnn.split(net)
    x = jnp.ones((2, 8))
    run = jax.jit(apply, static_argnames="train")
    a, _ = run(params, buffers, x, key=jax.random.key(3))
    b, _ = run(params, buffers, x, key=jax.random.key(3))
    c, _ = run(params, buffers, x, key=jax.random.key(4))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    plain = np.asarray(net[0](x))
    e, _ = run(params, buffers, x, train=False)  # eval: no key needed, dropout is the identity
    np.testing.assert_allclose(np.asarray(e), plain, rtol=1e-6)
    kept = np.asarray(a) != 0
    np.testing.assert_allclose(np.asarray(a)[kept], 2 * plain[kept], rtol=1e-5)


def test_dropout_gradient_is_the_scaled_mask():
    drop, key = jnn.Dropout(0.25), jax.random.key(9)
    x = jax.random.normal(jax.random.key(0), (64,)) + 5.0
    with jnn.random.fork(key):
        y = drop(x)
    with jnn.random.fork(key):
        g = jax.grad(lambda v: drop(v).sum())(x)
    np.testing.assert_allclose(np.asarray(g), (np.asarray(y) != 0) / 0.75, rtol=1e-6)
    assert 0 < int((np.asarray(g) == 0).sum()) < 64


# --- Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout ----------------------------------------------------

FAMILY = ["Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
FEATURE_SHAPES = {"Dropout1d": [(4, 6, 5), (6, 5)], "Dropout2d": [(4, 6, 3, 3)], "Dropout3d": [(4, 6, 2, 2, 2),
                                                                                             (6, 2, 2, 2)],
                  "FeatureAlphaDropout": [(4, 6, 5), (4, 6, 2, 2)]}
F_OF = {"Dropout1d": "dropout1d", "Dropout2d": "dropout2d", "Dropout3d": "dropout3d", "AlphaDropout": "alpha_dropout",
        "FeatureAlphaDropout": "feature_alpha_dropout"}
ALPHA = 1.7580993408473766


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("args, kw", [((), {}), ((0.2,), {"inplace": True}), ((0.0,), {}), ((1.0,), {})])
def test_family_repr_and_eval_identity(name, args, kw):
    t, j = getattr(torch.nn, name)(*args, **kw), getattr(jnn, name)(*args, **kw)
    assert repr(j) == repr(t)
    assert j.state_dict() == {} and j.p == t.p and j.inplace == t.inplace
    x = jax.random.normal(jax.random.key(0), FEATURE_SHAPES.get(name, [(3, 4, 5)])[0])
    j.eval()
    np.testing.assert_array_equal(np.asarray(j(x)), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda m, v: m(v))(j, x)), np.asarray(x))


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_family_probability_errors_match_torch(name, p):
    te = error_of(lambda: getattr(torch.nn, name)(p))
    assert error_of(lambda: getattr(jnn, name)(p)) == te
    fn = F_OF[name]
    te = error_of(lambda: getattr(torch.nn.functional, fn)(torch.ones(2, 3, 4), p))
    assert error_of(lambda: getattr(jnn.functional, fn)(jnp.ones((2, 3, 4)), p)) == te


@pytest.mark.parametrize("name", ["Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout"])
def test_feature_dropout_masks_whole_channels(name):
    for shape in FEATURE_SHAPES[name]:
        x = jnp.full(shape, 2.0)
        with jnn.random.fork(jax.random.key(len(shape))):
            y = np.asarray(getattr(jnn, name)(0.5)(x))
        assert y.shape == tuple(getattr(torch.nn, name)(0.5)(torch.full(shape, 2.0)).shape)
        spatial = {"Dropout1d": 1, "Dropout2d": 2, "Dropout3d": 3}.get(name, len(shape) - 2)
        flat = y.reshape(-1, int(np.prod(shape[-spatial:])))
        assert (flat == flat[:, :1]).all()  # one draw per (n, c) feature map
        values = set(np.unique(y).tolist())
        if name == "FeatureAlphaDropout":
            a = 1 / np.sqrt((ALPHA**2 * 0.5 + 1) * 0.5)
            expected = {np.float32(2 * a + ALPHA * a * 0.5), np.float32(-ALPHA * a * 0.5)}
            ty = torch.nn.FeatureAlphaDropout(0.5)(torch.full(shape, 2.0)).numpy()
            np.testing.assert_allclose(np.unique(ty), sorted(expected), rtol=1e-6)  # torch's two values
        else:
            expected = {np.float32(0.0), np.float32(4.0)}
        assert values <= {float(v) for v in expected} and len(values) == 2


def test_channel_dropout_rate_and_scale():
    jnn.manual_seed(0)
    y = np.asarray(jnn.Dropout2d(0.3)(jnp.ones((400, 50, 2, 2))))
    kept = y[:, :, 0, 0] != 0
    assert abs(kept.mean() - 0.7) < 5 * np.sqrt(0.21 / kept.size)
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)


def test_alpha_dropout_values_and_self_normalisation_like_torch():
    p = 0.3
    jnn.manual_seed(1)
    x = jax.random.normal(jax.random.key(1), (200_000,))
    y = np.asarray(jnn.AlphaDropout(p)(x))
    a = 1 / np.sqrt((ALPHA**2 * p + 1) * (1 - p))
    dropped = np.isclose(y, -ALPHA * a * (1 - p))
    assert abs(dropped.mean() - p) < 0.01
    np.testing.assert_allclose(y[~dropped], a * np.asarray(x)[~dropped] + ALPHA * a * p, rtol=1e-5, atol=1e-6)
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02  # zero mean, unit variance kept
    ty = torch.nn.AlphaDropout(p)(torch.ones(10_000)).numpy()  # torch's two values for a constant input
    ours = np.asarray(jnn.AlphaDropout(p)(jnp.ones(10_000)))
    np.testing.assert_allclose(np.unique(ours), np.unique(ty), rtol=1e-6)
    # p=1 gives zeros and p=0 the input, as torch; the functional default is training=False
    np.testing.assert_array_equal(np.asarray(jnn.AlphaDropout(1.0)(jnp.ones(3))), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(jnn.functional.alpha_dropout(x[:5])), np.asarray(x[:5]))


def test_feature_dropout_rank_errors_and_warnings_match_torch():
    te = error_of(lambda: torch.nn.functional.dropout1d(torch.ones(2, 3, 4, 5)))
    assert error_of(lambda: jnn.functional.dropout1d(jnp.ones((2, 3, 4, 5)))) == te
    te = error_of(lambda: torch.nn.functional.feature_alpha_dropout(torch.ones(3), 0.5, True))
    assert error_of(lambda: jnn.functional.feature_alpha_dropout(jnp.ones(3), 0.5, True)) == te
    for fn, shape in (("dropout2d", (2, 3, 4)), ("dropout2d", (2, 3)), ("dropout3d", (2, 3, 4))):
        with pytest.warns(UserWarning) as theirs:
            getattr(torch.nn.functional, fn)(torch.ones(shape), 0.5, False)
        with pytest.warns(UserWarning) as ours:
            getattr(jnn.functional, fn)(jnp.ones(shape), 0.5, False)
        assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]


@pytest.mark.parametrize("name", FAMILY)
def test_family_keys_under_transformations(name):
    m = getattr(jnn, name)(0.5)
    x = jnp.ones(FEATURE_SHAPES.get(name, [(4, 6, 5)])[0])
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(lambda mm, v: mm(v))(m, x)

    @jax.jit
    def f(mm, v, key):
        with jnn.random.fork(key):
            return mm(v)

    a, b, c = f(m, x, jax.random.key(0)), f(m, x, jax.random.key(0)), f(m, x, jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    apply, params, buffers = jnn.split(m)
    d, _ = jax.jit(apply)(params, buffers, x, key=jax.random.key(0))
    assert d.shape == x.shape and d.dtype == x.dtype
    g = jax.grad(lambda v: f(m, v, jax.random.key(0)).sum())(x)
    assert np.isfinite(np.asarray(g)).all() and len(np.unique(np.asarray(g))) == 2
    for dtype in (jnp.bfloat16, jnp.float16):
        assert f(m, x.astype(dtype), jax.random.key(0)).dtype == dtype
