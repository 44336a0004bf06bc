"""PyTorch checkpoints read without torch: real torch.save files (zip and legacy), bit for bit, and hostile ones
refused with LoadError before anything runs or is allocated."""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tarfile
import time
import tracemalloc
import zipfile
from collections import OrderedDict
from pathlib import Path

import hypothesis.strategies as st
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings

import jnn
from jnn.serialization import LoadError, load

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ["zip", "legacy"]
ML_VIEWS = {torch.bfloat16: ml_dtypes.bfloat16, torch.float8_e4m3fn: ml_dtypes.float8_e4m3fn,
            torch.float8_e5m2: ml_dtypes.float8_e5m2, torch.float8_e4m3fnuz: ml_dtypes.float8_e4m3fnuz,
            torch.float8_e5m2fnuz: ml_dtypes.float8_e5m2fnuz, torch.float8_e8m0fnu: ml_dtypes.float8_e8m0fnu}
REQUIRED = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.int16, torch.int32,
            torch.int64, torch.uint8, torch.bool]
EXTRA = [torch.complex64, torch.complex128, torch.uint16, torch.uint32, torch.uint64, *list(ML_VIEWS)[1:]]


def saved(obj, layout: str = "zip") -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=layout == "zip")
    return buf.getvalue()


def load_bytes(data: bytes):
    return load(io.BytesIO(data))


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """torch's own bits as numpy (ml_dtypes for bfloat16 and float8), in logical C order."""
    t = t.detach().resolve_conj().resolve_neg().contiguous()
    if t.dtype in ML_VIEWS:
        return t.view(torch.uint8 if t.element_size() == 1 else torch.int16).numpy().view(ML_VIEWS[t.dtype])
    return t.numpy()


def assert_same(expected, got) -> None:
    if isinstance(expected, torch.Tensor):
        expected = as_numpy(expected)
    assert isinstance(got, np.ndarray) and got.flags.writeable and got.flags.c_contiguous
    assert (got.dtype, got.shape) == (expected.dtype, expected.shape)
    assert got.tobytes() == expected.tobytes()


def assert_tree_same(expected, got) -> None:
    if isinstance(expected, torch.Tensor):
        assert_same(expected, got)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected)
        for k in expected:
            assert_tree_same(expected[k], got[k])
    elif isinstance(expected, (list, tuple)):
        assert type(got) is type(expected) and len(got) == len(expected)
        for a, b in zip(expected, got, strict=True):
            assert_tree_same(a, b)
    else:
        assert got == expected and type(got) is type(expected)


def random_tensor(dtype: torch.dtype, shape, seed: int = 0) -> torch.Tensor:
    """Random bit patterns (NaN payloads, infs, subnormals) of any dtype."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype == torch.bool:
        return torch.from_numpy(rng.integers(0, 2, shape).astype(bool))
    if n == 0:
        return torch.empty(shape, dtype=dtype)
    size = torch.empty((), dtype=dtype).element_size()
    return torch.frombuffer(bytearray(rng.bytes(n * size)), dtype=torch.uint8).view(dtype).reshape(shape)


# --- real models, loaded where torch cannot be imported -----------------------------------------------------


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(4, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8 * 2 * 2, 10))

    def forward(self, x):
        return self.head(self.features(x))


_CHILD = r"""
import json, sys
sys.modules["torch"] = None  # `import torch` now raises ImportError
import jax.numpy as jnp
import numpy as np
import jnn

try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("torch is importable in the child")
folder, names = sys.argv[1], sys.argv[2:]
report = {}
for name in names:
    sd = jnn.load(f"{folder}/{name}")
    report[name] = {"type": type(sd).__name__, "entries": [[k, v.dtype.name, list(v.shape)] for k, v in sd.items()]}
    np.savez(f"{folder}/{name}.bits.npz", *[np.ascontiguousarray(v).reshape(-1).view(np.uint8) for v in sd.values()])

nn = jnn
net = nn.Sequential()
net.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
net.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 2 * 2, 10))
for name in names:
    if name.startswith("cnn"):
        result = net.load_state_dict(jnn.load(f"{folder}/{name}"), strict=True)
        assert not result.missing_keys and not result.unexpected_keys
        net.eval()
        np.save(f"{folder}/{name}.out.npy", np.asarray(net(jnp.asarray(np.load(f"{folder}/x.npy")))))
report["torch_modules"] = sorted(m for m, mod in sys.modules.items() if mod is not None and m.split(".")[0] == "torch")
json.dump(report, open(f"{folder}/report.json", "w"))
"""


def test_models_round_trip_in_a_process_without_torch(tmp_path):
    torch.manual_seed(0)
    cnn = CNN()
    cnn.train()
    for _ in range(2):  # non-trivial running statistics, num_batches_tracked == 2
        cnn(torch.randn(6, 1, 8, 8) * 3 + 1)
    layer = torch.nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.0)
    models = {"cnn": cnn, "lstm": torch.nn.LSTM(8, 16, num_layers=2), "embedding": torch.nn.Embedding(50, 8),
              "transformer": torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)}
    names = []
    for name, model in models.items():
        for layout in LAYOUTS:
            names.append(f"{name}.{layout}.pt")
            (tmp_path / names[-1]).write_bytes(saved(model.state_dict(), layout))
    x = torch.randn(3, 1, 8, 8)
    np.save(tmp_path / "x.npy", x.numpy())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), *names], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["torch_modules"] == []
    for file in names:
        sd = models[file.split(".")[0]].state_dict()
        assert report[file]["type"] == "OrderedDict"
        assert report[file]["entries"] == [[k, as_numpy(v).dtype.name, list(v.shape)] for k, v in sd.items()]
        with np.load(tmp_path / f"{file}.bits.npz") as bits:
            for i, (key, value) in enumerate(sd.items()):
                assert bits[f"arr_{i}"].tobytes() == as_numpy(value).tobytes(), (file, key)
    cnn.eval()
    expected = cnn(x).detach().numpy()
    for layout in LAYOUTS:
        np.testing.assert_allclose(np.load(tmp_path / f"cnn.{layout}.pt.out.npy"), expected, rtol=1e-5, atol=1e-5)


# --- dtypes, geometry, structure ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", REQUIRED + EXTRA, ids=str)
def test_every_dtype_bit_exact(dtype, layout):
    state = OrderedDict((f"t{i}", random_tensor(dtype, shape, seed=i))
                        for i, shape in enumerate([(), (0,), (3, 0, 2), (7,), (2, 3, 5)]))
    out = load_bytes(saved(state, layout))
    assert type(out) is OrderedDict and list(out) == list(state)
    for k, v in state.items():
        assert_same(v, out[k])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_strided_offset_and_shared_storages(layout):
    a = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    bf = a.bfloat16()
    views = OrderedDict([
        ("transposed", a.t()), ("slice", a[1:5, 2:9:3]), ("row", a[4]), ("column", a[:, 7]), ("offset", a[2:, 1:]),
        ("reversed_dims", a.reshape(2, 3, 10).permute(2, 0, 1)), ("expanded", a[0, :3].unsqueeze(0).expand(4, 3)),
        ("bf_t", bf.t()[::2]), ("whole", a), ("scalar", a[3, 3]), ("empty", a[2:2]),
    ])
    data = saved(views, layout)
    out = load_bytes(data)
    for k, v in views.items():
        assert_same(v, out[k])
    if layout == "zip":  # they really were saved as views of one storage
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert sum("/data/" in n for n in zf.namelist()) == 2
    out["whole"][0, 0] = -1  # independent copies, not views of one another or of the file
    assert out["transposed"][0, 0] == 0 and out["slice"][0, 0] == 12


@pytest.mark.parametrize("layout", LAYOUTS)
def test_same_tensor_twice_stays_one_array(layout):
    w = torch.randn(3, 4)
    out = load_bytes(saved({"encoder.weight": w, "decoder.weight": w}, layout))  # tied weights
    assert out["encoder.weight"] is out["decoder.weight"]
    assert_same(w, out["decoder.weight"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nested_checkpoint(layout):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    ckpt = {"epoch": 7, "model": model.state_dict(), "optimizer": opt.state_dict(), "lr": 0.1, "name": "run",
            "history": [torch.tensor(1.5), (torch.arange(3), None, True)], "empty": {}, "shape": torch.Size([2, 3]),
            "blob": b"\x00\xffbytes", "tags": {"a", "b"}, "z": 1 + 2j, "dtype": torch.float16}
    out = load_bytes(saved(ckpt, layout))
    assert type(out) is OrderedDict and list(out) == list(ckpt)
    assert type(out["model"]) is OrderedDict
    assert out["shape"] == (2, 3) and out["dtype"] == np.float16
    assert out["blob"] == ckpt["blob"] and out["tags"] == ckpt["tags"] and out["z"] == ckpt["z"]
    for k in ("epoch", "model", "optimizer", "lr", "name", "history", "empty"):
        assert_tree_same(ckpt[k], out[k])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_parameter_and_bare_tensor_saved_directly(layout):
    p = torch.nn.Parameter(torch.randn(2, 3))
    assert_same(p, load_bytes(saved(p, layout)))
    assert_same(p.t(), load_bytes(saved(p.t(), layout)))
    out = load_bytes(saved([p, p.data.t()], layout))
    assert type(out) is list
    assert_same(p.t(), out[1])


def test_parameter_with_python_attributes():
    p = torch.nn.Parameter(torch.ones(2))
    p.note = "kept by torch, dropped by jnn"
    assert_same(p, load_bytes(saved({"p": p}))["p"])
    t = torch.zeros(3)
    t.extra = 1
    assert_same(t, load_bytes(saved({"t": t}))["t"])


def test_conj_and_neg_bits():
    z = torch.tensor([1 + 2j, -3 - 4j], dtype=torch.complex64)
    out = load_bytes(saved({"conj": z.conj(), "neg": torch._neg_view(torch.tensor([1.0, -2.0]))}))
    assert out["conj"].tolist() == [1 - 2j, -3 + 4j]
    assert out["neg"].tolist() == [-1.0, 2.0]


def test_state_dict_loads_into_jnn_model(tmp_path):
    torch_net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    torch.save(torch_net.state_dict(), tmp_path / "net.pth")
    net = jnn.Sequential(jnn.Linear(4, 3), jnn.ReLU(), jnn.Linear(3, 2))
    net.load_state_dict(jnn.load(tmp_path / "net.pth"), strict=True)
    x = torch.randn(5, 4)
    expected = torch_net(x).detach().numpy()
    np.testing.assert_allclose(np.asarray(net(jnp.asarray(x.numpy()))), expected, rtol=1e-6, atol=1e-6)


def test_torch_load_keywords_accepted(tmp_path):
    """Ported ``torch.load(path, map_location="cpu", weights_only=True)`` (and ``mmap=True``) calls jnn.load with
    torch's keywords: the same arrays as torch.load gives; jnn never runs the pickle nor maps the file, so each
    keyword's torch meaning holds."""
    state = {"w": torch.randn(2, 3), "step": torch.tensor(4)}
    torch.save(state, tmp_path / "ckpt.pt")
    for kwargs in ({"map_location": "cpu", "weights_only": True}, {"map_location": torch.device("cpu")},
                   {"weights_only": False, "mmap": True}, {"map_location": {"cuda:0": "cpu"}}):
        expected = torch.load(tmp_path / "ckpt.pt", **kwargs)
        ported = {k: jnn.ops.device("cpu") if isinstance(v, torch.device) else v for k, v in kwargs.items()}
        out = jnn.load(tmp_path / "ckpt.pt", **ported)
        for key, value in expected.items():
            assert_same(value, out[key])
    with open(tmp_path / "ckpt.pt", "rb") as fh:
        assert_same(state["w"], jnn.load(fh, "cpu", weights_only=True)["w"])  # map_location positional, as torch's
    with pytest.raises(TypeError, match="pickle_module"):
        jnn.load(tmp_path / "ckpt.pt", pickle_module=pickle)
    with pytest.raises(TypeError, match="weights_only"):
        jnn.load(tmp_path / "ckpt.pt", weights_only="yes")


def test_format_found_from_content_not_name(tmp_path):
    state = {"w": torch.randn(2, 2)}
    for name, layout in (("weights.npz", "zip"), ("weights.safetensors", "legacy"), ("weights", "zip")):
        (tmp_path / name).write_bytes(saved(state, layout))
        assert_same(state["w"], jnn.load(tmp_path / name)["w"])
        with open(tmp_path / name, "rb") as fh:  # an open file object, memory-mapped
            assert_same(state["w"], jnn.load(fh)["w"])


def test_file_object_at_an_offset_and_unseekable_stream():
    data = saved({"w": torch.arange(4.0)}, "legacy")
    buf = io.BytesIO(b"junk" + data)
    buf.seek(4)
    assert load(buf)["w"].tolist() == [0, 1, 2, 3]

    class Stream(io.RawIOBase):
        def __init__(self):
            self.inner = io.BytesIO(saved({"w": torch.arange(4.0)}))

        def readable(self):
            return True

        def readinto(self, b):
            return self.inner.readinto(b)

    assert load(Stream())["w"].tolist() == [0, 1, 2, 3]


# --- byte order ---------------------------------------------------------------------------------------------


def rezip(data: bytes, replace: dict[str, bytes | None] | None = None, *, compress: bool = False) -> bytes:
    """Copy a torch zip, replacing (or, with None, dropping) members by their name after 'archive/'."""
    replace = replace or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            short = info.filename.split("/", 1)[1]
            body = replace.get(short, src.read(info))
            if body is not None:
                dst.writestr(info.filename, body, zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
    return out.getvalue()


def test_big_endian_checkpoint_is_byteswapped():
    tensors = OrderedDict((str(dt), random_tensor(dt, (3, 4), seed=1))
                          for dt in [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int16,
                                     torch.int64, torch.uint8, torch.bool, torch.complex64, torch.uint16])
    tensors["strided"] = tensors["torch.float64"].t()[1:]
    data = saved(tensors)
    swapped = {"byteorder": b"big"}
    for i, t in enumerate(list(tensors.values())[:-1]):  # storage i belongs to tensor i
        arr = as_numpy(t)
        unit = arr.itemsize // 2 if arr.dtype.kind == "c" else arr.itemsize
        swapped[f"data/{i}"] = arr.view(f"u{unit}").byteswap().tobytes() if unit > 1 else arr.tobytes()
    big = rezip(data, swapped)
    oracle = torch.load(io.BytesIO(big), weights_only=True)  # torch agrees the file says the same thing ...
    out = load_bytes(big)
    for k, v in tensors.items():
        if k != "torch.uint16":  # ... except that torch swaps untyped (uint16/32/64) storages as bytes: not at all
            assert_same(v, as_numpy(oracle[k]))
        assert_same(v, out[k])


def test_unknown_byteorder_refused():
    with pytest.raises(LoadError, match="byteorder record is b'middle'"):
        load_bytes(rezip(saved({"w": torch.ones(2)}), {"byteorder": b"middle"}))


# --- memory ---------------------------------------------------------------------------------------------------


def traced_peak(fn) -> int:
    """Peak bytes allocated (numpy arrays included) while fn runs; jnn's readers are imported beforehand."""
    load_bytes(saved({"warm": torch.ones(1)}))
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_loading_holds_about_one_copy(layout, tmp_path):
    state = {f"layer{i}.weight": torch.randn(512, 1024) for i in range(4)}  # 8 MiB of weights
    state["t"] = state["layer0.weight"].t()
    weights = sum(v.numel() * v.element_size() for v in state.values())
    path = tmp_path / "big.pt"
    path.write_bytes(saved(state, layout))
    assert traced_peak(lambda: load(path)) < 1.1 * weights + (1 << 20)
    data = io.BytesIO(path.read_bytes())
    assert traced_peak(lambda: load(data)) < 1.1 * weights + (1 << 20)


# --- hostile pickles: refused, nothing run ------------------------------------------------------------------


def call_pickle(module: str, name: str, args: tuple, stack_global: bool = False) -> bytes:
    """A pickle that calls module.name(*args) when unpickled (GLOBAL, or protocol 4's STACK_GLOBAL)."""
    body = pickle.dumps(args, protocol=2)[2:-1]  # the args tuple's opcodes, without PROTO and STOP
    if stack_global:
        text = [s.encode() for s in (module, name)]
        head = b"\x80\x04" + b"".join(b"\x8c" + bytes([len(s)]) + s for s in text) + b"\x93"
    else:
        head = b"\x80\x02c" + f"{module}\n{name}\n".encode()
    return head + body + b"R."


def payloads(marker: Path) -> dict[str, bytes]:
    m = str(marker)
    code = f"open({m!r}, 'w').close()"
    return {
        "os.system": call_pickle("os", "system", (f"touch {m}",)),
        "posix.system": call_pickle("posix", "system", (f"touch {m}",)),
        "eval": call_pickle("builtins", "eval", (code,)),
        "builtins.exec": call_pickle("builtins", "exec", (code,)),
        "subprocess.call": call_pickle("subprocess", "call", (["touch", m],)),
        "subprocess.Popen": call_pickle("subprocess", "Popen", (["touch", m],)),
        "open": call_pickle("builtins", "open", (m, "w")),
        "stack-global-exec": call_pickle("builtins", "exec", (code,), stack_global=True),
        "stack-global-system": call_pickle("os", "system", (f"touch {m}",), stack_global=True),
        "inst-opcode": b"\x80\x02(X" + len(f"touch {m}").to_bytes(4, "little") + f"touch {m}".encode()
                       + b"ios\nsystem\n.",
        # the payload as one value of an otherwise ordinary state_dict
        "inside-state-dict": call_pickle("collections", "OrderedDict", ())[:-1] + b"X\x01\x00\x00\x00k"
                             + call_pickle("builtins", "exec", (code,))[2:-1] + b"s.",
    }


def legacy_file(main: bytes, *, magic: bytes | None = None) -> bytes:
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    head = magic if magic is not None else pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    return head + pickle.dumps(1001, protocol=2) + pickle.dumps(sys_info, protocol=2) + main \
        + pickle.dumps([], protocol=2)


def wait_for(path: Path, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.exists()


def test_payloads_are_live(tmp_path):
    """Control: plain pickle runs each payload, so the refusals below mean something."""
    marker = tmp_path / "pwned"
    for name, payload in payloads(marker).items():
        result = pickle.loads(payload)
        if hasattr(result, "wait"):
            result.wait()
        assert wait_for(marker), name
        marker.unlink()


@pytest.mark.parametrize("container", ["bare-pickle", "legacy", "legacy-magic", "zip"])
def test_malicious_pickles_refused_and_not_run(container, tmp_path):
    marker = tmp_path / "pwned"
    good = saved({"w": torch.ones(2)})
    for name, payload in payloads(marker).items():
        data = {"bare-pickle": lambda p: p, "legacy": legacy_file, "legacy-magic": lambda p: legacy_file(b"", magic=p),
                "zip": lambda p: rezip(good, {"data.pkl": p})}[container](payload)
        (tmp_path / "evil.pt").write_bytes(data)
        with pytest.raises(LoadError) as info:
            load(tmp_path / "evil.pt")
        message = str(info.value)
        if name == "inst-opcode":
            assert "opcode INST" in message
        else:
            wanted = {"eval": "builtins.eval", "open": "builtins.open", "stack-global-exec": "builtins.exec",
                      "stack-global-system": "os.system", "inside-state-dict": "builtins.exec"}.get(name, name)
            assert f"global {wanted}," in message and "nothing was executed" in message, message
    time.sleep(0.1)  # a spawned process would have had time to touch the marker
    assert not marker.exists()


def test_whole_pickled_model_refused_with_advice():
    for layout in LAYOUTS:
        with pytest.raises(LoadError, match=r"torch\.nn\.modules\.linear\.Linear.*state_dict\(\)"):
            load_bytes(saved(torch.nn.Linear(2, 2), layout))


def test_other_globals_refused():
    for module, name, args in [("numpy", "ones", (3,)), ("torch", "load", ("x",)),
                               ("torch._utils", "_rebuild_qtensor", ()),
                               ("torch.serialization", "_get_layout", ("torch.strided",)),
                               ("collections", "Counter", ()), ("builtins", "getattr", (1, "real")),
                               ("copyreg", "_reconstructor", ())]:
        with pytest.raises(LoadError, match=f"global {module}.{name}, which is refused"):
            load_bytes(rezip(saved({"w": torch.ones(1)}), {"data.pkl": call_pickle(module, name, args)}))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.save
def test_torchscript_and_tar_refused(tmp_path):
    scripted = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), scripted)
    with pytest.raises(LoadError, match="TorchScript"):
        load_bytes(scripted.getvalue())
    with tarfile.open(tmp_path / "old.tar", "w") as tar:
        tar.add(__file__, arcname="pickle")
    with pytest.raises(LoadError, match="tar archive"):
        load(tmp_path / "old.tar")


def _ops(value) -> bytes:
    return pickle.dumps(value, protocol=2)[2:-1]  # the value's opcodes, without PROTO and STOP


def _tensor_pickle(storage_id: tuple, offset: int, size: tuple, stride: tuple) -> bytes:
    """data.pkl of {'w': _rebuild_tensor_v2(<persistent storage_id>, offset, size, stride, False, OrderedDict())};
    "" in storage_id stands for the storage type torch.FloatStorage."""
    pid = b"(" + b"".join(b"ctorch\nFloatStorage\n" if v == "" else _ops(v) for v in storage_id) + b"t"
    return (b"\x80\x02}" + _ops("w") + b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + b"Q" + _ops(offset)
            + _ops(tuple(size)) + _ops(tuple(stride)) + b"\x89ccollections\nOrderedDict\n)RtRs.")


def _zip_with(pkl: bytes, storage: bytes = b"\x00" * 16) -> bytes:
    base = saved({"w": torch.zeros(4)})  # one storage, key '0', 16 bytes
    return rezip(base, {"data.pkl": pkl, "data/0": storage})


def test_hand_built_tensor_pickle_loads():
    """The builder below is right: its well-formed output loads (the cases after it differ in one thing)."""
    out = load_bytes(_zip_with(_tensor_pickle(("storage", "", "0", "cpu", 4), 1, (3,), (1,)),
                               np.arange(4, dtype=np.float32).tobytes()))
    assert out["w"].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(("pkl", "storage", "match"), [
    (("storage", "", "0", "cpu", 5), None, "holds 16 bytes; its storage needs 20"),
    (("storage", "", "0", "cpu", 2**40), None, "its storage needs 4398046511104"),
    (("storage", "", "0", "cpu", -1), None, "malformed storage id"),
    (("storage", "", "7", "cpu", 4), None, "no member 'archive/data/7'"),
    (("module", "", "0", "cpu", 4), None, "pickled nn.Module"),
    (("storage", "", "0"), None, "expected \\('storage', type, key, location, numel\\)"),
    (("storage", "", "0", "cpu", 4), b"\x00" * 8, "holds 8 bytes"),
])
def test_bad_storages_refused(pkl, storage, match):
    data = _zip_with(_tensor_pickle(pkl, 0, (4,), (1,)), *(() if storage is None else (storage,)))
    with pytest.raises(LoadError, match=match):
        load_bytes(data)


@pytest.mark.parametrize(("offset", "size", "stride", "match"), [
    (1, (4,), (1,), "reaches past the end of its storage"),
    (0, (2, 3), (3, 1), "reaches past the end"),
    (0, (2**40,), (0,), "past 8x the file's size"),
    (0, (2**20, 2**20), (0, 0), "past 8x the file's size"),
    (0, (2,) * 65, (0,) * 65, "at most 64 dims"),
    (0, (0, 2**62, 2**62), (1, 1, 1), "beyond what numpy can index"),
    (0, (4,), (-1,), "non-negative ints"),
    (0, (4, 1), (1,), "non-negative ints"),
    (-1, (4,), (1,), "non-negative ints"),
])
def test_bad_tensor_geometry_refused_without_allocating(offset, size, stride, match):
    data = _zip_with(_tensor_pickle(("storage", "", "0", "cpu", 4), offset, size, stride))
    def attempt():
        with pytest.raises(LoadError, match=match):
            load_bytes(data)

    assert traced_peak(attempt) < 1 << 20


def test_build_refused_on_tensors_storages_and_allowed_globals():
    data = _zip_with(_tensor_pickle(("storage", "", "0", "cpu", 4), 0, (4,), (1,)).replace(b"tRs.", b"tR}bs."))
    with pytest.raises(LoadError, match="set the state of tensor"):
        load_bytes(data)
    # BUILD with a slot state would setattr on the object: on a function, say its __defaults__, for later loads
    defaults = b"N" + _ops({"__defaults__": (1, 2, 3)}) + b"\x86b"  # state (None, {...}), then BUILD
    for target in (b"ctorch._utils\n_rebuild_tensor_v2\n", b"ctorch\nFloatStorage\n", b"c_codecs\nencode\n",
                   b"ctorch._tensor\n_rebuild_from_type_v2\n", b"ctorch\nfloat16\n"):
        with pytest.raises(LoadError, match="set the state of"):
            load_bytes(_zip_with(b"\x80\x02" + target + defaults + b"."))
    for target in (b"ccollections\nOrderedDict\n", b"ctorch\nSize\n", b"cbuiltins\nset\n"):
        with pytest.raises(LoadError, match="cannot set"):  # builtin types are immutable
            load_bytes(_zip_with(b"\x80\x02" + target + defaults + b"."))
    assert load_bytes(saved({"w": torch.ones(2)}))["w"].tolist() == [1, 1]


def test_refused_opcodes_and_persistent_ids():
    with pytest.raises(LoadError, match="opcode PERSID"):
        load_bytes(rezip(saved({}), {"data.pkl": b"\x80\x02P0\n."}))
    with pytest.raises(LoadError, match="opcode NEWOBJ_EX"):
        load_bytes(rezip(saved({}), {"data.pkl": b"\x80\x04ccollections\nOrderedDict\n)}\x92."}))
    for put in (b"r\xff\xff\xff\xff", b"r\x00\x00\x00\x10", b"p99999999\n"):  # memo indices out of all proportion
        def attempt(put=put):
            with pytest.raises(LoadError, match="stores memo entry"):
                load_bytes(rezip(saved({}), {"data.pkl": b"\x80\x02N" + put + b"."}))

        assert traced_peak(attempt) < 1 << 20
    with pytest.raises(LoadError, match="persistent id 'x'"):
        load_bytes(rezip(saved({}), {"data.pkl": b"\x80\x02X\x01\x00\x00\x00xQ."}))


# --- damaged files ------------------------------------------------------------------------------------------


@functools.cache
def _sample(layout: str) -> bytes:
    a = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return saved(OrderedDict([("a", a), ("t", a.t()), ("h", torch.ones(3, dtype=torch.float16)),
                              ("nested", {"b": [torch.tensor([True])]})]), layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_truncated_files_refused(layout):
    data = _sample(layout)
    for cut in sorted({1, 8, 30, 100, len(data) // 3, len(data) // 2, len(data) - 200, len(data) - 23,
                       len(data) - 1}):
        with pytest.raises(LoadError):
            load_bytes(data[:cut])


def test_corrupt_zip_members_refused():
    data = _sample("zip")
    with pytest.raises(LoadError, match="compressed"):
        load_bytes(rezip(data, compress=True))
    with pytest.raises(LoadError, match="no member 'archive/data/0'"):
        load_bytes(rezip(data, {"data/0": None}))
    with pytest.raises(LoadError, match="exactly one"):
        load_bytes(rezip(data, {"data.pkl": None}))
    flipped = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        start = zf.getinfo("archive/data/0").header_offset
    local = data[start:start + 30]  # torch pads the local header's extra field, not the central directory's
    flipped[start + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little") + 5] ^= 1
    with pytest.raises(LoadError, match="CRC"):
        load_bytes(bytes(flipped))


def test_legacy_storage_records_checked():
    data = saved({"w": torch.zeros(4)}, "legacy")  # ends with the one storage: int64 count 4, 16 bytes
    assert data[-24:-16] == (4).to_bytes(8, "little")
    for count in (5, 2**60, -1):
        with pytest.raises(LoadError, match=f"record of {count} elements"):
            load_bytes(data[:-24] + count.to_bytes(8, "little", signed=True) + data[-16:])
    with pytest.raises(LoadError, match="record of 4 elements"):
        load_bytes(data[:-1])
    with pytest.raises(LoadError, match="its magic number is 123; expected"):
        load_bytes(pickle.dumps(123, protocol=2) + data[15:])
    with pytest.raises(LoadError, match="its magic number is \\['a list'\\]"):
        load_bytes(pickle.dumps(["a list"], protocol=4))  # a plain pickle file
    with pytest.raises(LoadError, match="global numpy"):
        load_bytes(pickle.dumps({"w": np.ones(2)}, protocol=2))  # a pickle of numpy arrays: refused too


def _never_crashes(data: bytes) -> None:
    start = time.monotonic()
    tracemalloc.start()
    try:
        load_bytes(data)
    except LoadError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 64 << 20 and time.monotonic() - start < 10


MUTATIONS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=4)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=st.sampled_from(LAYOUTS), flips=MUTATIONS, cut=st.integers(0, 1 << 20))
def test_fuzz_whole_file(layout, flips, cut):
    data = bytearray(_sample(layout))
    for pos, bits in flips:
        data[pos % len(data)] ^= bits
    if cut % 4 == 0:
        del data[len(data) - cut % len(data):]
    _never_crashes(bytes(data))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=MUTATIONS, insert=st.binary(max_size=8), where=st.integers(0, 1 << 20))
def test_fuzz_pickle_inside_valid_zip(flips, insert, where):
    """Mutate data.pkl and re-zip it with a correct CRC, so the damage reaches the unpickler."""
    good = _sample("zip")
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        pkl = bytearray(zf.read("archive/data.pkl"))
    for pos, bits in flips:
        pkl[pos % len(pkl)] ^= bits
    pkl[where % len(pkl):where % len(pkl)] = insert
    _never_crashes(rezip(good, {"data.pkl": bytes(pkl)}))


# --- the documentation ----------------------------------------------------------------------------------------


def test_docs_checkpoints_example_runs(tmp_path, monkeypatch, capsys):
    text = (REPO_ROOT / "docs" / "checkpoints.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/checkpoints.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "'bn.running_mean'" in printed and "3 0.91" in printed
    theirs = safetensors.torch.load_file(tmp_path / "net.safetensors")
    ours = namespace["net"].state_dict()
    assert list(load(tmp_path / "converted.safetensors")) == list(namespace["torch_net"].state_dict())
    for k, v in theirs.items():
        np.testing.assert_array_equal(v.numpy(), np.asarray(ours[k]))
    from_jnn = torch.load(tmp_path / "from_jnn.pt", weights_only=True)  # the .pt jnn wrote, read by torch
    assert list(from_jnn) == list(ours)
    for k, v in from_jnn.items():
        np.testing.assert_array_equal(v.numpy(), np.asarray(ours[k]))


def test_hostile_values_in_messages_and_keys():
    huge = 1 << 20000  # str() of this raises in Python; the messages must not
    for pkl in (b"\x80\x02" + _ops(huge) + b".",  # a legacy "magic number" that is an enormous int
                b"\x80\x02" + _ops([[[[[[[[[[1]]]]]]]]]]) + b"."):
        with pytest.raises(LoadError, match="its magic number is"):
            load_bytes(pkl)
    with pytest.raises(LoadError, match="non-negative ints"):
        load_bytes(_zip_with(_tensor_pickle(("storage", "", "0", "cpu", 4), huge, (4,), (1,))))
    with pytest.raises(LoadError, match="malformed storage id"):
        load_bytes(_zip_with(_tensor_pickle(("storage", "", "0", "cpu", huge), 0, (4,), (1,))))
    head = b"\x80\x02}" + _ops("w")
    tensor = _tensor_pickle(("storage", "", "0", "cpu", 4), 0, (4,), (1,))[len(head):-2]  # without SETITEM, STOP
    as_key = b"\x80\x02}" + tensor + _ops(1) + b"s."  # {tensor: 1}
    with pytest.raises(LoadError, match="as a dict key or set element"):
        load_bytes(_zip_with(as_key))
