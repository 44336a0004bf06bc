"""Workload 4: a 6-layer Transformer encoder (d_model 256, 8 heads, feed-forward 1024, post-norm, ReLU, dropout 0)
on sequences of 128 at batch 16, batch-first; loss: MSE of the output against a random target.

jnn and PyTorch run the same source (``nn.TransformerEncoder(nn.TransformerEncoderLayer(...), 6)``); hand-written
JAX is the same math over the state_dict-named dict; Flax NNX and Equinox use their own attention layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

import jnn
from benchmarks import steps
from benchmarks.harness import EQX, HAND, NNX, PYTREE, SPLIT, TORCH, TORCH_COMPILE, Settings, build_cases, measure

EPS = 1e-5


@dataclass(frozen=True)
class Shape:
    layers: int = 6
    d_model: int = 256
    heads: int = 8
    ff: int = 1024
    seq: int = 128
    batch: int = 16


FULL, TINY = Shape(), Shape(layers=2, d_model=16, heads=2, ff=32, seq=8, batch=2)


def make_encoder(nn, s: Shape):
    """The encoder written once against the torch.nn API; ``nn`` is ``jnn`` or ``torch.nn``."""
    layer = nn.TransformerEncoderLayer(s.d_model, s.heads, s.ff, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, s.layers, enable_nested_tensor=False)


def _layer_norm(p, name, x):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + EPS) * p[f"{name}.weight"] + p[f"{name}.bias"]


def hand_forward(p, b, x, heads):
    batch, seq, d = x.shape
    for i in range(sum(1 for k in p if k.endswith("self_attn.in_proj_weight"))):
        n = f"layers.{i}"
        qkv = x @ p[f"{n}.self_attn.in_proj_weight"].T + p[f"{n}.self_attn.in_proj_bias"]
        q, k, v = (t.reshape(batch, seq, heads, d // heads) for t in jnp.split(qkv, 3, axis=-1))
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(d // heads)
        attn = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v).reshape(batch, seq, d)
        attn = attn @ p[f"{n}.self_attn.out_proj.weight"].T + p[f"{n}.self_attn.out_proj.bias"]
        x = _layer_norm(p, f"{n}.norm1", x + attn)
        h = jax.nn.relu(x @ p[f"{n}.linear1.weight"].T + p[f"{n}.linear1.bias"])
        x = _layer_norm(p, f"{n}.norm2", x + h @ p[f"{n}.linear2.weight"].T + p[f"{n}.linear2.bias"])
    return x, b


def nnx_model(s: Shape):
    from flax import nnx

    class Layer(nnx.Module):
        def __init__(self, rngs):
            self.attn = nnx.MultiHeadAttention(s.heads, s.d_model, decode=False, rngs=rngs)
            self.linear1 = nnx.Linear(s.d_model, s.ff, rngs=rngs)
            self.linear2 = nnx.Linear(s.ff, s.d_model, rngs=rngs)
            self.norm1 = nnx.LayerNorm(s.d_model, epsilon=EPS, rngs=rngs)
            self.norm2 = nnx.LayerNorm(s.d_model, epsilon=EPS, rngs=rngs)

        def __call__(self, x):
            x = self.norm1(x + self.attn(x))
            return self.norm2(x + self.linear2(nnx.relu(self.linear1(x))))

    class Encoder(nnx.Module):
        def __init__(self, rngs):
            self.layers = nnx.List([Layer(rngs) for _ in range(s.layers)])

        def __call__(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    return Encoder(nnx.Rngs(0))


def eqx_model(s: Shape):
    import equinox as eqx

    keys = iter(jax.random.split(jax.random.key(0), 4 * s.layers))

    class Layer(eqx.Module):
        attn: eqx.nn.MultiheadAttention
        linear1: eqx.nn.Linear
        linear2: eqx.nn.Linear
        norm1: eqx.nn.LayerNorm
        norm2: eqx.nn.LayerNorm

        def __init__(self):
            self.attn = eqx.nn.MultiheadAttention(s.heads, s.d_model, use_query_bias=True, use_key_bias=True,
                                                  use_value_bias=True, use_output_bias=True, key=next(keys))
            self.linear1 = eqx.nn.Linear(s.d_model, s.ff, key=next(keys))
            self.linear2 = eqx.nn.Linear(s.ff, s.d_model, key=next(keys))
            self.norm1 = eqx.nn.LayerNorm(s.d_model, eps=EPS)
            self.norm2 = eqx.nn.LayerNorm(s.d_model, eps=EPS)

        def __call__(self, x):  # one sequence: (seq, d_model)
            x = jax.vmap(self.norm1)(x + self.attn(x, x, x))
            h = jax.vmap(self.linear2)(jax.nn.relu(jax.vmap(self.linear1)(x)))
            return jax.vmap(self.norm2)(x + h)

    class Encoder(eqx.Module):
        layers: list

        def one(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

        def __call__(self, x, state):
            return jax.vmap(self.one)(x), state

    return Encoder([Layer() for _ in range(s.layers)])


def data(s: Shape) -> tuple:
    rng = np.random.default_rng(0)
    return (jnp.asarray(rng.standard_normal((s.batch, s.seq, s.d_model)), jnp.float32),
            jnp.asarray(rng.standard_normal((s.batch, s.seq, s.d_model)), jnp.float32))


def jnn_model(s: Shape, state: dict | None = None) -> jnn.Module:
    jnn.manual_seed(0)
    net = make_encoder(jnn, s).train()
    if state is not None:
        net.load_state_dict(state)
    return net


def torch_model(s: Shape, state: dict):
    import torch

    net = make_encoder(torch.nn, s).train()
    net.load_state_dict({k: torch.tensor(np.array(v)) for k, v in state.items()})
    return net


def builders(s: Shape, settings: Settings) -> dict:
    state = {k: np.asarray(v) for k, v in jnn_model(s).state_dict().items()}
    xy = data(s)
    device = "cuda" if settings.gpu else "cpu"

    def hand():
        _, params, buffers = jnn.split(jnn_model(s, state))
        return steps.hand_case(lambda p, b, x: hand_forward(p, b, x, s.heads), params, buffers, xy, "mse")

    b = {
        HAND: hand,
        SPLIT: lambda: steps.split_case(jnn_model(s, state), xy, "mse"),
        PYTREE: lambda: steps.pytree_case(jnn_model(s, state), xy, "mse"),
        NNX: lambda: steps.nnx_case(nnx_model(s), xy, "mse"),
        EQX: lambda: steps.eqx_case(eqx_model(s), None, xy, "mse"),
        TORCH: lambda: steps.torch_case(torch_model(s, state), xy, "mse", device=device),
    }
    if settings.torch_compile:
        b[TORCH_COMPILE] = lambda: steps.torch_case(torch_model(s, state), xy, "mse", compiled=True, device=device)
    return b


def run(settings: Settings, tiny: bool = False) -> list[dict]:
    s = TINY if tiny else FULL
    cases, failed = build_cases(builders(s, settings))
    label = f"Transformer batch {s.batch}"
    return measure(cases, settings, label) + [dict(r, workload=label) for r in failed]


def outputs(s: Shape = TINY) -> dict[str, np.ndarray]:
    """Each framework's forward on the same weights (jnn, hand-written JAX, PyTorch)."""
    net = jnn_model(s)
    state = {k: np.asarray(v) for k, v in net.state_dict().items()}
    x, _ = data(s)
    apply, params, buffers = jnn.split(net)
    out = {
        HAND: jax.jit(lambda p, b, x: hand_forward(p, b, x, s.heads))(params, buffers, x)[0],
        SPLIT: jax.jit(apply)(params, buffers, x)[0],
        PYTREE: jax.jit(lambda m, x: m(x))(jnn_model(s, state), x),
    }
    import torch

    with torch.no_grad():
        out[TORCH] = torch_model(s, state)(torch.tensor(np.asarray(x))).numpy()
    return {k: np.asarray(v) for k, v in out.items()}
