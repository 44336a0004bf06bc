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


# === Conv1d / Conv3d, ConvTranspose1d/2d/3d, the Lazy variants ============================================

CONV = {1: "Conv1d", 2: "Conv2d", 3: "Conv3d"}
CONV_T = {1: "ConvTranspose1d", 2: "ConvTranspose2d", 3: "ConvTranspose3d"}
SPATIAL = {1: (7,), 2: (5, 6), 3: (4, 5, 3)}  # a few fixed input sizes, so hypothesis examples share compiles


def int_or_tuple(n: int, lo: int, hi: int):
    return st.one_of(st.integers(lo, hi), st.tuples(*[st.integers(lo, hi)] * n))


def _nt(v, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


@st.composite
def convnd_configs(draw, n: int):
    groups = draw(st.integers(1, 2))
    kw = {
        "in_channels": groups * draw(st.integers(1, 2)),
        "out_channels": groups * draw(st.integers(1, 2)),
        "kernel_size": draw(int_or_tuple(n, 1, 3)),
        "dilation": draw(int_or_tuple(n, 1, 2)),
        "groups": groups,
        "bias": draw(st.booleans()),
        "padding_mode": draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])),
    }
    kw["padding"] = draw(st.one_of(st.sampled_from(["same", "valid"]), int_or_tuple(n, 0, 1)))
    kw["stride"] = 1 if kw["padding"] == "same" else draw(int_or_tuple(n, 1, 2))
    return kw


def torch_input(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def check_module(j, t, x: np.ndarray, grads: bool = True, **fwd) -> None:
    """Outputs (eager) match torch; gradients w.r.t. parameters and input match torch autograd."""
    expected = t(torch.from_numpy(x), **fwd)
    out = j(jnp.asarray(x), **fwd)
    assert out.shape == tuple(expected.shape) and out.dtype == jnp.float32
    assert_close(out, expected, rtol=1e-4, atol=1e-4)
    if grads and x.size:
        (jg, jx), (tg, tx) = grads_and_input_grad(j, x), torch_grads_and_input_grad(t, x)
        assert sorted(jg) == sorted(tg)
        for k in tg:
            assert_close(jg[k], tg[k], rtol=1e-3, atol=1e-3)
        assert_close(jx, tx, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("n", [1, 3])
@SETTINGS
@given(data=st.data(), batch=st.sampled_from([None, 0, 2]), seed=st.integers(0, 2**16))
def test_conv1d_conv3d_outputs_and_gradients_match_torch(n, data, batch, seed):
    kw = data.draw(convnd_configs(n))
    t = getattr(torch.nn, CONV[n])(**kw)
    j = copy_torch_weights(getattr(jnn, CONV[n])(**kw), t)
    assert repr(j) == repr(t)
    assert list(j._reversed_padding_repeated_twice) == list(t._reversed_padding_repeated_twice)
    # the smallest size along each dim that torch accepts, rounded up to the fixed sizes where possible
    k, d = _nt(kw["kernel_size"], n), _nt(kw["dilation"], n)
    sizes = tuple(max(s, d[i] * (k[i] - 1) + 1) for i, s in enumerate(SPATIAL[n]))
    shape = (kw["in_channels"], *sizes) if batch is None else (batch, kw["in_channels"], *sizes)
    x = torch_input(shape, seed)
    try:
        t(torch.from_numpy(x))
    except RuntimeError:  # torch rejects some empty batches with non-zero padding modes: so must we
        with pytest.raises(Exception):  # noqa: B017
            j(jnp.asarray(x))
        return
    check_module(j, t, x)


@st.composite
def conv_transpose_configs(draw, n: int):
    groups = draw(st.integers(1, 2))
    stride = _nt(draw(int_or_tuple(n, 1, 3)), n)
    dilation = _nt(draw(int_or_tuple(n, 1, 2)), n)
    kw = {
        "in_channels": groups * draw(st.integers(1, 2)),
        "out_channels": groups * draw(st.integers(1, 2)),
        "kernel_size": draw(int_or_tuple(n, 1, 3)),
        "stride": stride,
        "padding": draw(int_or_tuple(n, 0, 2)),
        # torch: output_padding must be smaller than either stride or dilation
        "output_padding": tuple(draw(st.integers(0, max(s, dd) - 1)) for s, dd in zip(stride, dilation, strict=True)),
        "dilation": dilation,
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    return kw


@pytest.mark.parametrize("n", [1, 2, 3])
@SETTINGS
@given(data=st.data(), batch=st.sampled_from([None, 0, 2]), use_output_size=st.booleans(),
       seed=st.integers(0, 2**16))
def test_conv_transpose_outputs_and_gradients_match_torch(n, data, batch, use_output_size, seed):
    kw = data.draw(conv_transpose_configs(n))
    t = getattr(torch.nn, CONV_T[n])(**kw)
    j = copy_torch_weights(getattr(jnn, CONV_T[n])(**kw), t)
    assert repr(j) == repr(t)
    sizes = tuple(3 if n == 3 else s for s in SPATIAL[n])
    shape = (kw["in_channels"], *sizes) if batch is None else (batch, kw["in_channels"], *sizes)
    x = torch_input(shape, seed)
    k, p = _nt(kw["kernel_size"], n), _nt(kw["padding"], n)
    smallest = [(sizes[i] - 1) * kw["stride"][i] - 2 * p[i] + kw["dilation"][i] * (k[i] - 1) + 1 for i in range(n)]
    if min(smallest) <= 0:  # torch: output size is too small; so must we
        with pytest.raises(ValueError, match="Output size is too small"):
            j(jnp.asarray(x))
        return
    if use_output_size:  # any size in torch's valid range, as spatial dims only or with the leading dims
        size = [data.draw(st.integers(lo, lo + s - 1)) for lo, s in zip(smallest, kw["stride"], strict=True)]
        if data.draw(st.booleans()):
            size = list(shape[:-n])[:1 if batch is None else 2] + size
            size[-n - 1] = kw["out_channels"]
        fwd = {"output_size": size}
        check_module(j, t, x, grads=False, **fwd)
        out = jax.jit(lambda m, v: m(v, output_size=size))(j, jnp.asarray(x))  # static sizes: jit is fine
        assert_close(out, t(torch.from_numpy(x), **fwd), rtol=1e-4, atol=1e-4)
    else:
        check_module(j, t, x)


@pytest.mark.parametrize("cls, kw", [
    ("Conv1d", {"padding": 2, "dilation": 2, "padding_mode": "circular"}),
    ("Conv1d", {"padding": "same", "groups": 2, "bias": False}),
    ("Conv3d", {"stride": (1, 2, 1), "padding": (1, 0, 2)}),
    ("Conv3d", {"kernel_size": (1, 2, 3), "padding": "valid", "padding_mode": "replicate"}),
    ("ConvTranspose1d", {"stride": 2, "output_padding": 1, "groups": 2}),
    ("ConvTranspose2d", {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2), "dilation": 2}),
    ("ConvTranspose2d", {"bias": False}),
    ("ConvTranspose3d", {"kernel_size": (1, 2, 3), "stride": 2, "padding": 1, "dilation": (1, 2, 1)}),
])
def test_conv_repr_state_dict_attributes_and_jit(cls, kw):
    kw = {"in_channels": 4, "out_channels": 6, "kernel_size": 3, **kw}
    t, j = getattr(torch.nn, cls)(**kw), getattr(jnn, cls)(**kw)
    assert repr(j) == repr(t)
    ours, theirs = j.state_dict(), torch_state(t)
    assert list(ours) == list(theirs)
    for k in theirs:
        assert ours[k].shape == theirs[k].shape and ours[k].dtype == theirs[k].dtype, k
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                 "padding_mode", "transposed", "output_padding"):
        assert getattr(j, attr) == getattr(t, attr), attr
    copy_torch_weights(j, t)
    n = len(t.kernel_size)
    x = torch_input((2, 4, *(5,) * n), 3)
    expected = t(torch.from_numpy(x))
    for mode in ("train", "eval"):  # no mode-dependent behaviour
        getattr(j, mode)()
        assert_close(jax.jit(lambda m, v: m(v))(j, jnp.asarray(x)), expected, rtol=1e-4, atol=1e-4)


def test_conv_transpose_output_size_errors_match_torch():
    t, j = torch.nn.ConvTranspose2d(2, 3, 3, stride=2), jnn.ConvTranspose2d(2, 3, 3, stride=2)
    x = np.zeros((1, 2, 4, 4), np.float32)
    for size in ([8, 8], [11, 9], [1, 3, 8], [1, 2, 3, 9, 9, 9], [1, 3, 10, 12]):
        te = error_of(lambda: t(torch.from_numpy(x), output_size=size))  # noqa: B023
        je = error_of(lambda: j(jnp.asarray(x), output_size=size))  # noqa: B023
        assert je[0] is te[0] is ValueError
        assert je[1] == te[1].replace("torch.Size(", "").replace("])", "]")
    # unbatched: one non-spatial dim
    te = error_of(lambda: t(torch.zeros(2, 4, 4), output_size=[2, 3, 9, 9]))
    je = error_of(lambda: j(jnp.zeros((2, 4, 4)), output_size=[2, 3, 9, 9]))
    assert je == te


@pytest.mark.parametrize("cls, kw", [
    ("ConvTranspose2d", {"padding_mode": "reflect"}),
    ("ConvTranspose1d", {"padding_mode": "circular"}),
    ("ConvTranspose3d", {"groups": 3}),
    ("ConvTranspose2d", {"out_channels": 6, "groups": 4}),
    ("ConvTranspose2d", {"groups": 0}),
    ("Conv1d", {"padding": "same", "stride": 2}),
    ("Conv3d", {"padding": "full"}),
    ("Conv1d", {"padding_mode": "mirror"}),
    ("Conv3d", {"groups": 3}),
])
def test_nd_constructor_errors_match_torch(cls, kw):
    kw = {"in_channels": 4, "out_channels": 8, "kernel_size": 3, **kw}
    te, je = error_of(lambda: getattr(torch.nn, cls)(**kw)), error_of(lambda: getattr(jnn, cls)(**kw))
    assert je[0] is te[0]
    assert sorted_sets(je[1]) == sorted_sets(te[1])


def test_conv_transpose_rejects_string_padding_and_bad_output_padding():
    with pytest.raises(ValueError, match="ConvTranspose2d: padding must be an int or a tuple"):
        jnn.ConvTranspose2d(2, 2, 3, padding="same")
    with pytest.raises((AssertionError, TypeError)):  # torch accepts it in the constructor, fails in forward
        torch.nn.ConvTranspose2d(2, 2, 3, padding="same")(torch.zeros(1, 2, 4, 4))
    j, t = jnn.ConvTranspose1d(2, 2, 3, stride=2, output_padding=2), torch.nn.ConvTranspose1d(2, 2, 3, stride=2,
                                                                                               output_padding=2)
    with pytest.raises(ValueError, match="output padding must be smaller than either stride or dilation"):
        j(jnp.zeros((1, 2, 4)))
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride or dilation"):
        t(torch.zeros(1, 2, 4))
    for m in (jnn.Conv1d(2, 2, 3), jnn.Conv3d(2, 2, 3), jnn.ConvTranspose3d(2, 2, 3)):
        with pytest.raises(ValueError, match=r"conv(_transpose)?\dd: expected"):
            m(jnp.zeros((5,)))
    with pytest.raises(ValueError, match=r"conv_transpose1d: given transposed=1, weight of size \(2, 2, 3\), "
                                         "expected input of shape \\(1, 3, 4\\) to have 2 channels"):
        jnn.ConvTranspose1d(2, 2, 3)(jnp.zeros((1, 3, 4)))


@pytest.mark.parametrize("cls, kw, fan_in", [
    ("ConvTranspose2d", {"in_channels": 64, "out_channels": 256, "kernel_size": 3}, 256 * 9),
    ("ConvTranspose1d", {"in_channels": 64, "out_channels": 256, "kernel_size": 5, "groups": 4}, 64 * 5),
    ("Conv3d", {"in_channels": 32, "out_channels": 64, "kernel_size": 3}, 32 * 27),
])
def test_nd_default_init_is_uniform_within_one_over_sqrt_fan_in(cls, kw, fan_in):
    jnn.manual_seed(0)
    conv = getattr(jnn, cls)(**kw)
    bound = 1 / np.sqrt(fan_in)
    for name, tol in (("weight", 0.02), ("bias", 0.15)):
        v = np.asarray(getattr(conv, name), np.float64)
        assert np.abs(v).max() <= bound, name
        assert np.abs(v).max() > 0.95 * bound, name
        assert abs(v.std() - bound / np.sqrt(3)) < tol * bound / np.sqrt(3), name
    tw = getattr(torch.nn, cls)(**kw).weight.detach().numpy()  # the oracle agrees on the bound
    assert np.abs(tw).max() <= bound and np.abs(tw).max() > 0.95 * bound
    old = np.asarray(conv.weight)
    conv.reset_parameters()
    assert not np.array_equal(old, np.asarray(conv.weight)) and np.abs(np.asarray(conv.weight)).max() <= bound


# --- Lazy variants -----------------------------------------------------------------------------------------

LAZY = [("LazyConv1d", 1, {"padding_mode": "reflect", "padding": 1}), ("LazyConv2d", 2, {"groups": 2}),
        ("LazyConv3d", 3, {"bias": False, "stride": 2}),
        ("LazyConvTranspose1d", 1, {"stride": 2, "output_padding": 1}),
        ("LazyConvTranspose2d", 2, {"groups": 2, "dilation": 2}),
        ("LazyConvTranspose3d", 3, {"bias": False})]


@pytest.mark.parametrize("cls, n, kw", LAZY)
@pytest.mark.parametrize("batched", [True, False])
def test_lazy_conv_infers_in_channels_and_becomes_its_plain_class(cls, n, kw, batched):
    kw = {"out_channels": 4, "kernel_size": 3, **kw}
    t, j = getattr(torch.nn, cls)(**kw), getattr(jnn, cls)(**kw)
    assert repr(j) == repr(t)  # in_channels shows as 0, bias as torch shows it
    assert j.has_uninitialized_params() and t.has_uninitialized_params()
    assert list(j.state_dict()) == []  # torch keeps UninitializedParameter placeholders here: we hold nothing
    jnn.manual_seed(0)
    x = torch_input(((2,) if batched else ()) + (6,) + (5,) * n, 1)
    out = j(jnp.asarray(x))
    t(torch.from_numpy(x))
    assert type(j) is getattr(jnn, cls[4:]) and type(t) is getattr(torch.nn, cls[4:])
    assert repr(j) == repr(t) and j.in_channels == 6
    ours, theirs = j.state_dict(), torch_state(t)
    assert list(ours) == list(theirs) and all(ours[k].shape == theirs[k].shape for k in theirs)
    bound = 1 / np.sqrt(np.asarray(ours["weight"]).shape[1] * 3**n)
    assert 0 < np.abs(np.asarray(ours["weight"])).max() <= bound
    assert out.shape == tuple(t(torch.from_numpy(x)).shape)
    copy_torch_weights(j, t)
    check_module(j, t, x, grads=batched)
    assert_close(jax.jit(lambda m, v: m(v))(j, jnp.asarray(x)), t(torch.from_numpy(x)), rtol=1e-4, atol=1e-4)


def test_lazy_conv_under_jit_before_init_raises_a_clear_error():
    lazy = jnn.LazyConv2d(4, 3)
    with pytest.raises(RuntimeError, match="Run one eager forward first"):
        jax.jit(lambda m, v: m(v))(lazy, jnp.ones((1, 2, 5, 5)))
    apply, params, buffers = jnn.split(lazy)
    assert params == {} and buffers == {}
    with pytest.raises(RuntimeError, match="Run one eager forward first"):
        apply(params, buffers, jnp.ones((1, 2, 5, 5)))
    assert type(lazy) is jnn.LazyConv2d and lazy.has_uninitialized_params()
    lazy(jnp.ones((1, 2, 5, 5)))  # eager: fine, and afterwards jit works
    assert jax.jit(lambda m, v: m(v))(lazy, jnp.ones((1, 2, 5, 5))).shape == (1, 4, 3, 3)
    net = jnn.Sequential(jnn.LazyConv1d(3, 2), jnn.ReLU(), jnn.LazyConvTranspose1d(2, 2))  # inside a container
    assert list(net.state_dict()) == []
    net(jnp.ones((1, 5, 6)))
    assert [type(m).__name__ for m in net] == ["Conv1d", "ReLU", "ConvTranspose1d"]
    assert [(k, v.shape) for k, v in net.state_dict().items()] == [
        ("0.weight", (3, 5, 2)), ("0.bias", (3,)), ("2.weight", (3, 2, 2)), ("2.bias", (2,))]
    apply, params, buffers = jnn.split(net)
    assert sorted(params) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert jax.jit(apply)(params, buffers, jnp.ones((1, 5, 6)))[0].shape == (1, 2, 6)


def test_lazy_conv_errors_key_dtype_and_reset_parameters():
    with pytest.raises(RuntimeError, match=r"Expected 2D \(unbatched\) or 3D \(batched\) input to LazyConv1d"):
        jnn.LazyConv1d(4, 3)(jnp.ones((1, 2, 5, 5)))
    with pytest.raises(RuntimeError, match=r"Expected 2D \(unbatched\) or 3D \(batched\) input to LazyConv1d"):
        torch.nn.LazyConv1d(4, 3)(torch.ones(1, 2, 5, 5))
    te = error_of(lambda: torch.nn.LazyConv2d(4, 3, groups=2)(torch.ones(1, 3, 5, 5)))
    assert error_of(lambda: jnn.LazyConv2d(4, 3, groups=2)(jnp.ones((1, 3, 5, 5)))) == te
    lazy = jnn.LazyConv2d(4, 3)
    lazy.reset_parameters()  # a no-op before the first forward, as in torch
    assert lazy.has_uninitialized_params()
    k = jax.random.key(3)
    a, b = jnn.LazyConvTranspose2d(3, 2, key=k), jnn.LazyConvTranspose2d(3, 2, key=k)
    a(jnp.ones((1, 5, 4, 4)))
    b(jnp.ones((1, 5, 4, 4)))
    np.testing.assert_array_equal(np.asarray(a.weight), np.asarray(b.weight))
    assert a.weight.shape == (5, 3, 2, 2) and a.bias.shape == (3,)
    half = jnn.LazyConv1d(2, 3, dtype=jnp.bfloat16)
    assert half(jnp.ones((1, 3, 5), jnp.bfloat16)).dtype == jnp.bfloat16 and half.weight.dtype == jnp.bfloat16
    old = np.asarray(a.weight)
    a.reset_parameters()
    assert not np.array_equal(old, np.asarray(a.weight))


@pytest.mark.parametrize("cls", ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
                                 "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
                                 "LazyConvTranspose2d", "LazyConvTranspose3d"])
def test_constructor_signatures_match_torch_plus_keyword_only_key(cls):
    import inspect

    def params(c):
        return [(p.name, p.default) for p in inspect.signature(c).parameters.values() if p.kind != p.KEYWORD_ONLY]

    assert params(getattr(jnn, cls)) == params(getattr(torch.nn, cls))
    assert inspect.signature(getattr(jnn, cls)).parameters["key"].kind is inspect.Parameter.KEYWORD_ONLY
