"""Padding layers against torch.nn: repr, outputs, input gradients, errors, jit."""

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

SETTINGS = settings(max_examples=20, deadline=None)
KINDS = ["ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad"]
SPATIAL = {1: (5,), 2: (4, 5), 3: (3, 4, 3)}  # a few fixed shapes, so examples share compiles


def build(lib, kind: str, n: int, padding, value: float = 1.5):
    cls = getattr(lib, f"{kind}{n}d")
    return cls(padding, value) if kind == "ConstantPad" else cls(padding)


def error_of(fn) -> tuple[type, str]:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    raise AssertionError("no error raised")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_padding_repr_attributes_and_state(kind, n):
    for padding in (2, tuple(range(2 * n)), list(range(1, 2 * n + 1))):
        t, j = build(torch.nn, kind, n, padding), build(jnn, kind, n, padding)
        assert repr(j) == repr(t)
        assert j.padding == t.padding and isinstance(j.padding, tuple)
        if kind in ("ZeroPad", "ConstantPad"):
            assert j.value == t.value
        assert list(j.state_dict()) == [] and list(jnn.split(j)[1]) == []


@st.composite
def pad_cases(draw):
    kind, n = draw(st.sampled_from(KINDS)), draw(st.integers(1, 3))
    lo = -1 if kind in ("ZeroPad", "ConstantPad") else 0
    sizes = SPATIAL[n]
    if draw(st.booleans()):
        padding = draw(st.integers(max(lo, 0), 2))
    else:  # (left, right) per dim, last dim first: keep reflect/circular inside torch's limits mostly
        padding = tuple(draw(st.integers(lo, 3)) for _ in range(2 * n))
    batch = draw(st.sampled_from([None, 0, 2]))
    shape = (3, *sizes) if batch is None else (batch, 3, *sizes)
    return kind, n, padding, shape


@SETTINGS
@given(case=pad_cases(), seed=st.integers(0, 2**16))
def test_padding_outputs_and_input_gradients_match_torch(case, seed):
    kind, n, padding, shape = case
    t, j = build(torch.nn, kind, n, padding), build(jnn, kind, n, padding)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_(True)
    try:
        expected = t(tx)
    except (RuntimeError, ValueError, NotImplementedError):  # torch refuses (reflect too wide, ...): so do we
        with pytest.raises((ValueError, NotImplementedError)):
            j(jnp.asarray(x))
        return
    out = j(jnp.asarray(x))  # eager
    assert out.shape == tuple(expected.shape) and out.dtype == jnp.float32
    assert_close(out, expected)
    if expected.numel():
        (expected**2).sum().backward()
        gx = jax.jit(jax.grad(lambda v: (j(v) ** 2).sum()))(jnp.asarray(x))
        assert_close(gx, tx.grad, rtol=1e-4, atol=1e-4)


def test_padding_literal_values():
    x = jnp.arange(3.0)[None]
    assert jnn.ZeroPad1d((1, 2))(x).tolist() == [[0.0, 0.0, 1.0, 2.0, 0.0, 0.0]]
    assert jnn.ConstantPad1d(1, -1.0)(x).tolist() == [[-1.0, 0.0, 1.0, 2.0, -1.0]]
    assert jnn.ReflectionPad1d((2, 1))(x).tolist() == [[2.0, 1.0, 0.0, 1.0, 2.0, 1.0]]
    assert jnn.ReplicationPad1d((1, 2))(x).tolist() == [[0.0, 0.0, 1.0, 2.0, 2.0, 2.0]]
    assert jnn.CircularPad1d((1, 1))(x).tolist() == [[2.0, 0.0, 1.0, 2.0, 0.0]]
    assert jnn.ConstantPad2d((-1, 0, 0, 0), 3.0)(jnp.ones((1, 2, 3))).shape == (1, 2, 2)  # negative crops
    for kind in KINDS:  # each layer as a pytree under jit
        j, t = build(jnn, kind, 2, (1, 0, 2, 1)), build(torch.nn, kind, 2, (1, 0, 2, 1))
        v = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        assert_close(jax.jit(lambda m, a: m(a))(j, jnp.asarray(v)), t(torch.from_numpy(v)))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_circular_pad_rejects_wrong_rank_like_torch(n):
    bad = (2,) * (n + 3)
    te = error_of(lambda: build(torch.nn, "CircularPad", n, 1)(torch.zeros(bad)))
    je = error_of(lambda: build(jnn, "CircularPad", n, 1)(jnp.zeros(bad)))
    assert je == te


def test_padding_errors_for_impossible_pads():
    with pytest.raises(ValueError, match="reflect"):
        jnn.ReflectionPad1d(5)(jnp.zeros((1, 3)))
    with pytest.raises(RuntimeError):
        torch.nn.ReflectionPad1d(5)(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="padding length"):
        jnn.ReflectionPad2d((1, 1, 1))(jnp.zeros((1, 3, 3)))
    with pytest.raises(NotImplementedError, match="not supported"):
        jnn.ReplicationPad2d(1)(jnp.zeros((3, 3)))
