"""Split a module into trainable parameters, buffers and a pure apply function; merge them back.

>>> import jax, jax.numpy as jnp, jnn as nn
>>> net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU())
>>> apply, params, buffers = nn.split(net)
>>> list(params)
['0.weight', '0.bias', '1.weight', '1.bias']
>>> list(buffers)
['1.running_mean', '1.running_var', '1.num_batches_tracked']
>>> out, buffers = jax.jit(apply)(params, buffers, jnp.ones((2, 3)))
>>> int(buffers['1.num_batches_tracked'])
1

With ``stacked=``, a list of identical blocks keeps one array per block parameter, stacked along a leading axis,
under the key ``<list>.*.<name>`` (what :func:`jnn.scan_layers` scans over):

>>> net = nn.Sequential(nn.ModuleList([nn.Linear(4, 4) for _ in range(3)]))
>>> apply, params, buffers = nn.split(net, stacked=["0"])
>>> {k: v.shape for k, v in params.items()}
{'0.*.weight': (3, 4, 4), '0.*.bias': (3, 4)}
>>> list(nn.merge(apply, params, buffers).state_dict())[:3]
['0.0.weight', '0.0.bias', '0.1.weight']
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnn import random
from jnn._arrays import is_tracer
from jnn.modules._pytree import build as _build
from jnn.modules._pytree import flatten as _flatten
from jnn.modules._pytree import walk as _walk
from jnn.modules.container import ModuleList, Sequential
from jnn.modules.module import Module
from jnn.transforms import _check_identical, _StackedLeaves

__all__ = ["split", "merge", "Apply"]


class _Stack(NamedTuple):
    """A list split with stacked arrays: its name, its node in the treedef, ``leaves[i][j]`` the model's leaf
    index of block i's leaf j, and ``keys[j]`` the stacked key of leaf j (``<path>.*.<name in the block>``)."""

    path: str
    node: int
    leaves: tuple[tuple[int, ...], ...]
    keys: tuple[str, ...]


class _StackedLayout:
    """The ``stacked=`` layout of a split: which of the model's leaves live in stacked arrays, and the conversions
    between per-layer keys (``layers.0.w`` ... ``layers.{N-1}.w``, as in ``state_dict``) and stacked ones
    (``layers.*.w``). :class:`Apply` holds one when split with ``stacked=``; the plain split never touches it."""

    __slots__ = ("stacks", "where", "restack", "stacked_keys", "layer_keys", "order")

    def __init__(self, stacks: Sequence[_Stack], names: tuple[str, ...]) -> None:
        self.stacks = tuple(stacks)
        # model leaf index -> (stack index, block index, leaf index in the block)
        self.where = {g: (s, i, j) for s, stack in enumerate(self.stacks)
                      for i, row in enumerate(stack.leaves) for j, g in enumerate(row)}
        # stacked key -> (its stack, the per-layer keys it holds); per-layer key -> (stacked key, per-layer keys)
        self.stacked_keys = {key: (stack, tuple(names[row[j]] for row in stack.leaves))
                             for stack in self.stacks for j, key in enumerate(stack.keys)}
        self.layer_keys = {layer_key: (key, layer_keys) for key, (_, layer_keys) in self.stacked_keys.items()
                           for layer_key in layer_keys}
        self.order = {n: g for g, n in enumerate(names)}  # state_dict order inside each list
        self.restack: dict[str, tuple] = {}

    def plan_entry(self, g: int, name: str, trainable: bool) -> tuple:
        """(trainable, key in params/buffers, stack index or -1, block index) of the model's leaf ``g``."""
        if g not in self.where:
            return (trainable, name, -1, 0)
        s, i, j = self.where[g]
        return (trainable, self.stacks[s].keys[j], s, i)

    def buffer_slots(self, buffer_slots: list, names: tuple[str, ...]) -> list:
        """The (key, node, slot dict, attribute) of each buffer key: a stacked key points at block 0's slot, and
        ``restack[key]`` has (stack index, leaf in the block, the slot of every block)."""
        index_of = {n: g for g, n in enumerate(names)}
        slot_of = {name: (node, slot, attr) for name, node, slot, attr in buffer_slots}
        slots = []
        for name, node, slot, attr in buffer_slots:
            g = index_of[name]
            if g not in self.where:
                slots.append((name, node, slot, attr))
            elif self.where[g][1] == 0:
                s, _, j = self.where[g]
                stack = self.stacks[s]
                slots.append((stack.keys[j], node, slot, attr))
                self.restack[stack.keys[j]] = (s, j, tuple(slot_of[names[row[j]]] for row in stack.leaves))
        return slots

    @staticmethod
    def slices(key: str, value: Any, stack: _Stack) -> list:
        n = len(stack.leaves)
        if jnp.ndim(value) == 0 or jnp.shape(value)[0] != n:
            raise ValueError(f"jnn apply: '{key}' must have a leading axis of {n} (one entry per block of stacked "
                             f"'{stack.path}'), got shape {tuple(jnp.shape(value))}")
        return list(_unstacker(n)(value))

    def gather(self, plan: tuple, params: dict, buffers: dict) -> tuple[list, list[_StackedLeaves]]:
        """The model's leaves (blocks get slices of the stacked arrays) and, per stacked list, the record that
        lets scan_layers use the stacked arrays directly."""
        leaves, sliced = [], {}
        for t, key, s, i in plan:
            value = (params if t else buffers)[key]
            if s >= 0:
                if key not in sliced:
                    sliced[key] = self.slices(key, value, self.stacks[s])
                value = sliced[key][i]
            leaves.append(value)
        records = [_StackedLeaves([(params if plan[g][0] else buffers)[k]
                                   for g, k in zip(stack.leaves[0], stack.keys, strict=True)],
                                  [tuple(sliced[k][i] for k in stack.keys) for i in range(len(stack.leaves))])
                   for stack in self.stacks]
        return leaves, records

    def new_buffer(self, name: str, modules: list, records: list[_StackedLeaves]) -> Any:
        """A stacked buffer after the call, from the blocks' values."""
        s, j, places = self.restack[name]
        values = [modules[nd].__dict__[sl][at] for nd, sl, at in places]
        return _restacked(records[s], j, values)

    def stack(self, arrays: dict) -> dict:
        out = {}
        for key, value in arrays.items():
            hit = self.layer_keys.get(key)
            if hit is None:
                out[key] = value
            elif hit[0] not in out:
                missing = [k for k in hit[1] if k not in arrays]
                if missing:
                    raise KeyError(f"jnn apply.stack: '{hit[0]}' needs the entry of every block; missing {missing}")
                out[hit[0]] = jnp.stack([jnp.asarray(arrays[k]) for k in hit[1]])
        return out

    def unstack(self, arrays: dict) -> dict:
        out: dict = {}
        per_stack: dict[str, dict] = {}
        for key, value in arrays.items():
            hit = self.stacked_keys.get(key)
            if hit is None:
                out[key] = value
                continue
            if hit[0].path not in per_stack:  # a placeholder (not a str key) keeps the list's position
                out[(hit[0].path,)] = per_stack[hit[0].path] = {}
            per_stack[hit[0].path].update(zip(hit[1], self.slices(key, value, hit[0]), strict=True))
        if not per_stack:
            return out
        result = {}
        for key, value in out.items():
            if isinstance(key, tuple) and value is per_stack.get(key[0]):
                result.update(sorted(value.items(), key=lambda item: self.order[item[0]]))
            else:
                result[key] = value
        return result

    def hint(self) -> str:
        return (f"; this apply was split with stacked={[s.path for s in self.stacks]}, and apply.stack(d) turns "
                "per-layer entries into stacked ones")


class Apply:
    """The pure function of a split module.

    ``apply(params, buffers, *args, train=None, key=None, **kwargs) -> (output, new_buffers)`` runs the
    module's forward on a fresh copy built from the two dicts: no mutation, safe under jit/grad/vmap.
    ``train`` sets train/eval mode on every submodule for this call (None: the modes at split time);
    ``key`` is the randomness for Dropout and friends (see :mod:`jnn.random`).
    With ``jnn.split(net, stacked=...)``, :meth:`stack` and :meth:`unstack` convert a dict between per-layer
    entries (``layers.0.w`` … ``layers.{N-1}.w``, as in ``state_dict``) and stacked ones (``layers.*.w``).
    """

    __slots__ = ("_treedef", "_names", "_trainable", "_buffer_slots", "_layout", "_plan", "_hash", "__weakref__")

    def __init__(self, treedef: Any, names: list[str], trainable: list[bool], buffer_slots: list,
                 stacks: Sequence[_Stack] = ()) -> None:
        self._treedef = treedef
        self._names = tuple(names)
        self._trainable = tuple(trainable)
        self._layout = _StackedLayout(stacks, self._names) if stacks else None
        self._hash = hash((treedef, self._names, self._trainable, self._stacks))
        if self._layout is None:
            self._plan = tuple((t, n, -1, 0) for n, t in zip(self._names, self._trainable, strict=True))
            self._buffer_slots = tuple(buffer_slots)
        else:
            self._plan = tuple(self._layout.plan_entry(g, n, t)
                               for g, (n, t) in enumerate(zip(self._names, self._trainable, strict=True)))
            self._buffer_slots = tuple(self._layout.buffer_slots(buffer_slots, self._names))

    @property
    def _stacks(self) -> tuple[_Stack, ...]:
        return () if self._layout is None else self._layout.stacks

    def _keys(self, trainable: bool) -> list[str]:
        return [key for t, key, s, i in self._plan if t == trainable and i == 0]

    @property
    def param_names(self) -> list[str]:
        return self._keys(True)

    @property
    def buffer_names(self) -> list[str]:
        return self._keys(False)

    def _gather(self, params: dict, buffers: dict) -> tuple[list, list[_StackedLeaves]]:
        try:
            if self._layout is None:
                return [(params if t else buffers)[key] for t, key, _, _ in self._plan], []
            return self._layout.gather(self._plan, params, buffers)
        except (KeyError, TypeError):
            self._missing(params, buffers)
            raise

    def _missing(self, params: Any, buffers: Any) -> None:
        for what, given, wanted in (("params", params, self.param_names), ("buffers", buffers, self.buffer_names)):
            if not hasattr(given, "keys"):
                raise TypeError(
                    f"jnn apply: {what} must be a dict keyed by state_dict names, got {type(given).__name__}")
            missing = [k for k in wanted if k not in given]
            if missing:
                hint = "" if self._layout is None else self._layout.hint()
                raise KeyError(
                    f"jnn apply: {what} is missing {missing}; expected the keys that jnn.split returned for "
                    f"this model ({len(wanted)} keys: {wanted[:4]}{'...' if len(wanted) > 4 else ''}){hint}"
                )

    def module(self, params: dict, buffers: dict) -> Module:
        """A Module (fresh objects) holding these arrays; what :func:`merge` returns."""
        return _build(self._treedef, self._gather(params, buffers)[0])[0]

    def stack(self, arrays: dict) -> dict:
        """``arrays`` with the per-layer entries of each stacked list (``layers.0.w`` … ``layers.{N-1}.w``)
        replaced by one stacked array (``layers.*.w``); other keys pass unchanged. For a ``state_dict`` or a
        checkpoint: ``params = {k: v for k, v in apply.stack(sd).items() if k in apply.param_names}``."""
        return dict(arrays) if self._layout is None else self._layout.stack(arrays)

    def unstack(self, arrays: dict) -> dict:
        """The inverse of :meth:`stack`: each stacked entry (``layers.*.w``) becomes the per-layer entries
        ``layers.0.w`` … ``layers.{N-1}.w`` (PyTorch's names); other keys pass unchanged."""
        return dict(arrays) if self._layout is None else self._layout.unstack(arrays)

    def __call__(
        self, params: dict, buffers: dict, *args: Any, train: bool | None = None, key: jax.Array | None = None,
        **kwargs: Any,
    ) -> tuple[Any, dict]:
        leaves, records = self._gather(params, buffers)
        modules = _build(self._treedef, leaves)
        for module in modules:
            module.__dict__["_jnn_private"] = True  # this call's own copies: buffers may change under a trace
        for stack, record in zip(self._stacks, records, strict=True):
            modules[stack.node].__dict__["_jnn_private"] = record  # read by scan_layers
        root = modules[0]
        if train is not None:
            if is_tracer(train):
                raise TypeError(
                    "jnn apply: train= must be a Python bool, but it is traced here (jax.jit traces keyword "
                    "arguments too). Mark it static, e.g. jax.jit(apply, static_argnames='train'), or call "
                    "apply inside your jitted step with a literal train=True/False."
                )
            root.train(bool(train))
        with random.fork(key):
            output = root(*args, **kwargs)
        layout = self._layout
        new_buffers = {}
        for name, node, slots, attr in self._buffer_slots:
            if layout is None or name not in layout.restack:
                new_buffers[name] = modules[node].__dict__[slots][attr]
            else:
                new_buffers[name] = layout.new_buffer(name, modules, records)
        return output, new_buffers

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Apply) and (self._treedef, self._names, self._trainable, self._stacks) == (
            other._treedef, other._names, other._trainable, other._stacks)

    def __repr__(self) -> str:
        stacked = f", stacked {[s.path for s in self._stacks]}" if self._stacks else ""
        return f"<jnn apply of {self._treedef.nodes[0][0].cls.__name__}: {len(self.param_names)} params, " \
               f"{len(self.buffer_names)} buffers{stacked}>"


@functools.lru_cache(maxsize=64)
def _unstacker(n: int) -> Any:
    """The n slices of an array's leading axis as one jitted call, and its derivative as one more: tracing and
    differentiating a stacked array's N slices costs two operations, not 2N (most slices go unused)."""
    slices = jax.jit(lambda value: tuple(jax.lax.index_in_dim(value, i, keepdims=False) for i in range(n)))

    @jax.custom_jvp
    def unstack(value: Any) -> tuple:
        return slices(value)

    @unstack.defjvp
    def _(primals: tuple, tangents: tuple) -> tuple:
        return slices(primals[0]), slices(tangents[0])

    return unstack


def _restacked(record: _StackedLeaves, j: int, values: list) -> Any:
    """Leaf j of a stacked list after the call: the stacked array given (unchanged), the one scan_layers
    produced (its slices are what the blocks hold), or else the blocks' values stacked."""
    if all(v is mine[j] for v, mine in zip(values, record.slices, strict=True)):
        return record.stacked[j]
    scanned = record.new_buffers.get(j)
    if scanned is not None and all(v is w for v, w in zip(values, scanned[1], strict=True)):
        return scanned[0]
    return jnp.stack(values)


def _find_stacks(module: Module, leaves: list, names: list[str], stacked: Any) -> list[_Stack]:
    if isinstance(stacked, str):
        stacked = [stacked]
    try:
        paths = list(stacked)
    except TypeError:
        paths = [stacked]
    if not all(isinstance(p, str) for p in paths):
        raise TypeError(f"jnn.split: stacked must be a list of submodule names such as ['encoder.layers'], got "
                        f"{stacked!r}")
    if not paths:
        return []
    named = list(module.named_modules())
    by_name = dict(named)
    node_of = {id(m): k for k, (_, m) in enumerate(named)}  # named_modules visits in treedef node order
    index_of = {n: g for g, n in enumerate(names)}
    owner: dict[int, str] = {}
    stacks = []
    for path in paths:
        who = f"jnn.split: stacked={path!r}"
        sub = by_name.get(path)
        if not isinstance(sub, (ModuleList, Sequential)):
            lists = [n for n, m in named if isinstance(m, (ModuleList, Sequential))]
            what = "names no submodule of the model" if sub is None else \
                f"is a {type(sub).__name__}, not a ModuleList or Sequential of blocks"
            error = ValueError if sub is None else TypeError
            raise error(f"{who} {what}; the model's ModuleLists and Sequentials are {lists}")
        blocks = list(sub)
        if not blocks:
            raise ValueError(f"{who}: the list is empty, there is nothing to stack")
        flat = [_flatten(block) for block in blocks]
        _check_identical(blocks, flat, who)
        local = _walk(blocks[0], with_names=True)[2]
        prefix = f"{path}." if path else ""
        table = []
        for i, (block_leaves, _) in enumerate(flat):
            row = []
            for name, value in zip(local, block_leaves, strict=True):
                g = index_of.get(f"{prefix}{i}.{name}")
                if g is None or leaves[g] is not value:
                    raise ValueError(f"{who}: block {i}'s '{name}' is also used elsewhere in the model (tied arrays "
                                     "or a block listed twice), but a stacked list needs arrays of its own in "
                                     "every block")
                if g in owner:
                    raise ValueError(f"{who} overlaps stacked={owner[g]!r}: a list cannot be stacked twice or "
                                     "inside another stacked list")
                owner[g] = path
                row.append(g)
            table.append(tuple(row))
        stacks.append(_Stack(path, node_of[id(sub)], tuple(table), tuple(f"{prefix}*.{n}" for n in local)))
    return stacks


def split(module: Module, *, stacked: str | Sequence[str] = ()) -> tuple[Apply, dict[str, jax.Array],
                                                                          dict[str, jax.Array]]:
    """``apply, params, buffers = jnn.split(net)``: trainable parameters and everything else forward needs
    (buffers, frozen parameters), each a flat dict keyed by state_dict names, and the pure apply function.
    Tied parameters appear once, under their first name. ``net`` itself is not changed.

    ``stacked`` names ``ModuleList``/``Sequential`` submodules of structurally identical blocks (e.g.
    ``["encoder.layers"]``) whose arrays the dicts hold stacked: the entries ``encoder.layers.0.fc.weight`` …
    ``encoder.layers.{N-1}.fc.weight`` become one array with a leading axis of N under
    ``encoder.layers.*.fc.weight``. :func:`jnn.scan_layers` over that list then scans the stacked arrays as
    they are, so a training step's compile time does not grow with depth; the blocks can still be used one by
    one. :func:`merge` gives back an ordinary module with PyTorch's names; ``apply.stack``/``apply.unstack``
    convert other dicts (checkpoints, gradients)."""
    if not isinstance(module, Module):
        raise TypeError(f"jnn.split expects a jnn.Module, got {type(module).__name__}")
    module._sync_requires_grad()
    leaves, treedef, names = _walk(module, with_names=True)
    trainable = [False] * len(leaves)
    buffer_slots: dict[int, tuple] = {}
    for node, (mdef, param_slots, buf_slots, _) in enumerate(treedef.nodes):
        frozen = dict(mdef.static)["_frozen_parameters"]
        for attr, i in zip(mdef.params, param_slots, strict=True):
            if i >= 0 and i not in buffer_slots and not trainable[i]:
                if attr in frozen:
                    buffer_slots[i] = (names[i], node, "_parameters", attr)
                else:
                    trainable[i] = True
        for attr, i in zip(mdef.buffers, buf_slots, strict=True):
            if i >= 0 and i not in buffer_slots and not trainable[i]:
                buffer_slots[i] = (names[i], node, "_buffers", attr)
    params = {n: v for n, v, t in zip(names, leaves, trainable, strict=True) if t}
    buffers = {n: v for n, v, t in zip(names, leaves, trainable, strict=True) if not t}
    slots = [buffer_slots[i] for i in sorted(buffer_slots)]
    apply = Apply(treedef, names, trainable, slots, _find_stacks(module, leaves, names, stacked))
    if apply._stacks:
        params, buffers = apply.stack(params), apply.stack(buffers)
    return apply, params, buffers


def merge(apply: Apply, params: dict[str, jax.Array], buffers: dict[str, jax.Array]) -> Module:
    """The inverse of :func:`split`: a Module holding ``params`` and ``buffers`` (stacked entries are given
    back to their blocks, so ``state_dict`` has PyTorch's per-layer names)."""
    if not isinstance(apply, Apply):
        raise TypeError(f"jnn.merge expects the apply function returned by jnn.split, got {type(apply).__name__}")
    return apply.module(params, buffers)
