"""Upsample / F.interpolate against torch: every mode, size or scale_factor, align_corners, gradients, errors."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn
import jnn.functional as F

SHAPES = {3: (2, 3, 5), 4: (2, 2, 5, 4), 5: (1, 2, 3, 4, 3)}
MODES = [("nearest", 3), ("nearest", 4), ("nearest", 5), ("nearest-exact", 3), ("nearest-exact", 4),
         ("nearest-exact", 5), ("linear", 3), ("bilinear", 4), ("bicubic", 4), ("trilinear", 5), ("area", 3),
         ("area", 4), ("area", 5)]


@st.composite
def resize_args(draw, dim: int) -> dict:
    if draw(st.booleans()):
        size = draw(st.one_of(st.integers(1, 9), st.tuples(*[st.integers(1, 9)] * dim)))
        return {"size": size}
    factor = st.sampled_from([0.5, 0.7, 1.0, 1.1, 1.5, 2.0, 2.3, 3.0])
    kw = {"scale_factor": draw(st.one_of(factor, st.tuples(*[factor] * dim)))}
    kw["recompute_scale_factor"] = draw(st.sampled_from([None, False, True]))
    return kw


@settings(max_examples=25, deadline=None)
@given(case=st.sampled_from(MODES), data=st.data(), seed=st.integers(0, 2**16))
def test_interpolate_outputs_and_gradients_match_torch(case, data, seed):
    mode, ndim = case
    kw = data.draw(resize_args(ndim - 2)) | {"mode": mode}
    if mode not in ("nearest", "nearest-exact", "area"):
        kw["align_corners"] = data.draw(st.booleans())
    x = np.random.default_rng(seed).standard_normal(SHAPES[ndim]).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_(True)
    try:
        expected = torch.nn.functional.interpolate(tx, **kw)
    except RuntimeError:  # an output size of 0: both reject it
        with pytest.raises(ValueError, match="greater than 0"):
            F.interpolate(jnp.asarray(x), **kw)
        return
    out = F.interpolate(jnp.asarray(x), **kw)
    assert out.shape == tuple(expected.shape) and out.dtype == jnp.float32
    assert_close(out, expected, rtol=1e-5, atol=1e-5)
    sizes = zip(x.shape[2:], out.shape[2:], strict=True)
    if mode == "nearest" and ndim != 4 and "scale_factor" in kw and not kw.get("recompute_scale_factor") \
            and any(o in (i, 2 * i) for i, o in sizes):
        return  # torch's 1-d/3-d nearest backward takes the 2-d shortcut its forward does not: it is inconsistent
    w = np.linspace(-1, 2, expected.numel(), dtype=np.float32).reshape(tuple(expected.shape))
    (expected * torch.from_numpy(w)).sum().backward()
    g = jax.grad(lambda v: (F.interpolate(v, **kw) * w).sum())(jnp.asarray(x))
    assert_close(g, tx.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode, ndim", [("nearest", 3), ("nearest", 4), ("nearest", 5), ("nearest-exact", 4),
                                        ("linear", 3), ("bilinear", 4), ("bicubic", 4), ("trilinear", 5)])
@pytest.mark.parametrize("scale", [1.1, 2.3, (1.1, 2.0, 0.9)])
def test_interpolate_same_size_and_double_size_quirks_match_torch(mode, ndim, scale):
    # torch's 2-d nearest kernel alone maps a 2x output to i // 2 whatever the factor; its linear kernels keep a
    # same-size dim as is; bicubic and the others apply 1 / scale_factor
    x = np.random.default_rng(5).standard_normal((1, 2) + (3,) * (ndim - 2)).astype(np.float32)
    sf = scale[: ndim - 2] if isinstance(scale, tuple) else scale
    expected = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=sf, mode=mode)
    out = F.interpolate(jnp.asarray(x), scale_factor=sf, mode=mode)
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_area_to_an_empty_size_like_torch():
    x = np.ones((1, 2, 1, 3), np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=0.5, mode="area")
    assert F.interpolate(jnp.asarray(x), scale_factor=0.5, mode="area").shape == tuple(expected.shape) == (1, 2, 0, 1)


def test_nearest_keeps_integer_dtype_and_exact_values():
    x = np.arange(2 * 3 * 4, dtype=np.int32).reshape(1, 2, 3, 4)
    out = F.interpolate(jnp.asarray(x), scale_factor=(1.5, 0.75))
    expected = torch.nn.functional.interpolate(torch.from_numpy(x).float(), scale_factor=(1.5, 0.75))
    assert out.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(out), expected.numpy().astype(np.int32))


@pytest.mark.parametrize("args, kw", [
    ((), {"scale_factor": 2}), ((), {"size": (3, 5), "mode": "bilinear"}),
    ((), {"scale_factor": (2, 1.5), "mode": "bicubic", "align_corners": True}),
    ((), {"size": 7, "mode": "nearest-exact"}), ((None, 2.5, "bilinear", False, True), {}),
])
def test_upsample_layer_repr_attributes_and_outputs_match_torch(args, kw):
    t, j = torch.nn.Upsample(*args, **kw), jnn.Upsample(*args, **kw)
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(t.state_dict()) == []
    for attr in ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"):
        assert getattr(j, attr) == getattr(t, attr), attr
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)))
    assert_close(jax.jit(lambda m, v: m(v))(j, jnp.asarray(x)), t(torch.from_numpy(x)))


def test_upsample_repr_literal_text():
    assert repr(jnn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert repr(jnn.Upsample(size=(4, 5), mode="bilinear")) == "Upsample(size=(4, 5), mode='bilinear')"


@pytest.mark.parametrize("name", ["UpsamplingNearest2d", "UpsamplingBilinear2d"])
@pytest.mark.parametrize("kw", [{"scale_factor": 2}, {"size": (5, 7)}, {"scale_factor": 1.5}])
def test_upsampling2d_layers_match_torch(name, kw):
    t, j = getattr(torch.nn, name)(**kw), getattr(jnn, name)(**kw)
    assert repr(j) == repr(t)
    assert (j.mode, j.align_corners) == (t.mode, t.align_corners)
    x = np.random.default_rng(1).standard_normal((3, 4, 5)).reshape(1, 3, 4, 5).astype(np.float32)
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)))


def test_deprecated_functional_aliases_warn_and_match_torch():
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 4)).astype(np.float32)
    tx = torch.from_numpy(x)
    for name, kw in (("upsample", {"scale_factor": 2, "mode": "bilinear"}), ("upsample_nearest", {"size": 5}),
                     ("upsample_bilinear", {"scale_factor": 2})):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = getattr(torch.nn.functional, name)(tx, **kw)
        with pytest.warns(UserWarning, match="deprecated"):
            out = getattr(F, name)(jnp.asarray(x), **kw)
        assert_close(out, expected)


@pytest.mark.parametrize("shape, kw, kind", [
    ((1, 1, 4), {"scale_factor": 2, "mode": "bilinear"}, NotImplementedError),
    ((1, 1, 4, 4), {"scale_factor": 2, "mode": "trilinear"}, NotImplementedError),
    ((1, 1, 4, 4), {"scale_factor": 2, "align_corners": True}, ValueError),
    ((1, 1, 4, 4), {"size": 2, "scale_factor": 2}, ValueError),
    ((1, 1, 4, 4), {}, ValueError),
    ((1, 1, 4, 4), {"size": (2, 2, 2)}, ValueError),
    ((1, 1, 4, 4), {"size": 2, "recompute_scale_factor": True}, ValueError),
    ((4, 4), {"size": 2}, NotImplementedError),
])
def test_interpolate_errors_match_torch(shape, kw, kind):
    with pytest.raises(kind) as te:
        torch.nn.functional.interpolate(torch.zeros(shape), **kw)
    with pytest.raises(kind) as je:
        F.interpolate(jnp.zeros(shape), **kw)
    # torch's list of modes names lanczos (antialiased only), which jnn does not offer; the rest is the same
    assert str(je.value).split(" for the modes")[0] == str(te.value).split(" for the modes")[0]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize(("shape", "kw"), [
    ((2, 3, 7, 9), {"size": (3, 4)}),  # shrinking: the filter widens with the scale
    ((1, 2, 20, 13), {"size": (5, 17)}),  # shrinking one dim, growing the other
    ((1, 2, 10, 12), {"scale_factor": 0.3}),
    ((1, 1, 9, 9), {"size": 1}),
    ((1, 1, 6, 6), {"size": 6}),
])
def test_interpolate_antialias_matches_torch(mode, align_corners, shape, kw):
    """``antialias=True`` (segment-anything's ResizeLongestSide.apply_image_torch): outputs and gradients."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    kw = kw | {"mode": mode, "align_corners": align_corners, "antialias": True}
    xt = torch.from_numpy(x).requires_grad_()
    expected = torch.nn.functional.interpolate(xt, **kw)
    (expected**2).sum().backward()
    assert_close(F.interpolate(jnp.asarray(x), **kw), expected, rtol=1e-5, atol=1e-5)
    assert_close(jax.jit(lambda v: F.interpolate(v, **kw))(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)
    grad = jax.grad(lambda v: (F.interpolate(v, **kw) ** 2).sum())(jnp.asarray(x))
    assert_close(grad, xt.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("shape", "mode"), [((1, 1, 4), "linear"), ((1, 1, 4, 4), "nearest"),
                                             ((1, 1, 2, 2, 2), "trilinear")])
def test_interpolate_antialias_errors_match_torch(shape, mode):
    with pytest.raises(ValueError) as te:
        torch.nn.functional.interpolate(torch.zeros(shape), size=2, mode=mode, antialias=True)
    with pytest.raises(ValueError) as je:
        F.interpolate(jnp.zeros(shape), size=2, mode=mode, antialias=True)
    # torch names lanczos too (antialiased only), which jnn does not offer
    assert str(je.value) == str(te.value).replace("bilinear, bicubic, and lanczos", "bilinear and bicubic")
