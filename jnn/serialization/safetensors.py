"""The safetensors format: an 8-byte little-endian header size, a JSON header ``{key: {"dtype", "shape",
"data_offsets"}}`` and the raw little-endian data.

The header is checked against the file before anything is allocated: offsets must tile the data section
exactly, each tensor's bytes must match its shape and dtype. Each tensor is then read straight into its array.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import IO, Any

import ml_dtypes
import numpy as np

from jnn.serialization._common import LoadError, Source, brief, fits_numpy, from_bytes, little_endian_bytes

# safetensors dtype codes that map onto a numpy (or ml_dtypes) dtype; packed 4/6-bit codes are not read.
DTYPES = {code: np.dtype(dt) for code, dt in {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16, "F16": np.float16,
    "BF16": ml_dtypes.bfloat16, "U32": np.uint32, "I32": np.int32, "F32": np.float32, "U64": np.uint64,
    "I64": np.int64, "F64": np.float64, "C64": np.complex64, "F8_E5M2": ml_dtypes.float8_e5m2,
    "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E8M0": ml_dtypes.float8_e8m0fnu}.items()}
_CODE = {dt.name: code for code, dt in DTYPES.items()}
_MAX_HEADER = 100_000_000  # the safetensors library's own limit


def sniff(head: bytes) -> bool:
    return head[8:9] == b"{"


def check(items: list[tuple[str, np.ndarray]]) -> None:
    for key, arr in items:
        if key == "__metadata__":
            raise ValueError("jnn.save: key '__metadata__' is reserved in safetensors files")
        if arr.dtype.name not in _CODE:
            raise TypeError(f"jnn.save: key {key!r} has dtype {arr.dtype}, which safetensors cannot store "
                            f"(it stores {', '.join(sorted(_CODE))}); save to .npz instead")


def write(fh: IO[bytes], items: list[tuple[str, np.ndarray]]) -> None:
    check(items)
    # Header keys keep the caller's order (jnn.load returns them in header order); the data is laid out by
    # descending item size, as the safetensors library does, so every tensor starts aligned to its item size.
    layout = sorted(range(len(items)), key=lambda i: -items[i][1].dtype.itemsize)
    spans, pos = {}, 0
    for i in layout:
        spans[i] = (pos, pos + items[i][1].nbytes)
        pos += items[i][1].nbytes
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}  # torch layouts; what transformers expects
    for i, (key, arr) in enumerate(items):
        header[key] = {"dtype": _CODE[arr.dtype.name], "shape": list(arr.shape), "data_offsets": list(spans[i])}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
    fh.write(len(text).to_bytes(8, "little"))
    fh.write(text)
    for i in layout:
        fh.write(little_endian_bytes(items[i][1]).data)


def read(source: Source) -> OrderedDict[str, np.ndarray]:
    header, data_start = _header(source)
    arrays: OrderedDict[str, np.ndarray] = OrderedDict()
    for key, (dtype, shape, begin, end) in header.items():
        arrays[key] = from_bytes(source.array(data_start + begin, end - begin), dtype).reshape(shape)
    return arrays


def _header(source: Source) -> tuple[dict[str, tuple], int]:
    """Parse and check a safetensors header against the file; returns {key: (dtype, shape, begin, end)} in
    header order and where the data section starts."""
    if source.size < 8:
        raise LoadError(f"jnn.load: safetensors file of {source.size} bytes is truncated (the header size alone "
                        f"takes 8)")
    n = int.from_bytes(source.bytes(0, 8), "little")
    if n > min(source.size - 8, _MAX_HEADER):
        raise LoadError(f"jnn.load: safetensors header size field claims {n} bytes, but "
                        + (f"the file holds only {source.size - 8} after it" if n > source.size - 8
                           else f"headers are limited to {_MAX_HEADER}"))

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            raise ValueError(f"duplicate key in {[k for k, _ in pairs][:8]}...")
        return out

    try:
        header = json.loads(source.bytes(8, n).decode("utf-8"), object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as e:
        raise LoadError(f"jnn.load: safetensors header is not valid UTF-8 JSON: {e}") from e
    if not isinstance(header, dict):
        raise LoadError(f"jnn.load: safetensors header is {brief(header)}, not a JSON object")
    data_size = source.size - 8 - n
    out: dict[str, tuple] = {}
    for key, spec in header.items():
        where = f"safetensors header entry {brief(key)}"
        if key == "__metadata__":
            if not isinstance(spec, dict) or not all(isinstance(v, str) for v in spec.values()):
                raise LoadError(f"jnn.load: {where} must map str to str")
            continue
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise LoadError(f"jnn.load: {where} must be an object with exactly 'dtype', 'shape' and "
                            f"'data_offsets', got {brief(spec)}")
        dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise LoadError(f"jnn.load: {where} has dtype {brief(dtype)}; jnn reads {', '.join(DTYPES)}")
        if not _naturals(shape) or len(shape) > 64:
            raise LoadError(f"jnn.load: {where} has shape {brief(shape)}; expected a list of at most 64 "
                            f"non-negative ints")
        if not _naturals(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
            raise LoadError(f"jnn.load: {where} has data_offsets {brief(offsets)}; expected [begin, end] with "
                            f"0 <= begin <= end")
        need = math.prod(shape) * DTYPES[dtype].itemsize
        if not fits_numpy(shape, DTYPES[dtype]):
            raise LoadError(f"jnn.load: {where} has shape {shape}, beyond what numpy can index")
        if offsets[1] - offsets[0] != need:
            raise LoadError(f"jnn.load: {where} has shape {shape} of {dtype} ({need} bytes), but its "
                            f"data_offsets {offsets} span {offsets[1] - offsets[0]} bytes")
        out[key] = (DTYPES[dtype], tuple(shape), offsets[0], offsets[1])
    pos = 0
    for key, (_, _, begin, end) in sorted(out.items(), key=lambda kv: kv[1][2:]):
        if begin != pos:
            raise LoadError(f"jnn.load: safetensors tensor {brief(key)} starts at data byte {begin}; expected "
                            f"{pos} (tensors must tile the data section, without gaps or overlaps)")
        pos = end
    if pos != data_size:
        raise LoadError(f"jnn.load: safetensors data section holds {data_size} bytes but the header describes "
                        f"{pos}" + (" (truncated file?)" if pos > data_size else ""))
    return out, 8 + n


def _naturals(value: Any) -> bool:
    return isinstance(value, list) and all(type(v) is int and 0 <= v < 1 << 64 for v in value)
