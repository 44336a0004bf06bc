"""LinearCrossEntropyLoss and F.linear_cross_entropy against torch 2.13, on torch's own module test inputs
(``module_inputs_torch_nn_LinearCrossEntropyLoss``, 857 samples: outputs and gradients; every eighth by default,
all of them in the test marked ``slow``, which CI runs and ``-m "not slow"`` skips locally) and error inputs, plus
repr, state_dict both ways, options, jit/split and the chunked path with several chunks."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, torch_state

import jnn
import jnn.functional as F

pytest.importorskip("expecttest")  # torch.testing._internal needs it
from torch.testing._internal import common_modules  # noqa: E402

TOL = {"rtol": 2e-5, "atol": 2e-5}
DEFAULT = jnn.LinearCrossEntropyOptions()


def torch_samples(kind: str):
    info = next(m for m in common_modules.module_db if m.module_cls is torch.nn.LinearCrossEntropyLoss)
    fn = info.module_inputs_func if kind == "inputs" else info.module_error_inputs_func
    torch.manual_seed(0)
    return fn(info, device="cpu", dtype=torch.float32, requires_grad=True, training=True)


def jnn_kwargs(kwargs: dict) -> dict:
    out = {k: v for k, v in kwargs.items() if k not in ("device", "dtype")}
    if out.get("weight") is not None:
        out["weight"] = jnp.asarray(out["weight"].numpy())
    if out.get("options") is not None:
        out["options"] = jnn.LinearCrossEntropyOptions(**{f.name: getattr(out["options"], f.name)
                                                           for f in dataclasses.fields(out["options"])})
    return out


@functools.partial(jax.jit, static_argnames=("reduction", "options", "shape"))
def forward_backward(x, w, b, target, weight, ignore_index, label_smoothing, cotangent, *, reduction, options, shape):
    """The module's forward (its weight reshaped to ``shape``) and the gradients of ``sum(out * cotangent)``; the
    hyperparameters that torch's samples vary most are traced, so that compiles are shared between samples."""

    def loss(x, w, b):
        out = F.linear_cross_entropy(x, w.reshape(*shape, -1), target,
                                     linear_bias=None if b is None else b.reshape(shape), weight=weight,
                                     reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing,
                                     options=options)
        return (out * cotangent).sum(), out

    (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(x, w, b)
    return out, grads


def test_torch_module_inputs_outputs_and_gradients_every_eighth():
    check_torch_samples(8)


@pytest.mark.slow
def test_torch_module_inputs_outputs_and_gradients_all():
    check_torch_samples(1)


def check_torch_samples(every: int) -> None:
    samples = torch_samples("inputs")
    assert len(samples) == 857
    rng = np.random.default_rng(0)
    for i, sample in enumerate(samples):
        if i % every:
            continue
        args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
        x, target = sample.forward_input.args
        theirs = torch.nn.LinearCrossEntropyLoss(*args, **kwargs)
        ours = jnn.LinearCrossEntropyLoss(*args, **jnn_kwargs(kwargs))
        result = ours.load_state_dict(torch_state(theirs))
        assert not result.missing_keys and not result.unexpected_keys
        out_t = theirs(x, target)
        cot = rng.standard_normal(tuple(out_t.shape)).astype(np.float32)
        (out_t * torch.from_numpy(cot)).sum().backward()
        jx, jt = jnp.asarray(x.detach().numpy()), jnp.asarray(target.numpy())
        # fewer compiles: the options as the vocabulary chunk they resolve to, no weight as ones, None as -100
        n, d, c = (x.shape[0] if x.ndim == 2 else 1), x.shape[-1], ours.num_classes
        size = (ours.options or DEFAULT)._vocab_chunk(n, d, c, n * math.prod(ours.out_features))
        probabilities = target.is_floating_point()
        out, (gx, gw, gb) = forward_backward(
            jx, ours.linear.weight, ours.linear.bias, jt, jnp.ones(c) if ours.weight is None else ours.weight,
            None if probabilities else jnp.int32(-100 if ours.ignore_index is None else ours.ignore_index),
            jnp.float32(ours.label_smoothing), jnp.asarray(cot), reduction=ours.reduction,
            options=jnn.LinearCrossEntropyOptions(vocab_chunk_size=size), shape=(c, *ours.out_features))
        where = f"sample {i}: {args} {kwargs} input {tuple(x.shape)} target {tuple(target.shape)} {target.dtype}"
        assert out.shape == tuple(out_t.shape), where
        try:
            assert_close(out, out_t, **TOL)
            if i % 16 == 0:  # the module itself, eagerly, on a deterministic sixteenth of the samples
                assert_close(ours(jx, jt), out_t, **TOL)
            assert_close(gx, x.grad, **TOL)
            assert_close(gw, theirs.linear.weight.grad, **TOL)
            if theirs.linear.bias is not None:
                assert_close(gb, theirs.linear.bias.grad, **TOL)
        except AssertionError as error:
            raise AssertionError(where) from error


def test_torch_module_error_inputs():
    for sample in torch_samples("errors"):
        inp = sample.module_error_input
        args, kwargs = inp.constructor_input.args, inp.constructor_input.kwargs
        kwargs = {k: (jnp.asarray(v.numpy()) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()
                  if k not in ("device", "dtype")}
        with pytest.raises((RuntimeError, ValueError, TypeError), match=sample.error_regex):
            module = jnn.LinearCrossEntropyLoss(*args, **kwargs)
            module(*(jnp.asarray(a.detach().numpy()) for a in inp.forward_input.args))


def test_repr_state_dict_and_loading_both_ways():
    w = torch.rand(7)
    for kwargs in ({}, {"bias": True, "out_features": (2, 3)}, {"weight": w, "ignore_index": 3, "reduction": "sum"},
                   {"label_smoothing": 0.2, "options": "batch"}):
        t_kwargs = dict(kwargs)
        if t_kwargs.get("options") == "batch":
            t_kwargs["options"] = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2)
        torch.manual_seed(0)
        theirs = torch.nn.LinearCrossEntropyLoss(5, 7, **t_kwargs)
        ours = jnn.LinearCrossEntropyLoss(5, 7, **jnn_kwargs(t_kwargs))
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict(torch_state(theirs))
        again = torch.nn.LinearCrossEntropyLoss(5, 7, **t_kwargs)
        again.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ours.state_dict().items()}, strict=True)
        for k, v in again.state_dict().items():
            assert_close(ours.state_dict()[k], v)


@pytest.mark.parametrize("options", [
    None, jnn.LinearCrossEntropyOptions(vocab_chunk_size=7), jnn.LinearCrossEntropyOptions(batch_chunk_size=3),
])
@pytest.mark.parametrize("case", ["plain", "kdim", "probs"])
def test_functional_many_chunks_matches_torch(options, case):
    # 50 classes in chunks of 7 (a last chunk overlapping the previous one), or what torch's options imply
    rng = np.random.default_rng(0)
    n, d, c = 12, 6, 50
    out = (2, 3) if case == "kdim" else ()
    x = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal((c, *out, d)).astype(np.float32)
    b = rng.standard_normal((c, *out)).astype(np.float32)
    weight = rng.random(c).astype(np.float32) + 0.5
    if case == "probs":
        target = rng.random((n, c, *out)).astype(np.float32)
        extra = {}
    else:
        target = rng.integers(0, c, (n, *out))
        target[0] = 4
        extra = {"ignore_index": 4}
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    for reduction, ls in (("mean", 0.0), ("sum", 0.3), ("none", 0.3)):
        kw = dict(weight=torch.from_numpy(weight), reduction=reduction, label_smoothing=ls, **extra)
        want = torch.nn.functional.linear_cross_entropy(tx, tw, torch.from_numpy(target), linear_bias=tb, **kw)
        cot = rng.standard_normal(tuple(want.shape)).astype(np.float32)
        grads = torch.autograd.grad((want * torch.from_numpy(cot)).sum(), (tx, tw, tb))
        kw["weight"] = jnp.asarray(weight)

        def f(x, w, b, kw=kw, cot=cot):
            out = F.linear_cross_entropy(x, w, jnp.asarray(target), linear_bias=b, options=options, **kw)
            return (out * cot).sum(), out

        (_, got), got_grads = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))(
            jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
        assert_close(got, want, rtol=1e-5, atol=1e-5)
        for a, e in zip(got_grads, grads, strict=True):
            assert_close(a, e, rtol=1e-4, atol=1e-5)
    if options is not None and options.batch_chunk_size == 3:  # torch's 3 rows x 50 classes: chunks of 13 classes
        assert options._vocab_chunk(n, d, c, n) == 13


def test_gradient_of_probability_targets_matches_torch():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((9, 3)).astype(np.float32)
    p = rng.random((4, 9)).astype(np.float32)
    tp = torch.from_numpy(p).requires_grad_()
    torch.nn.functional.linear_cross_entropy(torch.from_numpy(x), torch.from_numpy(w), tp,
                                             label_smoothing=0.1).backward()
    g = jax.grad(lambda t: F.linear_cross_entropy(jnp.asarray(x), jnp.asarray(w), t,
                                                  label_smoothing=0.1))(jnp.asarray(p))
    assert_close(g, tp.grad)


def test_split_and_unbatched_and_errors():
    torch.manual_seed(0)
    theirs = torch.nn.LinearCrossEntropyLoss(4, 6, bias=True, label_smoothing=0.1)
    ours = jnn.LinearCrossEntropyLoss(4, 6, bias=True, label_smoothing=0.1)
    ours.load_state_dict(torch_state(theirs))
    x = torch.randn(4, requires_grad=True)  # unbatched
    t = torch.tensor(2)
    theirs(x, t).backward()
    apply, params, buffers = jnn.split(ours)
    value, grads = jax.value_and_grad(lambda p: apply(p, buffers, jnp.asarray(x.detach().numpy()),
                                                      jnp.asarray(t.numpy()))[0])(params)
    assert_close(value, theirs(x, t))
    assert_close(grads["linear.weight"], theirs.linear.weight.grad)
    assert_close(grads["linear.bias"], theirs.linear.bias.grad)
    with pytest.raises(IndexError, match="Target 6 is out of bounds"):
        ours(jnp.ones((2, 4)), jnp.array([1, 6]))
    assert np.isnan(float(jax.jit(lambda m, t: m(jnp.ones((2, 4)), t))(ours, jnp.array([1, 6]))))  # under jit: NaN
    with pytest.raises(RuntimeError, match="ignore_index cannot be specified when target contains probabilities"):
        F.linear_cross_entropy(jnp.ones((2, 4)), jnp.ones((6, 4)), jnp.ones((2, 6)), ignore_index=1)
    with pytest.raises(RuntimeError, match="requires batched input"):
        F.linear_cross_entropy(jnp.ones(4), jnp.ones((6, 2, 4)), jnp.array(1))
    with pytest.raises(ValueError, match="invalid chunking_method"):
        jnn.LinearCrossEntropyOptions(chunking_method="rows")
    with pytest.raises(ValueError, match="batch_chunk_size must be positive int or None"):
        jnn.LinearCrossEntropyOptions(batch_chunk_size=0)


def test_peak_memory_stays_far_below_the_logits():
    # XLA's compiled memory analysis (deterministic, no timing): forward + backward at a 50k vocabulary
    tokens, features, vocab = 512, 64, 50257
    x = jax.ShapeDtypeStruct((tokens, features), jnp.float32)
    w = jax.ShapeDtypeStruct((vocab, features), jnp.float32)
    t = jax.ShapeDtypeStruct((tokens,), jnp.int32)
    logits = tokens * vocab * 4

    def temp(loss):
        step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        return step.lower(x, w, t).compile().memory_analysis().temp_size_in_bytes

    plain = temp(lambda x, w, t: F.cross_entropy(F.linear(x, w), t))
    chunked = temp(lambda x, w, t: F.linear_cross_entropy(x, w, t))
    assert plain >= logits
    assert chunked < logits / 4, (chunked, logits)
