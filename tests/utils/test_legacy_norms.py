"""The legacy hooks jnn.utils.weight_norm / spectral_norm (weight_g, weight_v / weight_orig, weight_u, weight_v)
against torch.nn.utils.weight_norm / spectral_norm."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, torch_state

import jnn

LAYERS = {
    "linear": (lambda m: m.Linear(5, 4), (3, 5)),
    "conv2d": (lambda m: m.Conv2d(2, 3, 3), (2, 2, 6, 6)),
    "conv_transpose1d": (lambda m: m.ConvTranspose1d(3, 2, 3), (2, 3, 4)),
}


def _twins(kind, apply_torch, apply_jnn):
    build, shape = LAYERS[kind]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tm = apply_torch(build(torch.nn))
        jm = apply_jnn(build(jnn))
    jm.load_state_dict(torch_state(tm))
    return tm, jm, np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _grads_match(tm, jm, x):
    apply, params, buffers = jnn.split(jm)
    grads = jax.grad(lambda p: (apply(p, buffers, jnp.asarray(x))[0] ** 2).sum())(params)
    tm.zero_grad()
    (tm(torch.from_numpy(x)) ** 2).sum().backward()
    for k, p in tm.named_parameters():
        assert_close(grads[k], p.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_matches_torch(kind, dim):
    tm, jm, x = _twins(kind, lambda m: torch.nn.utils.weight_norm(m, dim=dim),
                       lambda m: jnn.utils.weight_norm(m, dim=dim))
    assert repr(jm) == repr(tm) and type(jm).__name__ == type(tm).__name__
    assert list(jm.state_dict()) == list(tm.state_dict())
    assert list(jm.state_dict())[-2:] == ["weight_g", "weight_v"]
    y = tm(torch.from_numpy(x))
    assert_close(jm(jnp.asarray(x)), y, atol=1e-5)
    assert_close(jax.jit(lambda m, x: m(x))(jm, jnp.asarray(x)), y, atol=1e-5)
    assert_close(jm.weight, tm.weight, atol=1e-6)
    _grads_match(tm, jm, x)
    tm.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in jm.state_dict().items()}, strict=True)
    torch.nn.utils.remove_weight_norm(tm)
    jnn.utils.remove_weight_norm(jm)
    assert type(jm) is type(LAYERS[kind][0](jnn)) and repr(jm) == repr(tm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    for k, v in torch_state(tm).items():
        assert_close(jm.state_dict()[k], v, atol=1e-6)


def test_weight_norm_errors_and_warning():
    with pytest.warns(FutureWarning, match="parametrizations.weight_norm"):
        m = jnn.utils.weight_norm(jnn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        jnn.utils.weight_norm(m)
    with pytest.raises(ValueError, match="weight_norm of 'bias' not found"):
        jnn.utils.remove_weight_norm(m, "bias")
    with pytest.raises(AttributeError, match="computed by WeightNorm"):
        m.weight = jnp.zeros((2, 2))


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("n_power_iterations", [1, 2])
def test_spectral_norm_matches_torch(kind, n_power_iterations):
    tm, jm, x = _twins(kind, lambda m: torch.nn.utils.spectral_norm(m, n_power_iterations=n_power_iterations),
                       lambda m: jnn.utils.spectral_norm(m, n_power_iterations=n_power_iterations))
    assert repr(jm) == repr(tm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    assert list(jm.state_dict())[-3:] == ["weight_orig", "weight_u", "weight_v"]
    apply, params, buffers = jnn.split(jm)
    assert list(buffers) == ["weight_u", "weight_v"]
    jitted = jnn.merge(apply, params, buffers)
    step = jax.jit(apply, static_argnames="train")
    pytree_step = jax.jit(lambda m, x: (m(x), m))
    for _ in range(3):
        y = tm(torch.from_numpy(x))
        assert_close(jm(jnp.asarray(x)), y, atol=1e-5)
        out, buffers = step(params, buffers, jnp.asarray(x), train=True)
        assert_close(out, y, atol=1e-5)
        out, jitted = pytree_step(jitted, jnp.asarray(x))
        assert_close(out, y, atol=1e-5)
        for name in ("weight_u", "weight_v"):
            assert_close(getattr(jm, name), getattr(tm, name), atol=1e-5)
            assert_close(buffers[name], getattr(tm, name), atol=1e-5)
            assert_close(getattr(jitted, name), getattr(tm, name), atol=1e-5)
        assert_close(jm.weight, tm.weight, atol=1e-5)
    tm.eval(), jm.eval()
    u = jm.weight_u
    assert_close(jm(jnp.asarray(x)), tm(torch.from_numpy(x)), atol=1e-5)
    assert jm.weight_u is u
    _grads_match(tm, jm, x)  # eval mode: no power iteration on either side
    tm.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in jm.state_dict().items()}, strict=True)
    torch.nn.utils.remove_spectral_norm(tm)
    jnn.utils.remove_spectral_norm(jm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    for k, v in torch_state(tm).items():
        assert_close(jm.state_dict()[k], v, atol=1e-5)


def test_spectral_norm_errors():
    m = jnn.utils.spectral_norm(jnn.Linear(3, 3))
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks"):
        jnn.utils.spectral_norm(m)
    with pytest.raises(ValueError, match="spectral_norm of 'bias' not found"):
        jnn.utils.remove_spectral_norm(m, "bias")
    with pytest.raises(ValueError, match="n_power_iterations"):
        jnn.utils.spectral_norm(jnn.Linear(3, 3), n_power_iterations=0)
    with pytest.raises(ValueError, match="is None"):
        jnn.utils.spectral_norm(jnn.Linear(3, 3, bias=False), name="bias")
    assert jnn.utils.spectral_norm(jnn.ConvTranspose2d(2, 3, 2))._forward_pre_hooks
    hook = next(iter(jnn.utils.spectral_norm(jnn.ConvTranspose2d(2, 3, 2))._forward_pre_hooks.values()))
    assert hook.dim == 1
