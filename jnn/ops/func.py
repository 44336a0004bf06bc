"""``torch.func`` over JAX's transformations, with torch's signatures: ``vmap`` (also ``torch.vmap``), ``grad``,
``grad_and_value``, ``vjp``, ``jvp``, ``jacrev``, ``jacfwd``, ``hessian`` and ``functional_call``.

>>> import jax.numpy as jnp
>>> vmap(lambda x, y: x * y, in_dims=(0, None))(jnp.arange(3.0), 2.0).tolist()
[0.0, 2.0, 4.0]
>>> gradient, value = grad_and_value(lambda x: (x**2).sum())(jnp.array([1.0, 2.0]))
>>> gradient.tolist(), float(value)
([2.0, 4.0], 5.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

__all__ = ["vmap", "grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "functional_call"]

_RANDOMNESS = ("error", "different", "same")


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:
    """torch's ``vmap``: ``func`` mapped over axis ``in_dims`` of its positional arguments (an int for all, or one
    entry per argument, None for an argument passed whole), its results stacked along ``out_dims``. Keyword
    arguments are passed whole, as torch does (JAX's ``vmap`` maps them). ``chunk_size`` (torch's memory knob)
    changes nothing here; ``randomness`` is checked, and random functions inside draw as JAX's do under ``vmap``.
    """
    if randomness not in _RANDOMNESS:
        raise ValueError(f"jnn.ops.func.vmap: randomness must be one of {_RANDOMNESS}, got {randomness!r}")
    if not isinstance(in_dims, (int, tuple)) and in_dims is not None:
        raise ValueError(f"jnn.ops.func.vmap: expected in_dims to be an int or a tuple with one entry per positional "
                         f"argument, got {type(in_dims).__name__}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"jnn.ops.func.vmap: chunk_size should be None or a positive int, got {chunk_size!r}")

    def mapped(*args: Any, **kwargs: Any) -> Any:
        if isinstance(in_dims, tuple) and len(in_dims) != len(args):
            raise ValueError(f"jnn.ops.func.vmap: in_dims has {len(in_dims)} entries for {len(args)} positional "
                             "arguments; give one per argument (None for one passed whole)")
        return jax.vmap(lambda *a: func(*a, **kwargs), in_axes=in_dims, out_axes=out_dims)(*args)

    return mapped


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """torch.func's ``grad``: the gradient of ``func``'s scalar output with respect to argument(s) ``argnums``
    (with ``has_aux``, ``func`` returns ``(output, aux)`` and the result is ``(gradient, aux)``)."""
    return jax.grad(func, argnums=argnums, has_aux=has_aux)


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """torch.func's ``grad_and_value``: ``(gradient, output)``, torch's order (JAX's ``value_and_grad`` gives
    ``(output, gradient)``); with ``has_aux``, ``(gradient, (output, aux))``."""
    value_and_grad = jax.value_and_grad(func, argnums=argnums, has_aux=has_aux)

    def both(*args: Any, **kwargs: Any) -> tuple:
        value, gradient = value_and_grad(*args, **kwargs)
        return gradient, value

    return both


def vjp(func: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """torch.func's ``vjp``: ``(output, vjp_fn)`` (and ``aux`` last with ``has_aux``); ``vjp_fn(cotangent)`` gives
    one gradient per primal, as a tuple."""
    return jax.vjp(func, *primals, has_aux=has_aux)


def jvp(func: Callable, primals: Sequence[Any], tangents: Sequence[Any], *, has_aux: bool = False) -> tuple:
    """torch.func's ``jvp``: ``(output, jvp_out)`` (and ``aux`` with ``has_aux``) for tuples of primals and
    tangents."""
    return jax.jvp(func, tuple(primals), tuple(tangents), has_aux=has_aux)


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None) -> Callable:
    """torch.func's ``jacrev``: the Jacobian by reverse mode (``chunk_size`` changes nothing here)."""
    return jax.jacrev(func, argnums=argnums, has_aux=has_aux)


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:
    """torch.func's ``jacfwd``: the Jacobian by forward mode."""
    return jax.jacfwd(func, argnums=argnums, has_aux=has_aux)


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """torch.func's ``hessian``: the Jacobian of the Jacobian."""
    return jax.hessian(func, argnums=argnums)


def functional_call(module: Any, parameter_and_buffer_dicts: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                    args: Any = None, kwargs: dict[str, Any] | None = None, *, tie_weights: bool = True,
                    strict: bool = False) -> Any:
    """torch.func's ``functional_call``: :func:`jnn.utils.stateless.functional_call`, also taking a tuple of dicts
    (parameters, buffers), which must not share a name."""
    from jnn.utils.stateless import functional_call as call

    if not isinstance(parameter_and_buffer_dicts, Mapping):
        merged: dict[str, Any] = {}
        for part in parameter_and_buffer_dicts:
            repeated = merged.keys() & part.keys()
            if repeated:
                raise ValueError(f"jnn.ops.func.functional_call: {sorted(repeated)} appeared in more than one of "
                                 "the dicts given")
            merged.update(part)
        parameter_and_buffer_dicts = merged
    return call(module, dict(parameter_and_buffer_dicts), args, kwargs, tie_weights=tie_weights, strict=strict)
