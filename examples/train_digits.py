"""Train a small CNN on scikit-learn's handwritten digits with jnn + optax, then save, reload and re-check it.

    python examples/train_digits.py            # about a minute on a 2-core CPU

The model is plain PyTorch-style code (only the imports differ); training runs through ``jnn.split`` and
``jax.jit``: parameters and BatchNorm buffers are dicts keyed by state_dict names, Dropout gets a fresh key
per step.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

import jnn
import jnn as nn
import jnn.functional as F


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.25),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def load_data(seed: int):
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8), NCHW like PyTorch
    return train_test_split(images, digits.target.astype(np.int32), test_size=0.2, random_state=seed,
                            stratify=digits.target)


def accuracy(apply, params, buffers, x, y) -> float:
    logits, _ = apply(params, buffers, x, train=False)
    return float((logits.argmax(-1) == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=".", help="folder for digits_cnn.npz and digits_curves.png")
    args = parser.parse_args()

    x_train, x_test, y_train, y_test = load_data(args.seed)
    jnn.manual_seed(args.seed)
    net = DigitsCNN()
    print(net)

    apply, params, buffers = jnn.split(net)
    optimizer = optax.adamw(args.lr, weight_decay=1e-4)
    opt_state = optimizer.init(params)

    # loss, gradients, AdamW update and the new BatchNorm statistics in one jitted, buffer-donating step
    train_step = jnn.optim.make_train_step(apply, optimizer, F.cross_entropy)

    evaluate = jax.jit(lambda p, b, x: apply(p, b, x, train=False)[0])
    key = jax.random.key(args.seed)
    rng = np.random.default_rng(args.seed)
    losses, accuracies = [], []
    start = time.perf_counter()
    for _ in (bar := tqdm(range(args.epochs), desc="training", unit="epoch")):
        order = rng.permutation(len(x_train))
        epoch_losses = []
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            batch = order[i : i + args.batch_size]
            key, step_key = jax.random.split(key)
            params, buffers, opt_state, loss = train_step(
                params, buffers, opt_state, x_train[batch], y_train[batch], key=step_key)
            epoch_losses.append(loss)
        losses.append(float(np.mean(jax.device_get(epoch_losses))))
        accuracies.append(float((evaluate(params, buffers, x_test).argmax(-1) == y_test).mean()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}", test_acc=f"{accuracies[-1]:.3f}")
    elapsed = time.perf_counter() - start

    final = accuracies[-1]
    print(f"trained {args.epochs} epochs in {elapsed:.1f} s")
    print(f"test accuracy: {final:.3f}")

    # Save the state dict, reload it into a fresh model in eval mode, and check it gives the same accuracy.
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "digits_cnn.npz")
    jnn.save(jnn.merge(apply, params, buffers).state_dict(), path)
    fresh = DigitsCNN()
    fresh.load_state_dict(jnn.load(path))
    fresh.eval()
    reloaded = float((jax.jit(lambda m, x: m(x))(fresh, jnp.asarray(x_test)).argmax(-1) == y_test).mean())
    print(f"reloaded from {path}: test accuracy: {reloaded:.3f}")
    if abs(reloaded - final) > 1e-6:
        raise SystemExit("the reloaded model does not reproduce the trained model's accuracy")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = np.arange(1, args.epochs + 1)
    ax_loss.plot(epochs, losses)
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="loss")
    ax_acc.plot(epochs, accuracies)
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", title=f"test accuracy (final {final:.3f})")
    fig.tight_layout()
    png = os.path.join(args.out, "digits_curves.png")
    fig.savefig(png, dpi=100)
    print(f"curves written to {png}")


if __name__ == "__main__":
    main()
