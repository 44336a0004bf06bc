"""Mixed precision: Module casts, float32 statistics in normalisation, jnn.amp policies against torch autocast."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from helpers import assert_close, copy_torch_weights, torch_state

import jnn
import jnn.functional as F

BF16 = {"rtol": 2e-2, "atol": 2e-2}  # a bfloat16 value carries 8 significant bits (relative step 2**-8 .. 2**-7)


def bf16_round(a: np.ndarray) -> np.ndarray:
    """The float32 values of ``a`` rounded to bfloat16, so that torch float32 and jnn bfloat16 see the same input."""
    return torch.from_numpy(np.asarray(a, np.float32)).bfloat16().float().numpy()


def torch_and_jnn(build):
    t = build(torch.nn)
    return t, copy_torch_weights(build(jnn), t)


def small_cnn(nn):
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.LayerNorm(4 * 6 * 6), nn.Linear(4 * 6 * 6, 3))


# -- Module.half() / .bfloat16() / .float() -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["half", "bfloat16", "float"])
def test_module_casts_match_torch(method):
    t, j = torch_and_jnn(small_cnn)
    with torch.no_grad():
        t(torch.randn(5, 1, 6, 6))  # move the running statistics and the batch counter away from their defaults
    j.load_state_dict(torch_state(t))
    getattr(t, method)()
    assert getattr(j, method)() is j
    ours, theirs = j.state_dict(), t.state_dict()
    assert list(ours) == list(theirs)
    names = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32", torch.int64: "int64"}
    for name, expected in theirs.items():
        if "num_batches_tracked" in name:  # integer buffers are untouched (int64 in torch, int32 without x64)
            assert expected.dtype == torch.int64 and ours[name].dtype == jnp.int32
            assert int(ours[name]) == int(expected) == 1
            continue
        want = {"half": "float16", "bfloat16": "bfloat16", "float": "float32"}[method]
        assert str(ours[name].dtype) == names[expected.dtype] == want, name
        # the same rounding as torch, bit for bit
        np.testing.assert_array_equal(np.asarray(ours[name].astype(jnp.float32)), expected.float().numpy())


def test_bfloat16_module_runs_in_bfloat16_like_torch():
    t, j = torch_and_jnn(small_cnn)
    t.bfloat16().eval()
    j.bfloat16().eval()
    x = bf16_round(np.random.default_rng(0).standard_normal((2, 1, 6, 6)))
    y = j(jnp.asarray(x, jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    assert_close(y.astype(jnp.float32), t(torch.from_numpy(x).bfloat16()).float(), **BF16)


# -- normalisation: float32 statistics for bfloat16 / float16 input ------------------------------------------


def norm_cases():
    return {
        "BatchNorm1d": (lambda nn: nn.BatchNorm1d(3), (8, 3, 16)),
        "BatchNorm2d": (lambda nn: nn.BatchNorm2d(3, momentum=None), (4, 3, 5, 5)),
        "InstanceNorm1d": (lambda nn: nn.InstanceNorm1d(3, affine=True, track_running_stats=True), (4, 3, 64)),
        "LayerNorm": (lambda nn: nn.LayerNorm((3, 16)), (4, 3, 16)),
        "GroupNorm": (lambda nn: nn.GroupNorm(3, 6), (4, 6, 32)),
        "RMSNorm": (lambda nn: nn.RMSNorm(16), (4, 3, 16)),
    }


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")  # torch's RMSNorm, bf16 input
@pytest.mark.parametrize("name", list(norm_cases()))
@pytest.mark.parametrize("train", [True, False])
def test_norm_layers_take_low_precision_input_with_float32_statistics(name, train):
    build, shape = norm_cases()[name]
    t, j = torch_and_jnn(build)
    rng = np.random.default_rng(1)
    with torch.no_grad():  # random affine parameters, so that a wrong cast would show
        for p in t.parameters():
            p.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, p.shape).astype(np.float32)))
    j.load_state_dict(torch_state(t))
    t.train(train)
    j.train(train)
    # a large offset: a mean accumulated in bfloat16 would be off by far more than the tolerance
    x = bf16_round(rng.standard_normal(shape) * 2.0 + 30.0)
    for _ in range(2):
        y = j(jnp.asarray(x, jnp.bfloat16))
        with torch.no_grad():
            y_bf16 = t(torch.from_numpy(x).bfloat16())  # torch CPU: bfloat16 input, float32 parameters/statistics
        assert y.dtype == jnp.bfloat16 and y_bf16.dtype == torch.bfloat16
        assert_close(y.astype(jnp.float32), y_bf16.float(), **BF16)
    for k, v in j.state_dict().items():  # running statistics stay float32 and move exactly as torch's do
        expected = torch_state(t)[k]
        assert v.dtype == (jnp.int32 if "num_batches" in k else jnp.float32), k
        assert_close(v, expected, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # and the output is torch's float32 answer on the same input, to bfloat16 precision
        t_f32 = torch_and_jnn(build)[0]
        t_f32.load_state_dict(t.state_dict())
        t_f32.train(False)
        j.train(False)
        assert_close(j(jnp.asarray(x, jnp.bfloat16)).astype(jnp.float32), t_f32(torch.from_numpy(x)),
                     rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_functional_norms_accumulate_in_float32(dtype):
    rng = np.random.default_rng(2)
    x32 = rng.standard_normal((6, 4, 40)) * 0.5 + 20.0
    x = jnp.asarray(x32, dtype)
    xt = torch.from_numpy(np.array(x.astype(jnp.float32)))  # the same rounded values, in float32
    w, b = rng.uniform(0.5, 1.5, 4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    wt, bt = torch.from_numpy(w), torch.from_numpy(b)
    tol = {"rtol": 1e-2, "atol": 2e-2}

    y, m, v = F.batch_norm_with_stats(x, rm, rv, w, b, training=True)
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    expected = torch.nn.functional.batch_norm(xt, trm, trv, wt, bt, training=True)
    assert y.dtype == dtype and m.dtype == v.dtype == jnp.float32
    assert_close(y.astype(jnp.float32), expected, **tol)
    assert_close(m, trm, rtol=1e-6, atol=1e-6)
    assert_close(v, trv, rtol=1e-5, atol=1e-6)
    # running statistics keep their own dtype: low-precision buffers stay low precision
    _, m16, v16 = F.batch_norm_with_stats(x, rm.astype(dtype), rv.astype(dtype), training=True)
    assert m16.dtype == v16.dtype == dtype

    y, m, v = F.instance_norm_with_stats(x, rm, rv, w, b)
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    expected = torch.nn.functional.instance_norm(xt, trm, trv, wt, bt, use_input_stats=True)
    assert y.dtype == dtype and m.dtype == v.dtype == jnp.float32
    assert_close(y.astype(jnp.float32), expected, **tol)
    assert_close(m, trm, rtol=1e-6, atol=1e-6)
    assert_close(v, trv, rtol=1e-5, atol=1e-6)

    for ours, theirs in (
        (F.layer_norm(x, (40,)), torch.nn.functional.layer_norm(xt, (40,))),
        (F.group_norm(x, 2, w, b), torch.nn.functional.group_norm(xt, 2, wt, bt)),
        (F.rms_norm(x - 20, (40,)), torch.nn.functional.rms_norm(xt - 20, (40,))),
        (F.batch_norm(x, jnp.asarray(rm + 20), jnp.asarray(rv)), torch.nn.functional.batch_norm(
            xt, torch.from_numpy(rm + 20), torch.from_numpy(rv))),
        (F.instance_norm(x), torch.nn.functional.instance_norm(xt)),
    ):
        assert ours.dtype == dtype
        assert_close(ours.astype(jnp.float32), theirs, **tol)
        assert bool(jnp.abs(ours.astype(jnp.float32)).max() > 0.5)  # not a degenerate all-zero output


# -- policies ------------------------------------------------------------------------------------------------


def test_policy_dtypes_and_errors():
    policy = jnn.amp.Policy(torch.bfloat16, "float32", np.float32)  # torch dtypes and names work too
    assert (policy.compute_dtype, policy.param_dtype, policy.output_dtype) == (jnp.bfloat16, jnp.float32,
                                                                                jnp.float32)
    assert policy == jnn.amp.Policy() and hash(policy) == hash(jnn.amp.Policy())
    tree = {"w": jnp.ones(2), "ids": jnp.arange(2), "mask": jnp.ones(2, bool), "n": np.ones(2, np.float16)}
    cast = policy.cast_to_compute(tree)
    assert [cast[k].dtype for k in tree] == [jnp.bfloat16, jnp.int32, jnp.bool_, jnp.bfloat16]
    assert policy.cast_to_param(cast)["w"].dtype == jnp.float32
    for bad in (jnp.int32, "int8", jnp.bool_, None, jnp.complex64, "cpu"):
        with pytest.raises(TypeError, match=r"jnn.amp.Policy: compute_dtype must be a floating-point dtype"):
            jnn.amp.Policy(compute_dtype=bad)
    with pytest.raises(TypeError, match="output_dtype must be a floating-point dtype"):
        jnn.amp.Policy(output_dtype=jnp.int32)
    with pytest.raises(TypeError, match="needs 64-bit mode"):
        jnn.amp.Policy(param_dtype=jnp.float64)
    with pytest.raises(TypeError, match="not a context manager like torch.autocast"):
        jnn.amp.autocast("cpu", dtype=jnp.bfloat16)
    with pytest.raises(TypeError, match="not a context manager like torch.autocast"):
        jnn.amp.autocast(jnp.bfloat16)
    with pytest.raises(TypeError, match="expected the apply function of jnn.split or a jnn.Module"):
        policy.wrap(lambda x: x)
    with pytest.raises(TypeError, match="compute_dtype must be a floating-point dtype"):
        jnn.amp.autocast(jnn.Linear(2, 2), dtype=jnp.int8)
    half = jnn.Linear(2, 2).bfloat16()
    with pytest.raises(TypeError, match=r"parameter 'weight' is bfloat16, but the policy's param_dtype is float32"):
        jnn.amp.autocast(half)(jnp.ones(2))
    apply, params, buffers = jnn.split(half)
    out, _ = jnn.amp.autocast(apply)(policy.cast_to_param(params), buffers, jnp.ones(2))  # master weights: fine
    assert out.dtype == jnp.float32
    bf16_masters = jnn.amp.Policy(jnp.bfloat16, param_dtype=jnp.bfloat16).wrap(apply)
    assert bf16_masters(params, buffers, jnp.ones(2))[0].dtype == jnp.float32


def test_autocast_apply_matches_torch_autocast():
    build = lambda nn: nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))  # noqa: E731
    t, j = torch_and_jnn(build)
    x = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = t(torch.from_numpy(x))
    assert expected.dtype == torch.bfloat16
    apply, params, buffers = jnn.split(j)
    out, new_buffers = jax.jit(jnn.amp.autocast(apply))(params, buffers, jnp.asarray(x))
    assert out.dtype == jnp.float32 and new_buffers == {}
    assert_close(out, expected.float(), **BF16)
    # it really computed in bfloat16: further from the float32 answer than float32 rounding, but within bf16's
    exact = t(torch.from_numpy(x)).detach().numpy()
    err = float(np.abs(np.asarray(out) - exact).max())
    assert 1e-5 < err < 5e-2


def test_autocast_keeps_buffers_and_frozen_parameters_in_their_dtypes():
    jnn.manual_seed(0)
    net = jnn.Sequential(jnn.Linear(4, 6), jnn.BatchNorm1d(6), jnn.Linear(6, 2))
    net[0].requires_grad_(False)
    apply, params, buffers = jnn.split(net)
    mixed = jnn.amp.Policy(jnp.bfloat16).wrap(apply)
    x = jnp.asarray(np.random.default_rng(4).standard_normal((8, 4)), jnp.float32)
    out, new_buffers = mixed(params, buffers, x, train=True)
    assert out.dtype == jnp.float32
    assert new_buffers["0.weight"] is buffers["0.weight"]  # frozen: handed back untouched, still float32
    apply, mixed = jax.jit(apply, static_argnames="train"), jax.jit(mixed, static_argnames="train")
    assert new_buffers["1.running_mean"].dtype == new_buffers["1.running_var"].dtype == jnp.float32
    assert int(new_buffers["1.num_batches_tracked"]) == 1
    _, f32_buffers = apply(params, buffers, x, train=True)
    for k in ("1.running_mean", "1.running_var"):
        assert_close(new_buffers[k], f32_buffers[k], rtol=2e-2, atol=2e-2)
        assert not np.array_equal(np.asarray(new_buffers[k]), np.asarray(buffers[k]))
    grads = jax.grad(lambda p: mixed(p, buffers, x, train=True)[0].sum())(params)
    assert sorted(grads) == sorted(params) and all(g.dtype == jnp.float32 for g in grads.values())
    f32_grads = jax.grad(lambda p: apply(p, buffers, x, train=True)[0].sum())(params)
    for k in grads:
        assert_close(grads[k], f32_grads[k], rtol=5e-2, atol=5e-2)
    apply, _, _ = jnn.split(net)
    mixed = jnn.amp.Policy(jnp.bfloat16).wrap(apply)  # hashable and comparable, as a static jit argument must be
    assert mixed == jnn.amp.Policy(jnp.bfloat16).wrap(apply) and hash(mixed) == hash(jnn.amp.autocast(apply))
    assert mixed != jnn.amp.autocast(apply, jnp.float16) and mixed != apply
    assert mixed.param_names == apply.param_names and mixed.buffer_names == apply.buffer_names
    assert isinstance(jnn.merge(mixed.apply, params, new_buffers), jnn.Sequential)


def test_autocast_passes_key_and_integer_inputs_through():
    jnn.manual_seed(1)
    net = jnn.Sequential(jnn.Embedding(10, 8), jnn.Dropout(0.5), jnn.Linear(8, 3))
    apply, params, buffers = jnn.split(net)
    ids = jnp.array([[1, 2, 3], [4, 5, 9]])
    key = jax.random.key(0)
    mixed = jax.jit(jnn.amp.autocast(apply, dtype=jnp.float16), static_argnames="train")
    apply = jax.jit(apply, static_argnames="train")
    out, _ = mixed(params, buffers, ids, train=True, key=key)
    ref, _ = apply(params, buffers, ids, train=True, key=key)
    assert out.dtype == jnp.float32
    assert_close(out, ref, rtol=5e-3, atol=5e-3)  # same dropout mask from the same key; float16 rounding only
    assert not np.allclose(np.asarray(out), np.asarray(apply(params, buffers, ids, train=True,
                                                             key=jax.random.key(1))[0]))


def test_autocast_module_path_eager_and_jit():
    jnn.manual_seed(2)
    net = jnn.Sequential(jnn.Linear(3, 5), jnn.BatchNorm1d(5))
    twin = jnn.Sequential(jnn.Linear(3, 5), jnn.BatchNorm1d(5))
    twin.load_state_dict(net.state_dict())
    x = jnp.asarray(np.random.default_rng(5).standard_normal((6, 3)), jnp.float32)
    y = jnn.amp.autocast(net)(x)  # eager: like net(x), the running statistics move on net itself
    assert y.dtype == jnp.float32 and net[0].weight.dtype == jnp.float32
    assert net[1].running_mean.dtype == jnp.float32 and int(net[1].num_batches_tracked) == 1
    assert_close(y, twin(x), **BF16)
    assert_close(net[1].running_mean, twin[1].running_mean, rtol=1e-2, atol=1e-2)
    assert not np.allclose(np.asarray(net[1].running_mean), 0.0)
    y2, out_net = jax.jit(lambda m, x: (jnn.amp.autocast(m)(x), m))(net, x)  # module as a pytree
    assert int(out_net[1].num_batches_tracked) == 2 and out_net[1].running_var.dtype == jnp.float32
    assert int(net[1].num_batches_tracked) == 1  # the module passed in is not changed
    assert_close(y2, y, rtol=1e-2, atol=1e-2)
    with pytest.raises(RuntimeError, match="captured by a closure"):
        jax.jit(lambda x: jnn.amp.autocast(net)(x))(x)


def train(policy: jnn.amp.Policy | None, steps: int = 50):
    jnn.manual_seed(0)
    net = small_cnn(jnn)
    apply, params, buffers = jnn.split(net)
    run = apply if policy is None else policy.wrap(apply)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((32, 1, 6, 6)), jnp.float32)
    y = jnp.asarray(np.argmax(np.asarray(x).reshape(32, -1)[:, :3] * [1.0, 2.0, 3.0], 1))
    opt = optax.adam(3e-3)

    @jax.jit
    def step(params, buffers, opt_state):
        def loss_fn(p):
            out, new_buffers = run(p, buffers, x, train=True)
            return optax.softmax_cross_entropy_with_integer_labels(out, y).mean(), new_buffers  # float32 loss

        (loss, buffers), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), buffers, opt_state, loss

    opt_state, losses = opt.init(params), []
    for _ in range(steps):
        params, buffers, opt_state, loss = step(params, buffers, opt_state)
        losses.append(float(loss))
    return np.array(losses), params, buffers


def test_bfloat16_training_tracks_float32_training():
    losses32, params32, buffers32 = train(None)
    losses16, params16, buffers16 = train(jnn.amp.Policy(compute_dtype=jnp.bfloat16))
    assert losses32[-1] < 0.3 * losses32[0] and losses16[-1] < 0.3 * losses16[0]  # both learn
    np.testing.assert_allclose(losses16, losses32, rtol=0.1, atol=0.02)  # and stay close all the way
    assert all(v.dtype == jnp.float32 for v in params16.values())  # master weights stay float32
    assert buffers16["1.running_mean"].dtype == buffers16["1.running_var"].dtype == jnp.float32
    assert int(buffers16["1.num_batches_tracked"]) == 50
    assert_close(buffers16["1.running_mean"], buffers32["1.running_mean"], rtol=0.05, atol=0.05)
    assert not np.array_equal(np.asarray(params16["5.weight"]), np.asarray(params32["5.weight"]))  # really bf16

