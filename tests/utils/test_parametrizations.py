"""jnn.utils.parametrizations (weight_norm, spectral_norm, orthogonal) against torch.nn.utils.parametrizations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils import parametrizations as TP

import jnn
from jnn.utils import parametrizations as JP

LAYERS = {
    "linear": (lambda m: m.Linear(5, 4), (3, 5)),
    "linear_wide": (lambda m: m.Linear(3, 6), (2, 3)),
    "conv2d": (lambda m: m.Conv2d(2, 3, 3), (2, 2, 6, 6)),
    "conv_transpose2d": (lambda m: m.ConvTranspose2d(3, 2, 3), (2, 3, 4, 4)),
    "conv1d": (lambda m: m.Conv1d(4, 3, 2), (2, 4, 5)),
}


def _twins(kind: str, torch_fn, jnn_fn, **kwargs):
    build, shape = LAYERS[kind]
    torch.manual_seed(0)
    tm = torch_fn(build(torch.nn), **kwargs)
    jm = jnn_fn(build(jnn), **kwargs)
    jm.load_state_dict(torch_state(tm))  # strict: same keys
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return tm, jm, x


def _grads(jm, x, train):
    apply, params, buffers = jnn.split(jm)
    grads = jax.grad(lambda p: (apply(p, buffers, jnp.asarray(x), train=train)[0] ** 2).sum())(params)
    return {k: np.asarray(v) for k, v in grads.items()}


def _torch_grads(tm, x):
    tm.zero_grad()
    (tm(torch.from_numpy(x)) ** 2).sum().backward()
    return {k: p.grad.numpy().copy() for k, p in tm.named_parameters()}


def _check_both_ways(tm, jm, x):
    """state_dict keys in torch's order, strict loading torch -> jnn and jnn -> torch, same outputs."""
    assert list(jm.state_dict()) == list(tm.state_dict())
    sd = {k: torch.from_numpy(np.array(v)) for k, v in jm.state_dict().items()}
    tm.load_state_dict(sd, strict=True)
    assert_close(jm(jnp.asarray(x)), tm(torch.from_numpy(x)), atol=1e-5)


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("dim", [0, 1, None, -2])
def test_weight_norm_matches_torch(kind, dim):
    tm, jm, x = _twins(kind, TP.weight_norm, JP.weight_norm, dim=dim)
    assert repr(jm) == repr(tm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    assert list(jm.state_dict())[-2:] == ["parametrizations.weight.original0", "parametrizations.weight.original1"]
    y = tm(torch.from_numpy(x))
    assert_close(jm(jnp.asarray(x)), y, atol=1e-5)
    assert_close(jax.jit(lambda m, x: m(x))(jm, jnp.asarray(x)), y, atol=1e-5)
    assert_close(jm.weight, tm.weight, atol=1e-6)
    theirs, ours = _torch_grads(tm, x), _grads(jm, x, train=True)
    assert sorted(ours) == sorted(theirs)
    for k in theirs:
        assert_close(ours[k], theirs[k], rtol=1e-4, atol=1e-4)
    _check_both_ways(tm, jm, x)


def test_weight_norm_registration_values_match_torch():
    """g and v computed at registration (right_inverse) equal torch's, for every dim."""
    for dim in [0, 1, 2, None, -1]:
        torch.manual_seed(0)
        tm = torch.nn.Conv2d(2, 3, 3)
        jm = jnn.Conv2d(2, 3, 3)
        jm.load_state_dict(torch_state(tm))
        TP.weight_norm(tm, dim=dim)
        JP.weight_norm(jm, dim=dim)
        for k, v in torch_state(tm).items():
            assert_close(jm.state_dict()[k], v, atol=1e-6)


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("n_power_iterations", [1, 3])
def test_spectral_norm_training_updates_u_v_like_torch(kind, n_power_iterations):
    tm, jm, x = _twins(kind, TP.spectral_norm, JP.spectral_norm, n_power_iterations=n_power_iterations)
    assert repr(jm) == repr(tm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    apply, params, buffers = jnn.split(jm)
    assert list(buffers) == ["parametrizations.weight.0._u", "parametrizations.weight.0._v"]
    step = jax.jit(apply, static_argnames="train")
    jitted = jnn.merge(apply, params, buffers)  # a copy with the initial u, v
    pytree_step = jax.jit(lambda m, x: (m(x), m))
    for _ in range(3):  # eager, split and module-as-pytree each advance their own copy of u, v
        y = tm(torch.from_numpy(x))
        assert_close(jm(jnp.asarray(x)), y, atol=1e-5)
        out, buffers = step(params, buffers, jnp.asarray(x), train=True)
        assert_close(out, y, atol=1e-5)
        out, jitted = pytree_step(jitted, jnp.asarray(x))
        assert_close(out, y, atol=1e-5)
        for name in ("_u", "_v"):
            theirs = getattr(tm.parametrizations.weight[0], name)
            assert_close(getattr(jm.parametrizations.weight[0], name), theirs, atol=1e-5)
            assert_close(buffers[f"parametrizations.weight.0.{name}"], theirs, atol=1e-5)
            assert_close(getattr(jitted.parametrizations.weight[0], name), theirs, atol=1e-5)
    ours = _grads(jm, x, train=True)  # from the same u, v as torch's next training-mode call
    theirs = _torch_grads(tm, x)
    for k in theirs:
        assert_close(ours[k], theirs[k], rtol=1e-4, atol=1e-4)
    jm(jnp.asarray(x))  # catch up with torch's call above
    # eval mode: no power iteration, u and v stay
    tm.eval(), jm.eval()
    u = jm.parametrizations.weight[0]._u
    assert_close(jm(jnp.asarray(x)), tm(torch.from_numpy(x)), atol=1e-5)
    assert jm.parametrizations.weight[0]._u is u
    _check_both_ways(tm, jm, x)


def test_spectral_norm_normalizes_and_defaults():
    jnn.manual_seed(0)
    m = JP.spectral_norm(jnn.Linear(7, 5))
    for _ in range(30):
        m(jnp.ones(7))
    assert abs(float(jnp.linalg.norm(m.weight, ord=2)) - 1.0) < 1e-3
    assert JP.spectral_norm(jnn.ConvTranspose2d(3, 4, 2)).parametrizations.weight[0].dim == 1
    assert JP.spectral_norm(jnn.Conv2d(3, 4, 2)).parametrizations.weight[0].dim == 0
    jnn.manual_seed(3)
    a = JP.spectral_norm(jnn.Linear(4, 4))
    jnn.manual_seed(3)
    b = JP.spectral_norm(jnn.Linear(4, 4))
    assert np.array_equal(a.parametrizations.weight[0]._u, b.parametrizations.weight[0]._u)
    with pytest.raises(ValueError, match="n_power_iterations"):
        JP.spectral_norm(jnn.Linear(3, 3), n_power_iterations=0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        JP.spectral_norm(jnn.Linear(3, 3), dim=2)
    with pytest.raises(ValueError, match="no parameter or buffer"):
        JP.spectral_norm(jnn.Linear(3, 3), name="nothing")


def test_spectral_norm_one_dimensional_tensor_matches_torch():
    torch.manual_seed(0)
    tm = TP.spectral_norm(torch.nn.Linear(3, 4), name="bias")
    jm = jnn.Linear(3, 4)
    jm = JP.spectral_norm(jm, name="bias")
    jm.load_state_dict(torch_state(tm))
    assert list(jm.state_dict()) == list(tm.state_dict())
    assert_close(jm.bias, tm.bias, atol=1e-6)


@pytest.mark.parametrize("orthogonal_map", ["matrix_exp", "cayley", "householder"])
@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
@pytest.mark.parametrize("use_trivialization", [True, False])
def test_orthogonal_matches_torch(orthogonal_map, shape, use_trivialization):
    torch.manual_seed(0)
    out_f, in_f = shape
    tm = TP.orthogonal(torch.nn.Linear(in_f, out_f), orthogonal_map=orthogonal_map,
                       use_trivialization=use_trivialization)
    jm = JP.orthogonal(jnn.Linear(in_f, out_f), orthogonal_map=orthogonal_map, use_trivialization=use_trivialization)
    assert repr(jm) == repr(tm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    w = np.asarray(jm.weight)  # orthogonal before loading torch's state
    small = min(shape)
    gram = w @ w.T if out_f <= in_f else w.T @ w
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)
    jm.load_state_dict(torch_state(tm))
    assert_close(jm.weight, tm.weight, atol=1e-5)
    x = np.random.default_rng(1).standard_normal((2, in_f)).astype(np.float32)
    assert_close(jax.jit(lambda m, x: m(x))(jm, jnp.asarray(x)), tm(torch.from_numpy(x)), atol=1e-5)
    theirs, ours = _torch_grads(tm, x), _grads(jm, x, train=True)
    assert sorted(ours) == sorted(theirs)
    for k in theirs:
        assert_close(ours[k], theirs[k], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("orthogonal_map", ["matrix_exp", "cayley", "householder"])
def test_orthogonal_assignment_matches_torch(orthogonal_map):
    """right_inverse (module.weight = Q) for a square orthogonal Q, which is deterministic in torch."""
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(4, 4))
    for triv in [True, False]:
        if not triv and orthogonal_map != "householder":
            continue
        tm = TP.orthogonal(torch.nn.Linear(4, 4), orthogonal_map=orthogonal_map, use_trivialization=triv)
        jm = JP.orthogonal(jnn.Linear(4, 4), orthogonal_map=orthogonal_map, use_trivialization=triv)
        with torch.no_grad():
            tm.weight = q
        jm.weight = q.numpy()
        for k, v in torch_state(tm).items():
            if k != "bias":
                assert_close(jm.state_dict()[k], v, atol=1e-5)
        assert_close(jm.weight, q, atol=1e-5)
    jm = JP.orthogonal(jnn.Linear(4, 4), orthogonal_map="cayley", use_trivialization=False)
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        jm.weight = q.numpy()


def test_orthogonal_errors():
    with pytest.raises(ValueError, match="orthogonal_map has to be one of"):
        JP.orthogonal(jnn.Linear(3, 3), orthogonal_map="qr")
    with pytest.raises(ValueError, match="Expected a matrix"):
        JP.orthogonal(jnn.Linear(3, 3), name="bias")
    with pytest.raises(ValueError, match="no parameter or buffer"):
        JP.orthogonal(jnn.Linear(3, 3), name="nothing")


def test_parametrized_blocks_scan_like_a_loop():
    """Identical spectral-norm blocks share one generated class, so scan_layers runs them in one scan, updating
    every block's _u/_v in training mode exactly as a Python loop does."""
    jnn.manual_seed(0)
    layers = jnn.ModuleList([JP.spectral_norm(jnn.Linear(4, 4)) for _ in range(3)])
    assert len({type(block) for block in layers}) == 1
    import copy
    looped = copy.deepcopy(layers)
    x = jnp.ones((2, 4))
    y = x
    for block in looped:
        y = block(y)
    assert_close(jnn.scan_layers(layers, x), y, atol=1e-5)
    for a, b in zip(layers, looped, strict=True):
        assert_close(a.parametrizations.weight[0]._u, b.parametrizations.weight[0]._u, atol=1e-6)
    apply, params, buffers = jnn.split(jnn.Sequential(layers), stacked=["0"])
    assert "0.*.parametrizations.weight.original" in params
    assert buffers["0.*.parametrizations.weight.0._u"].shape == (3, 4)


@pytest.mark.xfail(not hasattr(jnn.Module, "_load_from_state_dict"), strict=True,
                   reason="needs jnn.Module.load_state_dict to call each module's _load_from_state_dict, as torch's "
                          "does (the core branch adds it)")
def test_weight_norm_loads_a_legacy_checkpoint_like_torch():
    """torch's parametrized weight_norm loads a weight_g/weight_v checkpoint through a load_state_dict pre-hook."""
    torch.manual_seed(0)
    legacy = torch.nn.utils.weight_norm(torch.nn.Linear(3, 2))
    tm = TP.weight_norm(torch.nn.Linear(3, 2))
    tm.load_state_dict(legacy.state_dict())
    jm = JP.weight_norm(jnn.Linear(3, 2))
    jm.load_state_dict(torch_state(legacy))
    for k, v in torch_state(tm).items():
        assert_close(jm.state_dict()[k], v)
    layers = jnn.ModuleList([JP.weight_norm(jnn.Linear(2, 2)) for _ in range(3)])  # still identical blocks
    assert jnn.scan_layers(layers, jnp.ones((1, 2))).shape == (1, 2)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data(), seed=st.integers(0, 2**16))
def test_weight_norm_math_over_shapes_and_dims(shape, data, seed):
    """g = norm_except_dim(v, 2, dim) and v * g / norm_except_dim(v) for every shape and dim, as torch computes."""
    dim = data.draw(st.sampled_from([-1, *range(len(shape))]))
    v = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) + 0.1
    g = torch.norm_except_dim(torch.from_numpy(v), 2, dim)
    ours_g = JP._norm_except_dim(jnp.asarray(v), dim)
    assert tuple(ours_g.shape) == tuple(g.shape)
    assert_close(ours_g, g, atol=1e-6)
    scale = np.random.default_rng(seed + 1).uniform(0.5, 2, tuple(g.shape)).astype(np.float32)
    assert_close(JP._weight_norm(jnp.asarray(v), jnp.asarray(scale), dim),
                 torch._weight_norm(torch.from_numpy(v), torch.from_numpy(scale), dim), atol=1e-5)


@settings(max_examples=12, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4), data=st.data(), seed=st.integers(0, 2**16))
def test_spectral_norm_over_shapes_and_dims(shape, data, seed):
    """Registration on a weight of any shape and dim, then training-mode calls, follow torch's u, v and weight."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    w = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    tm, jm = torch.nn.Module(), jnn.Module()
    tm.weight = torch.nn.Parameter(torch.from_numpy(w))
    jm.weight = jnn.Parameter(jnp.asarray(w))
    TP.spectral_norm(tm, dim=dim, n_power_iterations=2)
    JP.spectral_norm(jm, dim=dim, n_power_iterations=2)
    jm.load_state_dict(torch_state(tm))
    for _ in range(2):
        assert_close(jm.weight, tm.weight, rtol=1e-4, atol=1e-5)
    for name in ("_u", "_v"):
        assert_close(getattr(jm.parametrizations.weight[0], name), getattr(tm.parametrizations.weight[0], name),
                     rtol=1e-4, atol=1e-5)
