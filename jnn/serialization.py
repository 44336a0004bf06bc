"""State dicts on disk: :func:`save` and :func:`load`, jnn's ``torch.save``/``torch.load`` for state dicts.

A file is one ``.npz`` (a zip of ``.npy`` members that ``numpy.load`` reads), one member ``<key>.npy`` per
key, in key order. Nothing is pickled on write and nothing is unpickled on read. Dtypes numpy cannot store
portably (ml_dtypes' ``bfloat16``, ``float8_*``, ``int4``, ...) are written as their raw bits (an unsigned
integer array of the same width) and named in a metadata member, ``.jnn_meta.npy`` (the first member): UTF-8
JSON stored as a 1-d uint8 array, ``{"format": "jnn.npz", "version": 1, "dtypes": {key: dtype name}}``.
Torch-style keys never start with ``"."``, and :func:`save` refuses that one name. Files written by plain
``numpy.savez`` load too.

Writes to a path are atomic: the data goes to a temporary file in the same folder, is flushed and fsynced,
and only then replaces the target, so a crash never leaves a half-written file in place of a good one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import zipfile
import zlib
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

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


class LoadError(ValueError):
    """A file given to :func:`load` holds content jnn refuses: unknown format, corrupt, or unsafe (pickle)."""


def save(obj: Mapping[str, Any], f: PathLike | IO[bytes], *, compress: bool = False) -> None:
    """Write a mapping of ``str`` keys to arrays (e.g. ``net.state_dict()``) to ``f`` as one ``.npz``.

    ``f`` is a path (written atomically) or a writable binary file object. Values may be jax or numpy arrays
    or scalars of bool, integer, float (float16, bfloat16, float8, ...) or complex dtype; key order and dtypes
    are kept exactly. ``compress=True`` deflates the members (smaller, slower).

    >>> import io, numpy as np
    >>> buf = io.BytesIO()
    >>> save({"fc.weight": np.eye(2, dtype=np.float32), "fc.bias": np.zeros(2, np.float32)}, buf)
    >>> list(load(io.BytesIO(buf.getvalue())))
    ['fc.weight', 'fc.bias']
    """
    items = _check(obj)
    if not isinstance(f, (str, bytes, os.PathLike)):
        if not callable(getattr(f, "write", None)):
            raise TypeError(f"jnn.save: f must be a path or a writable binary file, got {type(f).__name__}")
        _write_npz(f, items, compress)
        return
    path = os.fsdecode(os.fspath(f))
    folder, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    # O_EXCL never clobbers another file; mode 0o666 lets the umask apply as for a plain open(path, "wb").
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with open(fd, "wb") as fh:
            _write_npz(fh, items, compress)
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


def load(f: PathLike | IO[bytes]) -> OrderedDict[str, np.ndarray]:
    """Read a file written by :func:`save` (or ``numpy.savez``) into an ``OrderedDict`` of numpy arrays.

    ``f`` is a path or a readable binary file object. Keys come back in saved order with their saved dtypes
    (bfloat16 and friends as ml_dtypes numpy arrays). The format is recognised from the content, not the file
    name. Content jnn cannot or will not read (not an npz, corrupt, object arrays) raises :class:`LoadError`.

    >>> import io, numpy as np, ml_dtypes
    >>> buf = io.BytesIO()
    >>> save({"w": np.array([1.5, 3e38], ml_dtypes.bfloat16), "step": 3}, buf)
    >>> sd = load(io.BytesIO(buf.getvalue()))
    >>> sd["w"].dtype, sd["step"]
    (dtype(bfloat16), array(3))
    """
    if isinstance(f, (str, bytes, os.PathLike)):
        with open(f, "rb") as fh:
            return _dispatch(fh)
    if not callable(getattr(f, "read", None)):
        raise TypeError(f"jnn.load: f must be a path or a readable binary file, got {type(f).__name__}")
    seekable = getattr(f, "seekable", None)
    return _dispatch(f if seekable is not None and seekable() else io.BytesIO(f.read()))


def _dispatch(fh: IO[bytes]) -> OrderedDict[str, np.ndarray]:
    """Sniff the format from the first bytes, then hand the file to that format's reader."""
    start = fh.tell()
    head = fh.read(8)
    fh.seek(start)
    for magic, reader in _FORMATS:
        if head.startswith(magic):
            return reader(fh)
    raise LoadError(f"jnn.load: unrecognised file format (starts with {head!r}); "
                    f"expected an .npz written by jnn.save or numpy.savez")


def _read_npz(fh: IO[bytes]) -> OrderedDict[str, np.ndarray]:
    arrays: OrderedDict[str, np.ndarray] = OrderedDict()
    what = "zip directory"
    try:
        with zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                name = what = info.filename
                if not name.endswith(".npy") or info.is_dir():
                    raise LoadError(f"jnn.load: zip member {name!r} is not a .npy array; not an .npz file")
                if name[:-4] in arrays:
                    raise LoadError(f"jnn.load: duplicate zip member {name!r}")
                with zf.open(info) as member:
                    arrays[name[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
                    if member.read(1):
                        raise LoadError(f"jnn.load: trailing bytes after the array in {name!r}")
    except LoadError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError, NotImplementedError
            ) as e:
        raise LoadError(f"jnn.load: corrupt or unsafe .npz ({what!r}): {e}") from e
    raw_meta = arrays.pop(META_KEY, None)
    return arrays if raw_meta is None else _apply_meta(arrays, raw_meta)


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


# Format sniffing table: leading bytes -> reader. Note a PyTorch zip checkpoint also starts with b"PK";
# _read_npz refuses it (its members are not .npy), so a .pt reader must look at member names first.
_FORMATS: tuple[tuple[bytes, Callable[[IO[bytes]], OrderedDict[str, np.ndarray]]], ...] = (
    (b"PK\x03\x04", _read_npz),  # zip with at least one member
    (b"PK\x05\x06", _read_npz),  # empty zip (numpy.savez with no arrays)
)
