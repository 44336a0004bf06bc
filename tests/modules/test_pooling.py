"""MaxPool2d against torch.nn.MaxPool2d: repr, outputs, indices (ties, NaN), gradients, odd sizes, ceil_mode."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn

SETTINGS = settings(max_examples=12, deadline=None)


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


int_or_pair = lambda lo, hi: st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))  # noqa: E731


@st.composite
def pool_configs(draw):
    kernel = draw(int_or_pair(1, 4))
    k = _pair(kernel)
    if isinstance(kernel, int):
        padding = draw(st.integers(0, kernel // 2))
    else:
        padding = draw(st.one_of(st.integers(0, min(k) // 2), st.tuples(st.integers(0, k[0] // 2),
                                                                          st.integers(0, k[1] // 2))))
    return {
        "kernel_size": kernel,
        "stride": draw(st.one_of(st.none(), int_or_pair(1, 3))),
        "padding": padding,
        "dilation": draw(int_or_pair(1, 2)),
        "ceil_mode": draw(st.booleans()),
        "return_indices": draw(st.booleans()),
    }


def smallest_size(kw, dim: int) -> int:
    k, p, d = (_pair(kw[a])[dim] for a in ("kernel_size", "padding", "dilation"))
    return max(1, d * (k - 1) + 1 - 2 * p)


def _cotangent(n: int) -> np.ndarray:
    return np.linspace(-1.0, 2.0, n, dtype=np.float32)


def input_grad(module, x: np.ndarray) -> np.ndarray:
    """d/dx of a weighted sum of the finite outputs (a window wholly in padding gives -inf; it is left out)."""
    def loss(v):
        y = module(v)[0] if module.return_indices else module(v)
        return (jnp.where(jnp.isfinite(y), y, 0) * _cotangent(y.size).reshape(y.shape)).sum()

    return np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(x)))


def torch_input_grad(module, x: np.ndarray) -> np.ndarray:
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    y = module(tx)[0] if module.return_indices else module(tx)
    w = torch.from_numpy(_cotangent(y.numel()).reshape(tuple(y.shape)))
    (torch.where(torch.isfinite(y), y, 0) * w).sum().backward()
    return tx.grad.numpy()


# --- repr --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 0), "dilation": (2, 1)},
    {"kernel_size": 3, "return_indices": True, "dilation": 2},
    {"kernel_size": [3, 3], "stride": [2, 1]},
])
def test_maxpool2d_repr_and_empty_state_dict_match_torch(kw):
    t, j = torch.nn.MaxPool2d(**kw), jnn.MaxPool2d(**kw)
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(t.state_dict()) == []
    for attr in ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"):
        assert getattr(j, attr) == getattr(t, attr), attr


def test_maxpool2d_repr_literal_text():
    assert repr(jnn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(jnn.MaxPool2d((3, 2), 1, 1, ceil_mode=True)) == (
        "MaxPool2d(kernel_size=(3, 2), stride=1, padding=1, dilation=1, ceil_mode=True)"
    )


# --- numerics ----------------------------------------------------------------------------------------------


@SETTINGS
@given(kw=pool_configs(), batch=st.sampled_from([None, 0, 1, 2]), channels=st.integers(1, 3),
       extra=st.tuples(st.integers(0, 5), st.integers(0, 5)), ties=st.booleans(), seed=st.integers(0, 2**16))
def test_maxpool2d_outputs_and_indices_match_torch(kw, batch, channels, extra, ties, seed):
    t, j = torch.nn.MaxPool2d(**kw), jnn.MaxPool2d(**kw)
    assert repr(j) == repr(t)
    h, w = smallest_size(kw, 0) + extra[0], smallest_size(kw, 1) + extra[1]
    shape = (channels, h, w) if batch is None else (batch, channels, h, w)
    rng = np.random.default_rng(seed)
    # with ties, torch returns the first maximum of each window (in row-major kernel order)
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(np.float32)
    expected = t(torch.from_numpy(x))
    out = j(jnp.asarray(x))
    if kw["return_indices"]:
        assert isinstance(out, tuple) and len(out) == 2
        (out, idx), (expected, tidx) = out, expected
        assert idx.shape == tuple(tidx.shape)
        assert jnp.issubdtype(idx.dtype, jnp.integer)
        # a dilated window can lie wholly in the padding: torch then gives -inf and an index that is its loop
        # start, not a position in the window (it may even lie in the plane); it has no meaning: compare the others
        real = np.isfinite(expected.numpy())
        np.testing.assert_array_equal(np.asarray(idx)[real], tidx.numpy()[real])
    assert out.shape == tuple(expected.shape) and out.dtype == jnp.float32
    assert_close(out, expected, rtol=0, atol=0)


@SETTINGS
@given(kw=pool_configs(), batch=st.sampled_from([None, 1, 2]), extra=st.tuples(st.integers(0, 4), st.integers(0, 4)),
       ties=st.booleans(), seed=st.integers(0, 2**16))
def test_maxpool2d_input_gradient_matches_torch(kw, batch, extra, ties, seed):
    t, j = torch.nn.MaxPool2d(**kw), jnn.MaxPool2d(**kw)
    h, w = smallest_size(kw, 0) + extra[0], smallest_size(kw, 1) + extra[1]
    shape = (2, h, w) if batch is None else (batch, 2, h, w)
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(np.float32)
    assert_close(input_grad(j, x), torch_input_grad(t, x), rtol=1e-5, atol=1e-5)


def test_maxpool2d_gradient_of_the_tutorial_shape_eager():
    t, j = torch.nn.MaxPool2d(2), jnn.MaxPool2d(2)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    g = jax.grad(lambda v: (j(v) ** 2).sum())(jnp.asarray(x))
    tx = torch.from_numpy(x).requires_grad_(True)
    (t(tx) ** 2).sum().backward()
    assert_close(g, tx.grad, rtol=1e-5, atol=1e-6)


def test_maxpool2d_window_wholly_in_padding_gives_minus_inf_like_torch():
    kw = {"kernel_size": 2, "padding": 1, "dilation": 2}  # on a 1x1 input every tap is padding
    x = np.full((1, 1, 1), 0.5, np.float32)
    expected = torch.nn.MaxPool2d(**kw)(torch.from_numpy(x))
    out = jnn.MaxPool2d(**kw)(jnp.asarray(x))
    assert out.shape == tuple(expected.shape) == (1, 1, 1)
    np.testing.assert_array_equal(np.asarray(out), expected.numpy())
    assert float(out[0, 0, 0]) == -np.inf


def test_maxpool2d_nan_and_inf_propagate_like_torch():
    x = np.arange(2 * 5 * 5, dtype=np.float32).reshape(1, 2, 5, 5)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 3, 4] = -np.inf
    x[0, 1, :2, :2] = -np.inf
    x[0, 1, 4, 4] = np.inf
    for kw in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1, "return_indices": True},
               {"kernel_size": 2, "ceil_mode": True, "dilation": 2, "return_indices": True}):
        t, j = torch.nn.MaxPool2d(**kw), jnn.MaxPool2d(**kw)
        expected, out = t(torch.from_numpy(x)), j(jnp.asarray(x))
        if kw.get("return_indices"):
            np.testing.assert_array_equal(np.asarray(out[1]), expected[1].numpy())
            expected, out = expected[0], out[0]
        np.testing.assert_array_equal(np.asarray(out), expected.numpy())


def test_maxpool2d_under_jit_and_vmap():
    t, j = torch.nn.MaxPool2d(3, 2, 1, return_indices=True), jnn.MaxPool2d(3, 2, 1, return_indices=True)
    x = np.random.default_rng(1).standard_normal((3, 2, 7, 6)).astype(np.float32)
    out, idx = jax.jit(lambda m, v: m(v))(j, jnp.asarray(x))
    tout, tidx = t(torch.from_numpy(x))
    assert_close(out, tout, rtol=0, atol=0)
    np.testing.assert_array_equal(np.asarray(idx), tidx.numpy())
    vout, vidx = jax.vmap(j)(jnp.asarray(x))  # vmapped over the batch: each example unbatched (C, H, W)
    assert_close(vout, tout, rtol=0, atol=0)
    np.testing.assert_array_equal(np.asarray(vidx), tidx.numpy())


@pytest.mark.parametrize("kw, shape", [
    ({"kernel_size": 3, "padding": 2}, (1, 1, 6, 6)),      # pad more than half the kernel
    ({"kernel_size": 4}, (1, 1, 3, 3)),                    # output size would be 0
])
def test_maxpool2d_rejects_what_torch_rejects(kw, shape):
    with pytest.raises(RuntimeError):
        torch.nn.MaxPool2d(**kw)(torch.zeros(shape))
    with pytest.raises(ValueError, match="max_pool2d"):
        jnn.MaxPool2d(**kw)(jnp.zeros(shape))


def test_maxpool2d_rejects_wrong_rank():
    with pytest.raises(RuntimeError):
        torch.nn.MaxPool2d(2)(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="3D .* or 4D"):
        jnn.MaxPool2d(2)(jnp.zeros((4, 4)))


# === the rest of the pooling family: 1-d/3-d max pooling, unpooling, average, adaptive, LP, fractional ======

FAST = settings(max_examples=6, deadline=None)
SPATIAL = {1: (7,), 2: (6, 5), 3: (5, 4, 5)}  # a few fixed shapes keep the number of XLA compiles down


def _nt(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _first(y):
    return y[0] if isinstance(y, tuple) else y


def compare_with_grad(jfn, tfn, x: np.ndarray, *, atol: float = 1e-5, exact_indices: bool = True):
    """Outputs (and indices) of jfn vs tfn, then d/dx of a weighted sum of the finite outputs."""
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    expected = tfn(tx)
    out = jfn(jnp.asarray(x))
    if isinstance(expected, tuple):
        assert isinstance(out, tuple) and len(out) == 2
        assert jnp.issubdtype(out[1].dtype, jnp.integer)
        if exact_indices:
            np.testing.assert_array_equal(np.asarray(out[1]), expected[1].numpy())
    ty, y = _first(expected), _first(out)
    assert y.shape == tuple(ty.shape) and y.dtype == jnp.float32
    assert_close(y, ty, rtol=atol, atol=atol)
    w = _cotangent(ty.numel()).reshape(tuple(ty.shape))
    (torch.where(torch.isfinite(ty), ty, 0) * torch.from_numpy(w)).sum().backward()
    g = jax.grad(lambda v: (jnp.where(jnp.isfinite(_first(jfn(v))), _first(jfn(v)), 0) * w).sum())(jnp.asarray(x))
    assert_close(g, tx.grad, rtol=atol, atol=atol)


def _input(n: int, batch, channels: int, seed: int, ties: bool = False) -> np.ndarray:
    shape = ((channels,) if batch is None else (batch, channels)) + SPATIAL[n]
    rng = np.random.default_rng(seed)
    return (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(np.float32)


REPRS = [
    ("MaxPool1d", (3,), {"stride": 2, "padding": 1, "return_indices": True}),
    ("MaxPool3d", ((2, 1, 2),), {"dilation": 2, "ceil_mode": True}),
    ("MaxUnpool1d", (2,), {}), ("MaxUnpool2d", (3, 2, 1), {}), ("MaxUnpool3d", ((2, 1, 2),), {}),
    ("AvgPool1d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}),
    ("AvgPool2d", (3,), {}), ("AvgPool2d", ((2, 3),), {"stride": 1, "padding": (1, 1), "divisor_override": 2}),
    ("AvgPool3d", (2,), {"ceil_mode": True}),
    ("AdaptiveAvgPool1d", (3,), {}), ("AdaptiveAvgPool2d", ((None, 3),), {}), ("AdaptiveAvgPool3d", (2,), {}),
    ("AdaptiveMaxPool1d", (3,), {"return_indices": True}), ("AdaptiveMaxPool2d", ((2, None),), {}),
    ("AdaptiveMaxPool3d", ((1, 2, 3),), {}),
    ("LPPool1d", (2, 3), {}), ("LPPool2d", (1.5, (2, 3)), {"stride": 1, "ceil_mode": True}), ("LPPool3d", (2, 2), {}),
    ("FractionalMaxPool2d", (2,), {"output_size": 3}), ("FractionalMaxPool3d", (2,), {"output_ratio": 0.5}),
]


@pytest.mark.parametrize("name, args, kw", REPRS)
def test_pooling_layers_repr_attributes_and_state_match_torch(name, args, kw):
    t, j = getattr(torch.nn, name)(*args, **kw), getattr(jnn, name)(*args, **kw)
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(t.state_dict()) == []
    for attr in ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "count_include_pad",
                 "divisor_override", "output_size", "output_ratio", "return_indices", "norm_type"):
        if hasattr(t, attr):
            assert getattr(j, attr) == getattr(t, attr), attr


def test_pooling_repr_literal_text():
    assert repr(jnn.AvgPool1d(3)) == "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"
    assert repr(jnn.MaxUnpool2d(2)) == "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    assert repr(jnn.LPPool2d(2, 3)) == "LPPool2d(norm_type=2, kernel_size=3, stride=None, ceil_mode=False)"
    assert repr(jnn.AdaptiveAvgPool2d((None, 7))) == "AdaptiveAvgPool2d(output_size=(None, 7))"
    assert repr(jnn.FractionalMaxPool2d(3, output_ratio=0.5)) == "FractionalMaxPool2d()"


@st.composite
def nd_pool_configs(draw, n: int, dilation: bool = True):
    k = draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * n)))
    kk = _nt(k, n)
    padding = draw(st.one_of(st.integers(0, min(kk) // 2), st.tuples(*[st.integers(0, e // 2) for e in kk])))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(*[st.integers(1, 2)] * n)))
    kw = {"kernel_size": k, "stride": stride,
          "padding": padding, "ceil_mode": draw(st.booleans())}
    if dilation:
        kw["dilation"] = draw(st.one_of(st.integers(1, 2), st.tuples(*[st.integers(1, 2)] * n)))
    return kw


@FAST
@given(n=st.sampled_from([1, 3]), data=st.data(), batch=st.sampled_from([None, 0, 2]), ties=st.booleans(),
       seed=st.integers(0, 2**16))
def test_maxpool1d_3d_outputs_indices_and_gradients_match_torch(n, data, batch, ties, seed):
    kw = data.draw(nd_pool_configs(n)) | {"return_indices": data.draw(st.booleans())}
    t, j = getattr(torch.nn, f"MaxPool{n}d")(**kw), getattr(jnn, f"MaxPool{n}d")(**kw)
    assert repr(j) == repr(t)
    x = _input(n, batch, 2, seed, ties)
    try:
        t(torch.from_numpy(x))
    except RuntimeError:  # a dilated kernel wider than the input: both reject it
        with pytest.raises(ValueError, match=f"max_pool{n}d"):
            j(jnp.asarray(x))
        return
    # a window wholly in padding has an index torch leaves meaningless; dilation 1 never has one
    exact = all(e == 1 for e in _nt(kw["dilation"], n))
    compare_with_grad(j, t, x, atol=0 if not ties else 1e-6, exact_indices=exact)


def test_maxpool3d_indices_are_flat_volume_positions():
    x = np.random.default_rng(3).standard_normal((2, 5, 6, 7)).astype(np.float32)
    out, idx = jnn.MaxPool3d(2, 2, 1, return_indices=True)(jnp.asarray(x))
    tout, tidx = torch.nn.MaxPool3d(2, 2, 1, return_indices=True)(torch.from_numpy(x))
    np.testing.assert_array_equal(np.asarray(idx), tidx.numpy())
    np.testing.assert_array_equal(np.asarray(out), tout.numpy())


@FAST
@given(n=st.sampled_from([1, 2, 3]), data=st.data(), batch=st.sampled_from([None, 0, 2]), seed=st.integers(0, 2**16))
def test_avgpool_outputs_and_gradients_match_torch(n, data, batch, seed):
    kw = data.draw(nd_pool_configs(n, dilation=False)) | {"count_include_pad": data.draw(st.booleans())}
    if n > 1:
        kw["divisor_override"] = data.draw(st.sampled_from([None, 1, 3]))
    t, j = getattr(torch.nn, f"AvgPool{n}d")(**kw), getattr(jnn, f"AvgPool{n}d")(**kw)
    assert repr(j) == repr(t)
    compare_with_grad(j, t, _input(n, batch, 3, seed))


@FAST
@given(n=st.sampled_from([1, 2, 3]), data=st.data(), batch=st.sampled_from([None, 2]), ties=st.booleans(),
       seed=st.integers(0, 2**16))
def test_adaptive_pooling_outputs_indices_and_gradients_match_torch(n, data, batch, ties, seed):
    entry = st.integers(1, 6) if n == 1 else st.one_of(st.none(), st.integers(1, 6))  # torch's 1-d takes no None
    size = data.draw(st.one_of(st.integers(1, 8), st.tuples(*[entry] * n)))
    x = _input(n, batch, 2, seed, ties)
    ta, ja = getattr(torch.nn, f"AdaptiveAvgPool{n}d")(size), getattr(jnn, f"AdaptiveAvgPool{n}d")(size)
    assert repr(ja) == repr(ta)
    compare_with_grad(ja, ta, x)
    tm = getattr(torch.nn, f"AdaptiveMaxPool{n}d")(size, return_indices=True)
    jm = getattr(jnn, f"AdaptiveMaxPool{n}d")(size, return_indices=True)
    compare_with_grad(jm, tm, x, atol=1e-6)


@FAST
@given(n=st.sampled_from([1, 2, 3]), data=st.data(), norm=st.sampled_from([1, 2, 3.5, float("inf")]),
       batch=st.sampled_from([None, 2]), seed=st.integers(0, 2**16))
def test_lppool_outputs_and_gradients_match_torch(n, data, norm, batch, seed):
    kw = data.draw(nd_pool_configs(n, dilation=False))
    kw.pop("padding")
    if n == 1:
        kw["kernel_size"] = _nt(kw["kernel_size"], 1)[0]  # torch's lp_pool1d multiplies by an int kernel_size
    t, j = getattr(torch.nn, f"LPPool{n}d")(norm, **kw), getattr(jnn, f"LPPool{n}d")(norm, **kw)
    assert repr(j) == repr(t)
    x = np.abs(_input(n, batch, 2, seed)) + 0.1  # a fractional power of a negative sum is NaN in both
    compare_with_grad(j, t, x, atol=2e-5)


def test_lppool_zero_window_has_zero_gradient_like_torch():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 0] = 1.0
    compare_with_grad(jnn.LPPool2d(2, 2), torch.nn.LPPool2d(2, 2), x)


@FAST
@given(n=st.sampled_from([2, 3]), data=st.data(), batch=st.sampled_from([None, 1, 2]), ties=st.booleans(),
       seed=st.integers(0, 2**16))
def test_fractional_maxpool_with_given_samples_matches_torch(n, data, batch, ties, seed):
    k = data.draw(st.one_of(st.integers(1, 2), st.tuples(*[st.integers(1, 2)] * n)))
    if data.draw(st.booleans()):
        kw = {"output_size": data.draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * n)))}
    else:
        kw = {"output_ratio": data.draw(st.sampled_from([0.5, 0.75]))}
    x = _input(n, batch, 2, seed, ties)
    samples = torch.rand(1 if batch is None else batch, 2, n, generator=torch.Generator().manual_seed(seed))
    t = getattr(torch.nn, f"FractionalMaxPool{n}d")(k, **kw, return_indices=True, _random_samples=samples)
    j = getattr(jnn, f"FractionalMaxPool{n}d")(k, **kw, return_indices=True, _random_samples=samples.numpy())
    assert list(j.state_dict()) == list(t.state_dict()) == ["_random_samples"]
    try:
        t(torch.from_numpy(x))
    except RuntimeError:  # the output plus the kernel does not fit the input: both reject it
        with pytest.raises(ValueError, match="too large"):
            j(jnp.asarray(x))
        return
    compare_with_grad(j, t, x, atol=1e-6)


def test_fractional_maxpool_draws_from_jnn_random():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32))
    m = jnn.FractionalMaxPool2d(2, output_size=4, return_indices=True)
    with jnn.random.fork(jax.random.key(0)):
        a = m(x)
    with jnn.random.fork(jax.random.key(0)):
        b = m(x)
    with jnn.random.fork(jax.random.key(1)):
        c = m(x)
    np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))
    assert not np.array_equal(np.asarray(a[1]), np.asarray(c[1]))  # different keys choose other windows
    assert a[0].shape == (2, 3, 4, 4)
    # every value is the maximum at its index
    flat = np.asarray(x).reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, np.asarray(a[1]).reshape(2, 3, -1), -1).reshape(2, 3, 4, 4),
                                  np.asarray(a[0]))
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(lambda mod, v: mod(v))(m, x)

    def run(mod, v, key):
        with jnn.random.fork(key):
            return mod(v)
    out = jax.jit(run)(m, x, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(out[1]), np.asarray(a[1]))


def test_fractional_maxpool_constructor_errors_match_torch():
    for kw in ({}, {"output_size": 2, "output_ratio": 0.5}, {"output_ratio": 1.5}):
        with pytest.raises(ValueError) as te:
            torch.nn.FractionalMaxPool2d(2, **kw)
        with pytest.raises(ValueError) as je:
            jnn.FractionalMaxPool2d(2, **kw)
        assert str(je.value) == str(te.value)
    with pytest.raises(ValueError, match="too large"):
        jnn.FractionalMaxPool2d(3, output_size=5)(jnp.zeros((1, 6, 6)))


@FAST
@given(n=st.sampled_from([1, 2, 3]), batch=st.sampled_from([None, 2]), stride=st.sampled_from([None, 1, 2]),
       padding=st.integers(0, 1), sized=st.booleans(), seed=st.integers(0, 2**16))
def test_maxunpool_inverts_maxpool_like_torch(n, batch, stride, padding, sized, seed):
    x = _input(n, batch, 2, seed)
    tp = getattr(torch.nn, f"MaxPool{n}d")(2, stride, padding, return_indices=True)
    y, i = tp(torch.from_numpy(x))
    size = SPATIAL[n] if sized else None
    tu, ju = getattr(torch.nn, f"MaxUnpool{n}d")(2, stride, padding), getattr(jnn, f"MaxUnpool{n}d")(2, stride, padding)
    assert repr(ju) == repr(tu)
    try:
        expected = tu(y, i, output_size=size)
    except RuntimeError:  # an index outside the default output volume: both reject it
        with pytest.raises(ValueError, match="invalid max index"):
            ju(jnp.asarray(y.numpy()), jnp.asarray(i.numpy().astype(np.int32)), output_size=size)
        return
    out = ju(jnp.asarray(y.numpy()), jnp.asarray(i.numpy().astype(np.int32)), output_size=size)
    np.testing.assert_array_equal(np.asarray(out), expected.numpy())
    g = jax.grad(lambda v: (ju(v, jnp.asarray(i.numpy().astype(np.int32)), size) ** 2).sum())(jnp.asarray(y.numpy()))
    ty = y.detach().clone().requires_grad_(True)
    (tu(ty, i, output_size=size) ** 2).sum().backward()
    assert_close(g, ty.grad)


def test_maxunpool_output_size_errors_match_torch():
    y, i = torch.nn.MaxPool2d(2, return_indices=True)(torch.randn(1, 1, 4, 4))
    for size in ((7, 7), (4,)):
        with pytest.raises(ValueError) as te:
            torch.nn.MaxUnpool2d(2)(y, i, output_size=size)
        with pytest.raises(ValueError) as je:
            jnn.MaxUnpool2d(2)(jnp.asarray(y.numpy()), jnp.asarray(i.numpy().astype(np.int32)), output_size=size)
        assert str(je.value) == str(te.value)


@pytest.mark.parametrize("name, args, shape", [
    ("MaxPool1d", (3, 2, 1), (2, 3, 9)), ("MaxPool3d", (2,), (1, 2, 4, 4, 4)),
    ("AvgPool2d", (3, 2, 1), (2, 3, 7, 7)), ("AdaptiveAvgPool2d", (3,), (2, 3, 7, 8)),
    ("AdaptiveMaxPool1d", (4,), (2, 3, 9)), ("LPPool2d", (2, 2), (1, 2, 4, 4)),
])
def test_pooling_layers_under_jit(name, args, shape):
    x = np.abs(np.random.default_rng(0).standard_normal(shape)).astype(np.float32)
    j, t = getattr(jnn, name)(*args), getattr(torch.nn, name)(*args)
    assert_close(jax.jit(lambda m, v: m(v))(j, jnp.asarray(x)), t(torch.from_numpy(x)))


@pytest.mark.parametrize("fn, args, shape", [
    ("avg_pool2d", (3, 1, 2), (1, 1, 6, 6)),    # pad more than half the kernel
    ("avg_pool1d", (4,), (1, 1, 3)),            # output size would be 0
    ("max_pool3d", (2,), (1, 1, 1, 4, 4)),
    ("max_pool1d", (2,), (4,)),                 # wrong rank
])
def test_pooling_functions_reject_what_torch_rejects(fn, args, shape):
    with pytest.raises(RuntimeError):
        getattr(torch.nn.functional, fn)(torch.zeros(shape), *args)
    with pytest.raises(ValueError, match=fn):
        getattr(jnn.functional, fn)(jnp.zeros(shape), *args)
