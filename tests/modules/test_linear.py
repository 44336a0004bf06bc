"""Identity and Linear against torch.nn: repr, state dicts, outputs, gradients, initialisation, factory args."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights, jnn_grads, torch_grads, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn

SETTINGS = settings(max_examples=15, deadline=None)


def grads_and_input_grad(module, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """d/d(params, x) of sum(module(x) ** 2) through jnn.split, in one jitted call (cheaper than eager)."""
    apply, params, buffers = jnn.split(module)
    loss = lambda p, v: (apply(p, buffers, v)[0] ** 2).sum()  # noqa: E731
    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, jnp.asarray(x))
    return {k: np.asarray(v) for k, v in gp.items()}, np.asarray(gx)


def torch_grads_and_input_grad(module, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    module.zero_grad()
    (module(tx) ** 2).sum().backward()
    return {k: p.grad.numpy().copy() for k, p in module.named_parameters()}, tx.grad.numpy()


# --- Identity ----------------------------------------------------------------------------------------------


def test_identity_repr_state_and_passthrough():
    t, j = torch.nn.Identity(54, unused_argument1=0.1), jnn.Identity(54, unused_argument1=0.1)
    assert repr(j) == repr(t) == "Identity()"
    assert list(j.state_dict()) == list(t.state_dict()) == []
    x = jnp.arange(6.0).reshape(2, 3)
    assert j(x) is x
    assert jax.jit(lambda m, v: m(v))(j, x).tolist() == x.tolist()


# --- Linear: structure -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_linear_repr_and_state_dict_match_torch(bias):
    t, j = torch.nn.Linear(7, 3, bias=bias), jnn.Linear(7, 3, bias=bias)
    assert repr(j) == repr(t)
    assert repr(j) == f"Linear(in_features=7, out_features=3, bias={bias})"
    ours, theirs = j.state_dict(), torch_state(t)
    assert list(ours) == list(theirs) == (["weight", "bias"] if bias else ["weight"])
    for k in theirs:
        assert ours[k].shape == theirs[k].shape and ours[k].dtype == theirs[k].dtype
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert (j.in_features, j.out_features) == (t.in_features, t.out_features)
    if not bias:
        assert j.bias is None


# --- Linear: numerics --------------------------------------------------------------------------------------


@SETTINGS
@given(
    in_features=st.integers(1, 9),
    out_features=st.integers(1, 9),
    bias=st.booleans(),
    lead=st.sampled_from([(), (1,), (4,), (0,), (2, 3), (2, 0, 3), (1, 2, 1, 2)]),
    seed=st.integers(0, 2**16),
)
def test_linear_outputs_and_gradients_match_torch(in_features, out_features, bias, lead, seed):
    t = torch.nn.Linear(in_features, out_features, bias=bias)
    j = copy_torch_weights(jnn.Linear(in_features, out_features, bias=bias), t)
    x = np.random.default_rng(seed).standard_normal((*lead, in_features)).astype(np.float32)
    out = j(jnp.asarray(x))
    expected = t(torch.from_numpy(x))
    assert out.shape == tuple(expected.shape) and out.dtype == jnp.float32
    assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert_close(j.eval()(jnp.asarray(x)), t.eval()(torch.from_numpy(x)), rtol=1e-5, atol=1e-5)
    (jg, jx), (tg, tx) = grads_and_input_grad(j, x), torch_grads_and_input_grad(t, x)
    assert sorted(jg) == sorted(tg)
    for k in tg:
        assert_close(jg[k], tg[k], rtol=1e-4, atol=1e-4)
    assert_close(jx, tx, rtol=1e-4, atol=1e-4)


def test_linear_grads_through_helpers_and_jit_over_the_module():
    t = torch.nn.Linear(6, 5)
    j = copy_torch_weights(jnn.Linear(6, 5), t)
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    jg, tg = jnn_grads(j, jnp.asarray(x)), torch_grads(t, x)
    assert sorted(jg) == sorted(tg) == ["bias", "weight"]
    for k in tg:
        assert_close(jg[k], tg[k], rtol=1e-4, atol=1e-4)
    # the module is a pytree: jit gives the same numbers
    assert_close(jax.jit(lambda m, v: m(v))(j, jnp.asarray(x)), t(torch.from_numpy(x)))
    # and jax.grad over the module itself gives a module-shaped gradient
    g = jax.grad(lambda m: (m(jnp.asarray(x)) ** 2).sum())(j)
    assert_close(g.weight, tg["weight"], rtol=1e-4, atol=1e-4)


def test_linear_zero_in_features_gives_the_bias_like_torch():
    t = torch.nn.Linear(0, 3)
    j = copy_torch_weights(jnn.Linear(0, 3), t)
    assert j.weight.shape == (3, 0)
    x = np.ones((2, 0), np.float32)
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)))
    assert_close(j(jnp.asarray(x)), np.broadcast_to(np.asarray(j.bias), (2, 3)))


# --- Linear: initialisation --------------------------------------------------------------------------------


def test_linear_default_init_is_uniform_within_one_over_sqrt_fan_in():
    jnn.manual_seed(0)
    in_features = 400
    layer = jnn.Linear(in_features, 2000)
    bound = 1 / np.sqrt(in_features)
    for name, n in (("weight", 800_000), ("bias", 2000)):
        v = np.asarray(getattr(layer, name), np.float64)
        assert v.size == n
        assert np.abs(v).max() <= bound
        assert np.abs(v).max() > 0.98 * bound  # the whole interval is used, not a narrower one
        tol = 0.02 if n > 10_000 else 0.1
        assert abs(v.std() - bound / np.sqrt(3)) < tol * bound / np.sqrt(3), name
        assert abs(v.mean()) < 4 * bound / np.sqrt(3 * n), name
    # torch's layer of the same shape has the same bound (a sanity check on the oracle)
    tw = torch.nn.Linear(in_features, 2000).weight.detach().numpy()
    assert np.abs(tw).max() <= np.float32(bound) and abs(tw.std() - bound / np.sqrt(3)) < 0.02 * bound / np.sqrt(3)


def test_linear_reset_parameters_redraws_like_torch():
    assert callable(torch.nn.Linear.reset_parameters)
    jnn.manual_seed(0)
    layer = jnn.Linear(300, 1000, dtype=jnp.bfloat16)
    old_w, old_b = np.asarray(layer.weight, np.float32), np.asarray(layer.bias, np.float32)
    assert layer.reset_parameters() is None
    w, b = np.asarray(layer.weight, np.float32), np.asarray(layer.bias, np.float32)
    assert not np.array_equal(w, old_w) and not np.array_equal(b, old_b)
    assert layer.weight.dtype == layer.bias.dtype == jnp.bfloat16
    bound = 1 / np.sqrt(300)
    assert np.abs(w).max() <= bound * 1.004 and abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound / np.sqrt(3)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]  # still parameters
    assert sorted(jnn.split(layer)[1]) == ["bias", "weight"]
    nobias = jnn.Linear(3, 2, bias=False)
    nobias.reset_parameters()
    assert nobias.bias is None and list(nobias.state_dict()) == ["weight"]


def test_linear_weight_and_bias_are_independent_draws():
    layer = jnn.Linear(1, 64)  # bias and weight have the same shape (64,) after ravel: they must differ
    assert not np.allclose(np.asarray(layer.weight).ravel(), np.asarray(layer.bias))


# --- Linear: key=, manual_seed, dtype=, device= ------------------------------------------------------------


def test_linear_key_gives_reproducible_weights_and_leaves_the_global_stream_alone():
    k = jax.random.key(3)
    a, b, c = jnn.Linear(5, 4, key=k), jnn.Linear(5, 4, key=k), jnn.Linear(5, 4, key=jax.random.key(4))
    np.testing.assert_array_equal(np.asarray(a.weight), np.asarray(b.weight))
    np.testing.assert_array_equal(np.asarray(a.bias), np.asarray(b.bias))
    assert not np.allclose(np.asarray(a.weight), np.asarray(c.weight))
    jnn.manual_seed(11)
    first = jnn.Linear(5, 4)
    jnn.manual_seed(11)
    jnn.Linear(5, 4, key=k)  # draws from its key, not from the global stream
    second = jnn.Linear(5, 4)
    np.testing.assert_array_equal(np.asarray(first.weight), np.asarray(second.weight))
    # manual_seed makes default construction reproducible; successive layers differ
    third = jnn.Linear(5, 4)
    assert not np.allclose(np.asarray(second.weight), np.asarray(third.weight))


def test_linear_key_works_under_jit_and_without_it_raises_missing_key():
    make = jax.jit(lambda k: jnn.Linear(3, 2, key=k).weight)
    np.testing.assert_array_equal(np.asarray(make(jax.random.key(0))),
                                  np.asarray(jnn.Linear(3, 2, key=jax.random.key(0)).weight))
    with pytest.raises(jnn.random.MissingKeyError, match="key"):
        jax.jit(lambda x: jnn.Linear(3, 2)(x))(jnp.ones(3))


@pytest.mark.parametrize("dtype, want", [
    (jnp.bfloat16, jnp.bfloat16), (jnp.float16, jnp.float16), (jnp.float32, jnp.float32), (None, jnp.float32),
    ("bfloat16", jnp.bfloat16), (torch.bfloat16, jnp.bfloat16), (torch.float16, jnp.float16),
])
def test_linear_dtype_argument(dtype, want):
    layer = jnn.Linear(4, 3, dtype=dtype)
    assert layer.weight.dtype == want and layer.bias.dtype == want
    assert layer(jnp.ones((2, 4), want)).dtype == want
    # the bound is applied in that dtype too
    assert float(jnp.abs(layer.weight.astype(jnp.float32)).max()) <= 0.5 + 1e-2


def test_linear_dtype_errors():
    if not jax.config.jax_enable_x64:
        with pytest.raises(TypeError, match="jax_enable_x64"):
            jnn.Linear(2, 2, dtype=jnp.float64)
    with pytest.raises(TypeError, match="Linear only accepts floating point or complex dtypes"):
        jnn.Linear(2, 2, dtype=jnp.int32)


def test_linear_device_argument():
    cpu = jax.devices("cpu")[0]
    for device in ("cpu", cpu, torch.device("cpu"), None):
        layer = jnn.Linear(2, 3, device=device)
        assert layer.weight.devices() == {cpu} and layer.bias.devices() == {cpu}
    if jax.devices()[0].platform == "cpu":
        with pytest.raises(RuntimeError, match="no GPU device"):
            jnn.Linear(2, 3, device="cuda")
    with pytest.raises(ValueError, match="unknown device"):
        jnn.Linear(2, 3, device="quantum")


# --- Bilinear ----------------------------------------------------------------------------------------------


@SETTINGS
@given(
    dims=st.sampled_from([(2, 3, 4), (1, 5, 1)]), bias=st.booleans(),
    lead=st.sampled_from([(), (4,), (0,), (2, 3)]), seed=st.integers(0, 2**16),
)
def test_bilinear_matches_torch(dims, bias, lead, seed):
    torch.manual_seed(seed)
    t = torch.nn.Bilinear(*dims, bias=bias)
    j = copy_torch_weights(jnn.Bilinear(*dims, bias=bias), t)
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(torch_state(t))
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal((*lead, dims[0])).astype(np.float32)
    x2 = rng.standard_normal((*lead, dims[1])).astype(np.float32)
    t1, t2 = (torch.from_numpy(a.copy()).requires_grad_(True) for a in (x1, x2))
    expected = t(t1, t2)
    (expected ** 2).sum().backward()
    apply, params, buffers = jnn.split(j)
    loss = lambda p, a, b: (apply(p, buffers, a, b)[0] ** 2).sum()  # noqa: E731
    gp, g1, g2 = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, x1, x2)
    out = j(x1, x2)
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for name, p in t.named_parameters():
        assert_close(gp[name], p.grad, rtol=1e-4, atol=1e-4)
    assert_close(g1, t1.grad, rtol=1e-4, atol=1e-4)
    assert_close(g2, t2.grad, rtol=1e-4, atol=1e-4)


def test_bilinear_init_and_errors():
    jnn.manual_seed(0)
    m = jnn.Bilinear(100, 30, 200)
    bound = 1 / np.sqrt(100)
    w = np.asarray(m.weight)
    assert w.shape == (200, 100, 30) and np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert np.abs(np.asarray(m.bias)).max() <= bound
    old = w.copy()
    m.reset_parameters()
    assert not np.allclose(np.asarray(m.weight), old)
    a, b = jnn.Bilinear(2, 3, 4, key=jax.random.key(0)), jnn.Bilinear(2, 3, 4, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(a.weight), np.asarray(b.weight))
    with pytest.raises(ValueError, match="input1 size does not match weight size"):
        a(jnp.ones((5, 3)), jnp.ones((5, 3)))
    with pytest.raises(ValueError, match="input batch dimensions do not match"):
        a(jnp.ones((5, 2)), jnp.ones((4, 3)))
    assert jax.jit(lambda m, x, y: m(x, y))(a, jnp.ones((5, 2)), jnp.ones((5, 3))).shape == (5, 4)


# --- LazyLinear --------------------------------------------------------------------------------------------


def test_lazy_linear_becomes_linear_on_first_call():
    t, j = torch.nn.LazyLinear(4), jnn.LazyLinear(4)
    assert repr(j) == repr(t) == "LazyLinear(in_features=0, out_features=4, bias=True)"
    assert list(j.state_dict()) == []  # torch lists uninitialized parameters here; jnn has none yet
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    t(torch.from_numpy(x))
    out = j(jnp.asarray(x))
    assert out.shape == (2, 4)
    assert type(j) is jnn.Linear and type(t) is torch.nn.Linear
    assert repr(j) == repr(t) == "Linear(in_features=3, out_features=4, bias=True)"
    assert list(j.state_dict()) == list(torch_state(t)) == ["weight", "bias"]
    bound = 1 / np.sqrt(3)
    assert np.abs(np.asarray(j.weight)).max() <= bound
    copy_torch_weights(j, t)
    assert_close(jax.jit(lambda m, v: m(v))(j, jnp.asarray(x)), t(torch.from_numpy(x)))
    assert sorted(jnn.split(j)[1]) == ["bias", "weight"]
    nobias = jnn.LazyLinear(2, bias=False)
    assert repr(nobias) == repr(torch.nn.LazyLinear(2, bias=False))
    assert nobias(jnp.ones(5)).shape == (2,) and nobias.bias is None and nobias.in_features == 5
    a, b = jnn.LazyLinear(3, key=jax.random.key(1)), jnn.LazyLinear(3, key=jax.random.key(1))
    a(jnp.ones(2))
    b(jnp.ones(2))
    np.testing.assert_array_equal(np.asarray(a.weight), np.asarray(b.weight))


def test_lazy_linear_under_a_transformation_before_init_is_a_clear_error():
    j = jnn.LazyLinear(4)
    with pytest.raises(RuntimeError, match="LazyLinear: the first call infers in_features"):
        jax.jit(lambda m, v: m(v))(j, jnp.ones((2, 3)))
    assert type(j) is jnn.LazyLinear and j.in_features == 0
