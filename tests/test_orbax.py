"""jnn.sharding.save_sharded / load_sharded (orbax-checkpoint) on this process's devices.

A restored checkpoint must equal what was saved, bit for bit, with the state_dict's names, order and dtypes, and
be placed where the target says. The restore onto another mesh runs with 8 devices in tests/test_sharding.py's
subprocess and across 2 processes in tests/test_multiprocess.py.
"""

from __future__ import annotations

import jax
import ml_dtypes
import numpy as np
import pytest
import torch
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jnn

pytest.importorskip("orbax.checkpoint")


def _net() -> jnn.Module:
    jnn.manual_seed(0)
    return jnn.Sequential(jnn.Conv2d(3, 4, 3), jnn.BatchNorm2d(4), jnn.Flatten(), jnn.Linear(4 * 6 * 6, 5))


def _torch_state() -> dict[str, np.ndarray]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 5))
    net(torch.randn(2, 3, 8, 8))  # running statistics and num_batches_tracked move
    return {k: v.numpy() for k, v in net.state_dict().items()}


def test_a_torch_state_dict_round_trips_with_names_order_dtypes_and_values(tmp_path):
    state = _torch_state()
    state["extra.bf16"] = np.arange(6, dtype=np.float32).reshape(2, 3).astype(ml_dtypes.bfloat16)
    state["extra.mask"] = np.array([True, False])
    jnn.sharding.save_sharded(tmp_path / "ckpt", state)
    mesh = jnn.sharding.make_mesh()
    restored = jnn.sharding.load_sharded(tmp_path / "ckpt", mesh)
    assert list(restored) == list(state)  # state_dict order, not orbax's sorted order
    for name, value in state.items():
        assert restored[name].dtype == jax.dtypes.canonicalize_dtype(value.dtype), name  # int64: int32 without x64
        np.testing.assert_array_equal(np.asarray(restored[name]), value, err_msg=name)
        assert restored[name].sharding == NamedSharding(mesh, P()), name
    as_saved = jnn.sharding.load_sharded(tmp_path / "ckpt")
    assert list(as_saved) == list(state)
    np.testing.assert_array_equal(np.asarray(as_saved["1.running_var"]), state["1.running_var"])


def test_restoring_into_a_module_and_by_rules_matches_torch(tmp_path):
    state = _torch_state()
    jnn.sharding.save_sharded(tmp_path / "ckpt", state)
    net = jnn.sharding.load_sharded(tmp_path / "ckpt", _net())
    assert isinstance(net, jnn.Sequential)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(np.asarray(value), state[name], err_msg=name)
    # a Module saves directly too; rules place the restored arrays
    jnn.sharding.save_sharded(tmp_path / "from_module", net)
    mesh = jnn.sharding.make_mesh()
    restored = jnn.sharding.load_sharded(tmp_path / "from_module", mesh, rules=[("*.weight", P("data"))])
    assert restored["0.weight"].sharding.spec == P("data") and restored["0.bias"].sharding.spec == P()
    np.testing.assert_array_equal(np.asarray(restored["3.weight"]), state["3.weight"])


def test_targets_of_shardings_and_arrays_set_placement_and_dtype(tmp_path):
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(7, np.int64)}
    jnn.sharding.save_sharded(tmp_path / "ckpt", state)
    mesh = jnn.sharding.make_mesh()
    shardings = {"w": NamedSharding(mesh, P(None, "data")), "n": NamedSharding(mesh, P())}
    restored = jnn.sharding.load_sharded(tmp_path / "ckpt", shardings)
    assert restored["w"].sharding == shardings["w"]
    np.testing.assert_array_equal(np.asarray(restored["w"]), state["w"])
    like = {"w": jnn.sharding.partition({"w": np.zeros((2, 3), np.float16)}, mesh, [])["w"],
            "n": jnn.sharding.partition({"n": np.zeros((), np.int32)}, mesh, [])["n"]}
    restored = jnn.sharding.load_sharded(tmp_path / "ckpt", like)
    assert restored["w"].dtype == np.float16 and restored["n"].dtype == np.int32  # the target's dtypes
    np.testing.assert_array_equal(np.asarray(restored["w"]), state["w"].astype(np.float16))
    assert int(restored["n"]) == 7


def test_saving_again_replaces_the_checkpoint(tmp_path):
    jnn.sharding.save_sharded(tmp_path / "ckpt", {"a": np.zeros(2, np.float32)})
    jnn.sharding.save_sharded(tmp_path / "ckpt", {"b": np.ones(3, np.float32)})
    restored = jnn.sharding.load_sharded(tmp_path / "ckpt", jnn.sharding.make_mesh())
    assert list(restored) == ["b"]
    np.testing.assert_array_equal(np.asarray(restored["b"]), np.ones(3, np.float32))


def test_misuse_raises_clear_errors(tmp_path):
    state = {"fc.weight": np.ones((2, 3), np.float32), "fc.bias": np.zeros(2, np.float32)}
    jnn.sharding.save_sharded(tmp_path / "ckpt", state)
    mesh = jnn.sharding.make_mesh()
    one = NamedSharding(mesh, P())
    with pytest.raises(KeyError, match=r"load_sharded: .*Missing key\(s\): 'fc.scale'\. Unexpected key\(s\): "
                                       r"'fc.bias'"):
        jnn.sharding.load_sharded(tmp_path / "ckpt", {"fc.weight": one, "fc.scale": one})
    with pytest.raises(ValueError, match=r"size mismatch for 'fc.weight': the checkpoint has shape \(2, 3\), the "
                                         r"target \(3, 2\)"):
        jnn.sharding.load_sharded(tmp_path / "ckpt", {"fc.weight": jnn.sharding.partition(
            {"w": np.ones((3, 2), np.float32)}, mesh, [])["w"], "fc.bias": one})
    with pytest.raises(TypeError, match=r"target of 'fc.bias' is a ndarray; expected a jax.sharding.Sharding"):
        jnn.sharding.load_sharded(tmp_path / "ckpt", {"fc.weight": one, "fc.bias": np.zeros(2)})
    with pytest.raises(TypeError, match="target must be a Mesh, a mapping"):
        jnn.sharding.load_sharded(tmp_path / "ckpt", "replicated")
    with pytest.raises(FileNotFoundError, match="load_sharded: no checkpoint at"):
        jnn.sharding.load_sharded(tmp_path / "nothing", mesh)
    with pytest.raises(TypeError, match=r"save_sharded: keys must be non-empty state_dict names without '/', got "
                                        r"'a/b'"):
        jnn.sharding.save_sharded(tmp_path / "bad", {"a/b": np.ones(1)})
    with pytest.raises(TypeError, match=r"save_sharded: value of 'a' is a list, not an array"):
        jnn.sharding.save_sharded(tmp_path / "bad", {"a": [1.0]})
    with pytest.raises(TypeError, match=r"save_sharded: expected a state dict .* got int"):
        jnn.sharding.save_sharded(tmp_path / "bad", 3)
