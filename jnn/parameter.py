"""Parameter and Buffer markers, and the uninitialised placeholders of lazy layers (``torch.nn.parameter``).

JAX arrays are immutable, so a parameter is a named slot of its module, not a kind of array: assigning a
:class:`Parameter` to a module attribute registers the array it wraps, and reading the attribute back gives
the plain array.

>>> import jax.numpy as jnp, jnn as nn
>>> m = nn.Module()
>>> m.scale = nn.parameter.Parameter(jnp.ones(3))
>>> m.steps = nn.parameter.Buffer(jnp.zeros((), jnp.int32))
>>> [name for name, _ in m.named_parameters()], [name for name, _ in m.named_buffers()]
(['scale'], ['steps'])
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jnn._arrays import as_array

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer", "is_lazy"]


class Parameter:
    """Marks an array as a trainable parameter when assigned to a Module attribute.

    Args:
        data: the array (JAX, numpy or a torch tensor, which is copied); None gives an empty array.
        requires_grad: False keeps the parameter in ``state_dict`` but out of the trainable set (``jnn.split``
            puts it with the buffers).

    >>> import jax.numpy as jnp, jnn
    >>> m = jnn.Module()
    >>> m.scale = jnn.Parameter(jnp.ones(3))
    >>> [name for name, _ in m.named_parameters()]
    ['scale']
    """

    __slots__ = ("data", "requires_grad")

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        self.data = jnp.empty((0,)) if data is None else as_array(data, "Parameter", "data")
        self.requires_grad = bool(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + repr(self.data)


class Buffer:
    """Marks an array as a buffer when assigned to a Module attribute (like ``torch.nn.Buffer``).

    Args:
        data: the array.
        persistent: False leaves the buffer out of ``state_dict``.
    """

    __slots__ = ("data", "persistent")

    def __init__(self, data: Any, *, persistent: bool = True) -> None:
        self.data = as_array(data, "Buffer", "data")
        self.persistent = bool(persistent)


class _Uninitialized:
    """A slot of a lazy layer whose shape is not known yet (it becomes an array at the first call, or when a
    state dict is loaded). It has a dtype but no shape; ``materialize(shape)`` gives the array to store."""

    __slots__ = ("dtype", "device", "requires_grad")
    _kind = "Tensor"

    def __init__(self, requires_grad: bool, device: Any, dtype: Any) -> None:
        from jnn._arrays import check_float_dtype

        self.requires_grad = bool(requires_grad)
        self.device = device
        self.dtype = jnp.dtype(jnp.float32) if dtype is None else check_float_dtype(dtype, type(self).__name__)

    @property
    def shape(self) -> tuple:
        raise ValueError(
            f"Can't access the shape of an uninitialized parameter or buffer. This error usually happens in "
            f"`load_state_dict` when trying to load an uninitialized parameter into an initialized one. Call "
            f"`forward` to initialize the parameters before accessing their attributes ({type(self).__name__})."
        )

    def materialize(self, shape: tuple[int, ...], fill: float = 0.0) -> jax.Array:
        """An array of ``shape`` in this slot's dtype (and device), filled with ``fill``."""
        from jnn._arrays import resolve_device

        value = jnp.full(tuple(shape), fill, self.dtype)
        target = resolve_device(self.device)
        return value if target is None else jax.device_put(value, target)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class UninitializedParameter(_Uninitialized):
    """A parameter of a lazy layer before its shape is known (``torch.nn.UninitializedParameter``).

    Args:
        requires_grad: whether the parameter will be trainable.
        device: where the materialised array goes.
        dtype: its dtype (default float32).

    >>> from jnn.parameter import UninitializedParameter, is_lazy
    >>> p = UninitializedParameter()
    >>> is_lazy(p), p.materialize((2,)).shape
    (True, (2,))
    """

    __slots__ = ()

    def __init__(self, requires_grad: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__(requires_grad, device, dtype)


class UninitializedBuffer(_Uninitialized):
    """A buffer of a lazy layer before its shape is known (``torch.nn.UninitializedBuffer``).

    Args:
        requires_grad: kept for torch's signature.
        device: where the materialised array goes.
        dtype: its dtype (default float32).
        persistent: False leaves the buffer out of ``state_dict``.
    """

    __slots__ = ("persistent",)

    def __init__(self, requires_grad: bool = False, device: Any = None, dtype: Any = None,
                 persistent: bool = True) -> None:
        super().__init__(requires_grad, device, dtype)
        self.persistent = bool(persistent)


def is_lazy(param: Any) -> bool:
    """Whether ``param`` is an uninitialised parameter or buffer of a lazy layer."""
    return isinstance(param, _Uninitialized)
