"""MaxPool2d against torch.nn.MaxPool2d: repr, outputs, indices (ties, NaN), gradients, odd sizes, ceil_mode."""

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

SETTINGS = settings(max_examples=12, deadline=None)


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


int_or_pair = lambda lo, hi: st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))  # noqa: E731


@st.composite
def pool_configs(draw):
    kernel = draw(int_or_pair(1, 4))
    k = _pair(kernel)
    if isinstance(kernel, int):
        padding = draw(st.integers(0, kernel // 2))
    else:
        padding = draw(st.one_of(st.integers(0, min(k) // 2), st.tuples(st.integers(0, k[0] // 2),
                                                                          st.integers(0, k[1] // 2))))
    return {
        "kernel_size": kernel,
        "stride": draw(st.one_of(st.none(), int_or_pair(1, 3))),
        "padding": padding,
        "dilation": draw(int_or_pair(1, 2)),
        "ceil_mode": draw(st.booleans()),
        "return_indices": draw(st.booleans()),
    }


def smallest_size(kw, dim: int) -> int:
    k, p, d = (_pair(kw[a])[dim] for a in ("kernel_size", "padding", "dilation"))
    return max(1, d * (k - 1) + 1 - 2 * p)


def _cotangent(n: int) -> np.ndarray:
    return np.linspace(-1.0, 2.0, n, dtype=np.float32)


def input_grad(module, x: np.ndarray) -> np.ndarray:
    """d/dx of a weighted sum of the finite outputs (a window wholly in padding gives -inf; it is left out)."""
    def loss(v):
        y = module(v)[0] if module.return_indices else module(v)
        return (jnp.where(jnp.isfinite(y), y, 0) * _cotangent(y.size).reshape(y.shape)).sum()

    return np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(x)))


def torch_input_grad(module, x: np.ndarray) -> np.ndarray:
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    y = module(tx)[0] if module.return_indices else module(tx)
    w = torch.from_numpy(_cotangent(y.numel()).reshape(tuple(y.shape)))
    (torch.where(torch.isfinite(y), y, 0) * w).sum().backward()
    return tx.grad.numpy()


# --- repr --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 0), "dilation": (2, 1)},
    {"kernel_size": 3, "return_indices": True, "dilation": 2},
    {"kernel_size": [3, 3], "stride": [2, 1]},
])
def test_maxpool2d_repr_and_empty_state_dict_match_torch(kw):
    t, j = torch.nn.MaxPool2d(**kw), jnn.MaxPool2d(**kw)
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(t.state_dict()) == []
    for attr in ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"):
        assert getattr(j, attr) == getattr(t, attr), attr


def test_maxpool2d_repr_literal_text():
    assert repr(jnn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(jnn.MaxPool2d((3, 2), 1, 1, ceil_mode=True)) == (
        "MaxPool2d(kernel_size=(3, 2), stride=1, padding=1, dilation=1, ceil_mode=True)"
    )


# --- numerics ----------------------------------------------------------------------------------------------


@SETTINGS
@given(kw=pool_configs(), batch=st.sampled_from([None, 0, 1, 2]), channels=st.integers(1, 3),
       extra=st.tuples(st.integers(0, 5), st.integers(0, 5)), ties=st.booleans(), seed=st.integers(0, 2**16))
def test_maxpool2d_outputs_and_indices_match_torch(kw, batch, channels, extra, ties, seed):
    t, j = torch.nn.MaxPool2d(**kw), jnn.MaxPool2d(**kw)
    assert repr(j) == repr(t)
    h, w = smallest_size(kw, 0) + extra[0], smallest_size(kw, 1) + extra[1]
    shape = (channels, h, w) if batch is None else (batch, channels, h, w)
    rng = np.random.default_rng(seed)
    # with ties, torch returns the first maximum of each window (in row-major kernel order)
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(np.float32)
    expected = t(torch.from_numpy(x))
    out = j(jnp.asarray(x))
    if kw["return_indices"]:
        assert isinstance(out, tuple) and len(out) == 2
        (out, idx), (expected, tidx) = out, expected
        assert idx.shape == tuple(tidx.shape)
        assert jnp.issubdtype(idx.dtype, jnp.integer)
        # a dilated window can lie wholly in the padding: torch then gives -inf and an out-of-plane index
        # (its loop start, not a position in the input); that index has no meaning, so compare the others
        real = (tidx.numpy() >= 0) & (tidx.numpy() < h * w)
        np.testing.assert_array_equal(np.asarray(idx)[real], tidx.numpy()[real])
    assert out.shape == tuple(expected.shape) and out.dtype == jnp.float32
    assert_close(out, expected, rtol=0, atol=0)


@SETTINGS
@given(kw=pool_configs(), batch=st.sampled_from([None, 1, 2]), extra=st.tuples(st.integers(0, 4), st.integers(0, 4)),
       ties=st.booleans(), seed=st.integers(0, 2**16))
def test_maxpool2d_input_gradient_matches_torch(kw, batch, extra, ties, seed):
    t, j = torch.nn.MaxPool2d(**kw), jnn.MaxPool2d(**kw)
    h, w = smallest_size(kw, 0) + extra[0], smallest_size(kw, 1) + extra[1]
    shape = (2, h, w) if batch is None else (batch, 2, h, w)
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(np.float32)
    assert_close(input_grad(j, x), torch_input_grad(t, x), rtol=1e-5, atol=1e-5)


def test_maxpool2d_gradient_of_the_tutorial_shape_eager():
    t, j = torch.nn.MaxPool2d(2), jnn.MaxPool2d(2)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    g = jax.grad(lambda v: (j(v) ** 2).sum())(jnp.asarray(x))
    tx = torch.from_numpy(x).requires_grad_(True)
    (t(tx) ** 2).sum().backward()
    assert_close(g, tx.grad, rtol=1e-5, atol=1e-6)


def test_maxpool2d_window_wholly_in_padding_gives_minus_inf_like_torch():
    kw = {"kernel_size": 2, "padding": 1, "dilation": 2}  # on a 1x1 input every tap is padding
    x = np.full((1, 1, 1), 0.5, np.float32)
    expected = torch.nn.MaxPool2d(**kw)(torch.from_numpy(x))
    out = jnn.MaxPool2d(**kw)(jnp.asarray(x))
    assert out.shape == tuple(expected.shape) == (1, 1, 1)
    np.testing.assert_array_equal(np.asarray(out), expected.numpy())
    assert float(out[0, 0, 0]) == -np.inf


def test_maxpool2d_nan_and_inf_propagate_like_torch():
    x = np.arange(2 * 5 * 5, dtype=np.float32).reshape(1, 2, 5, 5)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 3, 4] = -np.inf
    x[0, 1, :2, :2] = -np.inf
    x[0, 1, 4, 4] = np.inf
    for kw in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1, "return_indices": True},
               {"kernel_size": 2, "ceil_mode": True, "dilation": 2, "return_indices": True}):
        t, j = torch.nn.MaxPool2d(**kw), jnn.MaxPool2d(**kw)
        expected, out = t(torch.from_numpy(x)), j(jnp.asarray(x))
        if kw.get("return_indices"):
            np.testing.assert_array_equal(np.asarray(out[1]), expected[1].numpy())
            expected, out = expected[0], out[0]
        np.testing.assert_array_equal(np.asarray(out), expected.numpy())


def test_maxpool2d_under_jit_and_vmap():
    t, j = torch.nn.MaxPool2d(3, 2, 1, return_indices=True), jnn.MaxPool2d(3, 2, 1, return_indices=True)
    x = np.random.default_rng(1).standard_normal((3, 2, 7, 6)).astype(np.float32)
    out, idx = jax.jit(lambda m, v: m(v))(j, jnp.asarray(x))
    tout, tidx = t(torch.from_numpy(x))
    assert_close(out, tout, rtol=0, atol=0)
    np.testing.assert_array_equal(np.asarray(idx), tidx.numpy())
    vout, vidx = jax.vmap(j)(jnp.asarray(x))  # vmapped over the batch: each example unbatched (C, H, W)
    assert_close(vout, tout, rtol=0, atol=0)
    np.testing.assert_array_equal(np.asarray(vidx), tidx.numpy())


@pytest.mark.parametrize("kw, shape", [
    ({"kernel_size": 3, "padding": 2}, (1, 1, 6, 6)),      # pad more than half the kernel
    ({"kernel_size": 4}, (1, 1, 3, 3)),                    # output size would be 0
])
def test_maxpool2d_rejects_what_torch_rejects(kw, shape):
    with pytest.raises(RuntimeError):
        torch.nn.MaxPool2d(**kw)(torch.zeros(shape))
    with pytest.raises(ValueError, match="max_pool2d"):
        jnn.MaxPool2d(**kw)(jnp.zeros(shape))


def test_maxpool2d_rejects_wrong_rank():
    with pytest.raises(RuntimeError):
        torch.nn.MaxPool2d(2)(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="3D .* or 4D"):
        jnn.MaxPool2d(2)(jnp.zeros((4, 4)))
