"""Training steps (forward + backward + Adam) for each framework, written as each framework documents them.

Every builder returns a :class:`~benchmarks.harness.Case` whose ``step()`` runs one step and blocks on the loss.
The model's math is the workload's; the loop is the framework's own idiom.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jnn
from benchmarks.harness import EQX, HAND, NNX, PYTREE, SPLIT, TORCH, TORCH_COMPILE, Case

LEARNING_RATE = 1e-3


def adam() -> optax.GradientTransformation:
    return optax.adam(LEARNING_RATE)  # b1 0.9, b2 0.999, eps 1e-8: torch.optim.Adam's defaults


def mse(out: jax.Array, y: jax.Array) -> jax.Array:
    return ((out - y) ** 2).mean()


def cross_entropy(out: jax.Array, y: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()


LOSSES = {"mse": mse, "xent": cross_entropy}


def _runner(step: Callable, state: list, *data: Any) -> Callable[[], Any]:
    """A closure that feeds ``state`` through ``step`` and blocks on the loss (the last output)."""

    def run() -> Any:
        *new_state, loss = step(*state, *data)
        state[:] = new_state
        return jax.block_until_ready(loss)

    return run


def hand_case(forward: Callable, params: dict, buffers: dict, data: tuple, loss: str) -> Case:
    """Hand-written JAX: ``forward(params, buffers, x) -> (out, new_buffers)`` over dicts of arrays."""
    tx, loss_fn = adam(), LOSSES[loss]
    params = {k: jnp.array(v) for k, v in params.items()}  # own copies: nothing shared with the other rows

    @jax.jit
    def step(p, s, b, x, y):
        def f(p):
            out, nb = forward(p, b, x)
            return loss_fn(out, y), nb

        (value, b), g = jax.value_and_grad(f, has_aux=True)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, b, value

    return Case(HAND, _runner(step, [params, tx.init(params), dict(buffers)], *data))


def split_case(net: jnn.Module, data: tuple, loss: str) -> Case:
    """jnn's split path: ``apply, params, buffers = jnn.split(net)`` inside a jitted step."""
    tx, loss_fn = adam(), LOSSES[loss]
    apply, params, buffers = jnn.split(net)

    @jax.jit
    def step(p, s, b, x, y):
        def f(p):
            out, nb = apply(p, b, x)
            return loss_fn(out, y), nb

        (value, b), g = jax.value_and_grad(f, has_aux=True)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, b, value

    return Case(SPLIT, _runner(step, [params, tx.init(params), buffers], *data))


def pytree_case(net: jnn.Module, data: tuple, loss: str) -> Case:
    """jnn's module-as-pytree path: ``jax.jit(step)(net, opt_state, x, y)``, gradients over the module itself.

    Without buffers, Adam runs over the whole module. With buffers (BatchNorm), gradients are taken with
    ``allow_int=True`` and Adam runs under ``optax.masked`` on the trainable leaves; the buffers come from the
    module that forward returned.
    """
    loss_fn = LOSSES[loss]
    trainable = set(jnn.split(net)[1])
    if len(trainable) == len(jax.tree_util.tree_leaves(net)):
        tx = adam()

        @jax.jit
        def step(m, s, x, y):
            value, g = jax.value_and_grad(lambda m: loss_fn(m(x), y))(m)
            u, s = tx.update(g, s, m)
            return optax.apply_updates(m, u), s, value

        return Case(PYTREE, _runner(step, [net, tx.init(net)], *data))

    mask = jax.tree_util.tree_map_with_path(lambda path, _: path[0].name in trainable, net)
    tx = optax.masked(adam(), mask)

    @jax.jit
    def masked_step(m, s, x, y):
        def f(m):
            out = m(x)  # training-mode BatchNorm updates this copy's buffers
            return loss_fn(out, y), m

        (value, after), g = jax.value_and_grad(f, has_aux=True, allow_int=True)(m)
        u, s = tx.update(g, s, m)
        new = jax.tree_util.tree_map(lambda keep, p, u, b: p + u if keep else b, mask, m, u, after)
        return new, s, value

    return Case(PYTREE, _runner(masked_step, [net, tx.init(net)], *data), "masked Adam, allow_int grads")


def nnx_case(model: Any, data: tuple, loss: str) -> Case:
    """Flax NNX's documented loop: ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` and an ``nnx.jit`` step."""
    from flax import nnx

    loss_fn = LOSSES[loss]
    optimizer = nnx.Optimizer(model, adam(), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        value, grads = nnx.value_and_grad(lambda m: loss_fn(m(x), y))(model)
        optimizer.update(model, grads)
        return value

    x, y = data
    return Case(NNX, lambda: jax.block_until_ready(step(model, optimizer, x, y)))


def eqx_case(model: Any, state: Any, data: tuple, loss: str) -> Case:
    """Equinox's documented loop: ``eqx.filter_jit`` + ``eqx.filter_value_and_grad`` + optax.

    ``model(x, state) -> (out, state)`` takes the whole batch (the workload vmaps inside if it needs to);
    ``state`` is an ``eqx.nn.State`` (BatchNorm) or None.
    """
    import equinox as eqx

    tx, loss_fn = adam(), LOSSES[loss]

    @eqx.filter_jit
    def step(model, opt_state, state, x, y):
        def f(model):
            out, new_state = model(x, state)
            return loss_fn(out, y), new_state

        (value, state), grads = eqx.filter_value_and_grad(f, has_aux=True)(model)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, state, value

    opt_state = tx.init(eqx.filter(model, eqx.is_array))
    return Case(EQX, _runner(step, [model, opt_state, state], *data))


def torch_case(model: Any, data: tuple, loss: str, compiled: bool = False, device: str = "cpu") -> Case:
    """PyTorch: ``zero_grad(); loss.backward(); opt.step()``; with ``compiled``, the model and ``opt.step`` go
    through ``torch.compile`` (the compiled-optimizer recipe)."""
    import torch
    import torch.nn.functional as TF

    model = model.to(device).train()
    x, y = (torch.tensor(np.array(a)).to(device) for a in data)
    if loss != "mse":
        y = y.long()  # torch's cross_entropy wants int64 class indices
    loss_fn = TF.mse_loss if loss == "mse" else TF.cross_entropy
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    forward = torch.compile(model) if compiled else model
    update = torch.compile(opt.step) if compiled else opt.step
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def run() -> Any:
        opt.zero_grad(set_to_none=True)
        value = loss_fn(forward(x), y)
        value.backward()
        update()
        sync()
        return value

    return Case(TORCH_COMPILE if compiled else TORCH, run)


def torch_threads_note() -> str:
    import torch

    return f"torch threads {torch.get_num_threads()}"
