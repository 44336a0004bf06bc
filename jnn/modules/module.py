"""The Module core: torch.nn.Module's API over immutable JAX arrays, and every Module a JAX pytree.

A module keeps its parameters, buffers and children in ``_parameters``, ``_buffers`` and ``_modules``
(as PyTorch does); everything else in its ``__dict__`` is static. Flattening a module walks its tree once
and yields the arrays, de-duplicated by identity (tied weights are one leaf), in ``state_dict`` order; the
structure and static attributes travel in the treedef, so ``jax.jit`` retraces when they change (for
instance ``.train()`` / ``.eval()``).
"""

from __future__ import annotations

import copy
import itertools
import linecache
import re
import sys
import warnings
import weakref
from collections import OrderedDict
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
    is_deleted,
    is_torch_object,
    is_tracer,
    resolve_device,
    shape_text,
)
from jnn._sparse import SparseCOOTensor
from jnn.modules import _pytree
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


# The pytree engine (jnn.modules._pytree) under the names the rest of jnn imports.
_bump = _pytree.bump
_Slots = _pytree.Slots
_ModuleDef = _pytree.ModuleDef
_TreeDef = _pytree.TreeDef
_walk = _pytree.walk
_build = _pytree.build
_flatten = _pytree.flatten
_write_back = _pytree.write_back
_NO_ATTRIBUTES = _pytree._NO_ATTRIBUTES
_GLOBAL_HOOK_SLOTS = {
    name: getattr(_pytree, "global" + name)
    for name in ("_forward_pre_hooks", "_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called")
}


# The arrays registered as some module's parameter, by id, weakly: torch's ``self.a = other.a`` with ``other.a`` a
# Parameter registers it on ``self`` too (open_clip's CLIP takes its text tower's parameters so), while jnn's
# ``other.a`` is a plain array. Only the last registration of an id counts, and only while that array lives.
_parameter_arrays: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _stamp_requires_grad(value: Any, requires_grad: bool) -> None:
    """Keep an array's own ``requires_grad`` attribute (set by user code, see ``Module._sync_requires_grad``)
    in line with a decision jnn just made."""
    if "requires_grad" in getattr(value, "__dict__", ()):
        value.requires_grad = requires_grad


_zero_grad_warned: list[bool] = []


# torch's tensor type names, for Module.type('torch.HalfTensor').
_TENSOR_TYPES = {"torch.FloatTensor": "float32", "torch.DoubleTensor": "float64", "torch.HalfTensor": "float16",
                 "torch.BFloat16Tensor": "bfloat16"}

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


# JAX array methods that share a torch.Tensor method's name but not its meaning, and how a call fails.
_DIFFERENT_METHODS = {
    "size": "size is its element count (an int)",
    "view": "view(dtype) reinterprets its bytes",
}


def _note_tensor_method(module: Module, error: Exception) -> None:
    """torch.Tensor's API used on a JAX array in ``forward`` (``x.view(2, -1)``, ``x.size(0)``, ``x.sum(dim=1)``):
    note the jnn.ops function and the port tool on the error, once (the innermost module's forward)."""
    if getattr(error, "_jnn_noted", False) or not isinstance(error, (AttributeError, TypeError, NotImplementedError)):
        return
    error._jnn_noted = True  # type: ignore[attr-defined]
    if isinstance(error, AttributeError):
        name = getattr(error, "name", None)
        if not (name and isinstance(getattr(error, "obj", None), jax.Array)):
            return
        what = "has no such method"
    else:
        line = _forward_line(module, error)
        called = [n for n in re.findall(r"\.(\w+)\(", line) if n in _DIFFERENT_METHODS]
        if called and (isinstance(error, NotImplementedError) or "not callable" in str(error)
                       or "as a data type" in str(error)):
            name, what = called[0], _DIFFERENT_METHODS[called[0]]
        elif (isinstance(error, TypeError) and re.search(r"keyword argument '(dim|keepdim)'", str(error))
              and (keyword := re.search(r"\.(\w+)\([^()]*\b(keep)?dim\s*=", line))):
            name, what = keyword.group(1), "takes axis= and keepdims= where torch takes dim= and keepdim="
        else:
            return
    import jnn.ops

    fix = f"Use jnn.ops.{name}(x, ...), or port" if hasattr(jnn.ops, name) else "Port"
    error.add_note(f"{type(module).__name__}.forward: x.{name} is torch.Tensor's API; a JAX array {what}. {fix} "
                   "the whole file onto jnn.ops: python -m jnn.port model.py -o model_jnn.py")


def _forward_line(module: Module, error: Exception) -> str:
    """The source line of ``module.forward`` that raised ``error`` ('' if not found)."""
    code = getattr(type(module).forward, "__code__", None)
    traceback, line = error.__traceback__, ""
    while traceback is not None:
        if traceback.tb_frame.f_code is code:
            line = linecache.getline(code.co_filename, traceback.tb_lineno)
        traceback = traceback.tb_next
    return line


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
        _pytree.register(cls)

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
        try:
            if (d.get("_forward_pre_hooks") or d.get("_forward_hooks") or _pytree.global_forward_pre_hooks
                    or _pytree.global_forward_hooks):
                return self._call_with_hooks(args, kwargs)
            return self.forward(*args, **kwargs)
        except (RuntimeError, AttributeError, TypeError) as error:  # NotImplementedError is a RuntimeError
            if isinstance(error, RuntimeError):
                self._explain_deleted(error)
            _note_tensor_method(self, error)
            raise

    def _explain_deleted(self, error: RuntimeError) -> None:
        """Forward failed on an array deleted by donation: say how to get the trained arrays instead."""
        if isinstance(error, _pytree.DeletedArrayError) or "deleted" not in str(error):
            return
        for module in self.modules():
            for slots in (module._parameters, module._buffers):
                for name, value in slots.items():
                    if is_deleted(value):
                        raise _pytree.DeletedArrayError(
                            _pytree.deleted_message(f"{type(module).__name__}.{name}")) from error

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        """torch's order: global pre-hooks, pre-hooks, forward, global hooks, hooks; ``always_call`` hooks also
        run when something before them raised (their own errors then become warnings)."""
        d = self.__dict__
        output = None
        called: set[int] = set()
        try:
            pre_with_kwargs = d.get("_forward_pre_hooks_with_kwargs", {})
            for hook_id, hook in (*_pytree.global_forward_pre_hooks.items(), *d.get("_forward_pre_hooks", {}).items()):
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
                        f"{'global module' if hook_id in _pytree.global_forward_hooks else 'module'} forward hook with "
                        "``always_call=True`` raised an exception that was silenced as another error was raised "
                        f"in forward: {error}",
                        stacklevel=2,
                    )
            raise
        return output

    def _forward_hook_entries(self) -> list[tuple[int, Callable, bool, bool]]:
        d = self.__dict__
        entries = [
            (i, hook, i in _pytree.global_forward_hooks_with_kwargs, i in _pytree.global_forward_hooks_always_called)
            for i, hook in _pytree.global_forward_hooks.items()
        ]
        with_kwargs, always = d.get("_forward_hooks_with_kwargs", {}), d.get("_forward_hooks_always_called", {})
        entries += [(i, hook, i in with_kwargs, i in always) for i, hook in d.get("_forward_hooks", {}).items()]
        return entries

    # -- static-structure cache --------------------------------------------------------------------------

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

    def _holds_concrete(self) -> bool:
        d = self.__dict__
        return any(
            v is not None and not is_tracer(v) and not is_lazy(v)
            for slots in (d["_parameters"], d["_buffers"]) for v in slots.values()
        )

    def _leak_check(self, kind: str, name: str, old: Any, new: Any) -> None:
        """Refuse to store a traced value in a module that holds concrete arrays: the module was captured by a
        closure, and the tracer would outlive the transformation."""
        # Copies made by jnn.split's apply are private to one call (``_jnn_private``): changing them is fine.
        if not is_tracer(new) or "_jnn_private" in self.__dict__:
            return
        concrete_old = kind != "attribute" and old is not None and not is_tracer(old) and not is_lazy(old)
        if concrete_old or ((old is None or kind == "attribute") and self._holds_concrete()):
            raise RuntimeError(
                f"{type(self).__name__}: a JAX transformation (jit/grad/vmap/scan) tried to store a traced value "
                f"in {kind} '{name}' of a module that holds concrete arrays. This happens when a module is "
                "captured by a closure instead of passed as an argument, and the change would leak tracers "
                "into it. Pass the module in and return it, e.g. `jax.jit(lambda m, x: (m(x), m))(net, x)`, "
                "or use `apply, params, buffers = jnn.split(net)` and take the new buffers from apply."
            )

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add a buffer: an array that is part of the module's state but not trained (e.g. running_mean).

        Args:
            name: the attribute name.
            tensor: a JAX or numpy array (or a torch tensor, copied), or None.
            persistent: False leaves it out of ``state_dict``.
        """
        _bump()
        d = self.__dict__
        if "_buffers" not in d:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_new_name("buffer", name, d["_buffers"])
        if tensor is not None and not isinstance(tensor, SparseCOOTensor):  # ops.to_sparse's: a pytree of arrays
            if not _is_array(tensor) and not hasattr(tensor, "__dlpack__"):
                raise TypeError(
                    f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                    "(jax.Array, numpy.ndarray, a sparse tensor or None required)"
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
        """Add a parameter under ``name``.

        Args:
            name: the attribute name.
            param: a :class:`Parameter` (its ``requires_grad`` decides whether ``jnn.split`` trains it) or None.
        """
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
            _stamp_requires_grad(value, param.requires_grad)
        is_new = name not in d["_parameters"]
        d["_parameters"][name] = value
        if value is not None:
            _pytree.note_assigned(self, name, value)
            if isinstance(value, jax.Array) and not is_tracer(value):
                _parameter_arrays[id(value)] = value
        frozen = d["_frozen_parameters"]
        wanted = frozen | {name} if param is not None and not param.requires_grad else frozen - {name}
        if is_new or wanted != frozen:
            d["_frozen_parameters"] = wanted
            self._changed()

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name`` (``register_module`` is the same).

        Args:
            name: the attribute name.
            module: a Module, or None.
        """
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
        if type(d) is not dict and name in d:  # a lazily unflattened root, just built (_pytree.PendingDict)
            return d[name]
        for slots in ("_parameters", "_buffers"):
            own = d.get(slots)
            if own is not None and name in own:
                value = own[name]
                if value is not None:
                    if "data" in getattr(value, "__dict__", _NO_ATTRIBUTES):  # p.data = v, as torch's
                        value = _pytree.adopt_data(self, name, value)
                    _pytree.note_handout(self, name, value)
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
            if value is not None:
                _pytree.note_assigned(self, name, value)
                if isinstance(value, jax.Array) and not is_tracer(value):
                    _parameter_arrays[id(value)] = value
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
        elif (params is not None and isinstance(value, jax.Array) and name not in d.get("_buffers", ())
              and _parameter_arrays.get(id(value)) is value):  # another module's parameter, as torch
            remove_from("_modules")
            self.register_parameter(name, Parameter(value, requires_grad=getattr(value, "requires_grad", True)))
        elif isinstance(value, Buffer) or (d.get("_buffers") is not None and name in d["_buffers"]):
            if isinstance(value, Buffer):
                if d.get("_buffers") is None:
                    raise AttributeError("cannot assign buffer before Module.__init__() call")
                remove_from("_parameters", "_modules")
                self.register_buffer(name, value.data, value.persistent)
            else:
                if value is not None and not _is_array(value) and not hasattr(value, "__dlpack__") and \
                        not isinstance(value, SparseCOOTensor):
                    raise TypeError(
                        f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                        "(jnn.Buffer, jax.Array, numpy.ndarray, a sparse tensor or None expected)"
                    )
                if value is not None and not isinstance(value, SparseCOOTensor):
                    value = _as_array(value, type(self).__name__, f"buffer '{name}'")
                    self._leak_check("buffer", name, d["_buffers"][name], value)
                d["_buffers"][name] = value
                if value is not None:
                    _pytree.note_assigned(self, name, value)
        else:
            if is_tracer(value):
                self._leak_check("attribute", name, d.get(name), value)
            if hasattr(type(getattr(type(self), name, None)), "__set__"):  # a property's setter, as torch's
                object.__setattr__(self, name, value)
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

    def __hash__(self) -> int:
        # A module hashes by identity (torch's semantics: sets, dict keys). As a static argument of jax.jit, that
        # would make jit reuse a program traced with old weights: refuse it there.
        caller = sys._getframe(1)
        if caller.f_code.co_name == "_infer_params" and caller.f_globals.get("__name__") == "jax._src.pjit" \
                and caller.f_locals.get("fun") is not self:
            raise TypeError(
                f"{type(self).__name__}: a jnn Module cannot be a static argument of jax.jit (static_argnums / "
                "static_argnames): jit would key its cache on the module's identity and keep running the program "
                "traced with the arrays the module had then. Pass the module as an ordinary argument (modules are "
                "pytrees), e.g. `jax.jit(lambda m, x: m(x))(net, x)`, or close over the apply of "
                "`apply, params, buffers = jnn.split(net)`."
            )
        return object.__hash__(self)

    def __getstate__(self) -> dict:
        """pickle / ``copy.copy``: the instance dict without its cached flattening (a cache keyed by this process's
        module generation, and holding generated code)."""
        state = dict(self.__dict__)
        state.pop("_jnn_flat", None)
        return state

    def __deepcopy__(self, memo: dict) -> Module:
        """``copy.deepcopy``: as torch, every array is a fresh copy (one device-to-device copy each; JAX's own
        array deepcopy compiles a program per shape), and shared arrays and modules stay shared in the copy."""
        d = self.__dict__
        for slots in (d["_parameters"], d["_buffers"]):
            for value in slots.values():
                if isinstance(value, jax.Array) and not is_tracer(value) and not is_deleted(value) \
                        and id(value) not in memo:
                    memo[id(value)] = jax.device_put(value, value.sharding, may_alias=False)
                    memo.setdefault(id(memo), []).append(value)  # keep the original alive, as deepcopy does
        new = object.__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update({name: copy.deepcopy(value, memo) for name, value in d.items()})
        return new

    def __dir__(self) -> list[str]:
        d = self.__dict__
        keys = list(super().__dir__()) + list(d["_parameters"]) + list(d["_buffers"]) + list(d["_modules"])
        return sorted(k for k in set(keys) if not k[0].isdigit())

    # -- traversal ----------------------------------------------------------------------------------------

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """All modules in the tree (this one first, then pre-order) with their dotted names.

        Args:
            memo: ids of modules already yielded (internal to the recursion).
            prefix: put before every name.
            remove_duplicate: yield a module reachable by several names only once.

        >>> import jnn as nn
        >>> [name for name, _ in nn.Sequential(nn.Linear(2, 2), nn.ReLU()).named_modules()]
        ['', '0', '1']
        """
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
        """All modules in the tree, this one first (each once)."""
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct submodules with their names (each once)."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        """The direct submodules (each once)."""
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
                if "data" in getattr(value, "__dict__", _NO_ATTRIBUTES):
                    value = _pytree.adopt_data(module, name, value)
                seen.add(id(value))
                _pytree.note_handout(module, name, value)
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Array]]:
        """(name, array) for every parameter, in ``state_dict`` order; tied parameters once.

        Args:
            prefix: put before every name.
            recurse: include the submodules' parameters (else only this module's own).
            remove_duplicate: yield a tied array only under its first name.
        """
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Array]:
        """Every parameter array (tied ones once). Arrays are immutable: to train, take gradients with respect
        to ``jnn.split``'s params (or the module itself) and replace them.

        Args:
            recurse: include the submodules' parameters (else only this module's own).
        """
        for _, value in self.named_parameters(recurse=recurse):
            yield value

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Array]]:
        """(name, array) for every buffer (persistent or not), in registration order.

        Args:
            prefix: put before every name.
            recurse: include the submodules' buffers (else only this module's own).
            remove_duplicate: yield a shared array only under its first name.
        """
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Array]:
        """Every buffer array (shared ones once).

        Args:
            recurse: include the submodules' buffers (else only this module's own).
        """
        for _, value in self.named_buffers(recurse=recurse):
            yield value

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first, recursively) and then on this module.

        Args:
            fn: called with each module; e.g. an init function that checks ``isinstance(m, nn.Linear)``.

        Returns:
            self.
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def get_submodule(self, target: str) -> Module:
        """The submodule at a dotted path.

        Args:
            target: e.g. ``"encoder.layers.0"`` ('' gives this module).

        Raises:
            AttributeError: with torch's message, if a part of the path is missing or is not a Module.
        """
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
        """The parameter at a dotted path, e.g. ``"encoder.fc.weight"``.

        Args:
            target: the parameter's ``state_dict`` name.
        """
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(module._get_name() + " has no attribute `" + name + "`")
        if name not in module._parameters:
            raise AttributeError("`" + name + "` is not an nn.Parameter")
        return module._parameters[name]

    def get_buffer(self, target: str) -> Array:
        """The buffer at a dotted path, e.g. ``"bn.running_mean"``.

        Args:
            target: the buffer's dotted name.
        """
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(module._get_name() + " has no attribute `" + name + "`")
        if name not in module._buffers:
            raise AttributeError("`" + name + "` is not a buffer")
        return module._buffers[name]

    # -- modes and trainability ---------------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every submodule (a static pytree attribute: jit retraces).

        Args:
            mode: True for training, False for evaluation.

        Returns:
            self.
        """
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            if module.__dict__.get("training") is not mode:
                module._set_static("training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode, ``train(False)``; returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Mark every parameter trainable or frozen. Frozen parameters stay in state_dict but not in
        ``jnn.split``'s trainable dict.

        Args:
            requires_grad: True to train every parameter, False to freeze them all.

        Returns:
            self.
        """
        for module in self.modules():
            d = module.__dict__
            wanted = frozenset() if requires_grad else frozenset(d["_parameters"])
            if wanted != d["_frozen_parameters"]:
                module._set_static("_frozen_parameters", wanted)
            for value in d["_parameters"].values():
                _stamp_requires_grad(value, requires_grad)
        return self

    def _sync_requires_grad(self) -> None:
        """Honour ``p.requires_grad = False`` written on an array from ``parameters()`` (torch's way to freeze):
        JAX arrays accept the attribute, so jnn reads it back here and freezes (or unfreezes) that slot."""
        for module in self.modules():
            d = module.__dict__
            frozen = d["_frozen_parameters"]
            wanted = set(frozen)
            for name, value in d["_parameters"].items():
                flag = getattr(value, "__dict__", {}).get("requires_grad") if value is not None else None
                if flag is not None:
                    (wanted.discard if flag else wanted.add)(name)
            if wanted != frozen:
                module._set_static("_frozen_parameters", frozenset(wanted))

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Nothing to do: jnn keeps no ``.grad`` on parameters, so gradients never accumulate between steps.

        Gradients are pytrees returned by ``jax.grad`` (e.g. keyed like ``params`` from ``jnn.split``); each step
        computes fresh ones. Warns once, so the call can be removed.

        Args:
            set_to_none: accepted for torch's signature.
        """
        if not _zero_grad_warned:
            _zero_grad_warned.append(True)
            warnings.warn(
                f"{type(self).__name__}.zero_grad(): jnn modules hold no gradients (JAX arrays have no .grad); "
                "gradients are the pytrees jax.grad returns, computed fresh each step, so there is nothing to "
                "zero. Remove the call; to clip or accumulate gradients, work on the gradient pytree "
                "(e.g. jnn.utils.clip_grad_norm_(grads, ...), optax.MultiSteps).",
                stacklevel=2,
            )

    def named_trainable_parameters(self) -> Iterator[tuple[str, Array]]:
        """Like ``named_parameters``, leaving out parameters with ``requires_grad=False``."""
        self._sync_requires_grad()
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
        nonpersistent = d["_non_persistent_buffers_set"]
        for slots in ("_parameters", "_buffers"):
            for name, value in list(d[slots].items()):
                if value is None or name in nonpersistent:
                    continue
                if "data" in getattr(value, "__dict__", _NO_ATTRIBUTES):
                    value = _pytree.adopt_data(self, name, value)
                destination[prefix + name] = value
                _pytree.note_handout(self, name, value)  # as torch's entries share the parameters' memory
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

        Returns ``(missing_keys, unexpected_keys)``, a named tuple.

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
                    if value is None or is_lazy(value):
                        continue
                    if id(value) not in done:
                        new = done[id(value)] = fn(value)
                        module._leak_check(slots[1:-1], name, value, new)
                    dict.__setitem__(own, name, done[id(value)])
        _pytree.moved(done)
        return self

    # -- devices and dtypes -------------------------------------------------------------------------------

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move and/or cast this module's arrays, as torch's ``Module.to``.

        Forms: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(device=..., dtype=...)``,
        ``to(array)`` (its dtype and device; a torch tensor works too), ``to(sharding)``. Dtypes may be JAX,
        numpy or torch dtypes or their names. Casts touch floating-point arrays only (integer buffers keep their
        dtype).

        The arguments, positional or by keyword: ``device`` ('cpu', 'cuda', 'cuda:1', 'gpu', 'tpu', a
        torch.device, a jax.Device or a Sharding), ``dtype`` (a floating-point dtype), ``non_blocking``
        (accepted for torch's signature). Returns ``self``.

        >>> import torch, jnn as nn
        >>> fc = nn.Linear(2, 2).to(device="cpu", dtype=torch.float16)
        >>> fc.weight.dtype
        dtype('float16')
        """
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("copy", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"{type(self).__name__}.to() got unexpected keyword arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, (jax.Array, np.ndarray)):
                dtype = arg.dtype
                if isinstance(arg, jax.Array) and not is_tracer(arg):
                    device = arg.sharding
            elif is_torch_object(arg, "Tensor") or is_torch_object(arg, "Parameter"):
                dtype, device = arg.dtype, arg.device
            elif as_dtype(arg) is not None:
                dtype = as_dtype(arg)
            elif isinstance(arg, bool):  # torch's positional non_blocking
                continue
            elif isinstance(arg, (str, int, jax.Device, jax.sharding.Sharding)) or is_torch_object(arg, "device"):
                device = arg
            else:
                raise TypeError(f"{type(self).__name__}.to: cannot interpret {arg!r} as a device or dtype")
        target = resolve_device(device, f"{type(self).__name__}.to")
        if dtype is not None:
            dtype = check_float_dtype(dtype, "nn.Module.to")

        def convert(value: Array) -> Array:
            if dtype is not None and jnp.issubdtype(value.dtype, jnp.floating):
                value = value.astype(dtype)
            if target is not None:
                value = jax.device_put(value, target)
            return value

        return self._replace_arrays(convert)

    def cuda(self, device: Any = None) -> Module:
        """Move every array to a GPU.

        Args:
            device: an index, string or jax.Device (default: the first GPU).
        """
        return self.to("cuda" if device is None else device)

    def cpu(self) -> Module:
        """Move every array to the CPU; returns self."""
        return self.to("cpu")

    def type(self, dst_type: Any) -> Module:
        """Cast every floating-point array to ``dst_type``; returns self.

        Args:
            dst_type: a dtype (JAX, numpy or torch), its name, or a torch tensor type name such as
                ``'torch.HalfTensor'``.
        """
        if isinstance(dst_type, str) and dst_type in _TENSOR_TYPES:
            dst_type = _TENSOR_TYPES[dst_type]
        elif isinstance(dst_type, type) and type(dst_type).__module__.startswith("torch") and \
                f"torch.{dst_type.__name__}" in _TENSOR_TYPES:  # torch.FloatTensor & co.
            dst_type = _TENSOR_TYPES[f"torch.{dst_type.__name__}"]
        return self.to(dtype=dst_type)

    def float(self) -> Module:
        """Cast every floating-point array to float32; returns self."""
        return self.to(dtype=jnp.float32)

    def double(self) -> Module:
        """Cast every floating-point array to float64 (needs JAX's x64 mode); returns self."""
        return self.to(dtype=jnp.float64)

    def half(self) -> Module:
        """Cast every floating-point array to float16; returns self."""
        return self.to(dtype=jnp.float16)

    def bfloat16(self) -> Module:
        """Cast every floating-point array to bfloat16; returns self."""
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


_pytree._module_class.append(Module)


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


_pytree.register(Module)
