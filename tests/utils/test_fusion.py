"""jnn.utils.fusion against torch.nn.utils.fusion: fused weights equal torch's, fused outputs equal unfused eval."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, torch_state
from torch.nn.utils import fusion as TF

import jnn
from jnn.utils import fusion as JF

CASES = {
    "conv1d": (lambda nn: nn.Conv1d(3, 4, 3), lambda nn: nn.BatchNorm1d(4), (2, 3, 8), False),
    "conv2d": (lambda nn: nn.Conv2d(3, 4, 3), lambda nn: nn.BatchNorm2d(4), (2, 3, 6, 6), False),
    "conv2d_no_bias": (lambda nn: nn.Conv2d(3, 4, 3, bias=False), lambda nn: nn.BatchNorm2d(4, affine=False),
                       (2, 3, 6, 6), False),
    "conv3d_groups": (lambda nn: nn.Conv3d(4, 6, 2, groups=2), lambda nn: nn.BatchNorm3d(6), (1, 4, 4, 4, 4), False),
    "conv_transpose2d": (lambda nn: nn.ConvTranspose2d(3, 5, 3), lambda nn: nn.BatchNorm2d(5), (2, 3, 4, 4), True),
}


def _trained_bn(build_bn, shape_out, seed):
    """A torch BatchNorm with non-trivial running statistics and affine parameters."""
    torch.manual_seed(seed)
    bn = build_bn(torch.nn)
    with torch.no_grad():
        for _ in range(3):
            bn(torch.randn(shape_out) * 3 + 1)
        if bn.affine:
            bn.weight.uniform_(0.5, 2)
            bn.bias.uniform_(-1, 1)
    return bn.eval()


@pytest.mark.parametrize("case", list(CASES))
def test_fuse_conv_bn_matches_torch(case):
    build_conv, build_bn, shape, transpose = CASES[case]
    torch.manual_seed(0)
    tconv = build_conv(torch.nn).eval()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    tbn = _trained_bn(build_bn, tuple(tconv(torch.from_numpy(x)).shape), 1)
    jconv, jbn = build_conv(jnn), build_bn(jnn)
    jconv.load_state_dict(torch_state(tconv))
    jbn.load_state_dict(torch_state(tbn))
    jconv.eval(), jbn.eval()
    tfused = TF.fuse_conv_bn_eval(tconv, tbn, transpose=transpose)
    jfused = JF.fuse_conv_bn_eval(jconv, jbn, transpose=transpose)
    assert type(jfused) is type(jconv) and repr(jfused) == repr(tfused)
    assert list(jfused.state_dict()) == list(tfused.state_dict())
    for k, v in torch_state(tfused).items():
        assert_close(jfused.state_dict()[k], v, atol=1e-6)
    assert sorted(k for k, _ in jfused.named_trainable_parameters()) == \
        sorted(k for k, p in tfused.named_parameters() if p.requires_grad)
    unfused = jbn(jconv(jnp.asarray(x)))
    assert_close(jfused(jnp.asarray(x)), unfused, atol=1e-5)
    assert_close(jfused(jnp.asarray(x)), tfused(torch.from_numpy(x)), atol=1e-5)
    assert "bias" not in jconv.state_dict() or case != "conv2d_no_bias"  # the original is not changed


@pytest.mark.parametrize("features", [4, 1])
@pytest.mark.parametrize("bias", [True, False])
def test_fuse_linear_bn_matches_torch(features, bias):
    torch.manual_seed(0)
    tlin = torch.nn.Linear(3, 4, bias=bias).eval()
    tbn = _trained_bn(lambda nn: nn.BatchNorm1d(features), (8, features), 2)
    jlin, jbn = jnn.Linear(3, 4, bias=bias), jnn.BatchNorm1d(features)
    jlin.load_state_dict(torch_state(tlin))
    jbn.load_state_dict(torch_state(tbn))
    jlin.eval(), jbn.eval()
    tfused = TF.fuse_linear_bn_eval(tlin, tbn)
    jfused = JF.fuse_linear_bn_eval(jlin, jbn)
    for k, v in torch_state(tfused).items():
        assert_close(jfused.state_dict()[k], v, atol=1e-6)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    if features == 4:
        assert_close(jfused(jnp.asarray(x)), jbn(jlin(jnp.asarray(x))), atol=1e-5)
    assert_close(jfused(jnp.asarray(x)), tfused(torch.from_numpy(x)), atol=1e-5)


def test_fuse_weights_functions_match_torch():
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((4, 3, 2, 2)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    rm, rv = rng.standard_normal(4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)
    g, beta = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    for transpose in [False, True]:
        ww = w.transpose(1, 0, 2, 3).copy() if transpose else w
        theirs = TF.fuse_conv_bn_weights(t(ww), t(b), t(rm), t(rv), 1e-3, t(g), t(beta), transpose)
        ours = JF.fuse_conv_bn_weights(jnp.asarray(ww), jnp.asarray(b), jnp.asarray(rm), jnp.asarray(rv), 1e-3,
                                       jnp.asarray(g), jnp.asarray(beta), transpose)
        for a, e in zip(ours, theirs, strict=True):
            assert_close(a, e, atol=1e-6)
    lw = w[:, :, 0, 0].copy()
    theirs = TF.fuse_linear_bn_weights(t(lw), None, t(rm), t(rv), 1e-5, t(g), t(beta))
    ours = JF.fuse_linear_bn_weights(jnp.asarray(lw), None, jnp.asarray(rm), jnp.asarray(rv), 1e-5, jnp.asarray(g),
                                     jnp.asarray(beta))
    for a, e in zip(ours, theirs, strict=True):
        assert_close(a, e, atol=1e-6)


def test_errors():
    conv, bn = jnn.Conv2d(2, 3, 1), jnn.BatchNorm2d(3)
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        JF.fuse_conv_bn_eval(conv, bn)
    with pytest.raises(AssertionError, match="running_mean"):
        JF.fuse_conv_bn_eval(conv.eval(), jnn.BatchNorm2d(3, track_running_stats=False).eval())
    with pytest.raises(AssertionError, match="out_features"):
        JF.fuse_linear_bn_eval(jnn.Linear(2, 3).eval(), jnn.BatchNorm1d(4).eval())
