"""Parametrizations (``torch.nn.utils.parametrize``): a parameter or buffer computed by a module on every access.

``register_parametrization(module, "weight", P())`` moves ``module.weight`` to
``module.parametrizations.weight.original`` and makes ``module.weight`` read ``P()(original)``. As in PyTorch, the
module's class becomes a generated subclass (``ParametrizedLinear``) holding a property for each parametrized name;
the generated class is shared by every module of the same class with the same parametrized names, so identical
parametrized blocks stay identical for :func:`jnn.scan_layers`. The originals are ordinary parameters or buffers,
so the module stays a pytree and ``jnn.split`` names them as ``state_dict`` does.

>>> import jax.numpy as jnp, jnn as nn
>>> import jnn.utils.parametrize as P
>>> class Symmetric(nn.Module):
...     def forward(self, X):
...         return jnp.triu(X) + jnp.triu(X, 1).T
>>> m = P.register_parametrization(nn.Linear(3, 3), "weight", Symmetric())
>>> bool(jnp.allclose(m.weight, m.weight.T))
True
>>> list(m.state_dict())
['bias', 'parametrizations.weight.original']
>>> type(m).__name__, P.type_before_parametrizations(m).__name__
('ParametrizedLinear', 'Linear')
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jnn.modules.container import ModuleDict, ModuleList
from jnn.modules.module import Module, Parameter, _is_array

__all__ = ["cached", "ParametrizationList", "register_parametrization", "is_parametrized",
           "remove_parametrizations", "type_before_parametrizations", "transfer_parametrizations_and_params"]

_cache_depth = [0]
# (id of the ParametrizationList, name) -> (the list itself, value): holding the list keeps its id from being reused
_cache: dict[tuple[int, str], tuple[Module, Any]] = {}


@contextlib.contextmanager
def cached() -> Iterator[None]:
    """Within this context a parametrized tensor is computed once, at its first access, and reused.

    >>> import jax.numpy as jnp, jnn as nn
    >>> import jnn.utils.parametrize as P
    >>> class Count(nn.Module):
    ...     calls = 0
    ...     def forward(self, X):
    ...         Count.calls += 1
    ...         return X
    >>> m = P.register_parametrization(nn.Linear(2, 2), "weight", Count())
    >>> Count.calls = 0
    >>> with P.cached():
    ...     _ = m.weight + m.weight
    >>> Count.calls
    1
    """
    _cache_depth[0] += 1
    try:
        yield
    finally:
        _cache_depth[0] -= 1
        if not _cache_depth[0]:
            _cache.clear()


def _is_tensor_like(value: Any) -> bool:
    return isinstance(value, jax.Array) or _is_array(value)


def _unwrap(value: Any) -> Any:
    return value.data if isinstance(value, Parameter) else value


def _store(owner: Module, name: str, value: Any, as_parameter: bool, requires_grad: bool) -> None:
    if as_parameter:
        owner.register_parameter(name, Parameter(value, requires_grad=requires_grad))
    else:
        owner.register_buffer(name, value)


def _check_same(what: str, expected: Any, got: Any, hint: str = "") -> None:
    if jnp.dtype(got.dtype) != jnp.dtype(expected.dtype):
        raise ValueError(f"{what} changed the dtype from {expected.dtype} to {got.dtype}{hint}")
    if tuple(got.shape) != tuple(expected.shape):
        raise ValueError(f"{what} changed the shape from {tuple(expected.shape)} to {tuple(got.shape)}{hint}")


_UNSAFE_HINT = "; pass unsafe=True to register_parametrization to allow it"


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor and its unconstrained original(s): ``module.parametrizations.<name>``.

    Holds the original under ``original`` (or ``original0``, ``original1``, ... when the first parametrization's
    ``right_inverse`` returns a sequence). Calling it computes the parametrized tensor. Made by
    :func:`register_parametrization`; not meant to be built by hand.
    """

    def __init__(self, modules: Sequence[Module], original: Any, unsafe: bool = False) -> None:
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        as_parameter = isinstance(original, Parameter)
        requires_grad = original.requires_grad if as_parameter else False
        original = _unwrap(original)
        new = original
        for module in reversed(list(self)):
            inverse = getattr(module, "right_inverse", None)
            if inverse is not None:
                try:
                    new = _unwrap(inverse(new))
                except NotImplementedError:
                    pass
        if _is_tensor_like(new):
            if jnp.dtype(new.dtype) != jnp.dtype(original.dtype):
                raise ValueError(f"register_parametrization: when right_inverse returns one tensor it may not "
                                 f"change the dtype (original {original.dtype}, right_inverse {new.dtype})")
            self.is_tensor, self.ntensors = True, 1
            _store(self, "original", jax.lax.stop_gradient(jnp.asarray(new)), as_parameter, requires_grad)
        elif isinstance(new, Sequence) and not isinstance(new, str):
            self.is_tensor, self.ntensors = False, len(new)
            for i, value in enumerate(new):
                value = _unwrap(value)
                if not _is_tensor_like(value):
                    raise ValueError(f"register_parametrization: right_inverse must return a tensor or a sequence of "
                                     f"tensors; element {i} is a {type(value).__name__}")
                _store(self, f"original{i}", jax.lax.stop_gradient(jnp.asarray(value)), as_parameter, requires_grad)
        else:
            raise ValueError("register_parametrization: right_inverse must return a tensor or a sequence of tensors "
                             f"(list, tuple...), got {type(new).__name__}")
        if not unsafe:
            value = self()
            if not _is_tensor_like(value):
                raise ValueError(f"register_parametrization: a parametrization must return a tensor, got "
                                 f"{type(value).__name__}")
            _check_same("register_parametrization: the parametrization", original, value, _UNSAFE_HINT)

    def right_inverse(self, value: Any) -> None:
        """Set the original(s) so that the parametrized tensor becomes ``value`` (``module.weight = value``)."""
        value = _unwrap(value)
        for module in reversed(list(self)):
            inverse = getattr(module, "right_inverse", None)
            if inverse is None:
                raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse.")
            value = _unwrap(inverse(value))
        if self.is_tensor:
            if not _is_tensor_like(value):
                raise ValueError(f"`right_inverse` should return a tensor. Got {type(value).__name__}")
            if jnp.dtype(value.dtype) != jnp.dtype(self.original.dtype):
                raise ValueError(f"The tensor returned by `right_inverse` has dtype {value.dtype} while `original` has "
                                 f"dtype {self.original.dtype}")
            self.original = jax.lax.stop_gradient(jnp.asarray(value))
            return
        if not isinstance(value, Sequence) or _is_tensor_like(value):
            raise ValueError(f"'right_inverse' must return a sequence of tensors. Got {type(value).__name__}.")
        if len(value) != self.ntensors:
            raise ValueError(f"'right_inverse' must return a sequence of tensors of length {self.ntensors}. Got a "
                             f"sequence of length {len(value)}.")
        for i, tensor in enumerate(value):
            tensor = _unwrap(tensor)
            current = getattr(self, f"original{i}")
            if not _is_tensor_like(tensor):
                raise ValueError(f"'right_inverse' must return a sequence of tensors; element {i} is a "
                                 f"{type(tensor).__name__}")
            if jnp.dtype(tensor.dtype) != jnp.dtype(current.dtype):
                raise ValueError(f"Tensor {i} returned by `right_inverse` has dtype {tensor.dtype} while `original{i}` "
                                 f"has dtype {current.dtype}")
            setattr(self, f"original{i}", jax.lax.stop_gradient(jnp.asarray(tensor)))

    def forward(self) -> Any:
        modules = list(self)
        if self.is_tensor:
            x = modules[0](self.original)
        else:
            x = modules[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in modules[1:]:
            x = module(x)
        return x


# --- the generated classes --------------------------------------------------------------------------------------

# (original class, parametrized names, name prefix) -> generated subclass; shared so that identical blocks stay
# one class (jnn.scan_layers and jax.jit compare classes by identity)
_classes: dict[tuple[type, frozenset[str], str], type] = {}


def _base_class(cls: type) -> type:
    return cls.__dict__.get("_jnn_base_class", cls)


def _swap_class(module: Module, properties: dict[str, property], prefix: str) -> None:
    """Give ``module`` the generated subclass of its original class with exactly ``properties`` (none: the original
    class back); the legacy ``weight_norm``/``spectral_norm`` and pruning keep the class name (prefix "")."""
    base = _base_class(type(module))
    if properties:
        key = (base, frozenset((n, p.__doc__) for n, p in properties.items()), prefix)
        cls = _classes.get(key)
        if cls is None:
            def __setattr__(self: Module, name: str, value: Any) -> None:
                if name in type(self)._jnn_properties:
                    object.__setattr__(self, name, value)  # the property's setter
                else:
                    base.__setattr__(self, name, value)

            def __getstate__(self: Module) -> Any:
                raise RuntimeError("Serialization of parametrized modules is only supported through state_dict() "
                                   "(jnn.save(module.state_dict(), path)).")

            def __deepcopy__(self: Module, memo: dict) -> Module:
                replica = memo.get(id(self))
                if replica is None:
                    replica = memo[id(self)] = object.__new__(type(self))
                    replica.__dict__.update(copy.deepcopy(self.__dict__, memo))
                return replica

            def _load_from_state_dict(self: Module, state_dict: dict, prefix: str, *args: Any) -> None:
                # Old checkpoint keys a parametrization knows (weight_norm's weight_g/weight_v) load into its
                # originals; a method of the class rather than a per-module hook, so identical blocks stay identical
                for name in _parametrized_names(self):
                    renames = getattr(self.parametrizations[name][0], "_legacy_state_dict_keys", None)
                    for old, new in (renames(name) if renames else {}).items():
                        if prefix + old in state_dict and prefix + new not in state_dict:
                            state_dict[prefix + new] = state_dict.pop(prefix + old)
                base._load_from_state_dict(self, state_dict, prefix, *args)

            namespace = {**properties, "__setattr__": __setattr__, "__getstate__": __getstate__,
                         "_load_from_state_dict": _load_from_state_dict,
                         "__deepcopy__": __deepcopy__,
                         "_jnn_base_class": base, "_jnn_properties": frozenset(properties),
                         "__module__": base.__module__, "__qualname__": prefix + base.__qualname__}
            cls = _classes[key] = type(prefix + base.__name__, (base,), namespace)
        target = cls
    else:
        target = base
    if type(module) is not target:
        object.__setattr__(module, "__class__", target)
        module._changed()  # the class is part of the pytree structure


def _parametrized_property(name: str) -> property:
    def get(self: Module) -> Any:
        parametrization = self.parametrizations[name]
        if not _cache_depth[0]:
            return parametrization()
        key = (id(parametrization), name)
        hit = _cache.get(key)
        if hit is None or hit[0] is not parametrization:
            hit = _cache[key] = (parametrization, parametrization())
        return hit[1]

    def set(self: Module, value: Any) -> None:
        self.parametrizations[name].right_inverse(value)

    return property(get, set, doc=f"``{name}``, computed by ``parametrizations.{name}``")


def _parametrized_names(module: Module) -> list[str]:
    parametrizations = module._modules.get("parametrizations")
    return list(parametrizations.keys()) if isinstance(parametrizations, ModuleDict) else []


def _attribute_hooks(module: Module) -> dict[str, Any]:
    """The forward pre-hooks that compute an attribute (legacy weight_norm, spectral_norm, pruning), by name.

    Such a hook has ``_jnn_attribute`` (the name) and ``_jnn_compute(module)`` (its value). Where PyTorch's hook
    stores a freshly computed plain tensor on the module before every forward, jnn computes it on access through a
    property, so nothing array-valued is left outside the parameters and buffers of the pytree."""
    hooks = module.__dict__.get("_forward_pre_hooks", {})
    return {hook._jnn_attribute: hook for hook in hooks.values() if hasattr(hook, "_jnn_attribute")}


def _computed_property(name: str) -> property:
    def get(self: Module) -> Any:
        return _attribute_hooks(self)[name]._jnn_compute(self)

    def set(self: Module, value: Any) -> None:
        hook = _attribute_hooks(self)[name]
        raise AttributeError(f"{type(self).__name__}.{name} is computed by {type(hook).__name__} on every access; "
                             f"set the tensors it is computed from instead (e.g. {name}_orig, {name}_v)")

    return property(get, set, doc=f"``{name}``, computed on access by its forward pre-hook")


def _update_class(module: Module) -> None:
    """Give ``module`` the generated class matching its parametrizations and attribute-computing hooks."""
    parametrized = _parametrized_names(module)
    properties = {n: _computed_property(n) for n in _attribute_hooks(module)}
    properties.update({n: _parametrized_property(n) for n in parametrized})
    _swap_class(module, properties, "Parametrized" if parametrized else "")


# --- the public functions ---------------------------------------------------------------------------------------


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` read ``parametrization(original)``; returns ``module``.

    The first parametrization of a name moves the tensor to ``module.parametrizations.<tensor_name>.original``
    (through ``parametrization.right_inverse`` if it has one; a sequence it returns becomes ``original0``,
    ``original1``, ...). Registering again on the same name chains the parametrizations. Assigning
    ``module.<tensor_name> = value`` calls the ``right_inverse`` chain. ``unsafe=True`` skips the checks that the
    parametrization keeps the tensor's shape and dtype.

    >>> import jax.numpy as jnp, jnn as nn
    >>> import jnn.utils.parametrize as P
    >>> class Double(nn.Module):
    ...     def forward(self, X):
    ...         return 2 * X
    ...     def right_inverse(self, Y):
    ...         return Y / 2
    >>> m = P.register_parametrization(nn.Linear(2, 2), "weight", Double())
    >>> m.weight = jnp.ones((2, 2))
    >>> m.parametrizations.weight.original.tolist(), m.weight.tolist()
    ([[0.5, 0.5], [0.5, 0.5]], [[1.0, 1.0], [1.0, 1.0]])
    """
    if not isinstance(module, Module):
        raise TypeError(f"register_parametrization: module must be a jnn.Module, got {type(module).__name__}")
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: the parametrization must be a jnn.Module (a class with forward), "
                        f"got {type(parametrization).__name__}")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            current = getattr(module, tensor_name)
            value = parametrization(current)
            if not _is_tensor_like(value):
                raise ValueError(f"A parametrization must return a tensor. Got {type(value).__name__}.")
            _check_same(f"register_parametrization: the parametrization of module.{tensor_name}", current, value,
                        _UNSAFE_HINT)
            inverse = getattr(parametrization, "right_inverse", None)
            if inverse is not None:
                try:
                    back = _unwrap(inverse(value))
                except NotImplementedError:
                    pass
                else:
                    if not _is_tensor_like(back):
                        raise ValueError(f"parametrization.right_inverse must return a tensor. Got: "
                                         f"{type(back).__name__}")
                    _check_same(f"register_parametrization: right_inverse of module.{tensor_name}", current, back,
                                _UNSAFE_HINT)
        plist.append(parametrization)
        plist.unsafe = plist.unsafe or unsafe
        return module
    if tensor_name in module._parameters or tensor_name in module._buffers:
        value = getattr(module, tensor_name)
        if value is None:
            raise ValueError(f"register_parametrization: '{tensor_name}' of {type(module).__name__} is None; there "
                             "is no tensor to parametrize")
        if tensor_name in module._parameters:
            original: Any = Parameter(value, requires_grad=tensor_name not in module._frozen_parameters)
        else:
            if tensor_name in module._non_persistent_buffers_set:
                raise ValueError(f"register_parametrization: buffer '{tensor_name}' is not persistent; jnn can "
                                 "parametrize parameters and persistent buffers only")
            original = value
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            module.parametrizations = ModuleDict()
        module.parametrizations[tensor_name] = plist
        _update_class(module)
        return module
    raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a parametrized element with name "
                     f"'{tensor_name}'")


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has a parametrization on ``tensor_name`` (any parametrization when it is None)."""
    names = _parametrized_names(module)
    return bool(names) if tensor_name is None else tensor_name in names


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    """Undo :func:`register_parametrization` on ``tensor_name``; returns ``module``.

    ``leave_parametrized=True`` keeps the current parametrized value as the plain tensor; ``False`` puts the
    original back (only possible when there is one original).

    >>> import jax.numpy as jnp, jnn as nn
    >>> import jnn.utils.parametrize as P
    >>> m = nn.utils.parametrizations.weight_norm(nn.Linear(2, 2))
    >>> m = P.remove_parametrizations(m, "weight")
    >>> type(m).__name__, list(m.state_dict())
    ('Linear', ['bias', 'weight'])
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        as_parameter = "original" in plist._parameters
        requires_grad = as_parameter and "original" not in plist._frozen_parameters
        value = jax.lax.stop_gradient(getattr(module, tensor_name) if leave_parametrized else plist.original)
    else:
        if not leave_parametrized:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is parametrized "
                             "in terms of a sequence of tensors.")
        as_parameter = "original0" in plist._parameters
        requires_grad = as_parameter and "original0" not in plist._frozen_parameters
        value = jax.lax.stop_gradient(getattr(module, tensor_name))
    del module.parametrizations[tensor_name]
    if not len(module.parametrizations):
        del module.parametrizations
    _update_class(module)
    _store(module, tensor_name, value, as_parameter, requires_grad)
    return module


def type_before_parametrizations(module: Module) -> type:
    """The module's class before any parametrization (its class if it has none)."""
    return _base_class(type(module)) if is_parametrized(module) else type(module)


def transfer_parametrizations_and_params(from_module: Module, to_module: Module,
                                         tensor_name: str | None = None) -> Module:
    """Register ``from_module``'s parametrizations (all, or those of ``tensor_name``) on ``to_module`` and give it
    the same originals; returns ``to_module``."""
    if not is_parametrized(from_module):
        return to_module
    names = _parametrized_names(from_module) if tensor_name is None else [tensor_name]
    for name in names:
        source = from_module.parametrizations[name]
        if not hasattr(to_module, name):
            setattr(to_module, name, Parameter(getattr(from_module, name)))
        for parametrization in source:
            register_parametrization(to_module, name, parametrization)
        target = to_module.parametrizations[name]
        keys = ["original"] if source.is_tensor else [f"original{i}" for i in range(source.ntensors)]
        for key in keys:
            setattr(target, key, getattr(source, key))
    return to_module


def _add_attribute_hook(module: Module, hook: Any) -> None:
    """Register an attribute-computing forward pre-hook (see :func:`_attribute_hooks`) and its property."""
    module.register_forward_pre_hook(hook)
    _update_class(module)


def _remove_attribute_hook(module: Module, hook: Any) -> None:
    hooks = module.__dict__.get("_forward_pre_hooks", {})
    module._set_static("_forward_pre_hooks", {k: h for k, h in hooks.items() if h is not hook})
    _update_class(module)
