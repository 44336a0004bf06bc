"""torch's in-place methods (``x.add_(y)``, ``x.zero_()``, ``x.masked_fill_(m, v)``, ...) as functions returning the
new array: JAX arrays cannot change, so ``ops.add_(x, y)`` is ``x + y`` in ``x``'s dtype and shape, and the caller
rebinds it (``python -m jnn.port`` rewrites ``x.add_(y)`` to ``x = ops.add_(x, y)``). As in torch, a result that
would need a wider category (float into an integer array) or another shape is refused.

>>> import jax.numpy as jnp
>>> x = jnp.ones(3, jnp.float16)
>>> add_(x, jnp.ones(3, jnp.float32)).dtype, zero_(x).tolist(), fill_(x, 5).tolist()
(dtype('float16'), [0.0, 0.0, 0.0], [5.0, 5.0, 5.0])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jnn.ops import indexing, misc, pointwise, reduction, shape
from jnn.ops._core import inplace
from jnn.ops.dtypes import can_cast

# in-place methods whose result must keep the receiver's shape, by the module defining the out-of-place function
_SAME_SHAPE = {
    pointwise: [
        "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide", "remainder",
        "fmod", "pow", "float_power", "clamp", "clip", "clamp_min", "clamp_max", "lerp", "addcmul", "addcdiv",
        "relu", "sigmoid", "tanh", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "neg",
        "negative", "abs", "absolute", "floor", "ceil", "round", "trunc", "fix", "frac", "sign", "sgn", "reciprocal",
        "square", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erf",
        "erfc", "erfinv", "logit", "nan_to_num", "atan2", "arctan2", "hypot", "copysign", "eq", "ne", "gt", "ge",
        "lt", "le", "logical_and", "logical_or", "logical_xor",
        "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "addmm", "baddbmm", "addbmm",
        "addmv", "digamma", "lgamma", "i0", "xlogy", "deg2rad", "rad2deg", "sinc", "heaviside", "addr", "igamma",
        "igammac", "polygamma", "mvlgamma",
    ],
    indexing: ["masked_fill", "masked_scatter", "index_fill", "index_add", "index_copy", "index_put", "scatter",
               "scatter_add", "scatter_reduce", "tril", "triu"],
    reduction: ["renorm"],
}
# in-place methods that change the receiver's shape (torch allows these on views of the same storage)
_NEW_SHAPE = {shape: ["t", "transpose", "swapaxes", "swapdims", "squeeze", "unsqueeze"], misc: ["detach"]}


def _same_shape(name: str, fn: Callable) -> Callable:
    def op(input: Any, *args: Any, **kwargs: Any) -> jax.Array:
        x = jnp.asarray(input)
        out = jnp.asarray(fn(x, *args, **kwargs))
        if out.shape != x.shape:
            raise ValueError(f"jnn.ops.{name}: the result has shape {out.shape}, but an in-place update keeps the "
                             f"array's shape {x.shape}")
        if not can_cast(out.dtype, x.dtype):
            raise TypeError(f"jnn.ops.{name}: result type {out.dtype} can't be cast to the array's {x.dtype}")
        return out.astype(x.dtype)

    return op


def _register(name: str, op: Callable, base: str) -> Callable:
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"torch's in-place ``{name}``: :func:`{base}`, returned as a new array (``x = {name}(x, ...)``)."
    return inplace(op)


for _module, _names in _SAME_SHAPE.items():
    for _name in _names:
        globals()[_name + "_"] = _register(_name + "_", _same_shape(_name + "_", getattr(_module, _name)), _name)
for _module, _names in _NEW_SHAPE.items():
    for _name in _names:
        _fn = getattr(_module, _name)
        globals()[_name + "_"] = _register(_name + "_", lambda *a, _fn=_fn, **k: _fn(*a, **k), _name)

__all__ = [n + "_" for names in (*_SAME_SHAPE.values(), *_NEW_SHAPE.values()) for n in names]
__all__ += ["zero_", "fill_", "copy_", "fill_diagonal_"]


def _keep(x: Any, value: Any, name: str) -> jax.Array:
    x = jnp.asarray(x)
    value = jnp.asarray(value)
    if not can_cast(value.dtype, x.dtype) and not (value.ndim == 0 and value.dtype.kind in "fiub"):
        raise TypeError(f"jnn.ops.{name}: {value.dtype} can't be cast to the array's {x.dtype}")
    return _fresh(jnp.broadcast_to(value, x.shape).astype(x.dtype), value)


def _fresh(out: jax.Array, source: Any) -> jax.Array:
    """``out``, or a copy of it where it is ``source`` itself: torch's copy is new memory, and jnn ties module slots
    (and keeps ``requires_grad``) by array identity, so ``q.copy_(p)`` must not make ``q`` the array ``p`` is."""
    return misc.clone(out) if out is source else out


def zero_(input: Any) -> jax.Array:
    """Zeros like ``input`` (torch zeroes it in place)."""
    return jnp.zeros_like(input)


def fill_(input: Any, value: Any) -> jax.Array:
    """``value`` everywhere, in ``input``'s shape and dtype."""
    return _keep(input, value, "fill_")


def copy_(input: Any, src: Any, non_blocking: bool = False) -> jax.Array:
    """``src`` broadcast to ``input``'s shape and converted to its dtype."""
    x, src = jnp.asarray(input), jnp.asarray(src)
    return _fresh(jnp.broadcast_to(src, x.shape).astype(x.dtype), src)


def fill_diagonal_(input: Any, fill_value: Any, wrap: bool = False) -> jax.Array:
    """``input`` with its main diagonal (all dims equal index) set to ``fill_value``."""
    x = jnp.asarray(input)
    n = min(x.shape)
    index = jnp.arange(n)
    if wrap and x.ndim == 2 and x.shape[0] > x.shape[1] + 1:
        rows = jnp.arange(0, x.shape[0] * x.shape[1], x.shape[1] + 1)
        return x.ravel().at[rows[rows < x.size]].set(fill_value).reshape(x.shape)
    return x.at[(index,) * x.ndim].set(fill_value)


for _fn in (zero_, fill_, copy_, fill_diagonal_):
    globals()[_fn.__name__] = inplace(_fn)
