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


def uniform(shape: tuple[int, ...], bound: float, dtype: Any, device: Any, who: str) -> jax.Array:
    """U(-bound, bound) from jnn's random stream: PyTorch's default init for Linear and Conv."""
    value = jax.random.uniform(random.next_key(who), shape, factory_dtype(dtype, who), -bound, bound)
    return place(value, device)


def fan_in_bound(fan_in: int) -> float:
    """kaiming_uniform_(a=sqrt(5)) and the bias rule both reduce to U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
