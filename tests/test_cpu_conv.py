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
