"""Workload 3: ResNet-18 (torchvision's architecture: 7x7/2 stem, max-pool, 4 stages of 2 BasicBlocks, 10 classes)
on 3x32x32 inputs at batch 128, BatchNorm in training mode (running statistics updated every step).

jnn and PyTorch run the very same class source (``make_resnet(nn)`` with ``nn`` = ``jnn`` or ``torch.nn``): that is
the point of jnn. Hand-written JAX is the same math over a dict keyed by the state_dict names. Flax NNX and Equinox
are written in their own idioms (NNX in NHWC; Equinox's BatchNorm through ``vmap(axis_name=...)``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jnn
from benchmarks import steps
from benchmarks.harness import EQX, HAND, NNX, PYTREE, SPLIT, TORCH, TORCH_COMPILE, Settings, build_cases, measure

CLASSES = 10
EPS, MOMENTUM = 1e-5, 0.1
FULL_ARCH = ((64, 128, 256, 512), (2, 2, 2, 2))  # channel widths and BasicBlocks per stage: ResNet-18
TINY_ARCH = ((4, 4, 8, 8), (1, 1, 1, 1))


def make_resnet(nn, widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)):
    """ResNet-18 written once against the torch.nn API; ``nn`` is ``jnn`` or ``torch.nn``."""

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = widths[0]
            for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
                stage = [BasicBlock(cin, w, 1 if i == 0 else 2)] + [BasicBlock(w, w, 1) for _ in range(n - 1)]
                setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
                cin = w
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(widths[-1], CLASSES)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).reshape(x.shape[0], -1))

    return ResNet()


# ---- hand-written JAX over a dict keyed by state_dict names ---------------------------------------------------

def _conv(x, w, stride, pad):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), [(pad, pad), (pad, pad)],
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))


def _bn(p, b, nb, name, x):
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    n = x.size // x.shape[1]
    nb[f"{name}.running_mean"] = (1 - MOMENTUM) * b[f"{name}.running_mean"] + MOMENTUM * mean
    nb[f"{name}.running_var"] = (1 - MOMENTUM) * b[f"{name}.running_var"] + MOMENTUM * var * n / (n - 1)
    nb[f"{name}.num_batches_tracked"] = b[f"{name}.num_batches_tracked"] + 1
    scale = p[f"{name}.weight"] * jax.lax.rsqrt(var + EPS)
    return x * scale[None, :, None, None] + (p[f"{name}.bias"] - mean * scale)[None, :, None, None]


def hand_forward(p, b, x):
    nb = {}
    x = jax.nn.relu(_bn(p, b, nb, "bn1", _conv(x, p["conv1.weight"], 2, 3)))
    x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 3, 3), (1, 1, 2, 2),
                              [(0, 0), (0, 0), (1, 1), (1, 1)])
    for stage in range(1, 5):
        block = 0
        while f"layer{stage}.{block}.conv1.weight" in p:
            name = f"layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            block += 1
            identity = x
            if f"{name}.downsample.0.weight" in p:
                identity = _bn(p, b, nb, f"{name}.downsample.1", _conv(x, p[f"{name}.downsample.0.weight"], stride, 0))
            out = jax.nn.relu(_bn(p, b, nb, f"{name}.bn1", _conv(x, p[f"{name}.conv1.weight"], stride, 1)))
            x = jax.nn.relu(_bn(p, b, nb, f"{name}.bn2", _conv(out, p[f"{name}.conv2.weight"], 1, 1)) + identity)
    x = x.mean(axis=(2, 3))
    return x @ p["fc.weight"].T + p["fc.bias"], nb


# ---- Flax NNX (NHWC) and Equinox --------------------------------------------------------------------------------

def nnx_model(widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)):
    from flax import nnx

    def bn(c, rngs):
        return nnx.BatchNorm(c, momentum=1 - MOMENTUM, epsilon=EPS, rngs=rngs)

    class Block(nnx.Module):
        def __init__(self, cin, cout, stride, rngs):
            self.conv1 = nnx.Conv(cin, cout, (3, 3), (stride, stride), padding=1, use_bias=False, rngs=rngs)
            self.bn1 = bn(cout, rngs)
            self.conv2 = nnx.Conv(cout, cout, (3, 3), padding=1, use_bias=False, rngs=rngs)
            self.bn2 = bn(cout, rngs)
            down = None
            if stride != 1 or cin != cout:
                down = nnx.Sequential(nnx.Conv(cin, cout, (1, 1), (stride, stride), use_bias=False, rngs=rngs),
                                      bn(cout, rngs))
            self.down = nnx.data(down)

        def __call__(self, x):
            identity = x if self.down is None else self.down(x)
            out = nnx.relu(self.bn1(self.conv1(x)))
            return nnx.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet(nnx.Module):
        def __init__(self, rngs):
            self.conv1 = nnx.Conv(3, widths[0], (7, 7), (2, 2), padding=3, use_bias=False, rngs=rngs)
            self.bn1 = bn(widths[0], rngs)
            stage, cin = [], widths[0]
            for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
                stage += [Block(cin, w, 1 if i == 0 else 2, rngs)] + [Block(w, w, 1, rngs) for _ in range(n - 1)]
                cin = w
            self.blocks = nnx.List(stage)
            self.fc = nnx.Linear(widths[-1], CLASSES, rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.bn1(self.conv1(x)))
            x = nnx.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
            for block in self.blocks:
                x = block(x)
            return self.fc(x.mean(axis=(1, 2)))

    return ResNet(nnx.Rngs(0))


def eqx_model(widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)):
    import equinox as eqx

    keys = iter(jax.random.split(jax.random.key(0), 64))

    def bn(c):
        return eqx.nn.BatchNorm(c, axis_name="batch", momentum=1 - MOMENTUM, eps=EPS, mode="batch")

    class Block(eqx.Module):
        conv1: eqx.nn.Conv2d
        bn1: eqx.nn.BatchNorm
        conv2: eqx.nn.Conv2d
        bn2: eqx.nn.BatchNorm
        down: tuple | None

        def __init__(self, cin, cout, stride):
            self.conv1 = eqx.nn.Conv2d(cin, cout, 3, stride, 1, use_bias=False, key=next(keys))
            self.bn1 = bn(cout)
            self.conv2 = eqx.nn.Conv2d(cout, cout, 3, 1, 1, use_bias=False, key=next(keys))
            self.bn2 = bn(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = (eqx.nn.Conv2d(cin, cout, 1, stride, use_bias=False, key=next(keys)), bn(cout))

        def __call__(self, x, state):
            identity = x
            if self.down is not None:
                identity, state = self.down[1](self.down[0](x), state)
            out, state = self.bn1(self.conv1(x), state)
            out, state = self.bn2(self.conv2(jax.nn.relu(out)), state)
            return jax.nn.relu(out + identity), state

    class ResNet(eqx.Module):
        conv1: eqx.nn.Conv2d
        bn1: eqx.nn.BatchNorm
        pool: eqx.nn.MaxPool2d
        blocks: list
        fc: eqx.nn.Linear

        def __init__(self):
            self.conv1 = eqx.nn.Conv2d(3, widths[0], 7, 2, 3, use_bias=False, key=next(keys))
            self.bn1 = bn(widths[0])
            self.pool = eqx.nn.MaxPool2d(3, 2, 1)
            self.blocks, cin = [], widths[0]
            for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
                self.blocks += [Block(cin, w, 1 if i == 0 else 2)] + [Block(w, w, 1) for _ in range(n - 1)]
                cin = w
            self.fc = eqx.nn.Linear(widths[-1], CLASSES, key=next(keys))

        def one(self, x, state):
            x, state = self.bn1(self.conv1(x), state)
            x = self.pool(jax.nn.relu(x))
            for block in self.blocks:
                x, state = block(x, state)
            return self.fc(x.mean(axis=(1, 2))), state

        def __call__(self, x, state):
            return jax.vmap(self.one, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(x, state)

    model, state = eqx.nn.make_with_state(ResNet)()
    return model, state


# ---- cases -------------------------------------------------------------------------------------------------

def data(batch: int, side: int) -> tuple:
    rng = np.random.default_rng(0)
    return (jnp.asarray(rng.standard_normal((batch, 3, side, side)), jnp.float32),
            jnp.asarray(rng.integers(0, CLASSES, batch), jnp.int32))


def jnn_model(state: dict | None = None, arch=FULL_ARCH) -> jnn.Module:
    jnn.manual_seed(0)
    net = make_resnet(jnn, *arch).train()
    if state is not None:
        net.load_state_dict(state)
    return net


def torch_model(state: dict, arch=FULL_ARCH):
    import torch

    net = make_resnet(torch.nn, *arch).train()
    net.load_state_dict({k: torch.tensor(np.array(v)) for k, v in state.items()})
    return net


def builders(batch: int, side: int, settings: Settings, arch=FULL_ARCH) -> dict:
    state = {k: np.asarray(v) for k, v in jnn_model(arch=arch).state_dict().items()}
    xy = data(batch, side)
    device = "cuda" if settings.gpu else "cpu"

    def hand():
        _, params, buffers = jnn.split(jnn_model(state, arch))
        return steps.hand_case(hand_forward, params, buffers, xy, "xent")

    b = {
        HAND: hand,
        SPLIT: lambda: steps.split_case(jnn_model(state, arch), xy, "xent"),
        PYTREE: lambda: steps.pytree_case(jnn_model(state, arch), xy, "xent"),
    }
    b[NNX] = lambda: steps.nnx_case(nnx_model(*arch), (jnp.transpose(xy[0], (0, 2, 3, 1)), xy[1]), "xent")
    b[EQX] = lambda: steps.eqx_case(*eqx_model(*arch), xy, "xent")
    b[TORCH] = lambda: steps.torch_case(torch_model(state, arch), xy, "xent", device=device)
    if settings.torch_compile:
        b[TORCH_COMPILE] = lambda: steps.torch_case(torch_model(state, arch), xy, "xent", compiled=True,
                                                    device=device)
    return b


def run(settings: Settings, tiny: bool = False) -> list[dict]:
    batch, side, arch = (4, 16, TINY_ARCH) if tiny else (128, 32, FULL_ARCH)
    cases, failed = build_cases(builders(batch, side, settings, arch))
    label = f"ResNet-18 batch {batch}"
    return measure(cases, settings, label) + [dict(r, workload=label) for r in failed]


def outputs(batch: int = 4, side: int = 16) -> dict[str, np.ndarray]:
    """Logits and new running_var of layer4's last BatchNorm after one training-mode forward (same weights)."""
    net = jnn_model(arch=TINY_ARCH)
    state = {k: np.asarray(v) for k, v in net.state_dict().items()}
    x, _ = data(batch, side)
    apply, params, buffers = jnn.split(net)
    key = "layer4.0.bn2.running_var"
    hand_out, hand_buffers = jax.jit(hand_forward)(params, buffers, x)
    split_out, split_buffers = jax.jit(apply)(params, buffers, x)
    tree_out, tree_net = jax.jit(lambda m, x: (m(x), m))(jnn_model(state, TINY_ARCH), x)
    import torch

    tnet = torch_model(state, TINY_ARCH)
    with torch.no_grad():
        torch_out = tnet(torch.tensor(np.asarray(x))).numpy()
    out = {
        HAND: (hand_out, hand_buffers[key]),
        SPLIT: (split_out, split_buffers[key]),
        PYTREE: (tree_out, tree_net.state_dict()[key]),
        TORCH: (torch_out, tnet.state_dict()[key].numpy()),
    }
    return {k: np.concatenate([np.ravel(a) for a in v]) for k, v in out.items()}
