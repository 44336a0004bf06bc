"""One of the processes of tests/test_multiprocess.py: run by ``python -m jnn.launch -n 2 --devices 2``.

    python -m jnn.launch -n 2 --devices 2 --timeout 300 tests/_multiprocess_worker.py OUT_DIR

Every process trains the same small CNN (BatchNorm and Dropout included) on one local device over the global
batch, then over the mesh of all 4 devices (2 per process), data parallel and fully sharded (fsdp_rules), each
process feeding only its own half of every batch; saves each sharded run with jnn.save (process 0 writes) and
reads it back; loads a checkpoint into a sharded model; and misuses jnn.save on purpose. It writes what it saw
to OUT_DIR/process{i}.json. Importing this file does nothing (pytest's --doctest-modules imports tests/).
"""

from __future__ import annotations

import json
import os
import sys

STEPS = 4
BATCH = 16  # global; each of the 2 processes loads 8 rows


def main(out_dir: str) -> None:
    import jnn

    jnn.distributed.initialize()

    import jax
    import numpy as np
    import optax

    import jnn as nn
    import jnn.functional as F

    index, count = jax.process_index(), jax.process_count()
    if count != 2 or len(jax.devices()) != 4 or len(jax.local_devices()) != 2:
        raise SystemExit(f"expected 2 processes with 2 devices each, got {count} and {jax.devices()}")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.drop = nn.Dropout(0.25)
            self.fc1 = nn.Linear(4 * 4 * 4, 8)
            self.bn1 = nn.BatchNorm1d(8)
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
            x = self.drop(x.reshape(x.shape[0], -1))
            return self.fc2(F.relu(self.bn1(self.fc1(x))))

    rng = np.random.default_rng(0)
    xs = rng.standard_normal((STEPS, BATCH, 1, 8, 8)).astype(np.float32)
    ys = rng.integers(0, 3, (STEPS, BATCH)).astype(np.int32)
    mine = slice(index * BATCH // count, (index + 1) * BATCH // count)  # this process's rows of every batch

    def fresh():
        jnn.manual_seed(0)
        return Net()

    def train(net, mesh=None):
        apply, params, buffers = jnn.split(net)
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
            if mesh is None:
                x, y = jax.device_put((xs[i], ys[i]), jax.local_devices()[0])
            else:
                x, y = jnn.sharding.shard_batch((xs[i, mine], ys[i, mine]), mesh)
            params, opt_state, buffers, loss = step(params, opt_state, buffers, x, y, jax.random.key(i))
            losses.append(float(loss))
        return losses, {**params, **buffers}

    def describe(state):
        return {
            "fully_addressable": {k: bool(v.is_fully_addressable) for k, v in state.items()},
            "local_shards": {k: [list(s.data.shape) for s in v.addressable_shards] for k, v in state.items()},
        }

    report = {"process": index}
    losses, state = train(fresh())
    report["single"] = {"losses": losses, "values": {k: np.asarray(v).tolist() for k, v in state.items()}}

    mesh = jnn.sharding.make_mesh()  # 4 devices, 2 per process
    dp = jnn.sharding.data_parallel(mesh)
    net = fresh()
    fsdp = jnn.sharding.fsdp_rules(net, mesh)
    runs = {"dp": fresh().to(dp.params), "fsdp": jnn.sharding.partition(net, mesh, fsdp)}
    runs_state = {}
    for mode, placed in runs.items():
        losses, state = train(placed, mesh)
        runs_state[mode] = state
        gathered = jnn.distributed.gather(state)
        path = os.path.join(out_dir, f"{mode}.npz")
        jnn.save(state, path)  # every process calls it; process 0 writes; all return once the file is there
        loaded = jnn.load(path)  # on every process, right after save returned
        report[mode] = {
            "losses": losses,
            "values": {k: np.asarray(v).tolist() for k, v in gathered.items()},
            "loaded_equals_gathered": list(loaded) == list(state) and all(
                np.array_equal(loaded[k], gathered[k]) for k in state),
            **describe(state),
        }

    # a checkpoint loaded into a fully sharded model keeps the model's shardings and takes the file's values
    net = jnn.sharding.partition(fresh(), mesh, fsdp)
    net.load_state_dict(jnn.load(os.path.join(out_dir, "fsdp.npz")))
    loaded = jnn.distributed.gather(net.state_dict())
    report["load_into_sharded"] = {
        "equal": all(np.array_equal(loaded[k], np.asarray(report["fsdp"]["values"][k], loaded[k].dtype))
                     for k in loaded),
        **describe(net.state_dict()),
    }

    # a sharded checkpoint (orbax): each process writes its own shards; restored onto a 2x2 mesh by other rules,
    # and into a data-parallel module
    from jax.sharding import PartitionSpec as P

    ckpt = os.path.join(out_dir, "fsdp_ckpt")
    jnn.sharding.save_sharded(ckpt, runs_state["fsdp"])
    mesh2x2 = jnn.sharding.make_mesh((2, 2), ("data", "model"))
    rules = [("fc2.weight", P(None, "model")), ("*.weight", P("model")), ("*", P())]
    restored = jnn.sharding.load_sharded(ckpt, mesh2x2, rules=rules)
    module = jnn.sharding.load_sharded(ckpt, fresh().to(dp.params))
    report["orbax"] = {
        "restored": {k: np.asarray(v).tolist() for k, v in jnn.distributed.gather(restored).items()},
        "specs": {k: [e for e in v.sharding.spec] for k, v in restored.items()},
        "mesh": dict(restored["fc1.weight"].sharding.mesh.shape),
        "module": {k: np.asarray(v).tolist() for k, v in jnn.distributed.gather(module.state_dict()).items()},
        "module_replicated": all(v.sharding == dp.params for v in module.state_dict().values()),
    }

    # misuse: different keys on the two processes, then process 0 alone. Each must raise, not hang.
    jnn.distributed.TIMEOUT_S = 3.0
    state = net.state_dict()
    errors = {}
    try:
        jnn.save({k: v for k, v in state.items() if index == 0 or k != "fc1.weight"}, os.path.join(out_dir, "x.npz"))
    except RuntimeError as error:
        errors["different_keys"] = str(error)
    if index == 0:
        try:
            jnn.save(state, os.path.join(out_dir, "alone.npz"))
        except RuntimeError as error:
            errors["alone"] = str(error)
    report["errors"] = errors
    report["files"] = sorted(os.listdir(out_dir))
    with open(os.path.join(out_dir, f"process{index}.json"), "w") as fh:
        json.dump(report, fh)


if __name__ == "__main__":
    main(sys.argv[1])
