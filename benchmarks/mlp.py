"""Workload 1: the MLP users meet first (64 -> 64 x 5 Linear+ReLU -> 1), batch 8 and 128: dispatch-bound.

All frameworks start from the same weights (jnn's init, copied across).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jnn as nn
import jnn.functional as F
from benchmarks import steps
from benchmarks.harness import EQX, HAND, NNX, PYTREE, SPLIT, TORCH, TORCH_COMPILE, Settings, build_cases, measure

INPUT, HIDDEN, LAYERS, OUTPUT = 64, 64, 5, 1


class MLP(nn.Module):
    def __init__(self, input_dim=INPUT, hidden_dim=HIDDEN, num_layers=LAYERS, output_dim=OUTPUT):
        super().__init__()
        self.input_layer = nn.Linear(input_dim, hidden_dim)
        self.hidden_layers = nn.ModuleList([nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers)])
        self.output_layer = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        x = F.relu(self.input_layer(x))
        for layer in self.hidden_layers:
            x = F.relu(layer(x))
        return self.output_layer(x)


def names() -> list[str]:
    return ["input_layer", *(f"hidden_layers.{i}" for i in range(LAYERS)), "output_layer"]


def hand_forward(params, buffers, x):
    """The same math over a dict of arrays keyed by state_dict names."""
    layers = names()
    for name in layers[:-1]:
        x = jax.nn.relu(x @ params[f"{name}.weight"].T + params[f"{name}.bias"])
    return x @ params[f"{layers[-1]}.weight"].T + params[f"{layers[-1]}.bias"], buffers


def nnx_model(state: dict):
    from flax import nnx

    class NnxMLP(nnx.Module):
        def __init__(self, rngs):
            self.layers = nnx.List([nnx.Linear(INPUT, HIDDEN, rngs=rngs)]
                                   + [nnx.Linear(HIDDEN, HIDDEN, rngs=rngs) for _ in range(LAYERS)]
                                   + [nnx.Linear(HIDDEN, OUTPUT, rngs=rngs)])

        def __call__(self, x):
            for layer in self.layers[:-1]:
                x = nnx.relu(layer(x))
            return self.layers[-1](x)

    model = NnxMLP(nnx.Rngs(0))
    for layer, name in zip(model.layers, names(), strict=True):
        layer.kernel[...] = jnp.array(state[f"{name}.weight"].T)
        layer.bias[...] = jnp.array(state[f"{name}.bias"])
    return model


def eqx_model(state: dict):
    import equinox as eqx

    class EqxMLP(eqx.Module):
        layers: list

        def __call__(self, x, state):
            for layer in self.layers[:-1]:
                x = jax.nn.relu(jax.vmap(layer)(x))
            return jax.vmap(self.layers[-1])(x), state

    key = jax.random.key(0)
    sizes = [(INPUT, HIDDEN)] + [(HIDDEN, HIDDEN)] * LAYERS + [(HIDDEN, OUTPUT)]
    layers = []
    for (i, o), name in zip(sizes, names(), strict=True):
        layer = eqx.nn.Linear(i, o, key=key)
        layer = eqx.tree_at(lambda m: (m.weight, m.bias), layer,
                            (jnp.array(state[f"{name}.weight"]), jnp.array(state[f"{name}.bias"])))
        layers.append(layer)
    return EqxMLP(layers)


def torch_model(state: dict):
    import torch

    layers = []
    sizes = [(INPUT, HIDDEN)] + [(HIDDEN, HIDDEN)] * LAYERS + [(HIDDEN, OUTPUT)]
    for k, (i, o) in enumerate(sizes):
        layers.append(torch.nn.Linear(i, o))
        if k < len(sizes) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    linear = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer, name in zip(linear, names(), strict=True):
            layer.weight.copy_(torch.tensor(np.array(state[f"{name}.weight"])))
            layer.bias.copy_(torch.tensor(np.array(state[f"{name}.bias"])))
    return model


def data(batch: int) -> tuple:
    rng = np.random.default_rng(0)
    return (jnp.asarray(rng.standard_normal((batch, INPUT)), jnp.float32),
            jnp.asarray(rng.standard_normal((batch, OUTPUT)), jnp.float32))


def builders(batch: int, settings: Settings) -> dict:
    nn.manual_seed(0)
    net = MLP()
    state = {k: np.asarray(v) for k, v in net.state_dict().items()}
    xy = data(batch)
    device = "cuda" if settings.gpu else "cpu"
    b = {
        HAND: lambda: steps.hand_case(hand_forward, nn.split(net)[1], {}, xy, "mse"),
        SPLIT: lambda: steps.split_case(_copy(state), xy, "mse"),
        PYTREE: lambda: steps.pytree_case(_copy(state), xy, "mse"),
        NNX: lambda: steps.nnx_case(nnx_model(state), xy, "mse"),
        EQX: lambda: steps.eqx_case(eqx_model(state), None, xy, "mse"),
        TORCH: lambda: steps.torch_case(torch_model(state), xy, "mse", device=device),
    }
    if settings.torch_compile:
        b[TORCH_COMPILE] = lambda: steps.torch_case(torch_model(state), xy, "mse", compiled=True, device=device)
    return b


def _copy(state: dict) -> MLP:
    net = MLP()
    net.load_state_dict(state)
    return net


def run(settings: Settings, tiny: bool = False) -> list[dict]:
    rows = []
    for batch in (4,) if tiny else (8, 128):
        cases, failed = build_cases(builders(batch, settings))
        label = f"MLP batch {batch}"
        rows += measure(cases, settings, label) + [dict(r, workload=label) for r in failed]
    return rows


def outputs(batch: int = 4) -> dict[str, np.ndarray]:
    """Each framework's forward on the same weights and input (for the equality check)."""
    nn.manual_seed(0)
    net = MLP()
    state = {k: np.asarray(v) for k, v in net.state_dict().items()}
    x, _ = data(batch)
    apply, params, buffers = nn.split(net)
    out = {
        HAND: hand_forward(params, buffers, x)[0],
        SPLIT: jax.jit(apply)(params, buffers, x)[0],
        PYTREE: jax.jit(lambda m, x: m(x))(_copy(state), x),
        NNX: nnx_model(state)(x),
        EQX: eqx_model(state)(x, None)[0],
    }
    import torch

    with torch.no_grad():
        out[TORCH] = torch_model(state)(torch.as_tensor(np.asarray(x))).numpy()
    return {k: np.asarray(v) for k, v in out.items()}
