"""What every family of :mod:`jnn.ops` shares: receiver dispatch, torch's dim/size/dtype argument conventions.

A *method-function* is torch's ``Tensor.name(...)`` written as ``ops.name(x, ...)``. When ``x`` is not an array
(a ``str``, a ``list``, a ``Module``, a Python number) it calls ``x.name(...)`` instead, so code rewritten by
``python -m jnn.port`` keeps ``"a b".split(" ")`` and ``model.float()`` working.

>>> import jax.numpy as jnp
>>> from jnn import ops
>>> ops.split("a b", " "), [t.shape for t in ops.split(jnp.zeros(5), 2)]
(['a', 'b'], [(2,), (2,), (1,)])
"""

from __future__ import annotations

import builtins
import functools
import inspect
import numbers
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from jnn._arrays import default_float as default_float
from jnn._arrays import is_tracer
from jnn.modules import _pytree
from jnn.modules.module import _is_array

__all__: list[str] = []

F = TypeVar("F", bound=Callable[..., Any])

METHODS: set[str] = set()  # every Tensor method name with a method-function
INPLACE: set[str] = set()  # the in-place ones (``add_``): they return the new array


def is_array(value: Any) -> bool:
    """Whether ``value`` is an array (JAX array or tracer, numpy array or scalar) rather than a receiver object."""
    return _is_array(value)


def call_receiver(receiver: Any, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """``receiver.name(*args, **kwargs)`` for a non-array receiver, or a clear error if it has no such method."""
    bound = getattr(receiver, name, None)
    if bound is None:
        raise TypeError(f"jnn.ops.{name} expected an array (or an object with a .{name}() method), "
                        f"got {type(receiver).__name__}")
    return bound(*args, **kwargs)


@functools.cache
def _numpy_aliases(fn: Callable[..., Any]) -> dict[str, str]:
    """NumPy's argument names that torch's parser takes for ``fn``'s own: ``axis`` for ``dim``, ``keepdims`` for
    ``keepdim`` (``x.mean(axis=0)``), where ``fn`` has the torch name and not the NumPy one."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    return {alias: own for alias, own in (("axis", "dim"), ("keepdims", "keepdim"))
            if own in params and alias not in params}


def _torch_names(kwargs: dict[str, Any], aliases: dict[str, str], who: str) -> dict[str, Any]:
    """``kwargs`` with NumPy's names (``aliases``) replaced by torch's."""
    for alias, own in aliases.items():
        if alias in kwargs:
            if own in kwargs:
                raise TypeError(f"jnn.ops.{who}() got multiple values for argument '{own}' ('{alias}' is its NumPy "
                                "name)")
            kwargs[own] = kwargs.pop(alias)
    return kwargs


def numpy_names(fn: F) -> F:
    """``fn`` also takes NumPy's ``axis=`` / ``keepdims=`` for its ``dim`` / ``keepdim``, as torch's functions do
    (method-functions get this from :func:`method`)."""
    aliases = _numpy_aliases(fn)
    if not aliases:
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs and not aliases.keys().isdisjoint(kwargs):
            kwargs = _torch_names(kwargs, aliases, fn.__name__)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def method(fn: F | None = None, *, name: str | None = None) -> Any:
    """Register ``fn`` as the method-function ``name``: a non-array receiver gets its own ``name`` method called.

    The receiver may also be passed as ``input=`` (torch's keyword for namespace functions), and NumPy's ``axis=`` /
    ``keepdims=`` stand for ``dim=`` / ``keepdim=``, as torch's argument parser allows.
    """

    def register(fn: F) -> F:
        method_name = name or fn.__name__

        @functools.wraps(fn)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            if args:
                receiver, args = args[0], args[1:]
            elif "input" in kwargs:
                receiver = kwargs.pop("input")
            elif "self" in kwargs:
                receiver = kwargs.pop("self")
            else:
                raise TypeError(f"jnn.ops.{method_name}() missing its tensor argument")
            if not is_array(receiver):
                if not (isinstance(receiver, numbers.Number) and any(is_array(a) for a in args)):
                    return call_receiver(receiver, method_name, args, kwargs)
                receiver = jnp.asarray(receiver)  # torch's functions take a scalar first: torch.pow(2.0, t)
            if kwargs and ("axis" in kwargs or "keepdims" in kwargs):  # x.mean(axis=0)
                kwargs = _torch_names(kwargs, _numpy_aliases(fn), method_name)
            return fn(receiver, *args, **kwargs)

        METHODS.add(method_name)
        dispatch.__name__ = method_name
        return dispatch  # type: ignore[return-value]

    return register(fn) if fn is not None else register


def write_through(fn: F) -> F:
    """``fn`` (receiver first, returns the new array), which also puts its result in the module slot the receiver
    was just read from (a parameter or buffer: ``for p in model.parameters(): p.zero_()``, an entry of
    ``state_dict()``) and every slot tied to it, as torch's in-place write is seen through the module."""

    @functools.wraps(fn)
    def op(input: Any, *args: Any, **kwargs: Any) -> Any:
        out = fn(input, *args, **kwargs)
        if _pytree._recent_handouts or _pytree._element_handouts:
            _pytree.write_back(input, out)
        return out

    return op  # type: ignore[return-value]


def inplace(fn: F) -> F:
    """Register ``fn`` (``add_``) as an in-place method-function: :func:`write_through` and :func:`method`."""
    INPLACE.add(fn.__name__)
    return method(write_through(fn))

is_traced = is_tracer


def concrete(x: Any, who: str, instead: str) -> Any:
    """Refuse a traced ``x`` where torch's meaning needs its value, naming what to use under ``jit`` instead."""
    if is_traced(x):
        raise TypeError(f"jnn.ops.{who} needs a concrete value, but was called on an array traced by a JAX "
                        f"transformation (jit/grad/vmap), whose values are unknown until it runs. {instead}")
    return x


def normalize_dim(dim: int, ndim: int, who: str) -> int:
    """A torch dim (negative counts from the end) as a non-negative axis; a 0-d array accepts 0 and -1."""
    size = builtins.max(ndim, 1)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"jnn.ops.{who}: dim must be an int, got {type(dim).__name__}")
    if not -size <= dim < size:
        raise IndexError(f"jnn.ops.{who}: dim {dim} is out of range for a {ndim}-d array "
                         f"(expected {-size}..{size - 1})")
    return int(dim) % size


def normalize_dims(dims: Any, ndim: int, who: str) -> tuple[int, ...] | None:
    """``None`` (all dims), an int or a sequence of ints, as a tuple of non-negative axes."""
    if dims is None:
        return None
    if isinstance(dims, (int, np.integer)):
        dims = (dims,)
    axes = tuple(normalize_dim(d, ndim, who) for d in dims)
    if len(set(axes)) != len(axes):
        raise ValueError(f"jnn.ops.{who}: dim {tuple(dims)} names an axis twice")
    return axes


def sizes(args: Sequence[Any], who: str) -> tuple[int, ...]:
    """torch's ``f(2, 3)`` / ``f((2, 3))`` / ``f([2, 3])`` / ``f(torch.Size(...))`` size arguments as a tuple."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    out = []
    for a in args:
        if is_array(a) and np.ndim(a) == 0 and not is_traced(a):
            a = int(a)
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"jnn.ops.{who}: sizes must be ints, got {a!r} ({type(a).__name__}); under jit, "
                            "sizes must be static (take them from .shape, not from a traced array)")
        out.append(int(a))
    return tuple(out)


def to_dtype(dtype: Any) -> np.dtype | None:
    """A dtype in any torch/JAX/numpy spelling (``ops.float``, ``jnp.int64``, ``float``, ``"float32"``) as the dtype
    JAX will use: without ``jax_enable_x64``, 64-bit types become their 32-bit ones (``long()`` is int32)."""
    if dtype is None:
        return None
    return jax.dtypes.canonicalize_dtype(np.dtype(dtype))


def astype(x: Any, dtype: Any) -> jax.Array:
    """``x`` as a JAX array of ``dtype`` (no-op when it already is)."""
    dtype = to_dtype(dtype)
    x = jnp.asarray(x)
    return x if dtype is None or x.dtype == dtype else x.astype(dtype)


def floating(*inputs: Any) -> list[jax.Array]:
    """``inputs`` as arrays of their common inexact dtype; integers and bools become the default float, as torch
    computes transforms and special functions of them."""
    arrays = [jnp.asarray(x) for x in inputs]
    dtype = jnp.result_type(*arrays)
    dtype = dtype if jnp.issubdtype(dtype, jnp.inexact) else default_float()
    return [a.astype(dtype) for a in arrays]
