"""Creating arrays with torch's signatures and default dtypes (``zeros(2, 3)``, ``arange(5)`` is integer,
``tensor([1.0])`` float32, ``new_zeros``, ``*_like``), and random arrays drawn from jnn's random stream.

``device=``, ``requires_grad=``, ``layout=``, ``pin_memory=`` and ``memory_format=`` are accepted and ignored (JAX
places arrays itself; gradients are taken with ``jax.grad``). Random functions take their key from
:func:`jnn.random.next_key`: seed eagerly with ``jnn.manual_seed``; under ``jit`` wrap the call in
``with jnn.random.fork(key):`` (or pass a JAX key as ``generator=``).

>>> import jax, jax.numpy as jnp
>>> zeros(2, 3).shape, arange(5).dtype, arange(0, 1, 0.25).tolist(), full((2,), 7).dtype
((2, 3), dtype('int32'), [0.0, 0.25, 0.5, 0.75], dtype('int32'))
>>> import jnn
>>> def noisy(x, key):
...     with jnn.random.fork(key):
...         return x + randn(*x.shape)
>>> jax.jit(noisy)(jnp.zeros(2), jax.random.key(0)).shape
(2,)
"""

from __future__ import annotations

import builtins
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn import random as _random
from jnn._arrays import as_array, default_complex, host_copy, is_staging, is_tracer, to_device
from jnn.modules._utils import normal_sample, uniform_sample
from jnn.ops._core import astype, default_float, inplace, is_array, method, sizes, to_dtype
from jnn.ops.dtypes import Size
from jnn.ops.dtypes import device as device_type

__all__ = [
    "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like", "new_zeros", "new_ones",
    "new_empty", "new_full", "new_tensor", "new", "arange", "range", "linspace", "logspace", "eye", "tensor",
    "as_tensor", "asarray", "from_numpy", "frombuffer", "scalar_tensor", "tril_indices", "triu_indices", "rand",
    "randn", "randint", "randperm",
    "rand_like", "randn_like", "randint_like", "bernoulli", "multinomial", "normal", "poisson", "normal_",
    "uniform_", "bernoulli_", "exponential_", "random_", "Generator", "vander",
]


def _create(name: str, *args: Any, dtype: Any, **kwargs: Any) -> jax.Array:
    """``jnp.<name>(*args, dtype=dtype, **kwargs)``. Eagerly NumPy makes it on the host (``arange``, ``linspace``
    and ``logspace`` computed in 64 bits, as torch does) and the device takes it in one copy: ``jnp`` compiles an
    XLA program for every new shape, which model code calling ``torch.zeros`` or ``torch.arange`` in ``__init__``
    would pay for each layer. Under ``jit`` it stays ``jnp``: no large constant is baked into the program."""
    if is_staging() or any(is_tracer(a) for a in (*args, *kwargs.values())):
        return getattr(jnp, name)(*args, dtype=dtype, **kwargs)
    make = getattr(np, name)
    return to_device(host_copy(make(*args, **kwargs) if name in _COMPUTED else make(*args, dtype=dtype,
                                                                                          **kwargs), dtype))


_COMPUTED = ("arange", "linspace", "logspace")


def _size(size: Any, args: tuple, who: str) -> tuple[int, ...]:
    return sizes(args if size is None else (size,), who)


def _fill_dtype(value: Any) -> np.dtype:
    """torch's dtype for a python fill value: bool, int64 (int32 without x64) or the default float."""
    if is_array(value):
        return jnp.asarray(value).dtype
    if isinstance(value, builtins.bool):
        return np.dtype(np.bool_)
    if isinstance(value, (builtins.int, np.integer)):
        return to_dtype(np.int64)
    if isinstance(value, complex):
        return default_complex()
    return default_float()


def zeros(*size: Any, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
          requires_grad: builtins.bool = False, **kwargs: Any) -> jax.Array:
    """Zeros of shape ``size`` (``zeros(2, 3)`` or ``zeros((2, 3))``), float32 by default."""
    return _create("zeros", _size(kwargs.get("size"), size, "zeros"), dtype=to_dtype(dtype) or default_float())


def ones(*size: Any, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
         requires_grad: builtins.bool = False, **kwargs: Any) -> jax.Array:
    """Ones of shape ``size``, float32 by default."""
    return _create("ones", _size(kwargs.get("size"), size, "ones"), dtype=to_dtype(dtype) or default_float())


def empty(*size: Any, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
          requires_grad: builtins.bool = False, **kwargs: Any) -> jax.Array:
    """torch leaves ``empty`` uninitialised; here it is zeros (JAX has no uninitialised memory)."""
    return _create("zeros", _size(kwargs.get("size"), size, "empty"), dtype=to_dtype(dtype) or default_float())


def full(size: Any, fill_value: Any, *, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
         requires_grad: builtins.bool = False, **kwargs: Any) -> jax.Array:
    """``fill_value`` in shape ``size``; the dtype follows the value as in torch (bool, integer, float32)."""
    return _create("full", sizes((size,), "full"), fill_value, dtype=to_dtype(dtype) or _fill_dtype(fill_value))


def _like_dtype(input: Any, dtype: Any) -> np.dtype:
    return to_dtype(dtype) or jnp.asarray(input).dtype


def zeros_like(input: Any, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """Zeros with ``input``'s shape and dtype."""
    return _create("zeros", jnp.shape(input), dtype=_like_dtype(input, dtype))


def ones_like(input: Any, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """Ones with ``input``'s shape and dtype."""
    return _create("ones", jnp.shape(input), dtype=_like_dtype(input, dtype))


def empty_like(input: Any, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """Zeros with ``input``'s shape and dtype (torch's are uninitialised)."""
    return _create("zeros", jnp.shape(input), dtype=_like_dtype(input, dtype))


def full_like(input: Any, fill_value: Any, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """``fill_value`` with ``input``'s shape and dtype."""
    return _create("full", jnp.shape(input), fill_value, dtype=_like_dtype(input, dtype))


@method
def new_zeros(input: Any, *size: Any, dtype: Any = None, device: Any = None, **kwargs: Any) -> jax.Array:
    """Zeros of shape ``size`` with ``input``'s dtype (unless ``dtype=``).

    >>> import jax.numpy as jnp
    >>> new_zeros(jnp.arange(3), 2, 2).dtype, new_ones(jnp.ones(1), (2,)).tolist()
    (dtype('int32'), [1.0, 1.0])
    """
    return _create("zeros", _size(kwargs.get("size"), size, "new_zeros"), dtype=_like_dtype(input, dtype))


@method
def new_ones(input: Any, *size: Any, dtype: Any = None, device: Any = None, **kwargs: Any) -> jax.Array:
    """Ones of shape ``size`` with ``input``'s dtype."""
    return _create("ones", _size(kwargs.get("size"), size, "new_ones"), dtype=_like_dtype(input, dtype))


@method
def new_empty(input: Any, *size: Any, dtype: Any = None, device: Any = None, **kwargs: Any) -> jax.Array:
    """Zeros of shape ``size`` with ``input``'s dtype (torch's are uninitialised)."""
    return _create("zeros", _size(kwargs.get("size"), size, "new_empty"), dtype=_like_dtype(input, dtype))


@method
def new_full(input: Any, size: Any, fill_value: Any, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """``fill_value`` in shape ``size`` with ``input``'s dtype."""
    return _create("full", sizes((size,), "new_full"), fill_value, dtype=_like_dtype(input, dtype))


@method
def new_tensor(input: Any, data: Any, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """``data`` as an array of ``input``'s dtype."""
    return astype(data, _like_dtype(input, dtype))


@method
def new(input: Any, *args: Any, dtype: Any = None, device: Any = None, **kwargs: Any) -> jax.Array:
    """torch's legacy ``x.new(...)``: ``new(data)`` (an array or a sequence) is ``data`` in ``input``'s dtype,
    ``new(*size)`` zeros of that size (torch's are uninitialised), ``new()`` an empty array.

    >>> import jax.numpy as jnp
    >>> new(jnp.ones(2), [1, 2]).tolist(), new(jnp.ones(2), 2, 3).shape, new(jnp.ones(2)).shape
    ([1.0, 2.0], (2, 3), (0,))
    """
    if len(args) == 1 and not isinstance(args[0], (builtins.int, np.integer, Size)):
        return new_tensor(input, args[0], dtype=dtype)
    return new_zeros(input, *(args or (0,)), dtype=dtype)


def _python_data_dtype(data: Any) -> Any:
    """The dtype torch gives nested python data: bool, int64 or the default float (float32)."""
    leaves = jax.tree_util.tree_leaves(data)
    if leaves and builtins.all(is_array(v) for v in leaves):
        return None  # arrays (also inside lists) keep their dtype
    kinds = {np.asarray(v).dtype.kind for v in leaves if not is_array(v)}
    if "c" in kinds:
        return default_complex()
    if "f" in kinds:
        return default_float()
    return None


def tensor(data: Any, *, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
           pin_memory: builtins.bool = False) -> jax.Array:
    """An array from ``data`` (nested lists, numbers, arrays) with torch's default dtypes: python floats give
    float32, ints int64 (int32 without x64), bools bool.

    >>> tensor([1, 2]).dtype, tensor([1.0, 2]).dtype, tensor(True).dtype
    (dtype('int32'), dtype('float32'), dtype('bool'))
    """
    dtype = to_dtype(dtype) or _python_data_dtype(data)
    if isinstance(data, (list, tuple, np.ndarray)) and not is_staging() and not builtins.any(
            is_tracer(v) for v in jax.tree_util.tree_leaves(data)):  # made on the host, as _create does
        host = np.asarray(data)
        return to_device(host_copy(host, dtype or to_dtype(host.dtype)))
    return astype(jnp.asarray(data), dtype)  # python scalars stay weakly typed, as torch's 0-d tensors promote


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> jax.Array:
    """As :func:`tensor`; an array is returned as it is when its dtype already matches."""
    return tensor(data, dtype=dtype)


asarray = as_tensor


def from_numpy(ndarray: np.ndarray) -> jax.Array:
    """A numpy array as a JAX array (a copy: JAX arrays cannot share numpy's memory and be written through)."""
    return as_array(ndarray, "jnn.ops.from_numpy", "ndarray")


def frombuffer(buffer: Any, *, dtype: Any, count: builtins.int = -1, offset: builtins.int = 0,
               requires_grad: builtins.bool = False) -> jax.Array:
    """A 1-d array of ``count`` elements of ``dtype`` (-1: all that fit) read from a Python buffer (``bytes``,
    ``bytearray``, ``memoryview``, ``array.array``) from byte ``offset``; copied, as JAX arrays own their memory.

    >>> frombuffer(bytes([1, 0, 2, 0, 3, 0]), dtype=np.int16, offset=2).tolist()
    [2, 3]
    """
    values = np.frombuffer(buffer, dtype=to_dtype(dtype), count=count, offset=offset)
    return as_array(values, "jnn.ops.frombuffer", "buffer")


def scalar_tensor(s: Any, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """A 0-d array holding ``s`` (float32 by default)."""
    return jnp.asarray(s, to_dtype(dtype) or default_float())


def arange(start: Any, end: Any = None, step: Any = 1, *, out: Any = None, dtype: Any = None, layout: Any = None,
           device: Any = None, requires_grad: builtins.bool = False) -> jax.Array:
    """``start, start + step, ...`` below ``end`` (``arange(n)``: ``0..n-1``). Integer arguments give int64 (int32
    without x64), any float gives float32, as in torch. The bounds must be static under jit."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        floats = builtins.any(isinstance(v, builtins.float) or (is_array(v) and jnp.issubdtype(jnp.asarray(v).dtype,
                                                                                            jnp.floating))
                              for v in (start, end, step))
        dtype = default_float() if floats else np.int64
    return _create("arange", start, end, step, dtype=to_dtype(dtype))


def range(start: Any = 0, end: Any = None, step: Any = 1, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """torch's deprecated ``range``: like :func:`arange` but including ``end``; float32 by default."""
    if end is None:
        start, end = 0, start
    n = builtins.int(np.floor((end - start) / step)) + 1
    return (start + jnp.arange(n) * step).astype(to_dtype(dtype) or default_float())


def linspace(start: Any, end: Any, steps: builtins.int, *, out: Any = None, dtype: Any = None,
             **kwargs: Any) -> jax.Array:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (float32 by default)."""
    return _create("linspace", start, end, steps, dtype=to_dtype(dtype) or default_float())


def logspace(start: Any, end: Any, steps: builtins.int, base: builtins.float = 10.0, *, dtype: Any = None,
             **kwargs: Any) -> jax.Array:
    """``base ** linspace(start, end, steps)``."""
    return _create("logspace", start, end, steps, base=base, dtype=to_dtype(dtype) or default_float())


def eye(n: builtins.int, m: builtins.int | None = None, *, out: Any = None, dtype: Any = None,
        **kwargs: Any) -> jax.Array:
    """The ``n x m`` identity (``m = n`` by default), float32 by default."""
    return _create("eye", n, m, dtype=to_dtype(dtype) or default_float())


def _indices(row: builtins.int, col: builtins.int, offset: builtins.int, lower: builtins.bool, dtype: Any) -> Any:
    r, c = (np.tril_indices if lower else np.triu_indices)(row, offset, col)
    return jnp.asarray(np.stack([r, c]), to_dtype(dtype or np.int64))


def tril_indices(row: builtins.int, col: builtins.int, offset: builtins.int = 0, *, dtype: Any = None,
                 **kwargs: Any) -> jax.Array:
    """A ``(2, N)`` array of the row and column indices of the lower triangle."""
    return _indices(row, col, offset, True, dtype)


def triu_indices(row: builtins.int, col: builtins.int, offset: builtins.int = 0, *, dtype: Any = None,
                 **kwargs: Any) -> jax.Array:
    """A ``(2, N)`` array of the row and column indices of the upper triangle."""
    return _indices(row, col, offset, False, dtype)


# --- randomness -------------------------------------------------------------------------------------------------

class Generator:
    """torch's ``Generator`` re-made as a holder of a JAX key: ``manual_seed(s)`` sets it, and each draw that is
    given it as ``generator=`` splits it. Eager use only (it changes its own state); under jit pass a JAX key.

    >>> g = Generator().manual_seed(0)
    >>> bool((rand(3, generator=g) == rand(3, generator=Generator().manual_seed(0))).all())
    True
    """

    def __init__(self, device: Any = None) -> None:
        # torch's default generator device is the CPU; arrays are drawn where JAX puts them either way
        self.device = device_type(device if device is not None else "cpu")
        self.manual_seed(0)

    def manual_seed(self, seed: builtins.int) -> Generator:
        self._seed = builtins.int(seed)
        self._key = jax.random.key(self._seed % 2**32)
        return self

    def initial_seed(self) -> builtins.int:
        return self._seed

    def next_key(self) -> jax.Array:
        self._key, sub = jax.random.split(self._key)
        return sub


def _key(generator: Any, who: str) -> jax.Array:
    if generator is None:
        return _random.next_key(f"jnn.ops.{who}")
    return _source(generator, who)


def _source(generator: Any, who: str) -> np.random.Generator | jax.Array:
    """:func:`jnn.random.next_source` (NumPy on the host when drawing eagerly from the global stream), or the key
    of ``generator``."""
    if generator is None:
        return _random.next_source(f"jnn.ops.{who}")
    if isinstance(generator, Generator):
        return generator.next_key()
    if is_array(generator):
        return generator
    raise TypeError(f"jnn.ops.{who}: generator must be None, a jnn.ops.Generator or a JAX key, got "
                    f"{type(generator).__name__}")


def _float_dtype(dtype: Any, who: str) -> np.dtype:
    dtype = to_dtype(dtype) or default_float()
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"jnn.ops.{who}: dtype must be floating, got {dtype}")
    return dtype


def _uniform(source: Any, shape: tuple[int, ...], dtype: Any, low: float, high: float) -> jax.Array:
    if isinstance(source, np.random.Generator):  # building a model: a host draw compiles nothing
        return to_device(uniform_sample(source, shape, dtype, low, high))
    return jax.random.uniform(source, shape, dtype, low, high)


def _normal(source: Any, shape: tuple[int, ...], dtype: Any, mean: float, std: float) -> jax.Array:
    if isinstance(source, np.random.Generator):
        return to_device(normal_sample(source, shape, dtype, mean, std))
    return mean + std * jax.random.normal(source, shape, dtype)


def rand(*size: Any, generator: Any = None, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """Uniform samples in ``[0, 1)`` of shape ``size``."""
    shape = _size(kwargs.get("size"), size, "rand")
    return _uniform(_source(generator, "rand"), shape, _float_dtype(dtype, "rand"), 0.0, 1.0)


def randn(*size: Any, generator: Any = None, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """Standard normal samples of shape ``size``."""
    shape = _size(kwargs.get("size"), size, "randn")
    return _normal(_source(generator, "randn"), shape, _float_dtype(dtype, "randn"), 0.0, 1.0)


def randint(*args: Any, size: Any = None, generator: Any = None, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """Integers uniform in ``[low, high)``: ``randint(high, size)`` or ``randint(low, high, size)``; int64 (int32
    without x64) by default."""
    if size is None:
        *args, size = args
    low, high = (0, *args) if len(args) == 1 else args
    return jax.random.randint(_key(generator, "randint"), sizes((size,), "randint"), low, high,
                              to_dtype(dtype or np.int64))


def randperm(n: builtins.int, *, generator: Any = None, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """A random permutation of ``0..n-1``."""
    return jax.random.permutation(_key(generator, "randperm"), n).astype(to_dtype(dtype or np.int64))


def rand_like(input: Any, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """:func:`rand` with ``input``'s shape and dtype."""
    return rand(jnp.shape(input), dtype=_like_dtype(input, dtype))


def randn_like(input: Any, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """:func:`randn` with ``input``'s shape and dtype."""
    return randn(jnp.shape(input), dtype=_like_dtype(input, dtype))


def randint_like(input: Any, low: Any = 0, high: Any = None, *, dtype: Any = None, **kwargs: Any) -> jax.Array:
    """:func:`randint` with ``input``'s shape and dtype (``randint_like(x, high)`` or ``(x, low, high)``)."""
    if high is None:
        low, high = 0, low
    return randint(low, high, jnp.shape(input), dtype=_like_dtype(input, dtype))


@method
def bernoulli(input: Any, p: Any = None, *, generator: Any = None) -> jax.Array:
    """1 with probability ``input`` (or ``p``) else 0, in ``input``'s dtype."""
    x = jnp.asarray(input)
    prob = x if p is None else jnp.broadcast_to(p, x.shape)
    return jax.random.bernoulli(_key(generator, "bernoulli"), prob, x.shape).astype(x.dtype)


@method
def multinomial(input: Any, num_samples: builtins.int, replacement: builtins.bool = False, *,
                generator: Any = None) -> jax.Array:
    """``num_samples`` category indices per row of (unnormalised) weights ``input`` (1-d or 2-d); without
    replacement each index appears at most once per row (Gumbel top-k).

    >>> import jax, jnn
    >>> with jnn.random.fork(jax.random.key(0)):
    ...     multinomial(jax.numpy.array([0.0, 1.0, 0.0]), 1).tolist()
    [1]
    """
    w = jnp.asarray(input)
    if w.ndim not in (1, 2):
        raise ValueError(f"jnn.ops.multinomial expects 1-d or 2-d weights, got {w.ndim}-d")
    if not replacement and num_samples > w.shape[-1]:
        raise ValueError(f"jnn.ops.multinomial: cannot draw {num_samples} samples from {w.shape[-1]} categories "
                         "without replacement")
    key = _key(generator, "multinomial")
    logits = jnp.log(w.astype(jnp.promote_types(w.dtype, jnp.float32)))
    if replacement:
        out = jax.random.categorical(key, logits, axis=-1, shape=(num_samples, *w.shape[:-1]))
        out = jnp.moveaxis(out, 0, -1)
    else:
        gumbel = jax.random.gumbel(key, w.shape, logits.dtype)
        out = jax.lax.top_k(logits + gumbel, num_samples)[1]
    return out.astype(to_dtype(np.int64))


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, *, generator: Any = None, dtype: Any = None,
           **kwargs: Any) -> jax.Array:
    """Normal samples with ``mean`` and ``std`` (arrays broadcast; numbers need ``size``)."""
    shape = sizes((size,), "normal") if size is not None else jnp.broadcast_shapes(jnp.shape(mean), jnp.shape(std))
    dt = to_dtype(dtype) or jnp.result_type(mean, std, default_float())
    return mean + std * jax.random.normal(_key(generator, "normal"), shape, dt)


def poisson(input: Any, generator: Any = None) -> jax.Array:
    """Poisson samples with rates ``input``, in ``input``'s dtype."""
    x = jnp.asarray(input)
    return jax.random.poisson(_key(generator, "poisson"), x, x.shape).astype(x.dtype)


@inplace
def normal_(input: Any, mean: builtins.float = 0.0, std: builtins.float = 1.0, *, generator: Any = None) -> jax.Array:
    """A new array like ``input`` filled with normal samples (torch fills ``input`` in place)."""
    x = jnp.asarray(input)
    return _normal(_source(generator, "normal_"), x.shape, x.dtype, mean, std)


@inplace
def uniform_(input: Any, a: builtins.float = 0.0, b: builtins.float = 1.0, *, generator: Any = None) -> jax.Array:
    """A new array like ``input`` filled with samples uniform in ``[a, b)``."""
    x = jnp.asarray(input)
    return _uniform(_source(generator, "uniform_"), x.shape, x.dtype, a, b)


@inplace
def bernoulli_(input: Any, p: Any = 0.5, *, generator: Any = None) -> jax.Array:
    """A new array like ``input`` of 0/1 samples, 1 with probability ``p``."""
    x = jnp.asarray(input)
    return jax.random.bernoulli(_key(generator, "bernoulli_"), jnp.broadcast_to(p, x.shape)).astype(x.dtype)


@inplace
def exponential_(input: Any, lambd: builtins.float = 1.0, *, generator: Any = None) -> jax.Array:
    """A new array like ``input`` of exponential samples with rate ``lambd``."""
    x = jnp.asarray(input)
    return (jax.random.exponential(_key(generator, "exponential_"), x.shape, x.dtype) / lambd).astype(x.dtype)


@inplace
def random_(input: Any, from_: builtins.int = 0, to: builtins.int | None = None, *, generator: Any = None) -> jax.Array:
    """A new array like ``input`` of integers uniform in ``[from_, to)`` (``random_(to)`` means ``[0, to)``)."""
    x = jnp.asarray(input)
    if to is None:
        from_, to = 0, from_ if from_ else 2 ** (jnp.finfo(x.dtype).nmant + 1 if jnp.issubdtype(
            x.dtype, jnp.floating) else 31)
    return jax.random.randint(_key(generator, "random_"), x.shape, from_, to).astype(x.dtype)


def vander(x: Any, N: builtins.int | None = None, increasing: builtins.bool = False) -> jax.Array:
    """The Vandermonde matrix of a 1-d array: columns ``x ** (N - 1), ..., x, 1`` (reversed when ``increasing``),
    ``N`` defaulting to ``len(x)``; integers and bools give int64 (int32 without x64), as torch.

    >>> import jax.numpy as jnp
    >>> vander(jnp.array([1, 2, 3])).tolist(), vander(jnp.array([2.0]), 3, increasing=True).tolist()
    ([[1, 1, 1], [4, 2, 1], [9, 3, 1]], [[1.0, 2.0, 4.0]])
    """
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"jnn.ops.vander: x must be a 1-d array, got {x.ndim}-d")
    n = x.shape[0] if N is None else N
    if n < 0:
        raise ValueError(f"jnn.ops.vander: N must be non-negative, got {n}")
    x = x.astype(jnp.promote_types(x.dtype, to_dtype(np.int64)))
    powers = jnp.cumprod(jnp.broadcast_to(x[:, None], (x.shape[0], builtins.max(n - 1, 0))), axis=1)
    result = jnp.concatenate([jnp.ones((x.shape[0], builtins.min(n, 1)), x.dtype), powers], axis=1)
    return result if increasing else result[:, ::-1]
