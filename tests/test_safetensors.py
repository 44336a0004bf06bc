"""safetensors files: jnn.save writes them (PyTorch's safetensors reads them bit for bit), jnn.load reads
anyone's, and headers that lie are refused before anything is allocated."""

from __future__ import annotations

import io
import json
import struct
import time
import tracemalloc
from collections import OrderedDict

import hypothesis.strategies as st
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from hypothesis import given, settings

import jnn
from jnn.serialization import LoadError, load, save

DTYPES = [np.dtype(d) for d in (np.float32, np.float16, ml_dtypes.bfloat16, np.float64, np.int8, np.int16,
                                np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_,
                                np.complex64, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2)]
SHAPES = [(), (0,), (3, 0, 2), (7,), (2, 3, 5)]


def random_array(rng, shape, dtype) -> np.ndarray:
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    n = int(np.prod(shape))
    return np.frombuffer(rng.bytes(n * dtype.itemsize), np.uint8).view(dtype).reshape(shape).copy()


def torch_bits(t: torch.Tensor) -> bytes:
    return t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def st_bytes(state, **kw) -> bytes:
    buf = io.BytesIO()
    save(state, buf, format="safetensors", **kw)
    return buf.getvalue()


def assert_same(expected: np.ndarray, got: np.ndarray) -> None:
    assert isinstance(got, np.ndarray) and got.flags.writeable
    assert (got.dtype, got.shape) == (expected.dtype, expected.shape)
    assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_saved_file_reads_back_bit_identical_in_pytorch(dtype, tmp_path):
    rng = np.random.default_rng(0)
    state = OrderedDict((f"layer.{i}.weight", random_array(rng, shape, dtype)) for i, shape in enumerate(SHAPES))
    save(state, tmp_path / "m.safetensors")
    theirs = safetensors.torch.load_file(tmp_path / "m.safetensors")
    assert set(theirs) == set(state)
    for k, v in state.items():
        assert tuple(theirs[k].shape) == v.shape
        assert torch_bits(theirs[k]) == v.tobytes()
    ours = load(tmp_path / "m.safetensors")
    assert type(ours) is OrderedDict and list(ours) == list(state)
    for k, v in state.items():
        assert_same(v, ours[k])


def test_bfloat16_and_jax_arrays(tmp_path):
    w = np.array([1e30, -3e38, 1e-30, np.nan, 1 / 3], np.float32).astype(ml_dtypes.bfloat16)
    save({"w": w, "j": jnp.asarray(w), "i": jnp.arange(3)}, tmp_path / "m.safetensors")
    theirs = safetensors.torch.load_file(tmp_path / "m.safetensors")
    assert theirs["w"].dtype == torch.bfloat16 and torch_bits(theirs["w"]) == w.tobytes()
    assert torch_bits(theirs["j"]) == w.tobytes() and theirs["i"].tolist() == [0, 1, 2]


def test_layout_key_order_alignment_and_metadata(tmp_path):
    state = OrderedDict([("z.bias", np.ones(3, np.float16)), ("a.weight", np.ones((2, 3), np.float64)),
                         ("m.flag", np.ones(5, np.bool_)), ("b.scale", np.ones(1, np.float32))])
    save(state, tmp_path / "m.safetensors")
    raw = (tmp_path / "m.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert (8 + n) % 8 == 0
    header = json.loads(raw[8:8 + n])
    assert list(header) == ["__metadata__", *state]  # the caller's order in the header ...
    assert header["__metadata__"] == {"format": "pt"}
    for key, spec in header.items():
        if key != "__metadata__":  # ... and every tensor aligned to its item size in the data
            assert spec["data_offsets"][0] % state[key].itemsize == 0
    assert list(load(tmp_path / "m.safetensors")) == list(state)
    with safetensors.safe_open(tmp_path / "m.safetensors", "np") as f:
        assert f.metadata() == {"format": "pt"}


def test_reads_files_written_by_the_safetensors_library(tmp_path):
    t = {"emb": torch.randn(4, 3).bfloat16(), "ids": torch.arange(5), "mask": torch.tensor([True, False]),
         "f8": torch.randn(3).to(torch.float8_e4m3fn), "empty": torch.zeros(0, 2)}
    safetensors.torch.save_file(t, tmp_path / "t.safetensors", metadata={"note": "hi"})
    ours = load(tmp_path / "t.safetensors")
    raw = (tmp_path / "t.safetensors").read_bytes()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    assert list(ours) == [k for k in header if k != "__metadata__"]  # file order
    for k, v in t.items():
        assert tuple(ours[k].shape) == tuple(v.shape) and ours[k].tobytes() == torch_bits(v)
    assert ours["emb"].dtype == ml_dtypes.bfloat16 and ours["f8"].dtype == ml_dtypes.float8_e4m3fn
    arrays = {"a": np.arange(6, dtype=np.int32).reshape(2, 3), "b": np.array(2.5)}
    safetensors.numpy.save_file(arrays, tmp_path / "n.safetensors")
    for k, v in arrays.items():
        assert_same(v, load(tmp_path / "n.safetensors")[k])


def test_format_from_extension_or_keyword(tmp_path):
    state = {"w": np.arange(3, dtype=np.float32)}
    save(state, tmp_path / "m.SafeTensors")
    save(state, tmp_path / "m.npz")
    save(state, tmp_path / "weights.bin", format="safetensors")
    save(state, tmp_path / "m2.safetensors", format="npz")
    assert (tmp_path / "m.SafeTensors").read_bytes()[8:9] == b"{"
    assert (tmp_path / "weights.bin").read_bytes()[8:9] == b"{"
    assert (tmp_path / "m.npz").read_bytes()[:2] == b"PK" == (tmp_path / "m2.safetensors").read_bytes()[:2]
    for name in ("m.SafeTensors", "m.npz", "weights.bin", "m2.safetensors"):
        assert_same(state["w"], jnn.load(tmp_path / name)["w"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.SafeTensors", "m.npz", "m2.safetensors", "weights.bin"]


def test_big_endian_input_arrays_written_little_endian(tmp_path):
    state = {"f": np.arange(4, dtype=">f4"), "c": np.array([1 + 2j], ">c8"), "i": np.arange(3, dtype=">i8").T}
    save(state, tmp_path / "m.safetensors")
    theirs = safetensors.torch.load_file(tmp_path / "m.safetensors")
    assert theirs["f"].tolist() == [0, 1, 2, 3] and theirs["c"].tolist() == [1 + 2j]
    assert theirs["i"].tolist() == [0, 1, 2]
    out = load(tmp_path / "m.safetensors")
    assert out["f"].dtype == np.float32 and out["f"].tolist() == [0, 1, 2, 3] and out["c"].tolist() == [1 + 2j]


@pytest.mark.parametrize(("state", "kw", "exc", "match"), [
    ({"w": np.ones(2, np.complex128)}, {}, TypeError, "key 'w' has dtype complex128, which safetensors cannot"),
    ({"w": np.ones(2, ml_dtypes.int4)}, {}, TypeError, "key 'w' has dtype int4"),
    ({"__metadata__": np.ones(2)}, {}, ValueError, "'__metadata__' is reserved"),
    ({"w": np.ones(2)}, {"compress": True}, ValueError, "compress=True applies to npz only"),
    ({"w": np.ones(2)}, {"format": "pt"}, ValueError, "format must be 'npz', 'safetensors' or 'torch', got 'pt'"),
])
def test_save_refuses(state, kw, exc, match, tmp_path):
    with pytest.raises(exc, match=match):
        save(state, tmp_path / "m.safetensors", **kw)
    assert list(tmp_path.iterdir()) == []


# --- lying and damaged files --------------------------------------------------------------------------------


def handmade(header: dict | bytes, data: bytes = b"", size: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if size is None else size) + text + data


def entry(dtype="F32", shape=(2,), offsets=(0, 8)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def test_handmade_file_loads():
    out = load(io.BytesIO(handmade({"a": entry(), "b": entry("U8", (3,), (8, 11))}, bytes(range(11)))))
    assert list(out) == ["a", "b"] and out["b"].tolist() == [8, 9, 10]


@pytest.mark.parametrize(("content", "match"), [
    (handmade({"a": entry(offsets=(0, 12))}, bytes(12)), r"shape \[2\] of F32 \(8 bytes\), but its data_offsets"),
    (handmade({"a": entry(shape=(3,))}, bytes(8)), r"shape \[3\] of F32 \(12 bytes\)"),
    (handmade({"a": entry(), "b": entry(offsets=(4, 12))}, bytes(12)), "starts at data byte 4; expected 8"),
    (handmade({"a": entry(), "b": entry(offsets=(12, 20))}, bytes(20)), "starts at data byte 12; expected 8"),
    (handmade({"a": entry()}, bytes(4)), "holds 4 bytes but the header describes 8 \\(truncated"),
    (handmade({"a": entry()}, bytes(9)), "holds 9 bytes but the header describes 8"),
    (handmade({"a": entry(offsets=(8, 0))}, bytes(8)), "0 <= begin <= end"),
    (handmade({"a": entry(offsets=(-8, 0))}, bytes(8)), "0 <= begin <= end"),
    (handmade({"a": entry(offsets=(0, 8, 9))}, bytes(8)), "expected \\[begin, end\\]"),
    (handmade({"a": entry(shape=(-1, -2))}, bytes(8)), "non-negative ints"),
    (handmade({"a": entry(shape=(True, 2))}, bytes(8)), "non-negative ints"),
    (handmade({"a": entry(shape=(2.0,))}, bytes(8)), "non-negative ints"),
    (handmade({"a": entry(shape=[1] * 65)}, bytes(8)), "at most 64"),
    (handmade({"a": entry(shape=(0, 2**62, 2**62), offsets=(0, 0))}), "beyond what numpy can index"),
    (handmade({"a": entry(dtype="F128")}, bytes(8)), "has dtype 'F128'"),
    (handmade({"a": entry(dtype="F4")}, bytes(8)), "has dtype 'F4'"),
    (handmade({"a": {**entry(), "extra": 1}}, bytes(8)), "exactly 'dtype', 'shape' and 'data_offsets'"),
    (handmade({"a": [1, 2]}, bytes(8)), "exactly 'dtype'"),
    (handmade({"__metadata__": {"k": 1}}), "'__metadata__' must map str to str"),
    (handmade(b'{"a": 1, "a": 2}'), "duplicate key"),
    (handmade(b'[1, 2]'), "unrecognised file format"),
    (handmade(b'{"a": 1} [1]'), "not valid UTF-8 JSON"),
    (handmade(b'{"a": \xff}'), "not valid UTF-8 JSON"),
    (handmade(b"{" + b'"a":[' * 100_000 + b"]" * 100_000 + b"}"), "not valid UTF-8 JSON"),
    (handmade({"a": entry()}, bytes(8), size=10**6), "claims 1000000 bytes, but the file holds only"),
    (handmade({"a": entry()}, bytes(8), size=2**64 - 1), "claims 18446744073709551615 bytes"),
    (b"\x05\x00\x00\x00\x00\x00\x00\x00{", "claims 5 bytes"),
    (b"\x02\x00\x00\x00\x00\x00\x00", "unrecognised file format"),
])
def test_lying_or_broken_headers_refused(content, match):
    with pytest.raises(LoadError, match=match):
        load(io.BytesIO(content))


@pytest.mark.parametrize("shape", [(2**40,), (2**20, 2**20, 2**10), (2**30, 2**30)])
def test_absurd_sizes_refused_without_allocating(shape, tmp_path):
    size = int(np.prod(shape, dtype=object)) * 4
    (tmp_path / "huge.safetensors").write_bytes(handmade({"a": entry(shape=shape, offsets=(0, size))}, bytes(64)))
    tracemalloc.start()
    try:
        with pytest.raises(LoadError, match=f"holds 64 bytes but the header describes {size}"):
            load(tmp_path / "huge.safetensors")
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()


def test_truncated_files_refused():
    data = st_bytes({"a": np.arange(100, dtype=np.float32), "b": np.ones((3, 3), ml_dtypes.bfloat16)})
    for cut in (1, 7, 8, 9, 20, 60, len(data) // 2, len(data) - 1):
        with pytest.raises(LoadError):
            load(io.BytesIO(data[:cut]))


def _good() -> bytes:
    return st_bytes(OrderedDict([("a", np.arange(20, dtype=np.float32)), ("b", np.ones((2, 3), ml_dtypes.bfloat16)),
                                 ("c", np.array(True)), ("d", np.zeros((0, 5), np.int64))]))


def _check_never_crashes(data: bytes) -> None:
    start = time.monotonic()
    tracemalloc.start()
    try:
        out = load(io.BytesIO(data))
        assert all(isinstance(v, np.ndarray) for v in out.values())
    except LoadError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 64 << 20 and time.monotonic() - start < 10


@settings(max_examples=50, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 1 << 16))
def test_fuzz_bytes(flips, cut):
    data = bytearray(_good())
    for pos, bits in flips:
        data[pos % len(data)] ^= bits
    if cut % 4 == 0:
        del data[len(data) - cut % len(data):]
    _check_never_crashes(bytes(data))


@settings(max_examples=50, deadline=None)
@given(where=st.integers(0, 1 << 16), text=st.text(alphabet='0123456789[]{}",:-e.aFUI ', max_size=12),
       drop=st.integers(0, 6))
def test_fuzz_header_text(where, text, drop):
    """Splice JSON-ish text into the header (keeping the size field right), so the damage reaches the parser."""
    data = _good()
    n = struct.unpack("<Q", data[:8])[0]
    header = data[8:8 + n].decode()
    at = where % len(header)
    header = header[:at] + text + header[at + drop:]
    _check_never_crashes(handmade(header.encode(), data[8 + n:]))


@pytest.mark.parametrize("via", ["path", "bytesio"])
def test_loading_holds_about_one_copy(via, tmp_path):
    rng = np.random.default_rng(0)
    state = {f"layer{i}.weight": rng.standard_normal((512, 1024), np.float32) for i in range(4)}  # 8 MiB
    save(state, tmp_path / "big.safetensors")
    source = tmp_path / "big.safetensors" if via == "path" else io.BytesIO((tmp_path / "big.safetensors").read_bytes())
    load(io.BytesIO(_good()))  # warm up
    tracemalloc.start()
    try:
        out = load(source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.1 * 8 * 2**20 + 2**20
    for k, v in state.items():
        assert_same(v, out[k])
