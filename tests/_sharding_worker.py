"""Multi-device half of tests/test_sharding.py: run as a script with 8 forced CPU devices, print JSON.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu python tests/_sharding_worker.py

Trains the same small CNN (BatchNorm and Dropout included) for a few steps on one device, data-parallel on a
mesh of 8, fully sharded (fsdp_rules) on a mesh of 8, and on a 2x4 (data x model) mesh with parameters
sharded by name rules; reports the losses, parameter and buffer values, and how each array is sharded.
Importing this file does nothing (pytest's --doctest-modules imports every file under tests/).
"""

from __future__ import annotations

import json
import sys

STEPS = 5
BATCH = 32


def main() -> None:
    import jax
    import numpy as np
    import optax
    from jax.sharding import PartitionSpec as P

    import jnn
    import jnn as nn
    import jnn.functional as F

    if len(jax.devices()) != 8:
        raise SystemExit(f"expected 8 devices, got {jax.devices()}")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.drop = nn.Dropout(0.2)
            self.fc1 = nn.Linear(8 * 4 * 4, 16)
            self.bn1 = nn.BatchNorm1d(16)
            self.fc2 = nn.Linear(16, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
            x = self.drop(x.reshape(x.shape[0], -1))
            return self.fc2(F.relu(self.bn1(self.fc1(x))))

    rng = np.random.default_rng(0)
    xs = rng.standard_normal((STEPS, BATCH, 1, 8, 8)).astype(np.float32)
    ys = rng.integers(0, 10, (STEPS, BATCH)).astype(np.int32)

    def fresh():
        jnn.manual_seed(0)
        return Net()

    def train(net, mesh=None, rules=None, place="module", keep=False):
        """``place``: 'module' shards the Module in place; 'dict' shards the split params/buffers dicts."""
        if mesh is not None and place == "module":
            jnn.sharding.partition(net, mesh, rules)
        apply, params, buffers = jnn.split(net)
        if mesh is not None and place == "dict":
            params = jnn.sharding.partition(params, mesh, rules)
            buffers = jnn.sharding.partition(buffers, mesh, rules)
        optimizer = optax.sgd(0.1, momentum=0.9)
        opt_state = optimizer.init(params)

        def loss_fn(params, buffers, x, y, key):
            logits, buffers = apply(params, buffers, x, train=True, key=key)
            return F.cross_entropy(logits, y), buffers

        @jax.jit
        def step(params, opt_state, buffers, x, y, key):
            (loss, buffers), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, buffers, x, y, key)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, buffers, loss

        losses = []
        for i in range(STEPS):
            x, y = xs[i], ys[i]
            if mesh is not None:
                x, y = jnn.sharding.shard_batch((x, y), mesh)
            params, opt_state, buffers, loss = step(params, opt_state, buffers, x, y, jax.random.key(i))
            losses.append(float(loss))
        out = {
            "losses": losses,
            "values": {k: np.asarray(v).tolist() for k, v in {**params, **buffers}.items()},
            "specs": {},
            "shard_shapes": {},
            "shapes": {k: list(v.shape) for k, v in {**params, **buffers}.items()},
            "opt_specs": {},
        }
        if mesh is not None:
            for k, v in {**params, **buffers}.items():
                out["specs"][k] = [list(e) if isinstance(e, tuple) else e for e in v.sharding.spec]
                out["shard_shapes"][k] = sorted({tuple(s.data.shape) for s in v.addressable_shards})
                out["num_shards"] = len(v.addressable_shards)
            trace = opt_state[0].trace
            out["opt_specs"] = {k: [e for e in v.sharding.spec] for k, v in trace.items()}
            out["mesh"] = dict(mesh.shape)
        return out

    results = {"single": train(fresh())}

    data8 = jnn.sharding.make_mesh()  # (8,) "data"
    dp = jnn.sharding.data_parallel(data8)
    results["dp8"] = train(fresh().to(dp.params), data8, [], place="module")

    net = fresh()
    results["fsdp8_rules"] = [[r.pattern, list(s)] for r, s in jnn.sharding.fsdp_rules(net, data8)]
    results["fsdp8"] = train(net, data8, jnn.sharding.fsdp_rules(net, data8), place="dict")

    mesh2x4 = jnn.sharding.make_mesh((2, 4), ("data", "model"))
    rules = [
        ("conv.weight", P("model", None, None, None)),
        ("fc1.weight", P("model", None)),
        ("fc2.weight", P(None, "model")),
        ("bn*.running_*", P("model")),
        ("bn*.weight", P("model")),
        ("*.bias", P("model")),  # fc2.bias has 10 entries: not divisible by 4, so listed below first
    ]
    rules.insert(0, ("fc2.bias", P()))
    results["2x4"] = train(fresh(), mesh2x4, rules, place="module")

    # misuse that only a mesh axis of size > 1 can show: the message of each error
    def error(fn):
        try:
            fn()
        except ValueError as e:
            return str(e)
        return None

    _, params, _ = jnn.split(fresh())
    results["errors"] = {
        "indivisible": error(lambda: jnn.sharding.partition(params, data8, [("fc2.*", P("data"))])),
        "indivisible_2d": error(
            lambda: jnn.sharding.named_shardings(params, mesh2x4, [("fc2.weight", P(("data", "model"), None))])),
        "batch": error(lambda: jnn.sharding.shard_batch({"x": xs[0, :30]}, data8)),
        "mesh": error(lambda: jnn.sharding.make_mesh((3, -1), ("data", "model"))),
    }
    results["docs"] = run_docs_page()
    json.dump(results, sys.stdout)


def run_docs_page() -> str:
    """docs/multi-device.md's code blocks on these 8 devices (the docs test runs them on one): '' or the error."""
    import contextlib
    import io
    import os
    import pathlib
    import tempfile

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import test_docs

    page = pathlib.Path(test_docs.DOCS) / "multi-device.md"
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
        os.chdir(folder)  # pages may write files
        try:
            test_docs.run_page(page)
        except AssertionError as error:
            return str(error)
        finally:
            os.chdir(here)
    return ""


if __name__ == "__main__":
    main()
