"""Scan over layers: run a stack of identical blocks through one ``jax.lax.scan``.

``for layer in self.layers: x = layer(x)`` unrolls the stack when traced, so compile time grows with depth.
:func:`scan_layers` traces and compiles one block and loops over the layers, while the blocks stay ordinary modules in
their ``ModuleList`` (``state_dict`` names ``layers.0.…`` … ``layers.{N-1}.…`` are unchanged).

>>> import jax, jax.numpy as jnp, jnn
>>> layers = jnn.ModuleList([jnn.Linear(4, 4) for _ in range(3)])
>>> y = jnn.scan_layers(layers, jnp.ones((2, 4)))
>>> x = jnp.ones((2, 4))
>>> for layer in layers:
...     x = layer(x)
>>> bool(jnp.allclose(x, y, atol=1e-6))
True
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jnn import random
from jnn._arrays import is_tracer
from jnn.modules._pytree import TreeDef as _TreeDef
from jnn.modules._pytree import build as _build
from jnn.modules._pytree import flatten as _flatten
from jnn.modules._pytree import static_equal
from jnn.modules._pytree import walk as _walk
from jnn.modules.container import ModuleList, Sequential
from jnn.modules.module import Module

__all__ = ["scan_layers"]

# set by jnn.summary: run the blocks one by one even while tracing, so each layer gets its own row
_loop_layers: contextvars.ContextVar[bool] = contextvars.ContextVar("jnn_loop_layers", default=False)

_HOOK_SLOTS = ("_forward_pre_hooks", "_forward_hooks")
# id -> flag dicts that qualify the hooks above (with_kwargs, always_call): compared with their hook, not by id
_HOOK_FLAGS = {"_forward_pre_hooks_with_kwargs": "_forward_pre_hooks", "_forward_hooks_with_kwargs": "_forward_hooks",
               "_forward_hooks_always_called": "_forward_hooks"}


# --- helpers shared with jnn.utils.checkpoint ---------------------------------------------------------------


def _buffer_slots(treedef: _TreeDef) -> list[tuple[int, str, int]]:
    """(node index, buffer name, leaf index) for every buffer of a flattened module."""
    return [
        (node, attr, leaf)
        for node, (mdef, _, buffers, _) in enumerate(treedef.nodes)
        for attr, leaf in zip(mdef.buffers, buffers, strict=True)
        if leaf >= 0
    ]


def _private_copies(treedef: _TreeDef, leaves: Sequence[Any]) -> list[Module]:
    """Fresh modules (node order, root first) holding ``leaves``; private to one traced call, so their
    buffers may be replaced by traced values."""
    modules = _build(treedef, list(leaves))
    for module in modules:
        module.__dict__["_jnn_private"] = True
    return modules


def _read_buffers(modules: list[Module], slots: list[tuple[int, str, int]]) -> list[Any]:
    return [modules[node].__dict__["_buffers"][attr] for node, attr, _ in slots]


def _write_buffers(root: Module, slots: list[tuple[int, str, int]], changed: list[bool], values: list[Any]) -> None:
    """Store the changed buffers into ``root``'s modules (in the same node order as its treedef)."""
    if not any(changed):
        return
    modules = list(root.modules())
    for (node, attr, _), was_changed, value in zip(slots, changed, values, strict=True):
        if was_changed:
            setattr(modules[node], attr, value)


def _any_training(module: Module) -> bool:
    return any(m.__dict__.get("training", False) for m in module.modules())


def _key_or_none(who: str) -> jax.Array | None:
    """A fresh key if one is available (eager, or inside ``jnn.random.fork``); None under a transformation
    without one. A block that really draws randomness then raises MissingKeyError itself."""
    try:
        return random.next_key(who)
    except random.MissingKeyError:
        return None


# --- comparing blocks ------------------------------------------------------------------------------------


class _SameCode:
    """A hook compared by what it runs: the same function, or the same code with the same closure contents
    (``for b in blocks: b.register_forward_hook(lambda m, a, o: ...)`` makes one lambda per block)."""

    __slots__ = ("hook",)

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    def __eq__(self, other: object) -> bool:
        a, b = self.hook, other.hook if isinstance(other, _SameCode) else None
        if a is b:
            return True
        if not (isinstance(a, types.FunctionType) and isinstance(b, types.FunctionType)):
            return False
        cells = lambda f: tuple(c.cell_contents for c in f.__closure__ or ())  # noqa: E731
        return a.__code__ is b.__code__ and a.__defaults__ == b.__defaults__ and all(
            x is y for x, y in zip(cells(a), cells(b), strict=True))

    __hash__ = None  # type: ignore[assignment]


def _hooks_key(static: tuple) -> tuple:
    """Static attributes with hook dicts compared by the code they run, not by their registration ids."""
    attrs = dict(static)

    def key(name: str, value: Any) -> Any:
        if name in _HOOK_SLOTS:
            return tuple(_SameCode(h) for h in value.values())
        if name in _HOOK_FLAGS:  # which of the hooks (by position) carry the flag
            return tuple(i in value for i in attrs.get(_HOOK_FLAGS[name], {}))
        return value

    return tuple((k, key(k, v)) for k, v in static)


def _structure_difference(first: _TreeDef, other: _TreeDef, paths: list[str]) -> str | None:
    """How ``other`` differs from ``first`` (None: same program; hooks count as equal when they are the same
    functions, whatever their registration ids)."""
    if first == other:
        return None
    if len(first.nodes) != len(other.nodes):
        return f"it has {len(other.nodes)} modules (itself included) where block 0 has {len(first.nodes)}"
    for path, (d0, p0, b0, c0), (d1, p1, b1, c1) in zip(paths, first.nodes, other.nodes, strict=True):
        where = f"submodule '{path}'" if path else "the block itself"
        if d0.cls is not d1.cls:
            return f"{where} is a {d1.cls.__name__} where block 0 has a {d0.cls.__name__}"
        for what, n0, n1 in (("parameters", d0.params, d1.params), ("buffers", d0.buffers, d1.buffers),
                             ("children", d0.children, d1.children)):
            if n0 != n1:
                return f"{where} has {what} {list(n1)} where block 0 has {list(n0)}"
        for what, names, s0, s1 in (("parameter", d0.params, p0, p1), ("buffer", d0.buffers, b0, b1)):
            for name, i0, i1 in zip(names, s0, s1, strict=True):
                if (i0 < 0) != (i1 < 0):
                    return f"{where} has {what} '{name}' {'None' if i1 < 0 else 'set'} where block 0 has it " \
                           f"{'None' if i0 < 0 else 'set'}"
        k0, k1 = _hooks_key(d0.static), _hooks_key(d1.static)
        names0, names1 = [k for k, _ in k0], [k for k, _ in k1]
        if names0 != names1:
            extra = sorted(set(names0) ^ set(names1))
            return f"{where} has different attributes than in block 0 ({extra})"
        for (name, v0), (_, v1) in zip(k0, k1, strict=True):
            if not static_equal(v0, v1):
                if name in _HOOK_SLOTS:
                    return f"{where} has different {name.strip('_').replace('_', ' ')} than in block 0"
                return f"{where} has {name}={v1!r} where block 0 has {name}={v0!r}"
        if (p0, b0, c0) != (p1, b1, c1):
            return f"{where} shares (ties) its arrays or children differently than block 0"
    return None


def _as_blocks(blocks: Any) -> list[Module]:
    if isinstance(blocks, (ModuleList, Sequential)):
        items = list(blocks)
    elif isinstance(blocks, Module):
        raise TypeError(f"jnn.scan_layers expects a ModuleList/Sequential (or list) of blocks, got a "
                        f"{type(blocks).__name__}; wrap a single block in a list")
    elif isinstance(blocks, Iterable) and not isinstance(blocks, (str, bytes)):
        items = list(blocks)
    else:
        raise TypeError(f"jnn.scan_layers expects a ModuleList/Sequential (or list) of blocks, got "
                        f"{type(blocks).__name__}")
    for i, block in enumerate(items):
        if not isinstance(block, Module):
            raise TypeError(f"jnn.scan_layers: block {i} is a {type(block).__name__}, not a jnn.Module")
    return items


def _check_leaves(blocks: list[Module], flat: list[tuple[tuple, _TreeDef]], who: str) -> None:
    """Leaf j of every block must have the same shape and dtype (a clear error names the first that differs)."""
    first = flat[0][0]
    names = None
    for i, (leaves, _) in enumerate(flat[1:], 1):
        for j, (a, b) in enumerate(zip(first, leaves, strict=True)):
            if jnp.shape(a) != jnp.shape(b) or jnp.result_type(a) != jnp.result_type(b):
                names = names or _walk(blocks[0], with_names=True)[2]
                raise ValueError(
                    f"{who}: blocks must be structurally identical, but block {i}'s '{names[j]}' is "
                    f"{jnp.result_type(b)}{list(jnp.shape(b))} where block 0's is "
                    f"{jnp.result_type(a)}{list(jnp.shape(a))}")


def _check_identical(blocks: list[Module], flat: list[tuple[tuple, _TreeDef]], who: str) -> None:
    """Raise a ValueError (prefixed by ``who``) naming the first block that differs from block 0, and how."""
    treedef = flat[0][1]
    paths = None
    for i, (_, other) in enumerate(flat[1:], 1):
        if other is treedef or other == treedef:
            continue
        paths = paths or [name for name, _ in blocks[0].named_modules()]
        difference = _structure_difference(treedef, other, paths)
        if difference is not None:
            raise ValueError(
                f"{who}: blocks must be structurally identical, but block {i} "
                f"({type(blocks[i]).__name__}) differs from block 0: {difference}.")
    _check_leaves(blocks, flat, who)


class _StackedLeaves:
    """What ``jnn.split(..., stacked=...)``'s apply records on its private copy of a stacked list (in the list's
    ``_jnn_private`` slot): ``stacked[j]``, the arrays of leaf j of every block along a leading axis, and
    ``slices[i][j]``, the slice of it that block i was built with. While the blocks still hold exactly these
    slices, :func:`scan_layers` scans over ``stacked`` itself instead of stacking the blocks' arrays again, and
    leaves the buffers it changed in ``new_buffers`` (leaf j -> (stacked, the per-block slices written back))."""

    __slots__ = ("stacked", "slices", "new_buffers")

    def __init__(self, stacked: list, slices: list[tuple]) -> None:
        self.stacked = stacked
        self.slices = slices
        self.new_buffers: dict[int, tuple[Any, list]] = {}

    def holds(self, flat: list[tuple[tuple, _TreeDef]]) -> bool:
        return len(flat) == len(self.slices) and all(
            len(leaves) == len(mine) and all(a is b for a, b in zip(leaves, mine, strict=True))
            for (leaves, _), mine in zip(flat, self.slices, strict=True))


def _aval_text(tree: Any) -> str:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    texts = [f"{jnp.result_type(a)}{list(jnp.shape(a))}" if hasattr(a, "shape") else repr(a) for a in leaves]
    return texts[0] if treedef.num_leaves == 1 and treedef.num_nodes == 1 else str(treedef.unflatten(texts))


def _check_carry(out: Any, carry: Any, block: Module) -> None:
    out_leaves, out_def = jax.tree_util.tree_flatten(out)
    carry_leaves, carry_def = jax.tree_util.tree_flatten(carry)
    same = out_def == carry_def and all(
        hasattr(o, "shape") and o.shape == c.shape and jnp.result_type(o) == jnp.result_type(c)
        for o, c in zip(out_leaves, carry_leaves, strict=True))
    if not same:
        raise TypeError(
            f"jnn.scan_layers: a block ({type(block).__name__}) returned {_aval_text(out)} for an input x of "
            f"{_aval_text(carry)}. scan_layers feeds each block's output to the next block as x, so block(x, *args, "
            "**kwargs) must return the same structure, shapes and dtypes as x (cast x to the blocks' dtype "
            "first; return extras such as attention weights as part of x, or use a Python loop)."
        )


# --- scan over layers -------------------------------------------------------------------------------------


def scan_layers(blocks: Any, x: Any, *args: Any, checkpoint: bool = False, unroll: int = 1, **kwargs: Any) -> Any:
    """``x = block(x, *args, **kwargs)`` for every block in order, traced once and run by ``jax.lax.scan``.

    Use it in ``forward`` in place of ``for layer in self.layers: x = layer(x)``. ``blocks`` is a
    ``ModuleList``/``Sequential`` (or list) of structurally identical modules: same classes, hyperparameters,
    parameter shapes and dtypes, train/eval mode and hooks. Their arrays are stacked along a new leading
    axis for the call; the blocks themselves stay separate modules, so ``state_dict`` names and PyTorch
    checkpoints are unchanged. The block is traced and compiled once instead of once per layer; what still
    grows with depth is stacking the parameters and, under ``jax.grad``, splitting their gradients again
    (one small copy per parameter per layer). Training through ``jnn.split(net, stacked=["layers"])`` avoids
    that too: its params hold one stacked array per block parameter, which the scan uses as they are.

    * ``args``/``kwargs`` (masks, flags) are passed unchanged to every block.
    * Carry contract: ``block(x, ...)`` must return the same structure, shapes and dtypes as ``x`` (``x`` may
      be a tuple/dict of arrays); otherwise a TypeError says what came back.
    * Buffers changed by the blocks (BatchNorm running statistics) are written back into each block.
    * Each block gets its own random key (Dropout draws differ per layer), split from one key drawn from
      jnn's stream or the enclosing ``jnn.random.fork``/``apply(..., key=)``.
    * Forward hooks on the blocks run while the (single) block body is traced, with traced values.
    * Eager (no JAX transformation), there is nothing to compile: the blocks run one by one, with the same
      checks and keys, so a breakpoint in a block stops once per layer.
    * ``checkpoint=True`` wraps each block in ``jax.checkpoint`` (recompute activations in the backward
      pass); ``unroll`` is ``jax.lax.scan``'s. These two keyword names are not passed to the blocks.

    >>> import jax, jax.numpy as jnp, jnn
    >>> class Encoder(jnn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.layers = jnn.ModuleList([jnn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    ...                                       for _ in range(3)])
    ...     def forward(self, x, mask=None):
    ...         return jnn.scan_layers(self.layers, x, src_key_padding_mask=mask)
    >>> net = Encoder()
    >>> jax.jit(lambda m, x: m(x))(net, jnp.ones((2, 5, 8))).shape
    (2, 5, 8)
    >>> list(net.state_dict())[:2]
    ['layers.0.self_attn.in_proj_weight', 'layers.0.self_attn.in_proj_bias']
    """
    record = blocks.__dict__.get("_jnn_private") if isinstance(blocks, Module) else None
    blocks = _as_blocks(blocks)
    if not isinstance(checkpoint, bool):
        raise TypeError(f"jnn.scan_layers: checkpoint must be a bool, got {type(checkpoint).__name__}")
    if not blocks:
        return x
    flat = [_flatten(block) for block in blocks]
    treedef = flat[0][1]
    _check_identical(blocks, flat, "jnn.scan_layers")
    key = _key_or_none("scan_layers") if _any_training(blocks[0]) else None
    keys = None if key is None else jax.random.split(key, len(blocks))
    inputs = jax.tree_util.tree_leaves((x, args, kwargs, [leaves for leaves, _ in flat]))
    if _loop_layers.get() or not any(is_tracer(v) for v in inputs):
        # Eager (or jnn.summary, which wants a row per layer): nothing to compile, so run the blocks one by one
        # (breakpoints and prints in a block work per layer); same checks, same per-layer keys, buffers written
        # by the blocks themselves.
        for block, block_key in zip(blocks, [None] * len(blocks) if keys is None else keys, strict=True):
            with random.fork(block_key):
                out = block(x, *args, **kwargs)
            _check_carry(out, x, block)
            x = out
        return x
    if isinstance(record, _StackedLeaves) and record.holds(flat):
        stacked = list(record.stacked)  # split(..., stacked=...): the arrays are stacked already
    else:
        record = None
        stacked = [jnp.stack([leaves[j] for leaves, _ in flat]) for j in range(len(flat[0][0]))]
    slots = _buffer_slots(treedef)
    changed = [False] * len(slots)

    def step(carry: Any, per_block: tuple) -> tuple[Any, list]:
        leaves, block_key = per_block
        modules = _private_copies(treedef, leaves)
        with random.fork(block_key):
            out = modules[0](carry, *args, **kwargs)
        _check_carry(out, carry, modules[0])
        new_buffers = _read_buffers(modules, slots)
        changed[:] = [new is not leaves[leaf] for new, (_, _, leaf) in zip(new_buffers, slots, strict=True)]
        return out, new_buffers

    body = jax.checkpoint(step, prevent_cse=False) if checkpoint else step
    out, new_buffers = jax.lax.scan(body, x, (stacked, keys), length=len(blocks), unroll=unroll)
    if any(changed):
        shared = [id(leaves[leaf]) for leaves, _ in flat for (_, _, leaf), c in zip(slots, changed, strict=True) if c]
        if len(set(shared)) < len(shared):
            raise ValueError(
                "jnn.scan_layers: the blocks share buffers that the forward pass changes (e.g. the same BatchNorm "
                "in several blocks). A loop would update them once per layer, one after the other; a scan cannot. "
                "Give each block its own modules, or use a Python loop for this stack.")
        per_block = [[b[i] for i in range(len(blocks))] if c else None for b, c in zip(new_buffers, changed,
                                                                                          strict=True)]
        for i, block in enumerate(blocks):
            _write_buffers(block, slots, changed, [b[i] if b is not None else None for b in per_block])
        if record is not None:
            record.new_buffers = {leaf: (b, written) for (_, _, leaf), b, written in zip(slots, new_buffers, per_block,
                                                                                         strict=True) if written}
    return out
