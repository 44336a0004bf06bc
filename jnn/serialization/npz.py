"""The ``.npz`` format: jnn's own, also ``numpy.savez``'s.

A zip of ``.npy`` members, one ``<key>.npy`` per key, in key order. Dtypes numpy cannot store portably
(ml_dtypes' ``bfloat16``, ``float8_*``, ``int4``, ...) are written as their raw bits (an unsigned integer array of
the same width) and named in a metadata member, ``.jnn_meta.npy`` (the first member): UTF-8 JSON stored as a 1-d
uint8 array, ``{"format": "jnn.npz", "version": 1, "dtypes": {key: dtype name}}``. A key too long for a zip
member name (over 65,531 UTF-8 bytes) is stored as member ``.jnn_meta.key<i>.npy`` and named in the metadata's
``"keys": {member: key}``, with ``"version": 2`` so that older readers refuse the file rather than misname the
array. Keys starting with ``.jnn_meta`` are reserved. Object (pickled) arrays are refused.

Reading checks every size before inflating anything: each member's ``.npy`` header must declare exactly the bytes
the member holds, and all members together may expand to at most 8x the file's size plus 64 MiB (a deflate bomb
is refused before it is inflated); members are streamed into their arrays.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections import OrderedDict
from typing import IO

import numpy as np

from jnn.serialization._common import EXT_DTYPES, EXT_NAMES, LoadError, memory_bound

META_KEY = ".jnn_meta"  # reserved member name (``.jnn_meta.npy``) holding the JSON metadata
_FORMAT, _VERSION = "jnn.npz", 2
_MAX_NAME = 0xFFFF  # a zip member name's length field is 16 bits
_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand data more than this


def check_keys(items: list[tuple[str, np.ndarray]]) -> None:
    for key, _ in items:
        if key.startswith(META_KEY):
            raise ValueError(f"jnn.save: key {key!r} is reserved for jnn's metadata (keys starting with "
                             f"{META_KEY!r})")


def write(fh: IO[bytes], items: list[tuple[str, np.ndarray]], compress: bool) -> None:
    check_keys(items)
    members = {}
    for i, (key, _) in enumerate(items):
        members[key] = key if len(key.encode()) + 4 <= _MAX_NAME else f"{META_KEY}.key{i}"
    long_keys = {m: k for k, m in members.items() if m != k}
    meta: dict = {"format": _FORMAT, "version": 2 if long_keys else 1,
                  "dtypes": {k: EXT_NAMES[a.dtype] for k, a in items if a.dtype in EXT_NAMES}}
    if long_keys:
        meta["keys"] = long_keys
    entries = [(META_KEY, np.frombuffer(json.dumps(meta).encode(), np.uint8)),
               *((members[k], a) for k, a in items)]
    with zipfile.ZipFile(fh, "w", allowZip64=True) as zf:
        for name, arr in entries:
            if arr.dtype in EXT_NAMES:
                arr = arr.view(f"u{arr.dtype.itemsize}")
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))  # same data, same bytes
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=arr.nbytes > 1 << 30) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def check_expansion(zf: zipfile.ZipFile, file_size: int) -> None:
    """Refuse a zip whose members claim more bytes than the file holds (shared or lying entries) or would
    inflate past the memory bound -- from the central directory alone, before anything is inflated."""
    infos = zf.infolist()
    claimed = sum(info.compress_size for info in infos)
    if claimed > file_size:  # members of a well-formed zip never share bytes
        raise LoadError(f"jnn.load: zip members claim {claimed} bytes in a {file_size}-byte file: overlapping or "
                        f"lying entries (a zip bomb?)")
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED and \
                info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 64:
            raise LoadError(f"jnn.load: zip member {info.filename!r} claims {info.file_size} bytes from "
                            f"{info.compress_size} compressed ones, more than deflate can expand them")
    expanded = sum(info.file_size for info in infos)
    if expanded > memory_bound(file_size):
        raise LoadError(f"jnn.load: zip members inflate to {expanded} bytes from a {file_size}-byte file, past "
                        f"jnn's bound of 8x the file's size plus 64 MiB ({memory_bound(file_size)} bytes); "
                        f"refused before inflating (a deflate bomb?)")


def read(zf: zipfile.ZipFile) -> OrderedDict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive (already checked by :func:`check_expansion`), in member order."""
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
        version, dtypes, keys = meta["version"], meta["dtypes"], meta.get("keys", {})
        if not isinstance(version, int) or not isinstance(dtypes, dict) or not isinstance(keys, dict):
            raise ValueError("'version' must be an int, 'dtypes' and 'keys' objects")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise LoadError(f"jnn.load: unreadable metadata member {META_KEY + '.npy'!r}: {e}") from e
    if version > _VERSION:
        raise LoadError(f"jnn.load: file format version {version} is newer than this jnn reads ({_VERSION})")
    for member, key in keys.items():
        if not member.startswith(META_KEY + ".") or member not in arrays or not isinstance(key, str) \
                or not key or key in arrays:
            raise LoadError(f"jnn.load: metadata renames member {member[:80]!r}, which is not a renamed member "
                            f"of the file, or to a key already used")
    if keys:
        arrays = OrderedDict((keys.get(name, name), arr) for name, arr in arrays.items())
    for key, name in dtypes.items():
        if key not in arrays:
            raise LoadError(f"jnn.load: metadata names key {key[:80]!r}, which is not in the file")
        if not isinstance(name, str) or name not in EXT_DTYPES:
            raise LoadError(f"jnn.load: metadata gives key {key[:80]!r} unknown dtype {name!r}")
        stored, dtype = arrays[key].dtype, EXT_DTYPES[name]
        if stored.kind != "u" or stored.itemsize != dtype.itemsize:
            raise LoadError(f"jnn.load: key {key[:80]!r} is stored as {stored} ({stored.itemsize * 8} bits), "
                            f"which cannot hold the raw bits of {name} ({dtype.itemsize * 8} bits)")
        arrays[key] = arrays[key].astype(stored.newbyteorder("="), copy=False).view(dtype)
    return arrays
