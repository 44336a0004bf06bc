"""``jnn.save(sd, "x.pt")`` writes PyTorch's own zip checkpoint, without torch; torch is the oracle here."""

import io
import zipfile
from collections import OrderedDict

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch

import jnn
import jnn.functional as F
from jnn.serialization import load, save

TORCH_DTYPES = {
    np.float16: torch.float16, np.float32: torch.float32, np.float64: torch.float64,
    ml_dtypes.bfloat16: torch.bfloat16, np.int8: torch.int8, np.int16: torch.int16, np.int32: torch.int32,
    np.int64: torch.int64, np.uint8: torch.uint8, np.uint16: torch.uint16, np.uint32: torch.uint32,
    np.uint64: torch.uint64, np.bool_: torch.bool, np.complex64: torch.complex64, np.complex128: torch.complex128,
    ml_dtypes.float8_e4m3fn: torch.float8_e4m3fn, ml_dtypes.float8_e5m2: torch.float8_e5m2,
    ml_dtypes.float8_e4m3fnuz: torch.float8_e4m3fnuz, ml_dtypes.float8_e5m2fnuz: torch.float8_e5m2fnuz,
    ml_dtypes.float8_e8m0fnu: torch.float8_e8m0fnu,
}
SHAPES = [(), (0,), (3, 0, 2), (7,), (2, 3, 5)]


def random_array(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    arr = np.frombuffer(rng.bytes(int(np.prod(shape)) * dtype.itemsize), np.uint8).view(dtype).reshape(shape)
    return arr.copy()


def torch_bits(t: torch.Tensor) -> bytes:
    """A tensor's elements in C order as raw bytes (any dtype)."""
    t = t.contiguous()
    if t.numel() == 0:
        return b""
    return t.reshape(-1).view(torch.uint8).numpy().tobytes()


def assert_torch_equal(arr, t: torch.Tensor):
    arr = np.asarray(arr)
    assert t.dtype == TORCH_DTYPES[arr.dtype.newbyteorder("=").type], (arr.dtype, t.dtype)
    assert tuple(t.shape) == arr.shape
    assert torch_bits(t) == np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()


@pytest.mark.parametrize("dtype", list(TORCH_DTYPES), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_torch_loads_every_dtype_and_shape(dtype, suffix, tmp_path):
    rng = np.random.default_rng(0)
    state = OrderedDict((f"a{i}", random_array(rng, shape, dtype)) for i, shape in enumerate(SHAPES))
    path = tmp_path / f"m{suffix}"
    jnn.save(state, path)
    theirs = torch.load(path, weights_only=True)
    assert type(theirs) is OrderedDict and list(theirs) == list(state)
    for k, v in state.items():
        assert_torch_equal(v, theirs[k])
    ours = load(path)
    for k, v in state.items():
        assert ours[k].dtype == v.dtype and ours[k].tobytes() == v.tobytes()
    mapped = torch.load(path, weights_only=True, mmap=True)  # needs torch's storage alignment
    for k, v in state.items():
        assert_torch_equal(v, mapped[k])


def test_non_contiguous_big_endian_and_jax_inputs(tmp_path):
    base = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    state = OrderedDict([
        ("transposed", base.transpose(2, 0, 1)), ("strided", base[::2, 1:, ::-2]), ("fortran", np.asfortranarray(base)),
        ("broadcast", np.broadcast_to(np.arange(3.0), (4, 3))), ("big_endian", base.astype(">f4")),
        ("big_int", np.arange(5, dtype=">i8")), ("big_complex", (base[0] + 1j * base[1]).astype(">c16")),
        ("jax", jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3)), ("jax_t", jnp.arange(6.0).reshape(2, 3).T),
        ("scalar", np.float64(2.5)), ("python_int", 7), ("bool0d", np.bool_(True)),
    ])
    jnn.save(state, tmp_path / "m.pt")
    theirs = torch.load(tmp_path / "m.pt", weights_only=True)
    for k, v in state.items():
        expected = np.asarray(v)
        assert_torch_equal(expected, theirs[k])
        np.testing.assert_array_equal(theirs[k].float().numpy() if expected.dtype == ml_dtypes.bfloat16
                                      else theirs[k].numpy(), expected.astype(np.float32)
                                      if expected.dtype == ml_dtypes.bfloat16 else expected)
        assert theirs[k].is_contiguous()


def test_same_array_under_two_keys_shares_one_storage(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    jnn.save({"emb.weight": w, "head.weight": w, "other": w.copy()}, tmp_path / "m.pt")
    with zipfile.ZipFile(tmp_path / "m.pt") as zf:
        assert sorted(n for n in zf.namelist() if "/data/" in n) == ["archive/data/0", "archive/data/1"]
    theirs = torch.load(tmp_path / "m.pt", weights_only=True)
    assert theirs["emb.weight"].untyped_storage().data_ptr() == theirs["head.weight"].untyped_storage().data_ptr()
    assert theirs["other"].untyped_storage().data_ptr() != theirs["emb.weight"].untyped_storage().data_ptr()


def test_layout_matches_torch_save(tmp_path):
    """The records torch.save writes, members stored, data 64-byte aligned, and a pickle torch's own
    weights-only unpickler accepts."""
    jnn.save({"w": np.ones((3, 3), np.float32), "b": np.zeros(3, ml_dtypes.bfloat16)}, tmp_path / "m.pt")
    torch.save({"w": torch.ones(3, 3)}, tmp_path / "t.pt")
    data = (tmp_path / "m.pt").read_bytes()
    with zipfile.ZipFile(tmp_path / "m.pt") as ours, zipfile.ZipFile(tmp_path / "t.pt") as theirs:
        strip = lambda names: {n.split("/", 1)[1] for n in names} - {".data/serialization_id"}  # noqa: E731
        assert strip(ours.namelist()) == strip(theirs.namelist()) | {"data/1"}
        assert ours.read("archive/version") == theirs.read("t/version")
        assert ours.read("archive/byteorder") == b"little"
        for info in ours.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            local = data[info.header_offset:info.header_offset + 30]
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") \
                + int.from_bytes(local[28:30], "little")
            assert start % 64 == 0, info.filename
    # what torch reports for unsafe globals: none
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "m.pt") == []


def test_bytesio_and_format_argument():
    buf = io.BytesIO()
    save({"w": np.arange(3.0)}, buf, format="torch")
    theirs = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    np.testing.assert_array_equal(theirs["w"].numpy(), np.arange(3.0))


def test_npz_still_written_for_other_suffixes(tmp_path):
    jnn.save({"w": np.ones(2)}, tmp_path / "m.npz")
    jnn.save({"w": np.ones(2)}, tmp_path / "m.ckpt")
    for name in ("m.npz", "m.ckpt"):
        with zipfile.ZipFile(tmp_path / name) as zf:
            assert zf.namelist() == [".jnn_meta.npy", "w.npy"]


@pytest.mark.parametrize(("value", "match"), [
    (np.ones(2, ml_dtypes.int4), "key 'w' has dtype int4, which PyTorch has no tensor type for"),
    (np.ones(2, ml_dtypes.float8_e4m3b11fnuz), "which PyTorch has no tensor type for"),
])
def test_dtypes_torch_lacks_refused(value, match, tmp_path):
    with pytest.raises(TypeError, match=match):
        jnn.save({"w": value}, tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


class JnnNet(jnn.Module):
    def __init__(self):
        super().__init__()
        self.conv = jnn.Conv2d(1, 4, 3, padding=1)
        self.bn = jnn.BatchNorm2d(4)
        self.fc = jnn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.reshape(x.shape[0], -1))


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(torch.flatten(x, 1))


def test_torch_model_loads_jnn_checkpoint_strictly(tmp_path):
    jnn.manual_seed(0)
    net = JnnNet()
    x = np.random.default_rng(0).standard_normal((6, 1, 8, 8)).astype(np.float32)
    net(jnp.asarray(x))  # a training-mode step: BatchNorm's running statistics move
    net.eval()
    jnn.save(net.state_dict(), tmp_path / "net.pt")
    torch_net = TorchNet()
    result = torch_net.load_state_dict(torch.load(tmp_path / "net.pt", weights_only=True), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    torch_net.eval()
    with torch.no_grad():
        expected = torch_net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(net(jnp.asarray(x))), expected, rtol=1e-5, atol=1e-5)
    assert int(torch_net.bn.num_batches_tracked) == 1
