"""``torch.autograd.function``: :class:`Function` (a ``jax.custom_vjp``), its ``ctx`` and ``once_differentiable``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Function", "FunctionCtx", "once_differentiable", "InplaceFunction", "NestedIOFunction"]


def _is_array(value: Any) -> bool:
    return isinstance(value, (jax.Array, np.ndarray))


class FunctionCtx:
    """``ctx`` of a :class:`Function`: what ``forward`` (or ``setup_context``) stores, ``backward`` reads.

    Its arrays (``save_for_backward``'s and any attribute holding arrays) are the custom_vjp's residuals; other
    attribute values are carried as they are.
    """

    needs_input_grad: tuple[bool, ...] = ()

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved_tensors = tensors

    @property
    def saved_variables(self) -> tuple:  # torch's deprecated name
        return self.saved_tensors

    def mark_non_differentiable(self, *args: Any) -> None:
        """Nothing to record: an output's gradient is whatever ``backward`` is given (zeros when unused)."""

    def mark_dirty(self, *args: Any) -> None:
        """Nothing to record: JAX arrays are never modified in place."""

    def set_materialize_grads(self, value: bool) -> None:
        """Nothing to switch: JAX always gives ``backward`` arrays (zeros for unused outputs), never None."""


def _flatten_ctx(ctx: FunctionCtx) -> tuple[list, tuple]:
    leaves, tree = jax.tree_util.tree_flatten(dict(vars(ctx)))
    arrays = [leaf for leaf in leaves if _is_array(leaf)]
    others = tuple((i, leaf) for i, leaf in enumerate(leaves) if not _is_array(leaf))
    return arrays, (tree, len(leaves), others)


def _unflatten_ctx(aux: tuple, arrays: list) -> FunctionCtx:
    tree, count, others = aux
    kept, remaining = dict(others), iter(arrays)
    ctx = object.__new__(FunctionCtx)
    vars(ctx).update(jax.tree_util.tree_unflatten(tree, [kept[i] if i in kept else next(remaining)
                                                         for i in range(count)]))
    return ctx


jax.tree_util.register_pytree_node(FunctionCtx, _flatten_ctx, _unflatten_ctx)


class Function:
    """torch.autograd.Function: subclass with static ``forward`` and ``backward``, call with ``apply``.

    ``forward(ctx, *args)`` (or ``forward(*args)`` with a ``setup_context(ctx, inputs, output)``) returns an array
    or a tuple of arrays; ``backward(ctx, *grad_outputs)`` returns one gradient per argument of ``apply``
    (``None`` for constants or for no gradient). Gradients of a broadcast shape are summed to the input's shape.
    """

    @staticmethod
    def forward(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple, output: Any) -> Any:
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"{type(self).__name__}: autograd.Function is not instantiated; call "
                           f"{type(self).__name__}.apply(...) (torch's legacy instance-call style is gone there too)")

    @classmethod
    def _run_forward(cls, ctx: FunctionCtx, args: list) -> Any:
        if cls.setup_context is not Function.setup_context:  # torch 2's style: forward without ctx
            output = cls.forward(*args)
            cls.setup_context(ctx, tuple(args), output)
            return output
        return cls.forward(ctx, *args)

    @classmethod
    def _user_backward(cls) -> Any:
        """The subclass's ``backward``, or its ``vjp`` (torch's other name for it); never both."""
        backward, vjp = cls.backward, cls.vjp
        if backward is not Function.backward and vjp is not Function.vjp:
            raise RuntimeError("Implementing both 'backward' and 'vjp' for a custom Function is not allowed. You "
                               "should only implement one of them.")
        return vjp if vjp is not Function.vjp else backward

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        positions = [i for i, a in enumerate(args) if _is_array(a)]
        specs = [(jnp.shape(args[i]), jnp.result_type(args[i])) for i in positions]
        needs_grad = tuple(_is_array(a) and jnp.issubdtype(jnp.result_type(a), jnp.inexact) for a in args)

        def filled(arrays: tuple) -> list:
            full = list(args)
            for i, a in zip(positions, arrays, strict=True):
                full[i] = a
            return full

        def context() -> FunctionCtx:
            ctx = FunctionCtx()
            ctx.needs_input_grad = needs_grad
            return ctx

        @jax.custom_vjp
        def run(*arrays: Any) -> Any:
            return cls._run_forward(context(), filled(arrays))

        def forward(*arrays: Any) -> tuple[Any, tuple]:
            ctx = context()
            output = cls._run_forward(ctx, filled(arrays))
            return output, (ctx, isinstance(output, (tuple, list)))

        user_backward = cls._user_backward()

        def backward(residual: tuple, cotangent: Any) -> tuple:
            ctx, several = residual
            grads = user_backward(ctx, *cotangent) if several else user_backward(ctx, cotangent)
            grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
            if len(grads) < len(args) or any(g is not None for g in grads[len(args):]):
                raise RuntimeError(f"function {cls.__name__}Backward returned an incorrect number of gradients "
                                   f"(expected {len(args)}, got {len(grads)})")
            return tuple(_gradient(cls, i, grads[i], shape, dtype) for i, (shape, dtype) in zip(positions, specs,
                                                                                                   strict=True))

        run.defvjp(forward, backward)
        return run(*(args[i] for i in positions))


def _gradient(cls: type, index: int, grad: Any, shape: tuple, dtype: Any) -> Any:
    """``backward``'s gradient for input ``index`` as JAX needs it: zeros for None, float0 for integer inputs,
    summed over broadcast dimensions, in the input's dtype."""
    if not jnp.issubdtype(dtype, jnp.inexact):
        return np.zeros(shape, jax.dtypes.float0)
    if grad is None:
        return jnp.zeros(shape, dtype)
    grad = jnp.asarray(grad)
    if grad.shape != shape:
        try:
            expandable = np.broadcast_shapes(shape, grad.shape) == grad.shape
        except ValueError:
            expandable = False
        if not expandable:
            raise RuntimeError(f"Function {cls.__name__}Backward returned an invalid gradient at index {index} - "
                               f"got {list(grad.shape)} but expected shape compatible with {list(shape)}")
        lead = grad.ndim - len(shape)
        summed = [*range(lead), *(lead + i for i, n in enumerate(shape) if n != grad.shape[lead + i])]
        grad = grad.sum(axis=tuple(summed)).reshape(shape)
    return grad.astype(dtype)


class InplaceFunction(Function):
    """torch's ``InplaceFunction``: a :class:`Function` taking an ``inplace`` flag (JAX never writes in place)."""


class NestedIOFunction(Function):
    """torch's legacy ``NestedIOFunction`` name, a :class:`Function`."""


def once_differentiable(fn: Callable) -> Callable:
    """torch's marker that ``backward`` itself is not differentiated again; JAX needs no marker."""
    return fn
