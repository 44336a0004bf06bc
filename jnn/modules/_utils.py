"""Small helpers shared by the layer files: argument tuples and parameter creation."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jnn import random
from jnn.modules.module import _check_float_dtype, _resolve_device


def _ntuple(value: Any, n: int) -> tuple:
    """``3`` -> ``(3, 3)``; tuples and lists pass through as tuples."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def factory_dtype(dtype: Any, who: str) -> jnp.dtype:
    """The dtype a layer creates its floating-point parameters in (default float32); torch dtypes work too."""
    if dtype is None:
        return jnp.dtype(jnp.float32)
    if type(dtype).__module__ == "torch":  # torch.float16 -> "float16", without importing torch
        dtype = str(dtype).removeprefix("torch.")
    return _check_float_dtype(dtype, who)


def place(value: jax.Array, device: Any) -> jax.Array:
    target = _resolve_device(device)
    return value if target is None else jax.device_put(value, target)


def _draw_size(n: int) -> int:
    """``n`` rounded up to one of a few sizes (1024, then multiples of 2**e in (4 * 2**e, 8 * 2**e]).

    XLA compiles the random generator anew for every output size, which costs about a second per size on a
    CPU; drawing one of these sizes and slicing lets layers of different shapes share the compiled code
    (at most 25% extra draws).
    """
    if n <= 1024:
        return 1024
    step = 1 << ((n - 1).bit_length() - 3)
    return -(-n // step) * step


def _uniform_array(key: jax.Array, shape: tuple[int, ...], dtype: Any, bound: float) -> jax.Array:
    n = math.prod(shape)
    flat = jax.random.uniform(key, (_draw_size(n),), dtype, -bound, bound)
    return flat[:n].reshape(shape)


def uniform(shape: tuple[int, ...], bound: float, dtype: Any, device: Any, who: str) -> jax.Array:
    """U(-bound, bound) from jnn's random stream: PyTorch's default init for Linear and Conv."""
    value = _uniform_array(random.next_key(who), tuple(shape), factory_dtype(dtype, who), bound)
    return place(value, device)


def redraw_uniform(like: jax.Array, bound: float, who: str) -> jax.Array:
    """A fresh U(-bound, bound) draw with ``like``'s shape, dtype and placement (for ``reset_parameters``)."""
    value = _uniform_array(random.next_key(who), like.shape, like.dtype, bound)
    return value if isinstance(like, jax.core.Tracer) else jax.device_put(value, like.sharding)


def affine_parameters(module: Any, shape: Any, affine: bool, bias: bool, dtype: Any, device: Any) -> None:
    """The affine part of the normalisation layers: ``weight`` ones and ``bias`` zeros, or None."""
    from jnn.modules.module import Parameter

    module.register_parameter("weight", Parameter(place(jnp.ones(shape, dtype), device)) if affine else None)
    module.register_parameter("bias", Parameter(place(jnp.zeros(shape, dtype), device)) if affine and bias else None)


def reset_affine(module: Any) -> None:
    """``weight`` back to ones and ``bias`` to zeros, where they exist."""
    if module.weight is not None:
        module.weight = jnp.ones_like(module.weight)
    if module.bias is not None:
        module.bias = jnp.zeros_like(module.bias)


def fan_in_bound(fan_in: int) -> float:
    """kaiming_uniform_(a=sqrt(5)) and the bias rule both reduce to U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
