"""jnn.random: the global stream draws parameters on the host (building compiles nothing), keys draw with JAX."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from scipy import stats

import jnn
import jnn as nn

ROOT = pathlib.Path(__file__).resolve().parents[1]

BUILD_EVERYTHING = """
import copy
import jnn as nn

nn.manual_seed(0)
net = nn.Sequential(
    nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.PReLU(), nn.Flatten(), nn.Linear(20, 7), nn.LayerNorm(7),
    nn.Embedding(10, 7, padding_idx=0), nn.EmbeddingBag(5, 3), nn.GroupNorm(1, 7), nn.LSTM(7, 4), nn.GRU(3, 2),
    nn.MultiheadAttention(8, 2), nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2),
    nn.ConvTranspose2d(3, 4, 2), nn.Bilinear(2, 3, 4), nn.InstanceNorm1d(3, affine=True), nn.Conv1d(2, 4, 3))
for m in net.modules():
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight)
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.xavier_uniform_(m.weight)
        nn.init.orthogonal_(m.weight)
        nn.init.zeros_(m.bias)
        nn.init.constant_(m.bias, 0.1)
    if hasattr(m, "reset_parameters"):
        m.reset_parameters()
big = nn.Linear(1100, 1000)  # 4.4 MB: its own mapped host pages
token = nn.Parameter(nn.ops.zeros(1, 1, 8))  # what model code creates in __init__
tables = [nn.ops.ones(2, 3), nn.ops.arange(5), nn.ops.arange(0, 1, 0.25), nn.ops.linspace(0, 0.1, 4), nn.ops.eye(3),
          nn.ops.tensor([[1, 2]]), nn.ops.full((2,), 0.5), nn.ops.zeros_like(big.bias), nn.ops.new_ones(big.bias, 2),
          nn.ops.logspace(0, 1, 3), nn.ops.from_numpy(__import__("numpy").ones(3))]
clone = copy.deepcopy(net)
net.load_state_dict({k: v.__array__() for k, v in clone.state_dict().items()})
x, y = nn.ops.randn(2, 3), nn.ops.rand(2, 3)
"""


def test_building_and_initialising_a_model_compiles_nothing():
    """Every layer family, the init functions, reset_parameters, deepcopy and loading numpy: no XLA program is
    compiled (a fresh process: compiled programs are cached for the life of a process)."""
    script = textwrap.dedent("""
        import logging, jax
        jax.config.update("jax_log_compiles", True)
        compiled = []
        class Record(logging.Handler):
            def emit(self, record):
                if record.getMessage().startswith("Compiling"):
                    compiled.append(record.getMessage()[:100])
        logging.getLogger("jax").addHandler(Record())
        logging.getLogger("jax").setLevel(logging.WARNING)
    """) + BUILD_EVERYTHING + "\nassert not compiled, compiled\njax.numpy.sin(x)\nassert compiled\nprint('ok')\n"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "PATH": ""})
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


@pytest.mark.parametrize("shape", [(3, 5), (0,), (1100, 1000)])
def test_host_buffers_are_adopted_by_the_cpu_device_without_a_copy(shape):
    """Small buffers aligned inside NumPy's memory, large ones (4 MiB and more) mapped pages of their own: either
    way writable, and ``jax.device_put`` shares the memory and leaves the array uncommitted."""
    from jnn._arrays import host_buffer

    buffer = host_buffer(shape, np.float32)
    buffer.fill(1.5)
    array = jax.device_put(buffer)
    assert buffer.flags.writeable and buffer.shape == shape
    assert not array.committed and float(array.sum()) == 1.5 * buffer.size
    if buffer.size:
        assert buffer.ctypes.data % 64 == 0 and array.unsafe_buffer_pointer() == buffer.ctypes.data


def test_to_device_places_as_device_put_does():
    """The eager fast path gives what ``jax.device_put`` gives (default device, uncommitted, memory adopted); a
    configured default device, a dtype JAX narrows and staging take device_put's own path."""
    from jnn._arrays import _configured_device, host_buffer, host_copy, to_device

    buffer = host_buffer((4,), np.float32)
    buffer.fill(2)
    fast = to_device(buffer)
    assert not fast.committed and fast.devices() == {jax.devices()[0]} and fast.tolist() == [2.0] * 4
    assert fast.unsafe_buffer_pointer() == buffer.ctypes.data
    target = jax.devices()[-1]
    with jax.default_device(target):
        assert _configured_device.value is target
        assert to_device(host_copy(buffer)).devices() == {target}
    wide = to_device(np.arange(3, dtype=np.int64))
    assert wide.dtype == jax.device_put(np.arange(3, dtype=np.int64)).dtype and wide.tolist() == [0, 1, 2]
    assert jax.jit(lambda: to_device(buffer) + 1)().tolist() == [3.0] * 4


def _weights(seed: int) -> list[np.ndarray]:
    jnn.manual_seed(seed)
    net = nn.Sequential(nn.Linear(5, 4), nn.Conv2d(2, 3, 3), nn.Embedding(6, 2))
    nn.init.normal_(net[0].weight)
    return [np.asarray(p) for p in net.parameters()]


def test_manual_seed_makes_building_reproducible():
    first, again, other = _weights(3), _weights(3), _weights(4)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not any(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("make, theirs", [
    (lambda: nn.Linear(300, 400).weight, lambda: torch.nn.Linear(300, 400).weight),
    (lambda: nn.Conv2d(16, 32, 5).bias, lambda: torch.nn.Conv2d(16, 32, 5).bias),
    (lambda: nn.Embedding(500, 64).weight, lambda: torch.nn.Embedding(500, 64).weight),
    (lambda: nn.MultiheadAttention(64, 4).in_proj_weight, lambda: torch.nn.MultiheadAttention(64, 4).in_proj_weight),
    (lambda: nn.LSTM(30, 50).weight_hh_l0, lambda: torch.nn.LSTM(30, 50).weight_hh_l0),
])
def test_default_inits_draw_torchs_distributions(make, theirs):
    jnn.manual_seed(0)
    torch.manual_seed(0)
    ours, reference = np.asarray(make()).ravel(), theirs().detach().numpy().ravel()
    assert stats.ks_2samp(ours, reference).pvalue > 1e-3


def test_trunc_normal_far_in_a_tail_stays_in_bounds():
    jnn.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nn.init.NotInPlaceWarning)
        warnings.simplefilter("ignore", UserWarning)  # torch: "mean is more than 2 std from [a, b]"
        w = np.asarray(nn.init.trunc_normal_(jnp.empty((200, 50)), mean=0.0, std=1.0, a=2.5, b=3.0))
        theirs = torch.nn.init.trunc_normal_(torch.empty(200, 50), mean=0.0, std=1.0, a=2.5, b=3.0).numpy()
    assert w.min() >= 2.5 and w.max() <= 3.0
    assert stats.ks_2samp(w.ravel(), theirs.ravel()).pvalue > 1e-3


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, torch.float16])
def test_host_draws_in_narrow_dtypes(dtype):
    layer = nn.Linear(64, 32, dtype=dtype)
    assert layer.weight.dtype == (jnp.float16 if dtype is torch.float16 else dtype)
    w = np.asarray(layer.weight, np.float32)
    assert 0 < np.abs(w).max() <= 1 / 8 and np.unique(w).size > 100


def test_the_global_stream_refuses_to_advance_where_code_is_staged():
    with pytest.raises(jnn.random.MissingKeyError, match="fork"):
        jax.eval_shape(lambda: nn.Linear(3, 2).weight)
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(lambda x: x + nn.ops.randn(3))(jnp.ones(3))
    # with a key it works, and gives the same values under jit as eagerly
    shape = jax.eval_shape(lambda k: nn.Linear(3, 2, key=k).weight, jax.random.key(0)).shape
    assert shape == (2, 3)
    with jnn.random.fork(jax.random.key(1)):
        eager = nn.ops.randn(4)
    np.testing.assert_array_equal(jax.jit(lambda k: _forked_randn(k))(jax.random.key(1)), eager)


def _forked_randn(key: jax.Array) -> jax.Array:
    with jnn.random.fork(key):
        return nn.ops.randn(4)


def test_layers_built_under_grad_and_vmap_draw_eagerly():
    """grad and vmap evaluate eagerly: a lazy layer materialised in a loss under jax.grad draws from the stream."""
    def loss(x):
        return nn.Linear(3, 1)(x).sum()

    jnn.manual_seed(0)
    g = jax.grad(loss)(jnp.ones(3))
    jnn.manual_seed(0)
    np.testing.assert_allclose(g, np.asarray(nn.Linear(3, 1).weight)[0], rtol=1e-6)


@pytest.mark.parametrize("std, a, b", [(0.02, -2.0, 2.0), (1.0, -2.0, 2.0), (1.0, -0.5, 3.0)])
def test_trunc_normal_from_the_global_stream_matches_torch(std, a, b):
    """Bounds beyond the reach of a float32 Box-Muller draw (std 0.02, torch's ViT/ConvNeXt init) skip rejection."""
    jnn.manual_seed(0)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nn.init.NotInPlaceWarning)
        ours = np.asarray(nn.init.trunc_normal_(jnp.empty((300, 200)), std=std, a=a, b=b)).ravel()
    theirs = torch.nn.init.trunc_normal_(torch.empty(300, 200), std=std, a=a, b=b).numpy().ravel()
    assert ours.min() >= a and ours.max() <= b
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
