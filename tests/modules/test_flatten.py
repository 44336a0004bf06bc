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


# --- Unflatten ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim, sizes", [(1, (2, 5, 5)), (-1, [3, -1]), (0, (1,)), (2, (2, 2))])
def test_unflatten_repr_and_state_match_torch(dim, sizes):
    t, j = torch.nn.Unflatten(dim, sizes), jnn.Unflatten(dim, sizes)
    assert repr(j) == repr(t)
    assert (j.dim, j.unflattened_size) == (t.dim, t.unflattened_size)
    assert list(j.state_dict()) == list(t.state_dict()) == []


def test_unflatten_repr_literal_text():
    assert repr(jnn.Unflatten(1, (2, -1))) == "Unflatten(dim=1, unflattened_size=(2, -1))"


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=3).map(tuple), data=st.data())
def test_unflatten_matches_torch(shape, data):
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)), label="dim")
    sizes = tuple(data.draw(st.lists(st.sampled_from([-1, 0, 1, 2, 3, 6]), min_size=0, max_size=3), label="sizes"))
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    t, j = torch.nn.Unflatten(dim, sizes), jnn.Unflatten(dim, sizes)
    try:
        expected = t(torch.from_numpy(x)).numpy()
    except (IndexError, RuntimeError) as e:
        kind, text = error_of(lambda: j(jnp.asarray(x)))
        assert kind is type(e)
        assert text.splitlines()[0].split(":")[-1].strip()[:20] in str(e)
        return
    out = j(jnp.asarray(x))
    assert out.shape == expected.shape
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_unflatten_under_jit_and_flatten_round_trip():
    x = jnp.arange(2 * 12, dtype=jnp.float32).reshape(2, 12)
    out = jax.jit(lambda m, v: m(v))(jnn.Unflatten(1, (3, -1)), x)
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(np.asarray(jnn.Flatten()(out)), np.asarray(x))


def test_unflatten_constructor_type_errors_match_torch():
    for sizes in (5, (2, 2.0)):
        with pytest.raises(TypeError) as te:
            torch.nn.Unflatten(1, sizes)
        with pytest.raises(TypeError) as je:
            jnn.Unflatten(1, sizes)
        assert str(je.value) == str(te.value)
