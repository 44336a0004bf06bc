"""PixelShuffle, PixelUnshuffle and ChannelShuffle against torch: repr, values, round trips, errors, jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn


@pytest.mark.parametrize("name, arg, text", [
    ("PixelShuffle", 3, "PixelShuffle(upscale_factor=3)"), ("PixelUnshuffle", 2, "PixelUnshuffle(downscale_factor=2)"),
    ("ChannelShuffle", 4, "ChannelShuffle(groups=4)"),
])
def test_repr_and_state_match_torch(name, arg, text):
    t, j = getattr(torch.nn, name)(arg), getattr(jnn, name)(arg)
    assert repr(j) == repr(t) == text
    assert list(j.state_dict()) == list(t.state_dict()) == []


@settings(max_examples=20, deadline=None)
@given(r=st.integers(1, 3), lead=st.sampled_from([(), (2,), (0,), (2, 1)]), c=st.integers(1, 2),
       hw=st.tuples(st.integers(1, 3), st.integers(1, 3)))
def test_pixel_shuffle_and_unshuffle_match_torch(r, lead, c, hw):
    x = np.arange(int(np.prod(lead)) * c * r * r * hw[0] * hw[1], dtype=np.float32).reshape(*lead, c * r * r, *hw)
    out = jnn.PixelShuffle(r)(jnp.asarray(x))
    expected = torch.nn.PixelShuffle(r)(torch.from_numpy(x)).numpy()
    assert out.shape == expected.shape
    np.testing.assert_array_equal(np.asarray(out), expected)
    back = jnn.PixelUnshuffle(r)(out)
    if x.size:  # torch returns an empty input to pixel_unshuffle unchanged, in its old shape
        np.testing.assert_array_equal(np.asarray(back), torch.nn.PixelUnshuffle(r)(torch.from_numpy(expected)).numpy())
    np.testing.assert_array_equal(np.asarray(back), x)


@settings(max_examples=20, deadline=None)
@given(g=st.integers(1, 4), per=st.integers(1, 3), batch=st.integers(0, 2),
       rest=st.sampled_from([(1,), (2, 3), (2, 1, 2)]))
def test_channel_shuffle_matches_torch(g, per, batch, rest):
    x = np.arange(batch * g * per * int(np.prod(rest)), dtype=np.float32).reshape(batch, g * per, *rest)
    out = jnn.ChannelShuffle(g)(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(out), torch.nn.ChannelShuffle(g)(torch.from_numpy(x)).numpy())


def test_gradients_and_jit():
    x = np.random.default_rng(0).standard_normal((2, 8, 3, 3)).astype(np.float32)
    for j, t in ((jnn.PixelShuffle(2), torch.nn.PixelShuffle(2)), (jnn.ChannelShuffle(4), torch.nn.ChannelShuffle(4)),
                 (jnn.PixelUnshuffle(3), torch.nn.PixelUnshuffle(3))):
        w = np.asarray(j(jnp.asarray(x)))
        w = np.linspace(-1, 1, w.size, dtype=np.float32).reshape(w.shape)
        g = jax.grad(lambda v, j=j, w=w: (j(v) * w).sum())(jnp.asarray(x))
        tx = torch.from_numpy(x).requires_grad_(True)
        (t(tx) * torch.from_numpy(w)).sum().backward()
        np.testing.assert_array_equal(np.asarray(g), tx.grad.numpy())
        np.testing.assert_array_equal(np.asarray(jax.jit(lambda m, v: m(v))(j, jnp.asarray(x))),
                                      t(torch.from_numpy(x)).detach().numpy())


@pytest.mark.parametrize("name, arg, shape", [
    ("PixelShuffle", 2, (5, 2, 2)), ("PixelShuffle", 2, (2, 2)), ("PixelShuffle", 0, (4, 2, 2)),
    ("PixelUnshuffle", 2, (4, 3, 2)), ("PixelUnshuffle", 2, (4, 2, 3)),
    ("ChannelShuffle", 2, (4, 2)), ("ChannelShuffle", 2, (1, 5, 2)), ("ChannelShuffle", 0, (1, 4, 2)),
])
def test_errors_match_torch(name, arg, shape):
    with pytest.raises(RuntimeError) as te:
        getattr(torch.nn, name)(arg)(torch.zeros(shape))
    with pytest.raises(ValueError) as je:
        getattr(jnn, name)(arg)(jnp.zeros(shape))
    assert str(je.value) == str(te.value)
