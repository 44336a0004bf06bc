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


# --- BatchNorm3d -------------------------------------------------------------------------------------------


@settings(max_examples=8, deadline=None)
@given(n=st.sampled_from([1, 2]), c=st.sampled_from([1, 3]), spatial=st.sampled_from([(2, 1, 3)]),
       kw=st.sampled_from(CONFIGS), seed=st.integers(0, 2**16))
def test_batchnorm3d_train_eval_and_grads_match_torch(n, c, spatial, kw, seed):
    t, j = twins("BatchNorm3d", c, seed, **kw)
    assert repr(j) == repr(t)
    check_state_dict_layout(j, t)
    rng = np.random.default_rng(seed)
    shape = (n, c, *spatial)
    for _ in range(2):
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), **TOL)
        assert_state_close(j, t, **TOL)
    t.eval()
    j.eval()
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), **TOL)
    (jg, jx), (tg, tx) = grads_and_input_grad(j, x), torch_grads_and_input_grad(t, x)
    for k in tg:
        assert_close(jg[k], tg[k], rtol=1e-3, atol=1e-3)
    assert_close(jx, tx, rtol=1e-3, atol=1e-3)
    te, je = error_of(lambda: t(torch.zeros(c, 2, 2, 2))), error_of(lambda: j(jnp.zeros((c, 2, 2, 2))))
    assert je == te


def test_batchnorm_low_precision_statistics_in_float32():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((512, 2)) + 50.0, jnp.bfloat16)
    bn = jnn.BatchNorm1d(2, dtype=jnp.bfloat16)
    y = bn(x)
    x64 = np.asarray(x.astype(jnp.float32), np.float64)
    ref = (x64 - x64.mean(0)) / np.sqrt(x64.var(0) + 1e-5)
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float64), ref, rtol=1e-2, atol=3e-2)
    np.testing.assert_allclose(np.asarray(bn.running_mean, np.float64), 0.1 * x64.mean(0), rtol=1e-2)


# --- LazyBatchNorm -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims, shape", [(1, (4, 3)), (1, (2, 3, 5)), (2, (2, 3, 2, 2)), (3, (2, 3, 1, 2, 2))])
@pytest.mark.parametrize("kw", [{}, {"affine": False}, {"track_running_stats": False, "momentum": None},
                                {"bias": False, "eps": 1e-3}])
def test_lazy_batchnorm_infers_num_features_and_becomes_batchnorm(dims, shape, kw):
    t, j = getattr(torch.nn, f"LazyBatchNorm{dims}d")(**kw), getattr(jnn, f"LazyBatchNorm{dims}d")(**kw)
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(t.state_dict())
    assert j.has_uninitialized_params()
    x = np.random.default_rng(dims).standard_normal(shape).astype(np.float32)
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), **TOL)
    assert type(j) is getattr(jnn, f"BatchNorm{dims}d") and type(t).__name__ == type(j).__name__
    assert repr(j) == repr(t) and j.num_features == shape[1]
    assert_state_close(j, t, **TOL)
    check_state_dict_layout(j, t)
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), **TOL)  # a second call: plain batch norm now
    assert_state_close(j, t, **TOL)
    jax.jit(lambda m, v: m(v))(j, jnp.asarray(x))  # an initialised module runs under jit


def test_lazy_batchnorm_under_jit_before_init_raises_and_load_state_dict_sizes_it():
    j = jnn.LazyBatchNorm2d()
    with pytest.raises(RuntimeError, match="LazyBatchNorm2d: num_features is inferred from the first input"):
        jax.jit(lambda m, v: m(v))(j, jnp.ones((2, 3, 2, 2)))
    assert type(j) is jnn.LazyBatchNorm2d and j.has_uninitialized_params()
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        j(jnp.ones((2, 3)))
    t = torch.nn.BatchNorm2d(3)
    t.running_mean.fill_(0.5)
    j.load_state_dict(torch_state(t))
    assert type(j) is jnn.BatchNorm2d and j.num_features == 3
    assert_state_close(j, t, rtol=0, atol=0)
    j.weight = j.weight * 2
    j.reset_parameters()
    assert j.weight.tolist() == [1.0] * 3


# --- SyncBatchNorm -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [{}, {"momentum": None, "bias": False}, {"affine": False, "eps": 1e-3},
                                {"track_running_stats": False}])
def test_sync_batchnorm_repr_and_plain_behaviour_without_axis(kw):
    t, j = torch.nn.SyncBatchNorm(3, **kw), jnn.SyncBatchNorm(3, **kw)
    assert repr(j) == repr(t)
    check_state_dict_layout(j, t)
    bn, _ = twins("BatchNorm1d", 3, 0, **kw)
    copy_torch_weights(j, bn)
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32)  # any rank >= 2
    xt = torch.from_numpy(x).reshape(4, 3, 4)
    assert_close(j(jnp.asarray(x)), bn(xt).reshape(4, 3, 2, 2), **TOL)
    assert_state_close(j, bn, **TOL)
    assert error_of(lambda: j(jnp.ones(3))) == error_of(lambda: t(torch.ones(3)))
    assert error_of(lambda: j(jnp.ones((2, 0)))) == error_of(lambda: t(torch.ones(2, 0)))
    assert jnn.SyncBatchNorm(3, process_group="ignored", axis_name="b").axis_name == "b"


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(4, 2, 3), (3, 5, 3, 2)])
def test_sync_batchnorm_under_vmap_uses_whole_batch_statistics(momentum, shape):
    """Shards along vmap's named axis: the statistics equal those of the concatenated batch, like torch."""
    c = shape[2]
    t, _ = twins("BatchNorm1d", c, 3, momentum=momentum)
    j = copy_torch_weights(jnn.SyncBatchNorm(c, momentum=momentum, axis_name="batch"), t)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32) * 2 + 1  # (shards, n, C, *)
    whole = torch.from_numpy(x.reshape(-1, *shape[2:]))
    step = jax.vmap(lambda m, v: (m(v), m), in_axes=(None, 0), out_axes=(0, None), axis_name="batch")
    for _ in range(2):
        out, j = step(j, jnp.asarray(x))
        assert_close(np.asarray(out).reshape(-1, *shape[2:]), t(whole), **TOL)
        assert_state_close(j, t, **TOL)
    # without the named axis each shard would use its own statistics, which differ
    plain = copy_torch_weights(jnn.SyncBatchNorm(c, track_running_stats=False), torch.nn.BatchNorm1d(
        c, track_running_stats=False))
    local = jax.vmap(lambda v: plain(v))(jnp.asarray(x))
    assert not np.allclose(np.asarray(local), np.asarray(out), atol=1e-3)
    j.eval()
    t.eval()
    out = jax.vmap(lambda v: j(v), axis_name="batch")(jnp.asarray(x))  # eval: running statistics, no collective
    assert_close(np.asarray(out).reshape(-1, *shape[2:]), t(whole), **TOL)
    j.train()
    t.train()
    # gradients through the cross-shard statistics match torch's on the whole batch
    apply, params, buffers = jnn.split(j)
    w = np.random.default_rng(4).standard_normal(shape).astype(np.float32)

    def loss(p, v):
        y = jax.vmap(lambda u: apply(p, buffers, u)[0], axis_name="batch")(v)
        return (y * w).sum()

    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, jnp.asarray(x))
    tx = whole.clone().requires_grad_(True)
    t.zero_grad()
    (t(tx) * torch.from_numpy(w.reshape(-1, *shape[2:]))).sum().backward()
    for k, p in t.named_parameters():
        assert_close(gp[k], p.grad, rtol=1e-3, atol=1e-4)
    assert_close(np.asarray(gx).reshape(tx.shape), tx.grad, rtol=1e-3, atol=1e-4)


def test_convert_sync_batchnorm_keeps_state_and_mode():
    net = jnn.Sequential(jnn.Linear(3, 4), jnn.BatchNorm1d(4, momentum=None),
                         jnn.Sequential(jnn.BatchNorm1d(4, affine=False)))
    net(jnp.ones((2, 3)) * jnp.arange(2.0)[:, None])
    net.eval()
    before = {k: np.asarray(v) for k, v in net.state_dict().items()}
    out = jnn.SyncBatchNorm.convert_sync_batchnorm(net, axis_name="data")
    assert type(out[1]) is jnn.SyncBatchNorm and type(out[2][0]) is jnn.SyncBatchNorm
    assert out[1].axis_name == "data" and out[1].momentum is None and not out[1].training
    assert out[2][0].weight is None and type(out[0]) is jnn.Linear
    after = out.state_dict()
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(np.asarray(after[k]), before[k])
    tnet = torch.nn.Sequential(torch.nn.BatchNorm1d(4))
    assert repr(jnn.SyncBatchNorm.convert_sync_batchnorm(jnn.Sequential(jnn.BatchNorm1d(4)))) == repr(
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(tnet))
