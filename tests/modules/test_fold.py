"""Fold and Unfold (and F.fold / F.unfold) against torch.nn: repr, outputs, gradients, errors, jit."""

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

int_or_pair = lambda lo, hi: st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))  # noqa: E731


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


@st.composite
def block_args(draw):
    return {"kernel_size": draw(int_or_pair(1, 3)), "dilation": draw(int_or_pair(1, 2)),
            "padding": draw(int_or_pair(0, 1)), "stride": draw(int_or_pair(1, 2))}


def blocks(size, kw) -> tuple[int, int]:
    k, d, p, s = (_pair(kw[a]) for a in ("kernel_size", "dilation", "padding", "stride"))
    return tuple((size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2))


def input_and_grad(j, t, x: np.ndarray):
    tx = torch.from_numpy(x).requires_grad_(True)
    expected = t(tx)
    out = jax.jit(lambda m, v: m(v))(j, jnp.asarray(x))  # the layer as a pytree under jit (eager: literal tests)
    assert out.shape == tuple(expected.shape) and out.dtype == jnp.float32
    assert_close(out, expected)
    if expected.numel():
        (expected**2).sum().backward()
        gx = jax.jit(jax.grad(lambda v: (j(v) ** 2).sum()))(jnp.asarray(x))
        assert_close(gx, tx.grad, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(kw=block_args(), batch=st.sampled_from([None, 0, 2]), size=st.sampled_from([(5, 6), (7, 4)]),
       seed=st.integers(0, 2**16))
def test_unfold_matches_torch(kw, batch, size, seed):
    t, j = torch.nn.Unfold(**kw), jnn.Unfold(**kw)
    assert repr(j) == repr(t)
    shape = (2, *size) if batch is None else (batch, 2, *size)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    if min(blocks(size, kw)) < 1:
        with pytest.raises(ValueError, match="unfold"):
            j(jnp.asarray(x))
        with pytest.raises(RuntimeError):
            t(torch.from_numpy(x))
        return
    input_and_grad(j, t, x)


@SETTINGS
@given(kw=block_args(), batch=st.sampled_from([None, 0, 2]), size=st.sampled_from([(5, 6), (4, 4)]),
       seed=st.integers(0, 2**16))
def test_fold_matches_torch(kw, batch, size, seed):
    out_size = size if batch != 2 else list(size)  # int pairs as tuple or list
    t, j = torch.nn.Fold(out_size, **kw), jnn.Fold(out_size, **kw)
    assert repr(j) == repr(t)
    k = _pair(kw["kernel_size"])
    nb = blocks(size, kw)
    if min(nb) < 1:
        with pytest.raises(ValueError, match="fold"):
            j(jnp.zeros((1, 2 * k[0] * k[1], 1)))
        return
    rows, cols = 2 * k[0] * k[1], nb[0] * nb[1]
    shape = (rows, cols) if batch is None else (batch, rows, cols)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    input_and_grad(j, t, x)


def test_fold_is_the_adjoint_of_unfold_and_literal_counts():
    kw = {"kernel_size": 2, "stride": 1}
    counts = F.fold(F.unfold(jnp.ones((1, 1, 3, 3)), **kw), (3, 3), **kw)  # eager
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4)).astype(np.float32)
    cols = jnn.Unfold(2, padding=1)(jnp.asarray(x))
    assert_close(cols, torch.nn.Unfold(2, padding=1)(torch.from_numpy(x)))
    expected = torch.nn.Fold((5, 4), 2, padding=1)(torch.from_numpy(np.array(cols)))
    assert_close(jnn.Fold((5, 4), 2, padding=1)(cols), expected)
    assert counts[0, 0].tolist() == [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    assert repr(jnn.Fold((4, 5), 2)) == repr(torch.nn.Fold((4, 5), 2))
    assert repr(jnn.Unfold(3, padding=1)) == "Unfold(kernel_size=3, dilation=1, padding=1, stride=1)"


def error_text(fn) -> str:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return str(e)
    raise AssertionError("no error raised")


def test_fold_unfold_errors():
    fold = jnn.Fold((4, 4), 2)
    msg = error_text(lambda: fold(jnp.zeros((1, 6, 9))))
    assert "divisible by the product of kernel_size" in msg and "input.size(1)=6" in msg
    torch_fold = torch.nn.Fold((4, 4), 2)
    assert "divisible by the product of kernel_size" in error_text(lambda: torch_fold(torch.zeros(1, 6, 9)))
    msg = error_text(lambda: fold(jnp.zeros((1, 8, 8))))
    assert "calculated number of sliding blocks 3 * 3 = 9, but got input.size(2)=8" in msg
    assert "3 * 3 = 9, but got input.size(2)=8" in error_text(lambda: torch_fold(torch.zeros(1, 8, 8)))
    with pytest.raises(ValueError, match="fold: expected 2D"):
        fold(jnp.zeros((1, 1, 4, 9)))
    with pytest.raises(ValueError, match="unfold: expected 3D"):
        jnn.Unfold(2)(jnp.zeros((4, 4)))
    with pytest.raises(ValueError, match="unfold: kernel_size must be positive"):
        F.unfold(jnp.zeros((1, 1, 4, 4)), 0)
    with pytest.raises(ValueError, match="unfold: given input with spatial size"):
        F.unfold(jnp.zeros((1, 1, 2, 2)), 3)
