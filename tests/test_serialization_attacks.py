"""Regression tests for the adversarial findings of issue 13: each reproduces the original attack or race.

Crashes (SIGBUS, SIGSEGV) are reproduced in a subprocess, which must exit normally after a clean ``LoadError``.
"""

import io
import os
import pickle
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
import zipfile
from collections import OrderedDict
from pathlib import Path

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch

import jnn
from jnn.serialization import LoadError, load, save

REPO_ROOT = Path(__file__).resolve().parents[1]
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, permissions and ownership")


def run_child(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    """A copy of zip ``data`` with the members whose name ends with a key of ``replace`` replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = next((v for k, v in replace.items() if info.filename.endswith("/" + k)), src.read(info))
            dst.writestr(info.filename, body)
    return out.getvalue()


def torch_saved(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


# --- a file that shrinks while it is read: SIGBUS with a memory map ----------------------------------------


class TruncatingFile(io.FileIO):
    """A file that truncates itself to ``keep`` bytes once more than ``after`` bytes have been asked of it."""

    def __init__(self, path, after: int, keep: int):
        super().__init__(path, "rb")
        self.path, self.after, self.keep, self.asked = path, after, keep, 0

    def _asked(self, n):
        self.asked += n
        if self.asked > self.after and self.keep is not None:
            os.truncate(self.path, self.keep)
            self.keep = None

    def read(self, n=-1):
        self._asked(n if n is not None and n >= 0 else os.fstat(self.fileno()).st_size - self.tell())
        return super().read(n)

    def readinto(self, b):
        self._asked(len(b))
        return super().readinto(b)


def big_state() -> OrderedDict:
    return OrderedDict((f"layer{i}.weight", np.full((256, 1024), i, np.float32)) for i in range(4))


@pytest.mark.parametrize("fmt", ["safetensors", "torch", "legacy"])
def test_file_truncated_while_read_raises(fmt, tmp_path):
    path = tmp_path / "m.bin"
    if fmt == "legacy":
        torch.save({k: torch.from_numpy(v) for k, v in big_state().items()}, path,
                   _use_new_zipfile_serialization=False)
    else:
        save(big_state(), path, format=fmt)
    size = path.stat().st_size
    with TruncatingFile(path, after=size // 3, keep=size // 2) as fh, \
            pytest.raises(LoadError, match="changed or truncated while being read|truncated"):
        load(fh)


_RACE_CHILD = """
import os, sys, threading, time
import numpy as np
from jnn.serialization import LoadError, load, save

path, fmt = sys.argv[1], sys.argv[2]
state = {f"layer{i}.weight": np.full((512, 1024), i, np.float32) for i in range(8)}  # 16 MiB
outcomes = {"loaded": 0, "refused": 0}
for attempt in range(8):
    save(state, path, format=fmt)
    size = os.path.getsize(path)
    shrink = threading.Timer(0.002 * attempt, os.truncate, (path, size // 3))
    shrink.start()
    try:
        load(path)
        outcomes["loaded"] += 1
    except LoadError:
        outcomes["refused"] += 1
    shrink.join()
print(outcomes)
"""


@POSIX
@pytest.mark.parametrize("fmt", ["safetensors", "torch"])
def test_file_shrinking_during_load_never_kills_the_process(fmt, tmp_path):
    """The race of the report (7 of 8 runs died of SIGBUS): another process truncates the file mid-load."""
    result = run_child(_RACE_CHILD, str(tmp_path / "m.bin"), fmt)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])  # -7 would be SIGBUS
    assert "'refused'" in result.stdout


def test_load_never_memory_maps(tmp_path, monkeypatch):
    import mmap

    def refuse(*args, **kwargs):
        raise AssertionError("jnn.load memory-mapped the file")

    monkeypatch.setattr(mmap, "mmap", refuse)
    for fmt in ("safetensors", "torch", "npz"):
        save(big_state(), tmp_path / "m", format=fmt)
        assert list(load(tmp_path / "m")) == list(big_state())


# --- deeply nested pickles: SIGSEGV -------------------------------------------------------------------------

_DEEP_CHILD = """
import io, pickle, sys, zipfile
from jnn.serialization import LoadError, load

def torch_zip(pkl):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", b"little")
        zf.writestr("archive/version", b"3\\n")
    return buf.getvalue()

n = 300_000
deep_value = b"\\x80\\x02" + b")" + b"\\x85" * n + b"."                             # ((((),),),...)
deep_key = b"\\x80\\x02}" + b")" + b"\\x85" * n + b"K\\x01s."                        # {deep tuple: 1}
# lists nested by mutation through the memo: l0 = []; l1 = []; l0.append(l1); l2 = []; l1.append(l2) ...
chain = [b"\\x80\\x02]q\\x000"]
for i in range(1, 5000):
    chain.append(b"]r" + i.to_bytes(4, "little") + b"0")
    chain.append(b"j" + (i - 1).to_bytes(4, "little") + b"j" + i.to_bytes(4, "little") + b"a0")
chain.append(b"j" + (0).to_bytes(4, "little") + b".")
legacy_head = (pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
               + pickle.dumps({}, protocol=2))
cases = {"zip value": torch_zip(deep_value), "zip key": torch_zip(deep_key),
         "legacy value": legacy_head + deep_value + pickle.dumps([], protocol=2),
         "mutation chain": torch_zip(b"".join(chain))}
for name, data in cases.items():
    try:
        load(io.BytesIO(data))
        print(name, "LOADED")
    except LoadError as e:
        print(name, "refused:", str(e)[:200])
"""


@POSIX
def test_deeply_nested_pickle_refused_without_crashing():
    result = run_child(_DEEP_CHILD)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])  # -11 would be SIGSEGV
    lines = dict(line.split(" refused: ", 1) if " refused: " in line else (line, "") for line in
                 result.stdout.splitlines())
    assert set(lines) == {"zip value", "zip key", "legacy value", "mutation chain"}, result.stdout
    for name in ("zip value", "zip key", "legacy value"):
        assert "levels deep" in lines[name], result.stdout
    assert "nests" in lines["mutation chain"], result.stdout


def test_nesting_bound_allows_real_checkpoints():
    from jnn.serialization._pickle import MAX_DEPTH

    deep = torch.ones(2)
    for _ in range((MAX_DEPTH - 10) // 2):  # a tensor's rebuild takes a few levels
        deep = {"x": [deep]}
    out = load(io.BytesIO(torch_saved(deep)))
    for _ in range((MAX_DEPTH - 10) // 2):
        out = out["x"][0]
    np.testing.assert_array_equal(out, np.ones(2, np.float32))
    too_deep = ()
    for _ in range(MAX_DEPTH + 1):
        too_deep = (too_deep,)
    with pytest.raises(LoadError, match=f"more than {MAX_DEPTH} levels deep"):
        load(io.BytesIO(torch_saved({"t": too_deep})))


# --- deflate bombs ------------------------------------------------------------------------------------------


def deflate_bomb(nbytes: int) -> bytes:
    """An npz holding ``nbytes`` of float32 zeros, deflated (about 1000:1)."""
    buf = io.BytesIO()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (nbytes // 4,)})
    info = zipfile.ZipInfo("w.npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w") as zf, zf.open(info, "w", force_zip64=True) as member:
        member.write(header.getvalue())
        chunk = bytes(1 << 22)
        for _ in range(nbytes // len(chunk)):
            member.write(chunk)
    return buf.getvalue()


def test_deflate_bomb_refused_before_inflating():
    data = deflate_bomb(256 << 20)  # 256 MiB of zeros in ~250 KiB: past 8x the file plus 64 MiB
    assert len(data) < 1 << 20
    errors = []

    def attempt():
        with pytest.raises(LoadError, match="inflate to .* past jnn's bound of 8x the file's size plus 64 MiB") as e:
            load(io.BytesIO(data))
        errors.append(e)

    assert peak_bytes(attempt) < 4 << 20  # nothing was inflated
    assert errors


def test_compressed_npz_within_the_bound_loads():
    state = {"w": np.zeros((1024, 1024), np.float32), "b": np.arange(10.0)}  # 4 MiB deflating to ~4 KiB
    buf = io.BytesIO()
    save(state, buf, compress=True)
    assert len(buf.getvalue()) < 64 << 10
    out = load(io.BytesIO(buf.getvalue()))
    np.testing.assert_array_equal(out["w"], state["w"])


def test_member_inflating_past_its_declared_size_is_cut_off():
    """A central directory that under-declares a member: inflating stops at the declared size (then fails)."""
    data = bytearray(deflate_bomb(64 << 20))
    cd = bytes(data).rindex(b"PK\x01\x02")
    if data[cd + 24:cd + 28] == b"\xff" * 4:  # the sizes live in the zip64 extra field
        at = cd + 46 + int.from_bytes(data[cd + 28:cd + 30], "little") + 4
        data[at:at + 8] = (1 << 20).to_bytes(8, "little")
    else:
        data[cd + 24:cd + 28] = (1 << 20).to_bytes(4, "little")  # claims 1 MiB uncompressed

    def attempt():
        with pytest.raises(LoadError):
            load(io.BytesIO(bytes(data)))

    assert peak_bytes(attempt) < 8 << 20


# --- saving: permissions, read-only targets, temporaries ----------------------------------------------------


@POSIX
@pytest.mark.parametrize("fmt", ["npz", "safetensors", "torch"])
def test_save_keeps_permissions(fmt, tmp_path):
    target = tmp_path / "m.ckpt"
    save({"w": np.ones(2)}, target, format=fmt)
    for mode in (0o600, 0o640, 0o755):
        os.chmod(target, mode)
        save({"w": np.zeros(3)}, target, format=fmt)
        assert stat.S_IMODE(target.stat().st_mode) == mode
        np.testing.assert_array_equal(load(target)["w"], np.zeros(3))
    oracle = tmp_path / "t.pt"  # torch.save keeps them too (it writes in place)
    torch.save({}, oracle)
    os.chmod(oracle, 0o600)
    torch.save({"w": torch.ones(1)}, oracle)
    assert stat.S_IMODE(oracle.stat().st_mode) == 0o600


@POSIX
def test_save_through_a_symlink_writes_its_target(tmp_path):
    real = tmp_path / "real.npz"
    save({"w": np.ones(2)}, real)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    save({"w": np.zeros(2)}, link)
    assert link.is_symlink()
    np.testing.assert_array_equal(load(real)["w"], np.zeros(2))


_READ_ONLY_CHILD = """
import os, sys
import numpy as np, torch
import jnn
folder = sys.argv[1]
target, locked = os.path.join(folder, "m.npz"), os.path.join(folder, "locked")
for warm in ("w.npz", "w.pt", "w.safetensors"):  # import what saving imports lazily, while still root
    torch.save({"w": torch.zeros(2)}, os.path.join(folder, warm))
    jnn.save({"w": np.zeros(2)}, os.path.join(folder, warm))
    os.unlink(os.path.join(folder, warm))
os.setgid(65534)
os.setuid(65534)  # from here on an ordinary user, as most users are
for what, path in (("file", target), ("folder", os.path.join(locked, "m.pt"))):
    for name, save in (("torch", lambda p: torch.save({"w": torch.zeros(2)}, p)),
                       ("jnn", lambda p: jnn.save({"w": np.zeros(2)}, p))):
        try:
            save(path)
            print(what, name, "saved")
        except Exception as e:  # torch.save raises RuntimeError ("open file failed ... Permission denied")
            print(what, name, type(e).__name__, getattr(e, "filename", None), "|", " ".join(str(e).split()))
"""


@POSIX
@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="drops root to test an ordinary user")
def test_read_only_target_and_folder_refused_like_torch_save():
    folder = tempfile.mkdtemp(prefix="jnn-ro-")
    try:
        os.chmod(folder, 0o777)
        target = os.path.join(folder, "m.npz")
        save({"w": np.ones(2)}, target)
        os.chown(target, 65534, 65534)
        os.chmod(target, 0o444)
        os.mkdir(os.path.join(folder, "locked"), 0o555)
        before = Path(target).read_bytes()
        result = run_child(_READ_ONLY_CHILD, folder)
        assert result.returncode == 0, result.stderr[-2000:]
        out = result.stdout.splitlines()
        assert len(out) == 4, result.stdout
        # torch.save refuses both (RuntimeError: "Permission denied"); jnn raises PermissionError as open() does,
        # naming the target, never the temporary
        for what, name in (("file", "m.npz"), ("folder", "m.pt")):
            ours = next(line for line in out if line.startswith(f"{what} jnn"))
            theirs = next(line for line in out if line.startswith(f"{what} torch"))
            assert "Permission denied" in theirs and ours.split()[2] == "PermissionError", out
            assert ours.split()[3].endswith(name) and "jnn-tmp" not in ours, ours
        assert Path(target).read_bytes() == before
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o444
        assert sorted(os.listdir(folder)) == ["locked", "m.npz"]
    finally:
        for root, dirs, files in os.walk(folder, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                os.rmdir(os.path.join(root, name))
        os.rmdir(folder)


def test_read_only_target_refused(tmp_path, monkeypatch):
    """As an ordinary user (``os.access`` says no), a 0444 checkpoint is refused, not silently replaced."""
    target = tmp_path / "m.npz"
    save({"w": np.ones(2)}, target)
    before = target.read_bytes()
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False)
    with pytest.raises(PermissionError, match="read-only") as e:
        save({"w": np.zeros(2)}, target)
    assert e.value.filename == str(target)
    assert target.read_bytes() == before


def test_missing_folder_error_names_the_target(tmp_path):
    target = tmp_path / "no" / "such" / "m.npz"
    with pytest.raises(FileNotFoundError) as e:
        save({"w": np.ones(2)}, target)
    assert e.value.filename == str(target) and "jnn-tmp" not in str(e.value)


_STALL_CHILD = """
import os, sys, time
import numpy as np
import numpy.lib.format as fmt
from jnn.serialization import save

real = fmt.write_array
def write_array(fp, array, *args, **kwargs):
    real(fp, array, *args, **kwargs)
    if array.nbytes > 1 << 20:
        print("stalled", flush=True)
        time.sleep(120)
fmt.write_array = write_array
save({"w": np.zeros((1024, 1024), np.float32)}, sys.argv[1])
"""


@POSIX
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_killed_save_leaves_no_temporary_behind(sig, tmp_path):
    target = tmp_path / "m.npz"
    save({"w": np.ones(2)}, target)
    before = target.read_bytes()
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-c", _STALL_CHILD, str(target)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=path))
    try:
        assert proc.stdout.readline().strip() == "stalled", proc.stderr.read()[-2000:]
        temporaries = [p for p in tmp_path.iterdir() if p != target]
        assert len(temporaries) == 1 and temporaries[0].name.startswith(".m.npz.")
        assert temporaries[0].stat().st_size > 1 << 20
        proc.send_signal(sig)
        proc.wait(timeout=120)  # a loaded 2-core machine: the interpreter's exit (JAX's atexit) can take long
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -sig  # the process still dies of the signal
    assert target.read_bytes() == before
    left = [p for p in tmp_path.iterdir() if p != target]
    assert left == ([] if sig != signal.SIGKILL else temporaries)  # SIGTERM/SIGHUP: removed at once
    save({"w": np.zeros(2)}, target)  # SIGKILL: the next save to the target removes the dead one's temporary
    assert list(tmp_path.iterdir()) == [target]


def test_next_save_keeps_temporaries_of_live_processes_and_other_files(tmp_path):
    target = tmp_path / "m.npz"
    host = __import__("jnn.serialization._common", fromlist=["_host"])._host()
    live = tmp_path / f".m.npz.{host}-{os.getppid()}-0123456789ab.jnn-tmp"  # a running process: kept
    other_host = tmp_path / ".m.npz.elsewhere-1-0123456789ab.jnn-tmp"  # another machine's: kept
    unrelated = tmp_path / ".m.npz.notes"
    for p in (live, other_host, unrelated):
        p.write_bytes(b"x")
    save({"w": np.ones(2)}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, other_host.name, unrelated.name, target.name])


# --- a BUILD that hides an OrderedDict's entries ------------------------------------------------------------


def test_build_setting_items_keeps_the_entries_like_torch(tmp_path):
    sd = torch.nn.Linear(3, 2).state_dict()
    data = torch_saved(sd)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        pkl = zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))
    assert pkl.endswith(b"b.")  # torch's state_dict pickle ends with BUILD (its _metadata), STOP
    # a second BUILD setting the attribute "items" (to a callable giving an empty mapping) on the OrderedDict
    crafted = pkl[:-1] + b"}X\x05\x00\x00\x00itemsccollections\nOrderedDict\nsb."
    path = tmp_path / "crafted.pt"
    path.write_bytes(rezip(data, {"data.pkl": crafted}))
    theirs = torch.load(path, weights_only=True)
    ours = load(path)
    assert list(ours) == list(dict.keys(theirs)) == ["weight", "bias"]
    for k in ours:
        np.testing.assert_array_equal(ours[k], theirs[k].numpy())
    assert "items" not in vars(ours)


# --- long keys ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["npz", "safetensors", "torch"])
def test_70000_character_key(fmt, tmp_path):
    long_key = "k" * 70_000
    state = OrderedDict([("a", np.ones(2, np.float32)), (long_key, np.arange(3, dtype=np.int32)),
                         ("b" * 65_531, np.zeros(1, ml_dtypes.bfloat16)), ("é" * 40_000, np.ones(1))])
    save(state, tmp_path / "m", format=fmt)
    out = load(tmp_path / "m")
    assert list(out) == list(state)
    for k, v in state.items():
        assert out[k].dtype == v.dtype
        np.testing.assert_array_equal(out[k], v)
    if fmt == "torch":
        theirs = torch.load(tmp_path / "m", weights_only=True)
        assert list(theirs) == list(state)


def test_long_key_npz_is_version_2_and_refused_by_version_1_readers(tmp_path):
    save({"k" * 70_000: np.ones(1)}, tmp_path / "long.npz")
    save({"short": np.ones(1)}, tmp_path / "short.npz")
    meta = {}
    for name in ("long", "short"):
        with np.load(tmp_path / f"{name}.npz") as f:
            meta[name] = __import__("json").loads(f[".jnn_meta"].tobytes())
    assert meta["long"]["version"] == 2 and meta["long"]["keys"] == {".jnn_meta.key0": "k" * 70_000}
    assert meta["short"]["version"] == 1 and "keys" not in meta["short"]
    with pytest.raises(ValueError, match="reserved for jnn's metadata"):
        save({".jnn_meta.key0": np.ones(1)}, io.BytesIO())


# --- torch.save of JAX arrays -------------------------------------------------------------------------------


def jax_state():
    return {"fc.weight": jnp.arange(6.0).reshape(2, 3), "fc.bias": jnp.ones(2, jnp.bfloat16),
            "mask": jnp.array([True, False]), "step": jnp.array(7, jnp.int32), "empty": jnp.zeros((0, 3)),
            "t": jnp.arange(6.0).reshape(2, 3).T}


@pytest.mark.parametrize("protocol", [2, 4])
def test_torch_saved_jax_arrays_load(protocol, tmp_path):
    state = jax_state()
    torch.save(state, tmp_path / "m.pt", pickle_protocol=protocol)
    torch.save({"model": state, "epoch": 3}, tmp_path / "c.pt", pickle_protocol=protocol)
    out = load(tmp_path / "m.pt")
    checkpoint = load(tmp_path / "c.pt")
    assert checkpoint["epoch"] == 3
    for got in (out, checkpoint["model"]):
        assert list(got) == list(state)
        for k, v in state.items():
            expected = np.asarray(v)
            assert isinstance(got[k], np.ndarray) and got[k].dtype == expected.dtype
            assert got[k].shape == expected.shape and got[k].flags.c_contiguous and got[k].flags.writeable
            assert got[k].tobytes() == expected.tobytes()
    net = jnn.Linear(3, 2)
    net.load_state_dict({"weight": out["fc.weight"], "bias": out["fc.bias"].astype(np.float32)})
    np.testing.assert_array_equal(np.asarray(net.weight), np.asarray(state["fc.weight"]))


def jax_pickle(value) -> bytes:
    return pickle.dumps({"w": value}, protocol=2)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda p: p.replace(b"jax._src.array\n_reconstruct_array", b"jax._src.array\n_reconstruct_arrax"),
     "global jax._src.array._reconstruct_arrax"),
    (lambda p: p.replace(b"X\x02\x00\x00\x00f4", b"X\x02\x00\x00\x00O8"), "only plain numeric dtypes"),
    (lambda p: p.replace(b"X\x02\x00\x00\x00f4", b"X\x02\x00\x00\x00f8"), "with 12 bytes of data"),
    (lambda p: p.replace(b"numpy\nndarray", b"numpy\nmatrix\n"[:-1]), "global numpy.matrix"),
    (lambda p: p.replace(b"cjax._src.array\n_reconstruct_array\n", b"cnumpy._core.multiarray\n_reconstruct\n"),
     "global numpy._core.multiarray._reconstruct"),
])
def test_hostile_jax_array_pickles_refused(edit, match):
    pkl = jax_pickle(jnp.arange(3.0))
    assert edit(pkl) != pkl
    legacy_head = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2) \
        + pickle.dumps({}, protocol=2)
    with pytest.raises(LoadError, match=match):
        load(io.BytesIO(legacy_head + edit(pkl) + pickle.dumps([], protocol=2)))
