"""Conv2d against torch.nn.Conv2d: repr, state dict, outputs and gradients over many arguments, errors, init."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights, jnn_grads, torch_grads, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn

SETTINGS = settings(max_examples=15, deadline=None)


def error_of(fn) -> tuple[type, str]:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    raise AssertionError("no error raised")


def sorted_sets(text: str) -> str:
    """Python prints a set of strings in hash order; sort set literals so messages compare across processes."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", text)


def grads_and_input_grad(module, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """d/d(params, x) of sum(module(x) ** 2) through jnn.split, in one jitted call."""
    apply, params, buffers = jnn.split(module)
    loss = lambda p, v: (apply(p, buffers, v)[0] ** 2).sum()  # noqa: E731
    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, jnp.asarray(x))
    return {k: np.asarray(v) for k, v in gp.items()}, np.asarray(gx)


def torch_grads_and_input_grad(module, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    module.zero_grad()
    (module(tx) ** 2).sum().backward()
    return {k: p.grad.numpy().copy() for k, p in module.named_parameters()}, tx.grad.numpy()


# --- constructor arguments, drawn so that torch accepts them ------------------------------------------------


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


int_or_pair = lambda lo, hi: st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))  # noqa: E731


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    kw = {
        "in_channels": groups * draw(st.integers(1, 2)),
        "out_channels": groups * draw(st.integers(1, 2)),
        "kernel_size": draw(int_or_pair(1, 3)),
        "dilation": draw(int_or_pair(1, 2)),
        "groups": groups,
        "bias": draw(st.booleans()),
        "padding_mode": draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])),
    }
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), int_or_pair(0, 2)))
    kw["padding"] = padding
    kw["stride"] = 1 if padding == "same" else draw(int_or_pair(1, 3))
    return kw


def pads_per_dim(kw) -> list[tuple[int, int]]:
    k, d = (_pair(kw[a]) for a in ("kernel_size", "dilation"))
    if kw["padding"] == "valid":
        return [(0, 0), (0, 0)]
    if kw["padding"] == "same":
        return [(t // 2, t - t // 2) for t in (d[i] * (k[i] - 1) for i in range(2))]
    p = _pair(kw["padding"])
    return [(p[0], p[0]), (p[1], p[1])]


def smallest_size(kw, dim: int) -> int:
    """The smallest input size along a spatial dim that torch accepts for this config."""
    k, d = (_pair(kw[a])[dim] for a in ("kernel_size", "dilation"))
    lo, hi = pads_per_dim(kw)[dim]
    size = max(1, d * (k - 1) + 1 - lo - hi)
    if kw["padding_mode"] == "reflect":
        size = max(size, lo + 1, hi + 1)
    if kw["padding_mode"] == "circular":
        size = max(size, lo, hi)
    return size


# --- repr and state dict -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [
    {},
    {"padding": 1},
    {"padding": (1, 2), "dilation": (2, 1), "groups": 2, "bias": False},
    {"padding": "same", "padding_mode": "reflect"},
    {"padding": "valid", "stride": (2, 1), "padding_mode": "circular"},
    {"kernel_size": [2, 3], "padding": [0, 1], "padding_mode": "replicate"},
])
def test_conv2d_repr_and_state_dict_of_named_configs(kw):
    kw = {"in_channels": 4, "out_channels": 6, "kernel_size": 3, **kw}
    t, j = torch.nn.Conv2d(**kw), jnn.Conv2d(**kw)
    assert repr(j) == repr(t)
    ours, theirs = j.state_dict(), torch_state(t)
    assert list(ours) == list(theirs)
    for k in theirs:
        assert ours[k].shape == theirs[k].shape and ours[k].dtype == theirs[k].dtype, k
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                 "padding_mode", "transposed", "output_padding"):
        assert getattr(j, attr) == getattr(t, attr), attr
    assert list(j._reversed_padding_repeated_twice) == list(t._reversed_padding_repeated_twice)
    copy_torch_weights(j, t)
    x = np.random.default_rng(0).standard_normal((2, 4, 7, 6)).astype(np.float32)
    for mode in ("train", "eval"):  # no mode-dependent behaviour
        getattr(t, mode)()
        getattr(j, mode)()
        assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), rtol=1e-4, atol=1e-4)


def test_conv2d_repr_literal_text():
    assert repr(jnn.Conv2d(1, 20, 3)) == "Conv2d(1, 20, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(jnn.Conv2d(2, 4, 3, padding="same", dilation=2, groups=2, bias=False, padding_mode="reflect")) == (
        "Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=same, dilation=(2, 2), groups=2, bias=False, "
        "padding_mode=reflect)"
    )


# --- numerics ----------------------------------------------------------------------------------------------


@SETTINGS
@given(kw=conv_configs(), batch=st.sampled_from([None, 0, 1, 2]), extra=st.tuples(st.integers(0, 4),
       st.integers(0, 4)), seed=st.integers(0, 2**16))
def test_conv2d_outputs_and_gradients_match_torch(kw, batch, extra, seed):
    t = torch.nn.Conv2d(**kw)
    j = copy_torch_weights(jnn.Conv2d(**kw), t)
    assert repr(j) == repr(t)
    h, w = smallest_size(kw, 0) + extra[0], smallest_size(kw, 1) + extra[1]
    shape = (kw["in_channels"], h, w) if batch is None else (batch, kw["in_channels"], h, w)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    try:
        expected = t(torch.from_numpy(x))
    except RuntimeError:  # torch rejects some empty batches with non-zero padding modes: so must we
        with pytest.raises(Exception):  # noqa: B017
            j(jnp.asarray(x))
        return
    out = j(jnp.asarray(x))
    assert out.shape == tuple(expected.shape) and out.dtype == jnp.float32
    assert_close(out, expected, rtol=1e-4, atol=1e-4)
    if x.size == 0:
        return
    (jg, jx), (tg, tx) = grads_and_input_grad(j, x), torch_grads_and_input_grad(t, x)
    assert sorted(jg) == sorted(tg)
    for k in tg:
        assert_close(jg[k], tg[k], rtol=1e-3, atol=1e-3)
    assert_close(jx, tx, rtol=1e-3, atol=1e-3)


def test_conv2d_tutorial_layer_eager_jit_and_helper_grads():
    t = torch.nn.Conv2d(1, 20, 3)
    j = copy_torch_weights(jnn.Conv2d(1, 20, 3), t)
    x = np.random.default_rng(0).standard_normal((2, 1, 12, 12)).astype(np.float32)
    expected = t(torch.from_numpy(x))
    assert_close(j(jnp.asarray(x)), expected, rtol=1e-4, atol=1e-4)
    assert_close(jax.jit(lambda m, v: m(v))(j, jnp.asarray(x)), expected, rtol=1e-4, atol=1e-4)
    jg, tg = jnn_grads(j, jnp.asarray(x)), torch_grads(t, x)
    for k in tg:
        assert_close(jg[k], tg[k], rtol=1e-3, atol=1e-3)


def test_conv2d_same_padding_with_even_kernel_puts_the_extra_row_at_the_end():
    kw = {"in_channels": 1, "out_channels": 1, "kernel_size": (2, 4), "padding": "same", "bias": False}
    for mode in ("zeros", "reflect", "replicate", "circular"):
        t = torch.nn.Conv2d(**kw, padding_mode=mode)
        j = copy_torch_weights(jnn.Conv2d(**kw, padding_mode=mode), t)
        x = np.arange(30, dtype=np.float32).reshape(1, 1, 5, 6)
        out = j(jnp.asarray(x))
        assert out.shape == (1, 1, 5, 6)
        assert_close(out, t(torch.from_numpy(x)), rtol=1e-4, atol=1e-4)


def test_conv2d_subclass_overriding_forward_through_conv_forward():
    def build(nn):
        class ScaledConv(nn.Conv2d):  # the weight-standardisation pattern: transform the weight, then convolve
            def forward(self, x):
                return self._conv_forward(x, self.weight * 2, self.bias)

        return ScaledConv(3, 4, 3, padding=1, padding_mode="reflect")

    t, j = build(torch.nn), build(jnn)
    copy_torch_weights(j, t)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), rtol=1e-4, atol=1e-4)


def test_conv2d_reset_parameters_redraws_within_the_bound():
    jnn.manual_seed(0)
    conv = jnn.Conv2d(64, 256, 3, groups=4)
    old = np.asarray(conv.weight)
    conv.reset_parameters()
    w, bound = np.asarray(conv.weight, np.float64), 1 / np.sqrt(16 * 9)
    assert not np.array_equal(w, old) and w.shape == old.shape
    assert np.abs(w).max() <= bound and abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound / np.sqrt(3)
    assert np.abs(np.asarray(conv.bias)).max() <= bound
    assert [n for n, _ in conv.named_parameters()] == ["weight", "bias"]


# --- constructor errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [
    {"groups": 3},                                   # in_channels not divisible
    {"in_channels": 6, "groups": 4},                 # in_channels not divisible
    {"in_channels": 4, "out_channels": 6, "groups": 4},  # out_channels not divisible
    {"groups": 0},
    {"groups": -2},
    {"padding": "full"},
    {"padding": "SAME"},
    {"padding": "same", "stride": 2},
    {"padding": "same", "stride": (1, 2)},
    {"padding_mode": "mirror"},
    {"padding_mode": "zero"},
])
def test_conv2d_constructor_errors_match_torch(kw):
    kw = {"in_channels": 4, "out_channels": 8, "kernel_size": 3, **kw}
    te, je = error_of(lambda: torch.nn.Conv2d(**kw)), error_of(lambda: jnn.Conv2d(**kw))
    assert je[0] is te[0]
    assert sorted_sets(je[1]) == sorted_sets(te[1])


def test_conv2d_forward_rejects_wrong_rank_and_channels():
    conv = jnn.Conv2d(3, 4, 3)
    for bad in (jnp.ones((2, 3, 5, 5, 5)), jnp.ones((3, 5)), jnp.ones((2, 2, 5, 5))):
        with pytest.raises(ValueError, match="conv2d"):
            conv(bad)
        with pytest.raises(RuntimeError):
            torch.nn.Conv2d(3, 4, 3)(torch.ones(bad.shape))


# --- initialisation and factory arguments ------------------------------------------------------------------


@pytest.mark.parametrize("kw, fan_in", [
    ({"in_channels": 64, "out_channels": 256, "kernel_size": 3}, 576),
    ({"in_channels": 64, "out_channels": 256, "kernel_size": (3, 5), "groups": 4}, 240),
])
def test_conv2d_default_init_is_uniform_within_one_over_sqrt_fan_in(kw, fan_in):
    jnn.manual_seed(0)
    conv = jnn.Conv2d(**kw)
    bound = 1 / np.sqrt(fan_in)
    for name, tol in (("weight", 0.02), ("bias", 0.15)):
        v = np.asarray(getattr(conv, name), np.float64)
        assert np.abs(v).max() <= bound, name
        assert np.abs(v).max() > 0.95 * bound, name
        assert abs(v.std() - bound / np.sqrt(3)) < tol * bound / np.sqrt(3), name
    tw = torch.nn.Conv2d(**kw).weight.detach().numpy()  # the oracle agrees on the bound
    assert np.abs(tw).max() <= bound and np.abs(tw).max() > 0.95 * bound


def test_conv2d_key_dtype_device():
    k = jax.random.key(7)
    a, b = jnn.Conv2d(2, 3, 3, key=k), jnn.Conv2d(2, 3, 3, key=k)
    np.testing.assert_array_equal(np.asarray(a.weight), np.asarray(b.weight))
    np.testing.assert_array_equal(np.asarray(a.bias), np.asarray(b.bias))
    assert not np.allclose(np.asarray(a.weight), np.asarray(jnn.Conv2d(2, 3, 3, key=jax.random.key(8)).weight))
    jnn.manual_seed(5)
    c = jnn.Conv2d(2, 3, 3)
    jnn.manual_seed(5)
    np.testing.assert_array_equal(np.asarray(c.weight), np.asarray(jnn.Conv2d(2, 3, 3).weight))

    half = jnn.Conv2d(2, 3, 3, dtype=jnp.bfloat16)
    assert half.weight.dtype == jnp.bfloat16 and half.bias.dtype == jnp.bfloat16
    assert half(jnp.ones((1, 2, 5, 5), jnp.bfloat16)).dtype == jnp.bfloat16
    assert jnn.Conv2d(2, 3, 3, bias=False, dtype=torch.float16).weight.dtype == jnp.float16
    if not jax.config.jax_enable_x64:
        with pytest.raises(TypeError, match="jax_enable_x64"):
            jnn.Conv2d(2, 3, 3, dtype=jnp.float64)
    with pytest.raises(TypeError, match="Conv2d only accepts floating point"):
        jnn.Conv2d(2, 3, 3, dtype=jnp.int8)

    cpu = jax.devices("cpu")[0]
    for device in ("cpu", cpu, torch.device("cpu")):
        conv = jnn.Conv2d(2, 3, 3, device=device)
        assert conv.weight.devices() == {cpu} and conv.bias.devices() == {cpu}
    if jax.devices()[0].platform == "cpu":
        with pytest.raises(RuntimeError, match="no GPU device"):
            jnn.Conv2d(2, 3, 3, device="cuda")
