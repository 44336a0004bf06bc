"""One model, written once, run by PyTorch and by jnn: weights cross over through files, outputs are compared.

    python examples/from_pytorch.py            # a few seconds; needs PyTorch (pip install torch)

The model's source below is the same text for both frameworks; only the two import lines differ. PyTorch builds
it, runs a training-mode step (BatchNorm's running statistics move) and saves its ``state_dict`` with
``torch.save``; jnn reads that ``.pt`` file with ``jnn.load`` (no torch needed for that, nothing in the file is
executed) and loads it with ``load_state_dict``. Then both run the same input in eval mode and in train mode,
and the gradients of the same loss are compared. Finally the weights go back the other way, as safetensors.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

import jnn

try:
    import torch
except ImportError:
    sys.exit("from_pytorch.py compares jnn with PyTorch, so it needs PyTorch, which is not installed here.\n"
             "Install it with `pip install torch` (the CPU build is enough) and run it again. jnn itself does not "
             "need PyTorch: jnn.load reads .pt files without it.")

TORCH_IMPORTS = "import torch.nn as nn\nimport torch.nn.functional as F\n"
JNN_IMPORTS = "import jnn as nn\nimport jnn.functional as F\n"

MODEL_SOURCE = '''
class SmallConvNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.ModuleList([nn.Linear(32 * 4 * 4, 64), nn.LayerNorm(64), nn.Linear(64, num_classes)])

    def forward(self, x):
        x = self.features(x)
        x = x.reshape(x.shape[0], -1)
        x = F.gelu(self.head[1](self.head[0](x)))
        return self.head[2](x)
'''


def define(imports: str) -> type:
    """Run the imports and then MODEL_SOURCE in a fresh namespace, and return the class it defines."""
    namespace: dict = {"__name__": __name__}
    exec(imports + MODEL_SOURCE, namespace)
    return namespace["SmallConvNet"]


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="folder for small_convnet.pt and small_convnet.safetensors")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    TorchNet, JnnNet = define(TORCH_IMPORTS), define(JNN_IMPORTS)
    print("The model, as both frameworks run it (after their own two import lines):")
    print(MODEL_SOURCE)

    # PyTorch: build, take one training-mode step so BatchNorm's running statistics move, save the state_dict.
    torch.manual_seed(args.seed)
    torch_net = TorchNet()
    rng = np.random.default_rng(args.seed)
    warmup = rng.normal(size=(32, 1, 8, 8)).astype(np.float32)
    torch_net.train()
    with torch.no_grad():
        torch_net(torch.from_numpy(warmup))
    pt_path = os.path.join(args.out, "small_convnet.pt")
    torch.save(torch_net.state_dict(), pt_path)

    # jnn: the same class, the weights read from PyTorch's file.
    state = jnn.load(pt_path)
    print(f"jnn.load({pt_path!r}): {len(state)} arrays, e.g. {list(state)[:4]} ...")
    net = JnnNet()
    net.load_state_dict(state)  # strict: the same names and shapes, or PyTorch's error message
    print(net)

    x = rng.normal(size=(16, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, size=16)
    results: dict[str, float] = {}

    # Eval mode: running statistics normalise.
    torch_net.eval()
    net.eval()
    with torch.no_grad():
        expected = torch_net(torch.from_numpy(x)).numpy()
    results["eval-mode output"] = max_diff(net(jnp.asarray(x)), expected)

    # Train mode: batch statistics normalise, and BatchNorm updates its running statistics (eagerly, on `net`).
    torch_net.train()
    net.train()
    with torch.no_grad():
        expected = torch_net(torch.from_numpy(x)).numpy()
    results["train-mode output"] = max_diff(net(jnp.asarray(x)), expected)
    torch_state, jnn_state = torch_net.state_dict(), net.state_dict()
    results["BatchNorm running statistics after it"] = max(
        max_diff(jnn_state[k], torch_state[k].numpy()) for k in torch_state if "running" in k)

    # Gradients of the same loss: torch's autograd against jax.grad through jnn.split.
    torch_net.zero_grad()
    torch.nn.functional.cross_entropy(torch_net(torch.from_numpy(x)), torch.from_numpy(labels)).backward()
    apply, params, buffers = jnn.split(net)

    def loss_fn(params):
        logits, _ = apply(params, buffers, jnp.asarray(x), train=True)
        return jnn.functional.cross_entropy(logits, jnp.asarray(labels))

    grads = jax.grad(loss_fn)(params)
    results["gradients (train mode)"] = max(
        max_diff(grads[name], p.grad.numpy()) for name, p in torch_net.named_parameters())

    # And back: jnn writes safetensors, which PyTorch reads with the safetensors package.
    st_path = os.path.join(args.out, "small_convnet.safetensors")
    jnn.save(net.state_dict(), st_path)
    try:
        from safetensors.torch import load_file
    except ImportError:
        print("(safetensors is not installed: skipping the jnn -> PyTorch direction)")
    else:
        back = TorchNet()
        back.load_state_dict(load_file(st_path))
        back.eval()
        net.eval()
        with torch.no_grad():
            expected = back(torch.from_numpy(x)).numpy()
        results["eval-mode output, jnn -> PyTorch via safetensors"] = max_diff(net(jnp.asarray(x)), expected)

    print("\nmax |jnn - PyTorch|:")
    for what, diff in results.items():
        print(f"  {what:<50} {diff:.2e}")
    largest = max(results.values())
    print(f"largest difference: {largest:.2e}")
    if largest > 1e-4:
        raise SystemExit("jnn and PyTorch disagree by more than float32 rounding")
    print("jnn matches PyTorch to float32 rounding.")


if __name__ == "__main__":
    main()
