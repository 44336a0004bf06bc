"""Two helpers the port tool (``python -m jnn.port``) writes into ported code: element updates and ``.data``.

``a[i] = v`` on a torch tensor changes it in place; a JAX array cannot change, so the port writes
``a = ops.at(a)[i].set(v)``. The same line must still work when ``a`` is a list, a dict or a ``ModuleList``
(model code assigns into those too, and the port cannot always tell them apart), so :func:`at` dispatches: a JAX
array gets ``a.at[i]`` (its functional update), anything else is updated in place and returned.

>>> import jax.numpy as jnp
>>> at(jnp.zeros(3))[1].set(5.0).tolist()
[0.0, 5.0, 0.0]
>>> at([1, 2, 3])[0].add(10)
[11, 2, 3]
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn._arrays import is_tracer
from jnn.modules._pytree import _NO_ATTRIBUTES, write_back
from jnn.ops._eager import host, host_cast, placed

__all__ = ["at", "store", "data", "set_data", "attr", "TENSOR_ATTRIBUTES", "DTYPE_ATTRIBUTES"]

TENSOR_ATTRIBUTES = frozenset({"device", "is_cuda", "requires_grad", "grad", "is_leaf", "grad_fn", "layout",
                               "is_cpu", "is_quantized", "is_sparse", "is_meta", "is_mps", "is_xpu"})
"""torch Tensor attributes a JAX array lacks (or a tracer lacks): the port reads them with :func:`attr`."""

DTYPE_ATTRIBUTES = frozenset({"is_floating_point", "is_complex", "is_signed", "itemsize"})
"""torch.dtype attributes a NumPy dtype (what jnn's dtypes are) lacks or names otherwise: the port reads them
(when not called) with :func:`attr`."""


class _Update:
    """``obj[index] op= value`` on a mutable container, returning the container (the shape of ``jax.Array.at``)."""

    __slots__ = ("obj", "index")

    def __init__(self, obj: Any, index: Any) -> None:
        self.obj = obj
        self.index = index

    def _apply(self, op: Any, value: Any) -> Any:
        self.obj[self.index] = value if op is None else op(self.obj[self.index], value)
        return self.obj

    def set(self, value: Any) -> Any:
        return self._apply(None, value)

    def add(self, value: Any) -> Any:
        return self._apply(operator.add, value)

    def subtract(self, value: Any) -> Any:
        return self._apply(operator.sub, value)

    def multiply(self, value: Any) -> Any:
        return self._apply(operator.mul, value)

    def divide(self, value: Any) -> Any:
        return self._apply(operator.truediv, value)

    def power(self, value: Any) -> Any:
        return self._apply(operator.pow, value)


class _HostUpdate:
    """``x.at[index]`` of a concrete CPU array made in NumPy (no compile per shape; the results are copies of
    elements, or one IEEE operation on them, as in XLA). Whatever NumPy would do otherwise than JAX (an index
    out of bounds, a value of another kind) is left to ``x.at[index]``."""

    __slots__ = ("array", "view", "index")

    def __init__(self, array: jax.Array, view: np.ndarray, index: Any) -> None:
        self.array, self.view, self.index = array, view, index

    def _apply(self, method: str, value: Any, combine: Any = None) -> jax.Array:
        values = host_cast(value, self.view.dtype)
        if values is not None:
            out = self.view.copy()
            try:
                if combine is None:
                    out[self.index] = values
                else:
                    combine.at(out, self.index, values)
            except (IndexError, ValueError, TypeError):
                pass  # JAX's meaning (dropped out-of-bounds updates) or JAX's error
            else:
                return placed(out)
        return getattr(self.array.at[self.index], method)(value)

    def set(self, value: Any) -> jax.Array:
        return self._apply("set", value)

    def add(self, value: Any) -> jax.Array:
        return self._apply("add", value, np.add)

    def subtract(self, value: Any) -> jax.Array:
        return self._apply("subtract", value, np.subtract)

    def multiply(self, value: Any) -> jax.Array:
        return self._apply("multiply", value, np.multiply)

    def divide(self, value: Any) -> jax.Array:
        return self.array.at[self.index].divide(value)

    def power(self, value: Any) -> jax.Array:
        return self.array.at[self.index].power(value)


def _host_index(index: Any) -> Any:
    """``index`` with its arrays as NumPy views when NumPy reads it as JAX does, else None."""
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for part in parts:
        if part is None or part is Ellipsis or (isinstance(part, (int, np.integer)) and not isinstance(part, bool)):
            out.append(part)
        elif isinstance(part, slice):
            if not all(b is None or isinstance(b, (int, np.integer)) for b in (part.start, part.stop, part.step)):
                return None
            out.append(part)
        else:
            views = host(part) if not isinstance(part, (bool, list)) else None
            if views is None or views[0].dtype.kind not in "iub":
                return None
            out.append(views[0])
    return tuple(out) if isinstance(index, tuple) else out[0]


class _MaskedUpdate:
    """``x.at[mask]`` for a traced boolean ``mask`` over ``x``'s leading dimensions: ``x[mask]`` has a size known
    only at run time, so ``jax.jit`` cannot gather it, but an update by a value that broadcasts over the trailing
    dimensions (as ``x[mask] = 0.0`` or ``x[mask] = embedding``) is ``jnp.where``. Other values get JAX's error."""

    __slots__ = ("array", "mask")

    def __init__(self, array: jax.Array, mask: jax.Array) -> None:
        self.array, self.mask = array, mask

    def _apply(self, method: str, value: Any, combine: Any = None) -> jax.Array:
        trailing = self.array.shape[self.mask.ndim:]
        shape = np.shape(value)
        if len(shape) > len(trailing) and not all(n == 1 for n in shape[:len(shape) - len(trailing)]):
            return getattr(self.array.at[self.mask], method)(value)  # one value per selected element: JAX's error
        value = jnp.reshape(jnp.asarray(value), shape[len(shape) - len(trailing):] if len(shape) > len(trailing)
                            else shape)
        new = value if combine is None else combine(self.array, value)
        mask = jnp.reshape(self.mask, self.mask.shape + (1,) * len(trailing))
        return jnp.where(mask, jnp.asarray(new).astype(self.array.dtype), self.array)

    def set(self, value: Any) -> jax.Array:
        return self._apply("set", value)

    def add(self, value: Any) -> jax.Array:
        return self._apply("add", value, jnp.add)

    def subtract(self, value: Any) -> jax.Array:
        return self._apply("subtract", value, jnp.subtract)

    def multiply(self, value: Any) -> jax.Array:
        return self._apply("multiply", value, jnp.multiply)

    def divide(self, value: Any) -> jax.Array:
        return self._apply("divide", value, jnp.divide)

    def power(self, value: Any) -> jax.Array:
        return self._apply("power", value, jnp.power)


def _traced_leading_mask(array: jax.Array, index: Any) -> Any:
    """``index`` (or the one element of a 1-tuple) when it is a traced boolean array over ``array``'s leading
    dimensions, else None."""
    if isinstance(index, tuple) and len(index) == 1:
        index = index[0]
    if (is_tracer(index) and index.dtype == jnp.bool_ and 0 < index.ndim <= array.ndim
            and index.shape == array.shape[:index.ndim]):
        return index
    return None


class _At:
    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __getitem__(self, index: Any) -> Any:
        if isinstance(self.obj, jax.Array):
            mask = _traced_leading_mask(self.obj, index)
            if mask is not None:
                return _MaskedUpdate(self.obj, mask)
            views = host(self.obj)
            host_index = _host_index(index) if views is not None else None
            if host_index is not None:
                return _HostUpdate(self.obj, views[0], host_index)
            return self.obj.at[index]
        return _Update(self.obj, index)


def at(obj: Any) -> _At:
    """``obj.at`` for a JAX array; for anything else (list, dict, numpy array, ModuleList) an in-place update.

    >>> d = {}
    >>> at(d)["k"].set(1)
    {'k': 1}
    """
    return _At(obj)


def store(obj: Any, name: str, value: Any) -> None:
    """``obj.name = value``, unless ``obj.name`` already is ``value``: what the port writes for ``obj.name[i] = v``
    (``store(obj, "name", at(obj.name)[i].set(v))``). A JAX array gets its new value; a list or dict, updated in
    place, is not assigned again, as torch's code never assigned it (a frozen dataclass or a read-only property
    would refuse it).

    >>> import types, jax.numpy as jnp
    >>> o = types.SimpleNamespace(w=jnp.zeros(2), names=["a"])
    >>> store(o, "w", at(o.w)[0].set(1.0)); store(o, "names", at(o.names)[0].set("b"))
    >>> o.w.tolist(), o.names
    ([1.0, 0.0], ['b'])
    """
    if getattr(obj, name) is not value:
        setattr(obj, name, value)


def data(obj: Any) -> Any:
    """torch's ``x.data``: the array without its gradient (``stop_gradient``); ``obj.data`` for anything else.

    >>> import jax, jax.numpy as jnp
    >>> float(jax.grad(lambda x: (x * data(x)).sum())(jnp.array(3.0)))
    3.0
    """
    if isinstance(obj, jax.Array):
        return jax.lax.stop_gradient(obj)
    return obj.data


def set_data(obj: Any, value: Any) -> Any:
    """torch's ``x.data = value`` (the port writes ``x = set_data(x, value)``): ``value``, which also replaces ``x``
    in the module slot ``x`` was just read from (and the slots tied to it), as torch's tensor, shared with its
    module, takes the new data; ``obj.data = value`` for anything but an array.

    >>> import jnn, jax.numpy as jnp
    >>> lin = jnn.Linear(2, 1)
    >>> for p in lin.parameters():
    ...     p = set_data(p, jnp.zeros_like(p))
    >>> lin.weight.tolist(), lin.bias.tolist()
    ([[0.0, 0.0]], [0.0])
    """
    if not isinstance(obj, jax.Array):
        obj.data = value
        return obj
    value = jnp.asarray(value)
    write_back(obj, value)
    return value


def attr(obj: Any, name: str) -> Any:
    """torch's tensor attribute ``name`` (one of :data:`TENSOR_ATTRIBUTES`) for an array, torch.dtype's attribute
    (one of :data:`DTYPE_ATTRIBUTES`) for a dtype, ``getattr`` otherwise.

    For arrays: ``device`` is the default backend's device (``cuda`` on a GPU), ``is_cuda`` says whether that is a
    GPU (``is_cpu`` whether it is the CPU; ``is_quantized``, ``is_sparse``, ``is_meta``, ``is_mps`` and ``is_xpu``
    are False), ``requires_grad`` is True for floating arrays (JAX differentiates whatever it is asked to), ``grad`` is
    what the program stored in the array's ``grad`` (``t.grad = g``: torch code keeps running sums there), else None
    (gradients are pytrees returned by ``jax.grad``), ``grad_fn`` is None, ``is_leaf`` is True, ``layout`` "strided".

    >>> import jax.numpy as jnp
    >>> x, i = jnp.ones(2), jnp.ones(2, dtype=jnp.int32)
    >>> attr(x, "requires_grad"), attr(i, "requires_grad"), attr(x, "grad")
    (True, False, None)
    >>> x.grad = jnp.zeros(2)
    >>> attr(x, "grad")
    Array([0., 0.], dtype=float32)
    >>> attr(jnp.ones(2), "device").type in ("cpu", "cuda", "tpu")
    True
    >>> attr(x.dtype, "is_floating_point"), attr(jnp.uint8, "is_signed"), attr(jnp.dtype("complex64"), "itemsize")
    (True, False, 8)
    """
    if name in DTYPE_ATTRIBUTES:
        dtype = _as_dtype(obj)
        if dtype is not None:
            return _dtype_attr(dtype, name)
        if isinstance(obj, jax.Array):  # x.itemsize, or torch's bound method x.is_floating_point
            from jnn import ops

            return obj.dtype.itemsize if name == "itemsize" else functools.partial(getattr(ops, name), obj)
    if not isinstance(obj, jax.Array):
        return getattr(obj, name)
    if name not in TENSOR_ATTRIBUTES:
        raise AttributeError(f"jnn.ops.attr: '{name}' is not one of {sorted(TENSOR_ATTRIBUTES)}")
    backend = jax.default_backend()
    if name == "device":
        from jnn.ops.dtypes import device

        return device({"gpu": "cuda", "cuda": "cuda", "rocm": "cuda"}.get(backend, backend))
    if name == "is_cuda":
        return backend in ("gpu", "cuda", "rocm")
    if name == "is_cpu":
        return backend == "cpu"
    if name in ("is_quantized", "is_sparse", "is_meta", "is_mps", "is_xpu"):
        return False
    if name == "requires_grad":
        return bool(jnp.issubdtype(obj.dtype, jnp.inexact))
    if name == "is_leaf":
        return True
    if name == "layout":
        return "strided"
    if name == "grad":
        return getattr(obj, "__dict__", _NO_ATTRIBUTES).get("grad")
    return None  # grad_fn


def _as_dtype(obj: Any) -> np.dtype | None:
    """``obj`` as a NumPy dtype when it is a dtype (``np.dtype``, ``jnp.float32``, ``ops.float``), else None."""
    if isinstance(obj, np.dtype):
        return obj
    if isinstance(obj, type) and (issubclass(obj, np.generic) or isinstance(getattr(obj, "dtype", None), np.dtype)):
        return np.dtype(obj)
    from jnn.ops.dtypes import DtypeMethod

    return obj.dtype if isinstance(obj, DtypeMethod) else None


def _dtype_attr(dtype: np.dtype, name: str) -> Any:
    if name == "itemsize":
        return dtype.itemsize
    if name == "is_floating_point":
        return bool(jnp.issubdtype(dtype, jnp.floating))
    if name == "is_complex":
        return bool(jnp.issubdtype(dtype, jnp.complexfloating))
    return dtype.kind not in "ub"  # is_signed: False for unsigned integers and bool, as torch
