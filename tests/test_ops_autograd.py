"""jnn.ops.autograd.Function (a jax.custom_vjp) against torch.autograd.Function: the same class bodies, written
once over either library, give the same outputs and the same (hand-written, deliberately non-true) gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jnn import ops

RNG = np.random.default_rng(0)


def classes(lib):
    """autograd.Functions in the styles model code uses, over ``lib`` (torch or jnn.ops)."""
    Function = lib.autograd.Function  # noqa: N806

    class GradMultiply(Function):  # fairseq / torchaudio: identity forward, scaled gradient
        @staticmethod
        def forward(ctx, x, scale):
            ctx.scale = scale
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.scale, None

    class Swish(Function):  # memory-saving activation: saves the input, recomputes in backward
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * lib.sigmoid(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            s = lib.sigmoid(x)
            return grad * (s * (1 + x * (1 - s)))

    class StraightThroughRound(Function):  # gradient passed through a step, clipped to |x| <= 1
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return lib.round(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * (lib.abs(x) <= 1)

    class ScaleAndShift(Function):  # torch 2 style: forward without ctx, setup_context, two outputs
        @staticmethod
        def forward(x, w, shift):
            return x * w + shift, x - w

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, w, _ = inputs
            ctx.save_for_backward(x, w)
            ctx.flags = ctx.needs_input_grad

        @staticmethod
        def backward(ctx, g_out, g_diff):
            x, w = ctx.saved_tensors
            assert ctx.flags == (True, True, False)
            return 2 * g_out * w + g_diff, (g_out * x - g_diff).sum(0), None  # w broadcast: summed by the caller

    class HalfBroadcastGrad(Function):  # backward returns a gradient of a broadcast shape: summed to the input's
        @staticmethod
        def forward(ctx, bias, x):
            return x + bias

        @staticmethod
        def backward(ctx, grad):
            return 0.5 * grad, grad

    return GradMultiply, Swish, StraightThroughRound, ScaleAndShift, HalfBroadcastGrad


TORCH, JNN = classes(torch), classes(ops)


def _grads_torch(fn, arrays, constants):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors, *constants)
    outs = out if isinstance(out, tuple) else (out,)
    loss = sum(((o * (i + 1)) ** 2).sum() for i, o in enumerate(outs))
    return [o.detach().numpy() for o in outs], [g.numpy() for g in torch.autograd.grad(loss, tensors)]


def _grads_jnn(fn, arrays, constants, jit):
    def loss(arrays):
        out = fn(*arrays, *constants)
        outs = out if isinstance(out, tuple) else (out,)
        return sum(((o * (i + 1)) ** 2).sum() for i, o in enumerate(outs)), outs

    run = jax.value_and_grad(loss, has_aux=True)
    (_, outs), grads = (jax.jit(run) if jit else run)([jnp.asarray(a) for a in arrays])
    return [np.asarray(o) for o in outs], [np.asarray(g) for g in grads]


CASES = [
    (0, [(3, 4)], (0.1,)),
    (1, [(5,)], ()),
    (2, [(2, 3)], ()),
    (3, [(4, 3), (3,)], (0.5,)),
    (4, [(1, 3), (2, 3)], ()),
]


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(("which", "shapes", "constants"), CASES)
def test_function_outputs_and_gradients_match_torch(which, shapes, constants, jit):
    arrays = [RNG.standard_normal(s).astype(np.float32) * 1.5 for s in shapes]
    theirs, their_grads = _grads_torch(TORCH[which].apply, arrays, constants)
    ours, our_grads = _grads_jnn(JNN[which].apply, arrays, constants, jit)
    for a, b in zip([*ours, *our_grads], [*theirs, *their_grads], strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_eager_apply_and_vmap_run_forward():
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    swish = JNN[1].apply
    expected = TORCH[1].apply(torch.tensor(x)).numpy()
    np.testing.assert_allclose(swish(jnp.asarray(x)), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(swish)(jnp.asarray(x)), expected, rtol=1e-6)
    per_row = jax.vmap(jax.grad(lambda r: swish(r).sum()))(jnp.asarray(x))
    tx = torch.tensor(x, requires_grad=True)
    TORCH[1].apply(tx).sum().backward()
    np.testing.assert_allclose(per_row, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_integer_inputs_and_constants_get_no_gradient():
    class Lookup(ops.autograd.Function):
        @staticmethod
        def forward(ctx, table, index, scale):
            ctx.save_for_backward(index)
            ctx.rows = table.shape[0]
            return table[index] * scale

        @staticmethod
        def backward(ctx, grad):
            (index,) = ctx.saved_tensors
            assert ctx.needs_input_grad == (True, False, False)
            return jnp.zeros((ctx.rows, grad.shape[-1])).at[index].add(grad), None, None

    table, index = jnp.arange(12.0).reshape(4, 3), jnp.array([2, 0, 2])
    grad = jax.jit(jax.grad(lambda t: Lookup.apply(t, index, 2.0).sum()))(table)
    np.testing.assert_array_equal(grad, [[1, 1, 1], [0, 0, 0], [2, 2, 2], [0, 0, 0]])


def test_backward_mistakes_raise_torch_errors():
    class TooFew(ops.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return grad

    class WrongShape(ops.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return jnp.ones((5,))

    x = jnp.ones((2, 3))
    with pytest.raises(RuntimeError, match=r"TooFewBackward returned an incorrect number of gradients \(expected 2, "
                                           r"got 1\)"):
        jax.grad(lambda x: TooFew.apply(x, x).sum())(x)
    with pytest.raises(RuntimeError, match=r"invalid gradient at index 0 - got \[5\] but expected shape compatible "
                                           r"with \[2, 3\]"):
        jax.grad(lambda x: WrongShape.apply(x).sum())(x)
    with pytest.raises(RuntimeError, match=r"TooFew\.apply"):
        TooFew()


def test_vjp_is_backwards_other_name():
    def make(base):
        class Cube(base):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def vjp(ctx, grad):
                (x,) = ctx.saved_tensors
                return grad * 3 * x ** 2 + 1  # +1: not the true derivative, so the override is what ran

        return Cube

    x = np.array([0.5, -1.0, 2.0], np.float32)
    tx = torch.tensor(x, requires_grad=True)
    make(torch.autograd.Function).apply(tx).sum().backward()
    np.testing.assert_allclose(jax.grad(lambda v: make(ops.autograd.Function).apply(v).sum())(jnp.asarray(x)),
                               tx.grad.numpy(), rtol=1e-6)

    class Both(ops.autograd.Function):
        forward = staticmethod(lambda ctx, x: x)
        backward = staticmethod(lambda ctx, g: g)
        vjp = staticmethod(lambda ctx, g: g)

    with pytest.raises(RuntimeError, match="Implementing both 'backward' and 'vjp'"):
        jax.grad(lambda v: Both.apply(v).sum())(jnp.ones(2))


def test_the_port_writes_ops_autograd():
    from jnn.port import port_source

    ported = port_source("import torch\nclass F(torch.autograd.Function):\n    pass\n"
                         "from torch.autograd.function import once_differentiable\n")
    assert "ops.autograd.Function" in ported and "missing" not in ported
    assert "from jnn.ops.autograd.function import once_differentiable" in ported
