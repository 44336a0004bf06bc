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

import operator
from typing import Any

import jax

__all__ = ["at", "data"]


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


class _At:
    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __getitem__(self, index: Any) -> Any:
        if isinstance(self.obj, jax.Array):
            return self.obj.at[index]
        return _Update(self.obj, index)


def at(obj: Any) -> _At:
    """``obj.at`` for a JAX array; for anything else (list, dict, numpy array, ModuleList) an in-place update.

    >>> d = {}
    >>> at(d)["k"].set(1)
    {'k': 1}
    """
    return _At(obj)


def data(obj: Any) -> Any:
    """torch's ``x.data``: the array without its gradient (``stop_gradient``); ``obj.data`` for anything else.

    >>> import jax, jax.numpy as jnp
    >>> float(jax.grad(lambda x: (x * data(x)).sum())(jnp.array(3.0)))
    3.0
    """
    if isinstance(obj, jax.Array):
        return jax.lax.stop_gradient(obj)
    return obj.data
