"""Elementwise math, comparisons and products with torch's meaning: ``div(rounding_mode=)``, ``floor_divide``,
``remainder`` (sign of the divisor) vs ``fmod`` (sign of the dividend), ``clamp`` with array bounds, ``round`` half
to even with ``decimals=``, ``add(alpha=)``, ``matmul``/``bmm``/``einsum``, ...

>>> import jax.numpy as jnp
>>> a, b = jnp.array([7, -7]), jnp.array([2, 2])
>>> floor_divide(a, b).tolist()
[3, -4]
>>> div(a, b).tolist(), div(a, b, rounding_mode="trunc").tolist(), remainder(a, b).tolist(), fmod(a, b).tolist()
([3.5, -3.5], [3, -3], [1, 1], [1, -1])
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn.ops._core import METHODS, default_float, floating, is_array, method
from jnn.ops._eager import elementwise

_UNARY: dict[str, tuple[Callable, str]] = {
    "abs": (jnp.abs, "absolute value"), "absolute": (jnp.abs, "absolute value"), "neg": (jnp.negative, "negation"),
    "negative": (jnp.negative, "negation"), "exp": (jnp.exp, "e ** x"), "exp2": (jnp.exp2, "2 ** x"),
    "expm1": (jnp.expm1, "e ** x - 1"), "log": (jnp.log, "natural logarithm"), "log2": (jnp.log2, "base-2 log"),
    "log10": (jnp.log10, "base-10 log"), "log1p": (jnp.log1p, "log(1 + x)"), "sqrt": (jnp.sqrt, "square root"),
    "rsqrt": (jax.lax.rsqrt, "1 / sqrt(x)"), "square": (jnp.square, "x * x"), "sin": (jnp.sin, "sine"),
    "cos": (jnp.cos, "cosine"), "tan": (jnp.tan, "tangent"), "asin": (jnp.arcsin, "arcsine"),
    "acos": (jnp.arccos, "arccosine"), "atan": (jnp.arctan, "arctangent"), "arcsin": (jnp.arcsin, "arcsine"),
    "arccos": (jnp.arccos, "arccosine"), "arctan": (jnp.arctan, "arctangent"), "sinh": (jnp.sinh, "hyperbolic sine"),
    "cosh": (jnp.cosh, "hyperbolic cosine"), "tanh": (jnp.tanh, "hyperbolic tangent"),
    "asinh": (jnp.arcsinh, "inverse hyperbolic sine"), "acosh": (jnp.arccosh, "inverse hyperbolic cosine"),
    "atanh": (jnp.arctanh, "inverse hyperbolic tangent"), "sigmoid": (jax.nn.sigmoid, "logistic sigmoid"),
    "relu": (jax.nn.relu, "max(x, 0)"), "erf": (jax.scipy.special.erf, "error function"),
    "erfc": (jax.scipy.special.erfc, "complementary error function"),
    "erfinv": (jax.scipy.special.erfinv, "inverse error function"), "sign": (jnp.sign, "sign (-1, 0 or 1)"),
    "sgn": (jnp.sign, "sign"), "floor": (jnp.floor, "round down"), "ceil": (jnp.ceil, "round up"),
    "trunc": (jnp.trunc, "round toward zero"), "fix": (jnp.trunc, "round toward zero"),
    "frac": (lambda x: x - jnp.trunc(x), "x - trunc(x)"), "reciprocal": (jnp.reciprocal, "1 / x"),
    "isnan": (jnp.isnan, "whether NaN"), "isinf": (jnp.isinf, "whether infinite"),
    "isfinite": (jnp.isfinite, "whether finite"), "isposinf": (jnp.isposinf, "whether +inf"),
    "isneginf": (jnp.isneginf, "whether -inf"), "isreal": (jnp.isreal, "whether real"),
    "logical_not": (jnp.logical_not, "logical not"), "bitwise_not": (jnp.bitwise_not, "bitwise not"),
    "signbit": (jnp.signbit, "whether the sign bit is set"), "angle": (jnp.angle, "complex angle"),
    "conj": (jnp.conj, "complex conjugate"), "real": (jnp.real, "real part"), "imag": (jnp.imag, "imaginary part"),
    "digamma": (jax.scipy.special.digamma, "digamma"), "lgamma": (jax.scipy.special.gammaln, "log gamma"),
    "i0": (jax.scipy.special.i0, "modified Bessel function of order 0"), "deg2rad": (jnp.deg2rad, "radians"),
    "rad2deg": (jnp.rad2deg, "degrees"),
}

_BINARY: dict[str, tuple[Callable, str]] = {
    "mul": (jnp.multiply, "product"), "multiply": (jnp.multiply, "product"),
    "true_divide": (jnp.true_divide, "true quotient"), "floor_divide": (jnp.floor_divide, "quotient rounded down"),
    "remainder": (jnp.remainder, "remainder with the divisor's sign (python's %)"),
    "fmod": (jnp.fmod, "remainder with the dividend's sign (C's fmod)"), "pow": (jnp.power, "x ** other"),
    "float_power": (lambda a, b: jnp.power(jnp.asarray(a, jnp.result_type(float)), b), "x ** other in double"),
    "atan2": (jnp.arctan2, "arctangent of x / other"), "arctan2": (jnp.arctan2, "arctangent of x / other"),
    "maximum": (jnp.maximum, "elementwise maximum (NaN propagates)"),
    "minimum": (jnp.minimum, "elementwise minimum (NaN propagates)"),
    "fmax": (jnp.fmax, "elementwise maximum ignoring NaN"), "fmin": (jnp.fmin, "elementwise minimum ignoring NaN"),
    "hypot": (jnp.hypot, "sqrt(x ** 2 + other ** 2)"), "logaddexp": (jnp.logaddexp, "log(exp(x) + exp(other))"),
    "logaddexp2": (jnp.logaddexp2, "log2(2 ** x + 2 ** other)"), "copysign": (jnp.copysign, "|x| with other's sign"),
    "xlogy": (jax.scipy.special.xlogy, "x * log(other), 0 where x is 0"),
    "eq": (jnp.equal, "x == other"), "ne": (jnp.not_equal, "x != other"), "not_equal": (jnp.not_equal, "x != other"),
    "gt": (jnp.greater, "x > other"), "greater": (jnp.greater, "x > other"), "ge": (jnp.greater_equal, "x >= other"),
    "greater_equal": (jnp.greater_equal, "x >= other"), "lt": (jnp.less, "x < other"),
    "less": (jnp.less, "x < other"), "le": (jnp.less_equal, "x <= other"),
    "less_equal": (jnp.less_equal, "x <= other"), "logical_and": (jnp.logical_and, "logical and"),
    "logical_or": (jnp.logical_or, "logical or"), "logical_xor": (jnp.logical_xor, "logical xor"),
    "bitwise_and": (jnp.bitwise_and, "bitwise and"), "bitwise_or": (jnp.bitwise_or, "bitwise or"),
    "bitwise_xor": (jnp.bitwise_xor, "bitwise xor"), "bitwise_left_shift": (jnp.left_shift, "x << other"),
    "bitwise_right_shift": (jnp.right_shift, "x >> other"), "gcd": (jnp.gcd, "greatest common divisor"),
    "lcm": (jnp.lcm, "least common multiple"), "nextafter": (jnp.nextafter, "next float toward other"),
    "ldexp": (lambda a, b: a * jnp.exp2(b), "x * 2 ** other"),
    "outer": (jnp.outer, "outer product of two vectors"), "ger": (jnp.outer, "outer product of two vectors"),
    "inner": (jnp.inner, "inner product over the last dims"), "dot": (jnp.dot, "dot product of two vectors"),
    "vdot": (jnp.vdot, "dot product, conjugating x"), "kron": (jnp.kron, "Kronecker product"),
}


# unary functions that give floats for integer and bool input, as torch's do
_TO_FLOAT = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan", "asin",
             "acos", "atan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sigmoid",
             "erf", "erfc", "erfinv", "reciprocal", "digamma", "lgamma", "i0", "deg2rad", "rad2deg"}


def _digamma(x: Any) -> jax.Array:
    return jnp.where(x == 0, -jnp.inf, jax.scipy.special.digamma(x))  # torch: digamma(0) = -inf


_UNARY["digamma"] = (_digamma, "digamma")


# binary functions that are not elementwise, and those whose Python-number operand JAX treats specially
_PRODUCTS = {"outer", "ger", "inner", "dot", "vdot", "kron"}
_STATIC_NUMBERS = {"pow", "float_power"}  # x ** 2 is x * x


def _make(name: str, fn: Callable, what: str, arity: int) -> Callable:
    if arity == 1:
        def op(input: Any) -> jax.Array:
            x = jnp.asarray(input)
            if name in _TO_FLOAT and not jnp.issubdtype(x.dtype, jnp.inexact):
                x = x.astype(default_float())
            return fn(x)
    else:
        def op(input: Any, other: Any) -> jax.Array:
            return fn(input, other)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"torch's ``{name}``: {what}."
    if name not in _PRODUCTS:
        op = elementwise(op, numbers_static=name in _STATIC_NUMBERS)
    return method(op)


for _name, (_fn, _what) in _UNARY.items():
    globals()[_name] = _make(_name, _fn, _what, 1)
for _name, (_fn, _what) in _BINARY.items():
    globals()[_name] = _make(_name, _fn, _what, 2)
__doc__ += (f"\nUnary functions (``ops.exp(x)``): {', '.join(_UNARY)}.\n\n"
            f"Binary functions (``ops.eq(x, other)``): {', '.join(_BINARY)}.\n")

__all__ = [
    *_UNARY, *_BINARY, "add", "sub", "subtract", "rsub", "div", "divide", "round", "clamp", "clip", "clamp_min",
    "clamp_max", "lerp", "addcmul", "addcdiv", "logit", "nan_to_num", "equal", "allclose", "isclose", "isin",
    "matmul", "mm", "bmm", "mv", "einsum", "tensordot", "addmm", "addbmm", "baddbmm", "addmv", "trace", "diag",
    "diag_embed", "cross", "cdist", "positive", "sinc", "heaviside", "frexp", "igamma", "igammac", "polygamma",
    "mvlgamma", "addr", "diagflat", "resolve_conj", "resolve_neg",
]


@method
@elementwise
def add(input: Any, other: Any, *, alpha: Any = 1) -> jax.Array:
    """``input + alpha * other``."""
    return input + (other if alpha == 1 else alpha * other)


@method
@elementwise
def sub(input: Any, other: Any, *, alpha: Any = 1) -> jax.Array:
    """``input - alpha * other``."""
    return input - (other if alpha == 1 else alpha * other)


subtract = method(sub, name="subtract")


@elementwise
def rsub(input: Any, other: Any, *, alpha: Any = 1) -> jax.Array:
    """``other - alpha * input``."""
    return other - (input if alpha == 1 else alpha * input)


@method
@elementwise
def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> jax.Array:
    """``input / other``: true division (integers give floats), or rounded with ``rounding_mode="trunc"``
    (toward zero) or ``"floor"`` (down), which keep integer dtypes."""
    if rounding_mode is None:
        return jnp.true_divide(input, other)
    if rounding_mode == "floor":
        return jnp.floor_divide(input, other)
    if rounding_mode == "trunc":
        dtype = jnp.result_type(input, other)
        if jnp.issubdtype(dtype, jnp.integer):
            return jax.lax.div(*(jnp.asarray(v, dtype) for v in jnp.broadcast_arrays(input, other)))
        return jnp.trunc(jnp.true_divide(input, other))
    raise ValueError(f"jnn.ops.div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


divide = method(div, name="divide")


@method
@elementwise
def round(input: Any, *, decimals: int = 0) -> jax.Array:
    """Round half to even (as torch), to ``decimals`` places."""
    return jnp.round(input, decimals)


@method
@elementwise
def clamp(input: Any, min: Any = None, max: Any = None) -> jax.Array:
    """Limit to ``[min, max]`` (numbers or arrays; either may be None); where ``min > max`` the result is ``max``.

    >>> import jax.numpy as jnp
    >>> clamp(jnp.array([-2.0, 0.5, 3.0]), min=0.0, max=1.0).tolist()
    [0.0, 0.5, 1.0]
    """
    if min is None and max is None:
        raise ValueError("jnn.ops.clamp: at least one of min and max must be given")
    out = input if min is None else jnp.maximum(input, min)
    out = out if max is None else jnp.minimum(out, max)
    return out.astype(jnp.result_type(input, *(v for v in (min, max) if v is not None)))


clip = method(clamp, name="clip")


@method
def clamp_min(input: Any, min: Any) -> jax.Array:
    """``max(input, min)``."""
    return clamp(input, min=min)


@method
def clamp_max(input: Any, max: Any) -> jax.Array:
    """``min(input, max)``."""
    return clamp(input, max=max)


@method
@elementwise
def lerp(input: Any, end: Any, weight: Any) -> jax.Array:
    """``input + weight * (end - input)``."""
    return input + weight * (end - input)


@method
@elementwise
def addcmul(input: Any, tensor1: Any, tensor2: Any, *, value: Any = 1) -> jax.Array:
    """``input + value * tensor1 * tensor2``."""
    return input + value * tensor1 * tensor2


@method
@elementwise
def addcdiv(input: Any, tensor1: Any, tensor2: Any, *, value: Any = 1) -> jax.Array:
    """``input + value * tensor1 / tensor2``."""
    return input + value * tensor1 / tensor2


@method
@elementwise
def logit(input: Any, eps: float | None = None) -> jax.Array:
    """``log(p / (1 - p))``, with ``p`` clamped to ``[eps, 1 - eps]`` when ``eps`` is given."""
    p = input if eps is None else jnp.clip(input, eps, 1 - eps)
    return jnp.log(p / (1 - p))


@method
@elementwise
def nan_to_num(input: Any, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> jax.Array:
    """NaN -> ``nan``, +inf/-inf -> ``posinf``/``neginf`` (the dtype's largest/smallest by default)."""
    return jnp.nan_to_num(input, nan=nan, posinf=posinf, neginf=neginf)


@method
def equal(input: Any, other: Any) -> Any:
    """Whether both have the same shape and elements (a bool; a 0-d bool array under jit)."""
    if jnp.shape(input) != jnp.shape(other):
        return False
    result = jnp.all(jnp.asarray(input) == jnp.asarray(other))
    return result if isinstance(result, jax.core.Tracer) else builtins.bool(result)


@method
def allclose(input: Any, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: builtins.bool = False) -> Any:
    """Whether all elements are close (``|a - b| <= atol + rtol * |b|``); a bool eagerly."""
    result = jnp.allclose(input, other, rtol, atol, equal_nan)
    return result if isinstance(result, jax.core.Tracer) else builtins.bool(result)


@method
def isclose(input: Any, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: builtins.bool = False) -> jax.Array:
    """Elementwise ``|a - b| <= atol + rtol * |b|``."""
    return jnp.isclose(input, other, rtol, atol, equal_nan)


def isin(elements: Any, test_elements: Any, *, assume_unique: builtins.bool = False,
         invert: builtins.bool = False) -> jax.Array:
    """Whether each element occurs in ``test_elements``."""
    return jnp.isin(elements, test_elements, assume_unique=assume_unique, invert=invert)


@method
def positive(input: Any) -> Any:
    """The input itself."""
    return input


@method
@elementwise
def sinc(input: Any) -> jax.Array:
    """Normalised sinc, ``sin(pi x) / (pi x)``."""
    return jnp.sinc(input)


@method
def matmul(input: Any, other: Any) -> jax.Array:
    """Matrix product with broadcasting batch dims (numpy's ``matmul``, as torch)."""
    return jnp.matmul(input, other)


def _check_ndim(who: str, *pairs: tuple[Any, int]) -> None:
    for x, n in pairs:
        if jnp.ndim(x) != n:
            raise ValueError(f"jnn.ops.{who} expects {', '.join(str(n) for _, n in pairs)}-d arrays, got shapes "
                             f"{[jnp.shape(a) for a, _ in pairs]}")


@method
def mm(input: Any, mat2: Any) -> jax.Array:
    """Product of two matrices (2-d only; no broadcasting)."""
    _check_ndim("mm", (input, 2), (mat2, 2))
    return jnp.matmul(input, mat2)


@method
def bmm(input: Any, mat2: Any) -> jax.Array:
    """Batched product of ``(b, n, m)`` and ``(b, m, p)`` (3-d only)."""
    _check_ndim("bmm", (input, 3), (mat2, 3))
    return jnp.matmul(input, mat2)


@method
def mv(input: Any, vec: Any) -> jax.Array:
    """Matrix times vector."""
    _check_ndim("mv", (input, 2), (vec, 1))
    return jnp.matmul(input, vec)


def einsum(equation: str, *operands: Any) -> jax.Array:
    """Einstein summation; operands as separate arguments or one list, as torch accepts."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return jnp.einsum(equation, *operands)


def tensordot(a: Any, b: Any, dims: Any = 2) -> jax.Array:
    """Contract the last ``dims`` dims of ``a`` with the first of ``b`` (or the listed pairs)."""
    return jnp.tensordot(a, b, dims if isinstance(dims, int) else tuple(tuple(d) for d in dims))


@method
def addmm(input: Any, mat1: Any, mat2: Any, *, beta: Any = 1, alpha: Any = 1) -> jax.Array:
    """``beta * input + alpha * (mat1 @ mat2)``."""
    return beta * input + alpha * mm(mat1, mat2)


@method
def addbmm(input: Any, batch1: Any, batch2: Any, *, beta: Any = 1, alpha: Any = 1) -> jax.Array:
    """``beta * input + alpha * sum_b(batch1[b] @ batch2[b])``."""
    return beta * input + alpha * jnp.sum(bmm(batch1, batch2), axis=0)


@method
def baddbmm(input: Any, batch1: Any, batch2: Any, *, beta: Any = 1, alpha: Any = 1) -> jax.Array:
    """``beta * input + alpha * (batch1 @ batch2)``."""
    return beta * input + alpha * bmm(batch1, batch2)


@method
def addmv(input: Any, mat: Any, vec: Any, *, beta: Any = 1, alpha: Any = 1) -> jax.Array:
    """``beta * input + alpha * (mat @ vec)``."""
    return beta * input + alpha * mv(mat, vec)


@method
def trace(input: Any) -> jax.Array:
    """Sum of the main diagonal of a matrix."""
    _check_ndim("trace", (input, 2))
    return jnp.trace(input)


@method
def diag(input: Any, diagonal: int = 0) -> jax.Array:
    """A 1-d input becomes a diagonal matrix; a 2-d input gives its ``diagonal``-th diagonal."""
    return jnp.diag(input, diagonal)


@method
def diag_embed(input: Any, offset: int = 0, dim1: int = -2, dim2: int = -1) -> jax.Array:
    """Matrices whose diagonal (last two dims) is the last dim of ``input``."""
    if (offset, dim1, dim2) != (0, -2, -1):
        raise NotImplementedError("jnn.ops.diag_embed supports only offset=0, dim1=-2, dim2=-1")
    n = jnp.shape(input)[-1]
    return jnp.asarray(input)[..., None] * jnp.eye(n, dtype=jnp.asarray(input).dtype)


@method
def cross(input: Any, other: Any, dim: int | None = None) -> jax.Array:
    """Cross product of 3-vectors along ``dim`` (the first dim of size 3 when None)."""
    if dim is None:
        dim = next(i for i, n in enumerate(jnp.broadcast_shapes(jnp.shape(input), jnp.shape(other))) if n == 3)
    return jnp.cross(input, other, axis=dim)


def cdist(x1: Any, x2: Any, p: float = 2.0, compute_mode: str | None = None) -> jax.Array:
    """p-norm distances between each row of ``x1`` (..., P, M) and each row of ``x2`` (..., R, M)."""
    diff = jnp.abs(jnp.asarray(x1)[..., :, None, :] - jnp.asarray(x2)[..., None, :, :])
    if p == float("inf"):
        return jnp.max(diff, axis=-1)
    if p == 0:
        return jnp.sum(diff != 0, axis=-1).astype(diff.dtype)
    if p == 2:
        return jnp.sqrt(jnp.sum(diff * diff, axis=-1))
    return jnp.sum(diff ** p, axis=-1) ** (1.0 / p)


# --- heaviside, frexp, igamma, polygamma, mvlgamma, addr, diagflat, conj/neg bits -----------------------------------

_frexp = namedtuple("frexp", ["mantissa", "exponent"])


@method
def heaviside(input: Any, values: Any) -> jax.Array:
    """The Heaviside step: 0 where ``input < 0``, ``values`` where it is 0, 1 where it is positive (NaN gives 0);
    ``values`` has ``input``'s dtype (torch does not promote).

    >>> import jax.numpy as jnp
    >>> heaviside(jnp.array([-2.0, 0.0, 3.0]), jnp.array(0.5)).tolist()
    [0.0, 0.5, 1.0]
    """
    x = jnp.asarray(input)
    if is_array(values) and jnp.asarray(values).dtype != x.dtype:
        raise TypeError(f"jnn.ops.heaviside: input and values must have the same dtype, got {x.dtype} and "
                        f"{jnp.asarray(values).dtype}")
    if jnp.iscomplexobj(x):
        raise TypeError("jnn.ops.heaviside is not implemented for complex arrays")
    return jnp.where(x == 0, jnp.asarray(values, x.dtype), x > 0).astype(x.dtype)


@method
def frexp(input: Any, *, out: Any = None) -> tuple[jax.Array, jax.Array]:
    """``(mantissa, exponent)`` with ``input == mantissa * 2 ** exponent``, ``0.5 <= |mantissa| < 1`` (or 0) and an
    int32 exponent.

    >>> import jax.numpy as jnp
    >>> m, e = frexp(jnp.array([8.0, -0.75, 0.0])); m.tolist(), e.tolist()
    ([0.5, -0.75, 0.0], [4, 0, 0])
    """
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"jnn.ops.frexp only supports floating-point dtypes, got {x.dtype}")
    mantissa, exponent = jnp.frexp(x)
    return _frexp(mantissa, exponent.astype(np.int32))


@method
def igamma(input: Any, other: Any, *, out: Any = None) -> jax.Array:
    """The regularized lower incomplete gamma function ``P(input, other)`` (torch.special.gammainc).

    >>> import jax.numpy as jnp
    >>> f"{igamma(jnp.array(1.0), jnp.array(2.0)).item():.4f}"  # 1 - exp(-2)
    '0.8647'
    """
    return jax.scipy.special.gammainc(*floating(input, other))


@method
def igammac(input: Any, other: Any, *, out: Any = None) -> jax.Array:
    """The regularized upper incomplete gamma function ``Q(input, other) = 1 - P(input, other)``.

    >>> import jax.numpy as jnp
    >>> f"{igammac(jnp.array(1.0), jnp.array(2.0)).item():.4f}"  # exp(-2)
    '0.1353'
    """
    return jax.scipy.special.gammaincc(*floating(input, other))


def polygamma(*args: Any, out: Any = None, **kwargs: Any) -> jax.Array:
    """The ``n``-th derivative of the digamma function, as ``torch.polygamma(n, input)`` and the method
    ``input.polygamma(n)`` (``ops.polygamma(input, n)``).

    >>> import jax.numpy as jnp
    >>> f"{polygamma(1, jnp.array(1.0)).item():.4f} {polygamma(jnp.array(1.0), 1).item():.4f}"  # pi ** 2 / 6
    '1.6449 1.6449'
    """
    order = ("input", "n") if args and is_array(args[0]) else ("n", "input")
    given = {**dict(zip(order, args, strict=False)), **kwargs}
    if len(args) > 2 or set(given) != {"n", "input"}:
        raise TypeError(f"jnn.ops.polygamma takes (n, input) or, as a method, (input, n); got {len(args)} positional "
                        f"arguments and keywords {sorted(kwargs)}")
    n = given["n"]
    if not isinstance(n, (builtins.int, np.integer)) or isinstance(n, builtins.bool) or n < 0:
        raise ValueError(f"jnn.ops.polygamma: n must be a non-negative int, got {n!r}")
    (x,) = floating(given["input"])
    return _digamma(x) if n == 0 else jax.scipy.special.polygamma(builtins.int(n), x)


METHODS.add("polygamma")


@method
def mvlgamma(input: Any, p: builtins.int, *, out: Any = None) -> jax.Array:
    """The multivariate log-gamma function of dimension ``p`` (torch.special.multigammaln).

    >>> import jax.numpy as jnp
    >>> f"{mvlgamma(jnp.array(2.5), 1).item():.4f}"  # lgamma(2.5)
    '0.2847'
    """
    if not isinstance(p, (builtins.int, np.integer)) or p < 1:
        raise ValueError(f"jnn.ops.mvlgamma: p has to be an int >= 1, got {p!r}")
    (x,) = floating(input)
    return jax.scipy.special.multigammaln(x, builtins.int(p))


@method
def addr(input: Any, vec1: Any, vec2: Any, *, beta: Any = 1, alpha: Any = 1) -> jax.Array:
    """``beta * input + alpha * outer(vec1, vec2)`` (``input`` broadcast to the outer product's shape, and left out
    when ``beta`` is 0, NaNs included).

    >>> import jax.numpy as jnp
    >>> addr(jnp.ones((2, 2)), jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]), alpha=2).tolist()
    [[7.0, 9.0], [13.0, 17.0]]
    """
    v1, v2 = jnp.asarray(vec1), jnp.asarray(vec2)
    if v1.ndim != 1 or v2.ndim != 1:
        raise ValueError(f"jnn.ops.addr: expected 1-d vec1 and vec2, got {v1.ndim}-d and {v2.ndim}-d")
    x = jnp.asarray(input)
    shape = (v1.shape[0], v2.shape[0])
    if jnp.broadcast_shapes(x.shape, shape) != shape:
        raise ValueError(f"jnn.ops.addr: input of shape {x.shape} does not broadcast to the outer product's {shape}")
    product = jnp.outer(v1, v2) if alpha == 1 else alpha * jnp.outer(v1, v2)
    if beta == 0:
        return jnp.broadcast_to(product, shape).astype(jnp.result_type(x, product))
    return (x if beta == 1 else beta * x) + product


@method
def diagflat(input: Any, offset: builtins.int = 0) -> jax.Array:
    """A matrix with the flattened input on its ``offset``-th diagonal.

    >>> import jax.numpy as jnp
    >>> diagflat(jnp.array([[1, 2]]), 1).tolist()
    [[0, 1, 0], [0, 0, 2], [0, 0, 0]]
    """
    return jnp.diagflat(jnp.asarray(input), offset)


@method
def resolve_conj(input: Any) -> jax.Array:
    """``input`` itself: JAX conjugates eagerly, so there is no lazy conjugate bit to resolve.

    >>> import jax.numpy as jnp
    >>> resolve_conj(jnp.array([1j])).tolist()
    [1j]
    """
    return jnp.asarray(input)


@method
def resolve_neg(input: Any) -> jax.Array:
    """``input`` itself: JAX negates eagerly, so there is no lazy negative bit to resolve.

    >>> import jax.numpy as jnp
    >>> resolve_neg(jnp.array([-1.0])).tolist()
    [-1.0]
    """
    return jnp.asarray(input)
