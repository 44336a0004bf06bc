"""The pytree engine: how a Module becomes leaves and a treedef, and how modules are rebuilt from them.

A module keeps its arrays in three slot dicts, ``_parameters``, ``_buffers`` and ``_modules`` (as torch does);
everything else in its ``__dict__`` is static. :func:`walk` visits every distinct module once and yields

- the leaves: parameters and buffers in ``state_dict`` order, de-duplicated by identity (tied weights are one leaf);
- a :class:`TreeDef`: one node per distinct module (its :class:`ModuleDef` and the leaf/node index of every slot),
  the global forward hooks, the functions stored on modules that refer to modules of the tree (rebound to the
  copies on unflatten, see :class:`TreeDef`), and the leaves held by more than one slot.

A module caches its :class:`ModuleDef` (``_jnn_def``) until its static part changes, and a root caches its last
flattening (``_jnn_flat``) together with the global :data:`generation`, which every change to any module bumps:
flattening an unchanged model, the common case in a jitted training loop, costs O(1). :func:`build` creates fresh
modules from a treedef with straight-line code generated once per slot layout (each module's ``__dict__`` a copy of
its def's template: one C-level dict copy, not an attribute-by-attribute copy); unflattening concrete leaves
makes the root alone (:class:`PendingDict`) and builds the rest when first used.

This file also tracks array identity for in-place-looking initialisation (``jnn.init.normal_(layer.weight)``):
which slots recently handed out which arrays, and which slots share an array (tied weights).
"""

from __future__ import annotations

import gc
import itertools
import types
import weakref
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn._arrays import is_deleted, is_tracer
from jnn.parameter import Buffer, Parameter

# Keys of a module's __dict__ that are not part of its static structure.
DYNAMIC = frozenset({"_parameters", "_buffers", "_modules", "_jnn_def", "_jnn_flat", "_jnn_private"})

# Bumped by every change to any module; cached flattenings are valid while it is unchanged.
generation = [0]


def bump() -> None:
    generation[0] += 1


# The Module class (set by jnn.modules.module, which imports this file).
_module_class: list[type] = []


class Slots(dict):
    """The dict behind ``_parameters``, ``_buffers`` and ``_modules``. Code that writes these dicts directly (as
    torch's parametrize and user code do) changes the model, so every write drops the cached flattenings; a
    :class:`Parameter` or :class:`Buffer` written here is stored as the array it wraps."""

    __slots__ = ()

    def __setitem__(self, key: str, value: Any) -> None:
        generation[0] += 1
        if isinstance(value, (Parameter, Buffer)):
            value = value.data
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        generation[0] += 1
        dict.__delitem__(self, key)

    def pop(self, *args: Any) -> Any:
        generation[0] += 1
        return dict.pop(self, *args)

    def popitem(self) -> tuple:
        generation[0] += 1
        return dict.popitem(self)

    def clear(self) -> None:
        generation[0] += 1
        dict.clear(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> Slots:
        self.update(other)
        return self

    def __reduce__(self) -> tuple:  # pickles and deep-copies as a plain dict's items
        return (Slots, (dict(self),))


# Global forward hooks (torch's ``register_module_forward_hook`` & co.), mutated in place. Their ids go into every
# treedef, so jitted functions taking a module retrace when one is added or removed.
global_forward_pre_hooks: dict[int, Callable] = {}
global_forward_hooks: dict[int, Callable] = {}
global_forward_hooks_with_kwargs: dict[int, bool] = {}
global_forward_hooks_always_called: dict[int, bool] = {}


def global_hook_ids() -> tuple:
    if not (global_forward_pre_hooks or global_forward_hooks):
        return ()
    return (*global_forward_pre_hooks, None, *global_forward_hooks)


# ---------------------------------------------------------------------------------------------------------
# Static structure


def static_equal(a: Any, b: Any) -> bool:
    """Equality of two static attribute values: identity, else same type and ``==`` (False if that fails)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # arrays, objects with odd __eq__: only identity counts
        return False


def static_hash(value: Any) -> int:
    try:
        return hash(value)
    except TypeError:
        return hash(type(value))


def _module_refs(value: Any) -> tuple | None:
    """Where a stored function refers to modules: a bound method's ``__self__`` (-> ``()``), or the closure
    cells (``i``) and defaults (``-1 - i``) holding a module; None if it refers to none."""
    module_class = _module_class[0]
    if isinstance(value, types.MethodType):
        return () if isinstance(value.__self__, module_class) else None
    if not isinstance(value, types.FunctionType):
        return None
    where = []
    for i, cell in enumerate(value.__closure__ or ()):
        try:
            if isinstance(cell.cell_contents, module_class):
                where.append(i)
        except ValueError:  # an empty cell
            continue
    where += [-1 - i for i, v in enumerate(value.__defaults__ or ()) if isinstance(v, module_class)]
    return tuple(where) if where else None


class ModuleDef:
    """Class, static attributes and slot names of one module. Equal defs mean the same traced program.

    ``template`` is the static part as a dict, copied into every module built from this def; ``functions``
    names the static attributes that are functions referring to modules (see :class:`TreeDef`).
    """

    __slots__ = ("cls", "static", "params", "buffers", "children", "template", "functions", "_hash")

    def __init__(self, module: Any) -> None:
        d = module.__dict__
        self.cls = type(module)
        self.static = tuple((k, v) for k, v in d.items() if k not in DYNAMIC)
        self.params = tuple(d["_parameters"])
        self.buffers = tuple(d["_buffers"])
        self.children = tuple(d["_modules"])
        self.template = dict(self.static)
        self.functions = tuple(k for k, v in self.static if callable(v) and _module_refs(v) is not None)
        self._hash = hash(
            (self.cls, self.params, self.buffers, self.children)
            + tuple((k, static_hash(v)) for k, v in self.static)
        )

    def describes(self, module: Any) -> bool:
        """Still true of ``module``: same class and slot names (static attributes change through setattr, which
        drops the cached def; slot dicts can be written directly)."""
        d = module.__dict__
        return (
            self.cls is type(module)
            and self.params == tuple(d["_parameters"])
            and self.buffers == tuple(d["_buffers"])
            and self.children == tuple(d["_modules"])
        )

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, ModuleDef) or self._hash != other._hash:
            return False
        return (
            self.cls is other.cls
            and self.params == other.params
            and self.buffers == other.buffers
            and self.children == other.children
            and len(self.static) == len(other.static)
            and all(
                k1 == k2 and static_equal(v1, v2)
                for (k1, v1), (k2, v2) in zip(self.static, other.static, strict=True)
            )
        )


class TreeDef:
    """The whole module graph: one node per distinct module, ``(ModuleDef, param slots, buffer slots, child
    slots)``, each slot a leaf or node index (-1: None).

    ``global_hooks`` is the set of global forward hooks at flattening time. ``functions`` lists the functions
    stored on modules that refer to modules of this tree (minGPT's ``self.mlpf = lambda x: m.c_proj(...)`` with
    ``m = self.mlp``, or a bound method ``self.f = self.mlp.forward``): ``(node, attribute, ((where, target
    node), ...))``. A rebuilt module gets a copy of such a function that refers to the rebuilt modules, so
    transformations see (and differentiate) the copies' arrays, not the original's. ``shared`` lists the slots
    of each leaf held by more than one slot (tied weights): ``((node, attribute), ...)`` per leaf.
    """

    __slots__ = ("nodes", "num_leaves", "global_hooks", "functions", "shared", "_hash", "_builder")

    def __init__(self, nodes: tuple, num_leaves: int, global_hooks: tuple = (), functions: tuple = (),
                 shared: tuple = ()) -> None:
        self.nodes = nodes
        self.num_leaves = num_leaves
        self.global_hooks = global_hooks
        self.functions = functions
        self.shared = shared
        self._hash = hash((nodes, global_hooks, functions))
        self._builder: tuple | None = None

    def builder(self) -> tuple[Callable, tuple]:
        """What :func:`build` runs: the generated function for this tree's slot layout (shared by every tree with
        the same layout) and the per-node constants it takes, (class, static template, def) for each node."""
        if self._builder is None:
            layout = tuple((m.params, p, m.buffers, b, m.children, c) for m, p, b, c in self.nodes)
            function = _builders.get(layout)
            if function is None:
                if len(_builders) >= 256:
                    _builders.clear()
                function = _builders[layout] = _generate_builder(layout)
            constants = tuple(value for m, *_ in self.nodes for value in (m.cls, m.template, m))
            self._builder = (function, constants)
        return self._builder

    def __reduce__(self) -> tuple:  # without the generated builder
        return TreeDef, (self.nodes, self.num_leaves, self.global_hooks, self.functions, self.shared)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, TreeDef) and self._hash == other._hash and self.nodes == other.nodes
            and self.global_hooks == other.global_hooks and self.functions == other.functions
        )

    def __repr__(self) -> str:
        return f"ModuleTreeDef({self.nodes[0][0].cls.__name__}, {len(self.nodes)} modules, {self.num_leaves} leaves)"


def static_def(module: Any) -> ModuleDef:
    """``module``'s cached ModuleDef, made anew if missing or out of date."""
    d = module.__dict__
    mdef = d.get("_jnn_def")
    if mdef is None or not mdef.describes(module):
        mdef = d["_jnn_def"] = ModuleDef(module)
    return mdef


def walk(root: Any, with_names: bool) -> tuple[list, TreeDef, list[str] | None]:
    """Visit every distinct module once; return leaves (deduplicated by identity), treedef and leaf names."""
    if _unchecked:
        check_written_data()
    leaves: list = []
    names: list[str] | None = [] if with_names else None
    leaf_index: dict[int, int] = {}
    node_index: dict[int, int] = {}
    nodes: list = []
    first_slot: dict[int, tuple] = {}
    shared: dict[int, list] = {}
    with_functions: list = []

    def slot(value: Any, name: str, node: int, attr: str) -> int:
        if value is None:
            return -1
        # Arrays are de-duplicated by identity (tied weights are one leaf); other leaves (e.g. the bools of a
        # tree_map'ed mask) are interned by Python and must not be merged.
        tied = isinstance(value, (jax.Array, np.ndarray))
        i = leaf_index.get(id(value)) if tied else None
        if i is None:
            i = len(leaves)
            if tied:
                leaf_index[id(value)] = i
                first_slot[i] = (node, attr)
            leaves.append(value)
            if names is not None:
                names.append(name)
        else:
            shared.setdefault(i, [first_slot[i]]).append((node, attr))
        return i

    def visit(module: Any, prefix: str) -> int:
        index = node_index[id(module)] = len(nodes)
        nodes.append(None)
        d = module.__dict__
        mdef = static_def(module)
        if mdef.functions:
            with_functions.append((index, module, mdef))
        params = tuple(slot(v, prefix + k, index, k) for k, v in d["_parameters"].items())
        buffers = tuple(slot(v, prefix + k, index, k) for k, v in d["_buffers"].items())
        children = []
        for k, child in d["_modules"].items():
            if child is None:
                children.append(-1)
            else:
                seen = node_index.get(id(child))
                children.append(seen if seen is not None else visit(child, prefix + k + "."))
        nodes[index] = (mdef, params, buffers, tuple(children))
        return index

    visit(root, "")
    functions = []
    for index, module, mdef in with_functions:
        for attr in mdef.functions:
            value = module.__dict__[attr]
            refs = _module_refs(value)
            if refs is None:
                continue
            if refs == ():  # a bound method
                targets = ((0, node_index.get(id(value.__self__))),)
            else:
                cells, defaults = value.__closure__, value.__defaults__
                held = [cells[w].cell_contents if w >= 0 else defaults[-1 - w] for w in refs]
                targets = tuple((w, node_index.get(id(m))) for w, m in zip(refs, held, strict=True))
            targets = tuple((w, n) for w, n in targets if n is not None)
            if targets:
                functions.append((index, attr, targets))
    shared_slots = tuple(tuple(group) for group in shared.values())
    treedef = TreeDef(tuple(nodes), len(leaves), global_hook_ids(), tuple(functions), shared_slots)
    return leaves, treedef, names


def _rebound(value: Any, targets: tuple, modules: list) -> Any:
    """``value`` (a function or bound method referring to modules) referring to ``modules[node]`` instead."""
    if isinstance(value, types.MethodType):
        return types.MethodType(value.__func__, modules[targets[0][1]])
    cells = list(value.__closure__ or ())
    defaults = list(value.__defaults__ or ())
    for where, node in targets:
        if where >= 0:
            cells[where] = types.CellType(modules[node])
        else:
            defaults[-1 - where] = modules[node]
    new = types.FunctionType(value.__code__, value.__globals__, value.__name__, tuple(defaults) or None,
                             tuple(cells) or None)
    new.__kwdefaults__ = value.__kwdefaults__
    new.__qualname__ = value.__qualname__
    new.__dict__.update(value.__dict__)
    return new


# Generated builders by slot layout: straight-line code that creates every module of a tree, half the time of a
# loop over the nodes (unflattening the model and its optimizer state is the module-as-pytree step's overhead).
_builders: dict[tuple, Callable] = {}


def _generate_builder(layout: tuple) -> Callable:
    """``build(L, K)``: the modules of a tree with this layout, from leaves ``L`` and constants ``K``."""
    def slots(names: tuple, indices: tuple, value: str) -> str:  # value: "L[{}]" (a leaf) or "m{}" (a module)
        items = ", ".join(f"{name!r}: {'None' if i < 0 else value.format(i)}"
                          for name, i in zip(names, indices, strict=True))
        return f"Slots({{{items}}})" if items else "Slots()"

    lines = ["def build(L, K, R=None):"]  # R: a pending root to fill (its __dict__ holds the static part)
    for n, (pnames, params, bnames, buffers, _, _) in enumerate(layout):
        made = f"m{n} = new(K[{3 * n}]); d{n} = K[{3 * n + 1}].copy()"
        if n == 0:  # the root: a pending one is filled in place
            made = f"if R is None:\n        {made}\n    else:\n        m0 = R; d0 = R.__dict__"
        lines += [f"    {made}",
                  f"    d{n}['_parameters'] = {slots(pnames, params, 'L[{}]')}",
                  f"    d{n}['_buffers'] = {slots(bnames, buffers, 'L[{}]')}",
                  f"    d{n}['_jnn_def'] = K[{3 * n + 2}]",
                  f"    set_dict(m{n}, '__dict__', d{n})"]
    lines += [f"    d{n}['_modules'] = {slots(cnames, children, 'm{}')}"
              for n, (*_, cnames, children) in enumerate(layout)]
    lines.append(f"    return [{', '.join(f'm{n}' for n in range(len(layout)))}]")
    namespace = {"Slots": Slots, "new": object.__new__, "set_dict": object.__setattr__}
    exec(compile("\n".join(lines), "<jnn module builder>", "exec"), namespace)  # noqa: S102 (our own code)
    return namespace["build"]


class PendingDict(dict):
    """The ``__dict__`` of a root unflattened lazily: its static part, and its cached flattening, so that the next
    flattening (the next step of a jitted training loop) is O(1) without a module built. The rest of the tree
    is built the first time anything else reads or writes this dict; reading attributes that are not in it
    goes through ``Module.__getattr__``, which reads it. Most unflattened trees (a training step's model and
    optimizer state) are only ever flattened again."""

    __slots__ = ("pending",)

    def __init__(self, static: dict, root: Any, treedef: TreeDef, leaves: list) -> None:
        super().__init__(static)
        self.pending: tuple | None = (weakref.ref(root), treedef, leaves)  # weak: no cycle keeps the arrays alive

    def materialize(self) -> None:
        if self.pending is not None:
            root, treedef, leaves = self.pending
            self.pending = None
            build(treedef, leaves, root())

    def __missing__(self, key: str) -> Any:
        if self.pending is None:
            raise KeyError(key)
        self.materialize()
        return self[key]

    def get(self, key: str, default: Any = None) -> Any:
        if self.pending is not None and not dict.__contains__(self, key):
            self.materialize()
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        if self.pending is not None and not dict.__contains__(self, key):
            self.materialize()
        return dict.__contains__(self, key)

    def __reduce_ex__(self, protocol: Any) -> tuple:  # pickles (and copies) as the plain dict it becomes
        self.materialize()
        return dict, (dict(self),)

    __reduce__ = __reduce_ex__  # type: ignore[assignment]
    __hash__ = None  # type: ignore[assignment]


def _building_first(name: str) -> Callable:
    """``dict.name`` for a :class:`PendingDict`, building the tree first."""
    method = getattr(dict, name)

    def call(self: PendingDict, *args: Any, **kwargs: Any) -> Any:
        if self.pending is not None:
            self.materialize()
        return method(self, *args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


for _name in ("__iter__", "__len__", "__reversed__", "keys", "values", "items", "copy", "pop", "popitem",
              "setdefault", "update", "__delitem__", "__eq__", "__ne__", "__or__", "__ior__", "__repr__"):
    setattr(PendingDict, _name, _building_first(_name))
del _name


def build(treedef: TreeDef, leaves: list, root: Any = None) -> list:
    """Create fresh module objects for a treedef and leaves; returns them in node order (root first). ``root``:
    a pending root (see :class:`PendingDict`) to fill instead of making one."""
    function, constants = treedef.builder()
    collecting = gc.isenabled()  # many small allocations at once: a collection pass in the middle costs a quarter
    gc.disable()
    try:
        modules = function(leaves, constants, root)
    finally:
        if collecting:
            gc.enable()
    for node, attr, targets in treedef.functions:
        d = modules[node].__dict__
        d[attr] = _rebound(d[attr], targets, modules)
    if treedef.shared and not is_tracer(leaves[0]):
        for group in treedef.shared:
            note_shared([(modules[node], attr) for node, attr in group])
    if root is None:
        modules[0].__dict__["_jnn_flat"] = (generation[0], tuple(leaves), treedef)
    return modules


def flatten(module: Any) -> tuple[tuple, TreeDef]:
    if _unchecked:
        check_written_data()
    d = module.__dict__
    cached = d.get("_jnn_flat")
    if cached is None or cached[0] != generation[0]:
        leaves, treedef, _ = walk(module, with_names=False)
        cached = d["_jnn_flat"] = (generation[0], tuple(leaves), treedef)
    leaves = cached[1]
    if leaves and is_deleted(leaves[0]):
        raise DeletedArrayError(deleted_message(f"{type(module).__name__} (passed to a JAX transformation)"))
    return leaves, cached[2]


def flatten_with_keys(module: Any) -> tuple[list, TreeDef]:
    leaves, treedef, names = walk(module, with_names=True)
    return [(jax.tree_util.GetAttrKey(n), v) for n, v in zip(names, leaves, strict=True)], treedef


def unflatten(treedef: TreeDef, leaves: Any) -> Any:
    leaves = list(leaves)
    if treedef.functions or treedef.shared or not leaves or is_tracer(leaves[0]):
        return build(treedef, leaves)[0]  # traced code reads the modules at once; the rest needs them made
    function, constants = treedef.builder()
    root = object.__new__(constants[0])
    d = PendingDict(constants[1], root, treedef, leaves)
    dict.__setitem__(d, "_jnn_flat", (generation[0], tuple(leaves), treedef))
    object.__setattr__(root, "__dict__", d)
    return root


def register(cls: type) -> None:
    """Make ``cls`` (a Module class) a JAX pytree."""
    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten_func=flatten)


class DeletedArrayError(RuntimeError):
    """A module's array was deleted (donated to a jitted step)."""


def deleted_message(where: str) -> str:
    return (
        f"{where}: this array was deleted because it was donated to a jitted step (jax.jit(..., donate_argnums=...), "
        "as jnn's training steps do); its trained value is what the step returned. Rebuild the model from the "
        "returned arrays with `model = jnn.merge(apply, params, buffers)`, or keep using the module the step "
        "returned."
    )


# ---------------------------------------------------------------------------------------------------------
# Array identity: which slot handed out an array, which slots share one (for jnn.init's write-back)

# The slots whose arrays were handed out (attribute access, named_parameters/buffers, state_dict), keyed by the
# array's id: id(array) -> (weak reference to the module, slot name), the last _HANDOUTS handouts in order. Weak, so
# no module, and no traced array, is kept alive by it; a stale id is harmless (a slot must still hold the array).
_recent_handouts: dict[int, tuple] = {}
_HANDOUTS = 4096

# Slots sharing an array (tied weights): id(array) -> [(weak reference to a module, slot name), ...].
_shared: dict[int, list] = {}
_shared_size = [64]


# The handouts not yet checked for a written ``.data`` (see adopt_data), as (weak reference, slot name).
_unchecked: list[tuple] = []
_NO_ATTRIBUTES: dict = {}


def note_handout(module: Any, name: str, value: Any) -> None:
    """``module.name`` (which holds ``value``) was just read: an in-place write to ``value`` goes back there."""
    handouts = _recent_handouts
    handouts.pop(id(value), None)
    entry = handouts[id(value)] = (weakref.ref(module), name)
    if len(handouts) > _HANDOUTS:
        del handouts[next(iter(handouts))]
    _unchecked.append(entry)
    if len(_unchecked) > _HANDOUTS:
        check_written_data()


def adopt_data(module: Any, name: str, value: Any) -> Any:
    """torch's ``p.data = v`` written on the array ``value`` that ``module.name`` handed out (a JAX array accepts
    the attribute and ignores it): the slot, and the slots tied to it, take ``v``, which is returned; ``value``
    where no ``.data`` was written. Called where jnn reads a slot (attribute access, ``named_parameters``,
    ``state_dict``) and, for the slots handed out since, before a flattening (:func:`check_written_data`)."""
    data = getattr(value, "__dict__", _NO_ATTRIBUTES).get("data")
    if data is None or data is value:
        return value
    if not isinstance(data, jax.Array):  # a NumPy array: converted once, so tied slots take one array
        data = value.__dict__["data"] = jnp.asarray(data)
    if not write_back(value, data):
        setattr(module, name, data)
    return data


def check_written_data() -> None:
    """Adopt the ``.data`` written on arrays handed out since the last check (see :func:`adopt_data`)."""
    entries = _unchecked[:]
    _unchecked.clear()
    for ref, name in entries:
        module = ref()
        if module is None:
            continue
        d = module.__dict__
        for slots in ("_parameters", "_buffers"):
            value = d[slots].get(name)
            if value is not None and "data" in getattr(value, "__dict__", _NO_ATTRIBUTES):
                adopt_data(module, name, value)


def _holds(module: Any, name: str, value: Any) -> bool:
    d = module.__dict__
    return d["_parameters"].get(name) is value or d["_buffers"].get(name) is value


def note_shared(slots: list[tuple[Any, str]]) -> None:
    """Record that these (module, slot name) pairs hold the same array."""
    value = slots[0][0].__dict__["_parameters"].get(slots[0][1])
    if value is None:
        value = slots[0][0].__dict__["_buffers"].get(slots[0][1])
    group = _shared.setdefault(id(value), [])
    for module, name in slots:
        if not any(ref() is module and n == name for ref, n in group):
            group.append((weakref.ref(module), name))
    if len(_shared) > _shared_size[0]:  # drop groups whose modules are gone or no longer share the array
        for key, entries in list(_shared.items()):
            if sum(1 for ref, _ in entries if ref() is not None) < 2:
                del _shared[key]
        _shared_size[0] = 2 * len(_shared) + 64


def note_assigned(module: Any, name: str, value: Any) -> None:
    """``value`` was just stored in ``module.name``: if a slot that recently handed it out still holds it, the
    two slots are now tied (``emb.weight = lin.weight``)."""
    entry = _recent_handouts.get(id(value))
    if entry is None or is_tracer(value):
        return
    other, other_name = entry[0](), entry[1]
    if other is not None and (other is not module or other_name != name) and _holds(other, other_name, value):
        note_shared([(other, other_name), (module, name)])


def moved(old_to_new: dict[int, Any]) -> None:
    """Arrays were replaced (``id(old) -> new``): the shared groups follow them."""
    for key in [k for k in old_to_new if k in _shared]:
        _shared[id(old_to_new[key])] = _shared.pop(key)


# The list and dict elements whose arrays torch's pytree functions handed out (``jnn.ops.utils._pytree``'s
# tree_flatten and tree_leaves: ema-pytorch's EMAPytree lerps the leaves of its trees in place), keyed by the array's
# id: id(array) -> (container, key, flattening), for the trees of the last _ELEMENT_TREES flattenings (flattening ->
# the ids it noted). A list or dict takes no weak reference, so those trees' containers are kept alive until then; a
# stale entry is harmless (the element must still hold the array).
_element_handouts: dict[int, tuple] = {}
_element_trees: dict[int, list[int]] = {}
_ELEMENT_TREES = 8
_flattenings = itertools.count()


def note_elements(elements: list[tuple[list | dict, Any, Any]]) -> None:
    """``(container, key, value)`` for the arrays of one flattened tree, ``container[key]`` holding ``value``: an
    in-place write to ``value`` goes there. Only the last ``_ELEMENT_TREES`` trees' elements are remembered."""
    flattening = next(_flattenings)
    ids = _element_trees[flattening] = []
    for container, key, value in elements:
        _element_handouts[id(value)] = (container, key, flattening)
        ids.append(id(value))
    while len(_element_trees) > _ELEMENT_TREES:
        oldest = next(iter(_element_trees))
        for i in _element_trees.pop(oldest):
            entry = _element_handouts.get(i)
            if entry is not None and entry[2] == oldest:
                del _element_handouts[i]


def _write_element(old: Any, new: Any) -> bool:
    """Put ``new`` in the list or dict element that recently handed ``old`` out, if it still holds it."""
    entry = _element_handouts.get(id(old))
    if entry is None:
        return False
    container, key, flattening = entry
    try:
        if container[key] is not old:
            return False
    except (IndexError, KeyError):
        return False
    container[key] = new
    if flattening in _element_trees:  # ``p.mul_(m).add_(q)`` writes twice
        _element_handouts[id(new)] = entry
        _element_trees[flattening].append(id(new))
    return True


def write_back(old: Any, new: Any) -> bool:
    """Put ``new`` in every slot holding ``old``, starting from the slot that recently handed ``old`` out (tied
    slots included), and count ``new`` as handed out by it (``p.mul_(m).add_(q)`` writes twice); also in the list
    or dict element that handed it out (:func:`note_elements`). False if no slot or element did."""
    element = bool(_element_handouts) and _write_element(old, new)
    entry = _recent_handouts.get(id(old))
    module = None if entry is None else entry[0]()
    if module is None or not _holds(module, entry[1], old):
        return element
    slots = [(module, entry[1])]
    for ref, name in _shared.pop(id(old), ()):
        module = ref()
        if module is not None and _holds(module, name, old) and not any(m is module and n == name for m, n in slots):
            slots.append((module, name))
    for module, name in slots:
        setattr(module, name, new)
    note_handout(slots[0][0], slots[0][1], new)
    if len(slots) > 1:
        note_shared(slots)
    return True
