"""BatchNorm1d/2d against torch.nn: repr, state dict, outputs and running statistics over many forwards, grads."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, assert_state_close, copy_torch_weights, jnn_grads, torch_grads, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn

SETTINGS = settings(max_examples=15, deadline=None)
TOL = {"rtol": 1e-4, "atol": 1e-5}


def error_of(fn) -> tuple[type, str]:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    raise AssertionError("no error raised")


def twins(cls_name: str, num_features: int, seed: int = 0, **kw):
    """A torch BatchNorm with random affine parameters and running statistics, and its jnn copy."""
    t = getattr(torch.nn, cls_name)(num_features, **kw)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        if t.weight is not None:
            t.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, num_features).astype(np.float32)))
        if t.bias is not None:
            t.bias.copy_(torch.from_numpy(rng.standard_normal(num_features).astype(np.float32)))
        if t.running_mean is not None:
            t.running_mean.copy_(torch.from_numpy(rng.standard_normal(num_features).astype(np.float32)))
            t.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, num_features).astype(np.float32)))
    j = copy_torch_weights(getattr(jnn, cls_name)(num_features, **kw), t)
    return t, j


def grads_and_input_grad(module, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    apply, params, buffers = jnn.split(module)
    loss = lambda p, v: (apply(p, buffers, v)[0] ** 3).sum()  # noqa: E731  (odd power: sum(y)=0 for BN)
    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, jnp.asarray(x))
    return {k: np.asarray(v) for k, v in gp.items()}, np.asarray(gx)


def torch_grads_and_input_grad(module, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    module.zero_grad()
    (module(tx) ** 3).sum().backward()
    return {k: p.grad.numpy().copy() for k, p in module.named_parameters()}, tx.grad.numpy()


def check_state_dict_layout(j, t) -> None:
    """Same keys in the same order, same shapes, same dtypes (num_batches_tracked: int32 without x64)."""
    ours, theirs = j.state_dict(), torch_state(t)
    assert list(ours) == list(theirs)
    for k, v in theirs.items():
        assert ours[k].shape == v.shape, k
        if k.endswith("num_batches_tracked"):
            assert ours[k].dtype == (jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
        else:
            assert ours[k].dtype == v.dtype, k


# --- repr and state dict -----------------------------------------------------------------------------------

CONFIGS = [
    {},
    {"momentum": None},
    {"momentum": 0.5, "eps": 1e-3},
    {"affine": False},
    {"track_running_stats": False},
    {"affine": False, "track_running_stats": False},
    {"bias": False},
    {"bias": False, "momentum": None, "track_running_stats": False},
]


@pytest.mark.parametrize("cls_name", ["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize("kw", CONFIGS)
def test_batchnorm_repr_and_state_dict_layout_match_torch(cls_name, kw):
    t, j = getattr(torch.nn, cls_name)(5, **kw), getattr(jnn, cls_name)(5, **kw)
    assert repr(j) == repr(t)
    check_state_dict_layout(j, t)
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in j.named_buffers()] == [n for n, _ in t.named_buffers()]
    for attr in ("num_features", "eps", "momentum", "affine", "track_running_stats"):
        assert getattr(j, attr) == getattr(t, attr), attr
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert (getattr(j, name) is None) == (getattr(t, name) is None), name


def test_batchnorm_repr_literal_text():
    assert repr(jnn.BatchNorm2d(20)) == (
        "BatchNorm2d(20, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    )
    assert repr(jnn.BatchNorm1d(3, momentum=None, affine=False, track_running_stats=False)) == (
        "BatchNorm1d(3, eps=1e-05, momentum=None, affine=False, bias=False, track_running_stats=False)"
    )


def test_batchnorm_default_initialisation():
    bn = jnn.BatchNorm2d(4)
    assert bn.weight.tolist() == [1.0] * 4 and bn.bias.tolist() == [0.0] * 4
    assert bn.running_mean.tolist() == [0.0] * 4 and bn.running_var.tolist() == [1.0] * 4
    assert int(bn.num_batches_tracked) == 0 and bn.num_batches_tracked.shape == ()
    assert_state_close(bn, torch.nn.BatchNorm2d(4), rtol=0, atol=0)


# --- outputs and running statistics ------------------------------------------------------------------------


@st.composite
def bn_cases(draw):
    cls_name = draw(st.sampled_from(["BatchNorm1d", "BatchNorm2d"]))
    n = draw(st.integers(1, 4))
    c = draw(st.integers(1, 4))
    if cls_name == "BatchNorm2d":
        shape = (n, c, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    else:
        shape = draw(st.sampled_from([(n, c), (n, c, draw(st.integers(1, 4)))]))
    if np.prod(shape) // c == 1:  # torch refuses a single value per channel in training (tested below)
        shape = (shape[0] + 1, *shape[1:])
    kw = {
        "momentum": draw(st.sampled_from([0.1, 0.5, None, 0.0, 1.0])),
        "eps": draw(st.sampled_from([1e-5, 1e-3])),
        "affine": draw(st.booleans()),
        "track_running_stats": draw(st.booleans()),
        "bias": draw(st.booleans()),
    }
    return cls_name, c, shape, kw


@SETTINGS
@given(case=bn_cases(), steps=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_batchnorm_train_then_eval_matches_torch(case, steps, seed):
    cls_name, c, shape, kw = case
    t, j = twins(cls_name, c, seed, **kw)
    assert repr(j) == repr(t)
    rng = np.random.default_rng(seed)
    for _ in range(steps):  # training forwards: batch statistics, running statistics move on the module
        x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
        assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), **TOL)
        assert_state_close(j, t, **TOL)
    if kw["track_running_stats"]:
        assert int(j.num_batches_tracked) == steps
    t.eval()
    j.eval()
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    before = {k: np.asarray(v) for k, v in j.state_dict().items()}
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), **TOL)  # running stats, or batch stats if untracked
    for k, v in j.state_dict().items():  # eval never changes the buffers
        np.testing.assert_array_equal(np.asarray(v), before[k])
    (jg, jx), (tg, tx) = grads_and_input_grad(j, x), torch_grads_and_input_grad(t, x)
    assert sorted(jg) == sorted(tg)
    for k in tg:
        assert_close(jg[k], tg[k], rtol=1e-3, atol=1e-3)
    assert_close(jx, tx, rtol=1e-3, atol=1e-3)


@SETTINGS
@given(case=bn_cases(), seed=st.integers(0, 2**16))
def test_batchnorm_training_gradients_match_torch(case, seed):
    cls_name, c, shape, kw = case
    t, j = twins(cls_name, c, seed, **kw)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    (jg, jx), (tg, tx) = grads_and_input_grad(j, x), torch_grads_and_input_grad(t, x)
    assert sorted(jg) == sorted(tg)
    for k in tg:
        assert_close(jg[k], tg[k], rtol=1e-3, atol=1e-3)
    assert_close(jx, tx, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_batchnorm1d_running_statistics_after_several_forwards(momentum, shape):
    t, j = twins("BatchNorm1d", 3, 1, momentum=momentum)
    t.num_batches_tracked.fill_(5)  # a loaded checkpoint's count: momentum=None averages over 1/(count+1)
    copy_torch_weights(j, t)
    rng = np.random.default_rng(2)
    for _ in range(4):
        x = (rng.standard_normal(shape) * 2 - 1).astype(np.float32)
        assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), **TOL)
    assert_state_close(j, t, **TOL)
    assert int(j.num_batches_tracked) == 9
    t.eval()
    j.eval()
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), **TOL)


def test_batchnorm2d_tutorial_block_and_helper_grads():
    t, j = twins("BatchNorm2d", 8, 3)
    x = np.random.default_rng(3).standard_normal((4, 8, 5, 5)).astype(np.float32)
    loss = lambda y: (y**3).sum()  # noqa: E731
    jg, tg = jnn_grads(j, jnp.asarray(x), loss), torch_grads(t, x, loss)
    for k in tg:
        assert_close(jg[k], tg[k], rtol=1e-3, atol=1e-3)


def test_batchnorm_untracked_statistics_stay_none_and_eval_uses_the_batch():
    t, j = twins("BatchNorm2d", 3, 4, track_running_stats=False)
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 4)).astype(np.float32)
    j(jnp.asarray(x))
    assert j.running_mean is None and j.running_var is None and j.num_batches_tracked is None
    j.eval()
    t.eval()
    out = j(jnp.asarray(x))
    assert_close(out, t(torch.from_numpy(x)), **TOL)
    assert_close(out.mean((0, 2, 3)), np.asarray(j.bias), atol=1e-5)  # normalised with the batch statistics
    assert list(j.state_dict()) == ["weight", "bias"]


def test_batchnorm_empty_batch_counts_but_keeps_statistics():
    for momentum in (0.1, None):
        t, j = twins("BatchNorm1d", 3, 5, momentum=momentum)
        x = np.zeros((0, 3), np.float32)
        out = j(jnp.asarray(x))
        assert out.shape == tuple(t(torch.from_numpy(x)).shape) == (0, 3)
        assert_state_close(j, t, rtol=0, atol=0)
        assert int(j.num_batches_tracked) == 1


# --- transformations: the module returned from jit, and jnn.split -----------------------------------------


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_under_jit_returns_the_updated_module(momentum):
    t, j = twins("BatchNorm2d", 3, 6, momentum=momentum)
    step = jax.jit(lambda m, v: (m(v), m))
    rng = np.random.default_rng(6)
    for _ in range(3):
        x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
        out, j = step(j, jnp.asarray(x))
        assert_close(out, t(torch.from_numpy(x)), **TOL)
    assert_state_close(j, t, **TOL)
    assert int(j.num_batches_tracked) == 3


def test_batchnorm_split_apply_returns_new_buffers_and_train_flag_overrides():
    t, j = twins("BatchNorm1d", 4, 7)
    x = np.random.default_rng(7).standard_normal((5, 4, 3)).astype(np.float32)
    j.eval()
    apply, params, buffers = jnn.split(j)
    out, new_buffers = jax.jit(apply, static_argnames="train")(params, buffers, jnp.asarray(x), train=True)
    assert_close(out, t(torch.from_numpy(x)), **TOL)  # t is in training mode
    theirs = torch_state(t)
    for k, v in new_buffers.items():
        assert_close(v, theirs[k], **TOL)
    assert int(j.num_batches_tracked) == 0  # the module itself is untouched by the pure call
    out_eval, same = apply(params, buffers, jnp.asarray(x))
    for k in buffers:
        np.testing.assert_array_equal(np.asarray(same[k]), np.asarray(buffers[k]))


# --- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls_name, shape", [
    ("BatchNorm1d", (3,)), ("BatchNorm1d", (2, 3, 4, 5)), ("BatchNorm2d", (3, 4, 4)), ("BatchNorm2d", (2, 3)),
    ("BatchNorm2d", (1, 2, 3, 4, 4)),
])
def test_batchnorm_wrong_rank_errors_match_torch(cls_name, shape):
    t, j = getattr(torch.nn, cls_name)(3), getattr(jnn, cls_name)(3)
    te, je = error_of(lambda: t(torch.zeros(shape))), error_of(lambda: j(jnp.zeros(shape)))
    assert je == te
    assert "expected" in je[1] and f"(got {len(shape)}D input)" in je[1]


@pytest.mark.parametrize("cls_name, shape", [("BatchNorm1d", (1, 3)), ("BatchNorm1d", (1, 3, 1)),
                                             ("BatchNorm2d", (1, 3, 1, 1))])
def test_batchnorm_single_value_per_channel_in_training(cls_name, shape):
    t, j = getattr(torch.nn, cls_name)(3), getattr(jnn, cls_name)(3)
    te, je = error_of(lambda: t(torch.ones(shape))), error_of(lambda: j(jnp.ones(shape)))
    assert je[0] is te[0] is ValueError
    assert je[1].startswith("Expected more than 1 value per channel when training, got input size")
    assert str(shape[0]) in je[1] and "3" in je[1]
    assert int(j.num_batches_tracked) == int(t.num_batches_tracked)  # torch counts before it raises
    # eval mode accepts a single value per channel
    t.eval()
    j.eval()
    x = np.full(shape, 2.0, np.float32)
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), **TOL)


def test_batchnorm_wrong_channel_count_raises():
    with pytest.raises(RuntimeError):
        torch.nn.BatchNorm2d(3)(torch.zeros(2, 4, 2, 2))
    with pytest.raises(ValueError, match="running_mean should contain 4 elements"):
        jnn.BatchNorm2d(3)(jnp.zeros((2, 4, 2, 2)))


# --- resets, dtype, device ---------------------------------------------------------------------------------


def test_batchnorm_reset_running_stats_and_parameters_match_torch():
    t, j = twins("BatchNorm2d", 3, 8)
    x = np.random.default_rng(8).standard_normal((2, 3, 2, 2)).astype(np.float32)
    j(jnp.asarray(x))
    t(torch.from_numpy(x))
    t.reset_running_stats()
    j.reset_running_stats()
    assert_state_close(j, t, rtol=0, atol=0)
    assert j.weight.tolist() != [1.0, 1.0, 1.0]  # parameters untouched by reset_running_stats
    t.reset_parameters()
    j.reset_parameters()
    assert_state_close(j, t, rtol=0, atol=0)
    assert [n for n, _ in j.named_parameters()] == ["weight", "bias"]  # still parameters after the reset
    check_state_dict_layout(j, t)


def test_batchnorm_dtype_and_device_arguments():
    bn = jnn.BatchNorm1d(3, dtype=jnp.bfloat16)
    for name in ("weight", "bias", "running_mean", "running_var"):
        assert getattr(bn, name).dtype == jnp.bfloat16, name
    assert jnp.issubdtype(bn.num_batches_tracked.dtype, jnp.integer)
    out = bn(jnp.ones((4, 3), jnp.bfloat16) * jnp.arange(4, dtype=jnp.bfloat16)[:, None])
    assert out.dtype == jnp.bfloat16 and bn.running_mean.dtype == jnp.bfloat16
    assert jnn.BatchNorm2d(2, dtype=torch.float16).weight.dtype == jnp.float16
    if not jax.config.jax_enable_x64:
        with pytest.raises(TypeError, match="jax_enable_x64"):
            jnn.BatchNorm2d(2, dtype=jnp.float64)
    cpu = jax.devices("cpu")[0]
    for device in ("cpu", cpu, torch.device("cpu")):
        bn = jnn.BatchNorm2d(2, device=device)
        assert all(v.devices() == {cpu} for v in bn.state_dict().values())
    if jax.devices()[0].platform == "cpu":
        with pytest.raises(RuntimeError, match="no GPU device"):
            jnn.BatchNorm2d(2, device="cuda")
