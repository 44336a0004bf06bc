"""benchmarks/cpu_conv.py's alternative convolution lowerings compute what lax.conv_general_dilated computes.

The benchmark swaps them into jnn's convolutions to time them; a faster wrong convolution would be no result.
Values and gradients are compared with XLA's own convolution over strides, paddings, dilations and groups.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from jax import lax

from benchmarks import cpu_conv


@pytest.mark.parametrize("lowering", [cpu_conv._nhwc, cpu_conv._im2col_small])
@pytest.mark.parametrize("shape, k, stride, pad, dilation, groups", [
    ((2, 3, 8, 8), 3, 1, 1, 1, 1),
    ((2, 4, 6, 7), 3, 2, 1, 1, 1),
    ((1, 4, 8, 8), 1, 2, 0, 1, 1),
    ((2, 4, 9, 9), 3, 1, 2, 2, 1),
    ((2, 4, 6, 6), 3, 1, 1, 1, 2),  # groups: im2col leaves it to XLA
    ((1, 2, 20, 20), 3, 1, 1, 1, 1),  # 20x20 output: larger than im2col-small's 8x8
])
def test_lowering_matches_xla_convolution(lowering, shape, k, stride, pad, dilation, groups):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((6, shape[1] // groups, k, k)).astype(np.float32)
    args = ((stride, stride), [(pad, pad)] * 2)
    kwargs = dict(rhs_dilation=(dilation, dilation), dimension_numbers=("NCHW", "OIHW", "NCHW"),
                  feature_group_count=groups)

    def reference(x, w):
        return lax.conv_general_dilated(x, w, *args, **kwargs)

    def alternative(x, w):
        return lowering(x, w, *args, **kwargs)

    np.testing.assert_allclose(alternative(x, w), reference(x, w), rtol=1e-4, atol=1e-4)
    grads = [jax.grad(lambda x, w, f=f: (f(x, w) ** 2).sum(), argnums=(0, 1))(x, w) for f in (alternative, reference)]
    for got, want in zip(*grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------------------------------------------------
# jnn's own small-map path: conv2d with at most SMALL_CONV_OUTPUT output positions runs as slices x matmul on CPU


def _primitives(fn, *args) -> set[str]:
    return {str(eqn.primitive) for eqn in jax.make_jaxpr(fn)(*args).eqns}


@pytest.mark.parametrize("shape, kwargs", [
    ((3, 16, 1, 1), dict(padding=1)),  # ResNet's last stage on 32px images: only the centre tap sees data
    ((3, 8, 4, 4), dict(stride=2, padding=1)),
    ((2, 8, 2, 3), dict(padding="same")),
    ((2, 8, 5, 5), dict(padding=2, dilation=2, stride=(2, 1))),
    ((2, 4, 4, 4), dict(padding=(0, 1), stride=(1, 2))),
    ((8, 3, 3), dict(padding=1)),  # unbatched
])
def test_small_map_conv2d_matches_torch_values_and_gradients(shape, kwargs):
    import torch

    import jnn.functional as F
    from jnn.functional import _conv

    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    channels = shape[-3]
    w = rng.standard_normal((5, channels, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    assert "conv_general_dilated" not in _primitives(lambda x, w: F.conv2d(x, w, **kwargs), x, w)  # the taps path

    def loss(x, w, b):
        return (F.conv2d(x, w, b, **kwargs) ** 2).sum()

    value, grads = jax.value_and_grad(loss, argnums=(0, 1, 2))(x, w, b)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tloss = (torch.nn.functional.conv2d(tx, tw, tb, **kwargs) ** 2).sum()
    tloss.backward()
    np.testing.assert_allclose(float(value), tloss.item(), rtol=1e-5)
    for got, want in zip(grads, (tx.grad, tw.grad, tb.grad), strict=True):
        np.testing.assert_allclose(np.asarray(got), want.numpy(), rtol=1e-4, atol=1e-4)
    out = jax.jit(lambda x, w: F.conv2d(x, w, **kwargs))(x, w)
    assert out.shape == tuple(torch.nn.functional.conv2d(tx, tw, **kwargs).shape)
    assert np.prod(out.shape[-2:]) <= _conv.SMALL_CONV_OUTPUT


def test_larger_maps_groups_and_other_dims_keep_xla_convolution():
    import jnn.functional as F

    x = np.ones((1, 4, 5, 5), np.float32)
    w = np.ones((4, 4, 3, 3), np.float32)
    assert "conv_general_dilated" in _primitives(lambda x, w: F.conv2d(x, w, padding=1), x, w)  # 25 positions
    assert "conv_general_dilated" in _primitives(lambda x, w: F.conv2d(x, w[:, :2], groups=2), x[..., :3, :3], w)
    assert "conv_general_dilated" in _primitives(lambda x, w: F.conv1d(x, w), x[:, :, 0, :3], w[..., 0])
