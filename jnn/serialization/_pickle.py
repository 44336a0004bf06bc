"""The restricted unpickler behind :mod:`jnn.serialization.torch`: nothing is imported, no code from the file runs.

:func:`unpickle` first walks the opcodes with ``pickletools`` without executing them, refusing those that build
arbitrary objects (``INST``, ``OBJ``, ``EXT*``, ``NEWOBJ_EX``, out-of-band buffers), globals not on the allowed list,
memo indices beyond the pickle's length (CPython's unpickler would allocate and zero a table that large) and
objects nested deeper than :data:`MAX_DEPTH` (hashing or freeing a 300,000-deep tuple overflows the C stack).
The depth is simulated over the pickle machine's stack and memo, iteratively. Only then does a
``pickle.Unpickler`` whose ``find_class`` never imports anything build the object: it hands out inert stand-ins for
the handful of globals a tensor checkpoint names (``torch._utils._rebuild_tensor_v2`` and the other rebuild
functions for plain tensors and parameters, storage types, dtypes, ``collections.OrderedDict``, ``torch.Size``)
-- what ``torch.load(weights_only=True)`` promises. A JAX array pickled by ``torch.save`` (its ``__reduce__``
names ``jax._src.array._reconstruct_array`` with numpy's ``_reconstruct``, ``ndarray`` and ``dtype``) is admitted
too: its raw bytes, dtype and shape are checked and become a numpy array; nothing of jax or numpy is called.

Tensors come out of unpickling as descriptions (storage, offset, shape, strides); :func:`to_arrays` turns them
into numpy arrays once every storage is checked, reading each storage's bytes once from the file.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

from jnn.serialization._common import LoadError, brief, fits_numpy, from_bytes, memory_bound

MAX_DEPTH = 100  # how deep a checkpoint's containers may nest (real ones: under 10)
HINT = ("jnn.load reads tensors, storages, JAX arrays, OrderedDicts and plain containers, and runs nothing from a "
        "file; for a whole pickled model (torch.save(model)), save model.state_dict() instead")

DTYPES = {name: np.dtype(dt) for name, dt in {
    "float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
    "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8,
    "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "bool": np.bool_, "complex64": np.complex64,
    "complex128": np.complex128, "float8_e5m2": ml_dtypes.float8_e5m2, "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz, "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "float8_e8m0fnu": ml_dtypes.float8_e8m0fnu}.items()}
STORAGES = {"DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
            "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
            "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool", "UntypedStorage": "uint8",
            "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128"}
_REFUSED_OPS = {"INST", "OBJ", "EXT1", "EXT2", "EXT4", "NEWOBJ_EX", "PERSID", "BYTEARRAY8", "NEXT_BUFFER",
                "READONLY_BUFFER"}
_IN_PLACE = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}  # change the object below them
_MARKED = {op.name for op in pickletools.opcodes if pickletools.markobject in op.stack_before}  # pop to a mark


class _Inert:
    """Base of the stand-ins unpickling creates: no behaviour, and pickle's BUILD cannot change them."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"pickle tries to set the state of {self!r}; refused")


class _Call(_Inert):
    """A function the file may call (pickle's REDUCE); being inert, it cannot be altered by the file."""

    __slots__ = ("func",)

    def __init__(self, func: Any) -> None:
        self.func = func

    def __call__(self, *args: Any) -> Any:
        return self.func(*args)

    def __repr__(self) -> str:
        return self.func.__name__


class _Named(_Inert):
    """A type or dtype named by the file: ``torch.FloatStorage``, ``torch.float16``, ``torch.Tensor``, ..."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype | None = None) -> None:
        self.name, self.dtype = name, dtype

    def __call__(self, *args: Any) -> Any:
        raise pickle.UnpicklingError(f"pickle calls {self.name}; only tensors and JAX arrays are rebuilt")

    def __repr__(self) -> str:
        return self.name


class Storage(_Inert):
    """A storage: ``nbytes`` bytes of ``dtype`` elements, in zip member ``data/<key>`` (or at ``offset`` bytes
    into storage ``root``, for a legacy view)."""

    __slots__ = ("key", "dtype", "nbytes", "root", "offset", "users")

    def __init__(self, key: str, dtype: np.dtype, nbytes: int, root: Storage | None = None, offset: int = 0):
        self.key, self.dtype, self.nbytes, self.root, self.offset = key, dtype, nbytes, root, offset
        self.users = 0  # tensors built on it

    def __repr__(self) -> str:
        return f"storage {brief(self.key)} ({self.nbytes // self.dtype.itemsize} x {self.dtype})"


class _Tensor(_Inert):
    """A tensor: ``shape``/``strides`` (in elements) over ``storage`` from element ``offset``."""

    __slots__ = ("storage", "dtype", "offset", "shape", "strides", "neg", "conj")

    def __init__(self, storage: Any, offset: Any, shape: Any, strides: Any, dtype: Any = None,
                 metadata: Any = None) -> None:
        if not isinstance(storage, Storage):
            raise pickle.UnpicklingError(f"tensor built on {type(storage).__name__}, not on a storage")
        if dtype is not None and not (isinstance(dtype, _Named) and dtype.dtype is not None):
            raise pickle.UnpicklingError(f"tensor dtype must be a torch dtype, got {brief(dtype)}")
        self.dtype = storage.dtype if dtype is None else dtype.dtype
        if self.dtype != storage.dtype and storage.dtype != np.uint8:
            raise pickle.UnpicklingError(f"{self.dtype} tensor on {storage!r}")
        if not (_ints(shape) and _ints(strides) and len(shape) == len(strides) <= 64 and _ints((offset,))):
            raise pickle.UnpicklingError(f"tensor geometry must be non-negative ints (at most 64 dims): offset "
                                         f"{brief(offset)}, size {brief(shape)}, stride {brief(strides)}")
        if metadata is not None and not (isinstance(metadata, dict) and set(metadata) <= {"neg", "conj"}):
            raise pickle.UnpicklingError(f"unknown tensor metadata {brief(metadata)}")
        self.storage, self.offset, self.shape, self.strides = storage, offset, tuple(shape), tuple(strides)
        self.neg, self.conj = bool((metadata or {}).get("neg")), bool((metadata or {}).get("conj"))
        storage.users += 1

    def __repr__(self) -> str:
        return f"tensor {self.shape} on {self.storage!r}"


def _ints(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(type(v) is int and 0 <= v < 1 << 63 for v in value)


# The callables a checkpoint may name. Each checks its arguments and returns a stand-in; none touches data.
def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _Tensor:
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> _Tensor:
    return _Tensor(storage, storage_offset, size, stride, metadata=metadata)


def _rebuild_tensor_v3(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any,
                       backward_hooks: Any, dtype: Any, metadata: Any = None) -> _Tensor:
    return _Tensor(storage, storage_offset, size, stride, dtype, metadata)


def _rebuild_parameter(data: Any, requires_grad: Any = True, backward_hooks: Any = None, state: Any = None):
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError(f"Parameter built from {type(data).__name__}, not from a tensor")
    return data


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> _Tensor:
    if func not in _REBUILDERS.values() or not isinstance(new_type, _Named) or new_type.name not in _TENSOR_TYPES \
            or type(args) is not tuple:
        raise pickle.UnpicklingError(f"_rebuild_from_type_v2 of {brief(new_type)} by {brief(func)}: only plain "
                                     f"tensors and parameters are rebuilt")
    return func(*args)


def _latin1(text: Any, encoding: Any = "latin1") -> bytes:  # how protocol 2 pickles bytes: _codecs.encode
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode({brief(text)}, {brief(encoding)}) refused")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:  # how protocol 2 pickles b"": __builtin__.bytes()
    if args:
        raise pickle.UnpicklingError(f"bytes{brief(args)} refused; only bytes() is rebuilt")
    return b""


# --- JAX arrays: jax._src.array._reconstruct_array(numpy _reconstruct, (ndarray, (0,), b'b'), state, aval) --------


class _DType(_Inert):
    """``numpy.dtype(code, False, True)`` as pickled: a plain numeric dtype, whose one BUILD gives its byte order."""

    __slots__ = ("dtype", "built")

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype, self.built = dtype, False

    def __setstate__(self, state: Any) -> None:
        if self.built or type(state) is not tuple or len(state) != 8 or state[0] != 3 \
                or state[1] not in ("<", ">", "|", "=") or state[2:5] != (None, None, None):
            raise pickle.UnpicklingError(f"numpy dtype state {brief(state)} is not a plain numeric dtype's")
        if state[1] in "<>" and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(state[1])
        self.built = True

    def __repr__(self) -> str:
        return f"numpy.dtype({self.dtype})"


def _numpy_dtype(code: Any, align: Any = False, copy: Any = True) -> _DType:
    dtype = code.dtype if isinstance(code, _Named) and code.name.startswith("ml_dtypes.") else \
        _NUMPY_CODES.get(code) if type(code) is str else None
    if dtype is None or align is not False or copy is not True:
        raise pickle.UnpicklingError(f"numpy.dtype({brief(code)}, {brief(align)}, {brief(copy)}): only plain "
                                     f"numeric dtypes are rebuilt")
    return _DType(dtype)


class _Raw(_Inert):
    """A JAX array's values: ``shape`` elements of ``dtype`` in ``data`` (C or Fortran order)."""

    __slots__ = ("dtype", "shape", "fortran", "data")

    def __init__(self, dtype: np.dtype, shape: tuple[int, ...], fortran: bool, data: bytes) -> None:
        self.dtype, self.shape, self.fortran, self.data = dtype, shape, fortran, data

    def __repr__(self) -> str:
        return f"JAX array {self.shape} of {self.dtype}"


def _jax_array(fun: Any, args: Any, arr_state: Any, aval_state: Any = None) -> _Raw:
    if fun is not _ALLOWED[("numpy._core.multiarray", "_reconstruct")] or type(args) is not tuple \
            or len(args) != 3 or args[0] is not _ALLOWED[("numpy", "ndarray")] or args[1:] != ((0,), b"b"):
        raise pickle.UnpicklingError(f"jax._src.array._reconstruct_array({brief(fun)}, {brief(args)}): only a "
                                     f"plain numpy array is rebuilt")
    if not (type(arr_state) is tuple and len(arr_state) == 5 and arr_state[0] == 1 and _ints(arr_state[1])
            and isinstance(arr_state[2], _DType) and arr_state[2].built and type(arr_state[3]) is bool
            and type(arr_state[4]) is bytes and len(arr_state[1]) <= 64):
        raise pickle.UnpicklingError(f"JAX array state {brief(arr_state)}: expected (1, shape, dtype, "
                                     f"fortran order, raw bytes)")
    if aval_state is not None and not (type(aval_state) is dict
                                       and all(type(v) is bool for v in aval_state.values())):
        raise pickle.UnpicklingError(f"JAX array aval state {brief(aval_state)}")
    _, shape, dtype, fortran, data = arr_state
    if not fits_numpy(shape, dtype.dtype) or math.prod(shape) * dtype.dtype.itemsize != len(data):
        raise pickle.UnpicklingError(f"JAX array of shape {brief(shape)} and {dtype.dtype} with {len(data)} bytes "
                                     f"of data")
    return _Raw(dtype.dtype, tuple(shape), fortran, data)


_NUMPY_CODES = {dt.str[1:]: dt for dt in (np.dtype(t) for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float16,
    np.float32, np.float64, np.complex64, np.complex128))}
_REBUILDERS = {f.__name__: _Call(f) for f in (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3,
                                               _rebuild_parameter)}
_REBUILDERS["_rebuild_parameter_with_state"] = _REBUILDERS["_rebuild_parameter"]
_TENSOR_TYPES = {"torch.Tensor", "torch.nn.parameter.Parameter"}
# (module, name) -> what the file gets: builtin types (immutable) or inert stand-ins, never a module's function.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict, ("torch", "Size"): tuple, ("_codecs", "encode"): _Call(_latin1),
    **{(mod, name): obj for mod in ("builtins", "__builtin__")
       for name, obj in (("set", set), ("frozenset", frozenset), ("complex", complex),
                         ("bytes", _Call(_empty_bytes)))},
    **{("torch._utils", name): call for name, call in _REBUILDERS.items()},
    ("torch._tensor", "_rebuild_from_type_v2"): _Call(_rebuild_from_type_v2),
    ("torch.tensor", "_rebuild_from_type_v2"): _Call(_rebuild_from_type_v2),
    **{tuple(t.rsplit(".", 1)): _Named(t) for t in _TENSOR_TYPES},
    **{("torch", name): _Named(f"torch.{name}", dt) for name, dt in DTYPES.items()},
    **{(mod, name): _Named(f"{mod}.{name}", DTYPES[dt]) for name, dt in STORAGES.items()
       for mod in ("torch", "torch.cuda", "torch.storage")},
    ("jax._src.array", "_reconstruct_array"): _Call(_jax_array),
}
# numpy's and ml_dtypes' names, admitted only in a pickle that rebuilds JAX arrays (as their arguments)
_JAX_ONLY: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _Named("numpy.ndarray"), ("numpy", "dtype"): _Call(_numpy_dtype),
    ("numpy._core.multiarray", "_reconstruct"): _Named("numpy._core.multiarray._reconstruct"),
    **{("ml_dtypes", name): _Named(f"ml_dtypes.{name}", DTYPES[name]) for name in DTYPES
       if DTYPES[name].type.__module__.startswith("ml_dtypes")},
}
_JAX_ONLY[("numpy.core.multiarray", "_reconstruct")] = _JAX_ONLY[("numpy._core.multiarray", "_reconstruct")]
_ALLOWED.update(_JAX_ONLY)
_JAX_GLOBAL = ("jax._src.array", "_reconstruct_array")


class _Unpickler(pickle.Unpickler):
    """Unpickles one checkpoint pickle into stand-ins; refuses every global but those in ``_ALLOWED``."""

    def __init__(self, data: bytes, where: str, storages: dict[str, Storage], legacy: bool) -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self.where, self.storages, self.legacy = where, storages, legacy

    def find_class(self, module: str, name: str) -> Any:
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise LoadError(f"jnn.load: {self.where} refers to the global {brief(module)[1:-1]}."
                            f"{brief(name)[1:-1]}, which is refused (nothing was executed). {HINT}")
        return obj

    def persistent_load(self, pid: Any) -> Storage:
        kind = pid[0] if type(pid) is tuple and pid else None
        kind = kind.decode("ascii", "replace") if isinstance(kind, bytes) else kind
        if kind == "module":
            raise LoadError(f"jnn.load: {self.where} holds a pickled nn.Module class ({brief(pid[1])}). {HINT}")
        if kind != "storage" or len(pid) != (6 if self.legacy else 5):
            raise LoadError(f"jnn.load: {self.where} has persistent id {brief(pid)}; expected ('storage', type, "
                            f"key, location, numel{', view' if self.legacy else ''})")
        stype, key, _, numel = pid[1:5]
        if not (isinstance(stype, _Named) and stype.name.endswith("Storage")) or type(key) is not str \
                or not _ints((numel,)):
            raise LoadError(f"jnn.load: {self.where} has malformed storage id {brief(pid)}")
        storage = self._storage(key, stype.dtype, numel)
        view = pid[5] if self.legacy else None
        if view is None:
            return storage
        if not (type(view) is tuple and len(view) == 3 and type(view[0]) is str and _ints(view[1:])):
            raise LoadError(f"jnn.load: {self.where} has malformed storage view {brief(view)}")
        found = self._storage(view[0], stype.dtype, view[2])
        found.root, found.offset = storage, view[1] * stype.dtype.itemsize
        return found

    def _storage(self, key: str, dtype: np.dtype, numel: int) -> Storage:
        storage = self.storages.setdefault(key, Storage(key, dtype, numel * dtype.itemsize))
        if storage.dtype != dtype or storage.nbytes != numel * dtype.itemsize:
            raise LoadError(f"jnn.load: {self.where} uses storage {brief(key)} as {numel} x {dtype} and as "
                            f"{storage!r}")
        return storage


def unpickle(read_at: Callable[[int, int], bytes], where: str, storages: dict[str, Storage],
             legacy: bool) -> tuple[Any, int]:
    """Check, then unpickle, the pickle that ``read_at(offset, n)`` reads; returns the object and its length."""
    try:
        end = _check_opcodes(_Reader(read_at), where)
        obj = _Unpickler(read_at(0, end), where, storages, legacy).load()
    except LoadError:
        raise
    except Exception as e:  # any failure of a damaged pickle
        raise LoadError(f"jnn.load: {where} is not a readable checkpoint pickle: {type(e).__name__}: {e}") from e
    return obj, end


def _check_opcodes(reader: _Reader, where: str) -> int:
    """Walk the pickle's opcodes without running them; refuse what :func:`unpickle` refuses; return its length.

    Each object on the simulated stack is a one-item list holding its nesting depth: shared through the memo
    and ``DUP``, raised in place when ``APPEND``/``SETITEM``/``BUILD``... add a deeper object to it.
    """
    stack: list[list[int]] = []
    marks: list[int] = []
    memo: dict[int, list[int]] = {}
    jax = False
    for op, arg, pos in pickletools.genops(reader):
        name = op.name
        if name in _REFUSED_OPS:
            raise LoadError(f"jnn.load: {where} uses pickle opcode {name} at byte {pos}, which builds "
                            f"arbitrary objects; refused (nothing was executed)")
        if name == "GLOBAL":
            found = tuple(str(arg).split(" ", 1))
            jax = jax or found == _JAX_GLOBAL
            if found not in _ALLOWED or (found in _JAX_ONLY and not jax):
                raise LoadError(f"jnn.load: {where} refers to the global {brief(str(arg))[1:-1].replace(' ', '.')}"
                                f", which is refused (nothing was executed). {HINT}")
        if name == "STOP":
            return pos + 1
        depth = 0
        try:
            if name == "MARK":
                marks.append(len(stack))
            elif name == "POP":
                if marks and marks[-1] == len(stack):
                    marks.pop()
                else:
                    stack.pop()
            elif name == "POP_MARK":
                del stack[marks.pop():]
            elif name == "DUP":
                stack.append(stack[-1])
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[int(arg)])
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                index = len(memo) if name == "MEMOIZE" else int(arg)
                if not 0 <= index <= pos:
                    # CPython's unpickler grows (and zeroes) its memo table up to the index: gigabytes for 2**32
                    raise LoadError(f"jnn.load: {where} stores memo entry {index} at byte {pos}; a pickle this "
                                    f"long has fewer entries (refused: it would exhaust memory)")
                memo[index] = stack[-1]
            else:
                if name in _MARKED:
                    start = marks.pop()
                    popped, stack[start:] = stack[start:], []
                else:
                    n = len(op.stack_before) - (name in _IN_PLACE)  # an in-place op leaves its target
                    popped = stack[len(stack) - n:] if n else []
                    if len(popped) != n:
                        raise IndexError("stack underflow")
                    del stack[len(stack) - n:]
                depth = 1 + max((cell[0] for cell in popped), default=0)
                if name in _IN_PLACE:
                    target = stack[-1]
                    target[0] = depth = max(target[0], depth)
                else:
                    stack.extend([depth] for _ in op.stack_after)
        except (IndexError, KeyError) as e:
            raise LoadError(f"jnn.load: {where} is not a well-formed pickle: opcode {name} at byte {pos} finds "
                            f"{'no mark' if isinstance(e, IndexError) else 'no memo entry'} ({e})") from None
        if depth > MAX_DEPTH:
            raise LoadError(f"jnn.load: {where} nests objects more than {MAX_DEPTH} levels deep (at byte {pos}); "
                            f"refused (a checkpoint nests a few levels)")
    raise LoadError(f"jnn.load: {where} ends without a STOP opcode (truncated?)")


class _Reader:
    """The file-like interface ``pickletools.genops`` needs, over ``read_at(offset, n)``."""

    def __init__(self, read_at: Callable[[int, int], bytes]) -> None:
        self.read_at, self.pos = read_at, 0

    def read(self, n: int = -1) -> bytes:
        out = self.read_at(self.pos, (1 << 62) if n is None or n < 0 else n)
        self.pos += len(out)
        return out

    def readline(self) -> bytes:
        chunk = self.read_at(self.pos, 65536)  # longer lines are no pickle's
        cut = chunk.find(b"\n")
        chunk = chunk if cut < 0 else chunk[:cut + 1]
        self.pos += len(chunk)
        return chunk

    def tell(self) -> int:
        return self.pos


# --- stand-ins to numpy arrays ------------------------------------------------------------------------------


def to_arrays(obj: Any, read_storage: Callable[[Storage], np.ndarray], little: bool, file_size: int) -> Any:
    """``obj`` with every tensor stand-in replaced by a numpy array. ``read_storage(storage)`` reads a storage's
    bytes from the file into a new uint8 array; a tensor that is its storage's only user, whole and contiguous,
    becomes that array, others are copied out of it."""
    memo: dict[int, Any] = {}
    budget = [memory_bound(file_size)]
    cache: dict[str, np.ndarray] = {}  # storages read and still needed by tensors to come
    handed: set[str] = set()  # storages whose bytes became an array

    def array(t: _Tensor) -> np.ndarray:
        size, storage = t.dtype.itemsize, t.storage
        if not fits_numpy(t.shape, t.dtype):
            raise LoadError(f"jnn.load: {t!r} is beyond what numpy can index")
        if 0 in t.shape:
            return np.zeros(t.shape, t.dtype)
        last = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.strides, strict=True))
        if (last + 1) * size > storage.nbytes:
            raise LoadError(f"jnn.load: {t!r} with strides {t.strides} from element {t.offset} reaches past the "
                            f"end of its storage")
        budget[0] -= math.prod(t.shape) * size
        if budget[0] < 0:
            raise LoadError(f"jnn.load: {t!r} with strides {t.strides} takes the checkpoint's arrays past 8x the "
                            f"file's size; refused (overlapping views would exhaust memory)")
        whole = t.offset == 0 and math.prod(t.shape) * size == storage.nbytes and _c_contiguous(t)
        storage.users -= 1
        changes = little != (sys.byteorder == "little") or t.neg or t.conj  # done in place on the array
        if whole and storage.key not in handed and (not changes or (storage.users == 0 and storage.key not in cache)):
            # the storage's bytes become this array: the one copy is the read (others copy from it meanwhile)
            handed.add(storage.key)
            raw = cache.pop(storage.key) if storage.users == 0 and storage.key in cache else \
                cache.get(storage.key)
            if raw is None:
                raw = read_storage(storage)
                if storage.users > 0:
                    cache[storage.key] = raw
            out = from_bytes(raw, t.dtype, little).reshape(t.shape)
        else:
            if storage.key not in cache:
                cache[storage.key] = read_storage(storage)
            segment = cache[storage.key][t.offset * size:(last + 1) * size]
            if storage.users == 0:
                del cache[storage.key]
            if little != (sys.byteorder == "little"):  # swap a copy: the cached storage serves other tensors
                segment = from_bytes(segment.copy(), t.dtype, little).view(np.uint8)
            bits = segment.view(f"u{size}" if size <= 8 else f"V{size}")  # as_strided cannot take float8 dtypes
            view = np.lib.stride_tricks.as_strided(bits, t.shape, [s * size for s in t.strides], writeable=False)
            out = np.array(view, order="C").view(t.dtype)  # the one copy: C-contiguous, owned, writeable
        if t.neg:
            np.negative(out, out=out)
        if t.conj:
            np.conjugate(out, out=out)
        return out

    def convert(x: Any) -> Any:
        if id(x) in memo:
            return memo[id(x)]
        if isinstance(x, _Tensor):
            out = array(x)
        elif isinstance(x, Storage):
            out = array(_Tensor(x, 0, (x.nbytes // x.dtype.itemsize,), (1,)))
        elif isinstance(x, _Raw):
            budget[0] -= len(x.data)
            if budget[0] < 0:
                raise LoadError(f"jnn.load: {x!r} takes the checkpoint's arrays past 8x the file's size")
            out = np.frombuffer(x.data, x.dtype).reshape(x.shape, order="F" if x.fortran else "C")
            out = np.array(out.astype(x.dtype.newbyteorder("="), copy=False), order="C")
        elif isinstance(x, (_Named, _DType)):
            if x.dtype is None or isinstance(x, _Named) and x.name.endswith("Storage"):
                raise LoadError(f"jnn.load: checkpoint holds the type {x!r} itself; only tensors are loaded")
            out = x.dtype.newbyteorder("=")
        elif isinstance(x, _Inert):
            raise LoadError(f"jnn.load: checkpoint holds {x!r} itself; only tensors and arrays are loaded")
        elif type(x) in (dict, OrderedDict):
            # dict.items, not x.items: a pickle's BUILD may have set an attribute named "items" on an OrderedDict
            out = memo[id(x)] = type(x)()
            out.update((plain(k), convert(v)) for k, v in dict.items(x))
        elif type(x) is list:
            out = memo[id(x)] = []
            out.extend(convert(v) for v in x)
        elif type(x) is tuple:
            out = tuple(convert(v) for v in x)
        else:
            out = plain(x)  # str, bytes, numbers, None, sets
        memo[id(x)] = out
        return out

    def plain(x: Any) -> Any:  # dict keys and set elements stay as they are; a tensor cannot be one
        if isinstance(x, _Inert):
            raise LoadError(f"jnn.load: checkpoint uses {x!r} as a dict key or set element; refused")
        if type(x) in (tuple, set, frozenset):
            for v in x:
                plain(v)
        return x

    try:
        out = convert(obj)
    except RecursionError:
        raise LoadError("jnn.load: checkpoint object nests too deeply") from None
    return OrderedDict(dict.items(out)) if type(out) is dict else out


def _c_contiguous(t: _Tensor) -> bool:
    expected = 1
    for n, s in zip(reversed(t.shape), reversed(t.strides), strict=True):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True
