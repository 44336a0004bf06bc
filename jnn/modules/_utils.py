"""Small helpers shared by the layer files: argument tuples and parameter creation."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn import random
from jnn._arrays import default_float, host_buffer, host_copy, is_tracer, to_device
from jnn.modules.module import _check_float_dtype, _resolve_device


def _ntuple(value: Any, n: int) -> tuple:
    """``3`` -> ``(3, 3)``; tuples and lists pass through as tuples, unchecked, as torch's modules keep what they
    were given (the functions of ``jnn.functional`` check lengths, with ``jnn.functional._utils._ntuple``)."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def factory_dtype(dtype: Any, who: str) -> jnp.dtype:
    """The dtype a layer creates its floating-point parameters in (default: ``jnn.ops.get_default_dtype()``,
    float32 unless set); torch dtypes work too."""
    if dtype is None:
        return jnp.dtype(default_float())
    if type(dtype).__module__ == "torch":  # torch.float16 -> "float16", without importing torch
        dtype = str(dtype).removeprefix("torch.")
    return _check_float_dtype(dtype, who)


def place(value: np.ndarray | jax.Array, device: Any) -> jax.Array:
    """``value`` on ``device`` (the default device if None); host (NumPy) values are copied over once."""
    target = _resolve_device(device)
    if target is None:
        return to_device(value) if isinstance(value, np.ndarray) else value
    return jax.device_put(value, target)


_CHUNK = 1 << 14


def _chunked(sample: Any, key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """``sample(key, shape, dtype)`` drawn in chunks of one fixed size: XLA compiles a random generator per output
    size (about a second each on a CPU), so one chunk size lets every draw from a key share one compiled
    generator; the chunks are joined and cut on the host (in the trace under ``jit``: the same values)."""
    n = math.prod(shape)
    chunks = [sample(jax.random.fold_in(key, i), (_CHUNK,), dtype) for i in range(-(-n // _CHUNK))]
    xp = jnp if any(is_tracer(c) for c in chunks) else np
    return xp.concatenate([xp.asarray(c) for c in chunks])[:n].reshape(shape) if chunks else xp.zeros(shape, dtype)


def _host_dtype(dtype: Any) -> np.dtype:
    """The dtype NumPy draws in for ``dtype``: float64 stays, everything narrower is drawn in float32."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _host_normal(rng: np.random.Generator, n: int, dtype: np.dtype) -> np.ndarray:
    """``n`` standard normals by Box-Muller over NumPy's uniform floats, in place: twice as fast as NumPy's own
    float32 normals, which made most of the time of building a ResNet."""
    half = (n + 1) // 2
    out = rng.random(dtype=dtype, out=host_buffer((2 * half,), dtype))
    radius, angle = out[:half], out[half:]
    np.negative(radius, out=radius)
    np.log1p(radius, out=radius)  # log(1 - u), u in [0, 1): finite
    radius *= -2
    np.sqrt(radius, out=radius)
    angle *= dtype.type(2 * np.pi)
    sine = np.sin(angle)
    np.cos(angle, out=angle)
    angle *= radius  # r cos(t)
    radius *= sine  # r sin(t)
    return out[:n]


def _cast(values: np.ndarray, dtype: Any) -> np.ndarray:
    """``values`` in ``dtype``, in memory the CPU device adopts (:func:`jnn._arrays.host_copy`)."""
    return values if values.dtype == dtype else host_copy(values, dtype)


def uniform_sample(source: np.random.Generator | jax.Array, shape: tuple[int, ...], dtype: Any, low: float,
                   high: float) -> np.ndarray | jax.Array:
    """U(low, high) of ``shape`` in ``dtype``, from :func:`jnn.random.next_source` (NumPy on the host, or a key)."""
    if isinstance(source, np.random.Generator):
        values = source.random(dtype=_host_dtype(dtype), out=host_buffer(shape, _host_dtype(dtype)))
        values *= high - low
        values += low
        return _cast(values, dtype)
    return _chunked(lambda k, s, d: jax.random.uniform(k, s, d, low, high), source, shape, dtype)


def normal_sample(source: np.random.Generator | jax.Array, shape: tuple[int, ...], dtype: Any, mean: float,
                  std: float) -> np.ndarray | jax.Array:
    """N(mean, std²) of ``shape`` in ``dtype``, from :func:`jnn.random.next_source`."""
    if isinstance(source, np.random.Generator):
        values = _host_normal(source, math.prod(shape), _host_dtype(dtype)).reshape(shape)
        values *= std
        values += mean
        return _cast(values, dtype)
    unit = _chunked(jax.random.normal, source, shape, jnp.float32)
    return (mean + std * unit).astype(dtype)


def trunc_normal_sample(source: np.random.Generator | jax.Array, shape: tuple[int, ...], dtype: Any, mean: float,
                        std: float, a: float, b: float) -> np.ndarray | jax.Array:
    """N(mean, std²) truncated to ``[a, b]`` (absolute bounds, as torch's ``trunc_normal_``)."""
    lower, upper = (a - mean) / std, (b - mean) / std
    if isinstance(source, np.random.Generator):
        mass = 0.5 * (math.erf(upper / math.sqrt(2)) - math.erf(lower / math.sqrt(2)))
        if mass < 0.25:  # far in a tail, rejection would take many rounds: draw a key from the stream instead
            source = jax.random.key(int(source.integers(2**32)))
        else:
            host_dtype = _host_dtype(dtype)
            unit = _host_normal(source, math.prod(shape), host_dtype)
            # Box-Muller over float32 uniforms never goes beyond 5.8 (float64: 8.6): wider bounds reject nothing
            reach = 5.8 if host_dtype == np.float32 else 8.6
            while (lower > -reach or upper < reach) and (
                    rejected := np.flatnonzero((unit < lower) | (unit > upper))).size:
                unit[rejected] = _host_normal(source, rejected.size, host_dtype)
            values = unit.reshape(shape)
            values *= std
            values += mean
            np.clip(values, a, b, out=values)
            return _cast(values, dtype)
    unit = _chunked(lambda k, s, d: jax.random.truncated_normal(k, lower, upper, s, d), source, shape, jnp.float32)
    return jnp.clip(mean + std * unit, a, b).astype(dtype)


def uniform(shape: tuple[int, ...], bound: float, dtype: Any, device: Any, who: str) -> jax.Array:
    """U(-bound, bound) from jnn's random stream: PyTorch's default init for Linear and Conv."""
    value = uniform_sample(random.next_source(who), tuple(shape), factory_dtype(dtype, who), -bound, bound)
    return place(value, device)


def normal(shape: tuple[int, ...], std: float, dtype: Any, device: Any, who: str) -> jax.Array:
    """N(0, std²) from jnn's random stream (Embedding's default init)."""
    value = normal_sample(random.next_source(who), tuple(shape), factory_dtype(dtype, who), 0.0, std)
    return place(value, device)


def like(value: np.ndarray | jax.Array, template: jax.Array) -> jax.Array:
    """``value`` with ``template``'s placement (for ``reset_parameters``); traced values stay as they are."""
    if is_tracer(template) or is_tracer(value):
        return value
    # an uncommitted template (made without a device) stays uncommitted: a jitted step would compile again otherwise
    return place(value, template.sharding if template.committed else None)


def redraw_uniform(template: jax.Array, bound: float, who: str) -> jax.Array:
    """A fresh U(-bound, bound) draw with ``template``'s shape, dtype and placement (for ``reset_parameters``)."""
    return like(uniform_sample(random.next_source(who), template.shape, template.dtype, -bound, bound), template)


def host_full(shape: Any, fill: float, dtype: Any) -> np.ndarray:
    """``np.full`` (``shape`` an int or a tuple) in memory the CPU device adopts (:func:`jnn._arrays.host_buffer`)."""
    out = host_buffer((shape,) if isinstance(shape, int) else tuple(shape), dtype)
    out.fill(fill)
    return out


def full(shape: Any, fill: float, dtype: Any, device: Any) -> jax.Array:
    """An array of ``fill`` made on the host and copied to ``device`` once (``jnp.full`` compiles per shape)."""
    return place(host_full(shape, fill, dtype), device)


def filled(template: jax.Array, fill: float) -> np.ndarray | jax.Array:
    """``template``'s shape and dtype filled with ``fill``: on the host, or traced if ``template`` is."""
    return jnp.full_like(template, fill) if is_tracer(template) else host_full(template.shape, fill, template.dtype)


def refill(template: jax.Array, fill: float) -> jax.Array:
    """``template``'s shape, dtype and placement, filled with ``fill``."""
    return like(filled(template, fill), template)


def affine_parameters(module: Any, shape: Any, affine: bool, bias: bool, dtype: Any, device: Any,
                      buffers: dict[str, tuple | None] | None = None) -> None:
    """The affine part of the normalisation layers, ``weight`` ones and ``bias`` zeros (or None), and ``buffers``
    (``{name: (shape, fill, dtype) or None}``, e.g. BatchNorm's statistics), made on the host."""
    from jnn.modules.module import Parameter

    params = {"weight": (shape, 1, dtype) if affine else None, "bias": (shape, 0, dtype) if affine and bias else None}
    buffers = buffers or {}
    specs = {name: spec for name, spec in (params | buffers).items() if spec is not None}
    arrays = {name: place(host_full(*spec), device) for name, spec in specs.items()}
    for name in params:
        module.register_parameter(name, Parameter(arrays[name]) if name in arrays else None)
    for name in buffers:
        module.register_buffer(name, arrays.get(name))


def reset_affine(module: Any) -> None:
    """``weight`` back to ones and ``bias`` to zeros, where they exist."""
    if module.weight is not None:
        module.weight = refill(module.weight, 1)
    if module.bias is not None:
        module.bias = refill(module.bias, 0)


def fan_in_bound(fan_in: int) -> float:
    """kaiming_uniform_(a=sqrt(5)) and the bias rule both reduce to U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
