"""ReLU, Sigmoid, Tanh and Softmax against torch.nn: repr, outputs and gradients over shapes, dims and dtypes."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close
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
