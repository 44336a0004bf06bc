"""Small helpers shared by the layer files: argument tuples and parameter creation."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

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


_CHUNK = 1 << 14


def draw(sample: Any, key: jax.Array, shape: tuple[int, ...], dtype: Any, scale: float = 1.0,
         shift: float = 0.0) -> jax.Array:
    """``shift + scale * sample(key, shape, dtype)``, drawn in chunks of one fixed size: XLA compiles a random
    generator per output size (about a second each on a CPU), so one chunk size lets every parameter of every model
    share one compiled generator; the chunks are joined and cut on the host (in the trace under ``jit``: same values).
    """
    n = math.prod(shape)
    chunks = [sample(jax.random.fold_in(key, i), (_CHUNK,), dtype) for i in range(-(-n // _CHUNK))]
    xp = jnp if any(isinstance(c, jax.core.Tracer) for c in chunks) else np
    flat = xp.concatenate([xp.asarray(c) for c in chunks])[:n].reshape(shape) if chunks else xp.zeros(shape, dtype)
    if scale != 1.0 or shift != 0.0:
        flat = (shift + scale * flat.astype(np.float32)).astype(flat.dtype)
    return jnp.asarray(flat)


def _uniform_array(key: jax.Array, shape: tuple[int, ...], dtype: Any, bound: float) -> jax.Array:
    return draw(lambda k, s, d: jax.random.uniform(k, s, d, -bound, bound), key, shape, dtype)


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
