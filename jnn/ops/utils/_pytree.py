"""``torch.utils._pytree`` over ``jax.tree_util``: a class registered here is a JAX pytree node.

Libraries register their output containers with torch's pytree (HuggingFace's ``ModelOutput`` does, in
``__init_subclass__``); ported, the same call registers them with JAX, so a function under ``jax.jit`` or
``jax.grad`` can return them. torch's conventions are kept: ``flatten_fn(obj) -> (children, context)``,
``unflatten_fn(children, context) -> obj`` (children first, unlike JAX), a context may be a list (it is compared by
value, as JAX compares tree structures), and ``None`` is a leaf in :func:`tree_map`, :func:`tree_flatten` and
:func:`tree_leaves` (in JAX it is an empty subtree).

>>> import jax, jax.numpy as jnp
>>> class Pair:
...     def __init__(self, a, b):
...         self.a, self.b = a, b
>>> register_pytree_node(Pair, lambda p: ([p.a, p.b], ["a", "b"]), lambda children, names: Pair(*children))
>>> out = jax.jit(lambda x: Pair(x, 2 * x))(jnp.ones(2))
>>> out.b.tolist(), tree_leaves(Pair(1, None))
([2.0, 2.0], [1, None])
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable
from typing import Any

import jax

from jnn._arrays import is_tracer
from jnn.modules._pytree import note_elements

__all__ = ["register_pytree_node", "tree_map", "tree_flatten", "tree_unflatten", "tree_leaves", "tree_structure"]


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a context with the same equality (lists as tuples, dicts as item tuples)."""
    try:
        hash(value)
        return value
    except TypeError:
        pass
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, *map(_frozen, value))
    if isinstance(value, dict):
        return ("dict", *((_frozen(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return frozenset(map(_frozen, value))
    return ("id", id(value))


class _Context:
    """A torch pytree context as JAX auxiliary data: hashable and compared by value, whatever it holds."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, _Context) and _frozen(self.value) == _frozen(other.value)

    def __hash__(self) -> int:
        return hash(_frozen(self.value))

    def __repr__(self) -> str:
        return repr(self.value)


def register_pytree_node(cls: type, flatten_fn: Callable[[Any], tuple[list, Any]],
                         unflatten_fn: Callable[[Iterable, Any], Any], *, serialized_type_name: str | None = None,
                         to_dumpable_context: Callable | None = None, from_dumpable_context: Callable | None = None,
                         flatten_with_keys_fn: Callable | None = None) -> None:
    """``torch.utils._pytree.register_pytree_node``: make ``cls`` a JAX pytree node (``jax.tree_util``).

    ``flatten_with_keys_fn(obj) -> ([(key, child), ...], context)`` gives the key paths JAX reports (as
    ``jax.tree_util.register_pytree_with_keys``); the serialisation arguments are accepted and unused (JAX does not
    serialise tree structures by name)."""

    def flatten(obj: Any) -> tuple[list, _Context]:
        children, context = flatten_fn(obj)
        return list(children), _Context(context)

    def unflatten(context: _Context, children: Iterable) -> Any:
        return unflatten_fn(list(children), context.value)

    try:
        if flatten_with_keys_fn is None:
            jax.tree_util.register_pytree_node(cls, flatten, unflatten)
        else:
            def flatten_with_keys(obj: Any) -> tuple[list, _Context]:
                pairs, context = flatten_with_keys_fn(obj)
                return list(pairs), _Context(context)

            jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    except ValueError as e:
        raise ValueError(f"{cls} is already registered as pytree node.") from e


def _dict_flatten(d: dict) -> tuple[list, list]:
    """A dict's values and its keys, as torch's helper of that name (a ``flatten_fn`` for dict-like classes).

    >>> _dict_flatten({"a": 1, "b": 2})
    ([1, 2], ['a', 'b'])
    """
    return list(d.values()), list(d.keys())


def _dict_unflatten(values: Iterable, context: list) -> dict:
    """The dict of ``context``'s keys and ``values`` (:func:`_dict_flatten` undone), as torch's helper.

    >>> _dict_unflatten([1, 2], ["a", "b"])
    {'a': 1, 'b': 2}
    """
    return dict(zip(context, values, strict=True))


def _dict_flatten_with_keys(d: dict) -> tuple[list, list]:
    """A dict's ``(key, value)`` pairs (keys as ``jax.tree_util.DictKey``) and its keys, as torch's helper of that
    name (used as ``flatten_with_keys_fn`` for dict-like classes)."""
    keys = list(d.keys())
    return [(jax.tree_util.DictKey(k), d[k]) for k in keys], keys


def _leaf(is_leaf: Callable | None) -> Callable[[Any], bool]:
    return lambda x: x is None or (is_leaf is not None and is_leaf(x))


def tree_map(func: Callable, tree: Any, *rests: Any, is_leaf: Callable | None = None) -> Any:
    """``func`` applied to every leaf (of ``tree`` and the same leaves of ``rests``), a dict's in its insertion order
    (:func:`tree_flatten`); ``None`` is a leaf."""
    leaf = _leaf(is_leaf)
    return jax.tree_util.tree_map(func, _in_insertion_order(tree, leaf),
                                  *(_in_insertion_order(rest, leaf) for rest in rests), is_leaf=leaf)


def _note_elements(tree: Any, leaf: Callable[[Any], bool]) -> None:
    """Remember the list or dict element each concrete array of ``tree`` is (``modules._pytree.note_elements``), so
    that an in-place function on a leaf updates the tree, as torch's in-place write changes the tensor in it."""
    elements = []
    stack = [tree]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, jax.Array):
                if not isinstance(node, tuple) and not is_tracer(child):
                    elements.append((node, key, child))
            elif isinstance(child, (dict, list, tuple)) and not leaf(child):
                stack.append(child)
    if elements:
        note_elements(elements)


class _InsertionOrder(dict):
    """A dict (``factory`` set: a defaultdict) that JAX flattens in its insertion order, as torch's pytree does (JAX
    sorts a dict's keys, and refuses keys that do not sort); it unflattens to a dict (a defaultdict) again."""

    __slots__ = ("factory",)

    def __init__(self, items: dict, factory: Any) -> None:
        super().__init__(items)
        self.factory = factory


_PLAIN = object()  # the factory of a plain dict


def _insertion_flatten_with_keys(node: _InsertionOrder) -> tuple[list, _Context]:
    return [(jax.tree_util.DictKey(k), v) for k, v in node.items()], _Context((node.factory is _PLAIN, node.factory,
                                                                               list(node)))


def _insertion_unflatten(context: _Context, children: Iterable) -> dict:
    plain, factory, keys = context.value
    items = dict(zip(keys, children, strict=True))
    return items if plain else collections.defaultdict(factory, items)


jax.tree_util.register_pytree_with_keys(
    _InsertionOrder, _insertion_flatten_with_keys, _insertion_unflatten,
    lambda node: (list(node.values()), _insertion_flatten_with_keys(node)[1]))


def _sorted_keys(keys: list) -> bool:
    try:
        return all(a < b for a, b in itertools.pairwise(keys))
    except TypeError:
        return False


def _in_insertion_order(tree: Any, leaf: Callable[[Any], bool]) -> Any:
    """``tree`` with each dict whose keys are not in sorted order, through lists, tuples, named tuples and dicts, an
    :class:`_InsertionOrder`; ``tree`` itself where it has none (the leaves are never copied)."""
    if leaf(tree):
        return tree
    kind = type(tree)
    if kind is dict or kind is collections.defaultdict:
        items = {k: _in_insertion_order(v, leaf) for k, v in tree.items()}
        factory = _PLAIN if kind is dict else tree.default_factory
        if not _sorted_keys(list(tree)):
            return _InsertionOrder(items, factory)
        if all(items[k] is v for k, v in tree.items()):
            return tree
        return items if kind is dict else collections.defaultdict(factory, items)
    if kind is collections.OrderedDict:  # JAX keeps its order; its values may hold dicts
        items = {k: _in_insertion_order(v, leaf) for k, v in tree.items()}
        return tree if all(items[k] is v for k, v in tree.items()) else collections.OrderedDict(items)
    if kind is list or kind is tuple or (isinstance(tree, tuple) and hasattr(tree, "_fields")):
        new = [_in_insertion_order(child, leaf) for child in tree]
        if all(a is b for a, b in zip(new, tree, strict=True)):
            return tree
        return kind(new) if kind is list or kind is tuple else kind(*new)
    return tree


def tree_flatten(tree: Any, is_leaf: Callable | None = None) -> tuple[list, Any]:
    """``(leaves, treespec)`` (the treespec is a ``jax.tree_util.PyTreeDef``); ``None`` is a leaf, and a dict's
    values come in its insertion order, as torch's (dicts nested in other classes: in JAX's order, by sorted keys).
    An in-place function on a leaf taken from a list or dict puts its result back there, as torch's changes the
    tree's tensor.

    >>> from jnn import ops
    >>> tree = {"w": [ops.zeros(2)]}
    >>> leaves, spec = tree_flatten(tree)
    >>> _ = ops.add_(leaves[0], 1.0)
    >>> tree["w"][0].tolist()
    [1.0, 1.0]
    """
    leaf = _leaf(is_leaf)
    leaves, spec = jax.tree_util.tree_flatten(_in_insertion_order(tree, leaf), is_leaf=leaf)
    if isinstance(tree, (dict, list, tuple)) and not leaf(tree):
        _note_elements(tree, leaf)
    return leaves, spec


def tree_unflatten(leaves: Iterable, treespec: Any) -> Any:
    """The tree of ``treespec`` holding ``leaves`` (torch's argument order: leaves first)."""
    return jax.tree_util.tree_unflatten(treespec, list(leaves))


def tree_leaves(tree: Any, is_leaf: Callable | None = None) -> list:
    """The leaves of ``tree``; ``None`` is a leaf. In-place functions on them update the tree (:func:`tree_flatten`)."""
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree: Any, is_leaf: Callable | None = None) -> Any:
    """The treespec of ``tree`` (a ``jax.tree_util.PyTreeDef``, :func:`tree_flatten`'s); ``None`` is a leaf."""
    leaf = _leaf(is_leaf)
    return jax.tree_util.tree_structure(_in_insertion_order(tree, leaf), is_leaf=leaf)
