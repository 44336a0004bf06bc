"""The Module core: torch.nn.Module's API over immutable JAX arrays, and every Module a JAX pytree.

A module keeps its parameters, buffers and children in ``_parameters``, ``_buffers`` and ``_modules``
(as PyTorch does); everything else in its ``__dict__`` is static. Flattening a module walks its tree once
and yields the arrays, de-duplicated by identity (tied weights are one leaf), in ``state_dict`` order; the
structure and static attributes travel in the treedef, so ``jax.jit`` retraces when they change (for
instance ``.train()`` / ``.eval()``).
"""

from __future__ import annotations

import gc
import itertools
import warnings
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnn._arrays import (
    as_array,
    as_dtype,
    check_float_dtype,
    is_array,
    is_tracer,
    resolve_device,
    shape_text,
)
from jnn.parameter import Buffer, Parameter, is_lazy

__all__ = ["Module", "Parameter", "Buffer"]

Array = jax.Array


# The array/dtype/device helpers under the names the layer files import.
_is_array = is_array
_as_array = as_array
_is_tracer = is_tracer
_as_dtype = as_dtype
_check_float_dtype = check_float_dtype
_resolve_device = resolve_device
_shape_text = shape_text


def _addindent(text: str, spaces: int) -> str:
    first, *rest = text.split("\n")
    if not rest:
        return text
    return "\n".join([first] + [(" " * spaces + line) if line.strip() else "" for line in rest])


class _IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"

    __str__ = __repr__


# ---------------------------------------------------------------------------------------------------------
# Static structure of one module, cached on it until an attribute changes.

_DYNAMIC = frozenset({"_parameters", "_buffers", "_modules", "_jnn_def", "_jnn_flat", "_jnn_private"})

# Bumped by every change to any module. A root module caches its last flattening together with this number,
# so flattening an unchanged model (the common case in a jitted training loop) costs O(1).
_generation = [0]


def _bump() -> None:
    _generation[0] += 1


class _Slots(dict):
    """The dict behind ``_parameters``, ``_buffers`` and ``_modules``. Code that writes these dicts directly (as
    torch's parametrize and user code do) changes the model, so every write drops the cached flattenings; a
    :class:`Parameter` or :class:`Buffer` written here is stored as the array it wraps."""

    __slots__ = ()

    def __setitem__(self, key: str, value: Any) -> None:
        _generation[0] += 1
        if isinstance(value, (Parameter, Buffer)):
            value = value.data
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        _generation[0] += 1
        dict.__delitem__(self, key)

    def pop(self, *args: Any) -> Any:
        _generation[0] += 1
        return dict.pop(self, *args)

    def popitem(self) -> tuple:
        _generation[0] += 1
        return dict.popitem(self)

    def clear(self) -> None:
        _generation[0] += 1
        dict.clear(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> _Slots:
        self.update(other)
        return self

    def __reduce__(self) -> tuple:  # pickles and deep-copies as a plain dict's items
        return (_Slots, (dict(self),))


# Global forward hooks (torch's ``register_module_forward_hook`` & co.): they run around every module's forward.
# Mutated in place; their ids go into every treedef (``_global_hook_ids``) so jitted functions retrace on change.
_global_forward_pre_hooks: dict[int, Callable] = {}
_global_forward_hooks: dict[int, Callable] = {}
_global_forward_hooks_with_kwargs: dict[int, bool] = {}
_global_forward_hooks_always_called: dict[int, bool] = {}
_GLOBAL_HOOK_SLOTS = {
    "_forward_pre_hooks": _global_forward_pre_hooks,
    "_forward_hooks": _global_forward_hooks,
    "_forward_hooks_with_kwargs": _global_forward_hooks_with_kwargs,
    "_forward_hooks_always_called": _global_forward_hooks_always_called,
}


def _global_hook_ids() -> tuple:
    if not (_global_forward_pre_hooks or _global_forward_hooks):
        return ()
    return (*_global_forward_pre_hooks, None, *_global_forward_hooks)


# The last parameters/buffers handed out (by attribute access or named_parameters/buffers), so that
# ``jnn.init.zeros_(layer.bias)`` can write its result back into the slot the array came from.
_recent_handouts: deque = deque(maxlen=16)


def _write_back(old: Any, new: Any) -> bool:
    """Put ``new`` in the module slot that recently handed out ``old``; False if there is none."""
    for module, name, value in reversed(_recent_handouts):
        if value is old:
            d = module.__dict__
            if d["_parameters"].get(name) is old or d["_buffers"].get(name) is old:
                setattr(module, name, new)
                return True
    return False


def _static_equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # arrays, objects with odd __eq__: only identity counts
        return False


def _static_hash(value: Any) -> int:
    try:
        return hash(value)
    except TypeError:
        return hash(type(value))


class _ModuleDef:
    """Class, static attributes and slot names of one module. Equal defs mean the same traced program."""

    __slots__ = ("cls", "static", "params", "buffers", "children", "_hash")

    def __init__(self, module: Module) -> None:
        d = module.__dict__
        self.cls = type(module)
        self.static = tuple((k, v) for k, v in d.items() if k not in _DYNAMIC)
        self.params = tuple(d["_parameters"])
        self.buffers = tuple(d["_buffers"])
        self.children = tuple(d["_modules"])
        self._hash = hash(
            (self.cls, self.params, self.buffers, self.children)
            + tuple((k, _static_hash(v)) for k, v in self.static)
        )

    def describes(self, module: Module) -> bool:
        """Still true of ``module``: same class and slot names (the static attributes change through setattr)."""
        d = module.__dict__
        return (
            self.cls is type(module)
            and len(self.params) == len(d["_parameters"]) and self.params == tuple(d["_parameters"])
            and len(self.buffers) == len(d["_buffers"]) and self.buffers == tuple(d["_buffers"])
            and len(self.children) == len(d["_modules"]) and self.children == tuple(d["_modules"])
        )

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, _ModuleDef) or self._hash != other._hash:
            return False
        return (
            self.cls is other.cls
            and self.params == other.params
            and self.buffers == other.buffers
            and self.children == other.children
            and len(self.static) == len(other.static)
            and all(
                k1 == k2 and _static_equal(v1, v2)
                for (k1, v1), (k2, v2) in zip(self.static, other.static, strict=True)
            )
        )


class _TreeDef:
    """The whole module graph: one node per distinct module, slots pointing at leaf or node indices (-1: None).

    ``global_hooks`` is the set of global forward hooks at flattening time (their ids), so that a jitted function
    taking a module retraces when ``register_module_forward_hook`` & co. add or remove one.
    """

    __slots__ = ("nodes", "num_leaves", "global_hooks", "_hash")

    def __init__(self, nodes: tuple, num_leaves: int, global_hooks: tuple = ()) -> None:
        self.nodes = nodes
        self.num_leaves = num_leaves
        self.global_hooks = global_hooks
        self._hash = hash((nodes, global_hooks))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, _TreeDef) and self._hash == other._hash and self.nodes == other.nodes
            and self.global_hooks == other.global_hooks
        )

    def __repr__(self) -> str:
        return f"ModuleTreeDef({self.nodes[0][0].cls.__name__}, {len(self.nodes)} modules, {self.num_leaves} leaves)"


def _walk(root: Module, with_names: bool) -> tuple[list, _TreeDef, list[str] | None]:
    """Visit every distinct module once; return leaves (deduplicated by identity), treedef and leaf names."""
    leaves: list = []
    names: list[str] | None = [] if with_names else None
    leaf_index: dict[int, int] = {}
    node_index: dict[int, int] = {}
    nodes: list = []

    def slot(value: Any, name: str) -> int:
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
            leaves.append(value)
            if names is not None:
                names.append(name)
        return i

    def visit(module: Module, prefix: str) -> int:
        index = node_index[id(module)] = len(nodes)
        nodes.append(None)
        d = module.__dict__
        mdef = d.get("_jnn_def")
        if mdef is None or not mdef.describes(module):  # new keys written straight into the slot dicts
            mdef = module._static_def()
        params = tuple(slot(v, prefix + k) for k, v in d["_parameters"].items())
        buffers = tuple(slot(v, prefix + k) for k, v in d["_buffers"].items())
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
    return leaves, _TreeDef(tuple(nodes), len(leaves), _global_hook_ids()), names


def _build(treedef: _TreeDef, leaves: list) -> list[Module]:
    """Create fresh module objects for a treedef and leaves; returns them in node order (root first)."""
    if gc.isenabled():  # many small allocations at once: a collection pass in the middle would cost a quarter
        gc.disable()
        try:
            return _build(treedef, leaves)
        finally:
            gc.enable()
    modules = []
    for mdef, params, buffers, _ in treedef.nodes:
        module = object.__new__(mdef.cls)
        d = module.__dict__
        d.update(mdef.static)
        d["_parameters"] = _Slots({k: leaves[i] if i >= 0 else None for k, i in zip(mdef.params, params, strict=True)})
        d["_buffers"] = _Slots({k: leaves[i] if i >= 0 else None for k, i in zip(mdef.buffers, buffers, strict=True)})
        d["_jnn_def"] = mdef
        modules.append(module)
    for module, (mdef, _, _, children) in zip(modules, treedef.nodes, strict=True):
        module.__dict__["_modules"] = _Slots({
            k: (modules[i] if i >= 0 else None) for k, i in zip(mdef.children, children, strict=True)
        })
    modules[0].__dict__["_jnn_flat"] = (_generation[0], tuple(leaves), treedef)
    return modules


def _flatten(module: Module) -> tuple[tuple, _TreeDef]:
    d = module.__dict__
    cached = d.get("_jnn_flat")
    if cached is not None and cached[0] == _generation[0]:
        return cached[1], cached[2]
    leaves, treedef, _ = _walk(module, with_names=False)
    d["_jnn_flat"] = (_generation[0], tuple(leaves), treedef)
    return d["_jnn_flat"][1], treedef


def _flatten_with_keys(module: Module) -> tuple[list, _TreeDef]:
    leaves, treedef, names = _walk(module, with_names=True)
    return [(jax.tree_util.GetAttrKey(n), v) for n, v in zip(names, leaves, strict=True)], treedef


def _unflatten(treedef: _TreeDef, leaves) -> Module:
    return _build(treedef, list(leaves))[0]


# Key of a module's extra state in its state_dict (torch's name).
_EXTRA_STATE_KEY = "_extra_state"

# The updates of the load_state_dict calls in progress (innermost last): each module's _load_from_state_dict
# appends to it, and the values are written once the whole model has been checked.
_loading: list[list] = []


def _write_loaded(root: Module, updates: list[tuple[Module, str, Any, bool]]) -> None:
    """Write loaded values: ``(module, slot name, value, assign)``. A slot's new array replaces the old one
    everywhere in ``root`` (tied parameters stay tied; later keys win, as with torch's in-place copies), in the
    old array's dtype and placement unless ``assign``; a lazy slot takes the value's shape."""
    replacement: dict[int, Array] = {}
    for module, name, incoming, assign in updates:
        if name == _EXTRA_STATE_KEY:
            module.set_extra_state(incoming)
            continue
        d = module.__dict__
        current = d["_parameters"][name] if name in d["_parameters"] else d["_buffers"][name]
        if not (is_array(incoming) or hasattr(incoming, "__dlpack__")):
            incoming = np.asarray(incoming)
        new = as_array(incoming, type(root).__name__, "a state_dict value")
        if is_lazy(current):
            new = new.astype(current.dtype)
            module._materialize_slot(name, new)
            continue
        if not assign:
            new = new.astype(current.dtype)
            # keep a placed (committed) array's sharding; an uncommitted one stays uncommitted, or a jitted
            # step mixing it with uncommitted optimizer state would compile twice
            if not is_tracer(current) and getattr(current, "committed", False):
                new = jax.device_put(new, current.sharding)
        replacement[id(current)] = new
    if replacement:
        root._replace_arrays(lambda value: replacement.get(id(value), value))


# ---------------------------------------------------------------------------------------------------------


class Module:
    """Base class for all neural network modules, with torch.nn.Module's API.

    Subclasses are JAX pytrees automatically: their leaves are the parameters and buffers.

    >>> import jax, jax.numpy as jnp
    >>> import jnn as nn
    >>> import jnn.functional as F
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         return F.relu(self.fc(x))
    >>> net = Net()
    >>> jax.jit(lambda m, x: m(x))(net, jnp.ones((3, 4))).shape
    (3, 2)
    """

    training: bool
    # The version of this class's state_dict layout, saved in ``state_dict()._metadata`` and given back to
    # ``_load_from_state_dict`` as ``local_metadata["version"]`` (torch's convention; BatchNorm has 2).
    _version: int = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_with_keys(cls, _flatten_with_keys, _unflatten, flatten_func=_flatten)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments: Module.__init__() takes none "
                "(did you forget to handle them in your subclass's __init__?)"
            )
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = _Slots()
        d["_buffers"] = _Slots()
        d["_non_persistent_buffers_set"] = frozenset()
        d["_frozen_parameters"] = frozenset()
        d["_modules"] = _Slots()
        # Hooks live in the static part of the pytree and are replaced, never mutated (copy-on-write): copies made
        # by transformations share these dicts, and jax.jit retraces when a hook is added or removed.
        d["_forward_pre_hooks"] = {}
        d["_forward_pre_hooks_with_kwargs"] = {}
        d["_forward_hooks"] = {}
        d["_forward_hooks_with_kwargs"] = {}
        d["_forward_hooks_always_called"] = {}

    forward: Callable[..., Any]

    def _forward_unimplemented(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    forward = _forward_unimplemented

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        d = self.__dict__
        if d.get("_forward_pre_hooks") or d.get("_forward_hooks") or _global_forward_pre_hooks or _global_forward_hooks:
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        """torch's order: global pre-hooks, pre-hooks, forward, global hooks, hooks; ``always_call`` hooks also
        run when something before them raised (their own errors then become warnings)."""
        d = self.__dict__
        output = None
        called: set[int] = set()
        try:
            pre_with_kwargs = d.get("_forward_pre_hooks_with_kwargs", {})
            for hook_id, hook in (*_global_forward_pre_hooks.items(), *d.get("_forward_pre_hooks", {}).items()):
                if hook_id in pre_with_kwargs:
                    result = hook(self, args, kwargs)
                    if result is not None:
                        if not (isinstance(result, tuple) and len(result) == 2):
                            raise RuntimeError(
                                "forward pre-hook must return None or a tuple of (new_args, new_kwargs), but got "
                                f"{result}."
                            )
                        args, kwargs = result
                else:
                    result = hook(self, args)
                    if result is not None:
                        args = result if isinstance(result, tuple) else (result,)
            output = self.forward(*args, **kwargs)
            for hook_id, hook, with_kwargs, always in self._forward_hook_entries():
                if always:
                    called.add(hook_id)
                result = hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
                if result is not None:
                    output = result
        except Exception:
            for hook_id, hook, with_kwargs, always in self._forward_hook_entries():
                if not always or hook_id in called:
                    continue
                try:
                    result = hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
                    if result is not None:
                        output = result
                except Exception as error:
                    warnings.warn(
                        f"{'global module' if hook_id in _global_forward_hooks else 'module'} forward hook with "
                        "``always_call=True`` raised an exception that was silenced as another error was raised "
                        f"in forward: {error}",
                        stacklevel=2,
                    )
            raise
        return output

    def _forward_hook_entries(self) -> list[tuple[int, Callable, bool, bool]]:
        d = self.__dict__
        entries = [
            (i, hook, i in _global_forward_hooks_with_kwargs, i in _global_forward_hooks_always_called)
            for i, hook in _global_forward_hooks.items()
        ]
        with_kwargs, always = d.get("_forward_hooks_with_kwargs", {}), d.get("_forward_hooks_always_called", {})
        entries += [(i, hook, i in with_kwargs, i in always) for i, hook in d.get("_forward_hooks", {}).items()]
        return entries

    # -- static-structure cache --------------------------------------------------------------------------

    def _static_def(self) -> _ModuleDef:
        mdef = self.__dict__["_jnn_def"] = _ModuleDef(self)
        return mdef

    def _changed(self) -> None:
        """Static structure changed: drop this module's cached def (and every cached flattening)."""
        _bump()
        self.__dict__.pop("_jnn_def", None)

    def _set_static(self, name: str, value: Any) -> None:
        self.__dict__[name] = value
        self._changed()

    # -- registration -------------------------------------------------------------------------------------

    def _check_new_name(self, kind: str, name: Any, own: dict) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if "." in name:
            raise KeyError(f"{kind} name can't contain \".\"" + (f", got: {name}" if kind == "module" else ""))
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if hasattr(self, name) and name not in own:
            raise KeyError(f"attribute '{name}' already exists")

    def _leak_check(self, kind: str, name: str, old: Any, new: Any) -> None:
        # Copies made by jnn.split's apply are private to one call (``_jnn_private``): changing them is fine.
        if _is_tracer(new) and old is not None and not _is_tracer(old) and "_jnn_private" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}: a JAX transformation (jit/grad/vmap/scan) tried to store a traced value "
                f"in {kind} '{name}' of a module that holds concrete arrays. This happens when a module is "
                "captured by a closure instead of passed as an argument, and the change would leak tracers "
                "into it. Pass the module in and return it, e.g. `jax.jit(lambda m, x: (m(x), m))(net, x)`, "
                "or use `apply, params, buffers = jnn.split(net)` and take the new buffers from apply."
            )

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add a buffer: an array that is part of the module's state but not trained (e.g. running_mean)."""
        _bump()
        d = self.__dict__
        if "_buffers" not in d:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_new_name("buffer", name, d["_buffers"])
        if tensor is not None:
            if not _is_array(tensor) and not hasattr(tensor, "__dlpack__"):
                raise TypeError(
                    f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                    "(jax.Array, numpy.ndarray or None required)"
                )
            tensor = _as_array(tensor, type(self).__name__, f"buffer '{name}'")
            self._leak_check("buffer", name, d["_buffers"].get(name), tensor)
        is_new = name not in d["_buffers"]
        d["_buffers"][name] = tensor
        nonpersistent = d["_non_persistent_buffers_set"]
        wanted = nonpersistent - {name} if persistent else nonpersistent | {name}
        if is_new or wanted != nonpersistent:
            d["_non_persistent_buffers_set"] = wanted
            self._changed()

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (a :class:`Parameter` or None) under ``name``."""
        _bump()
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_new_name("parameter", name, d["_parameters"])
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(jnn.Parameter or None required)"
            )
        value = None if param is None else param.data
        if value is not None:
            self._leak_check("parameter", name, d["_parameters"].get(name), value)
        is_new = name not in d["_parameters"]
        d["_parameters"][name] = value
        frozen = d["_frozen_parameters"]
        wanted = frozen | {name} if param is not None and not param.requires_grad else frozen - {name}
        if is_new or wanted != frozen:
            d["_frozen_parameters"] = wanted
            self._changed()

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name``."""
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        d = self.__dict__
        if "_modules" not in d:
            raise AttributeError("cannot assign module before Module.__init__() call")
        self._check_new_name("module", name, d["_modules"])
        d["_modules"][name] = module
        self._changed()

    register_module = add_module

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for slots in ("_parameters", "_buffers"):
            own = d.get(slots)
            if own is not None and name in own:
                value = own[name]
                _recent_handouts.append((self, name, value))
                return value
        own = d.get("_modules")
        if own is not None and name in own:
            return own[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value: Any) -> None:
        _bump()
        if name == "__class__":  # torch's parametrize swaps in a subclass that adds properties
            object.__setattr__(self, name, value)
            self._changed()
            return
        d = self.__dict__
        params = d.get("_parameters")

        def remove_from(*slot_dicts: str) -> None:
            if name in d:
                del d[name]
            for s in slot_dicts:
                d[s].pop(name, None)
            if name in d.get("_non_persistent_buffers_set", ()):
                d["_non_persistent_buffers_set"] -= {name}
            self._changed()

        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            remove_from("_buffers", "_modules")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            # JAX arrays are immutable, so assigning an array to a parameter's name replaces its value
            # (keeping requires_grad); PyTorch would demand an nn.Parameter here.
            if value is not None:
                if not _is_array(value) and not hasattr(value, "__dlpack__"):
                    raise TypeError(
                        f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                        "(jnn.Parameter, jax.Array or None expected)"
                    )
                value = _as_array(value, type(self).__name__, f"parameter '{name}'")
                self._leak_check("parameter", name, params[name], value)
            params[name] = value
        elif isinstance(value, Module):
            if d.get("_modules") is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            remove_from("_parameters", "_buffers")
            d["_modules"][name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' (jnn.Module or None expected)"
                )
            d["_modules"][name] = None
        elif isinstance(value, Buffer) or (d.get("_buffers") is not None and name in d["_buffers"]):
            if isinstance(value, Buffer):
                if d.get("_buffers") is None:
                    raise AttributeError("cannot assign buffer before Module.__init__() call")
                remove_from("_parameters", "_modules")
                self.register_buffer(name, value.data, value.persistent)
            else:
                if value is not None and not _is_array(value) and not hasattr(value, "__dlpack__"):
                    raise TypeError(
                        f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                        "(jnn.Buffer, jax.Array, numpy.ndarray or None expected)"
                    )
                if value is not None:
                    value = _as_array(value, type(self).__name__, f"buffer '{name}'")
                    self._leak_check("buffer", name, d["_buffers"][name], value)
                d["_buffers"][name] = value
        else:
            d[name] = value
            if "_jnn_def" in d:
                self._changed()

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        if name in d.get("_parameters", ()):
            del d["_parameters"][name]
            d["_frozen_parameters"] -= {name}
        elif name in d.get("_buffers", ()):
            del d["_buffers"][name]
            d["_non_persistent_buffers_set"] -= {name}
        elif name in d.get("_modules", ()):
            del d["_modules"][name]
        else:
            object.__delattr__(self, name)
        self._changed()

    def __dir__(self) -> list[str]:
        d = self.__dict__
        keys = list(super().__dir__()) + list(d["_parameters"]) + list(d["_buffers"]) + list(d["_modules"])
        return sorted(k for k in set(keys) if not k[0].isdigit())

    # -- traversal ----------------------------------------------------------------------------------------

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """All modules in the tree, pre-order, each once (unless ``remove_duplicate=False``)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(
        self, slots: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Array]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in module.__dict__[slots].items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                _recent_handouts.append((module, name, value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Array]]:
        """(name, array) for every parameter; tied parameters once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Array]:
        for _, value in self.named_parameters(recurse=recurse):
            yield value

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Array]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Array]:
        for _, value in self.named_buffers(recurse=recurse):
            yield value

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def get_submodule(self, target: str) -> Module:
        if target == "":
            return self
        module: Module = self
        for item in target.split("."):
            if not hasattr(module, item):
                raise AttributeError(module._get_name() + " has no attribute `" + item + "`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return module

    def get_parameter(self, target: str) -> Array:
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(module._get_name() + " has no attribute `" + name + "`")
        if name not in module._parameters:
            raise AttributeError("`" + name + "` is not an nn.Parameter")
        return module._parameters[name]

    def get_buffer(self, target: str) -> Array:
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(module._get_name() + " has no attribute `" + name + "`")
        if name not in module._buffers:
            raise AttributeError("`" + name + "` is not a buffer")
        return module._buffers[name]

    # -- modes and trainability ---------------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every submodule; returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            if module.__dict__.get("training") is not mode:
                module._set_static("training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Mark every parameter trainable or frozen. Frozen parameters stay in state_dict but not in
        ``jnn.split``'s trainable dict."""
        for module in self.modules():
            d = module.__dict__
            wanted = frozenset() if requires_grad else frozenset(d["_parameters"])
            if wanted != d["_frozen_parameters"]:
                module._set_static("_frozen_parameters", wanted)
        return self

    def named_trainable_parameters(self) -> Iterator[tuple[str, Array]]:
        """Like ``named_parameters``, leaving out parameters with ``requires_grad=False``."""
        frozen = {id(v) for m in self.modules() for k, v in m._parameters.items() if k in m._frozen_parameters}
        for name, value in self.named_parameters():
            if id(value) not in frozen:
                yield name, value

    # -- state dicts --------------------------------------------------------------------------------------

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        """Put this module's own parameters and persistent buffers (not its children's) into ``destination``.

        Args:
            destination: the dict being filled.
            prefix: the module's name followed by a dot ('' for the root).
            keep_vars: accepted for torch's signature (arrays are values either way).
        """
        d = self.__dict__
        for name, value in d["_parameters"].items():
            if value is not None:
                destination[prefix + name] = value
        nonpersistent = d["_non_persistent_buffers_set"]
        for name, value in d["_buffers"].items():
            if value is not None and name not in nonpersistent:
                destination[prefix + name] = value
        if type(self).get_extra_state is not Module.get_extra_state:
            destination[prefix + _EXTRA_STATE_KEY] = self.get_extra_state()

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Parameters and persistent buffers by name, in PyTorch's order; tied arrays under every name.

        As in torch, the result carries ``_metadata`` (each module's ``version``, keyed by its name), and the
        state-dict hooks run: pre-hooks before a module writes its entries, post-hooks after its children.

        Args:
            destination: a dict to fill (default: a new ``OrderedDict``).
            prefix: put before every key.
            keep_vars: accepted for torch's signature (arrays are values either way).

        >>> import jnn as nn
        >>> sd = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).state_dict()
        >>> list(sd)[:3], sd._metadata["1"]
        (['0.weight', '0.bias', '1.weight'], {'version': 2})
        """
        if args:  # torch's deprecated positional form: state_dict(destination, prefix, keep_vars)
            if len(args) > 3:
                raise TypeError(f"{type(self).__name__}.state_dict() takes at most 3 positional arguments")
            destination, prefix, keep_vars = (*args, *(destination, prefix, keep_vars)[len(args):])
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = {"version": self._version}
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        d = self.__dict__
        for hook in d.get("_state_dict_pre_hooks", {}).values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in d["_modules"].items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        public = d.get("_state_dict_hooks_public", {})
        for hook_id, hook in d.get("_state_dict_hooks", {}).items():
            result = hook(self, destination, prefix, local_metadata)
            if hook_id in public:
                if result is not None:
                    raise RuntimeError("state_dict post-hook must return None")
            elif result is not None:
                destination = result
        return destination

    def get_extra_state(self) -> Any:
        """State beyond parameters and buffers for ``state_dict`` (under the key ``_extra_state``); a module that
        overrides this must override :meth:`set_extra_state` too."""
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called. Please file an issue "
            "at https://github.com/pytorch/pytorch/issues/new?template=bug-report.yml to report this bug."
        )

    def set_extra_state(self, state: Any) -> None:
        """Restore what :meth:`get_extra_state` returned (called by ``load_state_dict``)."""
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called. Please file an issue "
            "at https://github.com/pytorch/pytorch/issues/new?template=bug-report.yml to report this bug."
        )

    def _load_from_state_dict(
        self, state_dict: dict, prefix: str, local_metadata: dict, strict: bool, missing_keys: list[str],
        unexpected_keys: list[str], error_msgs: list[str],
    ) -> None:
        """Load this module's own parameters and buffers (not its children's) from ``state_dict``, as torch
        does: run the load-state-dict pre-hooks, check every key, and record missing/unexpected keys and errors.

        Subclasses override this to rename or drop old checkpoint keys before calling ``super()``'s version
        (``local_metadata.get("version")`` is the saving module's ``_version``). Values are written once
        ``load_state_dict`` has checked the whole model, so a failed load changes nothing.

        Args:
            state_dict: the keys under ``prefix`` (a hook may change it).
            prefix: this module's name followed by a dot ('' for the root).
            local_metadata: this module's entry of ``state_dict._metadata`` (``{"version": ...}``), or ``{}``.
            strict: whether missing and unexpected keys are recorded.
            missing_keys: list to append missing keys to.
            unexpected_keys: list to append unexpected keys to.
            error_msgs: list to append error messages to.
        """
        d = self.__dict__
        with_module = d.get("_load_state_dict_pre_hooks_with_module", {})
        for hook_id, hook in d.get("_load_state_dict_pre_hooks", {}).items():
            args = (state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
            hook(self, *args) if hook_id in with_module else hook(*args)
        local = {k: v for k, v in d["_parameters"].items() if v is not None}
        nonpersistent = d["_non_persistent_buffers_set"]
        local.update((k, v) for k, v in d["_buffers"].items() if v is not None and k not in nonpersistent)
        assign = bool(local_metadata.get("assign_to_params_buffers", False))
        updates: list[tuple[Module, str, Any, bool]] = []
        for name, current in local.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            incoming = state_dict[key]
            if not (is_array(incoming) or hasattr(incoming, "__array__") or hasattr(incoming, "__dlpack__")):
                error_msgs.append(
                    f'While copying the parameter named "{key}", expected an array from checkpoint but '
                    f"received {type(incoming)}"
                )
                continue
            if not is_lazy(current):
                shape = tuple(np.shape(incoming))
                if current.ndim == 0 and shape == (1,):
                    incoming, shape = incoming[0], ()
                if shape != tuple(current.shape):
                    error_msgs.append(
                        f"size mismatch for {key}: copying a param with shape {shape_text(shape)} from "
                        f"checkpoint, the shape in current model is {shape_text(current.shape)}."
                    )
                    continue
            updates.append((self, name, incoming, assign))
        extra_key = prefix + _EXTRA_STATE_KEY
        if type(self).set_extra_state is not Module.set_extra_state:
            if extra_key in state_dict:
                updates.append((self, _EXTRA_STATE_KEY, state_dict[extra_key], assign))
            elif strict:
                missing_keys.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected_keys.append(extra_key)
        if strict:
            modules = d["_modules"]
            for key in state_dict:
                if key.startswith(prefix) and key != extra_key:
                    head = key[len(prefix):].split(".", 1)[0]
                    if head not in modules and head not in local:
                        unexpected_keys.append(key)
        pending = _loading[-1] if _loading else None
        if pending is not None:
            pending.extend(updates)
        else:  # called on its own, outside load_state_dict
            _write_loaded(self, updates)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Copy arrays (numpy, JAX or torch tensors) into this module and its submodules by name.

        As torch: for each module, parents first, ``_load_from_state_dict`` (which runs the module's
        load-state-dict pre-hooks), then its children, then its load-state-dict post-hooks; PyTorch's checks and
        messages. Values are written after the whole model has been checked (a failed load changes nothing),
        in the current array's dtype and placement (``assign=True`` keeps the given dtype). Tied parameters
        stay tied.

        Args:
            state_dict: a mapping from ``state_dict`` names to arrays; its ``_metadata`` (versions) is used.
            strict: whether missing and unexpected keys are errors.
            assign: keep the loaded arrays' dtypes instead of casting them to the current ones.

        Returns:
            ``(missing_keys, unexpected_keys)``, a named tuple.

        >>> import numpy as np, jnn as nn
        >>> fc = nn.Linear(2, 1)
        >>> fc.load_state_dict({"weight": np.ones((1, 2)), "bias": np.zeros(1)})
        <All keys matched successfully>
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing: list[str] = []
        unexpected: list[str] = []
        errors: list[str] = []
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)
        if metadata is not None:
            state_dict._metadata = metadata
        pending: list[tuple[Module, str, Any, bool]] = []

        def load(module: Module, local_state_dict: dict, prefix: str) -> None:
            local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
            if assign:
                local_metadata["assign_to_params_buffers"] = assign
            module._load_from_state_dict(local_state_dict, prefix, local_metadata, True, missing, unexpected, errors)
            for name, child in module.__dict__["_modules"].items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    child_state_dict = {k: v for k, v in local_state_dict.items() if k.startswith(child_prefix)}
                    load(child, child_state_dict, child_prefix)
            incompatible = _IncompatibleKeys(missing, unexpected)
            for hook in module.__dict__.get("_load_state_dict_post_hooks", {}).values():
                if hook(module, incompatible) is not None:
                    raise AssertionError(
                        "Hooks registered with ``register_load_state_dict_post_hook`` are not expected to return "
                        "new values, if incompatible_keys need to be modified, it should be done inplace."
                    )

        _loading.append(pending)
        try:
            load(self, state_dict, "")
        finally:
            _loading.pop()
        if strict:
            if unexpected:
                quoted = ", ".join(f'"{k}"' for k in unexpected)
                errors.insert(0, f"Unexpected key(s) in state_dict: {quoted}. ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing)))
        if errors:
            raise RuntimeError(
                "Error(s) in loading state_dict for {}:\n\t{}".format(type(self).__name__, "\n\t".join(errors))
            )
        _write_loaded(self, pending)
        return _IncompatibleKeys(missing, unexpected)

    def _replace_arrays(self, fn: Callable[[Array], Array]) -> Module:
        """Replace every parameter and buffer by ``fn(value)``, once per distinct array (ties kept)."""
        _bump()
        done: dict[int, Array] = {}
        for module in self.modules():
            d = module.__dict__
            for slots in ("_parameters", "_buffers"):
                own = d[slots]
                for name, value in own.items():
                    if value is None:
                        continue
                    if id(value) not in done:
                        done[id(value)] = fn(value)
                    own[name] = done[id(value)]
        return self

    # -- devices and dtypes -------------------------------------------------------------------------------

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move and/or cast arrays: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(array)``,
        ``to(sharding)``. Casts touch floating-point arrays only (integer buffers keep their dtype)."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("copy", None)
        if kwargs:
            raise TypeError(f"Module.to() got unexpected keyword arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, (jax.Array, np.ndarray)):
                dtype = arg.dtype
                if isinstance(arg, jax.Array) and not _is_tracer(arg):
                    device = arg.sharding
            elif _as_dtype(arg) is not None:
                dtype = _as_dtype(arg)
            elif isinstance(arg, (str, int, jax.Device, jax.sharding.Sharding)) or type(arg).__name__ == "device":
                device = arg
            else:
                raise TypeError(f"Module.to: cannot interpret {arg!r} as a device or dtype")
        target = _resolve_device(device)
        if dtype is not None:
            dtype = _check_float_dtype(dtype, "nn.Module.to")

        def convert(value: Array) -> Array:
            if dtype is not None and jnp.issubdtype(value.dtype, jnp.floating):
                value = value.astype(dtype)
            if target is not None:
                value = jax.device_put(value, target)
            return value

        return self._replace_arrays(convert)

    def cuda(self, device: Any = None) -> Module:
        """Move every array to a GPU (``device`` an index, string or jax.Device)."""
        return self.to("cuda" if device is None else device)

    def cpu(self) -> Module:
        return self.to("cpu")

    def type(self, dst_type: Any) -> Module:
        return self.to(dtype=dst_type)

    def float(self) -> Module:
        return self.to(dtype=jnp.float32)

    def double(self) -> Module:
        return self.to(dtype=jnp.float64)

    def half(self) -> Module:
        return self.to(dtype=jnp.float16)

    def bfloat16(self) -> Module:
        return self.to(dtype=jnp.bfloat16)

    # -- hooks --------------------------------------------------------------------------------------------

    def _add_hook(self, slots: str, hook: Callable, prepend: bool, flags: tuple[str, ...], who: str):
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.{who}: the hook must be callable, got {type(hook).__name__}")
        handle = _RemovableHandle(self, (slots, *flags))
        d = self.__dict__
        hooks = d.get(slots, {})
        self._set_static(slots, {handle.id: hook, **hooks} if prepend else {**hooks, handle.id: hook})
        for flag in flags:
            self._set_static(flag, {**d.get(flag, {}), handle.id: True})
        return handle

    def register_forward_pre_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False
    ) -> _RemovableHandle:
        """Run ``hook(module, args) -> None or new args`` before every ``forward`` (a non-tuple result is wrapped
        in a tuple). With ``with_kwargs=True``: ``hook(module, args, kwargs) -> None or (new_args, new_kwargs)``.
        ``prepend=True`` runs it before the hooks already registered.

        Hooks are part of the module's static pytree structure: they run while ``jax.jit`` traces, and adding or
        removing one makes jit retrace. Returns a handle; ``handle.remove()`` (or a ``with`` block) takes it off.

        >>> import jax.numpy as jnp, jnn as nn
        >>> net = nn.Identity()
        >>> with net.register_forward_pre_hook(lambda module, args: args[0] * 2):
        ...     print(net(jnp.ones(2)))
        [2. 2.]
        >>> print(net(jnp.ones(2)))
        [1. 1.]
        """
        flags = ("_forward_pre_hooks_with_kwargs",) if with_kwargs else ()
        return self._add_hook("_forward_pre_hooks", hook, prepend, flags, "register_forward_pre_hook")

    def register_forward_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False, always_call: bool = False
    ) -> _RemovableHandle:
        """Run ``hook(module, args, output) -> None or new output`` after every ``forward``; with
        ``with_kwargs=True`` the hook is ``hook(module, args, kwargs, output)``. ``always_call=True`` runs it
        even if forward (or an earlier hook) raised. Under ``jax.jit`` the hook runs while tracing: to take
        intermediate outputs out of a jitted function, return them (see :func:`jnn.capture_outputs`).

        >>> import jax.numpy as jnp, jnn as nn
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        >>> shapes = []
        >>> handle = net[1].register_forward_hook(lambda module, args, output: shapes.append(output.shape))
        >>> _ = net(jnp.ones((5, 3)))
        >>> handle.remove()
        >>> shapes
        [(5, 4)]
        """
        flags = (("_forward_hooks_with_kwargs",) if with_kwargs else ()) + (
            ("_forward_hooks_always_called",) if always_call else ()
        )
        return self._add_hook("_forward_hooks", hook, prepend, flags, "register_forward_hook")

    def register_state_dict_pre_hook(self, hook: Callable) -> _RemovableHandle:
        """Run ``hook(module, prefix, keep_vars) -> None`` at the start of every ``state_dict`` call on this
        module (before it writes its entries).

        Args:
            hook: the callable.

        Returns:
            a handle; ``handle.remove()`` takes the hook off.
        """
        return self._add_hook("_state_dict_pre_hooks", hook, False, (), "register_state_dict_pre_hook")

    def register_state_dict_post_hook(self, hook: Callable) -> _RemovableHandle:
        """Run ``hook(module, state_dict, prefix, local_metadata) -> None`` after this module and its children
        have written their entries; the hook may change ``state_dict`` in place.

        Args:
            hook: the callable; it must return None.

        Returns:
            a handle; ``handle.remove()`` takes the hook off.

        >>> import jnn as nn
        >>> fc = nn.Linear(2, 2)
        >>> def drop_bias(module, sd, prefix, local_metadata):
        ...     del sd[prefix + "bias"]
        >>> _ = fc.register_state_dict_post_hook(drop_bias)
        >>> list(fc.state_dict())
        ['weight']
        """
        try:  # as torch: the function remembers it, so _register_state_dict_hook can refuse it
            hook._from_public_api = True
        except AttributeError:
            pass
        return self._add_hook("_state_dict_hooks", hook, False, ("_state_dict_hooks_public",),
                              "register_state_dict_post_hook")

    def _register_state_dict_hook(self, hook: Callable) -> _RemovableHandle:
        """torch's older form of :meth:`register_state_dict_post_hook`: the hook may return a new state dict,
        which replaces the one being built."""
        if getattr(hook, "_from_public_api", False):
            raise RuntimeError(
                "Cannot register the same function as the state dict post hook that was previously registered "
                "via register_state_dict_post_hook"
            )
        return self._add_hook("_state_dict_hooks", hook, False, (), "_register_state_dict_hook")

    def _register_load_state_dict_pre_hook(self, hook: Callable, with_module: bool = False) -> _RemovableHandle:
        """Run ``hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)``
        at the start of this module's ``_load_from_state_dict`` (with ``with_module=True`` the module is passed
        first). The hook may change ``state_dict`` (rename, drop or add keys) before it is read.

        Args:
            hook: the callable.
            with_module: pass the module as the hook's first argument.

        Returns:
            a handle; ``handle.remove()`` takes the hook off.
        """
        flags = ("_load_state_dict_pre_hooks_with_module",) if with_module else ()
        return self._add_hook("_load_state_dict_pre_hooks", hook, False, flags, "_register_load_state_dict_pre_hook")

    def register_load_state_dict_pre_hook(self, hook: Callable) -> _RemovableHandle:
        """Run ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs) -> None`` before this module loads its entries in ``load_state_dict``.

        Args:
            hook: the callable; it may change ``state_dict`` in place.

        Returns:
            a handle; ``handle.remove()`` takes the hook off.

        >>> import numpy as np, jnn as nn
        >>> fc = nn.Linear(2, 1)
        >>> def rename(module, sd, prefix, *rest):
        ...     if prefix + "w" in sd:
        ...         sd[prefix + "weight"] = sd.pop(prefix + "w")
        >>> _ = fc.register_load_state_dict_pre_hook(rename)
        >>> fc.load_state_dict({"w": np.ones((1, 2)), "bias": np.zeros(1)})
        <All keys matched successfully>
        """
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def register_load_state_dict_post_hook(self, hook: Callable) -> _RemovableHandle:
        """Run ``hook(module, incompatible_keys) -> None`` after this module and its children were loaded by
        ``load_state_dict``; the hook may change ``incompatible_keys.missing_keys`` / ``unexpected_keys`` in
        place (before ``strict`` turns them into errors).

        Args:
            hook: the callable; it must return None.

        Returns:
            a handle; ``handle.remove()`` takes the hook off.
        """
        return self._add_hook("_load_state_dict_post_hooks", hook, False, (), "register_load_state_dict_post_hook")

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False) -> _RemovableHandle:
        """Not available in JAX (raises NotImplementedError with the alternatives)."""
        raise NotImplementedError(_no_backward_hooks(f"{type(self).__name__}.register_full_backward_hook"))

    def register_full_backward_pre_hook(self, hook: Callable, prepend: bool = False) -> _RemovableHandle:
        """Not available in JAX (raises NotImplementedError with the alternatives)."""
        raise NotImplementedError(_no_backward_hooks(f"{type(self).__name__}.register_full_backward_pre_hook"))

    def register_backward_hook(self, hook: Callable) -> _RemovableHandle:
        """Not available in JAX (raises NotImplementedError with the alternatives)."""
        raise NotImplementedError(_no_backward_hooks(f"{type(self).__name__}.register_backward_hook"))

    # -- printing -----------------------------------------------------------------------------------------

    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """Extra text inside this module's repr; layers override it (e.g. ``in_features=2, ...``)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({k}): " + _addindent(repr(m), 2) for k, m in self._modules.items()]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"


class _RemovableHandle:
    """What the hook registrations return (torch.utils.hooks.RemovableHandle): ``handle.remove()`` takes the
    hook off the module it was registered on; ``with handle:`` removes it at the end of the block. ``handle.id``
    is the hook's key in the module's hook dicts.

    Copies of the module made before the removal (e.g. a module returned from a jitted function) keep the hook.
    """

    _ids = itertools.count()

    def __init__(self, module: Module | None, slots: tuple[str, ...]) -> None:
        self.id = next(self._ids)
        self._module = None if module is None else weakref.ref(module)
        self._slots = slots

    def remove(self) -> None:
        if self._module is None:  # a global hook
            if any([_GLOBAL_HOOK_SLOTS[name].pop(self.id, None) is not None for name in self._slots]):
                _bump()
            return
        module = self._module()
        if module is None:
            return
        d = module.__dict__
        for name in self._slots:
            hooks = d.get(name, {})
            if self.id in hooks:  # copy-on-write: copies made earlier keep sharing the old dict
                module._set_static(name, {k: v for k, v in hooks.items() if k != self.id})

    def __enter__(self) -> _RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<RemovableHandle id={self.id}>"


RemovableHandle = _RemovableHandle


def _no_backward_hooks(who: str) -> str:
    return (
        f"{who}: jnn modules have no backward pass of their own to hook. JAX differentiates whole functions "
        "(jax.grad, jax.vjp), so there is no per-module backward call. Alternatives: take gradients with respect "
        "to the params dict of `apply, params, buffers = jnn.split(net)` (keyed by state_dict names, e.g. "
        "grads['fc.weight']); for the gradient with respect to a module's output, use jax.vjp on a function "
        "of that output; to change gradients flowing through a module, return a jax.custom_vjp function of "
        "the output from a forward hook."
    )


def _register_global(slots: tuple[str, ...], hook: Callable, who: str) -> _RemovableHandle:
    if not callable(hook):
        raise TypeError(f"{who}: the hook must be callable, got {type(hook).__name__}")
    handle = _RemovableHandle(None, slots)
    _GLOBAL_HOOK_SLOTS[slots[0]][handle.id] = hook
    for flag in slots[1:]:
        _GLOBAL_HOOK_SLOTS[flag][handle.id] = True
    _bump()  # cached flattenings carry the global hook ids: recompute them
    return handle


def register_module_forward_pre_hook(hook: Callable) -> _RemovableHandle:
    """A forward pre-hook for every module (``hook(module, args)``), run before the modules' own pre-hooks.

    >>> import jax.numpy as jnp, jnn as nn
    >>> from jnn.modules.module import register_module_forward_pre_hook
    >>> seen = []
    >>> with register_module_forward_pre_hook(lambda module, args: seen.append(type(module).__name__)):
    ...     _ = nn.Sequential(nn.Linear(2, 2), nn.Tanh())(jnp.ones(2))
    >>> seen
    ['Sequential', 'Linear', 'Tanh']
    """
    return _register_global(("_forward_pre_hooks",), hook, "register_module_forward_pre_hook")


def register_module_forward_hook(
    hook: Callable, *, with_kwargs: bool = False, always_call: bool = False
) -> _RemovableHandle:
    """A forward hook for every module (``hook(module, args, output)``), run before the modules' own hooks.
    A jitted function that takes a module retraces when global hooks change; one that closes over a split
    ``apply`` does not."""
    slots = ("_forward_hooks",) + (("_forward_hooks_with_kwargs",) if with_kwargs else ()) + (
        ("_forward_hooks_always_called",) if always_call else ()
    )
    return _register_global(slots, hook, "register_module_forward_hook")


def register_module_full_backward_hook(hook: Callable) -> _RemovableHandle:
    """Not available in JAX (raises NotImplementedError with the alternatives)."""
    raise NotImplementedError(_no_backward_hooks("register_module_full_backward_hook"))


def register_module_full_backward_pre_hook(hook: Callable) -> _RemovableHandle:
    """Not available in JAX (raises NotImplementedError with the alternatives)."""
    raise NotImplementedError(_no_backward_hooks("register_module_full_backward_pre_hook"))


def register_module_backward_hook(hook: Callable) -> _RemovableHandle:
    """Not available in JAX (raises NotImplementedError with the alternatives)."""
    raise NotImplementedError(_no_backward_hooks("register_module_backward_hook"))


jax.tree_util.register_pytree_with_keys(Module, _flatten_with_keys, _unflatten, flatten_func=_flatten)
