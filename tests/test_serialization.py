"""Tests for jnn.serialization: .npz state dicts, exact dtype round trips, bad files refused, atomic saves."""

import doctest
import io
import json
import os
import select
import signal
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings

import jnn.serialization as serialization
from jnn.serialization import LoadError, load, save

REPO_ROOT = Path(__file__).resolve().parents[1]
META = serialization.META_KEY

NATIVE = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
          np.uint8, np.uint16, np.uint32, np.uint64, np.bool_, np.complex64]
ML = [ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3fnuz,
      ml_dtypes.float8_e5m2fnuz, ml_dtypes.int4, ml_dtypes.uint4]
DTYPES = [np.dtype(d) for d in NATIVE + ML]
# jax without x64 keeps these exactly (64-bit types would be truncated on the way in)
JAX_DTYPES = [np.dtype(d) for d in (np.float16, ml_dtypes.bfloat16, np.float32, np.int8, np.int16, np.int32,
                                    np.uint8, np.uint16, np.uint32, np.bool_, ml_dtypes.float8_e4m3fn)]
SHAPES = [(), (0,), (3, 0, 2), (7,), (2, 3, 5)]


def random_array(rng, shape, dtype):
    """Random bit patterns (NaNs with payloads, infs, subnormals included), specials first for floats."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    arr = np.frombuffer(rng.bytes(int(np.prod(shape)) * dtype.itemsize), np.uint8).view(dtype).reshape(shape)
    arr = arr.copy()
    if dtype in (np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.uint4)):
        arr = (arr.view(np.uint8) & 0x0F).view(dtype)  # keep the values valid nibbles
    elif arr.size >= 4 and (dtype.kind in "fc" or dtype.name.startswith(("bfloat", "float"))):
        arr.flat[:4] = np.array([np.nan, -np.inf, -0.0, 1.0]).astype(dtype)
    return arr


def assert_same(expected, got):
    expected = np.asarray(expected)
    assert isinstance(got, np.ndarray)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()


def roundtrip(obj, **kw):
    buf = io.BytesIO()
    save(obj, buf, **kw)
    return load(io.BytesIO(buf.getvalue()))


# --- round trips --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("via", ["path", "bytesio"])
def test_roundtrip_every_dtype(dtype, via, tmp_path):
    rng = np.random.default_rng(0)
    state = OrderedDict((f"a{i}", random_array(rng, shape, dtype)) for i, shape in enumerate(SHAPES))
    if via == "path":
        save(state, tmp_path / "m.npz")
        out = load(tmp_path / "m.npz")
    else:
        out = roundtrip(state)
    assert type(out) is OrderedDict and list(out) == list(state)
    for k in state:
        assert_same(state[k], out[k])
        assert out[k].flags.writeable


@pytest.mark.parametrize("dtype", JAX_DTYPES, ids=str)
def test_roundtrip_jax_arrays(dtype):
    src = random_array(np.random.default_rng(1), (4, 6), dtype)
    x = jnp.asarray(src)
    assert x.dtype == dtype
    out = roundtrip({"layer.0.weight": x, "scalar": jnp.asarray(src[0, 0])})
    assert_same(src, out["layer.0.weight"])
    assert_same(src[0, 0], out["scalar"])


def test_bfloat16_values_beyond_float16():
    vals = np.array([1e30, -3e38, 1e-30, 2.0**-130, 1 / 3, np.nan], np.float32)
    with np.errstate(over="ignore"):
        assert not np.isfinite(vals[:2].astype(np.float16)).any()  # float16 could not hold these
    w = vals.astype(ml_dtypes.bfloat16)
    out = roundtrip({"w": w, "j": jnp.asarray(w)})
    for k in "wj":
        assert out[k].dtype == ml_dtypes.bfloat16
        assert out[k].view(np.uint16).tolist() == w.view(np.uint16).tolist()
        np.testing.assert_array_equal(out[k].astype(np.float32), w.astype(np.float32))


def test_layout_on_disk_is_plain_npz(tmp_path):
    w = np.array([1.0, -2.5, 3e38], ml_dtypes.bfloat16)
    b = np.arange(3, dtype=np.float32)
    save({"fc.weight": w, "fc.bias": b}, tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as zf:
        assert zf.namelist() == [META + ".npy", "fc.weight.npy", "fc.bias.npy"]
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        assert npz.files == [META, "fc.weight", "fc.bias"]
        assert_same(b, npz["fc.bias"])
        assert_same(w.view(np.uint16), npz["fc.weight"])  # raw bits
        meta = json.loads(npz[META].tobytes().decode())
    assert meta == {"format": "jnn.npz", "version": 1, "dtypes": {"fc.weight": "bfloat16"}}


def test_scalars_and_0d():
    out = roundtrip({"i": 3, "f": 2.5, "b": True, "h": np.float16(1.5), "s": np.int8(-3),
                     "bf": ml_dtypes.bfloat16(2.0), "z": np.array(7, np.uint64)})
    assert {k: (v.shape, v.dtype) for k, v in out.items()} == {
        "i": ((), np.dtype(np.int64)), "f": ((), np.float64), "b": ((), np.bool_), "h": ((), np.float16),
        "s": ((), np.int8), "bf": ((), np.dtype(ml_dtypes.bfloat16)), "z": ((), np.uint64)}
    assert out["i"] == 3 and out["f"] == 2.5 and out["b"] and out["h"] == 1.5 and out["s"] == -3
    assert out["bf"] == 2.0 and out["z"] == 7


def test_non_contiguous_and_fortran_arrays():
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    bf = a.astype(ml_dtypes.bfloat16)
    out = roundtrip({"t": a.T, "s": a[::2, 1::2], "f": np.asfortranarray(a), "bt": bf.T, "bs": bf[:, ::3]})
    for k, v in {"t": a.T, "s": a[::2, 1::2], "f": a, "bt": bf.T, "bs": bf[:, ::3]}.items():
        assert_same(v, out[k])


def test_empty_state_dict():
    out = roundtrip({})
    assert out == OrderedDict()


def test_key_order_many_keys(tmp_path):
    rng = np.random.default_rng(2)
    keys = [f"layer.{i}.{p}" for i in range(25) for p in ("weight", "bias")]
    keys = [keys[i] for i in rng.permutation(len(keys))]
    assert keys != sorted(keys)
    state = OrderedDict((k, np.full(2, i, np.int32)) for i, k in enumerate(keys))
    save(state, tmp_path / "m.npz")
    out = load(tmp_path / "m.npz")
    assert list(out) == keys
    assert [int(v[0]) for v in out.values()] == list(range(50))
    with np.load(tmp_path / "m.npz") as npz:
        assert npz.files == [META, *keys]


def test_file_objects_and_paths(tmp_path):
    state = {"w": np.arange(5, dtype=np.float64), "b": np.ones(2, ml_dtypes.bfloat16)}
    with open(tmp_path / "a.npz", "wb") as fh:
        save(state, fh)
    save(state, str(tmp_path / "b.npz"))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with open(tmp_path / "a.npz", "rb") as fh:
        out_fh = load(fh)

    class ReadOnly:  # a non-seekable stream
        def __init__(self, data):
            self._buf = io.BytesIO(data)

        def read(self, n=-1):
            return self._buf.read(n)

    out_stream = load(ReadOnly((tmp_path / "a.npz").read_bytes()))
    for out in (out_fh, out_stream, load(str(tmp_path / "b.npz"))):
        assert list(out) == ["w", "b"]
        for k in state:
            assert_same(state[k], out[k])


def test_format_is_sniffed_not_taken_from_extension(tmp_path):
    save({"w": np.ones(3, np.float32)}, tmp_path / "model.pt")
    assert_same(np.ones(3, np.float32), load(tmp_path / "model.pt")["w"])
    (tmp_path / "text.npz").write_text("hello, not a zip\n")
    with pytest.raises(LoadError, match="unrecognised file format"):
        load(tmp_path / "text.npz")


def test_same_data_same_bytes():
    state = {"w": np.arange(6, dtype=np.float32), "bf": np.ones(2, ml_dtypes.bfloat16)}
    a, b = io.BytesIO(), io.BytesIO()
    save(state, a)
    save(dict(state), b)
    assert a.getvalue() == b.getvalue()


def test_compress():
    state = {"w": np.zeros((256, 256), np.float32), "bf": np.zeros(1000, ml_dtypes.bfloat16)}
    plain, packed = io.BytesIO(), io.BytesIO()
    save(state, plain)
    save(state, packed, compress=True)
    assert len(packed.getvalue()) < len(plain.getvalue()) // 10
    with zipfile.ZipFile(io.BytesIO(packed.getvalue())) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    out = load(io.BytesIO(packed.getvalue()))
    for k in state:
        assert_same(state[k], out[k])


def test_new_file_permissions_follow_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        save({"w": np.ones(1)}, tmp_path / "m.npz")
    finally:
        os.umask(umask)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


_part = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True) | st.integers(0, 12).map(str)
STATE_KEYS = st.lists(_part, min_size=1, max_size=4).map(".".join)


@settings(max_examples=40, deadline=None)
@given(entries=st.lists(st.tuples(STATE_KEYS, st.sampled_from(DTYPES),
                                  hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
                        max_size=6, unique_by=lambda e: e[0]),
       seed=st.integers(0, 2**32 - 1), compress=st.booleans())
def test_roundtrip_property(entries, seed, compress):
    rng = np.random.default_rng(seed)
    state = OrderedDict((k, random_array(rng, shape, dt)) for k, dt, shape in entries)
    out = roundtrip(state, compress=compress)
    assert list(out) == list(state)
    for k in state:
        assert_same(state[k], out[k])


# --- files from elsewhere -----------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [np.savez, np.savez_compressed])
def test_loads_plain_numpy_savez(writer, tmp_path):
    a, b = np.arange(6, dtype=np.int16).reshape(2, 3), np.array(2.5)
    writer(tmp_path / "plain.npz", np.ones(2, np.uint8), **{"z.weight": a, "a.bias": b})
    out = load(tmp_path / "plain.npz")
    with np.load(tmp_path / "plain.npz") as npz:
        assert list(out) == npz.files == ["z.weight", "a.bias", "arr_0"]  # numpy's own member order
    assert_same(np.ones(2, np.uint8), out["arr_0"])
    assert_same(a, out["z.weight"])
    assert_same(b, out["a.bias"])


def test_loads_empty_numpy_savez(tmp_path):
    np.savez(tmp_path / "empty.npz")
    assert (tmp_path / "empty.npz").read_bytes()[:4] == b"PK\x05\x06"
    assert load(tmp_path / "empty.npz") == OrderedDict()


class _MakesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this calls open(marker, "w"): the file appears
        return (open, (self.marker, "w"))


def test_refuses_pickled_object_arrays(tmp_path):
    marker = tmp_path / "unpickled"
    evil = np.empty(1, dtype=object)
    evil[0] = _MakesMarker(str(marker))
    np.savez(tmp_path / "evil.npz", w=np.zeros(2, np.float32), evil=evil, allow_pickle=True)
    with pytest.raises(LoadError, match="evil"):
        load(tmp_path / "evil.npz")
    with pytest.raises(LoadError):
        load(io.BytesIO((tmp_path / "evil.npz").read_bytes()))
    assert not marker.exists()
    # control: the payload is live, so the check above means something
    with np.load(tmp_path / "evil.npz", allow_pickle=True) as npz:
        npz["evil"][0].close()
    assert marker.exists()


# --- corrupt content ----------------------------------------------------------------------------------------


def _good_bytes():
    buf = io.BytesIO()
    save({"w": np.arange(1000, dtype=np.float32), "b": np.ones(10, ml_dtypes.bfloat16)}, buf)
    return buf.getvalue()


@pytest.mark.parametrize("content", [
    pytest.param(lambda: _good_bytes()[: len(_good_bytes()) // 2], id="truncated-half"),
    pytest.param(lambda: _good_bytes()[:-10], id="truncated-tail"),
    pytest.param(lambda: np.random.default_rng(3).bytes(4096), id="random-bytes"),
    pytest.param(lambda: b"PK\x03\x04" + np.random.default_rng(4).bytes(4096), id="random-after-zip-magic"),
    pytest.param(lambda: b"weight = 1.0\nbias = 2.0\n", id="text"),
    pytest.param(lambda: b"", id="empty"),
])
def test_bad_content_raises_load_error(content, tmp_path):
    data = content()
    (tmp_path / "bad.npz").write_bytes(data)
    with pytest.raises(LoadError):
        load(tmp_path / "bad.npz")
    with pytest.raises(LoadError):
        load(io.BytesIO(data))


def test_flipped_data_byte_fails_crc():
    data = bytearray(_good_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the float32 member's data
    with pytest.raises(LoadError, match="CRC|corrupt"):
        load(io.BytesIO(bytes(data)))


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)),
                                                  max_size=3))
def test_damaged_files_only_ever_raise_load_error(cut, flips):
    data = bytearray(_good_bytes())
    for pos, bits in flips:
        data[pos % len(data)] ^= bits
    if cut % 3 == 0:
        del data[len(data) - cut % len(data):]
    try:
        out = load(io.BytesIO(bytes(data)))
    except LoadError:
        return
    assert list(out) == ["w", "b"]  # damage in unchecked zip fields: still the right content
    assert_same(np.arange(1000, dtype=np.float32), out["w"])


def _npz_with_meta(meta, **arrays):
    if isinstance(meta, np.ndarray):
        raw = meta
    else:
        raw = np.frombuffer(meta if isinstance(meta, bytes) else json.dumps(meta).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **{META: raw}, **arrays)
    return io.BytesIO(buf.getvalue())


def _meta(dtypes, version=1):
    return {"format": "jnn.npz", "version": version, "dtypes": dtypes}


@pytest.mark.parametrize(("meta", "arrays", "match"), [
    (_meta({"w": "bfloat17"}), {"w": np.zeros(2, np.uint16)}, "unknown dtype 'bfloat17'"),
    (_meta({"w": ["bfloat16"]}), {"w": np.zeros(2, np.uint16)}, "unknown dtype"),
    (_meta({"gone": "bfloat16"}), {"w": np.zeros(2, np.uint16)}, "'gone', which is not in the file"),
    (_meta({"w": "bfloat16"}), {"w": np.zeros(2, np.uint8)}, "cannot hold the raw bits of bfloat16"),
    (_meta({"w": "bfloat16"}), {"w": np.zeros(2, np.uint32)}, "cannot hold the raw bits"),
    (_meta({"w": "float8_e4m3fn"}), {"w": np.zeros(2, np.int8)}, "cannot hold the raw bits"),
    (_meta({"w": "bfloat16"}), {"w": np.zeros(2, np.float16)}, "cannot hold the raw bits"),
    (_meta({}, version=99), {}, "newer"),
    (b"{not json", {}, "unreadable metadata"),
    (b"\xff\xfe", {}, "unreadable metadata"),
    ({"format": "jnn.npz", "version": 1}, {}, "unreadable metadata"),
    (_meta(["w"]), {}, "unreadable metadata"),
    (np.zeros(3, np.float32), {}, "unreadable metadata"),
])
def test_bad_metadata_raises_load_error(meta, arrays, match):
    with pytest.raises(LoadError, match=match):
        load(_npz_with_meta(meta, **arrays))


def test_valid_handmade_metadata_loads():
    bits = np.array([1.0, -2.0], ml_dtypes.bfloat16).view(np.uint16)
    out = load(_npz_with_meta(_meta({"w": "bfloat16"}), w=bits.astype(">u2")))  # big-endian raw bits too
    assert out["w"].dtype == ml_dtypes.bfloat16
    assert out["w"].astype(np.float32).tolist() == [1.0, -2.0]


def test_zip_that_is_not_npz_raises_load_error():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data.pkl", b"\x80\x04N.")
    with pytest.raises(LoadError, match="not a .npy array"):
        load(io.BytesIO(buf.getvalue()))


def test_load_error_is_value_error_and_missing_file_is_not(tmp_path):
    assert issubclass(LoadError, ValueError)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")
    with pytest.raises(TypeError, match="jnn.load"):
        load(12)


# --- bad input to save --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("obj", "exc", "match"), [
    ([np.ones(2)], TypeError, "jnn.save expects a mapping"),
    (np.ones(2), TypeError, "jnn.save expects a mapping"),
    ({1: np.ones(2)}, TypeError, "jnn.save: keys must be str, got int key 1"),
    ({("a", "b"): np.ones(2)}, TypeError, r"key \('a', 'b'\)"),
    ({META: np.ones(2)}, ValueError, "jnn.save: key '.jnn_meta' is reserved"),
    ({"bad\x00key": np.ones(2)}, ValueError, "jnn.save: key 'bad"),
    ({"ok": np.ones(1), "obj": np.array([object()])}, TypeError, "jnn.save: key 'obj' has dtype object"),
    ({"none": None}, TypeError, "jnn.save: key 'none' has dtype object"),
    ({"txt": "hello"}, TypeError, "jnn.save: key 'txt' has dtype <U5"),
    ({"big": 2**80}, TypeError, "jnn.save: key 'big' has dtype object"),
    ({"rec": np.zeros(2, [("a", "f4")])}, TypeError, "jnn.save: key 'rec'"),
    ({"ragged": [[1], [1, 2]]}, TypeError, "jnn.save: value of key 'ragged'"),
])
def test_save_rejects_bad_input(obj, exc, match, tmp_path):
    with pytest.raises(exc, match=match):
        save(obj, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left behind


def test_save_rejects_bad_target():
    with pytest.raises(TypeError, match="jnn.save: f must be"):
        save({"w": np.ones(1)}, 3.5)


def test_failed_save_keeps_old_file_and_removes_temporary(tmp_path, monkeypatch):
    target = tmp_path / "m.npz"
    save({"w": np.ones(3, np.float32)}, target)
    before = target.read_bytes()
    real, calls = np.lib.format.write_array, []

    def failing(fp, arr, *args, **kwargs):
        calls.append(arr.shape)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return real(fp, arr, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        save({"a": np.zeros(100, np.float32), "b": np.zeros(100, np.float32)}, target)
    assert len(calls) == 3
    assert target.read_bytes() == before
    assert list(tmp_path.iterdir()) == [target]


_STALLING_CHILD = r"""
import sys, time
import numpy as np
import numpy.lib.format as fmt
from jnn.serialization import save

class Stall:  # let the header and the first data chunk through, then hang mid-write
    def __init__(self, fp):
        self.fp, self.n = fp, 0
    def write(self, data):
        self.fp.write(data)
        self.n += 1
        if self.n == 2:
            print("stalled", flush=True)
            time.sleep(120)
    def __getattr__(self, name):
        return getattr(self.fp, name)

real = fmt.write_array
def write_array(fp, array, *args, **kwargs):
    return real(Stall(fp) if array.nbytes > 1 << 20 else fp, array, *args, **kwargs)
fmt.write_array = write_array

save({f"layer.{i}.weight": np.full((512, 1024), i, np.float32) for i in range(4)}, sys.argv[1])
print("finished", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and select on pipes")
def test_killed_writer_leaves_previous_file(tmp_path):
    target = tmp_path / "model.npz"
    original = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, ml_dtypes.bfloat16)}
    save(original, target)
    before = target.read_bytes()
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    proc = subprocess.Popen([sys.executable, "-c", _STALLING_CHILD, str(target)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "stalled":
            proc.kill()
            pytest.fail(f"child did not stall mid-write: stdout={line!r} stderr={proc.communicate()[1]!r}")
        # the new data really is being written, next to the target, which is untouched so far
        others = [p for p in tmp_path.iterdir() if p != target]
        assert len(others) == 1 and others[0].stat().st_size > 1 << 20
        assert target.read_bytes() == before
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == before  # no half-written file took its place
    out = load(target)
    assert list(out) == ["w", "b"]
    for k in original:
        assert_same(original[k], out[k])
    with pytest.raises(LoadError):  # what the killed writer left behind is an incomplete temporary
        load(others[0])


def test_docstring_examples_run():
    result = doctest.testmod(serialization)
    assert result.attempted >= 2 and result.failed == 0


# --- allocation limits --------------------------------------------------------------------------------------


def _traced_peak(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape", [(2**40,), (2**20, 2**20, 2**8), (10**6,)])
def test_npy_header_claiming_more_than_the_member_is_refused_without_allocating(shape):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
        zf.writestr("w.npy", header.getvalue() + bytes(64))

    def attempt():
        with pytest.raises(LoadError, match=r"'w.npy' declares shape .* but holds 64 bytes"):
            load(io.BytesIO(buf.getvalue()))

    assert _traced_peak(attempt) < 1 << 20


def test_deflate_size_lie_and_overlapping_members_refused():
    good = _good_bytes()
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        infos = zf.infolist()
    # a central directory entry that claims a 1 TB uncompressed size for a small deflated member
    packed = io.BytesIO()
    save({"w": np.zeros(1000, np.float32)}, packed, compress=True)
    data = bytearray(packed.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("w.npy")
    cd = bytes(data).rindex(b"PK\x01\x02")  # the last central directory entry is w.npy's
    data[cd + 24:cd + 28] = (0xFFFFFFFE).to_bytes(4, "little")  # uncompressed size field
    with pytest.raises(LoadError, match="more than deflate can expand"):
        load(io.BytesIO(bytes(data)))
    assert info.compress_size < 1000
    # many directory entries pointing at the same member data (an overlapping-files zip bomb)
    cd_start = good.index(b"PK\x01\x02")
    entry = good[cd_start:good.index(b"PK\x01\x02", cd_start + 4)]  # first central directory entry
    n = len(infos) + 200
    end = bytearray(good[good.index(b"PK\x05\x06"):])
    end[8:10] = end[10:12] = n.to_bytes(2, "little")
    directory = good[cd_start:good.index(b"PK\x05\x06")] + entry * 200
    end[12:16] = len(directory).to_bytes(4, "little")
    bomb = good[:cd_start] + directory + bytes(end)
    with pytest.raises(LoadError, match="overlapping or lying entries"):
        load(io.BytesIO(bomb))


def test_npz_loading_holds_about_one_copy(tmp_path):
    state = {f"layer{i}.weight": np.full((512, 1024), i, np.float32) for i in range(4)}  # 8 MiB
    save(state, tmp_path / "big.npz")
    load(io.BytesIO(_good_bytes()))  # warm up
    out = []
    assert _traced_peak(lambda: out.append(load(tmp_path / "big.npz"))) < 1.1 * 8 * 2**20 + 2**20
    assert list(out[0]) == list(state)
