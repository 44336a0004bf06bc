"""Eager operations on concrete CPU arrays without an XLA compile for every new shape.

Eagerly, JAX compiles each operation once per (operation, shapes, dtypes): about 20 ms per program on a CPU, where
torch takes microseconds. Model code that does tensor math while building (timm's ``trunc_normal_`` runs
``uniform_, erfinv_, mul_, add_, clamp_`` on every weight shape; Swin's window masks and relative-position tables)
compiled hundreds of programs. Two remedies, both only for concrete arrays on the default CPU device (or NumPy and
Python data), outside any JAX transformation; everything else takes the ordinary JAX path:

- :func:`elementwise` functions run on the flattened arguments in fixed-size chunks (the last one padded with its
  own last element), so one program serves every shape: one compile per (function, dtypes, keyword arguments,
  chunk size). A shape used over and over (an eager training loop) goes back to JAX's own per-shape program once
  chunking has cost about as much as compiling it.
- operations without arithmetic (reshape, transpose, stack, index updates: results that are copies of input
  elements, identical in NumPy and XLA) run in NumPy through :func:`host`, and the result is placed on the device.

Results are those of the same XLA code: elementwise programs differ from JAX's per-shape programs by at most the
last bit XLA itself varies with the array's length (vector and scalar code paths of ``log`` or ``atan``).

>>> import numpy as np, jax.numpy as jnp
>>> from jnn import ops
>>> x = jnp.asarray(np.linspace(-0.9, 0.9, 7, dtype=np.float32))
>>> bool(jnp.allclose(ops.erfinv(x), jax.scipy.special.erfinv(x), rtol=1e-6))
True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from jnn._arrays import host_buffer, host_copy, host_view, is_array, is_staging, to_device

__all__ = ["elementwise", "host", "placed", "xp"]

F = TypeVar("F", bound=Callable[..., Any])

SMALL, LARGE = 1 << 10, 1 << 16  # chunk sizes: arrays of up to SMALL elements take one small chunk
BUDGET = 1024  # chunk calls a (function, shapes, dtypes) may cost before it gets JAX's own program (~ one compile)
HOST_LIMIT = 1 << 22  # elements an exact operation copies on the host at most

_SCALARS = (bool, int, float, complex)
_OPERAND = object()  # marks an operand's place in a call's static template
_programs: dict[tuple, Callable] = {}  # (function, argument template) -> jitted function of the array arguments
_spent: dict[tuple, int] = {}  # (function, template, shapes, dtypes) -> chunk calls made so far


def host(*values: Any) -> list[np.ndarray] | None:
    """``values`` as NumPy arrays (views, no copy) when an operation on them may run on the host: all concrete,
    on the default CPU device or NumPy/Python data, outside any transformation, at most :data:`HOST_LIMIT` elements
    each; otherwise None."""
    views = []
    for value in values:
        view = host_view(value)
        if view is None or view.size > HOST_LIMIT:
            return None
        views.append(view)
    return None if is_staging() else views


def placed(result: np.ndarray) -> jax.Array:
    """A copy of a host result on the default device (uncommitted, as JAX's eager results). A copy: a view of an
    input's memory would keep that array's buffer referenced (it could no longer be donated to a jitted step)."""
    return to_device(host_copy(result))


def host_cast(value: Any, dtype: Any) -> np.ndarray | None:
    """``value`` (a Python number or a host array) as a NumPy array of ``dtype``, converted as JAX converts it, or
    None where NumPy could differ (a float into an integer type, a Python int out of range, a narrower float).

    >>> host_cast(3, np.float32).dtype, host_cast(2.5, np.int32), host_cast(2 ** 40, np.int32)
    (dtype('float32'), None, None)
    """
    dtype = np.dtype(dtype)
    if isinstance(value, (bool, int, float, complex)):
        source = np.asarray(value)
        if isinstance(value, int) and not isinstance(value, bool):  # JAX reads it as its default int first
            limits = np.iinfo(dtype if dtype.kind in "iu" else jax.dtypes.canonicalize_dtype(np.int64))
            if not limits.min <= value <= limits.max:
                return None
    else:
        views = host(value)
        if views is None:
            return None
        source = views[0]
        if source.dtype.kind in "fc" and source.dtype.itemsize > dtype.itemsize:
            return None  # a narrowing JAX may apply after the operation, not before
    kinds = source.dtype.kind + dtype.kind
    if source.dtype.kind == "b" or kinds in ("ii", "iu", "ui", "uu", "if", "uf", "ic", "uc", "ff", "fc", "cc"):
        with np.errstate(over="ignore"):  # to inf, as JAX, without NumPy's warning
            return source.astype(dtype)
    return None


class _Host:
    """NumPy's function of the same name, with JAX arrays in (read as host views) and placed results out."""

    def __getattr__(self, name: str) -> Callable:
        fn = getattr(np, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            out = fn(*(_views(a) for a in args), **kwargs)
            return [placed(o) for o in out] if isinstance(out, (list, tuple)) else placed(out)

        return call


def _views(value: Any) -> Any:
    if isinstance(value, (list, tuple)):  # arrays to stack, or an axis tuple
        return [_views(v) for v in value] if any(map(is_array, value)) else value
    view = host_view(value)
    return value if view is None else view


_HOST = _Host()


def xp(*arrays: Any) -> Any:
    """The namespace for an exact operation (no arithmetic: reshapes, transposes, stacking, selection) on
    ``arrays``: NumPy (on host views, results placed) when :func:`host` allows, else ``jax.numpy``.

    >>> import jax.numpy as jnp
    >>> x = jnp.arange(6)
    >>> xp(x).reshape(x, (2, 3)).shape, xp(x) is jnp
    ((2, 3), False)
    """
    return _HOST if host(*arrays) is not None else jnp


def _option(value: Any) -> tuple | None:
    """A static argument as part of a program's key (floats by their bits: 1.0 and 1 differ, NaN equals NaN)."""
    if value is None or isinstance(value, (str, *_SCALARS)):
        return (type(value), value.hex() if isinstance(value, float) else value)
    return None


def _template(args: tuple, kwargs: dict, numbers_static: bool) -> tuple[tuple, list] | None:
    """The static part of a call (:data:`_OPERAND` where an operand goes) and its operands, or None if some
    argument can't be either. Python numbers given positionally are operands (jit arguments, weakly typed as JAX
    treats Python numbers) unless ``numbers_static``; keyword arguments are options (part of the program)."""
    static, operands = [], []
    for value in args:
        if host_view(value) is not None or (isinstance(value, _SCALARS) and not numbers_static):
            static.append(_OPERAND)
            operands.append(value)
        elif (option := _option(value)) is not None:
            static.append(option)
        else:
            return None
    for key in sorted(kwargs):
        option = _option(kwargs[key])
        if option is None:
            return None
        static.append((key, *option))
    return tuple(static), operands


def _program(fn: Callable, static: tuple, args: tuple, kwargs: dict) -> Callable:
    key = (fn, static)
    program = _programs.get(key)
    if program is None:
        if len(_programs) > 4096:
            _programs.clear()
        fixed = [None if s is _OPERAND else a for s, a in zip(static, args, strict=False)]  # static: then the options

        def call(*operands: Any) -> Any:
            given = iter(operands)
            return fn(*(next(given) if s is _OPERAND else a for s, a in zip(static, fixed, strict=False)),
                      **kwargs)

        program = _programs[key] = jax.jit(call)
    return program


def _chunked(fn: Callable, args: tuple, kwargs: dict, numbers_static: bool) -> jax.Array | None:
    """``fn(*args, **kwargs)`` computed chunk by chunk, or None where that does not apply."""
    parts = _template(args, kwargs, numbers_static)
    if parts is None:
        return None
    static, operands = parts
    views = [host_view(v) for v in operands]
    if not any(v is not None and v.ndim for v in views) or is_staging():
        return None
    try:
        shape = np.broadcast_shapes(*(v.shape for v in views if v is not None))
    except ValueError:
        return None  # JAX's own error
    size = math.prod(shape)
    chunk = SMALL if size <= SMALL else LARGE
    calls = -(-size // chunk)
    if size == 0:
        return None
    spent_key = (fn, static, shape, *((v.shape, v.dtype) for v in views if v is not None))
    spent = _spent.get(spent_key, 0) + calls
    if spent > BUDGET:
        return None
    if len(_spent) > 65536:
        _spent.clear()
    _spent[spent_key] = spent
    flat = []
    for value, view in zip(operands, views, strict=True):
        if view is None or view.ndim == 0:
            flat.append(value)  # a Python number or 0-d array: broadcast by the program itself
        else:
            flat.append(np.broadcast_to(view, shape).reshape(-1))
    program = _program(fn, static, args, kwargs)
    out = None
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        pieces = [_piece(v, start, stop, chunk) for v in flat]
        if out is None:
            try:
                result = np.asarray(program(*pieces))
            except Exception:  # noqa: BLE001 - not traceable with these operands: JAX's own path decides
                return None
            if result.shape != (chunk,):
                raise AssertionError(f"jnn.ops.{fn.__name__} is not elementwise (chunk result {result.shape})")
            out = host_buffer((size,), result.dtype)
        else:
            result = np.asarray(program(*pieces))
        out[start:stop] = result[:stop - start]
    return to_device(out.reshape(shape))


def _piece(value: Any, start: int, stop: int, chunk: int) -> Any:
    if not isinstance(value, np.ndarray) or value.ndim == 0:
        return value
    piece = value[start:stop]
    if stop - start < chunk:
        piece = np.concatenate([piece, np.broadcast_to(piece[-1:], (chunk - (stop - start),))])
    return piece


def elementwise(fn: F | None = None, *, numbers_static: bool = False) -> Any:
    """Mark ``fn`` (arrays and Python numbers in, one array of their broadcast shape out, each element computed
    from the same elements of the inputs) to run eagerly in chunks: one compile per dtype and option, not per
    shape. Keyword arguments are options, fixed per program; so are positional Python numbers with
    ``numbers_static`` (for ``pow``, where JAX computes ``x ** 2`` by multiplying)."""

    def mark(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            out = _chunked(fn, args, kwargs, numbers_static)
            return fn(*args, **kwargs) if out is None else out

        run.unchunked = fn  # the function itself, for tests
        return run  # type: ignore[return-value]

    return mark(fn) if fn is not None else mark
