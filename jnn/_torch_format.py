"""Read PyTorch ``torch.save`` files with numpy alone: torch is never imported and no code from the file runs.

Two layouts exist (see ``torch/serialization.py``):

- **zip** (PyTorch >= 1.6, ``.pt``/``.pth``): ``<archive>/data.pkl`` pickles the saved object; each tensor in it
  refers, through a pickle *persistent id* ``("storage", <storage type>, key, location, numel)``, to the raw
  bytes of a storage kept uncompressed in ``<archive>/data/<key>``, in the byte order named by
  ``<archive>/byteorder`` (little when the record is absent).
- **legacy** (``_use_new_zipfile_serialization=False``): five pickles in a row -- magic number, protocol
  version, system info, the object, the list of storage keys -- then, for each key in that order, an int64
  element count and the storage's little-endian bytes. Storages may be views ``(key, offset, numel)`` of others.

Pickles are read by :class:`_Unpickler`, a ``pickle.Unpickler`` whose ``find_class`` never imports anything: it
hands out inert stand-ins for the handful of globals a tensor checkpoint names (``torch._utils._rebuild_tensor_v2``
and the other rebuild functions for plain tensors and parameters, storage types, dtypes, ``collections.OrderedDict``,
``torch.Size``) and refuses every other global by name -- what ``torch.load(weights_only=True)`` promises. Before
that, ``pickletools`` walks the opcodes without executing them, refusing those that build arbitrary objects
(``INST``, ``OBJ``, ``EXT*``, ``NEWOBJ_EX``, out-of-band buffers) and memo indices beyond the pickle's length
(CPython's unpickler would allocate and zero a table that large). Tensors come out of unpickling as descriptions
(storage, offset, shape, strides); they become numpy arrays only after every storage is checked against the
file: the zip member exists, is stored uncompressed with a matching CRC and exactly the bytes the storage
needs, and each tensor's strided extent lies inside its storage. Each array is then copied once out of the
memory-mapped file (numpy stride tricks on the storage, then a copy).
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import zipfile
import zlib
from collections import OrderedDict
from typing import Any

import ml_dtypes
import numpy as np

from jnn.serialization import LoadError, _brief, _fits_numpy, _from_bytes

_MAGIC, _PROTOCOL = 0x1950A86A20F9469CFC6C, 1001  # the legacy format's header pickles
_SLACK = 1 << 26  # tensors may expand their storages (stride-0 views) by this much beyond 8x the file's size
_HINT = ("jnn.load reads tensors, storages, OrderedDicts and plain containers, and runs nothing from a file; "
         "for a whole pickled model (torch.save(model)), save model.state_dict() instead")

_DTYPES = {name: np.dtype(dt) for name, dt in {
    "float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
    "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8,
    "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "bool": np.bool_, "complex64": np.complex64,
    "complex128": np.complex128, "float8_e5m2": ml_dtypes.float8_e5m2, "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz, "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "float8_e8m0fnu": ml_dtypes.float8_e8m0fnu}.items()}
_STORAGES = {"DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
             "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
             "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool", "UntypedStorage": "uint8",
             "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128"}
_REFUSED_OPS = {"INST", "OBJ", "EXT1", "EXT2", "EXT4", "NEWOBJ_EX", "PERSID", "BYTEARRAY8", "NEXT_BUFFER",
                "READONLY_BUFFER"}


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

    def __repr__(self) -> str:
        return self.name


class _Storage(_Inert):
    """A storage: ``nbytes`` bytes of ``dtype`` elements, in zip member ``data/<key>`` (or at ``offset`` bytes
    into storage ``root``, for a legacy view)."""

    __slots__ = ("key", "dtype", "nbytes", "root", "offset")

    def __init__(self, key: str, dtype: np.dtype, nbytes: int, root: _Storage | None = None, offset: int = 0):
        self.key, self.dtype, self.nbytes, self.root, self.offset = key, dtype, nbytes, root, offset

    def __repr__(self) -> str:
        return f"storage {_brief(self.key)} ({self.nbytes // self.dtype.itemsize} x {self.dtype})"


class _Tensor(_Inert):
    """A tensor: ``shape``/``strides`` (in elements) over ``storage`` from element ``offset``."""

    __slots__ = ("storage", "dtype", "offset", "shape", "strides", "neg", "conj")

    def __init__(self, storage: Any, offset: Any, shape: Any, strides: Any, dtype: Any = None,
                 metadata: Any = None) -> None:
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError(f"tensor built on {type(storage).__name__}, not on a storage")
        if dtype is not None and not (isinstance(dtype, _Named) and dtype.dtype is not None):
            raise pickle.UnpicklingError(f"tensor dtype must be a torch dtype, got {_brief(dtype)}")
        self.dtype = storage.dtype if dtype is None else dtype.dtype
        if self.dtype != storage.dtype and storage.dtype != np.uint8:
            raise pickle.UnpicklingError(f"{self.dtype} tensor on {storage!r}")
        if not (_ints(shape) and _ints(strides) and len(shape) == len(strides) <= 64 and _ints((offset,))):
            raise pickle.UnpicklingError(f"tensor geometry must be non-negative ints (at most 64 dims): offset "
                                         f"{_brief(offset)}, size {_brief(shape)}, stride {_brief(strides)}")
        if metadata is not None and not (isinstance(metadata, dict) and set(metadata) <= {"neg", "conj"}):
            raise pickle.UnpicklingError(f"unknown tensor metadata {_brief(metadata)}")
        self.storage, self.offset, self.shape, self.strides = storage, offset, tuple(shape), tuple(strides)
        self.neg, self.conj = bool((metadata or {}).get("neg")), bool((metadata or {}).get("conj"))

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
        raise pickle.UnpicklingError(f"_rebuild_from_type_v2 of {_brief(new_type)} by {_brief(func)}: only plain "
                                     f"tensors and parameters are rebuilt")
    return func(*args)


def _latin1(text: Any, encoding: Any = "latin1") -> bytes:  # how protocol 2 pickles bytes: _codecs.encode
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode({_brief(text)}, {_brief(encoding)}) refused")
    return text.encode("latin1")


_REBUILDERS = {f.__name__: _Call(f) for f in (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3,
                                               _rebuild_parameter)}
_REBUILDERS["_rebuild_parameter_with_state"] = _REBUILDERS["_rebuild_parameter"]
_TENSOR_TYPES = {"torch.Tensor", "torch.nn.parameter.Parameter"}
# (module, name) -> what the file gets: builtin types (immutable) or inert stand-ins, never a module's function.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict, ("torch", "Size"): tuple, ("_codecs", "encode"): _Call(_latin1),
    **{(mod, name): obj for mod in ("builtins", "__builtin__")
       for name, obj in (("set", set), ("frozenset", frozenset), ("complex", complex))},
    **{("torch._utils", name): call for name, call in _REBUILDERS.items()},
    ("torch._tensor", "_rebuild_from_type_v2"): _Call(_rebuild_from_type_v2),
    ("torch.tensor", "_rebuild_from_type_v2"): _Call(_rebuild_from_type_v2),
    **{tuple(t.rsplit(".", 1)): _Named(t) for t in _TENSOR_TYPES},
    **{("torch", name): _Named(f"torch.{name}", dt) for name, dt in _DTYPES.items()},
    **{(mod, name): _Named(f"{mod}.{name}", _DTYPES[dt]) for name, dt in _STORAGES.items()
       for mod in ("torch", "torch.cuda", "torch.storage")},
}


class _Unpickler(pickle.Unpickler):
    """Unpickles one checkpoint pickle into stand-ins; refuses every global but those in ``_ALLOWED``."""

    def __init__(self, data: bytes, where: str, storages: dict[str, _Storage], legacy: bool) -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self.where, self.storages, self.legacy = where, storages, legacy

    def find_class(self, module: str, name: str) -> Any:
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise LoadError(f"jnn.load: {self.where} refers to the global {_brief(module)[1:-1]}."
                            f"{_brief(name)[1:-1]}, which is refused (nothing was executed). {_HINT}")
        return obj

    def persistent_load(self, pid: Any) -> _Storage:
        kind = pid[0] if type(pid) is tuple and pid else None
        kind = kind.decode("ascii", "replace") if isinstance(kind, bytes) else kind
        if kind == "module":
            raise LoadError(f"jnn.load: {self.where} holds a pickled nn.Module class ({_brief(pid[1])}). {_HINT}")
        if kind != "storage" or len(pid) != (6 if self.legacy else 5):
            raise LoadError(f"jnn.load: {self.where} has persistent id {_brief(pid)}; expected ('storage', type, "
                            f"key, location, numel{', view' if self.legacy else ''})")
        stype, key, _, numel = pid[1:5]
        if not (isinstance(stype, _Named) and stype.name.endswith("Storage")) or type(key) is not str \
                or not _ints((numel,)):
            raise LoadError(f"jnn.load: {self.where} has malformed storage id {_brief(pid)}")
        storage = self._storage(key, stype.dtype, numel)
        view = pid[5] if self.legacy else None
        if view is None:
            return storage
        if not (type(view) is tuple and len(view) == 3 and type(view[0]) is str and _ints(view[1:])):
            raise LoadError(f"jnn.load: {self.where} has malformed storage view {_brief(view)}")
        found = self._storage(view[0], stype.dtype, view[2])
        found.root, found.offset = storage, view[1] * stype.dtype.itemsize
        return found

    def _storage(self, key: str, dtype: np.dtype, numel: int) -> _Storage:
        storage = self.storages.setdefault(key, _Storage(key, dtype, numel * dtype.itemsize))
        if storage.dtype != dtype or storage.nbytes != numel * dtype.itemsize:
            raise LoadError(f"jnn.load: {self.where} uses storage {_brief(key)} as {numel} x {dtype} and as "
                            f"{storage!r}")
        return storage


def _unpickle(raw: np.ndarray, where: str, storages: dict[str, _Storage], legacy: bool) -> tuple[Any, int]:
    """Check, then unpickle, the pickle at the start of ``raw``; returns the object and the pickle's length."""
    reader = _Reader(raw)
    try:
        for op, arg, pos in pickletools.genops(reader):
            if op.name in _REFUSED_OPS:
                raise LoadError(f"jnn.load: {where} uses pickle opcode {op.name} at byte {pos}, which builds "
                                f"arbitrary objects; refused (nothing was executed)")
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and not 0 <= int(arg) <= pos:
                # CPython's unpickler grows (and zeroes) its memo table up to the index: gigabytes for 2**32
                raise LoadError(f"jnn.load: {where} stores memo entry {arg} at byte {pos}; a pickle this long "
                                f"has fewer entries (refused: it would exhaust memory)")
            if op.name == "GLOBAL" and tuple(str(arg).split(" ", 1)) not in _ALLOWED:
                raise LoadError(f"jnn.load: {where} refers to the global {_brief(str(arg))[1:-1].replace(' ', '.')}"
                                f", which is refused (nothing was executed). {_HINT}")
            if op.name == "STOP":
                end = pos + 1
                break
        else:
            raise ValueError("no STOP opcode")
        obj = _Unpickler(raw[:end].tobytes(), where, storages, legacy).load()
    except LoadError:
        raise
    except Exception as e:  # any failure of a damaged pickle
        raise LoadError(f"jnn.load: {where} is not a readable checkpoint pickle: {type(e).__name__}: {e}") from e
    return obj, end


class _Reader:
    """The file-like interface ``pickletools.genops`` needs, over a uint8 array, without copying it."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw, self.pos = raw, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.raw) if n is None or n < 0 else min(len(self.raw), self.pos + n)
        out, self.pos = self.raw[self.pos:end].tobytes(), end
        return out

    def readline(self) -> bytes:
        chunk = self.raw[self.pos:self.pos + 65536].tobytes()  # longer lines are no pickle's
        cut = chunk.find(b"\n")
        chunk = chunk if cut < 0 else chunk[:cut + 1]
        self.pos += len(chunk)
        return chunk

    def tell(self) -> int:
        return self.pos


def read_torch_zip(zf: zipfile.ZipFile, raw: np.ndarray) -> Any:
    """A ``torch.save`` zip archive (opened as ``zf``; ``raw`` is the whole file) with numpy arrays for tensors."""
    names = zf.namelist()
    pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise LoadError("jnn.load: this is a TorchScript archive (torch.jit.save); it holds code, not just "
                        "weights. Save the model's state_dict() with torch.save instead")
    if len(pickles) != 1:
        raise LoadError(f"jnn.load: a PyTorch zip checkpoint has exactly one '<archive>/data.pkl' member, this one "
                        f"has {pickles[:4]}")
    prefix = pickles[0][:-len("data.pkl")]

    def member(name: str, size: int | None = None) -> np.ndarray:
        try:
            info = zf.getinfo(prefix + name)
        except KeyError:
            raise LoadError(f"jnn.load: checkpoint has no member {prefix + name!r}") from None
        return _stored(raw, info, size)

    order = b"little"
    if prefix + "byteorder" in names:
        order = member("byteorder").tobytes()
        if order not in (b"little", b"big"):
            raise LoadError(f"jnn.load: {prefix}byteorder record is {order[:20]!r}; expected b'little' or b'big'")
    storages: dict[str, _Storage] = {}
    obj, _ = _unpickle(member("data.pkl"), f"{prefix}data.pkl", storages, legacy=False)
    data = {key: member(f"data/{key}", s.nbytes) for key, s in storages.items()}
    return _arrays(obj, data, order == b"little", len(raw))


def _stored(raw: np.ndarray, info: zipfile.ZipInfo, size: int | None) -> np.ndarray:
    """A zip member's bytes as a view of ``raw``, after checking its local header, size and CRC."""
    name, start = info.filename, info.header_offset
    if info.compress_type != zipfile.ZIP_STORED:
        raise LoadError(f"jnn.load: checkpoint member {name!r} is compressed (method {info.compress_type}); "
                        f"torch.save stores members uncompressed")
    local = raw[start:start + 30].tobytes()
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise LoadError(f"jnn.load: checkpoint member {name!r}: no local zip header at byte {start}")
    name_len = int.from_bytes(local[26:28], "little")
    begin = start + 30 + name_len + int.from_bytes(local[28:30], "little")
    local_name = raw[start + 30:start + 30 + name_len].tobytes()
    if local_name.decode("utf-8" if local[7] & 0x08 else "cp437", "replace") \
            != info.orig_filename:
        raise LoadError(f"jnn.load: checkpoint member {name!r}: its local header names {local_name[:80]!r}")
    if size is not None and info.file_size != size:
        raise LoadError(f"jnn.load: checkpoint member {name!r} holds {info.file_size} bytes; its storage "
                        f"needs {size}")
    if info.compress_size != info.file_size or begin + info.file_size > len(raw):
        raise LoadError(f"jnn.load: checkpoint member {name!r} claims {info.file_size} bytes at byte {begin}, "
                        f"past the end of the {len(raw)}-byte file (truncated?)")
    data = raw[begin:begin + info.file_size]
    if info.CRC and zlib.crc32(data) != info.CRC:  # torch writes CRC 0 when compute_crc32 is off
        raise LoadError(f"jnn.load: checkpoint member {name!r} fails its CRC check (corrupt file)")
    return data


def read_torch_legacy(raw: np.ndarray) -> Any:
    """A legacy (non-zip) ``torch.save`` file with numpy arrays for tensors."""
    pos, parts = 0, []
    storages: dict[str, _Storage] = {}
    for what, expected in (("magic number", _MAGIC), ("protocol version", _PROTOCOL), ("system info", None),
                           ("saved object", None), ("storage key list", None)):
        obj, size = _unpickle(raw[pos:], f"legacy checkpoint's {what} pickle (at byte {pos})", storages, True)
        if expected is not None and (type(obj) is not int or obj != expected):
            raise LoadError(f"jnn.load: a pickle that is not a PyTorch checkpoint: its {what} is {_brief(obj)}; "
                            f"expected {expected}")
        parts.append(obj)
        pos += size
    obj, keys = parts[3:]
    roots = {s.key for s in storages.values() if s.root is None}
    if not (type(keys) is list and all(type(k) is str for k in keys) and set(keys) == roots
            and len(keys) == len(roots)):
        raise LoadError(f"jnn.load: legacy checkpoint's storage key list {_brief(keys)} does not match the "
                        f"storages its tensors use ({_brief(sorted(roots)[:8])})")
    data = {}
    for key in keys:
        storage = storages[key]
        count = int.from_bytes(raw[pos:pos + 8].tobytes(), "little", signed=True)
        if count * storage.dtype.itemsize != storage.nbytes or pos + 8 + storage.nbytes > len(raw):
            raise LoadError(f"jnn.load: legacy checkpoint storage {_brief(key)} at byte {pos}: record of {count} "
                            f"elements for a {storage!r}, {len(raw) - pos - 8} bytes left in the file")
        data[key] = raw[pos + 8:pos + 8 + storage.nbytes]
        pos += 8 + storage.nbytes
    for storage in storages.values():
        if storage.root is not None:
            end = storage.offset + storage.nbytes
            if storage.root.root is not None or end > storage.root.nbytes:
                raise LoadError(f"jnn.load: legacy storage view {storage!r} lies outside {storage.root!r}")
            data[storage.key] = data[storage.root.key][storage.offset:end]
    return _arrays(obj, data, True, len(raw))


def _arrays(obj: Any, data: dict[str, np.ndarray], little: bool, file_size: int) -> Any:
    """``obj`` with every tensor stand-in replaced by a numpy array (one copy out of its storage's bytes)."""
    memo: dict[int, Any] = {}
    budget = [8 * file_size + _SLACK]

    def array(t: _Tensor) -> np.ndarray:
        size, raw = t.dtype.itemsize, data[t.storage.key]
        if not _fits_numpy(t.shape, t.dtype):
            raise LoadError(f"jnn.load: {t!r} is beyond what numpy can index")
        if 0 in t.shape:
            return np.zeros(t.shape, t.dtype)
        last = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.strides, strict=True))
        if (last + 1) * size > t.storage.nbytes:
            raise LoadError(f"jnn.load: {t!r} with strides {t.strides} from element {t.offset} reaches past the "
                            f"end of its storage")
        budget[0] -= math.prod(t.shape) * size
        if budget[0] < 0:
            raise LoadError(f"jnn.load: {t!r} with strides {t.strides} takes the checkpoint's arrays past 8x the "
                            f"file's size; refused (overlapping views would exhaust memory)")
        elements = _from_bytes(raw[t.offset * size:(last + 1) * size], t.dtype, little)
        bits = elements.view(f"u{size}" if size <= 8 else f"V{size}")  # as_strided cannot take float8 dtypes
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
        elif isinstance(x, _Storage):
            out = array(_Tensor(x, 0, (x.nbytes // x.dtype.itemsize,), (1,)))
        elif isinstance(x, _Named):
            if x.dtype is None or x.name.endswith("Storage"):
                raise LoadError(f"jnn.load: checkpoint holds the type {x!r} itself; only tensors are loaded")
            out = x.dtype
        elif type(x) in (dict, OrderedDict):
            out = memo[id(x)] = type(x)()
            out.update((plain(k), convert(v)) for k, v in x.items())
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
    return OrderedDict(out) if type(out) is dict else out
