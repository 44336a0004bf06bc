"""Activation functions."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jnn import random as _jrandom
from jnn._arrays import is_vmapped

__all__ = [
    "relu", "sigmoid", "tanh", "softmax", "log_softmax", "softmin",
    "threshold", "relu6", "hardtanh", "leaky_relu", "prelu", "rrelu", "elu", "celu", "selu", "gelu", "silu", "mish",
    "logsigmoid", "hardsigmoid", "hardswish", "hardshrink", "softshrink", "tanhshrink", "softplus", "softsign", "glu",
    "gumbel_softmax", "relu_", "elu_", "celu_", "selu_", "leaky_relu_", "hardtanh_", "rrelu_", "threshold_",
]


def relu(input: ArrayLike, inplace: bool = False) -> jax.Array:
    """Rectified linear unit, ``max(0, x)`` (gradient 0 at 0, as in torch).

    ``inplace`` is accepted for compatibility; JAX arrays are immutable, so a new array is returned.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.relu(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """
    return jax.nn.relu(jnp.asarray(input))


def _float(x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def sigmoid(input: ArrayLike) -> jax.Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``; integer input gives float32, like torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.sigmoid(jnp.array([0.0])).tolist()
    [0.5]
    """
    return jax.nn.sigmoid(_float(input))


def tanh(input: ArrayLike) -> jax.Array:
    """Hyperbolic tangent; integer input gives float32, like torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.tanh(jnp.array([0.0])).tolist()
    [0.0]
    """
    return jnp.tanh(_float(input))


def _softmax(name: str, fn, input: ArrayLike, dim: int | None, stacklevel: int,
             dtype: DTypeLike | None) -> jax.Array:
    x = jnp.asarray(input)
    if dtype is not None:
        x = x.astype(dtype)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype} "
                        f"(pass dtype=jnp.float32 to cast first)")
    if dim is None:  # torch's deprecated implicit choice (functional._get_softmax_dim)
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                      "Change the call to include dim=X as an argument.", stacklevel=stacklevel)
        dim = 0 if x.ndim in (0, 1, 3) else 1
    n = max(x.ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{name}: dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim}) for input of shape {x.shape}")
    if x.ndim == 0:
        return fn(x.reshape(1), axis=0).reshape(())
    return fn(x, axis=dim)


def softmax(input: ArrayLike, dim: int | None = None, _stacklevel: int = 3,
            dtype: DTypeLike | None = None) -> jax.Array:
    """Softmax along ``dim`` (cast to ``dtype`` first if given).

    With ``dim=None`` torch's deprecated implicit choice applies (dim 0 for 0-D, 1-D and 3-D input, else 1)
    and a warning is issued.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.softmax(jnp.zeros((1, 2)), dim=1).tolist()
    [[0.5, 0.5]]
    """
    return _softmax("softmax", jax.nn.softmax, input, dim, _stacklevel, dtype)


def log_softmax(input: ArrayLike, dim: int | None = None, _stacklevel: int = 3,
                dtype: DTypeLike | None = None) -> jax.Array:
    """Logarithm of the softmax along ``dim``, computed stably; same ``dim``/``dtype`` rules as :func:`softmax`.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.log_softmax(jnp.zeros(4), dim=0)[0]), 4)
    -1.3863
    """
    return _softmax("log_softmax", jax.nn.log_softmax, input, dim, _stacklevel, dtype)


def softmin(input: ArrayLike, dim: int | None = None, _stacklevel: int = 3,
            dtype: DTypeLike | None = None) -> jax.Array:
    """Softmax of ``-input`` along ``dim``; same ``dim``/``dtype`` rules as :func:`softmax`.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.softmin(jnp.zeros((1, 2)), dim=1).tolist()
    [[0.5, 0.5]]
    """
    return _softmax("softmin", lambda x, axis: jax.nn.softmax(-x, axis=axis), input, dim, _stacklevel, dtype)


# --- elementwise activations ------------------------------------------------------------------------------
# Like torch on CPU, half-precision inputs (bfloat16, float16) are computed in float32 and rounded back.

_HALF = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def _floating(name: str, input: ArrayLike) -> tuple[jax.Array, jnp.dtype]:
    """The input upcast for computing (half -> float32) and the dtype to return; integer input is an error."""
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype}")
    return (x.astype(jnp.float32) if x.dtype in _HALF else x), x.dtype


def _promoted(input: ArrayLike) -> tuple[jax.Array, jnp.dtype]:
    """Like :func:`_floating`, but integer input is promoted to float32 (torch does so for e.g. softsign)."""
    x = _float(input)
    return (x.astype(jnp.float32) if x.dtype in _HALF else x), x.dtype


def _any(input: ArrayLike) -> tuple[jax.Array, jnp.dtype]:
    """Piecewise-linear functions that torch also applies to integer input, keeping its dtype."""
    x = jnp.asarray(input)
    return (x.astype(jnp.float32) if x.dtype in _HALF else x), x.dtype


def threshold(input: ArrayLike, threshold: float, value: float, inplace: bool = False) -> jax.Array:
    """``value`` where ``x <= threshold``, else ``x`` (NaN stays NaN, as in torch). ``inplace`` is accepted; a new
    array is returned.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.threshold(jnp.array([-1.0, 0.5, 2.0]), 0.5, 9.0).tolist()
    [9.0, 9.0, 2.0]
    """
    x, dtype = _any(input)
    return jnp.where(x <= threshold, jnp.asarray(value).astype(x.dtype), x).astype(dtype)


def hardtanh(input: ArrayLike, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> jax.Array:
    """``x`` clipped to ``[min_val, max_val]``; gradient 0 at and beyond the bounds, like torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.hardtanh(jnp.array([-3.0, 0.5, 3.0])).tolist()
    [-1.0, 0.5, 1.0]
    """
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    x, dtype = _any(input)
    lo, hi = jnp.asarray(min_val).astype(x.dtype), jnp.asarray(max_val).astype(x.dtype)
    return jnp.where(x <= lo, lo, jnp.where(x >= hi, hi, x)).astype(dtype)


def relu6(input: ArrayLike, inplace: bool = False) -> jax.Array:
    """``min(max(0, x), 6)`` (gradient 0 at 0 and 6, like torch).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.relu6(jnp.array([-1.0, 3.0, 7.0])).tolist()
    [0.0, 3.0, 6.0]
    """
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input: ArrayLike, negative_slope: float = 0.01, inplace: bool = False) -> jax.Array:
    """``x`` for ``x > 0``, else ``negative_slope * x``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.leaky_relu(jnp.array([-2.0, 3.0]), 0.5).tolist()
    [-1.0, 3.0]
    """
    x, dtype = _floating("leaky_relu", input)
    return jnp.where(x > 0, x, x * negative_slope).astype(dtype)


def prelu(input: ArrayLike, weight: ArrayLike) -> jax.Array:
    """``x`` for ``x > 0``, else ``weight * x``, with one weight per channel (dim 1) or a single shared one.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.prelu(jnp.array([[-2.0, -2.0], [1.0, -1.0]]), jnp.array([0.5, 0.25])).tolist()
    [[-1.0, -0.5], [1.0, -0.25]]
    """
    x, dtype = _floating("prelu", input)
    w = jnp.asarray(weight)
    if w.ndim > 1:
        raise ValueError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {w.ndim}")
    w = w.astype(x.dtype)
    if w.size == 1:
        w = w.reshape(())
    else:
        if x.ndim == 0:
            raise ValueError("prelu: Not allow zero-dim input tensor (with more than one weight).")
        channels = x.shape[1] if x.ndim > 1 else 1
        if channels != w.size:
            raise ValueError(f"prelu: Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                               f"{w.size} and channel size = {channels}.")
        w = w.reshape((1, channels) + (1,) * (x.ndim - 2))
    return jnp.where(x > 0, x, w * x).astype(dtype)


def rrelu(input: ArrayLike, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False, *, key: jax.Array | None = None) -> jax.Array:
    """Randomized leaky ReLU: in training each ``x <= 0`` is multiplied by a slope drawn from U(lower, upper);
    otherwise the slope is ``(lower + upper) / 2``.

    The slopes come from ``key`` if given, else from ``jnn.random.next_key("rrelu")`` (a ``jnn.random.fork``
    context or the global stream); under ``jax.jit`` with neither it raises :class:`jnn.random.MissingKeyError`.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.rrelu(jnp.array([-2.0, 3.0]), 0.25, 0.75).tolist()
    [-1.0, 3.0]
    """
    if lower > upper:
        raise ValueError("rrelu: Lower bound should be less than or equal to the upper bound")
    if not training:
        return leaky_relu(input, (lower + upper) / 2)
    x, dtype = _floating("rrelu", input)
    if x.size == 0:
        return x.astype(dtype)
    if key is None:
        key = _jrandom.next_key("rrelu")
        if is_vmapped(x) and not is_vmapped(key):
            raise _jrandom.MissingKeyError(
                "rrelu inside jax.vmap got no per-example key: the key drawn from jnn's stream is the same for "
                "every example, so they would all share one set of slopes. Pass key= with a batched key, or open "
                "`jnn.random.fork(k)` inside the vmapped function with such a k.")
    slope = jax.random.uniform(key, x.shape, x.dtype, lower, upper)
    return jnp.where(x <= 0, x * slope, x).astype(dtype)


def _nonpositive(x: jax.Array) -> jax.Array:
    # min(x, 0) for the exp branch, but with gradient 1 at x == 0 (jnp.minimum splits ties 0.5/0.5)
    return jnp.where(x > 0, jnp.zeros((), x.dtype), x)


def elu(input: ArrayLike, alpha: float = 1.0, inplace: bool = False) -> jax.Array:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.elu(jnp.array([0.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    x, dtype = _floating("elu", input)
    return jnp.where(x > 0, x, alpha * jnp.expm1(_nonpositive(x))).astype(dtype)


def celu(input: ArrayLike, alpha: float = 1.0, inplace: bool = False) -> jax.Array:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.celu(jnp.array([0.0, 2.0]), 2.0).tolist()
    [0.0, 2.0]
    """
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0 (the input is divided by it)")
    x, dtype = _floating("celu", input)
    return jnp.where(x > 0, x, alpha * jnp.expm1(_nonpositive(x) / alpha)).astype(dtype)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: ArrayLike, inplace: bool = False) -> jax.Array:
    """``scale * elu(x, alpha)`` with the self-normalising constants (alpha ~ 1.6733, scale ~ 1.0507).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.selu(jnp.array(1.0))), 4)
    1.0507
    """
    x, dtype = _floating("selu", input)
    neg = _SELU_ALPHA * jnp.expm1(_nonpositive(x))
    return (_SELU_SCALE * jnp.where(x > 0, x, neg)).astype(dtype)


def gelu(input: ArrayLike, approximate: str = "none") -> jax.Array:
    """``x * Phi(x)`` (exact, with erf) or, with ``approximate='tanh'``, its tanh approximation.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.gelu(jnp.array([0.0])).tolist(), F.gelu(jnp.array([0.0]), approximate="tanh").tolist()
    ([0.0], [0.0])
    """
    if approximate not in ("none", "tanh"):
        raise ValueError("gelu: approximate argument must be either none or tanh.")
    x, dtype = _floating("gelu", input)
    if approximate == "none":
        return jax.nn.gelu(x, approximate=False).astype(dtype)
    # 0.5 * x * (1 + tanh(u)) written as x * sigmoid(2u): the same function, without the cancellation in
    # 1 + tanh(u) that flushes moderately negative inputs to 0
    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
    return (x * jax.nn.sigmoid(2 * u)).astype(dtype)


def silu(input: ArrayLike, inplace: bool = False) -> jax.Array:
    """``x * sigmoid(x)`` (also called swish).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.silu(jnp.array([0.0])).tolist()
    [0.0]
    """
    x, dtype = _floating("silu", input)
    return jax.nn.silu(x).astype(dtype)


def mish(input: ArrayLike, inplace: bool = False) -> jax.Array:
    """``x * tanh(softplus(x))``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.mish(jnp.array([0.0])).tolist()
    [0.0]
    """
    x, dtype = _floating("mish", input)
    return (x * jnp.tanh(jax.nn.softplus(x))).astype(dtype)


def logsigmoid(input: ArrayLike) -> jax.Array:
    """``log(sigmoid(x))``, computed stably.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> round(float(F.logsigmoid(jnp.array(0.0))), 4)
    -0.6931
    """
    x, dtype = _floating("logsigmoid", input)
    return jax.nn.log_sigmoid(x).astype(dtype)


def hardsigmoid(input: ArrayLike, inplace: bool = False) -> jax.Array:
    """``0`` for ``x <= -3``, ``1`` for ``x >= 3``, else ``x / 6 + 1 / 2``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.hardsigmoid(jnp.array([-4.0, 0.0, 4.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    x, dtype = _floating("hardsigmoid", input)
    zero, one = jnp.zeros((), x.dtype), jnp.ones((), x.dtype)
    return jnp.where(x <= -3, zero, jnp.where(x >= 3, one, x / 6 + 0.5)).astype(dtype)


def hardswish(input: ArrayLike, inplace: bool = False) -> jax.Array:
    """``x * hardsigmoid(x)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.hardswish(jnp.array([-4.0, 0.0, 4.0])).tolist()  # torch: -4 * relu6(-1) / 6 is -0.0 too
    [-0.0, 0.0, 4.0]
    """
    x, dtype = _floating("hardswish", input)
    # torch's gradient: 0 for x <= -3, x / 3 + 1/2 inside, 1 for x >= 3 (the outer pieces are constants/identity)
    middle = x * (x + 3) / 6
    inner = (x > -3) & (x < 3)
    return jnp.where(inner, middle, jnp.where(x <= -3, x * 0, x)).astype(dtype)  # x * 0: -inf gives NaN, as torch


def hardshrink(input: ArrayLike, lambd: float = 0.5) -> jax.Array:
    """``0`` for ``-lambd <= x <= lambd``, else ``x``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.hardshrink(jnp.array([-1.0, 0.25, 1.0])).tolist()
    [-1.0, 0.0, 1.0]
    """
    x, dtype = _floating("hardshrink", input)
    return jnp.where((x >= -lambd) & (x <= lambd), jnp.zeros((), x.dtype), x).astype(dtype)


def softshrink(input: ArrayLike, lambd: float = 0.5) -> jax.Array:
    """``x - lambd`` for ``x > lambd``, ``x + lambd`` for ``x < -lambd``, else ``0`` (NaN stays NaN).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.softshrink(jnp.array([-1.0, 0.25, 1.0])).tolist()
    [-0.5, 0.0, 0.5]
    """
    x, dtype = _floating("softshrink", input)
    if not 0 <= lambd <= float(jnp.finfo(dtype).max):
        raise ValueError(f"softshrink: lambda must be in range [0, {float(jnp.finfo(dtype).max):g}] for input dtype "
                           f"{_TORCH_DTYPE_NAME.get(str(dtype), str(dtype))}, but found {lambd}")
    return jnp.where(x > lambd, x - lambd, jnp.where(x < -lambd, x + lambd, x * 0)).astype(dtype)


_TORCH_DTYPE_NAME = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16"}


def tanhshrink(input: ArrayLike) -> jax.Array:
    """``x - tanh(x)``; integer input gives float32, like torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.tanhshrink(jnp.array([0.0])).tolist()
    [0.0]
    """
    x, dtype = _promoted(input)
    return (x - jnp.tanh(x)).astype(dtype)


def softplus(input: ArrayLike, beta: float = 1.0, threshold: float = 20.0) -> jax.Array:
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold``.

    Computed stably: where torch's ``log1p(exp(beta * x))`` overflows to ``inf`` (``beta * x`` above ~88 in
    float32 with a threshold raised that high), this returns the finite value.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.softplus(jnp.array([30.0])).tolist()
    [30.0]
    """
    x, dtype = _floating("softplus", input)
    z = x * beta
    linear = z > threshold
    soft = jax.nn.softplus(jnp.where(linear, 0, z)) / beta
    return jnp.where(linear, x, soft).astype(dtype)


def softsign(input: ArrayLike) -> jax.Array:
    """``x / (1 + |x|)``; integer input gives float32, like torch.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.softsign(jnp.array([1.0, -3.0])).tolist()
    [0.5, -0.75]
    """
    x, dtype = _promoted(input)
    return (x / (1 + jnp.abs(x))).astype(dtype)


def glu(input: ArrayLike, dim: int = -1) -> jax.Array:
    """Gated linear unit: split ``input`` in halves ``a, b`` along ``dim`` and return ``a * sigmoid(b)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.glu(jnp.ones((3, 4))).shape
    (3, 2)
    """
    x, dtype = _floating("glu", input)
    if x.ndim == 0:
        raise ValueError("glu: does not support scalars because halving size must be even")
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(f"glu: Dimension out of range (expected to be in range of [{-x.ndim}, {x.ndim - 1}], "
                         f"but got {dim})")
    dim %= x.ndim
    if x.shape[dim] % 2:
        raise ValueError(f"glu: Halving dimension must be even, but dimension {dim} is size {x.shape[dim]}")
    a, b = jnp.split(x, 2, axis=dim)
    return (a * jax.nn.sigmoid(b)).astype(dtype)


def gumbel_softmax(logits: ArrayLike, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1, *,
                   key: jax.Array | None = None) -> jax.Array:
    """Sample from the Gumbel-Softmax distribution: ``softmax((logits + g) / tau, dim)`` with Gumbel(0, 1) noise ``g``.

    With ``hard=True`` the result is one-hot (at the argmax) in value, with the gradient of the soft sample
    (straight-through: ``y_hard - stop_gradient(y_soft) + y_soft``). ``eps`` is deprecated and unused, as in
    torch. The noise comes from ``key`` if given, else from ``jnn.random.next_key("gumbel_softmax")``; under
    ``jax.jit`` with neither it raises :class:`jnn.random.MissingKeyError`.

    >>> import jax, jnn.functional as F, jax.numpy as jnp
    >>> F.gumbel_softmax(jnp.zeros((2, 3)), hard=True, key=jax.random.key(0)).sum(-1).tolist()
    [1.0, 1.0]
    """
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    x = _float(logits)
    if key is None:
        key = _jrandom.next_key("gumbel_softmax")
    gumbels = jax.random.gumbel(key, x.shape, x.dtype)
    y_soft = jax.nn.softmax((x + gumbels) / tau, axis=dim)
    if not hard:
        return y_soft
    index = jnp.argmax(y_soft, axis=dim, keepdims=True)
    axis = dim % x.ndim if x.ndim else 0
    positions = jax.lax.broadcasted_iota(index.dtype, x.shape, axis) if x.ndim else jnp.zeros((), index.dtype)
    y_hard = (positions == index).astype(y_soft.dtype)
    return y_hard - jax.lax.stop_gradient(y_soft) + y_soft



# torch's in-place forms: JAX arrays are never changed in place, so each returns the result (python -m jnn.port
# stores it back into the argument).
def relu_(input: ArrayLike) -> jax.Array:
    """``relu(input)``, returned (torch changes ``input`` in place).

    >>> import jax.numpy as jnp
    >>> relu_(jnp.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return relu(input)


def elu_(input: ArrayLike, alpha: float = 1.0) -> jax.Array:
    """``elu(input, alpha)``, returned.

    >>> import jax.numpy as jnp
    >>> elu_(jnp.array([0.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return elu(input, alpha)


def celu_(input: ArrayLike, alpha: float = 1.0) -> jax.Array:
    """``celu(input, alpha)``, returned.

    >>> import jax.numpy as jnp
    >>> celu_(jnp.array([0.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return celu(input, alpha)


def selu_(input: ArrayLike) -> jax.Array:
    """``selu(input)``, returned.

    >>> import jax.numpy as jnp
    >>> selu_(jnp.array([0.0])).tolist()
    [0.0]
    """
    return selu(input)


def leaky_relu_(input: ArrayLike, negative_slope: float = 0.01) -> jax.Array:
    """``leaky_relu(input, negative_slope)``, returned.

    >>> import jax.numpy as jnp
    >>> leaky_relu_(jnp.array([-1.0, 2.0]), 0.5).tolist()
    [-0.5, 2.0]
    """
    return leaky_relu(input, negative_slope)


def hardtanh_(input: ArrayLike, min_val: float = -1.0, max_val: float = 1.0) -> jax.Array:
    """``hardtanh(input, min_val, max_val)``, returned.

    >>> import jax.numpy as jnp
    >>> hardtanh_(jnp.array([-3.0, 0.5, 3.0])).tolist()
    [-1.0, 0.5, 1.0]
    """
    return hardtanh(input, min_val, max_val)


def rrelu_(input: ArrayLike, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, *,
           key: jax.Array | None = None) -> jax.Array:
    """``rrelu(input, lower, upper, training)``, returned.

    >>> import jax.numpy as jnp
    >>> rrelu_(jnp.array([-1.0, 2.0]), 0.5, 0.5).tolist()
    [-0.5, 2.0]
    """
    return rrelu(input, lower, upper, training, key=key)


def threshold_(input: ArrayLike, threshold: float, value: float) -> jax.Array:
    """``threshold(input, threshold, value)``, returned.

    >>> import jax.numpy as jnp
    >>> threshold_(jnp.array([0.1, 2.0]), 0.5, 9.0).tolist()
    [9.0, 2.0]
    """
    return _threshold(input, threshold, value)


_threshold = threshold  # threshold_'s parameter of that name hides the function
