"""jnn.ops' top-level neural-network functions (torch.conv2d, torch.layer_norm, ...) with ATen's signatures,
against torch."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import jitted

from jnn import ops

RNG = np.random.default_rng(0)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def check(name, *args, rtol=1e-5, atol=1e-5, jit=True, **kwargs):
    def convert(a, to):
        return to(a) if isinstance(a, np.ndarray) else a

    theirs = getattr(torch, name)(*[convert(a, torch.from_numpy) for a in args], **kwargs)
    fn = getattr(ops, name)
    runs = [fn(*[convert(a, jnp.asarray) for a in args], **kwargs)]
    if jit:
        runs.append(jitted(fn, args, kwargs))
    several = isinstance(theirs, tuple)
    for ours in runs:
        for a, b in zip(ours if several else [ours], theirs if several else [theirs], strict=True):
            b = b.detach().numpy()
            assert np.asarray(a).shape == b.shape
            np.testing.assert_allclose(np.asarray(a), b, rtol=rtol, atol=atol)


def test_same_signature_as_functional():
    x = randn(2, 4, 9, 9)
    check("conv2d", x, randn(6, 2, 3, 3), randn(6), 2, 1, 1, 2)
    check("conv1d", x[:, :, 0], randn(5, 4, 3), None, 1, "same")
    check("conv_transpose2d", x, randn(4, 3, 3, 3), None, 2, 1, 1)
    check("pixel_shuffle", randn(2, 8, 3, 3), 2)
    check("pixel_unshuffle", x[:, :, :8, :8], 2)
    check("channel_shuffle", x, 2)
    check("prelu", x, np.array([0.25], np.float32))
    check("hardshrink", x, 0.7)
    check("celu", x, 0.5)
    check("selu", x)
    check("threshold", x, 0.1, 20.0)
    check("avg_pool1d", x[:, :, 0], 3, 2, 1)
    check("max_pool2d", x, 3, 2, 1)
    check("max_pool1d", x[:, :, 0], 2)
    check("adaptive_avg_pool1d", x[:, :, 0], 4)
    check("adaptive_max_pool1d", x[:, :, 0], 4)  # ATen gives (values, indices)
    check("cosine_similarity", x, randn(2, 4, 9, 9), 1)
    check("pairwise_distance", randn(3, 5), randn(3, 5), 3.0)
    check("pdist", randn(5, 4))
    check("bilinear", randn(3, 4), randn(3, 5), randn(2, 4, 5), randn(2))
    check("rms_norm", x, [9], randn(9), 1e-6)


def test_aten_argument_orders():
    x = randn(4, 6, 5)
    w, b, mean, var = randn(6), randn(6), randn(6), np.abs(randn(6)) + 0.5
    check("layer_norm", x, [6, 5], randn(6, 5), randn(6, 5), 1e-5, True)
    check("group_norm", x, 3, w, b, 1e-5, True)
    check("batch_norm", x, w, b, mean, var, False, 0.1, 1e-5, True)  # eval: running statistics
    check("batch_norm", x, w, b, None, None, True, 0.1, 1e-5, True)  # training: batch statistics
    check("instance_norm", x, w, b, None, None, True, 0.1, 1e-5, True)
    check("embedding", randn(10, 3), np.array([[1, 9], [0, 0]]))
    check("embedding", randn(10, 3), np.array([1, 2]), 1)
    check("constant_pad_nd", x, [1, 2, 0, 1], 3.0)
    for p in (0.0, 0.5):
        check("dropout", x, p, False)
        check("alpha_dropout", x, p, False)
        check("feature_dropout", x, p, False)
    check("rrelu", x, 0.1, 0.3, False)
    ours = np.asarray(ops.dropout(jnp.ones((1000,)), 0.5, True))
    assert set(np.unique(ours)) == {0.0, 2.0}  # train: zeroed or scaled by 1 / (1 - p)


@pytest.mark.parametrize("reduction", [0, 1, 2])
def test_losses_take_aten_integer_reductions(reduction):
    x, y = randn(4, 5), randn(4, 5)
    target = np.sign(randn(4)).astype(np.float32)
    check("kl_div", np.log(np.abs(x) + 0.1), np.abs(y), reduction)
    check("kl_div", x, y, reduction, log_target=True)
    check("binary_cross_entropy_with_logits", x, (y > 0).astype(np.float32), np.abs(randn(5)), np.abs(randn(5)),
          reduction)
    check("hinge_embedding_loss", x, np.sign(y), 0.5, reduction)
    check("poisson_nll_loss", x, np.abs(y), True, False, 1e-8, reduction)
    check("margin_ranking_loss", x[:, 0], y[:, 0], target, 0.1, reduction)
    check("triplet_margin_loss", x, y, randn(4, 5), 1.0, 2.0, 1e-6, True, reduction)
    check("cosine_embedding_loss", x, y, target, 0.2, reduction)
