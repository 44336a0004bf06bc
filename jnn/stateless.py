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
"""

from __future__ import annotations

from typing import Any

import jax

from jnn import random
from jnn.modules.module import Module, _build, _walk

__all__ = ["split", "merge", "Apply"]


class Apply:
    """The pure function of a split module.

    ``apply(params, buffers, *args, train=None, key=None, **kwargs) -> (output, new_buffers)`` runs the
    module's forward on a fresh copy built from the two dicts: no mutation, safe under jit/grad/vmap.
    ``train`` sets train/eval mode on every submodule for this call (None: the modes at split time);
    ``key`` is the randomness for Dropout and friends (see :mod:`jnn.random`).
    """

    __slots__ = ("_treedef", "_names", "_trainable", "_buffer_slots", "_hash", "__weakref__")

    def __init__(self, treedef: Any, names: list[str], trainable: list[bool], buffer_slots: list) -> None:
        self._treedef = treedef
        self._names = tuple(names)
        self._trainable = tuple(trainable)
        self._buffer_slots = tuple(buffer_slots)  # (name, node index, slot dict, attribute) per buffer leaf
        self._hash = hash((treedef, self._names, self._trainable))

    @property
    def param_names(self) -> list[str]:
        return [n for n, t in zip(self._names, self._trainable, strict=True) if t]

    @property
    def buffer_names(self) -> list[str]:
        return [n for n, t in zip(self._names, self._trainable, strict=True) if not t]

    def _leaves(self, params: dict, buffers: dict) -> list:
        try:
            return [(params if t else buffers)[n] for n, t in zip(self._names, self._trainable, strict=True)]
        except (KeyError, TypeError):
            pass
        for what, given, wanted in (("params", params, self.param_names), ("buffers", buffers, self.buffer_names)):
            if not hasattr(given, "keys"):
                raise TypeError(
                    f"jnn apply: {what} must be a dict keyed by state_dict names, got {type(given).__name__}")
            missing = [k for k in wanted if k not in given]
            if missing:
                raise KeyError(
                    f"jnn apply: {what} is missing {missing}; expected the keys that jnn.split returned for "
                    f"this model ({len(wanted)} keys: {wanted[:4]}{'...' if len(wanted) > 4 else ''})"
                )
        raise AssertionError("unreachable")

    def module(self, params: dict, buffers: dict) -> Module:
        """A Module (fresh objects) holding these arrays; what :func:`merge` returns."""
        return _build(self._treedef, self._leaves(params, buffers))[0]

    def __call__(
        self, params: dict, buffers: dict, *args: Any, train: bool | None = None, key: jax.Array | None = None,
        **kwargs: Any,
    ) -> tuple[Any, dict]:
        modules = _build(self._treedef, self._leaves(params, buffers))
        for module in modules:
            module.__dict__["_jnn_private"] = True  # this call's own copies: buffers may change under a trace
        root = modules[0]
        if train is not None:
            if isinstance(train, jax.core.Tracer):
                raise TypeError(
                    "jnn apply: train= must be a Python bool, but it is traced here (jax.jit traces keyword "
                    "arguments too). Mark it static, e.g. jax.jit(apply, static_argnames='train'), or call "
                    "apply inside your jitted step with a literal train=True/False."
                )
            root.train(bool(train))
        with random.fork(key):
            output = root(*args, **kwargs)
        new_buffers = {name: modules[node].__dict__[slots][attr] for name, node, slots, attr in self._buffer_slots}
        return output, new_buffers

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Apply) and (self._treedef, self._names, self._trainable) == (
            other._treedef, other._names, other._trainable)

    def __repr__(self) -> str:
        return f"<jnn apply of {self._treedef.nodes[0][0].cls.__name__}: {len(self.param_names)} params, " \
               f"{len(self.buffer_names)} buffers>"


def split(module: Module) -> tuple[Apply, dict[str, jax.Array], dict[str, jax.Array]]:
    """``apply, params, buffers = jnn.split(net)``: trainable parameters and everything else forward needs
    (buffers, frozen parameters), each a flat dict keyed by state_dict names, and the pure apply function.
    Tied parameters appear once, under their first name. ``net`` itself is not changed."""
    if not isinstance(module, Module):
        raise TypeError(f"jnn.split expects a jnn.Module, got {type(module).__name__}")
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
    return Apply(treedef, names, trainable, slots), params, buffers


def merge(apply: Apply, params: dict[str, jax.Array], buffers: dict[str, jax.Array]) -> Module:
    """The inverse of :func:`split`: a Module holding ``params`` and ``buffers``."""
    if not isinstance(apply, Apply):
        raise TypeError(f"jnn.merge expects the apply function returned by jnn.split, got {type(apply).__name__}")
    return apply.module(params, buffers)
