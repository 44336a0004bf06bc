"""Parameter initialisation, mirroring ``torch.nn.init``.

JAX arrays are immutable, so each ``*_`` function returns a new array. PyTorch code changes parameters in
place — ``nn.init.zeros_(layer.bias)``, ``net.apply(init_weights)``, ``for p in net.parameters(): ...`` —
and that works here too: when the array passed in was just read from a module (as an attribute, or from
``parameters()``/``named_parameters()``/``buffers()``), the result is written back into that module's slot.
An array that came from nowhere (``w = jnp.empty((3, 5)); init.uniform_(w)``) cannot change: the function
warns with :class:`NotInPlaceWarning`, and the returned array holds the result (``w = init.uniform_(w)``).

Random draws come from jnn's stream (:func:`jnn.manual_seed`, :func:`jnn.random.fork`) or an explicit
``key=``; PyTorch's ``generator=`` is not supported.

>>> import jax.numpy as jnp, jnn as nn
>>> layer = nn.Linear(3, 2)
>>> _ = nn.init.zeros_(layer.bias)
>>> layer.bias.tolist()
[0.0, 0.0]
>>> def init_weights(m):
...     if isinstance(m, nn.Linear):
...         nn.init.constant_(m.weight, 0.5)
>>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU()).apply(init_weights)
>>> net[0].weight.tolist()
[[0.5, 0.5], [0.5, 0.5]]
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn import random
from jnn._arrays import is_tracer
from jnn.modules._utils import filled, like, normal_sample, trunc_normal_sample, uniform_sample
from jnn.modules.module import _write_back

__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_",
    "NotInPlaceWarning",
]


class NotInPlaceWarning(UserWarning):
    """An init function got an array that no module slot handed out, so only its return value changed."""


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    >>> round(calculate_gain("relu"), 4)
    1.4142
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d")
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _result(who: str, tensor: jax.Array, new: np.ndarray | jax.Array) -> jax.Array:
    new = new.astype(tensor.dtype, copy=False)
    new = jnp.asarray(new) if is_tracer(tensor) else like(new, tensor)
    if not _write_back(tensor, new):
        warnings.warn(
            f"jnn.init.{who}: the array passed in is not a parameter or buffer just read from a module, so it "
            f"cannot be changed in place (JAX arrays are immutable); use the returned array, e.g. "
            f"`w = nn.init.{who}(w)`.", NotInPlaceWarning, stacklevel=3)
    return new


def _source(who: str, key: jax.Array | None, generator: Any) -> np.random.Generator | jax.Array:
    """``key`` if given (JAX's draws, the same under ``jit``), else :func:`jnn.random.next_source`."""
    if generator is not None:
        raise TypeError(f"jnn.init.{who}: generator= is PyTorch's; pass a JAX key with key= instead")
    return random.next_source(f"jnn.init.{who}") if key is None else key


def _float_shape(tensor: jax.Array) -> tuple[tuple[int, ...], Any]:
    dtype = tensor.dtype if jnp.issubdtype(tensor.dtype, jnp.floating) else jnp.float32
    return tuple(tensor.shape), dtype


def _calculate_fan_in_and_fan_out(tensor: jax.Array) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: jax.Array, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of {['fan_in', 'fan_out']}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _uniform(who: str, tensor: jax.Array, low: float, high: float, key: Any, generator: Any) -> jax.Array:
    shape, dtype = _float_shape(tensor)
    return _result(who, tensor, uniform_sample(_source(who, key, generator), shape, dtype, low, high))


def _normal(who: str, tensor: jax.Array, mean: float, std: float, key: Any, generator: Any) -> jax.Array:
    shape, dtype = _float_shape(tensor)
    return _result(who, tensor, normal_sample(_source(who, key, generator), shape, dtype, mean, std))


def uniform_(tensor: jax.Array, a: float = 0.0, b: float = 1.0, generator: Any = None, *,
             key: jax.Array | None = None) -> jax.Array:
    """Fill with U(a, b)."""
    return _uniform("uniform_", tensor, a, b, key, generator)


def normal_(tensor: jax.Array, mean: float = 0.0, std: float = 1.0, generator: Any = None, *,
            key: jax.Array | None = None) -> jax.Array:
    """Fill with N(mean, std²)."""
    return _normal("normal_", tensor, mean, std, key, generator)


def trunc_normal_(tensor: jax.Array, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: Any = None, *, key: jax.Array | None = None) -> jax.Array:
    """Fill with N(mean, std²) truncated to [a, b] (absolute bounds, as in PyTorch)."""
    shape, dtype = _float_shape(tensor)
    source = _source("trunc_normal_", key, generator)
    return _result("trunc_normal_", tensor, trunc_normal_sample(source, shape, dtype, mean, std, a, b))


def constant_(tensor: jax.Array, val: float) -> jax.Array:
    """Fill with ``val``."""
    return _result("constant_", tensor, filled(tensor, val))


def ones_(tensor: jax.Array) -> jax.Array:
    """Fill with ones."""
    return _result("ones_", tensor, filled(tensor, 1))


def zeros_(tensor: jax.Array) -> jax.Array:
    """Fill with zeros."""
    return _result("zeros_", tensor, filled(tensor, 0))


def eye_(tensor: jax.Array) -> jax.Array:
    """Fill a 2-D array with the identity (Linear layers that pass their input through)."""
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _result("eye_", tensor, jnp.eye(*tensor.shape, dtype=tensor.dtype))


def dirac_(tensor: jax.Array, groups: int = 1) -> jax.Array:
    """Fill a 3/4/5-D convolution weight with the Dirac delta (identity convolution), per group."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if tensor.shape[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    per_group = tensor.shape[0] // groups
    channels = jnp.arange(min(per_group, tensor.shape[1]))
    rows = (jnp.arange(groups)[:, None] * per_group + channels[None, :]).ravel()
    cols = jnp.tile(channels, groups)
    centre = tuple(k // 2 for k in tensor.shape[2:])
    new = jnp.zeros(tensor.shape, tensor.dtype).at[(rows, cols, *centre)].set(1)
    return _result("dirac_", tensor, new)


def xavier_uniform_(tensor: jax.Array, gain: float = 1.0, generator: Any = None, *,
                    key: jax.Array | None = None) -> jax.Array:
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _uniform("xavier_uniform_", tensor, -bound, bound, key, generator)


def xavier_normal_(tensor: jax.Array, gain: float = 1.0, generator: Any = None, *,
                   key: jax.Array | None = None) -> jax.Array:
    """Glorot normal: N(0, std²) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return _normal("xavier_normal_", tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), key, generator)


def _kaiming_std(tensor: jax.Array, a: float, mode: str, nonlinearity: str) -> float:
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


def kaiming_uniform_(tensor: jax.Array, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: Any = None, *, key: jax.Array | None = None) -> jax.Array:
    """He uniform: U(-b, b) with ``b = gain * sqrt(3 / fan)``."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return _uniform("kaiming_uniform_", tensor, -bound, bound, key, generator)


def kaiming_normal_(tensor: jax.Array, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: Any = None, *, key: jax.Array | None = None) -> jax.Array:
    """He normal: N(0, std²) with ``std = gain / sqrt(fan)``."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    return _normal("kaiming_normal_", tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), key, generator)


def orthogonal_(tensor: jax.Array, gain: float = 1.0, generator: Any = None, *,
                key: jax.Array | None = None) -> jax.Array:
    """A (semi-)orthogonal matrix over the array flattened to ``(shape[0], -1)``, times ``gain``."""
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.size == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.size // rows
    flat = normal_sample(_source("orthogonal_", key, generator), (rows, cols), jnp.float32, 0.0, 1.0)
    xp = np if isinstance(flat, np.ndarray) else jnp
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diagonal(r))
    if rows < cols:
        q = q.T
    return _result("orthogonal_", tensor, (gain * q).reshape(tensor.shape))


def sparse_(tensor: jax.Array, sparsity: float, std: float = 0.01, generator: Any = None, *,
            key: jax.Array | None = None) -> jax.Array:
    """N(0, std²) with a fraction ``sparsity`` of each column set to zero (2-D only)."""
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor.shape
    num_zeros = int(math.ceil(sparsity * rows))
    source = _source("sparse_", key, generator)
    values_source, order_source = (source, source) if isinstance(source, np.random.Generator) else \
        jax.random.split(source)
    values = normal_sample(values_source, (rows, cols), jnp.float32, 0.0, std)
    xp = np if isinstance(values, np.ndarray) else jnp
    # per column, a random permutation of the rows; its first num_zeros rows are zeroed
    order = uniform_sample(order_source, (rows, cols), jnp.float32, 0.0, 1.0)
    ranks = xp.argsort(xp.argsort(order, axis=0), axis=0)
    return _result("sparse_", tensor, xp.where(ranks < num_zeros, 0.0, values))
