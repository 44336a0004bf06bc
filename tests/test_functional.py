"""jnn.functional against PyTorch: values, gradients and errors, with torch (CPU, float32) as the oracle."""

import ast
import doctest
import inspect
import math
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import jnn.functional as F
import jnn.random

FAST = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**32 - 1)


def assert_close(actual, expected, rtol=1e-5, atol=1e-5):
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().float().numpy()
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float32), expected, rtol=rtol, atol=atol)


def compare(jfn, tfn, inputs, rng, grad=True, rtol=1e-5, atol=1e-5, jit=True):
    """Run jfn on jax copies and tfn on torch copies of the float32 numpy `inputs`; compare values and the
    gradients of ``sum(out * random_cotangent)`` with respect to every input. ``jit=True`` runs jfn and its
    VJP as one compiled function (one compilation per example keeps property tests fast); ``jit=False``
    runs them eagerly."""
    tin = [torch.tensor(a, requires_grad=grad) for a in inputs]
    jin = [jax.device_put(a) for a in inputs]  # (jnp.asarray of numpy compiles a copy per new shape)
    tout = tfn(*tin)
    ct = rng.standard_normal(tuple(tout.shape)).astype(np.float32)

    def fwd_bwd(*a):
        out, vjp = jax.vjp(jfn, *a)
        return out, (vjp(ct) if grad else ())
    jout, grads = (jax.jit(fwd_bwd) if jit else fwd_bwd)(*jin)
    assert jout.shape == tuple(tout.shape)
    assert_close(jout, tout, rtol, atol)
    if grad:
        (tout * torch.tensor(ct)).sum().backward()
        for g, t in zip(grads, tin, strict=True):
            assert_close(g, t.grad if t.grad is not None else torch.zeros_like(t), rtol, atol)
    return jout, tout


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------------------------------- API shape
def _torch_params(name: str) -> list:
    """torch's parameters (name, default) for F.<name>: from its signature, or for C builtins from the
    signature line that opens their docstring (e.g. ``prelu(input, weight) -> Tensor``)."""
    ref = getattr(TF, name + "_with_indices", None) if "max_pool" in name else None  # boolean-dispatch wrappers
    ref = ref or getattr(TF, name)
    try:
        return [(p.name, p.default) for p in inspect.signature(ref).parameters.values() if p.kind != p.KEYWORD_ONLY]
    except (TypeError, ValueError):
        pass
    line = re.match(rf"\s*{name}\((.*?)\)\s*->", ref.__doc__, re.S).group(1)
    args = ast.parse(f"def f({line}): pass").body[0].args
    defaults = [inspect.Parameter.empty] * (len(args.args) - len(args.defaults)) + [
        eval(ast.unparse(d), {}) for d in args.defaults]  # noqa: S307 (torch's own defaults, e.g. 1./8)
    return [(a.arg, d) for a, d in zip(args.args, defaults, strict=True)]


@pytest.mark.parametrize("name", [n for n in F.__all__ if n != "batch_norm_with_stats" and n.isidentifier()
                                  and hasattr(TF, n)])
def test_signature_matches_torch(name):
    ours = [(p.name, p.default) for p in inspect.signature(getattr(F, name)).parameters.values()
            if p.kind != p.KEYWORD_ONLY]
    assert ours == _torch_params(name)


def test_every_function_has_a_docstring_example():
    # the examples themselves run under pytest's --doctest-modules (see pyproject.toml)
    finder = doctest.DocTestFinder()
    missing = [name for name in F.__all__ if not any(t.examples for t in finder.find(getattr(F, name), name))]
    assert not missing


# ----------------------------------------------------------------------------------------- activations
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("shape", [(), (7,), (3, 4, 5)])
def test_activations(name, shape):
    rng = np.random.default_rng(0)
    x = randn(rng, *shape) * 3
    if x.size > 2:
        x.flat[:2] = 0.0  # relu's gradient at exactly 0 is 0 in torch
    compare(getattr(F, name), getattr(TF, name), [x], rng, jit=False)


def test_relu_inplace_returns_result_and_leaves_input():
    x = jnp.array([-1.0, 2.0])
    assert F.relu(x, inplace=True).tolist() == [0.0, 2.0]
    assert x.tolist() == [-1.0, 2.0]


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_activations_of_integers_give_float32(name):
    y = getattr(F, name)(jnp.arange(-2, 3))
    assert y.dtype == jnp.float32
    assert_close(y, getattr(TF, name)(torch.arange(-2, 3)))


# ---------------------------------------------------------------------------------- softmax/log_softmax
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(5,), (2, 3, 2, 3)])
def test_softmax_every_dim(name, shape):
    rng = np.random.default_rng(1)
    x = randn(rng, *shape) * 4
    dims = range(-len(shape), len(shape))  # all dims, stacked: one compilation per shape
    compare(lambda a: jnp.stack([getattr(F, name)(a, dim=d) for d in dims]),
            lambda a: torch.stack([getattr(TF, name)(a, dim=d) for d in dims]), [x], rng)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4), (2, 3, 2, 3)])
def test_softmax_implicit_dim_like_torch(name, shape):
    x = randn(np.random.default_rng(2), *shape)
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name}") as rec:
        y = getattr(F, name)(jax.device_put(x))
    assert rec[0].filename == __file__  # the warning points at the caller, like torch's
    with pytest.warns(UserWarning):
        ref = getattr(TF, name)(torch.tensor(x))
    assert_close(y, ref)


def test_softmax_dtype_and_positional_args():
    x = randn(np.random.default_rng(3), 3, 4).astype(np.float16)
    y = F.softmax(jax.device_put(x), 1, 3, jnp.float32)
    assert y.dtype == jnp.float32
    assert_close(y, TF.softmax(torch.tensor(x), 1, 3, torch.float32))
    assert F.log_softmax(jnp.zeros(3, jnp.float32), 0, dtype=jnp.float16).dtype == jnp.float16


def test_softmax_errors():
    with pytest.raises(IndexError, match="softmax: dimension out of range"):
        F.softmax(jnp.zeros(3), dim=1)
    with pytest.raises(TypeError, match="log_softmax: expected a floating-point input"):
        F.log_softmax(jnp.arange(3), dim=0)
    assert F.softmax(jnp.arange(3), dim=0, dtype=jnp.float32).sum() == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------- linear
@FAST
@given(seed=seeds, lead=st.lists(st.integers(1, 3), max_size=3), fin=st.integers(1, 6), fout=st.integers(1, 6),
       use_bias=st.booleans())
def test_linear(seed, lead, fin, fout, use_bias):
    rng = np.random.default_rng(seed)
    arrays = [randn(rng, *lead, fin), randn(rng, fout, fin)] + ([randn(rng, fout)] if use_bias else [])
    compare(F.linear, TF.linear, arrays, rng)


def test_linear_errors():
    with pytest.raises(ValueError, match="linear: input has 3 features"):
        F.linear(jnp.ones((2, 3)), jnp.ones((4, 5)))
    with pytest.raises(ValueError, match="linear: bias of shape \\(5,\\)"):
        F.linear(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.ones(5))
    with pytest.raises(ValueError, match="linear: expected input of shape"):
        F.linear(jnp.float32(1.0), jnp.ones((4, 3)))



@pytest.mark.parametrize("case", ["2d@3d", "2d@2d", "3d@2d", "3d@3d"])
def test_grouped_mm(case):
    """torch's grouped_mm on CPU (float32, 16-byte-aligned strides), a group left empty; only what torch defines is
    compared (its results past offs[-1] are uninitialised memory). Gradients of the 2-d @ 3-d case (MoE forward)."""
    rng = np.random.default_rng(0)
    offs = np.array([4, 4, 12], np.int32)
    shapes = {"2d@3d": ((16, 4), (3, 8, 4)), "2d@2d": ((8, 16), (16, 8)), "3d@2d": ((3, 8, 4), (16, 4)),
              "3d@3d": ((3, 8, 4), (3, 8, 4))}[case]
    a, w = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    # torch's mat_b: a 2-d or 3-d weight transposed (column-major), as MoE layers pass it
    b = w if case == "2d@2d" else np.swapaxes(w, -1, -2)
    kwargs = {} if case == "3d@3d" else {"offs": offs}
    ta, tw = torch.tensor(a, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = tw if case == "2d@2d" else tw.transpose(-2, -1)
    theirs = TF.grouped_mm(ta, tb, **{k: torch.from_numpy(v) for k, v in kwargs.items()})
    ours = jax.jit(lambda a, b: F.grouped_mm(a, b, **kwargs))(jnp.asarray(a), jnp.asarray(b))
    defined = {"2d@3d": np.s_[:12], "3d@2d": np.s_[:, :12]}.get(case, np.s_[...])
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(np.asarray(ours)[defined], theirs.detach().numpy()[defined], rtol=1e-5, atol=1e-5)
    if case == "2d@3d":
        theirs[defined].square().sum().backward()
        grads = jax.grad(lambda a, w: jnp.sum(F.grouped_mm(a, jnp.swapaxes(w, -1, -2), offs=offs)[defined] ** 2),
                         argnums=(0, 1))(jnp.asarray(a), jnp.asarray(w))
        np.testing.assert_allclose(grads[0][defined], ta.grad.numpy()[defined], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(grads[1], tw.grad.numpy(), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="offs is required when an operand is 2-D"):
        F.grouped_mm(jnp.ones((4, 2)), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="cannot be multiplied"):
        F.grouped_mm(jnp.ones((4, 2)), jnp.ones((3, 4, 2)), offs=offs)

# -------------------------------------------------------------------------------------------------- pad
@FAST
@given(seed=seeds, shape=st.lists(st.integers(2, 5), min_size=1, max_size=4), data=st.data(),
       value=st.sampled_from([None, 0.0, -1.5, 3.0]))
def test_pad_constant(seed, shape, data, value):
    m = data.draw(st.integers(1, len(shape)))
    pads = data.draw(st.lists(st.integers(-2, 3), min_size=2 * m, max_size=2 * m))
    for i in range(m):
        assume(shape[-1 - i] + pads[2 * i] + pads[2 * i + 1] >= 0)
    rng = np.random.default_rng(seed)
    compare(lambda a: F.pad(a, pads, value=value), lambda a: TF.pad(a, pads, value=value), [randn(rng, *shape)],
            rng)


@FAST
@given(seed=seeds, mode=st.sampled_from(["reflect", "replicate", "circular"]),
       combo=st.sampled_from([(1, 2), (1, 3), (2, 3), (2, 4), (3, 4), (3, 5)]), data=st.data())
def test_pad_nonconstant(seed, mode, combo, data):
    m, ndim = combo
    shape = data.draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim))
    pads = []
    for i in range(m):
        size = shape[-1 - i]
        hi = {"reflect": size - 1, "replicate": 4, "circular": size}[mode]
        pads += data.draw(st.lists(st.integers(0, hi), min_size=2, max_size=2))
    rng = np.random.default_rng(seed)
    compare(lambda a: F.pad(a, pads, mode), lambda a: TF.pad(a, pads, mode), [randn(rng, *shape)], rng)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("pads", [(-1, 2), (2, -1), (1, -2, -1, 2)])
def test_pad_nonconstant_negative_crops_like_torch(mode, pads):
    rng = np.random.default_rng(4)
    compare(lambda a: F.pad(a, pads, mode), lambda a: TF.pad(a, pads, mode), [randn(rng, 2, 4, 5)], rng,
            jit=False)


def test_pad_integer_input_truncates_value_like_torch():
    y = F.pad(jnp.arange(4), (1, 1), value=2.5)
    assert y.dtype == jnp.arange(4).dtype
    assert y.tolist() == TF.pad(torch.arange(4), (1, 1), value=2.5).tolist()


def test_pad_errors():
    x = jnp.zeros((1, 3, 4))
    with pytest.raises(ValueError, match="pad: padding length must be divisible by 2"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(ValueError, match="less than or equal to two times the input dimension"):
        F.pad(x, (1,) * 8)
    with pytest.raises(ValueError, match="crops dimension 2 of size 4 below zero"):
        F.pad(x, (-3, -2))
    with pytest.raises(ValueError, match="less than the corresponding input dimension"):
        F.pad(x, (4, 0), "reflect")
    with pytest.raises(ValueError, match="wrapping around more than once"):
        F.pad(x, (5, 0), "circular")
    with pytest.raises(ValueError, match="unrecognised padding mode 'foo'"):
        F.pad(x, (1, 1), "foo")
    with pytest.raises(ValueError, match="doesn't take in value argument"):
        F.pad(x, (1, 1), "reflect", 1.0)
    with pytest.raises(NotImplementedError, match="padding size 6 is not supported for 3D input"):
        F.pad(x, (1,) * 6, "replicate")
    with pytest.raises(NotImplementedError, match="padding size 2 is not supported for 1D input"):
        F.pad(jnp.zeros(4), (1, 1), "reflect")
    with pytest.raises(ValueError, match="non-empty padded dimensions"):
        F.pad(jnp.zeros((2, 3, 0)), (1, 1), "replicate")
    assert F.pad(x, (1, 1), "reflect", 0.0).shape == (1, 3, 6)  # value 0 is allowed, as in torch


# ----------------------------------------------------------------------------------------------- conv2d
@FAST
@given(seed=seeds, batch=st.sampled_from([None, 1, 2]), groups=st.integers(1, 3), cin=st.integers(1, 2),
       cout=st.integers(1, 2), k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.sampled_from([0, 1, 2, (0, 2), (2, 1), "same", "valid"]),
       extra=st.tuples(st.integers(0, 4), st.integers(0, 4)), use_bias=st.booleans())
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv2d(seed, batch, groups, cin, cout, k, stride, dilation, padding, extra, use_bias):
    if padding == "same":
        stride = (1, 1)
    size = [dilation[i] * (k[i] - 1) + 1 + extra[i] for i in range(2)]  # always at least one output
    rng = np.random.default_rng(seed)
    x = randn(rng, *(() if batch is None else (batch,)), cin * groups, *size)
    arrays = [x, randn(rng, cout * groups, cin, *k)] + ([randn(rng, cout * groups)] if use_bias else [])
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    compare(lambda *a: F.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw), arrays, rng, rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv2d_same_puts_odd_padding_bottom_right():
    rng = np.random.default_rng(5)
    x, w = randn(rng, 1, 1, 5, 6), randn(rng, 1, 1, 2, 4)
    compare(lambda a, b: F.conv2d(a, b, padding="same", dilation=(1, 1)),
            lambda a, b: TF.conv2d(a, b, padding="same"), [x, w], rng, rtol=1e-4, atol=1e-4, jit=False)


def test_conv2d_errors():
    x, w = jnp.zeros((2, 3, 5, 5)), jnp.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match="conv2d: padding='same' is not supported for strided convolutions"):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="conv2d: invalid padding string 'foo'"):
        F.conv2d(x, w, padding="foo")
    with pytest.raises(ValueError, match="conv2d: given groups=1, weight of shape \\(4, 3, 3, 3\\), expected input "
                                         ".* to have 3 channels, but got 4 channels instead"):
        F.conv2d(jnp.zeros((2, 4, 5, 5)), w)
    with pytest.raises(ValueError, match="conv2d: given groups=2, expected weight to be divisible by 2"):
        F.conv2d(jnp.zeros((2, 6, 5, 5)), jnp.zeros((3, 3, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="conv2d: expected 3D .* or 4D .* input, got input of shape \\(5, 5\\)"):
        F.conv2d(jnp.zeros((5, 5)), w)
    with pytest.raises(ValueError, match="conv2d: expected 3D"):
        F.conv2d(jnp.zeros((1, 2, 3, 5, 5)), w)
    with pytest.raises(ValueError, match="Kernel size can't be greater than actual input size"):
        F.conv2d(jnp.zeros((2, 3, 2, 2)), w)
    with pytest.raises(ValueError, match="conv2d: negative padding is not supported"):
        F.conv2d(x, w, padding=-1)
    with pytest.raises(ValueError, match="conv2d: stride and dilation must be positive"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="conv2d: given weight of shape .*, expected bias of shape \\(4,\\)"):
        F.conv2d(x, w, bias=jnp.zeros(3))
    with pytest.raises(ValueError, match="conv2d: padding must be a single int or a tuple of 2 ints"):
        F.conv2d(x, w, padding=(1, 2, 3))


# ---------------------------------------------------------------------------------------------- dropout
def test_dropout_masks_differ_between_calls_and_keys_but_repeat_for_equal_keys():
    x = jnp.ones(2000)
    assert not jnp.array_equal(F.dropout(x), F.dropout(x))  # global stream advances
    k1, k2 = jax.random.key(1), jax.random.key(2)
    assert jnp.array_equal(F.dropout(x, key=k1), F.dropout(x, key=k1))
    assert not jnp.array_equal(F.dropout(x, key=k1), F.dropout(x, key=k2))
    with jnn.random.fork(k1):
        a = F.dropout(x)
    with jnn.random.fork(k1):
        b = F.dropout(x)
    with jnn.random.fork(k2):
        c = F.dropout(x)
    assert jnp.array_equal(a, b) and not jnp.array_equal(a, c)
    jnn.random.manual_seed(7)
    d = F.dropout(x)
    jnn.random.manual_seed(7)
    assert jnp.array_equal(d, F.dropout(x))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_scaling_and_keep_rate(p):
    x = jax.device_put(randn(np.random.default_rng(6), 40000))
    y = F.dropout(x, p, key=jax.random.key(3))
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    assert abs(float(kept.mean()) - (1 - p)) < 0.01
    g = jax.grad(lambda a: F.dropout(a, p, key=jax.random.key(3)).sum())(x)
    np.testing.assert_allclose(g, kept / (1 - p), rtol=1e-6)


def test_dropout_identity_and_extremes_like_torch():
    x = jax.device_put(randn(np.random.default_rng(7), 50))
    assert F.dropout(x, 0.5, training=False) is x or jnp.array_equal(F.dropout(x, 0.5, training=False), x)
    assert jnp.array_equal(F.dropout(x, 0.0), x)
    assert jnp.array_equal(F.dropout(x, 1.0), jnp.zeros_like(x))
    nan = jnp.full(8, jnp.nan)  # torch multiplies by the mask, so NaN stays NaN even where dropped
    assert jnp.isnan(F.dropout(nan, 1.0)).all() and torch.isnan(TF.dropout(torch.full((8,), math.nan), 1.0)).all()
    assert jnp.isnan(F.dropout(nan, 0.5, key=jax.random.key(0))).all()
    assert F.dropout(jnp.ones(3), 0.5, inplace=True, key=jax.random.key(0)).shape == (3,)


def test_dropout_errors():
    for p in (1.5, -0.1):
        with pytest.raises(ValueError, match=f"dropout probability has to be between 0 and 1, but got {p}"):
            F.dropout(jnp.ones(3), p)
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
            TF.dropout(torch.ones(3), p)
    with pytest.raises(TypeError, match="dropout: expected a floating-point input"):
        F.dropout(jnp.arange(3), 0.5)


def test_dropout_under_jit():
    x = jnp.ones(100)
    with pytest.raises(jnn.random.MissingKeyError, match="dropout needs randomness"):
        jax.jit(lambda a: F.dropout(a, 0.5))(x)
    f = jax.jit(lambda a, k: F.dropout(a, 0.5, key=k))
    assert jnp.array_equal(f(x, jax.random.key(0)), f(x, jax.random.key(0)))
    assert not jnp.array_equal(f(x, jax.random.key(0)), f(x, jax.random.key(1)))

    def forked(a, k):
        with jnn.random.fork(k):
            return F.dropout(a, 0.5)
    g = jax.jit(forked)
    assert jnp.array_equal(g(x, jax.random.key(5)), g(x, jax.random.key(5)))
    assert jnp.array_equal(jax.jit(lambda a: F.dropout(a, 0.5, training=False))(x), x)  # needs no key


def test_dropout_under_vmap_needs_per_example_keys():
    xs, keys = jnp.ones((4, 100)), jax.random.split(jax.random.key(0), 4)
    with pytest.raises(jnn.random.MissingKeyError, match="dropout inside jax.vmap got no per-example key"):
        jax.vmap(lambda a: F.dropout(a, 0.5))(xs)
    with jnn.random.fork(jax.random.key(1)), pytest.raises(jnn.random.MissingKeyError, match="jax.vmap"):
        jax.vmap(lambda a: F.dropout(a, 0.5))(xs)  # one unbatched fork key would also give one shared mask
    y = jax.vmap(lambda a, k: F.dropout(a, 0.5, key=k))(xs, keys)
    assert all(not jnp.array_equal(y[0], y[i]) for i in range(1, 4))

    def forked(a, k):
        with jnn.random.fork(k):
            return F.dropout(a, 0.5)
    z = jax.vmap(forked)(xs, keys)
    assert all(not jnp.array_equal(z[0], z[i]) for i in range(1, 4))
    assert jnp.array_equal(z, jax.vmap(forked)(xs, keys))


# ------------------------------------------------------------------------------------------- batch_norm
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 3)])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_training_matches_torch_inplace_update(shape, affine):
    rng = np.random.default_rng(8)
    x = randn(rng, *shape) * 2 + 1
    rm0, rv0 = randn(rng, 3), rng.uniform(0.5, 2, 3).astype(np.float32)
    wb = [randn(rng, 3), randn(rng, 3)] if affine else []
    for momentum in (0.0, 0.1, 0.5, 1.0):
        rm_t, rv_t = torch.tensor(rm0), torch.tensor(rv0)
        ref = TF.batch_norm(torch.tensor(x), rm_t, rv_t, *map(torch.tensor, wb), training=True, momentum=momentum)
        y, new_rm, new_rv = F.batch_norm_with_stats(x, rm0, rv0, *wb, training=True, momentum=momentum)
        assert_close(y, ref, atol=1e-4)
        assert_close(new_rm, rm_t)
        assert_close(new_rv, rv_t)
        assert not np.array_equal(rm_t.numpy(), rm0) or momentum == 0.0  # torch really did update in place
    compare(lambda a, *wb_: F.batch_norm_with_stats(a, rm0, rv0, *wb_, training=True)[0],
            lambda a, *wb_: TF.batch_norm(a, torch.tensor(rm0), torch.tensor(rv0), *wb_, training=True),
            [x, *wb], rng, atol=1e-4, jit=False)


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 4, 3)])
def test_batch_norm_eval_and_stats_free_training(shape):
    rng = np.random.default_rng(9)
    x, rm, rv, w, b = randn(rng, *shape), randn(rng, 3), rng.uniform(0.5, 2, 3).astype(np.float32), \
        randn(rng, 3), randn(rng, 3)
    compare(lambda a, w_, b_: F.batch_norm(a, rm, rv, w_, b_, eps=1e-3),
            lambda a, w_, b_: TF.batch_norm(a, torch.tensor(rm), torch.tensor(rv), w_, b_, eps=1e-3), [x, w, b], rng,
            jit=False)
    y, m, v = F.batch_norm_with_stats(x, None, None, w, b, training=True)
    assert m is None and v is None
    assert_close(y, TF.batch_norm(torch.tensor(x), None, None, torch.tensor(w), torch.tensor(b), training=True),
                 atol=1e-4)
    y, m, v = F.batch_norm_with_stats(x, rm, rv, training=False)  # eval: statistics untouched
    assert np.array_equal(m, rm) and np.array_equal(v, rv)


def test_batch_norm_warns_that_running_stats_are_not_updated():
    rm, rv = jnp.zeros(3), jnp.ones(3)  # not a module's buffers: they cannot change
    with pytest.warns(UserWarning, match="not buffers just read from a module.*batch_norm_with_stats") as rec:
        F.batch_norm(jnp.ones((4, 3)), rm, rv, training=True)
    assert rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.batch_norm(jnp.ones((4, 3)), rm, rv, training=False)
        F.batch_norm(jnp.ones((4, 3)), None, None, training=True)


def _norm_through_functional(functional, base):
    """A BatchNorm/InstanceNorm subclass whose forward calls the functional with its own buffers, as timm's
    BatchNormAct2d does: torch updates them in place."""

    class Norm(base):
        def forward(self, x):
            if self.training:
                self.num_batches_tracked = self.num_batches_tracked + 1
            if functional.__name__ == "batch_norm":
                return functional(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                                  self.momentum, self.eps)
            return functional(x, self.running_mean, self.running_var, self.weight, self.bias, True,
                              self.momentum, self.eps)

    return Norm


@pytest.mark.parametrize("kind", ["BatchNorm2d", "InstanceNorm2d"])
def test_norm_functionals_update_the_buffers_of_the_calling_module_as_torch(kind):
    kw = {"affine": True, "track_running_stats": True} if kind == "InstanceNorm2d" else {}
    name = "batch_norm" if kind == "BatchNorm2d" else "instance_norm"
    theirs = _norm_through_functional(getattr(TF, name), getattr(torch.nn, kind))(3, **kw)
    ours = _norm_through_functional(getattr(F, name), getattr(jnn, kind))(3, **kw)
    rng = np.random.default_rng(3)
    xs = [randn(rng, 4, 3, 5, 5) * 2 + 1 for _ in range(3)]
    step = jax.jit(lambda m, x: (m(x), m))
    for i, x in enumerate(xs):
        expected = theirs(torch.tensor(x))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the buffers are updated: no "cannot update" warning
            out, ours = step(ours, jnp.asarray(x)) if i == 1 else (ours(jnp.asarray(x)), ours)
        assert_close(out, expected, atol=1e-4)
        for buffer in ("running_mean", "running_var", "num_batches_tracked"):
            assert_close(getattr(ours, buffer), getattr(theirs, buffer), atol=1e-5)
    assert not np.allclose(np.asarray(ours.running_mean), 0)  # they did change


def test_batch_norm_low_precision_input_uses_float32_statistics():
    rng = np.random.default_rng(10)
    x32 = (rng.standard_normal((64, 2, 4)) + 100).astype(np.float32)
    xb = jax.device_put(x32).astype(jnp.bfloat16)
    y, m, v = F.batch_norm_with_stats(xb, jnp.zeros(2), jnp.ones(2), training=True)
    assert y.dtype == jnp.bfloat16 and m.dtype == jnp.float32
    exact = np.asarray(xb.astype(jnp.float32), dtype=np.float64)
    mean, var = exact.mean((0, 2)), exact.var((0, 2), ddof=1)
    np.testing.assert_allclose(m, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(v, 0.9 + 0.1 * var, rtol=1e-4)
    rm_t, rv_t = torch.zeros(2), torch.ones(2)
    ref = TF.batch_norm(torch.tensor(x32).bfloat16(), rm_t, rv_t, training=True)
    assert_close(y.astype(jnp.float32), ref, atol=0.05)
    assert_close(m, rm_t, rtol=1e-4)
    assert_close(v, rv_t, rtol=1e-3)
    assert F.batch_norm(jnp.ones((4, 2), jnp.float16), jnp.zeros(2), jnp.ones(2)).dtype == jnp.float16


def test_batch_norm_empty_batch_like_torch():
    rm_t, rv_t = torch.zeros(3), torch.ones(3)
    ref = TF.batch_norm(torch.zeros(0, 3, 2), rm_t, rv_t, training=True)
    y, m, v = F.batch_norm_with_stats(jnp.zeros((0, 3, 2)), jnp.zeros(3), jnp.ones(3), training=True)
    assert y.shape == tuple(ref.shape) == (0, 3, 2)
    assert_close(m, rm_t)
    assert_close(v, rv_t)


def test_batch_norm_under_jit():
    f = jax.jit(F.batch_norm_with_stats, static_argnames=("training",))
    x = jax.device_put(randn(np.random.default_rng(11), 5, 3))
    y, m, v = f(x, jnp.zeros(3), jnp.ones(3), training=True)
    y2, m2, v2 = F.batch_norm_with_stats(x, jnp.zeros(3), jnp.ones(3), training=True)
    assert_close(y, np.asarray(y2))
    assert_close(v, np.asarray(v2))


def test_batch_norm_errors():
    rm, rv = jnp.zeros(3), jnp.ones(3)
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, got input size "
                                         r"\(1, 3, 1, 1\)"):
        F.batch_norm(jnp.ones((1, 3, 1, 1)), None, None, training=True)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        TF.batch_norm(torch.ones(1, 3), None, None, training=True)
    F.batch_norm(jnp.ones((1, 3, 2)), None, None, training=True)  # one sample, two values: fine in torch too
    with pytest.raises(ValueError, match="running_mean must be defined in evaluation mode"):
        F.batch_norm(jnp.ones((4, 3)), None, None)
    with pytest.raises(ValueError, match="running_mean should contain 3 elements .* not 4"):
        F.batch_norm(jnp.ones((4, 3)), jnp.zeros(4), jnp.ones(4))
    with pytest.raises(ValueError, match="weight should contain 3 elements"):
        F.batch_norm(jnp.ones((4, 3)), rm, rv, weight=jnp.ones(4))
    with pytest.raises(ValueError, match="must either both be None or neither be None"):
        F.batch_norm(jnp.ones((4, 3)), rm, None, training=True)
    with pytest.raises(ValueError, match="batch_norm eps must be positive during training, but got 0"):
        F.batch_norm_with_stats(jnp.ones((4, 3)), rm, rv, training=True, eps=0)
    with pytest.raises(ValueError, match="batch_norm: expected input of shape \\(N, C, \\*\\)"):
        F.batch_norm(jnp.ones(3), rm, rv)


# ------------------------------------------------------------------------------------------- max_pool2d
def _pool_args(data):
    k = data.draw(st.tuples(st.integers(1, 4), st.integers(1, 4)), label="kernel")
    d = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)), label="dilation")
    s = data.draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))), label="stride")
    p = data.draw(st.tuples(st.integers(0, k[0] // 2), st.integers(0, k[1] // 2)), label="padding")
    ceil = data.draw(st.booleans(), label="ceil_mode")
    hw = data.draw(st.tuples(st.integers(1, 9), st.integers(1, 9)), label="hw")
    for i in range(2):
        st_ = (s or k)[i]
        out = (hw[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1 + (st_ - 1 if ceil else 0)) // st_ + 1
        out -= ceil and (out - 1) * st_ >= hw[i] + p[i]
        assume(out >= 1)
        # A window of only padding (possible with dilation) has no torch-defined index: torch reports one
        # outside the plane and scatters its gradient out of bounds, so such windows are not compared.
        assume(all(any(0 <= o * st_ - p[i] + j * d[i] < hw[i] for j in range(k[i])) for o in range(out)))
    return dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil), hw


@FAST
@given(seed=seeds, batch=st.sampled_from([None, 2]), data=st.data())
def test_max_pool2d_values_indices_and_grads(seed, batch, data):
    kw, hw = _pool_args(data)
    rng = np.random.default_rng(seed)
    x = randn(rng, *(() if batch is None else (batch,)), 2, *hw)
    # Besides x, an input with many ties and some NaNs: the first maximum (or the last NaN) wins, as in torch.
    xt = rng.integers(0, 3, x.shape).astype(np.float32)
    xt[rng.random(x.shape) < 0.1] = np.nan
    tx = torch.tensor(x, requires_grad=True)
    ty = TF.max_pool2d(tx, **kw)
    ct = randn(rng, *ty.shape)
    (ty * torch.tensor(ct)).sum().backward()

    @jax.jit  # everything in one compilation per example
    def run(a, b):
        y, vjp = jax.vjp(lambda a_: F.max_pool2d(a_, **kw), a)
        return y, vjp(ct)[0], F.max_pool2d(a, **kw, return_indices=True), F.max_pool2d(b, **kw, return_indices=True)
    y, g, (y2, idx), (yt, idxt) = run(jax.device_put(x), jax.device_put(xt))
    assert_close(y, ty)
    assert_close(g, tx.grad)
    for got, got_idx, inp in ((y2, idx, x), (yt, idxt, xt)):
        ref, ref_idx = TF.max_pool2d(torch.tensor(inp), **kw, return_indices=True)
        assert_close(got, ref)
        np.testing.assert_array_equal(got_idx, ref_idx.numpy())


@pytest.mark.parametrize("dilation", [1, 2])
def test_max_pool2d_gradient_goes_to_first_maximum_on_ties(dilation):
    x = np.random.default_rng(12).integers(0, 2, (1, 2, 7, 7)).astype(np.float32)
    compare(lambda a: F.max_pool2d(a, 3, 1, 1, dilation), lambda a: TF.max_pool2d(a, 3, 1, 1, dilation), [x],
            np.random.default_rng(0), jit=False)


def test_max_pool2d_special_values():
    x = np.full((1, 1, 3, 3), -np.inf, np.float32)  # all -inf: index of the first in-bounds element
    y, idx = F.max_pool2d(jax.device_put(x), 2, padding=1, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.tensor(x), 2, padding=1, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    xi = np.arange(30).reshape(1, 5, 6)  # integers, padded with the smallest integer rather than -inf
    y, idx = F.max_pool2d(jax.device_put(xi), 3, 2, 1, ceil_mode=True, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.tensor(xi), 3, 2, 1, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    assert F.max_pool2d(jnp.zeros((0, 2, 4, 4)), 2).shape == (0, 2, 2, 2)
    assert F.max_pool2d(jnp.zeros((1, 1, 5, 5)), (2,), stride=()).shape == (1, 1, 2, 2)  # torch's defaults


def test_max_pool2d_errors():
    x = jnp.zeros((1, 1, 5, 5))
    with pytest.raises(ValueError, match="pad should be at most half of effective kernel size, but got pad=2, "
                                         "kernel_size=3 and dilation=1"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match="pad should be smaller than or equal to half of kernel size"):
        F.max_pool2d(x, 3, dilation=2, padding=2)
    with pytest.raises(RuntimeError, match="pad should be smaller than or equal to half of kernel size"):
        TF.max_pool2d(torch.zeros(1, 1, 5, 5), 3, dilation=2, padding=2)
    with pytest.raises(ValueError, match="pad must be non-negative"):
        F.max_pool2d(x, 3, padding=-1)
    with pytest.raises(ValueError, match=r"Calculated output size: \(1x0x0\). Output size is too small"):
        F.max_pool2d(x, 7)
    with pytest.raises(ValueError, match="kernel_size, stride and dilation must be positive"):
        F.max_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match="max_pool2d: expected a 3D .* or 4D .* input"):
        F.max_pool2d(jnp.zeros((5, 5)), 2)
    with pytest.raises(ValueError, match="max_pool2d: expected a 3D"):
        F.max_pool2d(jnp.zeros((2, 0, 5, 5)), 2)
    with pytest.raises(ValueError, match="max_pool2d: kernel_size must be a single int or a tuple of 2 ints"):
        F.max_pool2d(x, (2, 2, 2))


# ----------------------------------------------------------------------------------------------- losses
def _class_problem(data, rng):
    """Random (input, int64 target, weight, ignore_index) of any supported rank."""
    c = data.draw(st.integers(1, 5), label="C")
    kind = data.draw(st.sampled_from(["unbatched", "NC", "NCd", "NCdd"]), label="kind")
    spatial = {"unbatched": None, "NC": (), "NCd": (3,), "NCdd": (2, 3)}[kind]
    n = data.draw(st.integers(1, 4), label="N")
    shape = (c,) if spatial is None else (n, c, *spatial)
    tshape = () if spatial is None else (n, *spatial)
    ignore_index = data.draw(st.sampled_from([-100, 0, c - 1, 7]), label="ignore_index")
    target = rng.integers(0, c, tshape)
    if tshape and data.draw(st.booleans(), label="some ignored"):
        target[rng.random(tshape) < 0.3] = ignore_index
    weight = rng.uniform(0.1, 2, c).astype(np.float32) if data.draw(st.booleans(), label="weight") else None
    return randn(rng, *shape) * 2, target, weight, ignore_index


@FAST
@given(seed=seeds, data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]),
       target_dtype=st.sampled_from([np.int32, np.int64]))
def test_nll_loss(seed, data, reduction, target_dtype):
    rng = np.random.default_rng(seed)
    x, target, weight, ii = _class_problem(data, rng)
    jt, tt = jax.device_put(target.astype(target_dtype)), torch.tensor(target)
    jw, tw = (None, None) if weight is None else (jax.device_put(weight), torch.tensor(weight))
    compare(lambda a: F.nll_loss(a, jt, jw, ignore_index=ii, reduction=reduction),
            lambda a: TF.nll_loss(a, tt, tw, ignore_index=ii, reduction=reduction), [x], rng)


@FAST
@given(seed=seeds, data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]),
       label_smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_cross_entropy_class_indices(seed, data, reduction, label_smoothing):
    rng = np.random.default_rng(seed)
    x, target, weight, ii = _class_problem(data, rng)
    jt, tt = jax.device_put(target), torch.tensor(target)
    jw, tw = (None, None) if weight is None else (jax.device_put(weight), torch.tensor(weight))
    kw = dict(ignore_index=ii, reduction=reduction, label_smoothing=label_smoothing)
    compare(lambda a: F.cross_entropy(a, jt, jw, **kw), lambda a: TF.cross_entropy(a, tt, tw, **kw), [x], rng)


@FAST
@given(seed=seeds, data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]),
       label_smoothing=st.sampled_from([0.0, 0.2, 1.0]), normalised=st.booleans())
def test_cross_entropy_class_probabilities(seed, data, reduction, label_smoothing, normalised):
    rng = np.random.default_rng(seed)
    x, _, weight, _ = _class_problem(data, rng)
    target = rng.uniform(0, 1, x.shape).astype(np.float32)
    if normalised:
        target /= target.sum(axis=0 if x.ndim == 1 else 1, keepdims=True)
    jw, tw = (None, None) if weight is None else (jax.device_put(weight), torch.tensor(weight))
    kw = dict(reduction=reduction, label_smoothing=label_smoothing)
    compare(lambda a, t: F.cross_entropy(a, t, jw, **kw), lambda a, t: TF.cross_entropy(a, t, tw, **kw),
            [x, target], rng)


def test_losses_all_ignored_or_empty_give_nan_like_torch():
    x, t = randn(np.random.default_rng(13), 3, 5), np.full(3, -100)
    for fn, tfn in ((F.nll_loss, TF.nll_loss), (F.cross_entropy, TF.cross_entropy)):
        assert np.isnan(fn(jax.device_put(x), jax.device_put(t))) and torch.isnan(tfn(torch.tensor(x), torch.tensor(t)))
        assert fn(jax.device_put(x), jax.device_put(t), reduction="sum") == 0.0
    assert np.isnan(F.cross_entropy(jnp.zeros((0, 5)), jnp.zeros((0, 5))))
    assert np.isnan(F.mse_loss(jnp.zeros(0), jnp.zeros(0)))


@pytest.mark.parametrize(("size_average", "reduce"),
                         [(None, None), (True, None), (None, False), (False, None), (False, True), (True, False)])
def test_legacy_reduction_args(size_average, reduce):
    rng = np.random.default_rng(14)
    x, t, y = randn(rng, 4, 3), rng.integers(0, 3, 4), randn(rng, 4, 3)
    legacy = size_average is not None or reduce is not None
    ctx = pytest.warns(UserWarning, match="size_average and reduce args will be deprecated") if legacy \
        else warnings.catch_warnings()
    kw = dict(size_average=size_average, reduce=reduce)
    with ctx:
        jx, jt = jax.device_put(x), jax.device_put(t)
        got = [F.nll_loss(jx, jt, **kw), F.cross_entropy(jx, jt, **kw), F.mse_loss(jx, jax.device_put(y), **kw)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx, tt = torch.tensor(x), torch.tensor(t)
        ref = [TF.nll_loss(tx, tt, **kw), TF.cross_entropy(tx, tt, **kw), TF.mse_loss(tx, torch.tensor(y), **kw)]
    for g, r in zip(got, ref, strict=True):
        assert g.shape == tuple(r.shape)
        assert_close(g, r)


def test_class_loss_errors():
    x = jnp.zeros((3, 5))
    with pytest.raises(IndexError, match="nll_loss: Target 5 is out of bounds"):
        F.nll_loss(x, jnp.array([1, 2, 5]))
    with pytest.raises(IndexError, match="cross_entropy: Target -1 is out of bounds"):
        F.cross_entropy(x, jnp.array([1, -1, 2]), label_smoothing=0.1)
    bad = jax.jit(F.nll_loss)(x, jnp.array([1, 2, 5]))  # under jit values cannot be checked: NaN, not a number
    assert np.isnan(bad)
    with pytest.raises(TypeError, match="nll_loss: expected an integer class-index target"):
        F.nll_loss(x, jnp.array([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="nll_loss: expected an integer"):
        F.nll_loss(x, jnp.array([True, False, True]))
    with pytest.raises(ValueError, match=r"expected input batch_size \(3\) to match target batch_size \(2\)"):
        F.nll_loss(x, jnp.array([1, 2]))
    with pytest.raises(ValueError, match=r"expected target size \(3, 2\)"):
        F.nll_loss(jnp.zeros((3, 5, 2)), jnp.zeros((3, 3), int))
    with pytest.raises(ValueError, match="for 1D input \\(C,\\), the target must be a single class index"):
        F.nll_loss(jnp.zeros(5), jnp.array([1, 2]))
    with pytest.raises(ValueError, match="weight tensor should be defined either for all 5 classes"):
        F.cross_entropy(x, jnp.array([1, 2, 3]), weight=jnp.ones(4))
    with pytest.raises(ValueError, match="'foo' is not a valid value for reduction"):
        F.nll_loss(x, jnp.array([1, 2, 3]), reduction="foo")
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0. Got: 1.5"):
        F.cross_entropy(x, jnp.array([1, 2, 3]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0. Got: -0.5"):
        F.cross_entropy(x, jnp.array([1, 2, 3]), label_smoothing=-0.5)
    with pytest.raises(ValueError, match="ignore_index is not supported for floating point target"):
        F.cross_entropy(x, jnp.ones((3, 5)), ignore_index=1)
    with pytest.raises(TypeError, match="expected floating point type for target with class probabilities"):
        F.cross_entropy(x, jnp.ones((3, 5), int))
    with pytest.raises(TypeError, match="class probabilities need a target of the same shape as input"):
        F.cross_entropy(x, jnp.ones((3, 4)))
    assert F.nll_loss(jnp.zeros(5), jnp.array([1]), reduction="none").shape == ()  # torch accepts (1,) too
    logp = jax.nn.log_softmax(jnp.arange(15.0).reshape(3, 5) / 7)
    assert F.nll_loss(logp, jnp.array([1, 2, 3], jnp.uint8)) == F.nll_loss(logp, jnp.array([1, 2, 3]))


# ---------------------------------------------------------------------------------------------- mse_loss
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_mse_loss(reduction, weighted):
    rng = np.random.default_rng(15)
    x, y = randn(rng, 4, 3), randn(rng, 4, 3)
    arrays = [x, y] + ([rng.uniform(0, 2, (4, 3)).astype(np.float32)] if weighted else [])
    compare(lambda a, b, *w: F.mse_loss(a, b, reduction=reduction, weight=w[0] if w else None),
            lambda a, b, *w: TF.mse_loss(a, b, reduction=reduction, weight=w[0] if w else None), arrays,
            rng, jit=False)


def test_mse_loss_broadcasting_warns_like_torch():
    rng = np.random.default_rng(16)
    x, y = randn(rng, 3, 1), randn(rng, 3)
    with pytest.warns(UserWarning, match="Using a target size .* that is different to the input size") as rec:
        got = F.mse_loss(jax.device_put(x), jax.device_put(y))
    assert rec[0].filename == __file__
    with pytest.warns(UserWarning, match="Using a target size"):
        ref = TF.mse_loss(torch.tensor(x), torch.tensor(y))
    assert_close(got, ref)


def test_mse_loss_errors():
    with pytest.raises(ValueError, match="mse_loss: weights and input must have the same size"):
        F.mse_loss(jnp.zeros(3), jnp.zeros(3), weight=jnp.ones(1))
    with pytest.raises(ValueError, match="mse_loss: 'foo' is not a valid value for reduction"):
        F.mse_loss(jnp.zeros(3), jnp.zeros(3), reduction="foo")
    with pytest.raises(ValueError, match="cannot be broadcast together"), pytest.warns(UserWarning):
        F.mse_loss(jnp.zeros(3), jnp.zeros(4))


@pytest.mark.parametrize(("name", "args"), [("relu_", ()), ("elu_", (0.5,)), ("celu_", (0.7,)), ("selu_", ()),
                                            ("leaky_relu_", (0.2,)), ("hardtanh_", (-0.5, 0.5)),
                                            ("rrelu_", (0.1, 0.3, False)), ("threshold_", (0.1, 9.0))])
def test_in_place_activations_return_torchs_result(name, args):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    theirs = getattr(torch.nn.functional, name)(torch.from_numpy(x.copy()), *args)
    np.testing.assert_allclose(np.asarray(getattr(F, name)(jnp.asarray(x), *args)), theirs.numpy(), rtol=1e-6)


def test_sdpa_kernel_takes_torchs_backends_and_keeps_the_values():
    # torch.nn.attention's kernel selection (x-transformers' flash path wraps F.scaled_dot_product_attention in it)
    from torch.nn.attention import SDPBackend as TorchBackend
    from torch.nn.attention import sdpa_kernel as torch_kernel

    from jnn.attention import SDPBackend, sdpa_kernel

    assert {k: int(v) for k, v in SDPBackend.__members__.items()} == {
        k: v.value for k, v in TorchBackend.__members__.items()}
    q, k, v = np.random.default_rng(0).standard_normal((3, 2, 2, 5, 8)).astype(np.float32)
    for names in (["MATH"], ["FLASH_ATTENTION", "MATH"]):
        with torch_kernel([getattr(TorchBackend, n) for n in names]):
            expected = TF.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)), is_causal=True)
        with sdpa_kernel([getattr(SDPBackend, n) for n in names], set_priority=True) as state:
            got = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        assert state == {}
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)
    with sdpa_kernel(SDPBackend.MATH):  # one backend alone
        pass
    with pytest.raises(TypeError, match="SDPBackend"), sdpa_kernel("math"):
        pass
