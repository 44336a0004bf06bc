"""Gradient checkpointing with ``torch.utils.checkpoint``'s API, on ``jax.checkpoint`` (a.k.a. ``jax.remat``).

A checkpointed call keeps only its inputs for the backward pass and recomputes its activations there,
trading compute for memory. JAX has one checkpointing mechanism, so ``use_reentrant`` is accepted and
ignored, and the recomputation always sees the same randomness as the forward (``preserve_rng_state`` is
accepted and ignored too: a key is drawn once, outside, and both passes use it).

>>> import jax, jax.numpy as jnp, jnn
>>> from jnn.utils.checkpoint import checkpoint
>>> block = jnn.Sequential(jnn.Linear(4, 8), jnn.GELU(), jnn.Linear(8, 4))
>>> x = jnp.ones((2, 4))
>>> bool(jnp.allclose(checkpoint(block, x, use_reentrant=False), block(x)))
True
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import jax

from jnn import random
from jnn.modules.module import Module, _flatten, _is_array
from jnn.transforms import _any_training, _buffer_slots, _key_or_none, _private_copies, _read_buffers, _write_buffers

__all__ = ["checkpoint", "checkpoint_sequential"]


def _modules_reached(function: Any, found: list[Module]) -> None:
    """Modules ``function`` is, is bound to, or closes over (directly, or via partial/bound methods)."""
    if isinstance(function, Module):
        found.append(function)
    elif isinstance(function, types.MethodType):
        _modules_reached(function.__self__, found)
    elif isinstance(function, functools.partial):
        _modules_reached(function.func, found)
        for value in (*function.args, *function.keywords.values()):
            _modules_reached(value, found)
    elif isinstance(function, types.FunctionType) and function.__closure__:
        for cell in function.__closure__:
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if isinstance(contents, (Module, types.MethodType, functools.partial)):
                _modules_reached(contents, found)


def _rebind(function: Any, copies: dict[int, Module]) -> Any:
    """``function`` with every module it reaches (as found by _modules_reached) replaced by its copy."""
    if isinstance(function, Module):
        return copies.get(id(function), function)
    if isinstance(function, types.MethodType):
        return types.MethodType(function.__func__, _rebind(function.__self__, copies))
    if isinstance(function, functools.partial):
        return functools.partial(
            _rebind(function.func, copies), *(_rebind(a, copies) for a in function.args),
            **{k: _rebind(v, copies) for k, v in function.keywords.items()})
    if isinstance(function, types.FunctionType) and function.__closure__:
        cells = []
        for cell in function.__closure__:
            try:
                contents = cell.cell_contents
            except ValueError:
                cells.append(cell)
                continue
            new = _rebind(contents, copies) if isinstance(contents, (Module, types.MethodType,
                                                                    functools.partial)) else contents
            cells.append(cell if new is contents else types.CellType(new))
        rebound = types.FunctionType(function.__code__, function.__globals__, function.__name__,
                                     function.__defaults__, tuple(cells))
        rebound.__kwdefaults__ = function.__kwdefaults__
        return rebound
    return function


def _independent_roots(modules: list[Module]) -> list[Module]:
    """Distinct modules, leaving out those inside another one (they are reached through its copy)."""
    unique = list({id(m): m for m in modules}.values())
    unique.sort(key=lambda m: -sum(1 for _ in m.modules()))
    roots: list[Module] = []
    covered: set[int] = set()
    for module in unique:
        if id(module) not in covered:
            roots.append(module)
            covered.update(id(m) for m in module.modules())
    return roots


def checkpoint(function: Callable[..., Any], *args: Any, use_reentrant: bool | None = None,
               preserve_rng_state: bool = True, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, with its activations recomputed in the backward pass (``jax.checkpoint``).

    ``function`` may be a Module (``checkpoint(self.block, x)``), a bound method of one, or any callable;
    modules it is, is bound to, closes over or receives as arguments go through the checkpoint boundary as
    pytree inputs, and buffers they change (BatchNorm statistics) are written back afterwards. Modules
    reached any other way (e.g. through globals) must not change their buffers. Randomness (Dropout) uses one
    key drawn before the call, so the recomputation sees the same masks as the forward.
    ``use_reentrant`` and ``preserve_rng_state`` are accepted for PyTorch compatibility and ignored.

    >>> import jax, jax.numpy as jnp, jnn
    >>> from jnn.utils.checkpoint import checkpoint
    >>> layer = jnn.Linear(3, 3)
    >>> loss = lambda m, x: (checkpoint(m, x) ** 2).sum()
    >>> 'remat' in str(jax.make_jaxpr(jax.grad(loss))(layer, jnp.ones(3)))  # jax.checkpoint's primitive
    True
    """
    if not callable(function):
        raise TypeError(f"jnn.utils.checkpoint: function must be callable, got {type(function).__name__}")
    if use_reentrant is not None and not isinstance(use_reentrant, bool):
        raise TypeError(f"jnn.utils.checkpoint: use_reentrant must be None or a bool, got {use_reentrant!r}")
    reached: list[Module] = []
    _modules_reached(function, reached)
    arg_leaves, arg_def = jax.tree_util.tree_flatten((args, kwargs), is_leaf=lambda v: isinstance(v, Module))
    reached += [v for v in arg_leaves if isinstance(v, Module)]
    roots = _independent_roots(reached)
    flat = [_flatten(root) for root in roots]
    slots = [_buffer_slots(treedef) for _, treedef in flat]
    changed = [[False] * len(s) for s in slots]
    dynamic = [j for j, v in enumerate(arg_leaves) if _is_array(v)]
    wants_key = not roots or any(_any_training(root) for root in roots)
    key = _key_or_none("jnn.utils.checkpoint") if wants_key else None

    def run(module_leaves: list, array_args: list, key: jax.Array | None) -> tuple[Any, list]:
        copies: dict[int, Module] = {}
        copied_roots = []
        for root, (_, treedef), leaves in zip(roots, flat, module_leaves, strict=True):
            modules = _private_copies(treedef, leaves)
            copied_roots.append(modules)
            copies.update((id(original), copy) for original, copy in zip(root.modules(), modules, strict=True))
        leaves = [copies.get(id(v), v) if isinstance(v, Module) else v for v in arg_leaves]
        for j, value in zip(dynamic, array_args, strict=True):
            leaves[j] = value
        call_args, call_kwargs = jax.tree_util.tree_unflatten(arg_def, leaves)
        with random.fork(key):
            out = _rebind(function, copies)(*call_args, **call_kwargs)
        new_buffers = []
        for r, (modules, root_slots, root_leaves) in enumerate(zip(copied_roots, slots, module_leaves, strict=True)):
            values = _read_buffers(modules, root_slots)
            changed[r] = [v is not root_leaves[leaf] for v, (_, _, leaf) in zip(values, root_slots, strict=True)]
            new_buffers.append(values)
        return out, new_buffers

    out, new_buffers = jax.checkpoint(run)([list(leaves) for leaves, _ in flat], [arg_leaves[j] for j in dynamic],
                                           key)
    for root, root_slots, root_changed, values in zip(roots, slots, changed, new_buffers, strict=True):
        _write_buffers(root, root_slots, root_changed, values)
    return out


def _run_segment(functions: list, x: Any) -> Any:
    for function in functions:
        x = function(x)
    return x


def checkpoint_sequential(functions: Any, segments: int, input: Any, use_reentrant: bool | None = None,
                          **kwargs: Any) -> Any:
    """Run a ``Sequential`` (or list of modules/functions) in ``segments`` chunks, checkpointing every chunk
    but the last, like ``torch.utils.checkpoint.checkpoint_sequential``.

    >>> import jax.numpy as jnp, jnn
    >>> from jnn.utils.checkpoint import checkpoint_sequential
    >>> net = jnn.Sequential(*[jnn.Linear(4, 4) for _ in range(4)])
    >>> bool(jnp.allclose(checkpoint_sequential(net, 2, jnp.ones(4), use_reentrant=False), net(jnp.ones(4))))
    True
    """
    preserve_rng_state = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise TypeError(f"jnn.utils.checkpoint_sequential: unexpected keyword arguments {sorted(kwargs)}")
    if isinstance(functions, Module):
        functions = list(functions.children())
    else:
        functions = list(functions)
    if isinstance(segments, bool) or not isinstance(segments, int) or not 1 <= segments <= max(len(functions), 1):
        raise ValueError(f"jnn.utils.checkpoint_sequential: segments must be an int between 1 and the number of "
                         f"functions ({len(functions)}), got {segments!r}")
    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(_run_segment, functions[start:end + 1], input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve_rng_state)
    return _run_segment(functions[end + 1:], input)
