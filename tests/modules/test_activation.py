"""ReLU, Sigmoid, Tanh and Softmax against torch.nn: repr, outputs and gradients over shapes, dims and dtypes."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn

SHAPES = [(), (0,), (1,), (5,), (3, 4), (2, 0, 3), (2, 3, 4), (2, 3, 2, 2), (1, 2, 1, 3, 2)]


def both(name: str, *args, **kw):
    return getattr(torch.nn, name)(*args, **kw), getattr(jnn, name)(*args, **kw)


def input_grad(module, x: np.ndarray) -> np.ndarray:
    w = np.linspace(-1.0, 2.0, x.size, dtype=np.float32).reshape(x.shape)  # a non-uniform cotangent
    return np.asarray(jax.jit(jax.grad(lambda v: (module(v) * w).sum()))(jnp.asarray(x)))


def torch_input_grad(module, x: np.ndarray) -> np.ndarray:
    w = torch.from_numpy(np.linspace(-1.0, 2.0, x.size, dtype=np.float32).reshape(x.shape))
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    (module(tx) * w).sum().backward()
    return tx.grad.numpy()


@pytest.mark.parametrize("name, args, kw, text", [
    ("ReLU", (), {}, "ReLU()"),
    ("ReLU", (), {"inplace": True}, "ReLU(inplace=True)"),
    ("ReLU", (True,), {}, "ReLU(inplace=True)"),
    ("Sigmoid", (), {}, "Sigmoid()"),
    ("Tanh", (), {}, "Tanh()"),
    ("Softmax", (), {}, "Softmax(dim=None)"),
    ("Softmax", (1,), {}, "Softmax(dim=1)"),
    ("Softmax", (), {"dim": -1}, "Softmax(dim=-1)"),
])
def test_activation_repr_and_empty_state_match_torch(name, args, kw, text):
    t, j = both(name, *args, **kw)
    assert repr(j) == repr(t) == text
    assert list(j.state_dict()) == list(t.state_dict()) == []


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(["ReLU", "Sigmoid", "Tanh"]), shape=st.sampled_from(SHAPES),
       scale=st.sampled_from([1.0, 10.0, 100.0]), seed=st.integers(0, 2**16))
def test_elementwise_activations_match_torch(name, shape, scale, seed):
    t, j = both(name)
    x = np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, np.float32)
    out = j(jnp.asarray(x))
    expected = t(torch.from_numpy(x))
    assert out.shape == tuple(expected.shape) and out.dtype == jnp.float32
    assert_close(out, expected, rtol=1e-6, atol=1e-6)
    assert_close(input_grad(j, x), torch_input_grad(t, x), rtol=1e-5, atol=1e-6)


def test_relu_gradient_at_zero_is_zero_like_torch():
    x = np.array([-1.0, 0.0, 0.0, 2.0], np.float32)
    t, j = both("ReLU")
    assert input_grad(j, x).tolist() == torch_input_grad(t, x).tolist()
    assert input_grad(j, x)[1:3].tolist() == [0.0, 0.0]


def test_elementwise_activations_extreme_values_and_dtypes():
    x = np.array([-np.inf, -1e4, -100.0, -0.0, 0.0, 100.0, 1e4, np.inf, np.nan], np.float32)
    for name in ("ReLU", "Sigmoid", "Tanh"):
        t, j = both(name)
        np.testing.assert_allclose(np.asarray(j(jnp.asarray(x))), t(torch.from_numpy(x)).numpy(), rtol=1e-6)
        for dtype in (jnp.bfloat16, jnp.float16):
            assert j(jnp.ones(3, dtype)).dtype == dtype, (name, dtype)
    # integer input: relu keeps the integer dtype, sigmoid/tanh give float32, as in torch
    ints = np.array([1, 0, -2], np.int32)
    for name in ("ReLU", "Sigmoid", "Tanh"):
        t, j = both(name)
        out, expected = j(jnp.asarray(ints)), t(torch.from_numpy(ints))
        assert str(out.dtype) == str(expected.dtype).removeprefix("torch."), name
        assert_close(out, expected, rtol=1e-6, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(shape=st.sampled_from([s for s in SHAPES if s]), data=st.data(), scale=st.sampled_from([1.0, 50.0]),
       seed=st.integers(0, 2**16))
def test_softmax_matches_torch_for_every_dim(shape, data, scale, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    t, j = both("Softmax", dim)
    x = np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, np.float32)
    out = j(jnp.asarray(x))
    expected = t(torch.from_numpy(x))
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    if x.size:
        assert_close(input_grad(j, x), torch_input_grad(t, x), rtol=1e-4, atol=1e-5)


def test_softmax_scalar_large_values_and_under_jit():
    t, j = both("Softmax", 0)
    assert float(j(jnp.asarray(2.0))) == float(t(torch.tensor(2.0))) == 1.0
    x = np.array([[1000.0, 1000.0, -1000.0], [0.0, 1e-3, 88.0]], np.float32)
    t, j = both("Softmax", 1)
    out = j(jnp.asarray(x))
    assert np.isfinite(np.asarray(out)).all()
    assert_close(out, t(torch.from_numpy(x)), rtol=1e-6, atol=1e-7)
    assert_close(jax.jit(lambda m, v: m(v))(j, jnp.asarray(x)), t(torch.from_numpy(x)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(), (4,), (3, 4), (2, 3, 4), (2, 3, 4, 5)])
def test_softmax_without_dim_warns_and_picks_torchs_dim(shape):
    t, j = both("Softmax")
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = j(jnp.asarray(x))
        expected = t(torch.from_numpy(x))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and messages[0] == messages[1]
    assert "Implicit dimension choice for softmax has been deprecated" in messages[0]
    assert caught[0].filename == __file__  # the warning points at the caller, not at jnn's internals
    assert_close(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dim, shape", [(2, (3, 4)), (-3, (3, 4)), (1, (5,)), (1, ())])
def test_softmax_dim_out_of_range_raises_index_error_like_torch(dim, shape):
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.nn.Softmax(dim)(torch.zeros(shape))
    with pytest.raises(IndexError, match="dimension out of range"):
        jnn.Softmax(dim)(jnp.zeros(shape))


# --- the rest of the activation catalogue ----------------------------------------------------------------------

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
FSHAPES = [(), (0,), (7,), (3, 5), (2, 3, 4)]  # few shapes: each one costs an XLA compile per layer
BASE_KINKS = [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 6.0, -6.0, 20.0, -20.0, 100.0, -100.0,
              1e4, -1e4]

# module name -> strategy of constructor kwargs (the functional form takes the same keyword arguments)
CONFIGS = {
    "ReLU6": st.just({}),
    "LeakyReLU": st.fixed_dictionaries({"negative_slope": st.sampled_from([0.01, 0.2, 1.5, -0.5])}),
    "ELU": st.fixed_dictionaries({"alpha": st.sampled_from([1.0, 0.5, 2.0])}),
    "CELU": st.fixed_dictionaries({"alpha": st.sampled_from([1.0, 0.5, 2.0])}),
    "SELU": st.just({}),
    "GELU": st.fixed_dictionaries({"approximate": st.sampled_from(["none", "tanh"])}),
    "SiLU": st.just({}),
    "Mish": st.just({}),
    "LogSigmoid": st.just({}),
    "Hardsigmoid": st.just({}),
    "Hardswish": st.just({}),
    "Hardtanh": st.sampled_from([{}, {"min_val": -2.0, "max_val": 0.5}, {"min_val": 0.25, "max_val": 3.0}]),
    "Hardshrink": st.fixed_dictionaries({"lambd": st.sampled_from([0.5, 1.0, 0.0, 2.0])}),
    "Softshrink": st.fixed_dictionaries({"lambd": st.sampled_from([0.5, 1.0, 0.0, 2.0])}),
    "Tanhshrink": st.just({}),
    "Softplus": st.fixed_dictionaries({"beta": st.sampled_from([1.0, 2.0, 0.5]),
                                       "threshold": st.sampled_from([20.0, 5.0, 1.0])}),
    "Softsign": st.just({}),
    "Threshold": st.fixed_dictionaries({"threshold": st.sampled_from([0.0, 1.0, -0.5]),
                                        "value": st.sampled_from([-3.0, 0.0, 20.0])}),
    "RReLU": st.sampled_from([{}, {"lower": 0.1, "upper": 0.3}, {"lower": 0.5, "upper": 0.5}]),  # eval mode
}
FUNCTIONAL = {"ReLU6": "relu6", "LeakyReLU": "leaky_relu", "ELU": "elu", "CELU": "celu", "SELU": "selu",
              "GELU": "gelu", "SiLU": "silu", "Mish": "mish", "LogSigmoid": "logsigmoid", "Hardsigmoid": "hardsigmoid",
              "Hardswish": "hardswish", "Hardtanh": "hardtanh", "Hardshrink": "hardshrink",
              "Softshrink": "softshrink", "Tanhshrink": "tanhshrink", "Softplus": "softplus", "Softsign": "softsign",
              "Threshold": "threshold", "RReLU": "rrelu"}


def kinked_input(shape, kw, kinks: list[float], scale: float, seed: int) -> np.ndarray:
    """Random values with the drawn kink points (and the layer's own thresholds, +-) written over the front."""
    own = [s * float(v) for v in kw.values() if isinstance(v, float) for s in (1, -1)]
    if "beta" in kw:  # softplus switches to linear at x = threshold / beta
        own += [kw["threshold"] / kw["beta"]]
    x = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32).reshape(-1)
    special = np.asarray(own + kinks, np.float32)[: x.size]
    x[: special.size] = special
    return x.reshape(shape)


def value_and_input_grad(fn, x: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    out, vjp = jax.vjp(fn, x)
    w = jnp.asarray(np.linspace(-1.0, 2.0, out.size, dtype=np.float32).reshape(out.shape)).astype(x.dtype)
    return np.asarray(out.astype(jnp.float32)), np.asarray(vjp(w)[0].astype(jnp.float32))


def torch_value_and_input_grad(fn, x: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    tdtype = TORCH_DTYPES[dtype]
    tx = torch.from_numpy(x.copy()).to(tdtype).requires_grad_(True)
    out = fn(tx)
    w = torch.from_numpy(np.linspace(-1.0, 2.0, out.numel(), dtype=np.float32).reshape(out.shape)).to(tdtype)
    (out * w).sum().backward()
    return out.detach().float().numpy(), tx.grad.float().numpy()


@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=10, deadline=None)
@given(data=st.data(), shape=st.sampled_from(FSHAPES), dtype=st.sampled_from(["float32", "float32", "bfloat16"]),
       kinks=st.lists(st.sampled_from(BASE_KINKS), max_size=12), scale=st.sampled_from([1.0, 4.0, 30.0]),
       seed=st.integers(0, 2**16), functional=st.booleans())
def test_elementwise_layers_and_functions_match_torch_at_kinks(name, data, shape, dtype, kinks, scale, seed,
                                                               functional):
    kw = data.draw(CONFIGS[name])
    x = kinked_input(shape, kw, kinks, scale, seed)
    if dtype == "bfloat16":  # both sides start from the same bfloat16 values
        x = torch.from_numpy(x).bfloat16().float().numpy()
    if functional:
        jf = lambda v: getattr(jnn.functional, FUNCTIONAL[name])(v, **kw)  # noqa: E731
        tf = lambda v: getattr(torch.nn.functional, FUNCTIONAL[name])(v, **kw)  # noqa: E731
    else:
        jf, tf = getattr(jnn, name)(**kw).eval(), getattr(torch.nn, name)(**kw).eval()
    out, grad = value_and_input_grad(jf, jnp.asarray(x, dtype))
    expected, expected_grad = torch_value_and_input_grad(tf, x, dtype)
    assert out.shape == expected.shape and jf(jnp.asarray(x, dtype)).dtype == jnp.dtype(dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 2e-2, "atol": 2e-2}
    assert_close(out, expected, **tol)
    assert_close(grad, expected_grad, **tol)


@pytest.mark.parametrize("name, args, kw, text", [
    ("ReLU6", (), {}, "ReLU6()"),
    ("ReLU6", (True,), {}, "ReLU6(inplace=True)"),
    ("LeakyReLU", (), {}, "LeakyReLU(negative_slope=0.01)"),
    ("LeakyReLU", (0.2, True), {}, "LeakyReLU(negative_slope=0.2, inplace=True)"),
    ("PReLU", (), {}, "PReLU(num_parameters=1)"),
    ("PReLU", (3, 0.1), {}, "PReLU(num_parameters=3)"),
    ("RReLU", (), {}, "RReLU(lower=0.125, upper=0.3333333333333333)"),
    ("RReLU", (0.1, 0.3, True), {}, "RReLU(lower=0.1, upper=0.3, inplace=True)"),
    ("ELU", (), {}, "ELU(alpha=1.0)"),
    ("ELU", (), {"alpha": 2, "inplace": True}, "ELU(alpha=2, inplace=True)"),
    ("CELU", (0.5,), {}, "CELU(alpha=0.5)"),
    ("SELU", (), {}, "SELU()"),
    ("SELU", (True,), {}, "SELU(inplace=True)"),
    ("GELU", (), {}, "GELU(approximate='none')"),
    ("GELU", ("tanh",), {}, "GELU(approximate='tanh')"),
    ("SiLU", (), {"inplace": True}, "SiLU(inplace=True)"),
    ("Mish", (), {}, "Mish()"),
    ("Mish", (True,), {}, "Mish(inplace=True)"),
    ("LogSigmoid", (), {}, "LogSigmoid()"),
    ("Hardsigmoid", (True,), {}, "Hardsigmoid()"),
    ("Hardswish", (True,), {}, "Hardswish()"),
    ("Hardtanh", (), {}, "Hardtanh(min_val=-1.0, max_val=1.0)"),
    ("Hardtanh", (-2, 2, True), {}, "Hardtanh(min_val=-2, max_val=2, inplace=True)"),
    ("Hardshrink", (), {}, "Hardshrink(0.5)"),
    ("Softshrink", (1,), {}, "Softshrink(1)"),
    ("Tanhshrink", (), {}, "Tanhshrink()"),
    ("Softplus", (), {}, "Softplus(beta=1.0, threshold=20.0)"),
    ("Softplus", (2, 5), {}, "Softplus(beta=2, threshold=5)"),
    ("Softsign", (), {}, "Softsign()"),
    ("Threshold", (0.1, 20), {}, "Threshold(threshold=0.1, value=20)"),
    ("Threshold", (0.1, 20.0, True), {}, "Threshold(threshold=0.1, value=20.0, inplace=True)"),
    ("GLU", (), {}, "GLU(dim=-1)"),
    ("GLU", (1,), {}, "GLU(dim=1)"),
    ("Softmin", (), {}, "Softmin(dim=None)"),
    ("Softmin", (1,), {}, "Softmin(dim=1)"),
    ("Softmax2d", (), {}, "Softmax2d()"),
    ("LogSoftmax", (), {"dim": -1}, "LogSoftmax(dim=-1)"),
])
def test_catalogue_repr_and_state_dict_match_torch(name, args, kw, text):
    t, j = both(name, *args, **kw)
    assert repr(j) == repr(t) == text
    assert [(k, v.shape) for k, v in j.state_dict().items()] == [(k, tuple(v.shape))
                                                                 for k, v in t.state_dict().items()]


def test_class_hierarchy_like_torch():
    assert isinstance(jnn.ReLU6(), jnn.Hardtanh)  # as in torch
    assert not isinstance(jnn.CELU(), jnn.ELU) and not isinstance(jnn.Softshrink(), jnn.Hardshrink)


def assert_same_message(ours: Exception, theirs: Exception, fn: str) -> None:
    """jnn's message names the function (``"glu: ..."``) and carries torch's text."""
    assert str(ours).startswith(f"{fn}: " if fn else ""), str(ours)
    assert str(theirs).rstrip(".").removeprefix(f"{fn} ").lower() in str(ours).lower(), (str(ours), str(theirs))


# --- PReLU --------------------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(per_channel=st.booleans(), init=st.sampled_from([0.25, 0.0, -0.5, 1.5]),
       shape=st.sampled_from([(4, 3), (2, 3, 5), (2, 3, 2, 2), (0, 3, 4), (3,), ()]), seed=st.integers(0, 2**16))
def test_prelu_outputs_and_gradients_wrt_input_and_weight_match_torch(per_channel, init, shape, seed):
    channels = shape[1] if len(shape) > 1 else 1
    n = channels if per_channel else 1
    t, j = torch.nn.PReLU(n, init), jnn.PReLU(n, init)
    assert j.weight.shape == (n,) and np.all(np.asarray(j.weight) == np.float32(init))
    assert_close(j.weight, t.weight)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(rng.uniform(-1, 1, n).astype(np.float32)))
    copy_torch_weights(j, t)
    x = rng.standard_normal(shape).astype(np.float32)
    x.reshape(-1)[: min(2, x.size)] = 0.0  # the kink
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    out = t(tx)
    (out**2 * 1.5 + out).sum().backward()
    apply, params, buffers = jnn.split(j)
    loss = lambda p, v: ((y := apply(p, buffers, v)[0]) ** 2 * 1.5 + y).sum()  # noqa: E731
    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, jnp.asarray(x))
    assert_close(j(jnp.asarray(x)), out, rtol=1e-6, atol=1e-6)
    assert list(gp) == ["weight"]
    assert_close(gp["weight"], t.weight.grad, rtol=1e-5, atol=1e-5)
    assert_close(gx, tx.grad, rtol=1e-5, atol=1e-6)


def test_prelu_dtype_reset_and_errors():
    m = jnn.PReLU(2, 0.5, dtype=jnp.bfloat16)
    assert m.weight.dtype == jnp.bfloat16 and list(m.state_dict()) == ["weight"]
    m.weight = jnp.zeros(2, jnp.bfloat16)
    m.reset_parameters()
    assert m.weight.dtype == jnp.bfloat16 and m.weight.tolist() == [0.5, 0.5]
    assert m(jnp.full((1, 2), -2.0, jnp.bfloat16)).dtype == jnp.bfloat16
    for x, w in [((3,), (3,)), ((2, 4), (3,)), ((), (3,)), ((2, 3), (3, 1))]:
        with pytest.raises(RuntimeError) as theirs:
            torch.nn.functional.prelu(torch.zeros(x), torch.ones(w))
        with pytest.raises(ValueError) as ours:  # jnn's convention: torch's C++ RuntimeErrors are ValueErrors
            jnn.functional.prelu(jnp.zeros(x), jnp.ones(w))
        assert_same_message(ours.value, theirs.value, "prelu")


# --- RReLU --------------------------------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(bounds=st.sampled_from([(1 / 8, 1 / 3), (0.1, 0.3), (0.0, 1.0), (0.4, 0.4)]), seed=st.integers(0, 2**16))
def test_rrelu_training_slopes_are_uniform_in_bounds_and_gradients_are_the_slopes(bounds, seed):
    lower, upper = bounds
    jnn.manual_seed(seed)
    m = jnn.RReLU(lower, upper)
    x = jnp.concatenate([-jnp.linspace(0.5, 3.0, 4000), jnp.zeros(1), jnp.linspace(0.5, 3.0, 1000)])
    y, vjp = jax.vjp(m, x)
    g = vjp(jnp.ones_like(x))[0]
    slopes = np.asarray(y[:4000] / x[:4000])
    assert slopes.min() >= lower - 1e-6 and slopes.max() <= upper + 1e-6
    assert abs(slopes.mean() - (lower + upper) / 2) < 0.02 * max(upper - lower, 1e-3) + 1e-6
    assert abs(slopes.std() - (upper - lower) / np.sqrt(12)) < 0.02 + 1e-6
    np.testing.assert_allclose(np.asarray(g[:4000]), slopes, rtol=1e-5)  # d out / d x is the drawn slope
    assert lower - 1e-6 <= float(g[4000]) <= upper + 1e-6  # x = 0 takes a random slope too, like torch
    assert np.all(np.asarray(y[4001:]) == np.asarray(x[4001:])) and np.all(np.asarray(g[4001:]) == 1.0)
    if upper > lower:
        assert not np.array_equal(np.asarray(m(x)), np.asarray(y))  # a fresh draw each call


@pytest.mark.parametrize("bounds", [(1 / 8, 1 / 3), (0.1, 0.3)])
def test_rrelu_eval_equals_torch_and_is_deterministic(bounds):
    x = np.array([-1e4, -3.0, -1.0, -0.0, 0.0, 0.5, 2.0], np.float32)
    t, j = torch.nn.RReLU(*bounds).eval(), jnn.RReLU(*bounds).eval()
    out, grad = value_and_input_grad(j, jnp.asarray(x))
    expected, expected_grad = torch_value_and_input_grad(t, x, "float32")
    assert_close(out, expected, rtol=1e-6, atol=0)
    assert_close(grad, expected_grad, rtol=1e-6, atol=0)
    assert np.array_equal(np.asarray(j(jnp.asarray(x))), out)
    assert_close(jnn.functional.rrelu(jnp.asarray(x), *bounds), expected, rtol=1e-6, atol=0)  # training=False


def test_rrelu_randomness_keys_and_jit():
    x = -jnp.ones(64)
    m = jnn.RReLU()
    with pytest.raises(jnn.random.MissingKeyError, match="rrelu"):
        jax.jit(lambda mod, v: mod(v))(m, x)
    with jnn.random.fork(jax.random.key(3)):
        a = jax.jit(lambda mod, v: mod(v))(m, x)
    with jnn.random.fork(jax.random.key(3)):
        b = m(x)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and len(set(np.asarray(a).tolist())) > 10
    f = jnn.functional.rrelu
    k = jax.random.key(0)
    assert np.array_equal(np.asarray(f(x, training=True, key=k)), np.asarray(f(x, training=True, key=k)))
    apply, params, buffers = jnn.split(m)
    c, _ = jax.jit(lambda p, b_, v, key: apply(p, b_, v, train=True, key=key))(params, buffers, x, k)
    assert np.all((np.asarray(c) <= -1 / 8 + 1e-6) & (np.asarray(c) >= -1 / 3 - 1e-6))
    assert f(jnp.zeros((0, 3)), training=True).shape == (0, 3)
    assert f(jnp.ones(3, jnp.bfloat16), training=True).dtype == jnp.bfloat16
    with pytest.raises(jnn.random.MissingKeyError, match="vmap"):
        jax.vmap(lambda v: f(v, training=True))(jnp.ones((2, 3)))


# --- GLU, Softmin, LogSoftmax, Softmax2d --------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(shape=st.sampled_from([(4,), (2, 6), (3, 4, 2), (0, 2), (2, 2, 2, 2)]), data=st.data(),
       seed=st.integers(0, 2**16), functional=st.booleans())
def test_glu_matches_torch(shape, data, seed, functional):
    dims = [d for d in range(-len(shape), len(shape)) if shape[d] % 2 == 0]
    dim = data.draw(st.sampled_from(dims))
    x = (np.random.default_rng(seed).standard_normal(shape) * 3).astype(np.float32)
    jf = (lambda v: jnn.functional.glu(v, dim)) if functional else jnn.GLU(dim)
    out, grad = value_and_input_grad(jf, jnp.asarray(x))
    expected, expected_grad = torch_value_and_input_grad(torch.nn.GLU(dim), x, "float32")
    assert out.shape == expected.shape
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert_close(grad, expected_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, dim", [((2, 3), 1), ((2, 3), -1), ((3,), 0), ((), -1), ((2, 4), 2), ((2, 4), -3)])
def test_glu_errors_match_torch(shape, dim):
    with pytest.raises((RuntimeError, IndexError)) as theirs:
        torch.nn.GLU(dim)(torch.zeros(shape))
    with pytest.raises(IndexError if theirs.type is IndexError else ValueError) as ours:
        jnn.GLU(dim)(jnp.zeros(shape))
    assert_same_message(ours.value, theirs.value, "glu")


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(["Softmin", "LogSoftmax"]), shape=st.sampled_from([(5,), (3, 4), (2, 3, 4)]),
       data=st.data(), scale=st.sampled_from([1.0, 50.0]), seed=st.integers(0, 2**16))
def test_softmin_and_log_softmax_match_torch(name, shape, data, scale, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    t, j = both(name, dim)
    x = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
    out, grad = value_and_input_grad(j, jnp.asarray(x))
    expected, expected_grad = torch_value_and_input_grad(t, x, "float32")
    assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert_close(grad, expected_grad, rtol=1e-4, atol=1e-5)
    f = {"Softmin": "softmin", "LogSoftmax": "log_softmax"}[name]
    assert_close(getattr(jnn.functional, f)(jnp.asarray(x), dim), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["Softmin", "LogSoftmax"])
def test_softmin_and_log_softmax_without_dim_warn_like_torch(name):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    t, j = both(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = j(jnp.asarray(x))
        expected = t(torch.from_numpy(x))
    assert [str(w.message) for w in caught[:1]] == [str(caught[1].message)]
    assert caught[0].filename == __file__
    assert_close(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 2, 2), (2, 4, 3, 1), (0, 3, 2, 2)])
def test_softmax2d_matches_torch(shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    out, grad = value_and_input_grad(jnn.Softmax2d(), jnp.asarray(x))
    expected, expected_grad = torch_value_and_input_grad(torch.nn.Softmax2d(), x, "float32")
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert_close(grad, expected_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(3,), (2, 3), (1, 2, 3, 4, 5)])
def test_softmax2d_rejects_other_ranks_like_torch(shape):
    with pytest.raises(ValueError) as theirs:
        torch.nn.Softmax2d()(torch.zeros(shape))
    with pytest.raises(ValueError) as ours:
        jnn.Softmax2d()(jnp.zeros(shape))
    assert str(ours.value) == str(theirs.value)


# --- errors, dtypes, jit ------------------------------------------------------------------------------------


def test_argument_errors_match_torch():
    F, TF = jnn.functional, torch.nn.functional
    cases = [
        (lambda f, x: f.gelu(x, approximate="foo"), RuntimeError, "gelu"),
        (lambda f, x: f.rrelu(x, 0.5, 0.1, True), RuntimeError, "rrelu"),
        (lambda f, x: f.rrelu(x, 0.5, 0.1, False), RuntimeError, "rrelu"),
        (lambda f, x: f.softshrink(x, -0.5), RuntimeError, "softshrink"),
        (lambda f, x: f.hardtanh(x, 2.0, 1.0), ValueError, ""),
    ]
    for call, kind, fn in cases:
        with pytest.raises(kind) as theirs:
            call(TF, torch.zeros(2))
        with pytest.raises(ValueError) as ours:  # jnn's convention: torch's C++ RuntimeErrors are ValueErrors
            call(F, jnp.zeros(2))
        assert_same_message(ours.value, theirs.value, fn)
    with pytest.raises(RuntimeError, match="alpha cannot be 0"):
        TF.celu(torch.zeros(2), 0.0)
    with pytest.raises(ValueError, match="celu: alpha cannot be 0"):
        F.celu(jnp.zeros(2), 0.0)
    with pytest.raises(ValueError, match="approximate argument must be either none or tanh"):
        jnn.GELU("foo")(jnp.zeros(2))  # like torch: the layer builds, its forward raises
    for args in [(1.0, 1.0), (2.0, 1.0)]:
        with pytest.raises(AssertionError) as theirs:
            torch.nn.Hardtanh(*args)
        with pytest.raises(AssertionError) as ours:
            jnn.Hardtanh(*args)
        assert str(ours.value) == str(theirs.value)


def test_hardtanh_deprecated_keywords_warn_like_torch():
    with pytest.warns(FutureWarning, match="`min_value` is deprecated"):
        m = jnn.Hardtanh(min_value=-2.0)
    with pytest.warns(FutureWarning, match="`max_value` is deprecated"):
        m2 = jnn.Hardtanh(max_value=3.0)
    assert (m.min_val, m.max_val, m2.min_val, m2.max_val) == (-2.0, 1.0, -1.0, 3.0)
    assert m(jnp.array([-5.0])).tolist() == [-2.0]


@pytest.mark.parametrize("name", ["relu6", "hardtanh", "threshold", "softsign", "tanhshrink", "elu", "leaky_relu",
                                  "mish", "hardsigmoid", "gelu"])
def test_integer_inputs_follow_torch(name):
    x = np.array([1, -2, 9, 0], np.int32)
    extra = (0, 5) if name == "threshold" else ()
    try:
        expected = getattr(torch.nn.functional, name)(torch.from_numpy(x), *extra)
    except (RuntimeError, NotImplementedError):
        with pytest.raises(TypeError, match=f"{name}: expected a floating-point input"):
            getattr(jnn.functional, name)(jnp.asarray(x), *extra)
        return
    out = getattr(jnn.functional, name)(jnp.asarray(x), *extra)
    assert str(out.dtype) == str(expected.dtype).removeprefix("torch.").replace("int64", "int32")
    assert_close(out, expected, rtol=1e-6, atol=1e-6)


def test_every_new_layer_under_jit_and_split_matches_eager():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 4, 3, 2)).astype(np.float32) * 3)
    layers = [getattr(jnn, n)() for n in CONFIGS if n != "Threshold"]
    layers += [jnn.PReLU(4), jnn.GLU(1), jnn.Softmin(1), jnn.LogSoftmax(1), jnn.Softmax2d(), jnn.Threshold(0.5, -1.0)]
    net = jnn.Sequential(*layers).eval()
    eager = net(x)
    assert_close(jax.jit(lambda m, v: m(v))(net, x), eager, rtol=1e-6, atol=1e-6)
    apply, params, buffers = jnn.split(net)
    assert list(params) == [f"{len(CONFIGS) - 1}.weight"]
    assert_close(jax.jit(apply)(params, buffers, x)[0], eager, rtol=1e-6, atol=1e-6)
    rrelu = jnn.RReLU().eval()  # eval mode: deterministic, no key needed under jit
    assert_close(jax.jit(lambda mod, v: mod(v))(rrelu, x), jnn.functional.leaky_relu(x, (1 / 8 + 1 / 3) / 2),
                 rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["relu6", "leaky_relu", "elu", "celu", "selu", "silu", "mish", "hardsigmoid",
                                  "hardswish", "hardtanh", "rrelu"])
def test_inplace_is_accepted_and_returns_a_new_array(name):
    x = jnp.array([-2.0, 0.5, 4.0])
    out = getattr(jnn.functional, name)(x, inplace=True)
    expected = getattr(torch.nn.functional, name)(torch.tensor([-2.0, 0.5, 4.0]), inplace=True)
    assert_close(out, expected, rtol=1e-6, atol=1e-6)
    assert x.tolist() == [-2.0, 0.5, 4.0]
    layer = {"relu6": "ReLU6", "leaky_relu": "LeakyReLU", "elu": "ELU", "celu": "CELU", "selu": "SELU",
             "silu": "SiLU", "mish": "Mish", "hardsigmoid": "Hardsigmoid", "hardswish": "Hardswish",
             "hardtanh": "Hardtanh", "rrelu": "RReLU"}[name]
    assert_close(getattr(jnn, layer)(inplace=True).eval()(x), expected, rtol=1e-6, atol=1e-6)
