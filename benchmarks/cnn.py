"""Workload 2: the tutorial's small CNN (Conv2d 1->20 3x3, ReLU, Conv2d 20->20 3x3, ReLU) with a Linear head to
10 classes, on 1x28x28 inputs at batch 64: compute-bound.

All frameworks start from the same weights. Flax NNX runs in its native NHWC layout (the input is transposed
once, outside the timed step); the others run NCHW as PyTorch does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jnn as nn
import jnn.functional as F
from benchmarks import steps
from benchmarks.harness import EQX, HAND, NNX, PYTREE, SPLIT, TORCH, TORCH_COMPILE, Settings, build_cases, measure

CHANNELS, CLASSES = 20, 10


class CNN(nn.Module):
    def __init__(self, side: int = 28):
        super().__init__()
        self.conv1 = nn.Conv2d(1, CHANNELS, 3)
        self.conv2 = nn.Conv2d(CHANNELS, CHANNELS, 3)
        self.head = nn.Linear(CHANNELS * (side - 4) ** 2, CLASSES)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.head(x.reshape(x.shape[0], -1))


def conv(x, w, b):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + b[None, :, None, None]


def hand_forward(params, buffers, x):
    x = jax.nn.relu(conv(x, params["conv1.weight"], params["conv1.bias"]))
    x = jax.nn.relu(conv(x, params["conv2.weight"], params["conv2.bias"]))
    return x.reshape(x.shape[0], -1) @ params["head.weight"].T + params["head.bias"], buffers


def nnx_model(state: dict, side: int):
    from flax import nnx

    class NnxCNN(nnx.Module):
        def __init__(self, rngs):
            self.conv1 = nnx.Conv(1, CHANNELS, (3, 3), padding="VALID", rngs=rngs)
            self.conv2 = nnx.Conv(CHANNELS, CHANNELS, (3, 3), padding="VALID", rngs=rngs)
            self.head = nnx.Linear(CHANNELS * (side - 4) ** 2, CLASSES, rngs=rngs)

        def __call__(self, x):  # x: NHWC
            x = nnx.relu(self.conv1(x))
            x = nnx.relu(self.conv2(x))
            return self.head(x.reshape(x.shape[0], -1))

    model = NnxCNN(nnx.Rngs(0))
    for name in ("conv1", "conv2"):
        layer = getattr(model, name)
        layer.kernel[...] = jnp.array(state[f"{name}.weight"].transpose(2, 3, 1, 0))
        layer.bias[...] = jnp.array(state[f"{name}.bias"])
    s = side - 4
    w = state["head.weight"].reshape(CLASSES, CHANNELS, s, s).transpose(2, 3, 1, 0).reshape(-1, CLASSES)
    model.head.kernel[...] = jnp.array(w)
    model.head.bias[...] = jnp.array(state["head.bias"])
    return model


def eqx_model(state: dict, side: int):
    import equinox as eqx

    class EqxCNN(eqx.Module):
        conv1: eqx.nn.Conv2d
        conv2: eqx.nn.Conv2d
        head: eqx.nn.Linear

        def __call__(self, x, state):
            def one(x):
                x = jax.nn.relu(self.conv1(x))
                x = jax.nn.relu(self.conv2(x))
                return self.head(x.reshape(-1))

            return jax.vmap(one)(x), state

    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    model = EqxCNN(eqx.nn.Conv2d(1, CHANNELS, 3, key=k1), eqx.nn.Conv2d(CHANNELS, CHANNELS, 3, key=k2),
                   eqx.nn.Linear(CHANNELS * (side - 4) ** 2, CLASSES, key=k3))
    return eqx.tree_at(
        lambda m: (m.conv1.weight, m.conv1.bias, m.conv2.weight, m.conv2.bias, m.head.weight, m.head.bias), model,
        (jnp.array(state["conv1.weight"]), jnp.array(state["conv1.bias"]).reshape(-1, 1, 1),
         jnp.array(state["conv2.weight"]), jnp.array(state["conv2.bias"]).reshape(-1, 1, 1),
         jnp.array(state["head.weight"]), jnp.array(state["head.bias"])))


def torch_model(state: dict, side: int):
    import torch

    class TorchCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, CHANNELS, 3)
            self.conv2 = torch.nn.Conv2d(CHANNELS, CHANNELS, 3)
            self.head = torch.nn.Linear(CHANNELS * (side - 4) ** 2, CLASSES)

        def forward(self, x):
            x = torch.relu(self.conv1(x))
            x = torch.relu(self.conv2(x))
            return self.head(x.flatten(1))

    model = TorchCNN()
    model.load_state_dict({k: torch.tensor(np.array(v)) for k, v in state.items()})
    return model


def data(batch: int, side: int) -> tuple:
    rng = np.random.default_rng(0)
    return (jnp.asarray(rng.standard_normal((batch, 1, side, side)), jnp.float32),
            jnp.asarray(rng.integers(0, CLASSES, batch), jnp.int32))


def _copy(state: dict, side: int) -> CNN:
    net = CNN(side)
    net.load_state_dict(state)
    return net


def builders(batch: int, side: int, settings: Settings) -> dict:
    nn.manual_seed(0)
    net = CNN(side)
    state = {k: np.asarray(v) for k, v in net.state_dict().items()}
    xy = data(batch, side)
    nhwc = (jnp.transpose(xy[0], (0, 2, 3, 1)), xy[1])
    device = "cuda" if settings.gpu else "cpu"
    b = {
        HAND: lambda: steps.hand_case(hand_forward, nn.split(net)[1], {}, xy, "xent"),
        SPLIT: lambda: steps.split_case(_copy(state, side), xy, "xent"),
        PYTREE: lambda: steps.pytree_case(_copy(state, side), xy, "xent"),
        NNX: lambda: steps.nnx_case(nnx_model(state, side), nhwc, "xent"),
        EQX: lambda: steps.eqx_case(eqx_model(state, side), None, xy, "xent"),
        TORCH: lambda: steps.torch_case(torch_model(state, side), xy, "xent", device=device),
    }
    if settings.torch_compile:
        b[TORCH_COMPILE] = lambda: steps.torch_case(torch_model(state, side), xy, "xent", compiled=True,
                                                    device=device)
    return b


def run(settings: Settings, tiny: bool = False) -> list[dict]:
    batch, side = (4, 8) if tiny else (64, 28)
    cases, failed = build_cases(builders(batch, side, settings))
    label = f"CNN batch {batch}"
    return measure(cases, settings, label) + [dict(r, workload=label) for r in failed]


def outputs(batch: int = 2, side: int = 8) -> dict[str, np.ndarray]:
    """Each framework's forward (logits) on the same weights and input."""
    nn.manual_seed(0)
    net = CNN(side)
    state = {k: np.asarray(v) for k, v in net.state_dict().items()}
    x, _ = data(batch, side)
    apply, params, buffers = nn.split(net)
    out = {
        HAND: hand_forward(params, buffers, x)[0],
        SPLIT: jax.jit(apply)(params, buffers, x)[0],
        PYTREE: jax.jit(lambda m, x: m(x))(_copy(state, side), x),
        NNX: nnx_model(state, side)(jnp.transpose(x, (0, 2, 3, 1))),
        EQX: eqx_model(state, side)(x, None)[0],
    }
    import torch

    with torch.no_grad():
        out[TORCH] = torch_model(state, side)(torch.tensor(np.asarray(x))).numpy()
    return {k: np.asarray(v) for k, v in out.items()}
