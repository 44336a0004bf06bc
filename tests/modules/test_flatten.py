"""Flatten against torch.nn.Flatten: repr, shapes and values for every (start_dim, end_dim), errors."""

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


@pytest.mark.parametrize("args, text", [
    ((), "Flatten(start_dim=1, end_dim=-1)"),
    ((0,), "Flatten(start_dim=0, end_dim=-1)"),
    ((2, 3), "Flatten(start_dim=2, end_dim=3)"),
    ((-3, -2), "Flatten(start_dim=-3, end_dim=-2)"),
])
def test_flatten_repr_and_state_match_torch(args, text):
    t, j = torch.nn.Flatten(*args), jnn.Flatten(*args)
    assert repr(j) == repr(t) == text
    assert (j.start_dim, j.end_dim) == (t.start_dim, t.end_dim)
    assert list(j.state_dict()) == list(t.state_dict()) == []


def test_flatten_tutorial_use():
    x = jnp.arange(2 * 8 * 6 * 6, dtype=jnp.float32).reshape(2, 8, 6, 6)
    out = jnn.Flatten()(x)
    assert out.shape == (2, 288)
    np.testing.assert_array_equal(np.asarray(out), torch.nn.Flatten()(torch.from_numpy(np.asarray(x))).numpy())
    assert jax.jit(lambda m, v: m(v))(jnn.Flatten(), x).shape == (2, 288)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 3), min_size=0, max_size=5).map(tuple), data=st.data())
def test_flatten_matches_torch_for_any_dims(shape, data):
    n = max(len(shape), 1)
    start = data.draw(st.integers(-n - 1, n), label="start_dim")
    end = data.draw(st.integers(-n - 1, n), label="end_dim")
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    t, j = torch.nn.Flatten(start, end), jnn.Flatten(start, end)
    try:
        expected = t(torch.from_numpy(x)).numpy()
    except (IndexError, RuntimeError) as e:
        kind, text = error_of(lambda: j(jnp.asarray(x)))
        assert kind is type(e)
        if kind is RuntimeError:  # start after end: the same message as torch
            assert text == str(e)
        else:
            assert "dimension out of range" in text.lower()
        return
    out = j(jnp.asarray(x))
    assert out.shape == expected.shape
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_flatten_scalar_input_like_torch():
    x = np.array(3.0, np.float32)
    assert jnn.Flatten(0)(jnp.asarray(x)).shape == tuple(torch.nn.Flatten(0)(torch.from_numpy(x)).shape) == (1,)
    assert error_of(lambda: jnn.Flatten()(jnp.asarray(x)))[0] is IndexError
    assert error_of(lambda: torch.nn.Flatten()(torch.from_numpy(x)))[0] is IndexError
