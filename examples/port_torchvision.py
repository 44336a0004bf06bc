"""Port torchvision's own model code with ``python -m jnn.port``, then fine-tune a ported ResNet on the digits.

    python examples/port_torchvision.py                      # resnet18, 3 epochs: a few minutes on a 2-core CPU
    python examples/port_torchvision.py --weights resnet18-f37072fd.pth   # start from torchvision's ImageNet weights

torchvision's wheel is fetched with pip (its model files are plain Python), the files the classification models
import are ported with no hand edits, and the ported ``resnet18`` is trained through ``jnn.split`` + optax. The
8x8 digit images are upsampled to 32x32 and repeated over three channels, as an RGB model expects. Loading
ImageNet weights (``--weights``, a file saved by torch) keeps everything but the final layer, which gets 10 classes.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import jnn
import jnn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import _torchvision_source  # noqa: E402  (fetches and caches torchvision's source; shared with the tests)


def port_torchvision(out: pathlib.Path) -> pathlib.Path:
    """``python -m jnn.port torchvision -o out/torchvision_jnn``; returns the folder to put on ``sys.path``."""
    source = _torchvision_source.source_tree() / "torchvision"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "jnn.port", str(source), "-o", str(out / "torchvision_jnn")],
                         capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise SystemExit(run.stderr)
    print(run.stderr.strip().splitlines()[-1])
    return out


def load_data(seed: int):
    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((4, 4))).astype(np.float32)   # 8x8 -> 32x32
    images = np.repeat(images[:, None], 3, axis=1)                                 # (N, 3, 32, 32)
    return train_test_split(images, digits.target.astype(np.int32), test_size=0.2, random_state=seed,
                            stratify=digits.target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="a torchvision builder taking num_classes")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", help="a torchvision checkpoint (.pth) to start from")
    parser.add_argument("--out", default=".", help="folder for the ported package")
    args = parser.parse_args()

    sys.path.insert(0, str(port_torchvision(pathlib.Path(args.out))))
    import torchvision_jnn

    jnn.manual_seed(args.seed)
    net = getattr(torchvision_jnn.models, args.model)(num_classes=10)
    if args.weights:
        state = {k: v for k, v in jnn.load(args.weights).items() if not k.startswith("fc.")}
        missing = net.load_state_dict(state, strict=False).missing_keys
        print(f"loaded {args.weights}; kept the new head: {missing}")
    print(f"{args.model}: {sum(p.size for p in net.parameters()):,} parameters")

    x_train, x_test, y_train, y_test = load_data(args.seed)
    apply, params, buffers = jnn.split(net)
    optimizer = optax.adamw(args.lr, weight_decay=1e-4)
    opt_state = optimizer.init(params)
    train_step = jnn.optim.make_train_step(apply, optimizer, F.cross_entropy)
    evaluate = jax.jit(lambda p, b, x: apply(p, b, x, train=False)[0])

    key = jax.random.key(args.seed)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        losses = []
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            batch = order[i: i + args.batch_size]
            key, step_key = jax.random.split(key)
            params, buffers, opt_state, loss = train_step(params, buffers, opt_state, x_train[batch],
                                                          y_train[batch], key=step_key)
            losses.append(loss)
        accuracy = float((evaluate(params, buffers, jnp.asarray(x_test)).argmax(-1) == y_test).mean())
        print(f"epoch {epoch + 1}: loss {float(np.mean(jax.device_get(losses))):.3f}, test accuracy {accuracy:.3f}")
    print(f"trained {args.epochs} epochs in {time.perf_counter() - start:.1f} s")
    print(f"test accuracy: {accuracy:.3f}")


if __name__ == "__main__":
    main()
