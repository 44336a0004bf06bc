"""jnn.ops against torch: every function on many shapes and dims, eagerly and under jax.jit, with result dtypes.

torch's int64/float64 results are compared with JAX's canonical dtypes (int32/float32 without x64).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn
from jnn import ops

FAST = settings(max_examples=10, deadline=None)
HEAVY = settings(max_examples=5, deadline=None)  # for the tests that check a dozen functions per example
RNG = np.random.default_rng(0)


# --- the oracle -----------------------------------------------------------------------------------------------

def _to_torch(obj):
    if isinstance(obj, (np.ndarray, np.generic)):
        obj = np.array(obj)
        t = torch.from_numpy(obj)
        return t.long() if obj.dtype.kind in "iu" and obj.dtype != np.uint8 else t
    if isinstance(obj, list):
        return [_to_torch(o) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_to_torch(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    return obj


def _to_jax(obj):
    def convert(a):
        if isinstance(a, (np.ndarray, np.generic)):
            return jnp.asarray(a)
        if isinstance(a, torch.dtype):
            return torch.empty(0, dtype=a).numpy().dtype
        return a

    return jax.tree_util.tree_map(convert, obj, is_leaf=lambda a: isinstance(a, (np.ndarray, np.generic, torch.dtype)))


def _expected_dtype(t: torch.Tensor) -> np.dtype:
    return jax.dtypes.canonicalize_dtype(torch.empty(0, dtype=t.dtype).numpy().dtype)


def same(ours, theirs, rtol=1e-5, atol=1e-6, where="result"):
    """``ours`` equals torch's ``theirs``: values, shapes and (canonical) dtypes, through tuples and namedtuples."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, (jax.Array, np.ndarray)), f"{where}: expected an array, got {type(ours)}"
        expected = theirs.detach().numpy()
        assert ours.shape == expected.shape, f"{where}: shape {ours.shape} != torch's {expected.shape}"
        assert ours.dtype == _expected_dtype(theirs), f"{where}: dtype {ours.dtype} != torch's {theirs.dtype}"
        if expected.dtype.kind in "biu":
            np.testing.assert_array_equal(np.asarray(ours), expected, err_msg=where)
        else:
            np.testing.assert_allclose(np.asarray(ours, np.float64), expected.astype(np.float64), rtol=rtol,
                                       atol=atol, equal_nan=True, err_msg=where)
    elif isinstance(theirs, (tuple, list)) and not isinstance(theirs, torch.Size):
        assert isinstance(ours, (tuple, list)), f"{where}: expected a sequence, got {type(ours)}"
        assert len(ours) == len(theirs), f"{where}: {len(ours)} items, torch has {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            same(a, b, rtol, atol, f"{where}[{i}]")
        for field in ("values", "indices"):
            if hasattr(theirs, field):
                same(getattr(ours, field), getattr(theirs, field), rtol, atol, f"{where}.{field}")
    elif isinstance(theirs, torch.Size):
        assert tuple(ours) == tuple(theirs), where
    else:
        assert ours == theirs, f"{where}: {ours!r} != torch's {theirs!r}"


def check(name, *args, method=None, jit=True, torch_name=None, rtol=1e-5, atol=1e-6, **kwargs):
    """``ops.name(*args, **kwargs)`` eagerly (and jitted, arrays as arguments) against torch's function, or its
    Tensor method when ``method`` (default: when torch has no function of that name)."""
    torch_name = torch_name or name
    if method is None:  # torch's Tensor method when there is one (its varargs sizes), else torch's function
        method = hasattr(torch.Tensor, torch_name) if name in ops.METHODS else not hasattr(torch, torch_name)
    targs, tkwargs = _to_torch(args), _to_torch(kwargs)
    theirs = getattr(targs[0], torch_name)(*targs[1:], **tkwargs) if method else \
        getattr(torch, torch_name)(*targs, **tkwargs)
    fn = getattr(ops, name)
    same(fn(*_to_jax(args), **_to_jax(kwargs)), theirs, rtol, atol, f"ops.{name}")
    if jit:
        leaves, tree = jax.tree_util.tree_flatten(_to_jax((args, kwargs)), is_leaf=lambda a: isinstance(a, jax.Array))
        positions = [i for i, a in enumerate(leaves) if isinstance(a, jax.Array)]

        def call(arrays):
            filled = list(leaves)
            for i, a in zip(positions, arrays, strict=True):
                filled[i] = a
            a, k = jax.tree_util.tree_unflatten(tree, filled)
            return fn(*a, **k)

        same(jax.jit(call)([jnp.asarray(leaves[i]) for i in positions]), theirs, rtol, atol, f"jit(ops.{name})")
    return theirs


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def randint(*shape, low=-5, high=6):
    return RNG.integers(low, high, shape).astype(np.int32)


# a few shapes, so that JAX's per-shape compilation caches serve most examples
shapes = st.sampled_from([(), (1,), (4,), (2, 3), (3, 1), (1, 4, 2), (2, 3, 4), (2, 1, 3, 2)])
small_shapes = st.sampled_from([(1,), (4,), (2, 3), (3, 1), (1, 4, 2), (2, 3, 4)])


def dims(ndim, allow_none=False):
    size = max(ndim, 1)
    strategy = st.integers(-size, size - 1)
    return st.one_of(st.none(), strategy) if allow_none else strategy


# --- shape and view -----------------------------------------------------------------------------------------------

@FAST
@given(shapes, st.data())
def test_view_and_reshape_with_minus_one(shape, data):
    x = randn(*shape)
    n = x.size
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    d = data.draw(st.sampled_from(divisors))
    for name in ("view", "reshape"):
        check(name, x, d, -1, jit=False)
        check(name, x, (-1, d), jit=False)
    check("reshape", x, -1)


@FAST
@given(shapes, st.data())
def test_flatten_unflatten(shape, data):
    x = randn(*shape)
    ndim = max(x.ndim, 1)
    start = data.draw(st.integers(0, ndim - 1))
    end = data.draw(st.integers(start, ndim - 1))
    check("flatten", x, start - data.draw(st.sampled_from([0, ndim])), end - data.draw(st.sampled_from([0, ndim])),
          jit=False)
    if x.ndim:
        d = data.draw(dims(x.ndim))
        check("unflatten", x, d, (1, x.shape[d], 1), jit=False)
        check("unflatten", x, d, (-1, 1), jit=False)


@FAST
@given(shapes, st.data())
def test_transpose_permute_movedim(shape, data):
    x = randn(*shape)
    if x.ndim:
        a, b = data.draw(dims(x.ndim)), data.draw(dims(x.ndim))
        for name in ("transpose", "swapaxes", "swapdims"):
            check(name, x, a, b, jit=False)
        perm = data.draw(st.permutations(range(x.ndim)))
        negative = [p - x.ndim if i % 2 else p for i, p in enumerate(perm)]
        check("permute", x, tuple(negative), jit=False)
        check("permute", x, *perm, method=True, jit=False)
        check("movedim", x, a, b, jit=False)
    if x.ndim <= 2:
        check("t", x, jit=False)


@FAST
@given(shapes, st.data())
def test_squeeze_unsqueeze(shape, data):
    shape = tuple(data.draw(st.sampled_from([1, s])) for s in shape)
    x = randn(*shape)
    check("squeeze", x, jit=False)
    if x.ndim:
        check("squeeze", x, data.draw(dims(x.ndim)), jit=False)
        check("squeeze", x, tuple(sorted({data.draw(dims(x.ndim)) % x.ndim for _ in range(2)})), jit=False)
    check("unsqueeze", x, data.draw(st.integers(-x.ndim - 1, x.ndim)), jit=False)


@FAST
@given(shapes, st.data())
def test_expand_repeat_tile(shape, data):
    shape = tuple(data.draw(st.sampled_from([1, s])) for s in shape)
    x = randn(*shape)
    lead = data.draw(st.integers(0 if x.ndim else 1, 2))
    target = [data.draw(st.integers(1, 3)) for _ in range(lead)] + [
        data.draw(st.sampled_from([-1, 3] if s == 1 else [-1, s])) for s in shape]
    check("expand", x, *target, jit=False)
    check("expand", x, tuple(target), jit=False)
    reps = [data.draw(st.integers(1, 3)) for _ in range(x.ndim + lead)]
    check("repeat", x, *reps, jit=False)
    check("tile", x, tuple(reps[:max(x.ndim - 1, 0)] or reps), jit=False)
    y = randn(*[abs(t) if t != -1 else (shape[i - lead] if i >= lead else 1) for i, t in enumerate(target)])
    check("expand_as", x, y, jit=False)


@FAST
@given(st.sampled_from([(5,), (2, 7), (3, 1, 4)]), st.data())
def test_split_chunk_unbind(shape, data):
    x = randn(*shape)
    d = data.draw(dims(x.ndim))
    n = x.shape[d]
    size = data.draw(st.integers(1, n + 1))
    check("split", x, size, d, jit=False)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
    sections = [b - a for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    check("split", x, sections, dim=d, jit=False)
    check("chunk", x, data.draw(st.integers(1, n + 2)), d, jit=False)
    check("tensor_split", x, data.draw(st.integers(1, n + 2)), d, jit=False)
    check("unbind", x, d, jit=False)
    start = data.draw(st.integers(-n, n - 1))
    length = data.draw(st.integers(0, n - start % n))
    check("narrow", x, d, start, length, jit=False)
    check("select", x, d, data.draw(st.integers(-n, n - 1)), jit=False)


def test_tensor_split_keywords():
    """torch's three overloads, by keyword too: ``sections=``, ``indices=`` (torchvision's MViT), a tensor
    ``tensor_indices_or_sections=`` (0-d: sections, 1-d: indices); one of them and only one."""
    x = randn(2, 7)
    check("tensor_split", x, sections=3, dim=1, jit=False)
    check("tensor_split", x, indices=(1, 5), dim=1, jit=False)
    check("tensor_split", x, indices=[4], jit=False)
    check("tensor_split", x, tensor_indices_or_sections=np.array(3), dim=1, jit=False)
    check("tensor_split", x, tensor_indices_or_sections=np.array([2, 3]), dim=-1, jit=False)
    check("tensor_split", x, np.array([1]), jit=False)
    with pytest.raises(TypeError, match="one of"):
        ops.tensor_split(x, 2, sections=2)
    with pytest.raises(TypeError, match="one of"):
        ops.tensor_split(x)


@FAST
@given(small_shapes, st.data())
def test_cat_stack(shape, data):
    d = data.draw(dims(len(shape)))
    others = [tuple(data.draw(st.integers(1, 3)) if i == d % len(shape) else s for i, s in enumerate(shape))
              for _ in range(data.draw(st.integers(1, 3)))]
    xs = [randn(*s) for s in [shape, *others]]
    for name in ("cat", "concat", "concatenate"):
        check(name, xs, d, jit=False)
    check("cat", xs, dim=d, jit=False)
    same_shape = [randn(*shape) for _ in range(3)]
    check("stack", same_shape, data.draw(st.integers(-len(shape) - 1, len(shape))), jit=False)
    check("hstack", same_shape, jit=False)
    check("vstack", same_shape, jit=False)


def test_cat_leaves_out_one_dimensional_empty_arrays_as_torch_does():
    x, empty = randn(2, 3), np.zeros((0,), np.float32)
    check("cat", [x, empty])  # Emformer's summary = torch.empty(0) when it keeps no memory
    check("cat", [empty, x, empty], 1)
    check("cat", [empty, empty])
    check("cat", [randint(2, 3).astype(np.int64), empty])  # the left-out array still takes part in the dtype


def test_shape_functions_jitted_and_misc():
    x = randn(2, 3, 4)
    check("view", x, 6, -1)
    check("view", x, (4, -1))
    check("flatten", x, 1)
    check("transpose", x, 0, -1)
    check("permute", x, 2, 0, 1, method=True)
    check("expand", randn(3, 1), 2, -1, 5)
    check("repeat", x, 2, 1, 1, 2)
    check("split", x, 2, 1)
    check("split", x, [1, 3], -1)
    check("chunk", x, 3, -1)
    check("cat", [x, x], -1)
    check("stack", [x, x], 1)
    check("unbind", x, 1)
    check("flip", x, (0, 2))
    check("flip", x, 0, 2, method=True)
    check("fliplr", x)
    check("flipud", x)
    check("roll", x, 1)
    check("roll", x, (1, -2), (0, 2))
    check("rot90", x, 1, (1, 2))
    check("diagonal", x, 1, 1, 2)
    check("unfold", randn(2, 7), 1, 3, 2, method=True)
    check("unfold", randn(5), 0, 5, 1, method=True)
    check("repeat_interleave", x, 2)
    check("repeat_interleave", x, 2, dim=1)
    check("repeat_interleave", randint(3, low=0, high=3), jit=False, method=False)
    check("repeat_interleave", x, np.array([1, 0, 2], np.int32), dim=1, jit=False, output_size=None)
    check("movedim", x, (0, 1), (2, 0))
    check("view_as", x, randn(4, 6))
    check("reshape_as", x, randn(24))
    check("ravel", x)
    check("narrow", x, 2, -3, 2)
    check("select", x, 1, -1)
    check("broadcast_to", randn(3, 1), (2, 3, 4))
    same(ops.broadcast_tensors(jnp.ones((3, 1)), jnp.ones(4)),
         torch.broadcast_tensors(torch.ones(3, 1), torch.ones(4)))
    assert ops.broadcast_shapes((3, 1), (4,)) == torch.broadcast_shapes((3, 1), (4,))
    same(ops.meshgrid(jnp.arange(3), jnp.arange(2)), torch.meshgrid(torch.arange(3), torch.arange(2), indexing="ij"))
    same(ops.meshgrid([jnp.arange(3), jnp.arange(2)], indexing="xy"),
         torch.meshgrid([torch.arange(3), torch.arange(2)], indexing="xy"))
    check("dstack", [x, x])
    check("atleast_2d", randn(3))
    y = jnp.asarray(x)
    assert ops.size(y) == torch.from_numpy(x).size() and isinstance(ops.size(y), ops.Size)
    assert ops.size(y, -1) == 4 and ops.size(y, 0) == 2
    assert ops.size(y).numel() == 24 == ops.numel(y) == ops.nelement(y)
    assert ops.dim(y) == 3 == ops.ndimension(y)
    assert ops.contiguous(y) is y and ops.is_contiguous(y)
    assert ops.view(jnp.ones(2, jnp.float32), jnp.int32).tolist() == torch.ones(2).view(torch.int32).tolist()


def test_view_of_a_size_and_a_traced_shape():
    x = jnp.zeros((2, 3, 4))
    assert ops.view(x, ops.size(x)[0], -1).shape == (2, 12)
    assert jax.jit(lambda x: ops.view(x, ops.size(x, 0), -1))(x).shape == (2, 12)
    assert ops.zeros(jnp.array(3)).shape == (3,)  # a concrete 0-d array is a size


def test_shape_errors_are_clear():
    x = jnp.zeros((2, 3))
    with pytest.raises(IndexError, match="transpose: dim 2 is out of range"):
        ops.transpose(x, 0, 2)
    with pytest.raises(ValueError, match="at most one -1"):
        ops.view(x, -1, -1)
    with pytest.raises(ValueError, match="add up to 3, but dim 0 has size 2"):
        ops.split(x, [1, 1, 1])
    with pytest.raises(ValueError, match="repeat"):
        ops.repeat(x, 2)
    with pytest.raises(ValueError, match="permute"):
        ops.permute(x, 0)
    with pytest.raises(ValueError, match="-1 is not allowed"):
        ops.expand(x, -1, 2, 3)
    with pytest.raises(ValueError, match="t expects"):
        ops.t(jnp.zeros((1, 2, 3)))
    with pytest.raises(TypeError, match="sizes must be static"):
        jax.jit(lambda n: ops.zeros(n))(3)


# --- reductions -----------------------------------------------------------------------------------------------------

@FAST
@given(shapes, st.data())
def test_sum_mean_prod_std_var(shape, data):
    x = randn(*shape)
    d = data.draw(dims(x.ndim, allow_none=True))
    keepdim = data.draw(st.booleans())
    along = {} if d is None else {"dim": d, "keepdim": keepdim}
    for name in ("sum", "mean", "nansum", "nanmean", "all", "any"):
        check(name, x, **along, jit=False, rtol=1e-4, atol=1e-5)
    for name in ("amax", "amin"):
        check(name, x, () if d is None else d, keepdim, jit=False)
    if d is not None:
        check("logsumexp", x, d, keepdim, jit=False, rtol=1e-4, atol=1e-5)
    check("prod", x, jit=False, rtol=1e-4)
    if d is not None:
        check("prod", x, d, keepdim, jit=False, rtol=1e-4)
    if x.size > 2 and (d is None or x.shape[d] > 2):
        for kwargs in ({}, {"unbiased": False}, {"correction": 0}, {"correction": 2}):
            for name in ("std", "var"):
                check(name, x, **along, jit=False, rtol=1e-4, atol=1e-5, method=False, **kwargs)
    tuple_dims = tuple(sorted({data.draw(dims(x.ndim)) % max(x.ndim, 1) for _ in range(2)})) if x.ndim else ()
    check("sum", x, tuple_dims, keepdim, jit=False, rtol=1e-4, atol=1e-5)
    ints = randint(*shape)
    check("sum", ints, **along, jit=False, method=False)
    check("sum", ints > 0, **along, jit=False, method=False)


@HEAVY
@given(shapes, st.data())
def test_max_min_argmax_topk_sort(shape, data):
    x = randn(*shape)
    d = data.draw(dims(x.ndim))
    keepdim = data.draw(st.booleans())
    for name in ("max", "min"):
        check(name, x, jit=False)
        check(name, x, d, keepdim, jit=False)
        check(name, x, dim=d, jit=False)
    for name in ("argmax", "argmin"):
        check(name, x, jit=False)
        check(name, x, d, keepdim, jit=False)
    check("max", x, randn(*shape), jit=False)
    ties = randint(*shape, low=0, high=3)  # index of the first among equal values, as torch on CPU
    check("max", ties, d, jit=False)
    check("argmin", ties, d, jit=False)
    n = x.shape[d] if x.ndim else 1
    k = data.draw(st.integers(0, n))
    largest = data.draw(st.booleans())
    check("topk", x, k, d, largest, jit=False)
    descending = data.draw(st.booleans())
    check("sort", x, d, descending, jit=False)
    check("sort", x, dim=d, descending=descending, stable=True, jit=False)
    check("argsort", x, d, descending, jit=False)
    check("sort", ties, dim=d, descending=descending, stable=True, jit=False)
    if x.ndim:
        check("kthvalue", x, data.draw(st.integers(1, n)), d, keepdim, jit=False)
        check("median", x, d, keepdim, jit=False)
    check("median", x, jit=False)
    for name in ("cumsum", "cumprod", "cummax", "cummin"):
        check(name, x, d, jit=False, rtol=1e-4, atol=1e-5)
    check("cumsum", ties, d, jit=False)
    check("cummax", ties, d, jit=False)
    check("cummin", ties, d, jit=False)


@FAST
@given(shapes, st.data())
def test_norm(shape, data):
    x = randn(*shape)
    d = data.draw(dims(x.ndim, allow_none=True))
    p = data.draw(st.sampled_from(["fro", 1, 2, 3, 0.5, math.inf, -math.inf, 0]))
    keepdim = data.draw(st.booleans())
    if p == "fro" and d is not None:
        return
    check("norm", x, p, d, keepdim, jit=False, rtol=1e-4, atol=1e-5)


def test_reductions_jitted_and_misc():
    x = randn(3, 4, 5)
    for name in ("sum", "mean", "amax", "amin", "logsumexp", "std", "var", "all", "any", "nansum"):
        check(name, x, 1, rtol=1e-4, atol=1e-5)
    check("sum", x, (0, 2), True, dtype=torch.float64)
    check("std", x, False)  # the legacy positional `unbiased`
    check("var", x, 1, False, True)
    check("max", x, 1)
    check("min", x, -1, True)
    check("max", x)
    check("topk", x, 2)
    check("topk", x, 3, 1, False)
    check("sort", x, 0, True)
    check("argsort", x, descending=True)
    check("cumsum", x, 1)
    check("cummax", x, 0)
    check("kthvalue", x, 2, 1)
    check("median", x, 2)
    check("norm", x)
    check("norm", x, 2, (1, 2), keepdim=True)
    check("norm", randn(3, 4), "nuc", rtol=1e-4)
    check("softmax", x, -1)
    check("log_softmax", x, 1)
    check("softmax", x, 0, dtype=torch.float64)
    check("count_nonzero", randint(3, 4), 1)
    check("mode", randint(3, 7, low=0, high=3), 1)
    check("mode", randint(3, 7, low=0, high=3), 0, True)
    check("diff", x, 1, 1)
    check("msort", x)
    check("aminmax", x, dim=1, jit=False)
    same(ops.std_mean(jnp.asarray(x), 1), torch.std_mean(torch.from_numpy(x), 1), rtol=1e-5)
    same(ops.var_mean(jnp.asarray(x), 1, correction=0), torch.var_mean(torch.from_numpy(x), 1, correction=0))
    values, indices = ops.max(jnp.asarray(x), dim=1)
    assert ops.max(jnp.asarray(x), dim=1).values is not None and values.shape == indices.shape == (3, 5)
    with pytest.raises(TypeError, match="mean: input dtype int32 is not floating"):
        ops.mean(jnp.arange(3))


def test_unique_eager_and_refused_under_jit():
    x = randint(10, low=0, high=4)
    check("unique", x, jit=False)
    check("unique", x, return_inverse=True, return_counts=True, jit=False)
    with pytest.raises(TypeError, match=r"unique needs a concrete value.*jnp.unique\(x, size=N"):
        jax.jit(ops.unique)(jnp.asarray(x))


# --- creation ----------------------------------------------------------------------------------------------------

def _creation(name, *args, **kwargs):
    theirs = getattr(torch, name)(*_to_torch(args), **_to_torch(kwargs))
    same(getattr(ops, name)(*_to_jax(args), **_to_jax(kwargs)), theirs, where=f"ops.{name}")


@pytest.mark.parametrize("size", [(), (0,), (3,), (2, 3), (2, 1, 4)])
def test_zeros_ones_full_empty(size):
    for name in ("zeros", "ones"):
        if size:
            _creation(name, *size)
        _creation(name, size)
        _creation(name, size, dtype=torch.int64)
        _creation(name, size=size, dtype=torch.bool)
    assert ops.empty(size).shape == torch.empty(size).shape and ops.empty(size).dtype == jnp.float32
    for value in (1, 1.5, True, -2):
        _creation("full", size, value)
    _creation("full", size, 2, dtype=torch.float16)
    x = randn(*size)
    for name in ("zeros_like", "ones_like"):
        _creation(name, x)
        _creation(name, x, dtype=torch.int32)
    _creation("full_like", x, 7)
    _creation("full_like", randint(*size), 7.9)
    assert ops.empty_like(jnp.asarray(x)).shape == x.shape


def test_new_creation_keeps_dtype():
    x = randint(2, 3)
    check("new_zeros", x, 4, 5, jit=False)
    check("new_zeros", x, (4,), jit=False)
    check("new_ones", x, [2, 2], dtype=torch.float32, jit=False)
    check("new_full", randn(2), (3,), 2.5, jit=False)
    check("new_full", x, (3,), 2, jit=False)
    check("new_tensor", randn(2), [1, 2], jit=False)
    assert ops.new_empty(jnp.asarray(x), 2).dtype == jnp.int32
    assert jax.jit(lambda x: ops.new_zeros(x, x.shape[0], 2))(jnp.ones(3, jnp.float16)).dtype == jnp.float16


@pytest.mark.parametrize("args", [(5,), (2, 7), (1, 10, 3), (0, 1, 0.25), (1.0, 4), (10, 0, -3), (0.5, 2.0, 0.3),
                                  (-3, 3, 2)])
def test_arange(args):
    _creation("arange", *args)
    _creation("arange", *args, dtype=torch.float32)


def test_other_creation():
    _creation("linspace", 0, 1, 5)
    _creation("linspace", -2, 3, 1)
    _creation("linspace", 0, 10, 4, dtype=torch.int64)
    _creation("logspace", 0, 2, 3)
    _creation("eye", 3)
    _creation("eye", 2, 4, dtype=torch.bool)
    for data in ([1, 2], [1.0, 2], [[True, False]], 3, 2.5, [[1, 2], [3, 4]], []):
        _creation("tensor", data)
    _creation("tensor", [1, 2], dtype=torch.float16)
    _creation("tensor", randn(2, 2))
    _creation("tensor", randint(3))
    _creation("as_tensor", [1.5])
    _creation("as_tensor", randn(3), dtype=torch.float64)
    same(ops.from_numpy(np.arange(3.0)), torch.from_numpy(np.arange(3.0)))
    raw = np.arange(12, dtype=np.float32).tobytes()
    for kwargs in ({"dtype": torch.float32}, {"dtype": torch.int16, "offset": 6, "count": 5},
                   {"dtype": torch.uint8, "count": 3}, {"dtype": torch.float16, "offset": 4}):
        for buffer in (bytearray(raw), memoryview(raw)):
            _creation("frombuffer", buffer, **kwargs)
    _creation("scalar_tensor", 3)
    _creation("tril_indices", 3, 4)
    _creation("triu_indices", 4, 3, 1)
    same(ops.range(1, 4), torch.range(1, 4)) if hasattr(torch, "range") else None
    assert ops.tensor([jnp.float32(1), jnp.float32(2)]).dtype == jnp.float32
    assert jax.jit(lambda a: ops.tensor([a, a]))(jnp.float32(1.0)).shape == (2,)


def test_creation_is_the_same_under_jit():
    """Eagerly NumPy makes these on the host (compiling nothing), under jit jnp stages them: the same arrays."""
    makers = [lambda: ops.zeros(2, 3), lambda: ops.ones((2,), dtype=jnp.int32), lambda: ops.full((3,), 1.5),
              lambda: ops.arange(0, 1, 0.1), lambda: ops.arange(10, 0, -3), lambda: ops.linspace(-1, 2, 7),
              lambda: ops.logspace(0, 2, 5), lambda: ops.eye(2, 3), lambda: ops.tensor([[1, 2], [3, 4]]),
              lambda: ops.tensor([1.0, 2]), lambda: ops.new_full(jnp.ones(2, jnp.bfloat16), (3,), 0.5)]
    for make in makers:
        eager, staged = make(), jax.jit(make)()
        assert eager.dtype == staged.dtype and eager.shape == staged.shape
        np.testing.assert_allclose(np.asarray(eager, np.float64), np.asarray(staged, np.float64), rtol=1e-6,
                                   atol=1e-6)  # jnp.linspace under jit: float32 rounding (0 -> 6e-8)
    # a 0-d tensor of a python number promotes as torch's 0-d tensors do: the other operand's dtype wins
    assert (ops.tensor(2.0) * jnp.ones(2, jnp.bfloat16)).dtype == jnp.bfloat16
    assert (ops.tensor(3) + jnp.ones(2, jnp.int8)).dtype == jnp.int8


# --- randomness ----------------------------------------------------------------------------------------------------

def test_random_functions_shapes_dtypes_and_ranges():
    jnn.manual_seed(0)
    assert ops.rand(2, 3).shape == (2, 3) and ops.rand(2, 3).dtype == jnp.float32
    assert ops.randn((4,), dtype=ops.float16).dtype == jnp.float16
    u = ops.rand(1000)
    assert 0 <= float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.05
    r = ops.randint(3, 7, (1000,))
    assert r.dtype == jnp.int32 and set(np.unique(r).tolist()) == {3, 4, 5, 6}
    assert set(np.unique(ops.randint(2, size=(100,))).tolist()) == {0, 1}
    assert sorted(ops.randperm(10).tolist()) == list(range(10))
    n = ops.normal(2.0, 3.0, (20000,))
    assert abs(float(n.mean()) - 2) < 0.1 and abs(float(n.std()) - 3) < 0.1
    assert ops.normal(jnp.zeros(3), jnp.ones(3)).shape == (3,)
    b = ops.bernoulli(jnp.full((10000,), 0.3))
    assert b.dtype == jnp.float32 and abs(float(b.mean()) - 0.3) < 0.03
    x = jnp.zeros((5000,), jnp.float16)
    for name, mean in (("normal_", 0.0), ("uniform_", 0.5), ("bernoulli_", 0.5), ("exponential_", 1.0)):
        out = getattr(ops, name)(x)
        assert out.dtype == x.dtype and out.shape == x.shape and abs(float(out.astype(float).mean()) - mean) < 0.1
    assert float(ops.uniform_(x, -2, -1).max()) <= -1
    assert set(np.unique(ops.random_(jnp.zeros(500), 3)).tolist()) == {0.0, 1.0, 2.0}
    assert ops.rand_like(jnp.zeros((2, 2), jnp.float16)).dtype == jnp.float16
    assert ops.randn_like(jnp.zeros(3)).shape == (3,)
    assert ops.randint_like(jnp.zeros(3, jnp.int32), 5).dtype == jnp.int32
    assert ops.poisson(jnp.full(3, 2.0)).shape == (3,)


def test_random_follows_the_jnn_stream_and_fork_under_jit():
    jnn.manual_seed(3)
    a = ops.randn(4)
    jnn.manual_seed(3)
    assert (ops.randn(4) == a).all()
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(lambda: ops.rand(2))()

    @jax.jit
    def draw(key):
        with jnn.random.fork(key):
            return ops.rand(3), ops.randn(3), ops.multinomial(jnp.ones(5), 2), ops.normal_(jnp.zeros(2))

    first, again, other = draw(jax.random.key(0)), draw(jax.random.key(0)), draw(jax.random.key(1))
    assert all((p == q).all() for p, q in zip(first, again, strict=True))
    assert not (first[0] == other[0]).all()
    key = jax.random.key(5)
    assert (ops.rand(3, generator=key) == ops.rand(3, generator=key)).all()
    g1, g2 = ops.Generator().manual_seed(1), ops.Generator().manual_seed(1)
    assert (ops.randn(3, generator=g1) == ops.randn(3, generator=g2)).all()
    assert not (ops.randn(3, generator=g1) == ops.randn(3, generator=ops.Generator().manual_seed(1))).all()
    with pytest.raises(TypeError, match="generator must be"):
        ops.rand(2, generator=torch.Generator())


def test_generator_device_is_torchs():
    # diffusers' randn_tensor reads generator.device.type
    for args in ((), ("cpu",)):
        ours, theirs = ops.Generator(*args).device, torch.Generator(*args).device
        assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert ops.Generator(device="cuda:1").device == ops.device("cuda:1")


def test_multinomial():
    jnn.manual_seed(0)
    w = jnp.array([[0.0, 1.0, 0.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    s = ops.multinomial(w, 2)
    assert s.shape == (2, 2) and s.dtype == jnp.int32
    assert sorted(s[0].tolist()) == [1, 3]  # without replacement: both nonzero categories, each once
    for row in ops.multinomial(w[1], 4).reshape(1, -1):
        assert sorted(row.tolist()) == [0, 1, 2, 3]
    many = ops.multinomial(w[0], 4000, replacement=True)
    assert many.shape == (4000,) and set(np.unique(many).tolist()) == {1, 3}
    assert abs(float((many == 3).mean()) - 0.75) < 0.04
    with pytest.raises(ValueError, match="without replacement"):
        ops.multinomial(w, 5)


# --- indexing and masking -------------------------------------------------------------------------------------------

@HEAVY
@given(small_shapes, st.data())
def test_gather_scatter_index_select(shape, data):
    x = randn(*shape)
    d = data.draw(dims(x.ndim))
    n = x.shape[d]
    ishape = tuple(data.draw(st.integers(1, s)) if i != d % x.ndim else data.draw(st.integers(1, 5))
                   for i, s in enumerate(shape))
    index = RNG.integers(0, n, ishape).astype(np.int32)
    check("gather", x, d, index, jit=False)
    check("take_along_dim", x, RNG.integers(0, n, tuple(1 if i != d % x.ndim else 3 for i in range(x.ndim))),
          dim=d, jit=False)
    # scatter without duplicate targets: a permutation along d, cut to the index's extent
    perm = np.argsort(RNG.random(x.shape), axis=d).astype(np.int32)
    k = data.draw(st.integers(1, n))
    unique_index = np.take(perm, np.arange(k), axis=d)
    src = randn(*unique_index.shape)
    check("scatter", x, d, unique_index, src, jit=False)
    check("scatter", x, d, unique_index, 2.5, jit=False, method=True)
    check("scatter", x, d, index, src=randn(*index.shape), reduce="add", jit=False, rtol=1e-5)
    check("scatter_add", x, d, index, randn(*index.shape), jit=False, rtol=1e-5)
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        include_self = data.draw(st.booleans())
        check("scatter_reduce", x, d, index, randn(*index.shape), reduce, include_self=include_self, jit=False,
              rtol=1e-4, atol=1e-5)
    sel = RNG.integers(0, n, data.draw(st.integers(0, 5))).astype(np.int32)
    check("index_select", x, d, sel, jit=False)
    check("index_add", x, d, sel, randn(*[len(sel) if i == d % x.ndim else s for i, s in enumerate(shape)]),
          alpha=2.0, jit=False, rtol=1e-5)
    check("index_fill", x, d, sel, -1.0, jit=False)
    uniq = RNG.permutation(n)[:data.draw(st.integers(0, n))].astype(np.int32)
    check("index_copy", x, d, uniq, randn(*[len(uniq) if i == d % x.ndim else s for i, s in enumerate(shape)]),
          jit=False)


@HEAVY
@given(shapes, st.data())
def test_masked_fill_where_tril(shape, data):
    x = randn(*shape)
    mshape = tuple(data.draw(st.sampled_from([1, s])) for s in shape)[data.draw(st.integers(0, len(shape))):]
    mask = np.asarray(RNG.random(mshape) > 0.5)
    value = data.draw(st.sampled_from([0.0, -math.inf, 3, 1e9]))
    check("masked_fill", x, mask, value, jit=False)
    check("masked_fill", randint(*shape), mask, 7, jit=False)
    check("masked_select", x, mask, jit=False)
    check("masked_scatter", x, mask, randn(*x.shape), jit=False)
    check("where", np.asarray(RNG.random(mshape) > 0.5), x, randn(*mshape), jit=False)
    check("where", mask, x, 0.0, jit=False)
    check("nonzero", x > 0, jit=False)
    check("nonzero", x > 0, as_tuple=True, jit=False) if x.ndim else None
    if x.ndim >= 2:
        k = data.draw(st.integers(-3, 3))
        check("tril", x, k, jit=False)
        check("triu", x, diagonal=k, jit=False)


def test_indexing_jitted_and_misc():
    x = randn(3, 4)
    i = np.array([[0, 2], [1, 1], [3, 0]], np.int32)
    check("gather", x, 1, i)
    check("scatter", np.zeros((3, 4), np.float32), 1, i[:, :1], randn(3, 1))
    check("scatter_add", np.zeros((3, 4), np.float32), 1, i, randn(3, 2))
    check("index_select", x, 0, np.array([2, 0], np.int32))
    check("masked_fill", x, x > 0, -math.inf)
    check("masked_fill", x, np.array([True, False, True, False]), np.array(2.0, np.float32))
    check("where", x > 0, x, -x)
    check("where", x > 0, x, 1)
    check("tril", x)
    check("triu", x, 1)
    check("take", x, np.array([[0, -1], [5, 11]], np.int32))
    check("take_along_dim", x, np.argsort(x, 1).astype(np.int32), 1)
    check("narrow", x, 1, 1, 2)
    check("index_put", np.zeros(5, np.float32), (np.array([1, 3]),), np.array([1.0, 2.0], np.float32))
    check("index_put", np.zeros(5, np.float32), (np.array([1, 1]),), np.array([1.0, 2.0], np.float32),
          accumulate=True)
    check("masked_scatter", x, x > 0, randn(12))
    check("searchsorted", np.sort(randn(6)), randn(3, 2))
    check("searchsorted", np.sort(randn(2, 6), axis=1), randn(2, 3), right=True)
    check("bucketize", randn(4, 2), np.sort(randn(5)))
    check("bucketize", np.array([1, 2, 3], np.int32), np.array([1, 3], np.int32), right=True)
    check("isin", randint(6), np.array([0, 1], np.int32))


@pytest.mark.parametrize("name", ["masked_select", "nonzero", "argwhere", "item", "tolist", "where"])
def test_value_dependent_functions_refuse_tracers_clearly(name):
    x = jnp.array([[1.0, -1.0]])
    args = {"masked_select": (x, x > 0), "where": (x > 0,)}.get(name, (x,))
    getattr(ops, name)(*(a[0, :1] if name == "item" else a for a in args))  # eagerly fine
    with pytest.raises(TypeError, match=f"jnn.ops.{'nonzero' if name == 'where' else name} needs a concrete value"
                                        ".*(jnp.nonzero|ops.where|outside|0-d array)"):
        jax.jit(lambda *a: getattr(ops, name)(*a))(*args)


def test_masked_fill_checks_its_arguments():
    with pytest.raises(TypeError, match="mask must be bool"):
        ops.masked_fill(jnp.zeros(2), jnp.ones(2), 0.0)
    with pytest.raises(ValueError, match="0-d"):
        ops.masked_fill(jnp.zeros(2), jnp.ones(2, bool), jnp.ones(2))


# --- pointwise ------------------------------------------------------------------------------------------------------

UNARY_FLOAT = ["abs", "neg", "exp", "exp2", "expm1", "sin", "cos", "tan", "atan", "sinh", "cosh", "tanh", "asinh",
               "sigmoid", "relu", "erf", "erfc", "sign", "sgn", "floor", "ceil", "trunc", "fix", "frac", "square",
               "round", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "logical_not", "signbit", "deg2rad",
               "rad2deg", "positive", "sinc", "negative", "absolute", "arctan", "lgamma", "digamma", "i0"]
UNARY_POSITIVE = ["log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal", "acosh", "erfinv", "logit"]


@pytest.mark.parametrize("name", UNARY_FLOAT + UNARY_POSITIVE)
def test_unary(name):
    x = randn(3, 4) * 3
    x[0, 0], x[0, 1] = 0.0, 2.5  # round half to even, sign of zero
    if name in UNARY_POSITIVE:
        x = np.abs(x) + (1.0 if name == "acosh" else 0.1)
        if name in ("erfinv", "logit"):
            x = x / (x.max() + 1)
    method = name in ("positive",)
    check(name, x, rtol=1e-4, atol=1e-5, method=method)
    if name in ("abs", "neg", "sign", "square", "logical_not", "floor", "ceil", "round", "trunc", "exp", "sqrt",
                "sigmoid", "relu", "positive"):
        check(name, randint(5), rtol=1e-5, method=method)


BINARY = ["add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow", "atan2",
          "maximum", "minimum", "fmax", "fmin", "hypot", "logaddexp", "copysign", "eq", "ne", "gt", "ge", "lt",
          "le", "greater", "less", "greater_equal", "less_equal", "not_equal", "logical_and", "logical_or",
          "logical_xor", "multiply", "subtract", "divide", "xlogy", "arctan2", "float_power", "logaddexp2",
          "nextafter"]


@pytest.mark.parametrize("name", BINARY)
def test_binary(name):
    a, b = randn(3, 4) * 3, randn(4) * 3
    if name in ("pow", "float_power"):
        a = np.abs(a)
    if name == "xlogy":
        b = np.abs(b)
    check(name, a, b, rtol=1e-4, atol=1e-5)
    if name not in ("nextafter", "copysign", "atan2", "arctan2", "hypot", "fmax", "fmin", "logaddexp", "logaddexp2",
                    "xlogy", "maximum", "minimum", "logical_and", "logical_or", "logical_xor"):  # torch: tensors only
        check(name, a, 2.0, rtol=1e-4, atol=1e-5)
        check(name, randint(3, 4), 3) if name not in ("pow", "float_power") else None
    if name not in ("atan2", "hypot", "logaddexp", "copysign", "xlogy", "arctan2", "float_power", "logaddexp2",
                    "nextafter", "pow"):
        ia, ib = randint(3, 4), randint(4, low=1, high=5) * np.where(RNG.random(4) > 0.5, 1, -1).astype(np.int32)
        check(name, ia, ib)


@pytest.mark.parametrize("name", ["bitwise_and", "bitwise_or", "bitwise_xor", "gcd", "lcm", "bitwise_left_shift",
                                  "bitwise_right_shift"])
def test_integer_binary(name):
    check(name, randint(3, 4, low=0, high=20), randint(4, low=0, high=4))


def test_division_rounding_rules():
    a = np.array([7, -7, 7, -7, 0], np.int32)
    b = np.array([2, 2, -2, -2, 3], np.int32)
    for mode in (None, "trunc", "floor"):
        check("div", a, b, rounding_mode=mode)
        check("div", a.astype(np.float32) + 0.5, b.astype(np.float32), rounding_mode=mode)
        check("div", a, 2, rounding_mode=mode)
    check("floor_divide", a, b)
    check("remainder", a, b)
    check("fmod", a, b)
    check("remainder", a.astype(np.float32), -2.5)


def test_clamp_and_friends():
    x = randn(3, 4) * 3
    check("clamp", x, -1.0, 1.0)
    check("clamp", x, min=0.0)
    check("clamp", x, max=0.5)
    check("clamp", x, randn(4), randn(3, 4))  # array bounds, min > max somewhere: torch gives max
    check("clip", x, -0.5, 0.5)
    check("clamp", randint(6), -2, 2)
    check("clamp", randint(6), -1.5, 2.5)
    check("clamp_min", x, 0.0, method=True)
    check("clamp_max", x, 0.0, method=True)
    check("add", x, randn(4), alpha=2.0)
    check("sub", x, 1.0, alpha=3)
    check("rsub", x, randn(3, 4), alpha=2.0)
    check("lerp", x, randn(3, 4), 0.3)
    check("addcmul", x, randn(3, 4), randn(4), value=0.5)
    check("addcdiv", x, randn(3, 4), np.abs(randn(4)) + 1, value=2.0)
    check("round", x * 10, decimals=1, rtol=1e-5)
    check("nan_to_num", np.array([np.nan, np.inf, -np.inf, 1.0], np.float32))
    check("nan_to_num", np.array([np.nan, np.inf, -np.inf, 1.0], np.float32), 1.0, 2.0, -2.0)
    check("isclose", x, x + 1e-6)
    assert ops.equal(jnp.ones(2), jnp.ones(2)) is True and ops.equal(jnp.ones(2), jnp.ones(3)) is False
    assert ops.allclose(jnp.ones(2), jnp.ones(2) + 1e-9) is True
    with pytest.raises(ValueError, match="at least one of min and max"):
        ops.clamp(jnp.ones(2))


def test_products():
    check("matmul", randn(2, 3, 4), randn(4, 5), rtol=1e-4, atol=1e-5)
    check("matmul", randn(4), randn(2, 4, 3), rtol=1e-4, atol=1e-5)
    check("mm", randn(3, 4), randn(4, 2), rtol=1e-4, atol=1e-5)
    check("bmm", randn(2, 3, 4), randn(2, 4, 2), rtol=1e-4, atol=1e-5)
    check("mv", randn(3, 4), randn(4), rtol=1e-4, atol=1e-5)
    check("einsum", "bij,bjk->bik", randn(2, 3, 4), randn(2, 4, 2), rtol=1e-4, atol=1e-5)
    check("einsum", "ij,j->i", [randn(3, 4), randn(4)], rtol=1e-4, atol=1e-5)
    check("einsum", "ii", randn(3, 3), rtol=1e-4, atol=1e-5)
    check("tensordot", randn(2, 3, 4), randn(3, 4, 5), 2, rtol=1e-4, atol=1e-5)
    check("tensordot", randn(2, 3, 4), randn(4, 3), ([1, 2], [1, 0]), rtol=1e-4, atol=1e-5)
    check("addmm", randn(3, 2), randn(3, 4), randn(4, 2), beta=0.5, alpha=2.0, rtol=1e-4, atol=1e-5)
    check("baddbmm", randn(2, 3, 2), randn(2, 3, 4), randn(2, 4, 2), alpha=0.5, rtol=1e-4, atol=1e-5)
    check("addbmm", randn(3, 2), randn(2, 3, 4), randn(2, 4, 2), rtol=1e-4, atol=1e-5)
    check("addmv", randn(3), randn(3, 4), randn(4), rtol=1e-4, atol=1e-5)
    check("outer", randn(3), randn(4))
    check("ger", randn(3), randn(4), method=True)
    check("dot", randn(4), randn(4), rtol=1e-5)
    check("inner", randn(2, 4), randn(3, 4), rtol=1e-5)
    check("kron", randn(2, 2), randn(2, 3))
    check("trace", randn(3, 3), rtol=1e-5)
    check("diag", randn(3))
    check("diag", randn(3, 4), 1)
    check("diag_embed", randn(2, 3))
    check("cross", randn(4, 3), randn(4, 3), dim=1, rtol=1e-5)
    check("cdist", randn(2, 3, 4), randn(2, 5, 4), rtol=1e-4, atol=1e-5)
    check("cdist", randn(3, 4), randn(5, 4), p=1.0, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="mm expects 2, 2-d"):
        ops.mm(jnp.ones((2, 2, 2)), jnp.ones((2, 2)))


# --- dtypes and conversion ------------------------------------------------------------------------------------------

CONVERSIONS = ["float", "double", "half", "long", "int", "short", "char", "byte", "bool", "bfloat16"]


@pytest.mark.parametrize("name", CONVERSIONS)
def test_dtype_methods(name):
    x = randn(3, 4) * 5
    if name in ("byte", "bool"):
        x = np.abs(x)  # negative floats to uint8 are undefined
    theirs = getattr(torch.from_numpy(x), name)()
    ours = getattr(ops, name)(jnp.asarray(x))
    if name == "bfloat16":
        assert ours.dtype == jnp.bfloat16
        np.testing.assert_allclose(np.asarray(ours, np.float32), theirs.float().numpy())
    else:
        same(ours, theirs)
        same(jax.jit(getattr(ops, name))(jnp.asarray(x)), theirs)
    dt = getattr(ops, name)
    assert ops.zeros(1, dtype=dt).dtype == jax.dtypes.canonicalize_dtype(jnp.dtype(dt))  # no x64 warning
    if hasattr(torch, name):
        assert dt == getattr(ops, str(getattr(torch, name)).removeprefix("torch."))  # torch.float is torch.float32
    assert hash(dt) == hash(jnp.dtype(dt.dtype))


def test_to_type_type_as():
    x = randn(2, 3)
    check("to", x, torch.float16, jit=False)
    same(ops.to(jnp.asarray(x), "cpu", ops.float16), torch.from_numpy(x).to("cpu", torch.float16))
    same(ops.to(jnp.asarray(x), ops.device("cuda:0")), torch.from_numpy(x))
    same(ops.to(jnp.asarray(x), dtype=ops.long), torch.from_numpy(x).to(dtype=torch.long))
    same(ops.to(jnp.asarray(x), jnp.arange(2)), torch.from_numpy(x).to(torch.arange(2)))
    same(ops.to(jnp.asarray(x), ops.int64, non_blocking=True, copy=True), torch.from_numpy(x).to(torch.int64))
    same(ops.type_as(jnp.asarray(x), jnp.arange(2)), torch.from_numpy(x).type_as(torch.arange(2)))
    assert ops.type(jnp.asarray(x)) == torch.from_numpy(x).type() == "torch.FloatTensor"
    assert ops.type(jnp.arange(2)) == "torch.IntTensor"  # int32, as long() gives without x64
    same(ops.type(jnp.asarray(x), "torch.LongTensor"), torch.from_numpy(x).type("torch.LongTensor"))
    same(ops.type(jnp.asarray(x), ops.float16), torch.from_numpy(x).type(torch.float16))
    with pytest.raises(TypeError, match="expected a dtype, a device or an array"):
        ops.to(jnp.asarray(x), object())
    assert ops.is_floating_point(jnp.ones(1)) and not ops.is_floating_point(jnp.arange(1))
    assert ops.is_complex(jnp.ones(1, jnp.complex64)) and ops.is_signed(jnp.ones(1)) and not ops.is_signed(
        jnp.ones(1, jnp.uint8))
    assert ops.element_size(jnp.ones(1, jnp.float16)) == 2


def test_dtype_names_finfo_and_promotion():
    for name in ("float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool",
                 "complex64", "long", "float", "double", "half", "int", "short"):
        t = getattr(torch, name)
        assert jnp.dtype(getattr(ops, name)) == torch.empty(0, dtype=t).numpy().dtype if name != "bfloat16" else \
            jnp.dtype(ops.bfloat16) == jnp.bfloat16
    assert isinstance(ops.float32, ops.dtype) and ops.float == ops.float32 and ops.long == jnp.int64
    assert ops.finfo(ops.float16).max == torch.finfo(torch.float16).max
    assert ops.finfo().eps == torch.finfo().eps and ops.finfo(ops.float).tiny == torch.finfo(torch.float).tiny
    assert ops.finfo(ops.bfloat16).eps == torch.finfo(torch.bfloat16).eps
    assert ops.iinfo(ops.int16).min == torch.iinfo(torch.int16).min
    assert ops.get_default_dtype() == jnp.float32
    for a, b in [(torch.int32, torch.float16), (torch.uint8, torch.int8), (torch.bool, torch.int16)]:
        ours = ops.promote_types(getattr(ops, str(a)[6:]), getattr(ops, str(b)[6:]))
        assert ours == torch.empty(0, dtype=torch.promote_types(a, b)).numpy().dtype
    for a, b in [(torch.int32, torch.float16), (torch.float32, torch.int64), (torch.bool, torch.int8),
                 (torch.float64, torch.float16), (torch.complex64, torch.float32)]:
        assert ops.can_cast(getattr(ops, str(a)[6:]), getattr(ops, str(b)[6:])) == torch.can_cast(a, b)
    assert ops.result_type(jnp.ones(1, jnp.float16), 2.0) == jnp.float16


def test_tensor_size_device_names():
    x = jnp.ones((2, 3))
    assert isinstance(x, ops.Tensor) and isinstance(np.ones(2), ops.Tensor) and not isinstance([1], ops.Tensor)
    assert ops.Tensor.view is ops.view and ops.Tensor.float is ops.float
    with pytest.raises(AttributeError):
        ops.Tensor.no_such_method  # noqa: B018
    same(ops.Tensor([1, 2]), torch.Tensor([1, 2]))
    assert ops.Tensor(2, 3).shape == (2, 3)
    same(ops.LongTensor([1, 2]), torch.LongTensor([1, 2]))
    same(ops.BoolTensor([1, 0]), torch.BoolTensor([1, 0]))
    assert ops.is_tensor(x) and not ops.is_tensor(3.0)
    assert ops.Size([2, 3]) == torch.Size([2, 3]) and repr(ops.Size([2, 3])) == repr(torch.Size([2, 3])).replace(
        "torch.", "")
    for spec in ("cpu", "cuda", "cuda:1"):
        assert str(ops.device(spec)) == str(torch.device(spec)) and ops.device(spec).type == torch.device(spec).type
        assert ops.device(spec).index == torch.device(spec).index and ops.device(spec) == spec


# --- misc shims ----------------------------------------------------------------------------------------------------

def test_clone_is_a_new_array_as_torch_clone_is_a_new_tensor():
    """A clone registered next to its source (encodec's codebook: ``embed`` and ``embed_avg = embed.clone()``) is a
    buffer of its own: a state_dict loads each one's values, as into torch's, not the last one's into both (jnn
    ties slots by array identity)."""
    x = jnp.arange(3.0)
    assert ops.clone(x) is not x and ops.clone(x).tolist() == x.tolist()
    assert jax.jit(ops.clone)(x).tolist() == x.tolist()
    for nn, lib in ((torch.nn, torch), (jnn, ops)):
        m = nn.Module()
        m.register_buffer("a", lib.zeros(3))
        m.register_buffer("b", lib.clone(m.a))
        m.load_state_dict({"a": torch.ones(3), "b": torch.full((3,), 2.0)})
        assert np.asarray(m.a).tolist() == [1.0] * 3 and np.asarray(m.b).tolist() == [2.0] * 3, nn


def test_host_values_autograd_and_device_shims():
    x = jnp.arange(6.0).reshape(2, 3)
    assert ops.item(x[1, 2]) == 5.0 and type(ops.item(jnp.arange(3)[1])) is int
    assert ops.tolist(x) == torch.arange(6.0).reshape(2, 3).tolist()
    assert isinstance(ops.numpy(x), np.ndarray)
    with pytest.raises(ValueError, match="2 elements"):
        ops.item(jnp.ones(2))
    assert jax.grad(lambda v: (v * ops.detach(v)).sum())(jnp.ones(2) * 3).tolist() == [3.0, 3.0]
    assert isinstance(ops.clone(np.ones(2)), jax.Array)
    assert ops.cpu(x) is x and ops.cuda(x) is x and ops.requires_grad_(x) is x and ops.get_device(x) == -1
    assert not ops.cuda.is_available() and ops.cuda.device_count() == 0
    assert not ops.xpu.is_available() and not ops.mps.is_available() and ops.xpu.device_count() == 0

    @ops.no_grad()
    def f(v):
        return v * 2

    @ops.no_grad
    def g(v):
        return v * 3

    with ops.no_grad(), ops.enable_grad(), ops.inference_mode(), ops.set_grad_enabled(False):
        assert f(1) == 2 and g(1) == 3
    assert ops.is_grad_enabled() and not ops.is_autocast_enabled()
    with ops.autocast("cuda", dtype=ops.bfloat16), ops.cuda.amp.autocast(), ops.amp.autocast("cpu"):
        assert (jnp.ones(2, jnp.float32) * 2).dtype == jnp.float32  # changes nothing: jnn.amp does precision
    ops.backends.cudnn.benchmark = True  # accepted, no effect
    assert ops.contiguous(x, memory_format=ops.channels_last) is x
    assert ops.compile(f) is f and ops.compile(mode="max-autotune")(f) is f


def test_grad_mode_as_torch():
    """no_grad / enable_grad / inference_mode / set_grad_enabled switch the flag as torch's do (nesting, decorators,
    set_grad_enabled as a statement), and what leaves a grad-mode-off region is cut from the gradient, as torch's
    tensors made there require no grad."""
    def modes(lib):
        seen = [lib.is_grad_enabled()]
        with lib.no_grad():
            seen.append(lib.is_grad_enabled())
            with lib.enable_grad():
                seen.append(lib.is_grad_enabled())
            seen.append(lib.is_grad_enabled())
        with lib.inference_mode():
            seen += [lib.is_grad_enabled(), lib.is_inference_mode_enabled()]
        with lib.inference_mode(False):
            seen.append(lib.is_grad_enabled())
        lib.set_grad_enabled(False)
        seen.append(lib.is_grad_enabled())
        lib.set_grad_enabled(True)
        with lib.set_grad_enabled(False):
            seen.append(lib.is_grad_enabled())
        seen += [lib.is_grad_enabled(), lib.no_grad()(lib.is_grad_enabled)(), lib.no_grad(lib.is_grad_enabled)(),
                 lib.inference_mode(lib.is_inference_mode_enabled)(), lib.is_inference_mode_enabled()]
        return seen

    assert modes(ops) == modes(torch)

    def squared(lib):
        return lib.no_grad()(lambda v: v * v)

    t = torch.tensor(3.0, requires_grad=True)
    (t * squared(torch)(t)).backward()
    assert float(jax.grad(lambda v: v * squared(ops)(v))(3.0)) == t.grad.item() == 9.0
    pair = ops.no_grad(lambda v: {"a": [v * v], "b": (v, "text")})
    assert float(jax.grad(lambda v: v * pair(v)["a"][0] + pair(v)["b"][0])(3.0)) == 9.0
    assert ops.detach_if_no_grad("text") == "text" and float(jax.grad(ops.detach_if_no_grad)(2.0)) == 1.0


def test_jit_fx_assert_shims():
    assert ops.jit.is_scripting() is False and ops.jit.is_tracing() is False

    @ops.jit.unused
    def a():
        return 1

    @ops.jit.ignore(drop=True)
    def b():
        return 2

    assert a() == 1 and b() == 2 and ops.jit.script(a) is a and ops.jit._overload_method(a) is a
    assert ops.fx.wrap("len") == "len" and ops.fx.wrap(a) is a
    assert ops.jit.annotate(list, [1]) == [1] and ops.jit.annotations.BroadcastingList2[int] == list[int]
    ops._assert(True, "fine")
    with pytest.raises(AssertionError, match="bad shape"):
        ops._assert(jnp.ones(2).shape[0] == 3, "bad shape")
    assert jax.jit(lambda v: (ops._assert(v.sum() > 0, "traced: skipped"), v)[1])(jnp.ones(2)).shape == (2,)
    assert ops.pi == math.pi and ops.inf == math.inf and math.isnan(ops.nan)


def test_jit_final_and_annotations_are_typing_forms():
    # timm: `fused_attn: torch.jit.Final[bool]` in a class body, evaluated when the class is made
    namespace = {"ops": ops}
    exec(compile("class A:\n    fused: ops.jit.Final[bool] = True\n    opt: ops.jit.annotations.Optional[int] = None\n",
                 "<timm>", "exec", dont_inherit=True), namespace)
    assert namespace["A"].__annotations__["fused"] == typing.Final[bool]
    assert ops.jit.annotations.Optional is typing.Optional and ops.jit.annotations.Optional[int] is not None
    assert ops.jit.annotations.List[int] == list[int] and ops.jit.annotations.Dict[str, int] == dict[str, int]


def test_compiler_shims():
    def f(v):
        return v + 1

    @ops.compiler.disable
    def g(v):
        return v * 2

    @ops.compiler.disable(recursive=False)
    def h(v):
        return v * 3

    assert ops.compiler.disable(f) is f and g(1) == 2 and h(1) == 3
    assert ops.compiler.is_compiling() is False and ops.compiler.is_exporting() is False
    # staged by jax.jit, code takes torch.compile's branch (transformers skips data-dependent mask checks there);
    # grad and vmap alone do not stage, so eager code's branches still work
    assert jax.jit(lambda v: v * 2 if not ops.compiler.is_compiling() else v)(jnp.ones(2)).tolist() == [1.0, 1.0]
    assert jax.grad(lambda v: v * 2 if not ops.compiler.is_compiling() else v)(1.0) == 2.0
    assert jax.jit(lambda v: v * 2 if ops._dynamo.is_compiling() else v)(jnp.ones(2)).tolist() == [2.0, 2.0]
    assert jax.jit(lambda v: v * 2 if ops.compiler.is_exporting() else v)(jnp.ones(2)).tolist() == [1.0, 1.0]


def test_jit_interface_is_a_class_decorator():
    # torchaudio's hifi_gan: `@torch.jit.interface` over a Module subclass declaring a forward signature
    @ops.jit.interface
    class Block:
        def forward(self, x: int) -> int:
            return x

    assert Block().forward(3) == 3



@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_set_default_dtype_as_torch(name):
    """torch.set_default_dtype: layers' parameters and buffers, and Python floats in creation functions, take it
    (transformers' from_pretrained(dtype=...) builds its model so)."""

    def models(lib):
        return {"linear": lib.Linear(2, 3), "conv": lib.Conv2d(1, 2, 3), "bn": lib.BatchNorm2d(2),
                "ln": lib.LayerNorm(4), "emb": lib.Embedding(5, 2), "mha": lib.MultiheadAttention(4, 2),
                "lstm": lib.LSTM(2, 3), "prelu": lib.PReLU()}

    def creations(t):
        return {"tensor": t.tensor([1.0, 2]), "int": t.tensor([1, 2]), "zeros": t.zeros(2), "ones": t.ones(2),
                "empty": t.empty(2), "full": t.full((2,), 1.5), "arange": t.arange(0.0, 2), "linspace":
                t.linspace(0, 1, 3), "rand": t.rand(2), "randn": t.randn(2), "eye": t.eye(2), "mixed":
                t.tensor([[1, 2.5]]), "as_tensor": t.as_tensor(1.0), "zeros_like_int": t.zeros_like(t.tensor([1])),
                "default": t.get_default_dtype()}

    try:
        torch.set_default_dtype(getattr(torch, name))
        theirs = {k: str(v.dtype if hasattr(v, "dtype") else v).removeprefix("torch.")
                  for k, v in creations(torch).items()}
        theirs.update({f"{m}.{k}": str(v.dtype).removeprefix("torch.") for m, model in models(torch.nn).items()
                       for k, v in model.state_dict().items()})
        ops.set_default_dtype(getattr(torch, name))  # torch's dtype objects work as jnn's do
        ours = {k: str(getattr(v, "dtype", v)) for k, v in creations(ops).items()}
        ours.update({f"{m}.{k}": str(v.dtype) for m, model in models(jnn).items()
                     for k, v in model.state_dict().items()})
    finally:
        torch.set_default_dtype(torch.float32)
        ops.set_default_dtype(ops.float32)
    ours = {k: v.replace("int32", "int64") for k, v in ours.items()}  # int64 is int32 without x64
    assert ours == theirs
    assert str(jnn.Linear(2, 2).weight.dtype) == "float32" and str(ops.tensor(1.0).dtype) == "float32"
    with pytest.raises(TypeError, match="only floating-point types are supported as the default type"):
        ops.set_default_dtype(ops.int32)
    with pytest.raises(TypeError, match="float64 needs 64-bit mode in JAX"):
        ops.set_default_dtype(torch.float64)

def test_float8_dtypes_are_torchs():
    # transformers' cache_utils: `torch.finfo(torch.float8_e4m3fn).max` in a class body
    for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"):
        ours, theirs = ops.finfo(getattr(ops, name)), torch.finfo(getattr(torch, name))
        assert (float(ours.max), ours.bits) == (theirs.max, theirs.bits), name  # (torch's e5m2fnuz eps is off)
        assert getattr(ops, name).itemsize == getattr(torch, name).itemsize == 1
    x = np.array([0.1, 3.3, -200.0, 1e-3], np.float32)  # in range: torch saturates on overflow, ml_dtypes gives nan
    for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"):
        same(ops.to(jnp.asarray(x), getattr(ops, name)).astype(jnp.float32),
             torch.from_numpy(x).to(getattr(torch, name)).float())


def test_accelerator_shim_is_cpu_torchs():
    # diffusers' utils/torch_utils.py at import: torch.accelerator.is_available(), .current_accelerator()
    for name in ("is_available", "device_count", "current_accelerator"):
        assert getattr(ops.accelerator, name)() == getattr(torch.accelerator, name)(), name


def test_version_compares_as_torchs():
    # diffusers' attention_dispatch.py at import: `if torch.__version__ >= "2.4.0":` (a version comparison, not a
    # string one: "2.13.0" < "2.4.0" as strings)
    from torch.torch_version import TorchVersion

    assert isinstance(ops.__version__, str) and ops.__version__ == str(TorchVersion("2.13.0"))
    for other in ("2.4.0", "2.13.0", "2.13", "2.14.0.dev20260101", "10.0", "2.13.1", (2, 4), (2, 13, 0), (3,)):
        for op in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__"):
            assert getattr(ops.__version__, op)(other) == getattr(TorchVersion("2.13.0"), op)(other), (op, other)
        assert (ops.__version__ != other) is not (ops.__version__ == other)  # torch's != is str's: "2.13" differs


def test_build_and_registration_shims():
    # what transformers asks at import time: torch.distributed.is_available(), torch.version.hip,
    # torch.get_default_device(), @torch._dynamo.assume_constant_result, torch.library.custom_op(...)
    assert ops.distributed.is_available() is False and ops.distributed.is_initialized() is False
    assert ops.version.cuda is None and ops.version.hip is None
    assert ops.get_default_device() == ops.attr(ops.tensor([]), "device")
    assert ops.get_default_device() == "cpu" or jax.default_backend() != "cpu"

    @ops._dynamo.assume_constant_result
    def f(v):
        return v + 1

    assert f(1) == 2 and ops._dynamo.allow_in_graph(f) is f and ops.compiler.allow_in_graph(f) is f
    assert ops._dynamo.mark_static_address(jnp.ones(2)) is None and ops._dynamo.is_compiling() is False

    def double(x):
        return 2 * x

    op = ops.library.custom_op("jnn_test::double", double, mutates_args=())
    ops.library.register_fake("jnn_test::double", lambda x: ops.empty_like(x))
    ops.library.register_autograd("jnn_test::double", lambda ctx, g: 2 * g)

    @ops.library.custom_op("jnn_test::triple", mutates_args=())
    def triple(x):
        return 3 * x

    assert op(3.0) == 6.0 and jax.grad(lambda x: op(x) + triple(x))(1.0) == 5.0


def test_pytree_registration_follows_torch_and_makes_jax_nodes():
    # transformers' ModelOutput registers itself with torch.utils._pytree; ported, with JAX, so jitted models can
    # return it
    import torch.utils._pytree as torch_pytree

    from jnn.ops.utils import _pytree

    def make(base):
        class Out(dict):
            pass

        def flatten(o):
            return list(o.values()), list(o.keys())

        def unflatten(values, keys):
            return Out(zip(keys, values, strict=True))

        base.register_pytree_node(Out, flatten, unflatten, serialized_type_name=f"Out{id(base)}",
                                  flatten_with_keys_fn=base._dict_flatten_with_keys)
        return Out

    TorchOut, Out = make(torch_pytree), make(_pytree)
    tree = {"a": [1, None], "b": TorchOut(x=2, y=(3, 4))}
    ours = {"a": [1, None], "b": Out(x=2, y=(3, 4))}
    assert _pytree.tree_leaves(ours) == torch_pytree.tree_leaves(tree) == [1, None, 2, 3, 4]
    mapped = _pytree.tree_map(lambda v: v if v is None else 10 * v, ours)
    assert isinstance(mapped["b"], Out) and mapped["b"] == {"x": 20, "y": (30, 40)} and mapped["a"] == [10, None]
    leaves, spec = _pytree.tree_flatten(ours)
    again = _pytree.tree_unflatten([2 * v if v else v for v in leaves], spec)
    assert again["b"]["y"] == (6, 8) and isinstance(again["b"], Out)
    out = jax.jit(lambda x: Out(logits=2 * x, hidden=x))(jnp.ones(2))
    assert isinstance(out, Out) and out["logits"].tolist() == [2.0, 2.0]
    assert [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(out)] == ["['logits']",
                                                                                            "['hidden']"]
    with pytest.raises(ValueError, match="already registered"):
        _pytree.register_pytree_node(Out, list, list)



def test_pytree_dict_helpers_are_torchs():
    # diffusers' BaseOutput registers itself with torch's _dict_flatten and _dict_unflatten
    import torch.utils._pytree as torch_pytree

    from jnn.ops.utils import _pytree

    d = {"sample": 1, "mask": None, "extra": (2, 3)}
    assert _pytree._dict_flatten(d) == torch_pytree._dict_flatten(d)
    assert _pytree._dict_unflatten(*_pytree._dict_flatten(d)) == d

    class Out(dict):
        pass

    _pytree.register_pytree_node(Out, _pytree._dict_flatten,
                                 lambda values, context: Out(**_pytree._dict_unflatten(values, context)))
    out = jax.jit(lambda x: Out(sample=2 * x))(jnp.ones(2))
    assert isinstance(out, Out) and out["sample"].tolist() == [2.0, 2.0]


def test_pytree_leaves_updated_in_place_reach_their_lists_and_dicts():
    # ema-pytorch's EMAPytree: `for t in tree_flatten(ema_tree)[0]: t.lerp_(online, w)` changes the tensors inside
    # the tree in torch; ported, the in-place functions put their results back in the list or dict element the leaf
    # was flattened from (tree_flatten and tree_leaves), as they do for module slots. A tuple's elements cannot
    # change: only its mutable children's do.
    import torch.utils._pytree as torch_pytree

    from jnn.ops.utils import _pytree

    rng = np.random.default_rng(0)
    values = [rng.standard_normal(3).astype(np.float32) for _ in range(4)]
    theirs = {"a": torch.tensor(values[0]), "b": [torch.tensor(values[1]), {"c": torch.tensor(values[2])}],
              "d": (1, [torch.tensor(values[3])])}
    ours = {"a": jnp.asarray(values[0]), "b": [jnp.asarray(values[1]), {"c": jnp.asarray(values[2])}],
            "d": (1, [jnp.asarray(values[3])])}
    target = [rng.standard_normal(3).astype(np.float32) for _ in range(4)]
    for t, source in zip([v for v in torch_pytree.tree_flatten(theirs)[0] if torch.is_tensor(v)], target, strict=True):
        t.lerp_(torch.tensor(source), 0.25)
    for t, source in zip([v for v in _pytree.tree_flatten(ours)[0] if isinstance(v, jax.Array)], target, strict=True):
        ops.lerp_(t, jnp.asarray(source), 0.25)
    for t in _pytree.tree_leaves(ours["b"]):
        ops.mul_(t, 2.0)
    for t in torch_pytree.tree_leaves(theirs["b"]):
        t.mul_(2.0)
    for path, expected in torch_pytree.tree_flatten_with_path(theirs)[0]:
        got = ours
        for key in path:
            got = got[getattr(key, "key", getattr(key, "idx", None))]
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6, err_msg=str(path))
    inner = (jnp.zeros(2),)
    ops.add_(_pytree.tree_leaves(inner)[0], 1.0)
    assert inner[0].tolist() == [0.0, 0.0]  # a tuple's element stays (torch's would change)
    from jnn.modules import _pytree as slots

    for _ in range(20):  # only the last 8 flattened trees are remembered (and kept alive)
        _pytree.tree_leaves([jnp.zeros(1)])
    assert len(slots._element_trees) == 8 and len(slots._element_handouts) == 8


def test_pytree_leaves_of_a_dict_in_its_insertion_order_as_torchs():
    # torch's pytree takes a dict's values in insertion order (JAX sorts the keys, and refuses keys that do not sort):
    # `for name, leaf in zip(batch, tree_leaves(batch))` pairs them as torch's does; the tree comes back as it was
    import collections

    import torch.utils._pytree as torch_pytree

    from jnn.ops.utils import _pytree

    for tree in ({"b": 1, "a": 2, 3: [4, {"z": 5, "y": None}]}, ({"b": (1, 2), "a": 3}, [{"d": 4, "c": 5}]),
                 collections.OrderedDict(b=1, a=2), {"a": 1, "b": {"d": 2, "c": 3}}, collections.defaultdict(
                     list, {"b": 1, "a": 2}), collections.namedtuple("Pair", "x y")({"b": 1, "a": 2}, [3])):
        leaves, spec = _pytree.tree_flatten(tree)
        assert leaves == torch_pytree.tree_flatten(tree)[0] == _pytree.tree_leaves(tree), tree
        theirs = torch_pytree.tree_unflatten(*(lambda l, s: ([v and 10 * v for v in l], s))(
            *torch_pytree.tree_flatten(tree)))
        ours = _pytree.tree_unflatten([v and 10 * v for v in leaves], spec)
        assert repr(ours) == repr(theirs) and type(ours) is type(theirs), (ours, theirs)
        assert _pytree.tree_structure(tree) == spec
        seen, seen_torch = [], []
        mapped = _pytree.tree_map(lambda v, seen=seen: seen.append(v) or v, tree)
        torch_pytree.tree_map(lambda v, seen=seen_torch: seen.append(v) or v, tree)
        assert seen == seen_torch and repr(mapped) == repr(tree) and type(mapped) is type(tree)


# --- in-place methods ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, args", [
    ("add_", (np.float32(2.0),)), ("sub_", ("y",)), ("mul_", ("y",)), ("div_", ("y",)), ("clamp_", (-0.5, 0.5)),
    ("relu_", ()), ("sigmoid_", ()), ("exp_", ()), ("neg_", ()), ("abs_", ()), ("pow_", (2,)), ("floor_", ()),
    ("round_", ()), ("masked_fill_", ("mask", 0.0)), ("fill_", (3.0,)), ("zero_", ()), ("copy_", ("y",)),
    ("tril_", ()), ("lerp_", ("y", 0.5)), ("addcmul_", ("y", "y")), ("sqrt_", ()), ("tanh_", ()),
    ("index_fill_", (1, "index", -1.0)), ("scatter_", (1, "index2", 0.0)), ("t_", ()), ("unsqueeze_", (0,)),
    ("transpose_", (0, 1)), ("squeeze_", ()), ("clamp_min_", (0.0,)), ("fill_diagonal_", (5.0,)),
])
def test_inplace_matches_torch_and_returns_new_array(name, args):
    x = np.abs(randn(3, 4)) if name == "sqrt_" else randn(3, 4)
    env = {"y": randn(3, 4), "mask": RNG.random((3, 4)) > 0.5, "index": np.array([0, 2], np.int32),
           "index2": np.array([[0], [1], [3]], np.int32)}
    real = tuple(env.get(a, a) if isinstance(a, str) else a for a in args)
    t = torch.from_numpy(x.copy())
    result = getattr(t, name)(*_to_torch(real))
    assert name in ops.INPLACE and name in ops.METHODS
    jx = jnp.asarray(x)
    ours = getattr(ops, name)(jx, *_to_jax(real))
    same(ours, result)
    same(jax.jit(lambda v: getattr(ops, name)(v, *_to_jax(real)))(jx), result)
    np.testing.assert_array_equal(np.asarray(jx), x)  # the input is unchanged


def test_inplace_keeps_dtype_and_shape_or_refuses():
    h = jnp.ones(3, jnp.float16)
    assert ops.add_(h, jnp.ones(3, jnp.float32)).dtype == jnp.float16
    assert ops.mul_(jnp.arange(3), 2).dtype == jnp.int32
    with pytest.raises(TypeError, match="can't be cast"):
        ops.add_(jnp.arange(3), 0.5)
    with pytest.raises(ValueError, match="keeps the array's shape"):
        ops.add_(jnp.ones(3), jnp.ones((2, 3)))
    assert ops.fill_(jnp.arange(3), 2.7).tolist() == torch.arange(3).fill_(2.7).tolist()


# --- receiver dispatch and the catalogue ------------------------------------------------------------------------------

def test_receiver_dispatch_calls_the_objects_own_method():
    assert ops.split("a b", " ") == ["a", "b"]
    assert ops.split("a,b,c", ",", 1) == ["a", "b,c"]
    items = [3, 1, 2]
    assert ops.sort(items) is None and items == [1, 2, 3]  # list.sort, in place
    assert ops.flip(_Recorder(), 0) == ("flip", (0,), {})
    assert ops.to(_Recorder(), "cuda") == ("to", ("cuda",), {})
    assert ops.float(_Recorder()) == ("float", (), {})
    assert ops.cuda(_Recorder(), 0) == ("cuda", (0,), {})
    assert ops.add_(_Recorder(), 1, alpha=2) == ("add_", (1,), {"alpha": 2})
    assert ops.view(_Recorder(), 2, -1) == ("view", (2, -1), {})
    assert ops.max(_Recorder(), dim=1) == ("max", (), {"dim": 1})
    model = jnn.Linear(2, 3)
    assert ops.half(model) is model and model.weight.dtype == jnp.float16
    assert ops.requires_grad_(model, False) is model
    assert ops.numel(input=jnp.ones((2, 2))) == 4
    with pytest.raises(TypeError, match=r"jnn.ops.view expected an array \(or an object with a .view\(\) method\), "
                                        "got int"):
        ops.view(3, 1)
    with pytest.raises(TypeError, match=r"jnn.ops.float expected an array .* got int"):
        ops.float(3)


class _Recorder:
    def __getattr__(self, name):
        return lambda *args, **kwargs: (name, args, kwargs)


def test_methods_and_inplace_catalogue():
    assert ops.METHODS >= ops.INPLACE
    for name in ops.METHODS:
        assert callable(getattr(ops, name)), name
    # every method-function is a torch.Tensor method of the same name (the receiver-first convention is torch's)
    not_torch = sorted(n for n in ops.METHODS if not hasattr(torch.Tensor, n))
    assert not_torch == [], not_torch
    for name in ops.INPLACE:
        assert name.endswith("_") and hasattr(torch.Tensor, name), name
    # names that real model code uses (torchvision's models, nanoGPT-style attention)
    for name in ["view", "size", "permute", "contiguous", "unsqueeze", "dim", "matmul", "chunk", "expand",
                 "masked_fill", "new_zeros", "transpose", "flatten", "reshape", "float", "int", "item", "tolist",
                 "softmax", "topk", "split", "mean", "sum", "max", "min", "clamp", "sigmoid", "relu", "mul_", "add_",
                 "div_", "normal_", "uniform_", "zero_", "fill_", "copy_", "clamp_", "relu_", "masked_fill_",
                 "bernoulli_", "round_", "tril", "type_as", "to", "detach", "clone", "unbind", "squeeze", "numel",
                 "new_ones", "new_full", "sort", "argmax", "gather", "scatter", "index_select", "expand_as", "t",
                 "repeat", "roll", "flip", "norm", "std", "var", "cumsum", "all", "any", "eq", "long", "bool",
                 "half", "cpu", "cuda", "requires_grad_", "narrow", "unfold", "swapaxes", "log", "exp", "sqrt",
                 "abs", "pow", "sin", "cos", "atan", "floor", "ceil", "is_floating_point", "nelement", "multinomial"]:
        assert name in ops.METHODS, name
    for name in ["cat", "stack", "zeros", "ones", "full", "empty", "arange", "linspace", "eye", "tensor",
                 "as_tensor", "from_numpy", "rand", "randn", "randint", "randperm", "meshgrid", "einsum", "where",
                 "no_grad", "finfo", "iinfo", "Tensor", "Size", "device", "is_tensor", "jit", "fx", "_assert",
                 "zeros_like", "ones_like", "full_like", "float32", "int64", "uint8", "pi", "concat", "tril_indices"]:
        assert hasattr(ops, name), name


# --- real model code: nanoGPT's attention and sampling, written with ops ---------------------------------------------

def _attention(lib, x, w_attn, w_proj, bias, n_head):
    """nanoGPT's CausalSelfAttention.forward, once with torch's methods and once with the same calls through ops."""
    if lib is torch:
        B, T, C = x.size()
        q, k, v = (x @ w_attn).split(C, dim=2)
        k = k.view(B, T, n_head, C // n_head).transpose(1, 2)
        q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
        v = v.view(B, T, n_head, C // n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(bias[:, :, :T, :T] == 0, float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return y @ w_proj
    B, T, C = ops.size(x)
    q, k, v = ops.split(x @ w_attn, C, dim=2)
    k = ops.transpose(ops.view(k, B, T, n_head, C // n_head), 1, 2)
    q = ops.transpose(ops.view(q, B, T, n_head, C // n_head), 1, 2)
    v = ops.transpose(ops.view(v, B, T, n_head, C // n_head), 1, 2)
    att = (q @ ops.transpose(k, -2, -1)) * (1.0 / math.sqrt(ops.size(k, -1)))
    att = ops.masked_fill(att, bias[:, :, :T, :T] == 0, float("-inf"))
    att = ops.softmax(att, dim=-1)
    y = ops.view(ops.contiguous(ops.transpose(att @ v, 1, 2)), B, T, C)
    return y @ w_proj


def test_nanogpt_attention_and_top_k_sampling():
    B, T, C, n_head, block = 2, 5, 8, 2, 6
    x, w_attn, w_proj = randn(B, T, C), randn(C, 3 * C), randn(C, C)
    theirs = _attention(torch, *_to_torch((x, w_attn, w_proj)), torch.tril(torch.ones(block, block)).view(
        1, 1, block, block), n_head)
    bias = ops.view(ops.tril(ops.ones(block, block)), 1, 1, block, block)
    same(_attention(ops, *_to_jax((x, w_attn, w_proj)), bias, n_head), theirs, rtol=1e-4, atol=1e-4)
    jitted = jax.jit(lambda *a: _attention(ops, *a, bias, n_head))
    same(jitted(*_to_jax((x, w_attn, w_proj))), theirs, rtol=1e-4, atol=1e-4)

    logits, top_k = randn(3, 10), 4
    t = torch.from_numpy(logits.copy())
    v, _ = torch.topk(t, min(top_k, t.size(-1)))
    t[t < v[:, [-1]]] = -float("Inf")
    ours = jnp.asarray(logits)
    v, _ = ops.topk(ours, min(top_k, ops.size(ours, -1)))
    ours = ops.where(ours < v[:, [-1]], -float("Inf"), ours)
    same(ours, t)
    probs = ops.softmax(ours, dim=-1)
    with jnn.random.fork(jax.random.key(0)):
        idx_next = ops.multinomial(probs, num_samples=1)
    assert idx_next.shape == (3, 1) and bool(ops.all(ops.gather(probs, 1, idx_next) > 0))
    idx = ops.cat((ops.zeros(3, 2, dtype=ops.long), idx_next), dim=1)
    assert idx.shape == (3, 3) and idx.dtype == jnp.int32


def test_with_x64_torch_int64_and_default_float32_hold():
    code = (
        "import jax, jax.numpy as jnp\n"
        "from jnn import ops\n"
        "x = jnp.arange(3.0, dtype=jnp.float32)\n"
        "print(ops.long(x).dtype, ops.arange(3).dtype, ops.tensor([1.0]).dtype, ops.tensor([1]).dtype,\n"
        "      ops.zeros(2).dtype, ops.max(x, 0).indices.dtype, ops.sum(jnp.ones(2, bool)).dtype,\n"
        "      ops.double(x).dtype)\n"
    )
    env = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["int64", "int64", "float32", "int64", "float32", "int64", "int64", "float64"]


def test_legacy_new_as_torch():
    x, ints = randn(2, 3), randint(4)
    for receiver in (x, ints):
        for args in (([1, 2],), ((2, 3),), (receiver,), (2, 3), ()):
            theirs = torch.from_numpy(receiver).new(*[torch.from_numpy(a) if isinstance(a, np.ndarray) else a
                                                      for a in args])
            ours = ops.new(jnp.asarray(receiver), *args)
            assert np.asarray(ours).shape == tuple(theirs.shape)
            assert np.asarray(ours).dtype == _expected_dtype(theirs)
            if args and not isinstance(args[0], int):  # torch's sized form is uninitialised
                np.testing.assert_array_equal(np.asarray(ours), theirs.numpy())
    assert ops.new(jnp.asarray(x), ops.size(jnp.asarray(x))).shape == (2, 3)  # a Size is a size


def test_attr_reads_torchs_tensor_kind_flags():
    """``x.is_quantized`` (torchvision's nms, roi_align), ``x.is_cpu``, ``x.is_mps``, ...: what torch says for a
    CPU tensor, on the CPU backend; in ported code through ``ops.attr``."""
    from jnn.port import port_source

    names = ["is_quantized", "is_sparse", "is_meta", "is_mps", "is_xpu", "is_cpu", "is_cuda"]
    assert all(f'ops.attr(x, "{n}")' in port_source(f"import torch\ny = x.{n}\n", report=None) for n in names)
    if jax.default_backend() == "cpu":
        for name in names:
            assert ops.attr(jnp.ones(2), name) == getattr(torch.ones(2), name), name


@pytest.mark.parametrize(("name", "kwargs"), [
    ("mean", {"axis": 0}), ("sum", {"axis": 1, "keepdims": True}), ("std", {"axis": 0}), ("softmax", {"axis": -1}),
    ("max", {"axis": 1}), ("argmax", {"axis": 1, "keepdims": True}), ("cumsum", {"axis": 1}),
    ("logsumexp", {"axis": 1}), ("std_mean", {"axis": 0, "keepdims": True}), ("var_mean", {"axis": 1}),
])
def test_numpy_argument_names(name, kwargs):
    """torch's argument parser takes NumPy's axis= / keepdims= for dim= / keepdim= (whisper's timing.py:
    ``weights.mean(axis=0)``)."""
    check(name, randn(3, 4), **kwargs)


def test_numpy_argument_names_stack_and_clash():
    x = randn(2, 3)
    same(ops.stack([x, x], axis=1), torch.stack([torch.from_numpy(x)] * 2, axis=1))
    with pytest.raises(TypeError, match="multiple values for argument 'dim'"):
        ops.mean(jnp.asarray(x), dim=0, axis=0)
