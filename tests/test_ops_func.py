"""``jnn.ops.func`` (torch.func) against torch.func: the same function written once against ``lib`` (torch or
jnn.ops), transformed by each, gives the same values."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jnn
from jnn import ops

RNG = np.random.default_rng(0)


def pair(*shape):
    value = RNG.standard_normal(shape).astype(np.float32)
    return torch.from_numpy(value), jnp.asarray(value)


def same(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs)
        for o, t in zip(ours, theirs, strict=True):
            same(o, t)
        return
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_vmap_as_torch():
    (tx, jx), (ty, jy), (tz, jz) = pair(3, 4), pair(4), pair(4, 3)

    def f(lib, x, y, scale=1.0):  # scale: a keyword, passed whole by torch
        return lib.sum(x * y, 0) * scale + lib.tensor(1.0)

    cases = [({}, (tx, ty.expand(3, 4)), (jx, jnp.broadcast_to(jy, (3, 4)))),  # in_dims=0 for all
             ({"in_dims": (0, None)}, (tx, ty), (jx, jy)),
             ({"in_dims": (1, None), "out_dims": 0}, (tz, ty), (jz, jy)),
             ({"in_dims": (0, None), "chunk_size": 2, "randomness": "same"}, (tx, ty), (jx, jy))]
    for kwargs, theirs_args, ours_args in cases:
        theirs = torch.vmap(lambda x, y, **k: f(torch, x, y, **k), **kwargs)(*theirs_args, scale=2.0)
        ours = ops.vmap(lambda x, y, **k: f(ops, x, y, **k), **kwargs)(*ours_args, scale=2.0)
        same(ours, theirs)
    # nested, with out_dims=1 on the outer map
    theirs = torch.func.vmap(torch.func.vmap(lambda a, b: a * b), in_dims=(0, None), out_dims=1)(tx, ty)
    ours = ops.func.vmap(ops.func.vmap(lambda a, b: a * b), in_dims=(0, None), out_dims=1)(jx, jy)
    same(ours, theirs)
    with pytest.raises(ValueError, match="in_dims has 1 entries for 2 positional arguments"):
        ops.vmap(lambda x, y: x, in_dims=(0,))(jx, jy)
    with pytest.raises(ValueError, match="expected in_dims to be an int or a tuple"):
        ops.vmap(lambda x: x, in_dims=[0])  # torch refuses a list too
    with pytest.raises(ValueError, match="randomness must be one of"):
        ops.vmap(lambda x: x, randomness="sometimes")


def test_grad_family_as_torch():
    (tx, jx), (ty, jy) = pair(3), pair(3)

    def loss(lib, x, y):
        return lib.sum(lib.sin(x) * y**2)

    def with_aux(lib, x, y):
        return loss(lib, x, y), x * 2

    same(ops.func.grad(lambda x, y: loss(ops, x, y))(jx, jy), torch.func.grad(lambda x, y: loss(torch, x, y))(tx, ty))
    same(ops.func.grad(lambda x, y: loss(ops, x, y), argnums=(0, 1))(jx, jy),
         torch.func.grad(lambda x, y: loss(torch, x, y), argnums=(0, 1))(tx, ty))
    same(ops.func.grad(lambda x, y: with_aux(ops, x, y), has_aux=True)(jx, jy),
         torch.func.grad(lambda x, y: with_aux(torch, x, y), has_aux=True)(tx, ty))
    same(ops.func.grad_and_value(lambda x, y: loss(ops, x, y))(jx, jy),
         torch.func.grad_and_value(lambda x, y: loss(torch, x, y))(tx, ty))
    same(ops.func.grad_and_value(lambda x, y: with_aux(ops, x, y), has_aux=True)(jx, jy),
         torch.func.grad_and_value(lambda x, y: with_aux(torch, x, y), has_aux=True)(tx, ty))
    for name in ("jacrev", "jacfwd"):
        same(getattr(ops.func, name)(lambda x: ops.sin(x) * x)(jx),
             getattr(torch.func, name)(lambda x: torch.sin(x) * x)(tx))
    same(ops.func.hessian(lambda x: loss(ops, x, jy))(jx), torch.func.hessian(lambda x: loss(torch, x, ty))(tx))
    out, vjp_fn = ops.func.vjp(lambda x: ops.sin(x) * 3, jx)
    t_out, t_vjp_fn = torch.func.vjp(lambda x: torch.sin(x) * 3, tx)
    same(out, t_out)
    same(vjp_fn(jy), t_vjp_fn(ty))
    same(ops.func.jvp(lambda x: ops.sin(x) * 3, (jx,), (jy,)), torch.func.jvp(lambda x: torch.sin(x) * 3, (tx,), (ty,)))


def test_functional_call_takes_a_tuple_of_dicts_as_torch():
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).eval()
    model = jnn.Sequential(jnn.Linear(3, 4), jnn.BatchNorm1d(4)).eval()
    model.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    (tx, jx) = pair(2, 3)
    params = {k: v * 2 for k, v in reference.named_parameters()}
    buffers = {k: v + 1 for k, v in reference.named_buffers()}
    theirs = torch.func.functional_call(reference, (params, buffers), (tx,))
    ours = ops.func.functional_call(model, ({k: jnp.asarray(v.detach().numpy()) for k, v in params.items()},
                                            {k: jnp.asarray(v.numpy()) for k, v in buffers.items()}), (jx,))
    same(ours, theirs)
    with pytest.raises(ValueError, match=r"\['0.bias'\] appeared in more than one of the dicts"):
        ops.func.functional_call(model, ({"0.bias": jnp.zeros(4)}, {"0.bias": jnp.zeros(4)}), (jx,))
