"""jnn.sharding: rules, placement and errors on this process's device; real multi-device training in a subprocess.

The oracle for sharded training is the same training on one device: sharding must not change the math.
The subprocess (tests/_sharding_worker.py) runs with 8 forced CPU devices, because this pytest process has
already initialised JAX with its own device count.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jnn

ROOT = pathlib.Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------
# Eight devices, in a subprocess


@pytest.fixture(scope="module")
def eight_devices() -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "_sharding_worker.py")], capture_output=True,
                            text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _trimmed(spec) -> list:
    """A spec as a list without trailing Nones (jit returns P('x') for P('x', None, None))."""
    spec = [tuple(e) if isinstance(e, list) else e for e in spec]
    while spec and spec[-1] is None:
        spec.pop()
    return spec


@pytest.mark.parametrize("mode", ["dp8", "fsdp8", "2x4"])
def test_sharded_training_gives_the_single_device_losses_and_state(eight_devices, mode):
    single, sharded = eight_devices["single"], eight_devices[mode]
    assert len(sharded["losses"]) == len(single["losses"]) == 5
    np.testing.assert_allclose(sharded["losses"], single["losses"], rtol=1e-5, atol=1e-6)
    assert single["losses"][0] != single["losses"][-1]  # it trained: the comparison is not between constants
    assert set(sharded["values"]) == set(single["values"])
    for name, value in single["values"].items():  # parameters and BatchNorm running statistics
        np.testing.assert_allclose(sharded["values"][name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    assert single["values"]["bn.num_batches_tracked"] == sharded["values"]["bn.num_batches_tracked"] == 5


def test_data_parallel_replicates_every_array_on_all_eight_devices(eight_devices):
    run = eight_devices["dp8"]
    assert run["mesh"] == {"data": 8} and run["num_shards"] == 8
    for name, shape in run["shapes"].items():
        assert _trimmed(run["specs"][name]) == [], name
        assert run["shard_shapes"][name] == [shape], name  # each device holds the whole array


def test_fsdp_rules_split_each_array_along_its_largest_divisible_dim(eight_devices):
    run = eight_devices["fsdp8"]
    rules = {pattern: spec for pattern, spec in eight_devices["fsdp8_rules"]}
    assert rules[re.escape("fc1.weight")] == [None, "data"]  # (16, 128): the 128 side
    assert rules[re.escape("conv.weight")] == ["data", None, None, None]  # (8, 1, 3, 3)
    assert re.escape("fc2.bias") not in rules  # 10 does not divide by 8: replicated
    assert re.escape("bn.num_batches_tracked") not in rules  # a scalar
    expected_shards = {
        "fc1.weight": [[16, 16]], "conv.weight": [[1, 1, 3, 3]], "bn1.running_mean": [[2]], "fc2.weight": [[10, 2]],
        "fc2.bias": [[10]], "bn.num_batches_tracked": [[]],
    }
    for name, shards in expected_shards.items():
        assert run["shard_shapes"][name] == shards, name
    for name, spec in rules.items():
        assert _trimmed(run["specs"][name.replace("\\", "")]) == _trimmed(spec), name
    assert _trimmed(run["opt_specs"]["fc1.weight"]) == [None, "data"]  # the optimizer state follows the params


def test_rules_on_a_2x4_mesh_shard_over_the_model_axis(eight_devices):
    run = eight_devices["2x4"]
    assert run["mesh"] == {"data": 2, "model": 4} and run["num_shards"] == 8
    expected = {
        "conv.weight": (["model"], [[2, 1, 3, 3]]),
        "fc1.weight": (["model"], [[4, 128]]),
        "fc2.weight": ([None, "model"], [[10, 4]]),
        "fc2.bias": ([], [[10]]),  # the earlier rule wins over "*.bias"
        "fc1.bias": (["model"], [[4]]),
        "bn1.running_var": (["model"], [[4]]),
        "bn.weight": (["model"], [[2]]),
        "bn.num_batches_tracked": ([], [[]]),
    }
    for name, (spec, shards) in expected.items():
        assert _trimmed(run["specs"][name]) == spec, name
        assert run["shard_shapes"][name] == shards, name
    assert _trimmed(run["opt_specs"]["fc2.weight"]) == [None, "model"]


def test_multi_device_misuse_names_the_array_its_shape_and_the_axis_size(eight_devices):
    errors = eight_devices["errors"]
    assert re.search(r"jnn\.sharding\.partition: cannot shard 'fc2\.weight' of shape \(10, 16\) with P\('data',\): "
                     r"dimension 0 has size 10, which does not divide by 8, the size of mesh axis 'data'",
                     errors["indivisible"])
    assert re.search(r"named_shardings: cannot shard 'fc2\.weight' of shape \(10, 16\).*does not divide by 8, the size "
                     r"of mesh axes \('data', 'model'\) together",
                     errors["indivisible_2d"])
    assert re.search(r"has 30 rows .*8 devices of mesh axis 'data'.*multiple of 8", errors["batch"])
    assert "cannot fill shape (3, -1) with 8 devices" in errors["mesh"]


def test_the_multi_device_docs_page_runs_on_eight_devices(eight_devices):
    assert eight_devices["docs"] == ""  # the docs test runs it on this process's devices; this on 8


# ---------------------------------------------------------------------------------------------------------
# Rules and placement on this process's devices


def _net() -> jnn.Module:
    jnn.manual_seed(0)
    return jnn.Sequential(jnn.Linear(4, 8), jnn.BatchNorm1d(8), jnn.ReLU(), jnn.Linear(8, 2))


def test_first_matching_rule_wins_and_unmatched_names_are_replicated():
    _, params, buffers = jnn.split(_net())
    rules = [("3.weight", P(None, "data")), ("*.weight", P("data")), (re.compile(r"\d\.bias"), None)]
    specs = jnn.sharding.partition_specs({**params, **buffers}, rules)
    assert specs == {
        "0.weight": P("data"), "0.bias": P(), "1.weight": P("data"), "1.bias": P(),
        "3.weight": P(None, "data"), "3.bias": P(), "1.running_mean": P(), "1.running_var": P(),
        "1.num_batches_tracked": P(),
    }
    # a compiled regex must match the whole name; a glob's * crosses dots
    assert jnn.sharding.partition_specs(params, [(re.compile("weight"), P("data"))])["0.weight"] == P()
    assert jnn.sharding.partition_specs(params, {"*t": P("data")})["1.weight"] == P("data")  # a dict of rules


def test_module_and_split_dicts_get_the_same_names_and_specs():
    net = _net()
    _, params, buffers = jnn.split(net)
    rules = [("*.weight", P("data"))]
    assert jnn.sharding.partition_specs(net, rules) == jnn.sharding.partition_specs({**params, **buffers}, rules)


def test_partition_places_a_module_in_place_and_keeps_tied_weights_tied():
    mesh = jnn.sharding.make_mesh()
    net = jnn.Sequential(jnn.Linear(4, 4), jnn.ReLU(), jnn.Linear(4, 4))
    net[2].weight = net[0].weight  # tied, as in PyTorch
    before = np.asarray(net[0].weight)
    placed = jnn.sharding.partition(net, mesh, [("*.weight", P(None, "data"))])
    assert placed is net
    assert net[2].weight is net[0].weight
    assert net[0].weight.sharding == NamedSharding(mesh, P(None, "data"))
    assert net[0].bias.sharding == NamedSharding(mesh, P())
    np.testing.assert_array_equal(np.asarray(net[0].weight), before)


def test_partition_of_a_dict_returns_a_new_dict_with_the_same_values():
    mesh = jnn.sharding.make_mesh()
    _, params, _ = jnn.split(_net())
    shardings = jnn.sharding.named_shardings(params, mesh, [("0.*", P("data"))])
    placed = jnn.sharding.partition(params, mesh, [("0.*", P("data"))])
    assert list(placed) == list(params)
    for name in params:
        assert placed[name].sharding == shardings[name]
        np.testing.assert_array_equal(np.asarray(placed[name]), np.asarray(params[name]))
    assert shardings["0.weight"].spec == P("data") and shardings["3.weight"].spec == P()
    jitted = jax.jit(lambda p: jax.tree.map(lambda a: a * 2, p), out_shardings=shardings)(params)
    assert all(jitted[name].sharding == shardings[name] for name in params)


def test_data_parallel_shardings_and_net_to():
    mesh = jnn.sharding.make_mesh()
    dp = jnn.sharding.data_parallel(mesh)
    assert dp.batch == NamedSharding(mesh, P("data")) and dp.params == NamedSharding(mesh, P())
    net = _net().to(dp.params)
    assert all(v.sharding == dp.params for v in net.state_dict().values())
    x = jnn.sharding.shard_batch(np.ones((4, 4), np.float32), mesh)
    assert x.sharding == dp.batch
    y = jax.jit(lambda m, x: m(x))(net.eval(), x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(_net().eval()(jnp.ones((4, 4)))), rtol=1e-6)


def test_fsdp_rules_min_size_and_scalars():
    mesh = jnn.sharding.make_mesh()
    net = _net()
    names = [pattern.pattern for pattern, _ in jnn.sharding.fsdp_rules(net, mesh, min_size=16)]
    assert names == [re.escape(n) for n in ("0.weight", "3.weight")]  # 32 and 16 elements; biases are smaller
    every = {p.pattern: spec for p, spec in jnn.sharding.fsdp_rules(net, mesh)}
    assert every[re.escape("0.weight")] == P("data", None)  # (8, 4): the larger dimension
    assert re.escape("1.num_batches_tracked") not in every


def test_make_mesh_shapes_and_axis_types():
    n = len(jax.devices())
    mesh = jnn.sharding.make_mesh((1, -1), ("model", "data"))
    assert dict(mesh.shape) == {"model": 1, "data": n}
    assert all(t == jax.sharding.AxisType.Auto for t in mesh.axis_types)
    with pytest.raises(ValueError, match=r"make_mesh: shape \(2, 3\) has 2 axes but axis_names \('data',\) has 1"):
        jnn.sharding.make_mesh((2, 3))
    with pytest.raises(ValueError, match=rf"make_mesh: shape \({n + 1},\) needs {n + 1} devices, but {n} are given"):
        jnn.sharding.make_mesh(n + 1)
    with pytest.raises(ValueError, match="at most one -1"):
        jnn.sharding.make_mesh((-1, -1), ("a", "b"))


def test_misuse_raises_clear_errors():
    mesh = jnn.sharding.make_mesh()
    _, params, _ = jnn.split(_net())
    with pytest.raises(ValueError, match=r"rule '\*\.bias' gives '0\.bias' \(shape \(8,\)\) .* 2 entries for an "
                                         r"array of 1 dimension"):
        jnn.sharding.partition_specs(params, [("*.bias", P("data", None))])
    with pytest.raises(ValueError, match=r"named_shardings \('0\.weight'\): the mesh has no axis 'model'"):
        jnn.sharding.named_shardings(params, mesh, [("0.weight", P("model"))])
    with pytest.raises(TypeError, match="expected a jax.sharding.PartitionSpec"):
        jnn.sharding.partition_specs(params, [("*", ("data",))])
    with pytest.raises(TypeError, match="glob string or a compiled re.Pattern"):
        jnn.sharding.partition_specs(params, [(3, P())])
    with pytest.raises(TypeError, match=r"\(pattern, PartitionSpec\) pair"):
        jnn.sharding.partition_specs(params, ["*"])
    with pytest.raises(TypeError, match="flat dict of arrays keyed by state_dict names.*'0.weight' is a list"):
        jnn.sharding.partition_specs({"0.weight": [1.0]}, [])
    with pytest.raises(TypeError, match="jax.sharding.Mesh"):
        jnn.sharding.partition(params, "data", [])
    with pytest.raises(ValueError, match="data_parallel: the mesh has no axis .batch."):
        jnn.sharding.data_parallel(mesh, "batch")
    explicit = jax.make_mesh((len(jax.devices()),), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
    with pytest.raises(ValueError, match=r"partition: mesh axes \('data',\) are AxisType.Explicit .*make_mesh"):
        jnn.sharding.partition(params, explicit, [])
    with pytest.raises(ValueError, match=r"shard_batch: batch entry \['t'\] is a scalar"):
        jnn.sharding.shard_batch({"x": np.ones((2, 1)), "t": np.float32(1)}, mesh)
