"""InstanceNorm1d/2d/3d and F.instance_norm against torch.nn: repr, state, outputs, running statistics, grads."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, assert_state_close, copy_torch_weights, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn
import jnn.functional as F

TOL = {"rtol": 1e-4, "atol": 1e-5}
GTOL = {"rtol": 1e-3, "atol": 1e-4}
SPATIAL = {"InstanceNorm1d": [(5,), (3,)], "InstanceNorm2d": [(3, 2), (2, 2)], "InstanceNorm3d": [(2, 2, 3)]}


def error_of(fn) -> tuple[type, str]:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    raise AssertionError("no error raised")


def twins(name: str, c: int, seed: int = 0, **kw):
    t = getattr(torch.nn, name)(c, **kw)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, p.shape).astype(np.float32)))
        if t.running_mean is not None:
            t.running_mean.copy_(torch.from_numpy(rng.standard_normal(c).astype(np.float32)))
            t.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, c).astype(np.float32)))
    return t, copy_torch_weights(getattr(jnn, name)(c, **kw), t)


@pytest.mark.parametrize("name", list(SPATIAL))
@pytest.mark.parametrize("kw", [{}, {"affine": True}, {"track_running_stats": True}, {"affine": True, "bias": False},
                                {"momentum": None, "eps": 1e-3, "affine": True, "track_running_stats": True}])
def test_repr_and_state_dict_layout(name, kw):
    t, j = getattr(torch.nn, name)(4, **kw), getattr(jnn, name)(4, **kw)
    assert repr(j) == repr(t)
    ours, theirs = j.state_dict(), torch_state(t)
    assert list(ours) == list(theirs)
    for k, v in theirs.items():
        assert ours[k].shape == v.shape, k
        np.testing.assert_array_equal(np.asarray(ours[k]), v)
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(list(SPATIAL)), data=st.data(), n=st.sampled_from([None, 1, 3]), c=st.sampled_from([1, 3]),
       affine=st.booleans(), track=st.booleans(), momentum=st.sampled_from([0.1, 0.5, None]),
       seed=st.integers(0, 999))
def test_train_then_eval_matches_torch(name, data, n, c, affine, track, momentum, seed):
    spatial = data.draw(st.sampled_from(SPATIAL[name]))
    shape = (c, *spatial) if n is None else (n, c, *spatial)
    t, j = twins(name, c, seed, affine=affine, track_running_stats=track, momentum=momentum)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape).astype(np.float32)
    for mode in ("train", "train", "eval"):
        if mode == "eval":
            t.eval()
            j.eval()
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        out = j(jnp.asarray(x))
        assert_close(out, t(torch.from_numpy(x)), **TOL)
        assert_state_close(j, t, **TOL)  # running statistics (num_batches_tracked stays 0, as in torch)
    # gradients in eval mode (running statistics when tracked) and in training mode
    for mode in (False, True):
        t.train(mode)
        apply, params, buffers = jnn.split(j)
        def loss(p, v, apply=apply, buffers=buffers, mode=mode):
            return (apply(p, buffers, v, train=mode)[0] * w).sum()

        gp, gx = jax.grad(loss, argnums=(0, 1))(params, jnp.asarray(x))
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        t.zero_grad()
        (t(tx) * torch.from_numpy(w)).sum().backward()
        assert sorted(gp) == sorted(k for k, _ in t.named_parameters())
        for k, p in t.named_parameters():
            assert_close(gp[k], p.grad, **GTOL)
        assert_close(gx, tx.grad, **GTOL)


def test_errors_and_warnings_match_torch():
    for name, bad in (("InstanceNorm1d", (3,)), ("InstanceNorm2d", (2, 3)), ("InstanceNorm3d", (1, 2, 3, 4, 5, 6))):
        te = error_of(lambda name=name, bad=bad: getattr(torch.nn, name)(2)(torch.zeros(bad)))
        je = error_of(lambda name=name, bad=bad: getattr(jnn, name)(2)(jnp.zeros(bad)))
        assert je == te, name
    # affine: the channel count must match; otherwise torch warns and normalises anyway
    te = error_of(lambda: torch.nn.InstanceNorm1d(3, affine=True)(torch.zeros(2, 4, 5)))
    assert error_of(lambda: jnn.InstanceNorm1d(3, affine=True)(jnp.zeros((2, 4, 5)))) == te
    with pytest.warns(UserWarning) as ours:
        jnn.InstanceNorm2d(3)(jnp.ones((4, 2, 2)))
    with pytest.warns(UserWarning) as theirs:
        torch.nn.InstanceNorm2d(3)(torch.ones(4, 2, 2))
    assert str(ours[0].message) == str(theirs[0].message)
    # one spatial element in training
    te = error_of(lambda: torch.nn.InstanceNorm1d(2)(torch.zeros(3, 2, 1)))
    je = error_of(lambda: jnn.InstanceNorm1d(2)(jnp.zeros((3, 2, 1))))
    assert je == te and je[1].startswith("Expected more than 1 spatial element when training")


def test_functional_instance_norm_with_stats_matches_torch_in_place_update():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 6)).astype(np.float32)
    rm, rv = rng.standard_normal(2).astype(np.float32), rng.uniform(0.5, 2, 2).astype(np.float32)
    w, b = rng.standard_normal(2).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    ty = torch.nn.functional.instance_norm(torch.from_numpy(x), trm, trv, torch.from_numpy(w), torch.from_numpy(b),
                                           True, 0.3, 1e-3)
    y, m, v = F.instance_norm_with_stats(jnp.asarray(x), rm, rv, w, b, True, 0.3, 1e-3)
    assert_close(y, ty, **TOL)
    assert_close(m, trm, **TOL)
    assert_close(v, trv, **TOL)
    with pytest.warns(UserWarning, match="instance_norm_with_stats"):
        y2 = F.instance_norm(jnp.asarray(x), rm, rv, w, b, True, 0.3, 1e-3)
    np.testing.assert_array_equal(np.asarray(y2), np.asarray(y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y3 = F.instance_norm(jnp.asarray(x), rm, rv, use_input_stats=False)  # eval: nothing to update, no warning
    assert_close(y3, torch.nn.functional.instance_norm(torch.from_numpy(x), torch.from_numpy(rm),
                                                       torch.from_numpy(rv), use_input_stats=False), **TOL)
    with pytest.raises(ValueError, match="running_mean"):
        F.instance_norm(jnp.asarray(x), use_input_stats=False)


def test_low_precision_input_keeps_dtype():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 512)) + 50.0, jnp.bfloat16)
    y = jnn.InstanceNorm1d(3, affine=True, dtype=jnp.bfloat16)(x)
    assert y.dtype == jnp.bfloat16
    x64 = np.asarray(x.astype(jnp.float32), np.float64)
    ref = (x64 - x64.mean(2, keepdims=True)) / np.sqrt(x64.var(2, keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(y, np.float64), ref, rtol=1e-2, atol=3e-2)


def test_under_jit_returns_updated_module_and_split():
    t, j = twins("InstanceNorm2d", 3, 1, affine=True, track_running_stats=True)
    step = jax.jit(lambda m, v: (m(v), m))
    rng = np.random.default_rng(1)
    for _ in range(2):
        x = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
        out, j = step(j, jnp.asarray(x))
        assert_close(out, t(torch.from_numpy(x)), **TOL)
    assert_state_close(j, t, **TOL)
    apply, params, buffers = jnn.split(j)
    out, new_buffers = jax.jit(apply, static_argnames="train")(params, buffers, jnp.asarray(x), train=False)
    t.eval()
    assert_close(out, t(torch.from_numpy(x)), **TOL)
    for k in buffers:
        np.testing.assert_array_equal(np.asarray(new_buffers[k]), np.asarray(buffers[k]))


@pytest.mark.parametrize("dims, shape", [(1, (2, 3, 5)), (2, (2, 3, 2, 2)), (3, (1, 3, 2, 1, 2))])
@pytest.mark.parametrize("kw", [{}, {"affine": False, "track_running_stats": False}, {"bias": False}])
def test_lazy_instance_norm_matches_torch_and_becomes_instance_norm(dims, shape, kw):
    t, j = getattr(torch.nn, f"LazyInstanceNorm{dims}d")(**kw), getattr(jnn, f"LazyInstanceNorm{dims}d")(**kw)
    assert repr(j) == repr(t) and list(j.state_dict()) == list(t.state_dict())
    with pytest.raises(RuntimeError, match=f"LazyInstanceNorm{dims}d: num_features is inferred"):
        jax.jit(lambda m, v: m(v))(j, jnp.ones(shape))
    x = np.random.default_rng(dims).standard_normal(shape).astype(np.float32)
    for _ in range(2):
        assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), **TOL)
        assert_state_close(j, t, **TOL)
    assert type(j) is getattr(jnn, f"InstanceNorm{dims}d") and type(t).__name__ == type(j).__name__
    # torch never sizes a lazy norm without parameters or buffers (num_features stays 0); jnn still records it
    assert j.num_features == shape[1] and t.num_features == (0 if kw.get("affine") is False else shape[1])
    # unbatched first input: num_features is the channel dim (torch would take dim 1 here)
    u = getattr(jnn, f"LazyInstanceNorm{dims}d")(**kw)
    assert u(jnp.asarray(x[0])).shape == x.shape[1:] and u.num_features == shape[1]
    assert_close(u(jnp.asarray(x[0])), j(jnp.asarray(x[:1]))[0], **TOL)
