"""PyTorch's ``torch.save`` formats, read and written with numpy alone: torch is never imported.

Two layouts exist (see ``torch/serialization.py``):

- **zip** (PyTorch >= 1.6, ``.pt``/``.pth``): ``<archive>/data.pkl`` pickles the saved object; each tensor in it
  refers, through a pickle *persistent id* ``("storage", <storage type>, key, location, numel)``, to the raw
  bytes of a storage kept uncompressed in ``<archive>/data/<key>``, in the byte order named by
  ``<archive>/byteorder`` (little when the record is absent).
- **legacy** (``_use_new_zipfile_serialization=False``): five pickles in a row -- magic number, protocol
  version, system info, the object, the list of storage keys -- then, for each key in that order, an int64
  element count and the storage's little-endian bytes. Storages may be views ``(key, offset, numel)`` of others.

Reading: pickles go through the restricted unpickler of :mod:`jnn.serialization._pickle`; every storage is
checked against the file (the zip member exists, is stored uncompressed with a matching CRC and exactly the bytes
the storage needs; each tensor's strided extent lies inside its storage) and read once.

Writing (:func:`write`): the zip layout as ``torch.save`` writes it for a ``state_dict`` -- an ``OrderedDict`` of
tensors rebuilt by ``torch._utils._rebuild_tensor_v2`` (``_v3`` with an untyped storage for dtypes that have no
typed storage: uint16/32/64, float8), one storage per array (shared by arrays that are the same object), each
member's data aligned to 64 bytes. ``torch.load(path, weights_only=True)`` reads it.
"""

from __future__ import annotations

import zipfile
import zlib
from typing import IO, Any

import numpy as np

from jnn.serialization._common import LoadError, Source, brief, little_endian_bytes
from jnn.serialization._pickle import DTYPES, STORAGES, Storage, to_arrays, unpickle

_MAGIC, _PROTOCOL = 0x1950A86A20F9469CFC6C, 1001  # the legacy format's header pickles
RECORDS = ("/data.pkl", "/constants.pkl", "/byteorder", "/.format_version", "/version")  # '<archive>/...'
_ALIGN = 64


def sniff_legacy(head: bytes) -> bool:
    return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def is_torch_zip(names: list[str]) -> bool:
    return any(n.count("/") == 1 and n.endswith(RECORDS) for n in names)


# --- reading ------------------------------------------------------------------------------------------------


def read_zip(zf: zipfile.ZipFile, source: Source) -> Any:
    """A ``torch.save`` zip archive (opened as ``zf`` over ``source``) with numpy arrays for tensors."""
    names = zf.namelist()
    pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise LoadError("jnn.load: this is a TorchScript archive (torch.jit.save); it holds code, not just "
                        "weights. Save the model's state_dict() with torch.save instead")
    if len(pickles) != 1:
        raise LoadError(f"jnn.load: a PyTorch zip checkpoint has exactly one '<archive>/data.pkl' member, this one "
                        f"has {pickles[:4]}")
    prefix = pickles[0][:-len("data.pkl")]

    def locate(name: str, size: int | None = None) -> tuple[int, zipfile.ZipInfo]:
        try:
            info = zf.getinfo(prefix + name)
        except KeyError:
            raise LoadError(f"jnn.load: checkpoint has no member {prefix + name!r}") from None
        return _stored(source, info, size), info

    def member(name: str) -> bytes:
        begin, info = locate(name)
        return _checked(source.array(begin, info.file_size), info).tobytes()

    order = b"little"
    if prefix + "byteorder" in names:
        order = member("byteorder")
        if order not in (b"little", b"big"):
            raise LoadError(f"jnn.load: {prefix}byteorder record is {order[:20]!r}; expected b'little' or b'big'")
    pkl = member("data.pkl")
    storages: dict[str, Storage] = {}
    obj, _ = unpickle(lambda at, n: pkl[at:at + n], f"{prefix}data.pkl", storages, legacy=False)
    where = {key: locate(f"data/{key}", s.nbytes) for key, s in storages.items()}

    def read_storage(storage: Storage) -> np.ndarray:
        begin, info = where[storage.key]
        return _checked(source.array(begin, storage.nbytes), info)

    return to_arrays(obj, read_storage, order == b"little", source.size)


def _stored(source: Source, info: zipfile.ZipInfo, size: int | None) -> int:
    """Where a zip member's bytes start in the file, after checking its local header and size."""
    name, start = info.filename, info.header_offset
    if info.compress_type != zipfile.ZIP_STORED:
        raise LoadError(f"jnn.load: checkpoint member {name!r} is compressed (method {info.compress_type}); "
                        f"torch.save stores members uncompressed")
    local = source.bytes(start, 30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise LoadError(f"jnn.load: checkpoint member {name!r}: no local zip header at byte {start}")
    name_len = int.from_bytes(local[26:28], "little")
    begin = start + 30 + name_len + int.from_bytes(local[28:30], "little")
    local_name = source.bytes(start + 30, name_len)
    if local_name.decode("utf-8" if local[7] & 0x08 else "cp437", "replace") != info.orig_filename:
        raise LoadError(f"jnn.load: checkpoint member {name!r}: its local header names {local_name[:80]!r}")
    if size is not None and info.file_size != size:
        raise LoadError(f"jnn.load: checkpoint member {name!r} holds {info.file_size} bytes; its storage "
                        f"needs {size}")
    if info.compress_size != info.file_size or begin + info.file_size > source.size:
        raise LoadError(f"jnn.load: checkpoint member {name!r} claims {info.file_size} bytes at byte {begin}, "
                        f"past the end of the {source.size}-byte file (truncated?)")
    return begin


def _checked(data: np.ndarray, info: zipfile.ZipInfo) -> np.ndarray:
    if info.CRC and zlib.crc32(data) != info.CRC:  # torch writes CRC 0 when compute_crc32 is off
        raise LoadError(f"jnn.load: checkpoint member {info.filename!r} fails its CRC check (corrupt file)")
    return data


def read_legacy(source: Source) -> Any:
    """A legacy (non-zip) ``torch.save`` file with numpy arrays for tensors."""
    pos, parts = 0, []
    storages: dict[str, Storage] = {}
    for what, expected in (("magic number", _MAGIC), ("protocol version", _PROTOCOL), ("system info", None),
                           ("saved object", None), ("storage key list", None)):
        start = pos
        obj, size = unpickle(lambda at, n: source.bytes(start + at, n),  # noqa: B023 (used in this iteration)
                             f"legacy checkpoint's {what} pickle (at byte {pos})", storages, True)
        if expected is not None and (type(obj) is not int or obj != expected):
            raise LoadError(f"jnn.load: a pickle that is not a PyTorch checkpoint: its {what} is {brief(obj)}; "
                            f"expected {expected}")
        parts.append(obj)
        pos += size
    obj, keys = parts[3:]
    roots = {s.key for s in storages.values() if s.root is None}
    if not (type(keys) is list and all(type(k) is str for k in keys) and set(keys) == roots
            and len(keys) == len(roots)):
        raise LoadError(f"jnn.load: legacy checkpoint's storage key list {brief(keys)} does not match the "
                        f"storages its tensors use ({brief(sorted(roots)[:8])})")
    where = {}
    for key in keys:
        storage = storages[key]
        count = int.from_bytes(source.bytes(pos, 8), "little", signed=True)
        if count * storage.dtype.itemsize != storage.nbytes or pos + 8 + storage.nbytes > source.size:
            raise LoadError(f"jnn.load: legacy checkpoint storage {brief(key)} at byte {pos}: record of {count} "
                            f"elements for a {storage!r}, {source.size - pos - 8} bytes left in the file")
        where[key] = pos + 8
        pos += 8 + storage.nbytes
    for storage in storages.values():
        if storage.root is not None:
            if storage.root.root is not None or storage.offset + storage.nbytes > storage.root.nbytes:
                raise LoadError(f"jnn.load: legacy storage view {storage!r} lies outside {storage.root!r}")
            where[storage.key] = where[storage.root.key] + storage.offset
    return to_arrays(obj, lambda s: source.array(where[s.key], s.nbytes), True, source.size)


# --- writing ------------------------------------------------------------------------------------------------

_TYPED = {dt: name for name, dt in STORAGES.items() if name != "UntypedStorage"}  # dtype name -> storage type
_TORCH_NAMES = {dt: name for name, dt in DTYPES.items()}  # numpy dtype -> torch dtype name


def check(items: list[tuple[str, np.ndarray]]) -> None:
    for key, arr in items:
        if arr.dtype.newbyteorder("=") not in _TORCH_NAMES:
            raise TypeError(f"jnn.save: key {key!r} has dtype {arr.dtype}, which PyTorch has no tensor type for "
                            f"(it stores {', '.join(sorted(DTYPES))}); save to .npz instead")


def write(fh: IO[bytes], items: list[tuple[str, np.ndarray]], archive: str = "archive") -> None:
    """Write ``items`` as ``torch.save(OrderedDict(items), fh)`` would, without torch."""
    check(items)
    keys: dict[int, str] = {}  # id(array) -> storage key: one storage for an array saved under several keys
    storages: list[tuple[str, np.ndarray]] = []
    body = [b"\x80\x02", _global("collections", "OrderedDict"), b")R(" if items else b")R"]
    for key, arr in items:
        dtype = arr.dtype.newbyteorder("=")
        if id(arr) not in keys:
            keys[id(arr)] = str(len(storages))
            storages.append((keys[id(arr)], arr))
        name = _TORCH_NAMES[dtype]
        typed = _TYPED.get(name)
        numel = arr.size if typed else arr.nbytes
        strides, step = [], 1
        for n in reversed(arr.shape):
            strides.append(step)
            step *= n
        storage_id = [b"(", _str("storage"), _global("torch", typed) if typed else _global("torch.storage",
                      "UntypedStorage"), _str(keys[id(arr)]), _str("cpu"), _int(numel), b"tQ"]
        body += [_str(key), _global("torch._utils", "_rebuild_tensor_v2" if typed else "_rebuild_tensor_v3"), b"(",
                 *storage_id, _int(0), _tuple(arr.shape), _tuple(reversed(strides)), b"\x89",
                 _global("collections", "OrderedDict"), b")R", b"" if typed else _global("torch", name), b"tR"]
    body.append(b"u." if items else b".")
    records = [("data.pkl", b"".join(body)), (".format_version", b"1"), (".storage_alignment", str(_ALIGN).encode()),
               ("byteorder", b"little")]
    try:
        base = fh.tell()
    except (AttributeError, OSError, ValueError):
        base = None
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        def add(name: str, data: Any, nbytes: int) -> None:
            info = zipfile.ZipInfo(f"{archive}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zip64 = nbytes > 1 << 30
            if base is not None:  # pad the local header's extra field so that the data starts 64-byte aligned
                header_end = fh.tell() - base + 30 + len(info.filename.encode()) + 4 + (20 if zip64 else 0)
                info.extra = b"FB" + (-header_end % _ALIGN).to_bytes(2, "little") + bytes(-header_end % _ALIGN)
            with zf.open(info, "w", force_zip64=zip64) as out:
                out.write(data)

        for name, data in records:
            add(name, data, len(data))
        for key, arr in storages:
            add(f"data/{key}", little_endian_bytes(arr).data, arr.nbytes)
        add("version", b"3\n", 2)


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _str(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"X" + len(data).to_bytes(4, "little") + data


def _int(value: int) -> bytes:
    value = int(value)
    if 0 <= value < 1 << 8:
        return b"K" + value.to_bytes(1, "little")
    if 0 <= value < 1 << 16:
        return b"M" + value.to_bytes(2, "little")
    if -(1 << 31) <= value < 1 << 31:
        return b"J" + value.to_bytes(4, "little", signed=True)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + len(data).to_bytes(1, "little") + data


def _tuple(values: Any) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"

