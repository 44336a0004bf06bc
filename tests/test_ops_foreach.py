"""``jnn.ops._foreach_*`` against torch's: every function over a list of tensors of different shapes, with its other
arguments as lists, one scalar, a list of scalars and torch's keywords; the in-place ones also update the list
given and the module slots its arrays were read from."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jnn
from jnn import ops
from jnn.ops import foreach

SHAPES = [(3,), (2, 4), ()]
RNG = np.random.default_rng(0)


def tensors(low=0.5, high=2.0):
    return [RNG.uniform(low, high, shape).astype(np.float32) for shape in SHAPES]


def both(arg):
    """``arg`` for torch and for jnn: a list of arrays becomes tensors / JAX arrays; scalars stay."""
    if isinstance(arg, list) and arg and isinstance(arg[0], np.ndarray):
        return [torch.from_numpy(a.copy()) for a in arg], [jnp.asarray(a) for a in arg]
    return arg, arg


def compare(name, args, kwargs=None):
    kwargs = kwargs or {}
    theirs_args, ours_args = zip(*(both(a) for a in args), strict=True)
    theirs_kwargs = {k: both(v)[0] for k, v in kwargs.items()}
    ours_kwargs = {k: both(v)[1] for k, v in kwargs.items()}
    expected = getattr(torch, name)(*theirs_args, **theirs_kwargs)
    result = getattr(ops, name)(*ours_args, **ours_kwargs)
    if name.endswith("_"):
        assert result is ours_args[0]  # the list given, its arrays replaced
        expected = theirs_args[0]
    assert len(result) == len(expected)
    for ours, theirs in zip(result, expected, strict=True):
        assert ours.shape == tuple(theirs.shape) and ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch."))
        np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "clamp_min", "clamp_max", "maximum", "minimum", "pow"])
@pytest.mark.parametrize("in_place", [False, True])
def test_binary(name, in_place):
    name = f"_foreach_{name}" + ("_" if in_place else "")
    if not hasattr(torch, name):
        assert not hasattr(ops, name)
        return
    compare(name, [tensors(), tensors()])  # a list of tensors
    compare(name, [tensors(), 1.5])  # one scalar
    compare(name, [tensors(), [0.5, 2.0, 3.0]])  # a scalar each
    keyword = "exponent" if "pow" in name else "scalar"
    compare(name, [tensors()], {keyword: 2.0})
    if "add" in name or "sub" in name:
        compare(name, [tensors(), tensors()], {"alpha": 0.25})


@pytest.mark.parametrize("in_place", [False, True])
def test_lerp_addcmul_addcdiv_copy(in_place):
    suffix = "_" if in_place else ""
    compare("_foreach_lerp" + suffix, [tensors(), tensors()], {"weight": 0.3})
    compare("_foreach_lerp" + suffix, [tensors(), tensors(), tensors()])  # a weight tensor each
    for name in ("_foreach_addcmul", "_foreach_addcdiv"):
        compare(name + suffix, [tensors(), tensors(), tensors()])
        compare(name + suffix, [tensors(), tensors(), tensors()], {"value": -0.5})
        compare(name + suffix, [tensors(), tensors(), tensors(), [1.0, 2.0, 3.0]])
    if in_place:
        compare("_foreach_copy_", [tensors(), tensors()])
        compare("_foreach_zero_", [tensors()])


@pytest.mark.parametrize("name", ["abs", "neg", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt",
                                  "sign", "sigmoid", "tanh", "sin", "cos", "reciprocal", "floor", "ceil", "round",
                                  "trunc", "frac", "erf", "erfc"])
def test_unary(name):
    compare(f"_foreach_{name}", [tensors(-2.0, 2.0) if name not in ("log", "log2", "log10", "sqrt", "rsqrt")
                                 else tensors()])
    compare(f"_foreach_{name}_", [tensors(-2.0, 2.0) if name not in ("log", "log2", "log10", "sqrt", "rsqrt")
                                  else tensors()])


def test_norm():
    values = tensors(-2.0, 2.0)
    for ord in (2, 1, float("inf")):
        expected = torch._foreach_norm([torch.from_numpy(v) for v in values], ord)
        result = ops._foreach_norm([jnp.asarray(v) for v in values], ord)
        np.testing.assert_allclose([float(r) for r in result], [float(e) for e in expected], rtol=1e-6)


def test_in_place_reaches_the_module_and_errors_name_the_function():
    lin = jnn.Linear(3, 2)
    params = list(lin.parameters())
    ops._foreach_mul_(params, 0.0)
    ops._foreach_add_(params, [jnp.ones((2, 3)), jnp.ones(2)], alpha=2.0)
    assert np.all(np.asarray(lin.weight) == 2.0) and np.all(np.asarray(lin.bias) == 2.0)
    with pytest.raises(ValueError, match="_foreach_add_: expected every list to hold 2 tensors"):
        ops._foreach_add_(params, [jnp.ones(2)])
    with pytest.raises(TypeError, match="_foreach_mul_.. got an unexpected keyword argument 'alpha'"):
        ops._foreach_mul_(params, 2.0, alpha=1.0)
    assert set(foreach.__all__) <= set(ops.__all__)
