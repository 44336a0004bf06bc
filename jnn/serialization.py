"""State dicts on disk: :func:`save` and :func:`load`, jnn's ``torch.save``/``torch.load`` for state dicts.

:func:`load` recognises the format from the content, never from the file name, and trusts nothing in the file:

- **npz** (jnn's own format, also ``numpy.savez``): a zip of ``.npy`` members, one ``<key>.npy`` per key, in key
  order. Dtypes numpy cannot store portably (ml_dtypes' ``bfloat16``, ``float8_*``, ``int4``, ...) are written
  as their raw bits (an unsigned integer array of the same width) and named in a metadata member,
  ``.jnn_meta.npy`` (the first member): UTF-8 JSON stored as a 1-d uint8 array,
  ``{"format": "jnn.npz", "version": 1, "dtypes": {key: dtype name}}``. Torch-style keys never start with ``"."``,
  and :func:`save` refuses that one name. Object (pickled) arrays are refused.
- **safetensors**: an 8-byte little-endian header size, a JSON header ``{key: {"dtype", "shape",
  "data_offsets"}}`` and the raw little-endian data. The header is checked against the file before anything is
  allocated: offsets must tile the data section exactly, each tensor's bytes must match its shape and dtype.
- **PyTorch** ``torch.save`` files, zip (``.pt``/``.pth``) and legacy: read without importing torch and without
  running code from the file (see :mod:`jnn._torch_format`).

:func:`save` writes npz, or safetensors when the path ends in ``.safetensors`` (``format=`` overrides).
Writes to a path are atomic: the data goes to a temporary file in the same folder, is flushed and fsynced,
and only then replaces the target, so a crash never leaves a half-written file in place of a good one.

Memory: files given by path are memory-mapped; each array read is copied once out of the map (or, for npz,
streamed into its array), so loading holds about one copy of the weights.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import mmap
import os
import reprlib
import secrets
import stat
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import IO, Any, Union

import ml_dtypes
import numpy as np

__all__ = ["save", "load", "LoadError"]

META_KEY = ".jnn_meta"  # reserved member name (``.jnn_meta.npy``) holding the JSON metadata
_FORMAT, _VERSION = "jnn.npz", 1
# ml_dtypes' extension dtypes, stored as raw bits and restored from the metadata.
_EXT = {n: np.dtype(getattr(ml_dtypes, n)) for n in (
    "bfloat16", "float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz", "float8_e4m3fn", "float8_e4m3fnuz",
    "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn",
    "int1", "int2", "int4", "uint1", "uint2", "uint4") if hasattr(ml_dtypes, n)}
_EXT_NAME = {dt: n for n, dt in _EXT.items()}
# safetensors dtype codes that map onto a numpy (or ml_dtypes) dtype; packed 4/6-bit codes are not read.
_ST_DTYPES = {code: np.dtype(dt) for code, dt in {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16, "F16": np.float16,
    "BF16": ml_dtypes.bfloat16, "U32": np.uint32, "I32": np.int32, "F32": np.float32, "U64": np.uint64,
    "I64": np.int64, "F64": np.float64, "C64": np.complex64, "F8_E5M2": ml_dtypes.float8_e5m2,
    "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E8M0": ml_dtypes.float8_e8m0fnu}.items()}
_ST_CODE = {dt.name: code for code, dt in _ST_DTYPES.items()}
_ST_MAX_HEADER = 100_000_000  # the safetensors library's own limit
_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand data more than this
_TORCH_RECORDS = ("/data.pkl", "/constants.pkl", "/byteorder", "/.format_version", "/version")  # '<archive>/...'

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


class LoadError(ValueError):
    """A file given to :func:`load` holds content jnn refuses: unknown format, corrupt, or unsafe (pickle)."""


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60


def _brief(value: Any) -> str:
    """A short repr of something read from an untrusted file, for error messages; never raises."""
    try:
        return _REPR.repr(value)
    except Exception:  # e.g. an int past Python's digit limit
        return f"<{type(value).__name__}>"


def save(obj: Mapping[str, Any], f: PathLike | IO[bytes], *, compress: bool = False,
         format: str | None = None) -> None:
    """Write a mapping of ``str`` keys to arrays (e.g. ``net.state_dict()``) to ``f`` as ``.npz`` or safetensors.

    ``f`` is a path (written atomically) or a writable binary file object. The format is safetensors when
    ``format="safetensors"`` or the path ends in ``.safetensors``, else npz. Values may be jax or numpy arrays
    or scalars of bool, integer, float (float16, bfloat16, float8, ...) or complex dtype; key order and dtypes
    are kept exactly (safetensors has no complex128 or 4-bit types). ``compress=True`` deflates npz members.

    >>> import io, numpy as np
    >>> buf = io.BytesIO()
    >>> save({"fc.weight": np.eye(2, dtype=np.float32), "fc.bias": np.zeros(2, np.float32)}, buf)
    >>> list(load(io.BytesIO(buf.getvalue())))
    ['fc.weight', 'fc.bias']
    """
    from jnn import distributed  # arrays sharded over several processes: gathered, process 0 writes, all wait
    if distributed.spans_processes(obj):
        return distributed.write_once(obj, lambda host: save(host, f, compress=compress, format=format))
    items = _check(obj)
    is_path = isinstance(f, (str, bytes, os.PathLike))
    if format is None:
        format = "safetensors" if is_path and os.fsdecode(os.fspath(f)).lower().endswith(".safetensors") else "npz"
    if format == "npz":
        write: Callable[[IO[bytes]], None] = lambda fh: _write_npz(fh, items, compress)  # noqa: E731
    elif format == "safetensors":
        if compress:
            raise ValueError("jnn.save: compress=True applies to npz only; safetensors files are never compressed")
        items = _check_safetensors(items)
        write = lambda fh: _write_safetensors(fh, items)  # noqa: E731
    else:
        raise ValueError(f"jnn.save: format must be 'npz' or 'safetensors', got {format!r}")
    if not is_path:
        if not callable(getattr(f, "write", None)):
            raise TypeError(f"jnn.save: f must be a path or a writable binary file, got {type(f).__name__}")
        write(f)
        return
    path = os.fsdecode(os.fspath(f))
    folder, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    # O_EXCL never clobbers another file; mode 0o666 lets the umask apply as for a plain open(path, "wb").
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with open(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX; not possible on Windows)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _check(obj: Any) -> list[tuple[str, np.ndarray]]:
    if not isinstance(obj, Mapping):
        raise TypeError(f"jnn.save expects a mapping of str keys to arrays (e.g. a state_dict()), "
                        f"got {type(obj).__name__}")
    items = []
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"jnn.save: keys must be str, got {type(key).__name__} key {key!r}")
        if key == META_KEY:
            raise ValueError(f"jnn.save: key {key!r} is reserved for jnn's metadata")
        if "\x00" in key or not _encodable(key):
            raise ValueError(f"jnn.save: key {key!r} cannot be stored as a zip member name")
        try:
            arr = np.asarray(value)
        except Exception as e:
            raise TypeError(f"jnn.save: value of key {key!r} ({type(value).__name__}) is not an array") from e
        if arr.dtype not in _EXT_NAME and arr.dtype.kind not in "biufc":
            raise TypeError(f"jnn.save: key {key!r} has dtype {arr.dtype}; only bool, integer, float and "
                            f"complex arrays are saved (jnn never pickles)")
        items.append((key, arr))
    return items


def _encodable(key: str) -> bool:
    try:
        key.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _write_npz(fh: IO[bytes], items: list[tuple[str, np.ndarray]], compress: bool) -> None:
    meta = {"format": _FORMAT, "version": _VERSION,
            "dtypes": {k: _EXT_NAME[a.dtype] for k, a in items if a.dtype in _EXT_NAME}}
    members = [(META_KEY, np.frombuffer(json.dumps(meta).encode(), np.uint8)), *items]
    with zipfile.ZipFile(fh, "w", allowZip64=True) as zf:
        for key, arr in members:
            if arr.dtype in _EXT_NAME:
                arr = arr.view(f"u{arr.dtype.itemsize}")
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))  # same data, same bytes
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=arr.nbytes > 1 << 30) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def _check_safetensors(items: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    for key, arr in items:
        if key == "__metadata__":
            raise ValueError("jnn.save: key '__metadata__' is reserved in safetensors files")
        if arr.dtype.name not in _ST_CODE:
            raise TypeError(f"jnn.save: key {key!r} has dtype {arr.dtype}, which safetensors cannot store "
                            f"(it stores {', '.join(sorted(_ST_CODE))}); save to .npz instead")
    return items


def _write_safetensors(fh: IO[bytes], items: list[tuple[str, np.ndarray]]) -> None:
    # Header keys keep the caller's order (jnn.load returns them in header order); the data is laid out by
    # descending item size, as the safetensors library does, so every tensor starts aligned to its item size.
    layout = sorted(range(len(items)), key=lambda i: -items[i][1].dtype.itemsize)
    spans, pos = {}, 0
    for i in layout:
        spans[i] = (pos, pos + items[i][1].nbytes)
        pos += items[i][1].nbytes
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}  # torch layouts; what transformers expects
    for i, (key, arr) in enumerate(items):
        header[key] = {"dtype": _ST_CODE[arr.dtype.name], "shape": list(arr.shape), "data_offsets": list(spans[i])}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
    fh.write(len(text).to_bytes(8, "little"))
    fh.write(text)
    for i in layout:
        fh.write(_little_endian_bytes(items[i][1]).data)


def _swap_unit(dtype: np.dtype) -> int:
    return dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize


def _little_endian_bytes(arr: np.ndarray) -> np.ndarray:
    """``arr``'s elements in C order as little-endian bytes (a 1-d uint8 array, a view where possible)."""
    arr = np.ascontiguousarray(arr).reshape(-1)
    unit, order = _swap_unit(arr.dtype), arr.dtype.byteorder
    if unit > 1 and (order == ">" or (order == "=" and sys.byteorder == "big")):
        arr = arr.view(f">u{unit}").astype(f"<u{unit}")
    return arr.view(np.uint8)


def _from_bytes(raw: np.ndarray, dtype: np.dtype, little: bool = True) -> np.ndarray:
    """A 1-d uint8 array holding ``dtype`` elements in the given byte order, as native ``dtype`` elements.

    A view of ``raw`` when no byte swap is needed, else a swapped copy. ``len(raw)`` must be a multiple of the
    item size.
    """
    unit = _swap_unit(dtype)
    if unit <= 1 or little == (sys.byteorder == "little"):
        return raw.view(dtype)
    return raw.view(f"u{unit}").byteswap().view(dtype)


def load(f: PathLike | IO[bytes]) -> Any:
    """Read a state dict (or checkpoint) saved by jnn, numpy, safetensors or PyTorch, as numpy arrays.

    ``f`` is a path or a readable binary file object. The format is recognised from the content, not the file
    name: npz and safetensors files give an ``OrderedDict`` of arrays in file order; a PyTorch ``torch.save``
    file gives what was saved with each tensor as a numpy array -- an ``OrderedDict`` when that was a mapping
    (a ``state_dict``), nested dicts/lists/tuples otherwise. Dtypes are kept (bfloat16 and float8 as ml_dtypes
    arrays). Nothing in the file is executed; content jnn cannot or will not read (unknown format, corrupt,
    sizes the file cannot hold, pickled objects other than tensors and plain containers) raises
    :class:`LoadError`.

    >>> import io, numpy as np, ml_dtypes
    >>> buf = io.BytesIO()
    >>> save({"w": np.array([1.5, 3e38], ml_dtypes.bfloat16), "step": 3}, buf)
    >>> sd = load(io.BytesIO(buf.getvalue()))
    >>> sd["w"].dtype, sd["step"]
    (dtype(bfloat16), array(3))
    >>> buf = io.BytesIO()
    >>> save({"b": np.ones(2, ml_dtypes.bfloat16), "a": np.arange(3)}, buf, format="safetensors")
    >>> [(k, v.dtype.name, v.shape) for k, v in load(io.BytesIO(buf.getvalue())).items()]
    [('b', 'bfloat16', (2,)), ('a', 'int64', (3,))]
    """
    if isinstance(f, (str, bytes, os.PathLike)):
        with open(f, "rb") as fh:
            return _dispatch(fh)
    if not callable(getattr(f, "read", None)):
        raise TypeError(f"jnn.load: f must be a path or a readable binary file, got {type(f).__name__}")
    seekable = getattr(f, "seekable", None)
    return _dispatch(f if seekable is not None and seekable() else io.BytesIO(f.read()))


def _dispatch(fh: IO[bytes]) -> Any:
    """Sniff the format from the first bytes, then hand the file to that format's reader."""
    start = fh.tell()
    head = fh.read(264)
    fh.seek(start)
    for sniff, reader in _FORMATS:
        if sniff(head):
            return reader(fh, start)
    raise LoadError(f"jnn.load: unrecognised file format (starts with {head[:16]!r}); expected an .npz, a "
                    f"safetensors file or a PyTorch torch.save checkpoint")


def _whole_file(fh: IO[bytes], start: int) -> np.ndarray:
    """The file from ``start`` on as a read-only 1-d uint8 array: memory-mapped when it is a regular file (the
    map closes when the last array viewing it goes), a ``BytesIO``'s own bytes, else read once."""
    fileno = None
    if isinstance(fh, io.BytesIO):
        return np.frombuffer(fh.getvalue(), np.uint8)[start:]  # no copy: BytesIO hands out its own bytes
    with contextlib.suppress(AttributeError, OSError, io.UnsupportedOperation):
        fileno = fh.fileno()
    if fileno is not None and stat.S_ISREG(os.fstat(fileno).st_mode) and os.fstat(fileno).st_size > 0:
        return np.frombuffer(mmap.mmap(fileno, 0, access=mmap.ACCESS_READ), np.uint8)[start:]
    fh.seek(0)
    return np.frombuffer(fh.read(), np.uint8)[start:]


# --- npz and other zips -------------------------------------------------------------------------------------


def _read_zip(fh: IO[bytes], start: int) -> Any:
    try:
        zf = zipfile.ZipFile(fh)
    except Exception as e:
        raise LoadError(f"jnn.load: corrupt zip archive (its central directory): {type(e).__name__}: {e}") from e
    with zf:
        names, size = zf.namelist(), fh.seek(0, os.SEEK_END)
        claimed = sum(info.compress_size for info in zf.infolist())
        if claimed > size:  # members of a well-formed zip never share bytes
            raise LoadError(f"jnn.load: zip members claim {claimed} bytes in a {size}-byte file: overlapping or "
                            f"lying entries (a zip bomb?)")
        if any(n.count("/") == 1 and n.endswith(_TORCH_RECORDS) for n in names):
            from jnn._torch_format import read_torch_zip

            return read_torch_zip(zf, _whole_file(fh, 0))
        return _read_npz(zf)


def _read_npz(zf: zipfile.ZipFile) -> OrderedDict[str, np.ndarray]:
    arrays: OrderedDict[str, np.ndarray] = OrderedDict()
    what = "zip directory"
    try:
        for info in zf.infolist():
            name = what = info.filename
            if not name.endswith(".npy") or info.is_dir():
                raise LoadError(f"jnn.load: zip member {name!r} is not a .npy array; not an .npz (nor a PyTorch "
                                f"checkpoint, which has an '<archive>/data.pkl' member)")
            if name[:-4] in arrays:
                raise LoadError(f"jnn.load: duplicate zip member {name!r}")
            if info.compress_type != zipfile.ZIP_STORED and \
                    info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 64:
                raise LoadError(f"jnn.load: zip member {name!r} claims {info.file_size} bytes from "
                                f"{info.compress_size} compressed ones, more than deflate can expand them")
            with zf.open(info) as member:
                _check_npy_header(member, info)
                member.seek(0)
                arrays[name[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
                if member.read(1):
                    raise LoadError(f"jnn.load: trailing bytes after the array in {name!r}")
    except LoadError:
        raise
    except Exception as e:  # anything a damaged archive makes zipfile or numpy raise
        raise LoadError(f"jnn.load: corrupt or unsafe .npz ({what!r}): {type(e).__name__}: {e}") from e
    raw_meta = arrays.pop(META_KEY, None)
    return arrays if raw_meta is None else _apply_meta(arrays, raw_meta)


def _check_npy_header(member: IO[bytes], info: zipfile.ZipInfo) -> None:
    """Refuse a ``.npy`` member whose header declares more (or fewer) bytes than the member holds, before
    numpy allocates the array, and refuse object (pickled) arrays."""
    fmt = np.lib.format
    version = fmt.read_magic(member)
    if version not in ((1, 0), (2, 0)):
        raise LoadError(f"jnn.load: {info.filename!r} uses .npy format version {version}; 1.0 and 2.0 are read")
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read_header(member)
    if dtype.hasobject:
        raise LoadError(f"jnn.load: {info.filename!r} is an object array (pickled Python objects); refused")
    declared = math.prod(shape) * dtype.itemsize
    if member.tell() + declared != info.file_size:
        raise LoadError(f"jnn.load: {info.filename!r} declares shape {shape} of {dtype} ({declared} bytes) but "
                        f"holds {info.file_size - member.tell()} bytes of data")


def _apply_meta(arrays: OrderedDict[str, np.ndarray], raw: np.ndarray) -> OrderedDict[str, np.ndarray]:
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"expected a 1-d uint8 array, got {raw.dtype} of shape {raw.shape}")
        meta = json.loads(raw.tobytes().decode("utf-8"))
        version, dtypes = meta["version"], meta["dtypes"]
        if not isinstance(version, int) or not isinstance(dtypes, dict):
            raise ValueError("'version' must be an int and 'dtypes' an object")
    except (ValueError, KeyError, TypeError) as e:
        raise LoadError(f"jnn.load: unreadable metadata member {META_KEY + '.npy'!r}: {e}") from e
    if version > _VERSION:
        raise LoadError(f"jnn.load: file format version {version} is newer than this jnn reads ({_VERSION})")
    for key, name in dtypes.items():
        if key not in arrays:
            raise LoadError(f"jnn.load: metadata names key {key!r}, which is not in the file")
        if not isinstance(name, str) or name not in _EXT:
            raise LoadError(f"jnn.load: metadata gives key {key!r} unknown dtype {name!r}")
        stored, dtype = arrays[key].dtype, _EXT[name]
        if stored.kind != "u" or stored.itemsize != dtype.itemsize:
            raise LoadError(f"jnn.load: key {key!r} is stored as {stored} ({stored.itemsize * 8} bits), "
                            f"which cannot hold the raw bits of {name} ({dtype.itemsize * 8} bits)")
        arrays[key] = arrays[key].astype(stored.newbyteorder("="), copy=False).view(dtype)
    return arrays


# --- safetensors --------------------------------------------------------------------------------------------


def _read_safetensors(fh: IO[bytes], start: int) -> OrderedDict[str, np.ndarray]:
    header, data = _safetensors_header(_whole_file(fh, start))
    arrays: OrderedDict[str, np.ndarray] = OrderedDict()
    for key, (dtype, shape, begin, end) in header.items():
        arrays[key] = np.array(_from_bytes(data[begin:end], dtype).reshape(shape))  # the one copy
    return arrays


def _safetensors_header(raw: np.ndarray) -> tuple[dict[str, tuple], np.ndarray]:
    """Parse and check a safetensors header against the file; returns {key: (dtype, shape, begin, end)} in
    header order and the data section."""
    if len(raw) < 8:
        raise LoadError(f"jnn.load: safetensors file of {len(raw)} bytes is truncated (the header size alone "
                        f"takes 8)")
    n = int.from_bytes(raw[:8].tobytes(), "little")
    if n > min(len(raw) - 8, _ST_MAX_HEADER):
        raise LoadError(f"jnn.load: safetensors header size field claims {n} bytes, but "
                        + (f"the file holds only {len(raw) - 8} after it" if n > len(raw) - 8
                           else f"headers are limited to {_ST_MAX_HEADER}"))

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            raise ValueError(f"duplicate key in {[k for k, _ in pairs][:8]}...")
        return out

    try:
        header = json.loads(raw[8:8 + n].tobytes().decode("utf-8"), object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as e:
        raise LoadError(f"jnn.load: safetensors header is not valid UTF-8 JSON: {e}") from e
    data = raw[8 + n:]
    out: dict[str, tuple] = {}
    for key, spec in header.items():
        where = f"safetensors header entry {key!r}"
        if key == "__metadata__":
            if not isinstance(spec, dict) or not all(isinstance(v, str) for v in spec.values()):
                raise LoadError(f"jnn.load: {where} must map str to str")
            continue
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise LoadError(f"jnn.load: {where} must be an object with exactly 'dtype', 'shape' and "
                            f"'data_offsets', got {_brief(spec)}")
        dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _ST_DTYPES:
            raise LoadError(f"jnn.load: {where} has dtype {_brief(dtype)}; jnn reads {', '.join(_ST_DTYPES)}")
        if not _naturals(shape) or len(shape) > 64:
            raise LoadError(f"jnn.load: {where} has shape {_brief(shape)}; expected a list of at most 64 "
                            f"non-negative ints")
        if not _naturals(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
            raise LoadError(f"jnn.load: {where} has data_offsets {_brief(offsets)}; expected [begin, end] with "
                            f"0 <= begin <= end")
        need = math.prod(shape) * _ST_DTYPES[dtype].itemsize
        if not _fits_numpy(shape, _ST_DTYPES[dtype]):
            raise LoadError(f"jnn.load: {where} has shape {shape}, beyond what numpy can index")
        if offsets[1] - offsets[0] != need:
            raise LoadError(f"jnn.load: {where} has shape {shape} of {dtype} ({need} bytes), but its "
                            f"data_offsets {offsets} span {offsets[1] - offsets[0]} bytes")
        out[key] = (_ST_DTYPES[dtype], tuple(shape), offsets[0], offsets[1])
    pos = 0
    for key, (_, _, begin, end) in sorted(out.items(), key=lambda kv: kv[1][2:]):
        if begin != pos:
            raise LoadError(f"jnn.load: safetensors tensor {key!r} starts at data byte {begin}; expected {pos} "
                            f"(tensors must tile the data section, without gaps or overlaps)")
        pos = end
    if pos != len(data):
        raise LoadError(f"jnn.load: safetensors data section holds {len(data)} bytes but the header describes "
                        f"{pos}" + (" (truncated file?)" if pos > len(data) else ""))
    return out, data


def _fits_numpy(shape: tuple[int, ...] | list[int], dtype: np.dtype) -> bool:
    """numpy refuses shapes whose nonzero sides multiply past its index range, even for empty arrays."""
    return math.prod(n for n in shape if n) * dtype.itemsize < 1 << 63


def _naturals(value: Any) -> bool:
    return isinstance(value, list) and all(type(v) is int and 0 <= v < 1 << 64 for v in value)


def _is_safetensors(head: bytes) -> bool:
    return head[8:9] == b"{"


# --- PyTorch ------------------------------------------------------------------------------------------------


def _is_tar(head: bytes) -> bool:
    return head[257:262] == b"ustar"


def _refuse_tar(fh: IO[bytes], start: int) -> Any:
    raise LoadError("jnn.load: this is a tar archive, PyTorch's oldest checkpoint format (before 0.4); it is not "
                    "read -- load it with that PyTorch and re-save it with torch.save")


def _is_pickle(head: bytes) -> bool:
    return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def _read_torch_legacy(fh: IO[bytes], start: int) -> Any:
    from jnn._torch_format import read_torch_legacy

    return read_torch_legacy(_whole_file(fh, start))


# Format sniffing table: predicate on the first bytes -> reader(file, start). A zip is an npz unless it holds
# an '<archive>/data.pkl' member (a PyTorch checkpoint); _read_zip looks at the member names.
_FORMATS: tuple[tuple[Callable[[bytes], bool], Callable[[IO[bytes], int], Any]], ...] = (
    (lambda head: head[:4] in (b"PK\x03\x04", b"PK\x05\x06"), _read_zip),  # zip (empty: numpy.savez())
    (_is_tar, _refuse_tar),
    (_is_pickle, _read_torch_legacy),
    (_is_safetensors, _read_safetensors),
)
