"""jnn.ops' statistics, histograms, integrals, runs, set products, splits, scatters and special functions against
torch (tests/test_ops.py's oracle ``check``: eagerly and under jax.jit, result dtypes included).

torch.nanmedian names any index among equal values (its CPU kernel's nth_element order), so where values repeat the
indices are checked to hold the values rather than to be torch's.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from test_ops import FAST, HEAVY, check, dims, randint, randn, same, small_shapes

from jnn import ops

NAN, INF = float("nan"), float("inf")
RNG = np.random.default_rng(17)


def floats(*values):
    return np.array(values, np.float32)


def with_nans(x, fraction=0.3):
    x = x.copy()
    x[RNG.random(x.shape) < fraction] = np.nan
    return x


# --- scans and counts ----------------------------------------------------------------------------------------------

@FAST
@given(st.sampled_from([(), (1,), (5,), (2, 3), (3, 1, 4)]), st.data())
def test_logcumsumexp(shape, data):
    check("logcumsumexp", randn(*shape) * 4, data.draw(dims(len(shape))))


def test_logcumsumexp_edges():
    check("logcumsumexp", floats(-INF, -INF, 0.0, INF, 1.0), 0)
    check("logcumsumexp", floats(50.0, 100.0, -100.0), -1)
    check("logcumsumexp", np.zeros((2, 0), np.float32), 1)
    with pytest.raises(TypeError, match="floating"):
        ops.logcumsumexp(jnp.arange(3), 0)


def test_bincount():
    x = randint(12, low=0, high=6)
    for args, kwargs in [((x,), {}), ((x,), {"minlength": 9}), ((x,), {"minlength": 2}),
                         ((x, randn(12)), {}), ((x, randint(12)), {"minlength": 8}),
                         ((np.zeros(0, np.int32),), {"minlength": 3}), ((np.zeros(0, np.int32),), {}),
                         ((np.array([0], np.int32),), {})]:
        check("bincount", *args, jit=False, **kwargs)
    for bad in (jnp.array([-1, 2]), jnp.array([[1, 2]]), jnp.array(2), jnp.array([1.0]), jnp.array([True])):
        with pytest.raises(ValueError, match="1-d non-negative integral"):
            ops.bincount(bad)
    with pytest.raises(ValueError, match="same length"):
        ops.bincount(jnp.array([1, 2]), jnp.ones(3))
    with pytest.raises(TypeError, match=r"jnp.bincount\(x, weights, length=N\)"):
        jax.jit(ops.bincount)(jnp.array([1, 2]))


# --- histograms ----------------------------------------------------------------------------------------------------

@FAST
@given(st.sampled_from([(0,), (1,), (7,), (3, 4)]), st.integers(1, 6), st.sampled_from([(0, 0), (-1, 1), (0.5, 0.5),
                                                                                        (-3, 0.25)]))
def test_histc(shape, bins, bounds):
    x = randn(*shape) * 1.5
    check("histc", x, bins, *bounds)
    check("histc", np.round(x), bins=bins, min=bounds[0], max=bounds[1])  # values on the bin edges


def test_histc_edges_and_errors():
    check("histc", floats(2.0, 2.0, 2.0), 3)  # one value: the range is widened by 1
    check("histc", floats(0.0, 1.0, 1.0, 3.0, 3.0))  # the right edge is in the last bin
    check("histc", floats(1.0, NAN, 2.0), 4, 0, 3)  # NaNs are not counted
    for bad, error, match in [(jnp.arange(3), TypeError, "floating"), (jnp.ones(2), ValueError, "bins")]:
        with pytest.raises(error, match=match):
            ops.histc(bad, 0 if error is ValueError else 3)
    with pytest.raises(ValueError, match="not finite"):
        ops.histc(jnp.array([1.0, INF]), 2)
    with pytest.raises(ValueError, match="min should not exceed max"):
        ops.histc(jnp.array([1.0]), 2, 3, 1)


@FAST
@given(st.sampled_from([(0,), (1,), (9,), (2, 5)]), st.integers(1, 5), st.sampled_from([None, (-1.0, 1.0),
                                                                                        (0.5, 0.5)]),
       st.booleans(), st.booleans())
def test_histogram_with_a_number_of_bins(shape, bins, bounds, weighted, density):
    x = randn(*shape)
    weight = RNG.random(shape).astype(np.float32) if weighted else None
    if density and x.size == 0:
        return  # 0 / 0 either way
    check("histogram", x, bins, range=bounds, weight=weight, density=density)


def test_histogram_with_edges_and_errors():
    x = randn(20) * 2
    edges = np.sort(randn(5) * 2)
    check("histogram", x, edges)
    check("histogram", x, edges, weight=RNG.random(20).astype(np.float32), density=True)
    check("histogram", floats(0.0, 1.0, 2.0, 2.0), floats(0.0, 1.0, 2.0))  # the right edge is in the last bin
    check("histogram", floats(2.0, 2.0, 2.0), 3)  # one value: widened by 0.5 on each side
    with pytest.raises(ValueError, match="bins must be > 0"):
        ops.histogram(jnp.ones(2), 0)
    with pytest.raises(ValueError, match="min should not exceed max"):
        ops.histogram(jnp.ones(2), 2, range=(2.0, 1.0))
    with pytest.raises(ValueError, match="float32"):
        ops.histogram(jnp.ones(2), jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="weight"):
        ops.histogram(jnp.ones(2), 2, weight=jnp.ones(3))
    with pytest.raises(TypeError, match="floating"):
        ops.histogram(jnp.arange(3), 2)


# --- quantiles and medians -----------------------------------------------------------------------------------------

INTERPOLATIONS = ["linear", "lower", "higher", "midpoint", "nearest"]


@HEAVY
@given(st.sampled_from([(1,), (5,), (2, 3), (4, 1), (2, 3, 4)]), st.data())
def test_quantile_and_nanquantile(shape, data):
    dim = data.draw(dims(len(shape), allow_none=True))
    keepdim = data.draw(st.booleans())
    interpolation = data.draw(st.sampled_from(INTERPOLATIONS))
    q = data.draw(st.sampled_from([0.0, 0.5, 1.0, 0.3, floats(0.0, 0.25, 0.5, 0.9, 1.0), floats(0.5), np.float32(
        0.75)]))
    ties = np.round(randn(*shape) * 2)  # repeated values: every interpolation mode matters
    check("quantile", ties, q, dim, keepdim, interpolation=interpolation)
    check("nanquantile", with_nans(ties), q, dim, keepdim=keepdim, interpolation=interpolation)
    check("quantile", with_nans(randn(*shape)), q, dim, keepdim, interpolation=interpolation)  # NaN where a NaN is


def test_quantile_edges_and_errors():
    check("quantile", np.float32(3.0), floats(0.2, 0.8))
    check("quantile", np.float32(3.0), 0.5, 0, keepdim=True)
    check("nanquantile", floats(NAN, NAN), 0.5)
    check("nanquantile", np.array([[NAN, NAN, NAN], [1.0, NAN, 2.0]], np.float32), floats(0.1, 0.5), 1)
    check("quantile", floats(0.0, 1.0, 2.0, 3.0), floats(0.5, 1 / 6, 5 / 6), interpolation="nearest")  # half to even
    for args, kwargs, error, match in [
        ((jnp.arange(3), 0.5), {}, TypeError, "float32 or float64"),
        ((jnp.zeros(0), 0.5), {}, ValueError, "non-empty"),
        ((jnp.ones(3), 1.5), {}, ValueError, r"range \[0, 1\]"),
        ((jnp.ones(3), jnp.array([[0.5]])), {}, ValueError, "scalar or a 1-d"),
        ((jnp.ones(3), jnp.array([0.5], jnp.float16)), {}, TypeError, "dtype"),
        ((jnp.ones(3), 0.5), {"interpolation": "cubic"}, ValueError, "interpolation must be one of"),
    ]:
        for name in ("quantile", "nanquantile"):
            with pytest.raises(error, match=match):
                getattr(ops, name)(*args, **kwargs)


def _same_median(ours, theirs, x, dim, keepdim):
    """Values as torch's; each index points at an element equal to its value (NaN for NaN)."""
    same(ours.values, theirs.values)
    assert ours.indices.dtype == jnp.int32 and ours.indices.shape == tuple(theirs.indices.shape)
    indices = np.asarray(ours.indices)
    if x.ndim:
        axis = dim % x.ndim
        picked = np.take_along_axis(x, indices if keepdim else np.expand_dims(indices, axis), axis)
        picked = picked if keepdim else np.squeeze(picked, axis)
    else:
        picked = x
    np.testing.assert_array_equal(picked, np.asarray(ours.values))


@HEAVY
@given(st.sampled_from([(), (1,), (6,), (3, 4), (2, 5, 3)]), st.data())
def test_nanmedian(shape, data):
    distinct = with_nans(randn(*shape))
    check("nanmedian", distinct)
    check("nanmedian", np.round(distinct * 2))
    dim = data.draw(dims(len(shape)))
    keepdim = data.draw(st.booleans())
    for x in (distinct, np.round(distinct * 2), randint(*shape, low=-2, high=3)):  # NaNs, ties, integers
        theirs = torch.nanmedian(torch.from_numpy(np.asarray(x)), dim, keepdim)
        _same_median(ops.nanmedian(jnp.asarray(x), dim, keepdim), theirs, x, dim, keepdim)
        _same_median(jax.jit(lambda a: ops.nanmedian(a, dim, keepdim))(jnp.asarray(x)), theirs, x, dim, keepdim)


def test_nanmedian_edges():
    check("nanmedian", floats(NAN, NAN, NAN))
    check("nanmedian", np.zeros(0, np.float32))
    check("nanmedian", np.zeros((0, 3), np.float32), 1)
    check("nanmedian", floats(1.0, NAN, 3.0, NAN, 2.0), 0)  # the only 2 is at index 4
    with pytest.raises(IndexError, match="non-zero size"):
        ops.nanmedian(jnp.zeros((0, 3)), 0)


# --- covariance, correlation, renorm --------------------------------------------------------------------------------

@FAST
@given(st.sampled_from([(), (4,), (1, 5), (3, 6), (2, 2)]), st.sampled_from([0, 1, 2]), st.booleans(),
       st.booleans())
def test_cov(shape, correction, use_fweights, use_aweights):
    n = shape[-1] if shape else 1
    fweights = RNG.permutation(np.arange(1, n + 1) % 4).astype(np.int32) if use_fweights else None  # not all 0
    aweights = RNG.random(n).astype(np.float32) + 0.1 if use_aweights else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's "degrees of freedom is <= 0"
        check("cov", randn(*shape), correction=correction, fweights=fweights, aweights=aweights, rtol=1e-4,
              atol=1e-5)
        check("cov", randint(*shape), correction=correction, fweights=fweights, aweights=aweights, rtol=1e-4,
              atol=1e-5)


def test_cov_of_one_weighted_observation_is_exact_as_torch():
    # x * w / w rounds away from x for ~1 in 8 values: torch takes the exact mean (and, for aweights with correction
    # 1, zero degrees of freedom), so its 0/0 is nan where rounding noise would give 0 or inf
    xs, ws = RNG.standard_normal(32).astype(np.float32), RNG.random(32).astype(np.float32) + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for x, w in zip(xs, ws, strict=True):
            for correction in (0, 1, 2):
                check("cov", x, correction=correction, aweights=np.array([w]))
                check("cov", x, correction=correction, fweights=np.array([3]))


def test_corrcoef_and_cov_errors():
    for x in (randn(3, 6), randn(5), randint(2, 4), floats(1.0, 1.0, 1.0), np.array([[1.0, 2.0, 4.0], [1.0, 1.0,
                                                                                                       1.0]],
                                                                                     np.float32)):
        check("corrcoef", x, rtol=1e-4, atol=1e-5)
    x = randn(2, 4) + 1j * randn(2, 4)
    np.testing.assert_allclose(ops.cov(jnp.asarray(x)), torch.cov(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ops.corrcoef(jnp.asarray(x)), torch.corrcoef(torch.from_numpy(x)).numpy(), rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError, match="two or fewer dims"):
        ops.cov(jnp.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="fweights"):
        ops.cov(jnp.ones((2, 3)), fweights=jnp.ones(3))
    with pytest.raises(ValueError, match="aweights"):
        ops.cov(jnp.ones((2, 3)), aweights=jnp.ones(2))
    with pytest.raises(ValueError, match="negative"):
        ops.cov(jnp.ones((2, 3)), fweights=jnp.array([1, -1, 1]))
    with pytest.raises(ValueError, match="sum to zero"):
        ops.cov(jnp.ones((2, 3)), fweights=jnp.array([0, 0, 0]))


@FAST
@given(st.sampled_from([(3, 4), (2, 3, 2), (1, 5), (4, 1)]), st.sampled_from([1, 2, 3.5, INF]), st.data())
def test_renorm(shape, p, data):
    x = randn(*shape) * 3
    dim = data.draw(dims(len(shape)))
    check("renorm", x, p, dim, data.draw(st.sampled_from([0.0, 0.5, 2.0, 100.0])))


def test_renorm_errors():
    for args, error, match in [((jnp.ones(3), 2, 0, 1.0), ValueError, "at least 2 dims"),
                               ((jnp.ones((2, 2)), 0, 0, 1.0), ValueError, "positive"),
                               ((jnp.ones((2, 2)), 2, 0, -1.0), ValueError, "maxnorm"),
                               ((jnp.ones((2, 2), int), 2, 0, 1.0), TypeError, "floating")]:
        with pytest.raises(error, match=match):
            ops.renorm(*args)


# --- integrals ------------------------------------------------------------------------------------------------------

@HEAVY
@given(st.sampled_from([(1,), (5,), (2, 3), (3, 4, 2), (2, 0)]), st.data())
def test_trapezoid_family(shape, data):
    y = randn(*shape)
    dim = data.draw(dims(len(shape)))
    n = shape[dim]
    x_1d = np.sort(randn(n))
    x_full = np.sort(randn(*shape), axis=dim)
    for name in ("trapezoid", "trapz", "cumulative_trapezoid"):
        check(name, y, dim=dim)
        check(name, y, dx=2.5, dim=dim)
        check(name, y, x_1d, dim=dim)
        check(name, y, x_full, dim=dim)
        check(name, randint(*shape), dim=dim)  # integers give float32
        check(name, randint(*shape), randint(n), dim=dim)


def test_trapezoid_broadcasting_and_errors():
    y = randn(2, 3, 4)
    check("trapezoid", y, np.sort(randn(3, 4), -1))  # x's shape padded on the left
    check("cumulative_trapezoid", y, np.sort(randn(4)), dim=-1)
    with pytest.raises(IndexError, match="0-d"):
        ops.trapezoid(jnp.array(1.0))
    with pytest.raises(ValueError, match="one x value for each sample point"):
        ops.trapezoid(jnp.ones((2, 3)), jnp.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="not both"):
        ops.trapezoid(jnp.ones(3), jnp.ones(3), dx=2)


# --- runs -----------------------------------------------------------------------------------------------------------

@FAST
@given(st.sampled_from([(), (1,), (9,), (4, 3), (3, 2, 2)]), st.data())
def test_unique_consecutive(shape, data):
    x = randint(*shape, low=0, high=2)  # long runs
    dim = data.draw(dims(len(shape), allow_none=True)) if shape else None
    if dim is not None:  # repeat some slices so that runs of slices occur
        x = np.repeat(x, data.draw(st.integers(1, 2)), axis=dim)
    for inverse in (False, True):
        for counts in (False, True):
            check("unique_consecutive", x, inverse, counts, dim, jit=False)


def test_unique_consecutive_edges():
    check("unique_consecutive", np.zeros(0, np.int32), return_inverse=True, return_counts=True, jit=False)
    check("unique_consecutive", floats(1.0, 1.0, NAN, NAN, 2.0), return_counts=True, jit=False)
    with pytest.raises(TypeError, match="jnp.nonzero"):
        jax.jit(ops.unique_consecutive)(jnp.array([1, 1, 2]))


# --- set products, stacking, splitting --------------------------------------------------------------------------------

def test_block_diag():
    check("block_diag", np.float32(1.0), floats(2.0, 3.0), randint(2, 2), np.zeros((0, 2), np.int32))
    check("block_diag", randint(2, 3), randint(1, 1))
    check("block_diag", np.zeros((2, 0), np.float32), randn(1, 3))
    check("block_diag")
    with pytest.raises(ValueError, match="2 or fewer dims"):
        ops.block_diag(jnp.ones((1, 1, 1)))


@pytest.mark.parametrize("sizes", [(3,), (2, 3), (2, 1, 3), (0, 2), (1, 1, 1, 1)])
def test_cartesian_prod(sizes):
    check("cartesian_prod", *[randint(n) for n in sizes])
    with pytest.raises(TypeError, match="one dtype"):
        ops.cartesian_prod(jnp.ones(2), jnp.arange(2))
    with pytest.raises(ValueError, match="1-d"):
        ops.cartesian_prod(jnp.ones((2, 2)))


@pytest.mark.parametrize("n", [0, 1, 2, 4])
def test_combinations(n):
    x = randn(n)
    for r in range(5):
        for with_replacement in (False, True):
            check("combinations", x, r, with_replacement)
    with pytest.raises(ValueError, match="non-negative"):
        ops.combinations(jnp.ones(3), -1)
    with pytest.raises(ValueError, match="1-d"):
        ops.combinations(jnp.ones((2, 2)))


def test_column_and_row_stack():
    check("column_stack", [np.float32(1.0), floats(2.0)])
    check("column_stack", [randint(3), randn(3, 2), randint(3, 1)])
    check("row_stack", [randint(3), randn(2, 3)])
    check("row_stack", [randn(2, 2, 1), randn(1, 2, 1)])
    with pytest.raises(ValueError, match="non-empty"):
        ops.column_stack([])


@pytest.mark.parametrize(("name", "shape", "how"), [
    ("hsplit", (6,), 3), ("hsplit", (6,), [1, 4]), ("hsplit", (2, 4, 3), 2), ("hsplit", (2, 4), [0, 9]),
    ("vsplit", (4, 2), 2), ("vsplit", (4, 2, 1), [1, 1, 3]), ("dsplit", (1, 2, 6), 3), ("dsplit", (1, 2, 6, 2), [4]),
    ("hsplit", (2, 0), 1),
])
def test_hsplit_vsplit_dsplit(name, shape, how):
    check(name, randn(*shape), how)


def test_splits_refuse_what_torch_refuses():
    for name, x, how, match in [("hsplit", jnp.array(1.0), 1, "at least 1 dims"),
                                ("vsplit", jnp.ones(4), 2, "at least 2 dims"),
                                ("dsplit", jnp.ones((2, 2)), 2, "at least 3 dims"),
                                ("hsplit", jnp.ones(4), 3, "not divisible"), ("vsplit", jnp.ones((4, 1)), 0,
                                                                              "not divisible")]:
        with pytest.raises(ValueError, match=match):
            getattr(ops, name)(x, how)


@pytest.mark.parametrize("indices", [[3, 1], [-2], [0, 9], [-9, 2], [2, 2]])
def test_tensor_split_reads_indices_as_python_slices(indices):
    check("tensor_split", randn(5, 2), indices)  # out of range, negative and decreasing cut points, as torch


@pytest.mark.parametrize(("shape", "sizes", "dim"), [((5, 2), [2, 3], 0), ((2, 6), [0, 6, 0], -1),
                                                     ((3, 4, 2), [1, 1], 2), ((0, 2), [0], 0)])
def test_split_with_sizes(shape, sizes, dim):
    check("split_with_sizes", randn(*shape), sizes, dim)
    with pytest.raises(ValueError, match="sum exactly"):
        ops.split_with_sizes(jnp.zeros(shape), [*sizes, 1], dim)


def test_adjoint_and_resolve():
    for shape in ((2, 3), (4, 1, 3), (2, 2, 0)):
        check("adjoint", randn(*shape))
    z = (randn(2, 3) + 1j * randn(2, 3)).astype(np.complex64)
    same(ops.adjoint(jnp.asarray(z)), torch.from_numpy(z).adjoint().resolve_conj())
    for name in ("resolve_conj", "resolve_neg"):
        check(name, randn(2, 3))
        same(getattr(ops, name)(jnp.asarray(z).conj()), getattr(torch.from_numpy(z).conj(), name)().resolve_conj())
    with pytest.raises(ValueError, match="matrices"):
        ops.adjoint(jnp.ones(3))


# --- pointwise ------------------------------------------------------------------------------------------------------

@FAST
@given(small_shapes)
def test_heaviside_frexp(shape):
    x = np.round(randn(*shape))  # zeros are common
    check("heaviside", x, floats(0.5))
    check("heaviside", x, randn(*shape))
    check("heaviside", randint(*shape), np.array([7], np.int32))
    scaled = randn(*shape) * 10.0 ** RNG.integers(-20, 20, shape)
    check("frexp", scaled.astype(np.float32))


def test_igamma_igammac():
    a, b = RNG.uniform(0.05, 6, (3, 5)).astype(np.float32), RNG.uniform(0, 8, (3, 5)).astype(np.float32)
    for name in ("igamma", "igammac"):
        check(name, a, b, rtol=1e-4, atol=1e-6)
        check(name, a[:1], np.float32(2.5), rtol=1e-4, atol=1e-6)
        check(name, floats(0.5, 1.0, 2.0), floats(0.0, 0.0, INF), rtol=1e-4)
        same(getattr(ops.special, {"igamma": "gammainc", "igammac": "gammaincc"}[name])(jnp.asarray(a), b),
             getattr(torch, name)(torch.from_numpy(a), torch.from_numpy(b)), rtol=1e-4, atol=1e-6)


def test_pointwise_edges():
    check("heaviside", floats(NAN, -INF, INF, 0.0, -0.0), floats(3.0))
    check("heaviside", np.array([True, False]), np.array([True]))
    check("frexp", floats(INF, -INF, NAN, 0.0, -0.0, 1.0, -3.0, 1e30))
    check("frexp", np.array([1.5, 1e30], np.float64))  # float32 without x64
    check("frexp", np.array([1.5, 0.25], np.float16))
    with pytest.raises(TypeError, match="same dtype"):
        ops.heaviside(jnp.ones(2), jnp.ones(1, int))
    with pytest.raises(TypeError, match="floating"):
        ops.frexp(jnp.arange(3))


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_polygamma_both_argument_orders(n):
    x = np.concatenate([RNG.uniform(0.1, 8, 10), [-1.5, -0.3, 0.5, 1.0]]).astype(np.float32)
    check("polygamma", n, x, method=False, rtol=1e-4, atol=1e-5)  # torch.polygamma(n, x)
    check("polygamma", x, n, method=True, rtol=1e-4, atol=1e-5)  # x.polygamma(n)
    check("polygamma", n, np.arange(1, 5, dtype=np.int32), method=False, rtol=1e-4)
    same(ops.special.polygamma(n, jnp.asarray(x)), torch.special.polygamma(n, torch.from_numpy(x)), rtol=1e-4,
         atol=1e-5)
    if n == 0:
        check("polygamma", 0, floats(0.0), method=False)  # digamma(0) = -inf
    with pytest.raises(ValueError, match="non-negative int"):
        ops.polygamma(-1, jnp.ones(2))


@pytest.mark.parametrize("p", [1, 2, 3, 5])
def test_mvlgamma(p):
    x = RNG.uniform((p - 1) / 2 + 0.01, 10, (3, 4)).astype(np.float32)
    check("mvlgamma", x, p, rtol=1e-5, atol=1e-5)
    check("mvlgamma", x, p=p, rtol=1e-5, atol=1e-5)
    check("mvlgamma", np.arange(p, p + 3, dtype=np.int32), p, rtol=1e-5, atol=1e-5)
    same(ops.special.multigammaln(jnp.asarray(x), p), torch.special.multigammaln(torch.from_numpy(x), p), rtol=1e-5,
         atol=1e-5)
    with pytest.raises(ValueError, match="p has to be"):
        ops.mvlgamma(jnp.ones(2), 0)


def test_addr_and_diagflat():
    v1, v2 = randn(3), randn(4)
    for input_shape in ((3, 4), (4,), (1, 4), (3, 1), ()):
        check("addr", randn(*input_shape), v1, v2)
        check("addr", randn(*input_shape), v1, v2, beta=0.5, alpha=-2.0)
    check("addr", np.full((3, 4), np.nan, np.float32), v1, v2, beta=0)  # NaN input is left out
    check("addr", randint(3, 4), randint(3), randint(4), alpha=2, beta=3)
    for x in (np.float32(2.0), randn(3), randint(2, 2), randn(2, 1, 2)):
        for offset in (0, 1, -2):
            check("diagflat", x, offset)
    with pytest.raises(ValueError, match="1-d vec1 and vec2"):
        ops.addr(jnp.ones((2, 2)), jnp.ones((2, 1)), jnp.ones(2))
    with pytest.raises(ValueError, match="broadcast"):
        ops.addr(jnp.ones((2, 2)), jnp.ones(2), jnp.ones(3))


# --- scatters into a slice, a range, a diagonal ----------------------------------------------------------------------

@FAST
@given(st.sampled_from([(3,), (2, 3), (3, 1, 4), (2, 3, 2, 2)]), st.data())
def test_select_and_slice_scatter(shape, data):
    x = randn(*shape)
    dim = data.draw(dims(len(shape)))
    n = shape[dim]
    index = data.draw(st.integers(-n, n - 1))
    part = shape[:dim % len(shape)] + shape[dim % len(shape) + 1:]
    check("select_scatter", x, randn(*part), dim, index)
    check("select_scatter", x, randint(*part), dim, index)  # src converted to input's dtype
    start = data.draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
    end = data.draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
    step = data.draw(st.integers(1, 3))
    length = len(range(*slice(start, end, step).indices(n)))
    size = list(shape)
    size[dim] = length
    check("slice_scatter", x, randn(*size), dim, start, end, step)
    check("slice_scatter", x, randn(*size), dim=dim, start=start, end=end, step=step)


@FAST
@given(st.sampled_from([(3, 3), (2, 4), (4, 2), (2, 3, 4), (3, 1, 2, 2)]), st.data())
def test_diagonal_scatter(shape, data):
    x = randn(*shape)
    dim1, dim2 = data.draw(st.lists(dims(len(shape)), min_size=2, max_size=2).filter(
        lambda d: d[0] % len(shape) != d[1] % len(shape)))
    offset = data.draw(st.integers(-5, 5))
    part = torch.diagonal(torch.from_numpy(x), offset, dim1, dim2).shape
    check("diagonal_scatter", x, randn(*part), offset, dim1, dim2)


def test_scatter_errors():
    with pytest.raises(ValueError, match="shape of the part"):
        ops.select_scatter(jnp.zeros((2, 3)), jnp.ones(2), 0, 1)
    with pytest.raises(IndexError, match="out of range"):
        ops.select_scatter(jnp.zeros((2, 3)), jnp.ones(3), 0, 5)
    with pytest.raises(ValueError, match="shape of the part"):
        ops.slice_scatter(jnp.zeros((4, 3)), jnp.ones((3, 3)), 0, 0, 4, 2)
    with pytest.raises(ValueError, match="step must be positive"):
        ops.slice_scatter(jnp.zeros(4), jnp.ones(2), step=0)
    with pytest.raises(ValueError, match="shape of the part"):
        ops.diagonal_scatter(jnp.zeros((2, 3)), jnp.ones(3), 1)
    with pytest.raises(ValueError, match="identical"):
        ops.diagonal_scatter(jnp.zeros((2, 3)), jnp.ones(2), 0, 1, -1)


# --- creation -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("x", [randint(4), randn(3), np.array([True, False]), np.zeros(0, np.float32),
                               np.array([2, 3], np.uint8)])
def test_vander(x):
    for n in (None, 0, 1, 3, 5):
        for increasing in (False, True):
            check("vander", x, n, increasing, rtol=1e-5)
            check("vander", x, N=n, increasing=increasing)
    with pytest.raises(ValueError, match="1-d"):
        ops.vander(jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        ops.vander(jnp.ones(2), -1)


# --- the catalogue --------------------------------------------------------------------------------------------------

NEW = ["logcumsumexp", "bincount", "histc", "histogram", "quantile", "nanquantile", "nanmedian", "block_diag",
       "cartesian_prod", "combinations", "column_stack", "row_stack", "hsplit", "vsplit", "dsplit",
       "split_with_sizes", "heaviside", "adjoint", "resolve_conj", "resolve_neg", "addr", "renorm", "trapezoid",
       "trapz", "cumulative_trapezoid", "vander", "frexp", "igamma", "igammac", "polygamma", "mvlgamma", "diagflat",
       "select_scatter", "slice_scatter", "diagonal_scatter", "cov", "corrcoef", "unique_consecutive"]


@pytest.mark.parametrize("name", NEW)
def test_new_names_are_torchs_functions_and_methods(name):
    assert name in ops.__all__ and callable(getattr(ops, name))
    assert (name in ops.METHODS) == hasattr(torch.Tensor, name), name  # a method-function where torch has a method
    assert math.isfinite(len(getattr(ops, name).__doc__ or "")) and ">>>" in getattr(ops, name).__doc__


@pytest.mark.parametrize(("name", "args"), [
    ("heaviside_", (floats(0.5),)), ("addr_", (randn(3), randn(4))), ("igamma_", (RNG.uniform(0.1, 3, (3, 4)),)),
    ("igammac_", (RNG.uniform(0.1, 3, (3, 4)),)), ("polygamma_", (2,)), ("mvlgamma_", (2,)), ("renorm_", (2, 1, 1.0)),
])
def test_inplace_variants(name, args):
    x = np.round(RNG.uniform(0.6, 4, (3, 4)), 1).astype(np.float32)
    args = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args)
    theirs = getattr(torch.from_numpy(x.copy()), name)(*(torch.from_numpy(a) if isinstance(a, np.ndarray) else a
                                                          for a in args))
    same(getattr(ops, name)(jnp.asarray(x), *(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)),
         theirs, rtol=1e-4, atol=1e-5)
    assert name in ops.INPLACE


def test_ported_calls_keep_torchs_meaning():
    from jnn.port import port_source

    source = ("import torch\n"
              "def f(x, y):\n"
              "    return (torch.polygamma(1, x) + x.polygamma(2), x.hsplit(2), torch.quantile(x, 0.25, dim=1),\n"
              "            x.nanmedian(dim=0).values, torch.cov(x), x.select_scatter(y, 0, 1), x.renorm(2, 0, 5.0))\n")
    ported, original = {}, {}
    exec(port_source(source, report=None), ported)
    exec(source, original)
    x, y = RNG.uniform(0.5, 4, (3, 4)).astype(np.float32), randn(4)
    same(ported["f"](jnp.asarray(x), jnp.asarray(y)), original["f"](torch.from_numpy(x), torch.from_numpy(y)),
         rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("shape", "sparse_dim", "dtype"), [
    ((), None, np.float32), ((2, 3), None, np.float32), ((2, 2), None, np.bool_), ((3, 2, 2), None, np.int32),
    ((3, 2, 2), 1, np.float32), ((3, 2, 2), 2, np.float32), ((0, 2), None, np.float32),
])
def test_to_sparse_matches_torch(shape, sparse_dim, dtype):
    """x.to_sparse(): torch's coalesced COO indices and values (hybrid with sparse_dim), back with to_dense()."""
    x = np.asarray(RNG.integers(0, 3, shape) * (RNG.random(shape) < 0.5)).astype(dtype)
    if shape == (2, 3):
        x[:] = 0  # nothing stored
    args = () if sparse_dim is None else (sparse_dim,)
    theirs = torch.from_numpy(x).to_sparse(*args)
    ours = ops.to_sparse(jnp.asarray(x), *args)
    for got, want in ((ours.indices(), theirs.indices()), (ours.values(), theirs.values()),
                      (ours.to_dense(), theirs.to_dense())):
        np.testing.assert_array_equal(np.asarray(got), want.numpy())
        assert np.asarray(got).dtype == (jax.dtypes.canonicalize_dtype(np.int64) if want.dtype == torch.int64
                                         else want.numpy().dtype)  # int64 is int32 without x64, as jnn's indices
    assert (ours._nnz(), ours.sparse_dim(), ours.dense_dim(), ours.shape, ours.dim(), ours.is_sparse) == \
        (theirs._nnz(), theirs.sparse_dim(), theirs.dense_dim(), tuple(theirs.shape), theirs.dim(), True)
    assert ours.is_coalesced() and ours.coalesce() is ours and ops.to_sparse(ours) is ours
    assert ops.attr(ours, "is_sparse") and ops.attr(ours, "layout") == ops.sparse_coo
    np.testing.assert_array_equal(jax.jit(lambda s: s.to_dense())(ours), x)  # a pytree: it crosses jit
    if sparse_dim == 2:  # the same hybrid, asked for by its dense dims
        np.testing.assert_array_equal(ops.to_sparse(jnp.asarray(x), dense_dim=1).values(), theirs.values().numpy())


def test_to_sparse_refuses_what_torch_refuses():
    x = jnp.ones((2, 2))
    with pytest.raises(RuntimeError, match=r"sparse_dim argument must be in \[0,2\] range, but 3"):
        ops.to_sparse(x, 3)
    with pytest.raises(RuntimeError, match="sparse_dim argument must be in >0 when self.dim"):
        ops.to_sparse(x, 0)
    with pytest.raises(RuntimeError, match="sparse_dim argument !=self.sparse_dim"):
        ops.to_sparse(ops.to_sparse(x), 1)
    with pytest.raises(NotImplementedError, match="sparse COO tensors only"):
        ops.to_sparse(x, layout="sparse_csr")
    with pytest.raises(TypeError, match="needs a concrete value"):
        jax.jit(ops.to_sparse)(x)


def test_sparse_buffer_in_module():
    """A module holds a sparse buffer as torch does (Whisper's alignment heads): it passes through jit with the
    module, Module.to casts floating values, a non-persistent one stays out of the state_dict."""
    import jnn

    class Heads(jnn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("heads", ops.to_sparse(jnp.array([[0.0, 2.0], [0.0, 0.0]])), persistent=False)

        def forward(self, x):
            return x * self.heads.to_dense()

    m = Heads()
    assert m.state_dict() == {} and [k for k, _ in m.named_buffers()] == ["heads"]
    np.testing.assert_array_equal(jax.jit(lambda m, x: m(x))(m, jnp.ones((2, 2))), [[0, 2], [0, 0]])
    assert m.half().heads.values().dtype == jnp.float16 and m.heads.indices().tolist() == [[0], [1]]
    m.heads = ops.to_sparse(jnp.eye(2))
    assert m.heads._nnz() == 2
    with pytest.raises(TypeError, match="sparse tensor"):
        m.heads = "not an array"
