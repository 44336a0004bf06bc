"""torch's dtypes, ``Tensor``/``Size``/``device`` names and dtype conversions (``float()``, ``to()``, ``type_as()``).

torch's ``torch.float`` is a dtype and ``x.float()`` a method; here ``ops.float`` is both: it is accepted wherever a
dtype is (``dtype=ops.float``, ``x.dtype == ops.float``) and ``ops.float(x)`` converts.

Without ``jax_enable_x64`` (JAX's default) JAX has no 64-bit types: ``ops.long(x)`` and ``ops.to(x, ops.int64)``
give int32, ``ops.double(x)`` gives float32, and creation functions that would give int64 give int32.

>>> import jax.numpy as jnp
>>> from jnn import ops
>>> x = jnp.arange(3)
>>> ops.float(x).dtype, ops.to(x, ops.half).dtype, ops.long(x).dtype, ops.float == jnp.float32
(dtype('float32'), dtype('float16'), dtype('int32'), True)
"""

from __future__ import annotations

import builtins
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn._arrays import set_default_float
from jnn.ops._core import METHODS, astype, call_receiver, default_float, is_array, method, sizes, to_dtype

__all__ = [
    "dtype", "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "uint16",
    "uint32", "uint64", "complex64", "complex128", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
    "float8_e5m2fnuz", "float8_e8m0fnu", "bool", "float", "double", "half", "long", "int", "short", "char", "byte",
    "cfloat", "cdouble", "finfo", "iinfo", "get_default_dtype", "set_default_dtype", "promote_types",
    "result_type", "can_cast", "is_floating_point", "is_complex", "is_signed", "element_size", "to", "type",
    "type_as", "Tensor", "Size", "device", "get_default_device", "FloatTensor", "DoubleTensor", "HalfTensor",
    "LongTensor", "IntTensor", "BoolTensor", "ByteTensor",
]

dtype = np.dtype  # the type of every dtype here: ``isinstance(ops.float32, ops.dtype)``
float32 = np.dtype("float32")
float64 = np.dtype("float64")
float16 = np.dtype("float16")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
uint16 = np.dtype("uint16")
uint32 = np.dtype("uint32")
uint64 = np.dtype("uint64")
complex64 = np.dtype("complex64")
complex128 = np.dtype("complex128")
# torch's 8-bit floats are JAX's (ml_dtypes'): same names, same formats
float8_e4m3fn = np.dtype(jnp.float8_e4m3fn)
float8_e5m2 = np.dtype(jnp.float8_e5m2)
float8_e4m3fnuz = np.dtype(jnp.float8_e4m3fnuz)
float8_e5m2fnuz = np.dtype(jnp.float8_e5m2fnuz)
float8_e8m0fnu = np.dtype(jnp.float8_e8m0fnu)


class DtypeMethod:
    """A torch name that is a dtype and a Tensor method at once (``torch.float`` / ``x.float()``).

    It converts to its dtype wherever one is expected (it has a ``dtype`` attribute, which numpy and JAX read),
    compares equal to it, and called on an array converts the array (on anything else: its own method).

    >>> import jax.numpy as jnp
    >>> long(jnp.array([1.7, -1.7])).tolist(), jnp.zeros(2, dtype=half).dtype
    ([1, -1], dtype('float16'))
    """

    def __init__(self, name: str, dtype: Any) -> None:
        self.__name__ = name
        self.dtype = np.dtype(dtype)
        METHODS.add(name)

    def __call__(self, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        if x is None:
            raise TypeError(f"jnn.ops.{self.__name__}(x) converts x to {self.dtype}; it needs an argument")
        if not is_array(x):
            return call_receiver(x, self.__name__, args, kwargs)
        return astype(x, self.dtype)

    def __eq__(self, other: Any) -> builtins.bool:
        try:
            return self.dtype == np.dtype(other)
        except TypeError:
            return False

    def __hash__(self) -> builtins.int:
        return hash(self.dtype)

    def __repr__(self) -> str:
        return f"jnn.ops.{self.__name__} ({self.dtype})"

    @property
    def itemsize(self) -> builtins.int:
        return self.dtype.itemsize

    @property
    def is_floating_point(self) -> builtins.bool:
        return jnp.issubdtype(self.dtype, jnp.floating)


bfloat16 = DtypeMethod("bfloat16", jnp.bfloat16)
bool = DtypeMethod("bool", np.bool_)
float = DtypeMethod("float", np.float32)
double = DtypeMethod("double", np.float64)
half = DtypeMethod("half", np.float16)
long = DtypeMethod("long", np.int64)
int = DtypeMethod("int", np.int32)
short = DtypeMethod("short", np.int16)
char = DtypeMethod("char", np.int8)
byte = DtypeMethod("byte", np.uint8)
cfloat = DtypeMethod("cfloat", np.complex64)
cdouble = DtypeMethod("cdouble", np.complex128)


def finfo(type: Any = None) -> Any:
    """Limits of a floating dtype (``eps``, ``max``, ``min``, ``tiny``, ``bits``); the default float32 when omitted.

    >>> finfo(float16).bits, finfo().bits
    (16, 32)
    """
    return jnp.finfo(to_dtype(default_float() if type is None else type))


def iinfo(type: Any) -> Any:
    """Limits of an integer dtype (``min``, ``max``, ``bits``).

    >>> iinfo(uint8).max
    255
    """
    return jnp.iinfo(to_dtype(type))


def get_default_dtype() -> np.dtype:
    """torch's default floating dtype: float32 unless :func:`set_default_dtype` changed it."""
    return default_float()


def set_default_dtype(d: Any) -> None:
    """torch's ``set_default_dtype``: the floating dtype that layers create their parameters in and that Python
    floats become (``ops.tensor([1.0])``, ``ops.zeros(2)``) from now on; float16, bfloat16, float32, or float64 in
    JAX's 64-bit mode.

    >>> import jnn
    >>> from jnn import ops
    >>> set_default_dtype(bfloat16)
    >>> str(jnn.Linear(2, 2).weight.dtype), str(ops.tensor([1.0]).dtype)
    ('bfloat16', 'bfloat16')
    >>> set_default_dtype(float32)
    """
    set_default_float(d, "jnn.ops.set_default_dtype")


def promote_types(type1: Any, type2: Any) -> np.dtype:
    """The dtype both promote to (JAX's promotion lattice, which matches torch's for array-array operations)."""
    return to_dtype(jnp.promote_types(np.dtype(type1), np.dtype(type2)))


def result_type(tensor1: Any, tensor2: Any) -> np.dtype:
    """The dtype of an arithmetic result of the two (python scalars are weak, as in torch)."""
    return to_dtype(jnp.result_type(tensor1, tensor2))


def _category(dt: Any) -> builtins.int:
    dt = np.dtype(dt)
    if dt == np.bool_:
        return 0
    return 1 if dt.kind in "iu" else 3 if dt.kind == "c" else 2


def can_cast(from_: Any, to: Any) -> builtins.bool:
    """torch's rule for in-place results: no cast to a lower category (bool < integer < floating < complex).

    >>> can_cast(int32, float16), can_cast(float32, int64)
    (True, False)
    """
    return _category(from_) <= _category(to)


@method
def is_floating_point(input: Any) -> builtins.bool:
    """Whether the array's dtype is a floating type."""
    return jnp.issubdtype(input.dtype, jnp.floating)


@method
def is_complex(input: Any) -> builtins.bool:
    """Whether the array's dtype is complex."""
    return jnp.issubdtype(input.dtype, jnp.complexfloating)


@method
def is_signed(input: Any) -> builtins.bool:
    """Whether the array's dtype is signed (floats and signed integers)."""
    return not (input.dtype == np.bool_ or input.dtype.kind == "u")


@method
def element_size(input: Any) -> builtins.int:
    """Bytes per element."""
    return input.dtype.itemsize


def _is_device(arg: Any) -> builtins.bool:
    if isinstance(arg, builtins.int) and not isinstance(arg, builtins.bool):
        return True  # a cuda device index
    return isinstance(arg, (str, device, jax.Device))


@method
def to(input: Any, *args: Any, dtype: Any = None, device: Any = None, non_blocking: builtins.bool = False,
       copy: builtins.bool = False, memory_format: Any = None) -> jax.Array:
    """``x.to(dtype)``, ``x.to(device)``, ``x.to(device, dtype)``, ``x.to(other)`` (other's dtype).

    Devices are accepted and ignored: JAX places arrays itself (use ``jax.device_put`` or ``jnn.sharding`` to place
    them). ``copy`` is meaningless for immutable arrays.

    >>> import jax.numpy as jnp
    >>> to(jnp.ones(2), "cpu", float16).dtype, to(jnp.ones(2), jnp.arange(2)).dtype
    (dtype('float16'), dtype('int32'))
    """
    for arg in args:
        if is_array(arg):
            dtype = arg.dtype
        elif _is_device(arg):
            continue
        else:
            try:
                np.dtype(arg)
            except TypeError:
                raise TypeError(f"jnn.ops.to: expected a dtype, a device or an array, got {arg!r}") from None
            dtype = arg
    return astype(input, dtype)


_TYPE_NAMES = {
    "torch.FloatTensor": float32, "torch.DoubleTensor": float64, "torch.HalfTensor": float16,
    "torch.BFloat16Tensor": bfloat16.dtype, "torch.LongTensor": int64, "torch.IntTensor": int32,
    "torch.ShortTensor": int16, "torch.CharTensor": int8, "torch.ByteTensor": uint8,
    "torch.BoolTensor": np.dtype(np.bool_),
}


@method
def type(input: Any, dtype: Any = None, non_blocking: builtins.bool = False, **kwargs: Any) -> Any:
    """``x.type()`` is the torch type name (``'torch.FloatTensor'``); ``x.type(dtype)`` converts.

    >>> import jax.numpy as jnp
    >>> type(jnp.ones(2)), type(jnp.ones(2), "torch.LongTensor").dtype
    ('torch.FloatTensor', dtype('int32'))
    """
    if dtype is None:
        names = {np.dtype(v): k for k, v in _TYPE_NAMES.items()}
        return names.get(input.dtype, f"jnn.{input.dtype}")
    if isinstance(dtype, str) and dtype.replace("torch.cuda.", "torch.") in _TYPE_NAMES:
        dtype = _TYPE_NAMES[dtype.replace("torch.cuda.", "torch.")]
    return astype(input, dtype)


@method
def type_as(input: Any, other: Any) -> jax.Array:
    """``x`` converted to ``other``'s dtype."""
    return astype(input, other.dtype)


class _TensorMeta(builtins.type):
    def __instancecheck__(cls, obj: Any) -> builtins.bool:
        return is_array(obj)

    def __call__(cls, *data: Any) -> jax.Array:
        if not data:
            return jnp.zeros((0,), cls._dtype)
        if len(data) == 1 and not isinstance(data[0], builtins.int):
            return astype(data[0], cls._dtype)
        return jnp.zeros(sizes(data, cls.__name__), cls._dtype)  # torch leaves it uninitialised

    def __getattr__(cls, name: str) -> Any:
        if name in METHODS:
            import jnn.ops

            return getattr(jnn.ops, name)
        raise AttributeError(f"jnn.ops.Tensor has no method-function {name!r}")


class Tensor(metaclass=_TensorMeta):
    """torch's ``Tensor`` as a name: ``isinstance(x, ops.Tensor)`` holds for arrays; ``ops.Tensor.view`` is
    ``ops.view``; ``ops.Tensor([1, 2])`` makes a float32 array, ``ops.Tensor(2, 3)`` a (2, 3) one (zeros).

    >>> import jax.numpy as jnp
    >>> isinstance(jnp.ones(2), Tensor), Tensor([1, 2]).dtype
    (True, dtype('float32'))
    """

    _dtype = float32


def _typed_tensor(name: str, dt: Any) -> builtins.type:
    return _TensorMeta(name, (Tensor,), {"_dtype": dt, "__doc__": f"torch.{name}: ``Tensor`` of dtype {dt}."})


FloatTensor = _typed_tensor("FloatTensor", float32)
DoubleTensor = _typed_tensor("DoubleTensor", float64)
HalfTensor = _typed_tensor("HalfTensor", float16)
LongTensor = _typed_tensor("LongTensor", int64)
IntTensor = _typed_tensor("IntTensor", int32)
BoolTensor = _typed_tensor("BoolTensor", np.bool_)
ByteTensor = _typed_tensor("ByteTensor", uint8)


class Size(tuple):
    """torch's ``Size``: a tuple of ints with :meth:`numel`.

    >>> Size([2, 3]).numel(), Size([2, 3]) == (2, 3)
    (6, True)
    """

    def numel(self) -> builtins.int:
        return builtins.int(np.prod(self, dtype=np.int64))

    def __repr__(self) -> str:
        return f"Size({list(self)})"


class device:
    """torch's ``device`` name: ``device("cuda:0")``, ``device("cpu")``. It is accepted (and ignored) wherever
    torch takes a device; JAX places arrays itself.

    >>> device("cuda:1"), device("cuda:1").index
    (device(type='cuda', index=1), 1)
    """

    def __init__(self, type: Any, index: builtins.int | None = None) -> None:
        if isinstance(type, device):
            type, index = type.type, type.index
        elif isinstance(type, builtins.int):
            type, index = "cuda", type
        elif ":" in type:
            type, _, i = type.partition(":")
            index = builtins.int(i)
        self.type, self.index = type, index

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self) -> str:
        return self.type + (f":{self.index}" if self.index is not None else "")

    def __eq__(self, other: Any) -> builtins.bool:
        return isinstance(other, (device, str)) and str(self) == str(device(other))

    def __hash__(self) -> builtins.int:
        return hash(str(self))


def get_default_device() -> device:
    """torch's default device: that of the arrays JAX makes by default (``cpu``; ``cuda`` on a GPU), as
    ``ops.attr(ops.tensor([]), "device")`` says."""
    from jnn.ops._port import attr

    return attr(jnp.zeros(()), "device")
