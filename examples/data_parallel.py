"""The digits CNN of train_digits.py trained on several devices with jax.sharding: data parallel, then fully sharded.

    python examples/data_parallel.py            # 8 CPU devices forced on the host; 1-3 minutes on 2 cores

The same training (same seed, batches and Dropout keys) runs three times: on one device; data parallel over
every device (the batch split, the parameters replicated); and fully sharded on a 2-D ``data x model`` mesh,
where rules matched against ``state_dict`` names split the parameters, BatchNorm buffers and optimizer state
over the ``model`` axis. ``jax.jit`` inserts the communication, so the model code does not change, and the
losses are the single-device ones (BatchNorm normalises over the global batch, like PyTorch's SyncBatchNorm).

On a machine with several GPUs, JAX uses them instead of the forced CPU devices. On several hosts, start one
process per host after ``jax.distributed.initialize()`` and give :func:`jnn.sharding.shard_batch` each process's
own part of the batch (see docs/multi-device.md).
"""

from __future__ import annotations

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):  # before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402
from tqdm import tqdm  # noqa: E402

import jnn  # noqa: E402
import jnn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_digits import DigitsCNN, load_data  # noqa: E402

# Fully sharded: the first rule that matches a state_dict name gives its PartitionSpec.
RULES = [
    ("classifier.4.*", P()),                    # the 10-way output layer: 10 rows do not split, keep it whole
    ("classifier.1.weight", P(None, "model")),  # (128, 1024): split the 1024 input features
    ("*.num_batches_tracked", P()),             # scalars stay whole
    ("*", P("model")),                          # the rest along dim 0: conv output channels, BatchNorm vectors
]


def train(mode: str, mesh, args, data) -> dict:
    """Train a fresh DigitsCNN; ``mode`` is 'single', 'data parallel' or 'fully sharded'."""
    x_train, x_test, y_train, y_test = data
    jnn.manual_seed(args.seed)
    net = DigitsCNN()
    if mode == "data parallel":
        net.to(jnn.sharding.data_parallel(mesh).params)  # a full copy on every device
    elif mode == "fully sharded":
        jnn.sharding.partition(net, mesh, RULES)  # each device holds its slice of every split array
    apply, params, buffers = jnn.split(net)
    optimizer = optax.adamw(args.lr, weight_decay=1e-4)
    opt_state = optimizer.init(params)  # the moments take the parameters' shardings

    # loss, gradients, AdamW update and the new BatchNorm statistics in one jitted, buffer-donating step
    train_step = jnn.optim.make_train_step(apply, optimizer, F.cross_entropy)

    rng = np.random.default_rng(args.seed)
    batches = []
    for _ in range(args.epochs):
        order = rng.permutation(len(x_train))
        batches += [order[i : i + args.batch_size] for i in range(0, len(order) - args.batch_size + 1, args.batch_size)]
    batches = batches[: args.steps] if args.steps else batches
    key = jax.random.key(args.seed)
    losses = []
    start = time.perf_counter()
    for batch in (bar := tqdm(batches, desc=f"{mode:>13}", unit="step", leave=False)):
        x, y = x_train[batch], y_train[batch]
        if mesh is not None:
            x, y = jnn.sharding.shard_batch((x, y), mesh)  # one global array, split on dim 0 over "data"
        key, step_key = jax.random.split(key)
        params, buffers, opt_state, loss = train_step(params, buffers, opt_state, x, y, key=step_key)
        losses.append(float(loss))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    logits, _ = jax.jit(lambda p, b, x: apply(p, b, x, train=False))(params, buffers, x_test)
    return {
        "losses": np.array(losses),
        "accuracy": float((np.asarray(logits).argmax(-1) == y_test).mean()),
        "seconds": time.perf_counter() - start,
        "arrays": {**params, **buffers},
        "mesh": "-" if mesh is None else " x ".join(f"{k}={v}" for k, v in mesh.shape.items()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=0, help="stop each run after this many steps (0: no limit)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    devices = jax.devices()
    n = len(devices)
    model_size = 4 if n % 4 == 0 else 2 if n % 2 == 0 else 1
    if args.batch_size % n:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the {n} devices")
    print(f"{n} {devices[0].platform.upper()} device(s), {jax.process_count()} process(es)")
    data = load_data(args.seed)
    runs = {
        "single device": train("single", None, args, data),
        "data parallel": train("data parallel", jnn.sharding.make_mesh(), args, data),
        "fully sharded": train("fully sharded", jnn.sharding.make_mesh((-1, model_size), ("data", "model")), args,
                               data),
    }

    reference = runs["single device"]["losses"]
    print(f"\n{'mode':<15}{'mesh':<20}{'steps':>6}{'final loss':>12}{'test acc':>10}{'max |dloss|':>13}{'time':>8}")
    for mode, run in runs.items():
        gap = float(np.max(np.abs(run["losses"] - reference)))
        print(f"{mode:<15}{run['mesh']:<20}{len(run['losses']):>6}{run['losses'][-1]:>12.6f}{run['accuracy']:>10.3f}"
              f"{gap:>13.1e}{run['seconds']:>7.1f}s")
    worst = max(float(np.max(np.abs(run["losses"] - reference))) for run in runs.values())
    verdict = "yes" if worst < 1e-4 else "NO"
    print(f"sharded runs match the single-device losses to 1e-4: {verdict} (max |dloss| {worst:.1e})")
    for mode in ("data parallel", "fully sharded"):
        for name in ("features.3.weight", "classifier.1.weight", "features.4.running_mean"):
            array = runs[mode]["arrays"][name]
            shard = array.addressable_shards[0].data.shape
            print(f"{mode}: {name} {tuple(array.shape)} -> {array.sharding.spec}, {len(array.addressable_shards)} "
                  f"shards of {tuple(shard)}")


if __name__ == "__main__":
    main()
