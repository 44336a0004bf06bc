"""What jnn's two compiled paths cost against hand-written JAX (the core issue's check; the full suite follows).

    python benchmarks/core_overhead.py [--steps 300]

1. A training step (forward + backward + Adam) of the tutorial MLP (64 -> 64 x5 -> 1) at batch 8 and 128:
   hand-written JAX over a dict of arrays, jnn.split's apply, and the module passed to jax.jit as a pytree.
2. Per-call cost of a jitted call whose argument is a module of N tiny submodules, against the same arrays
   in a dict: this is the flattening cost of the pytree path.
Medians over interleaved repetitions; ratios to hand-written JAX.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jnn as nn
import jnn.functional as F


class MLP(nn.Module):
    def __init__(self, input_dim=64, hidden_dim=64, num_layers=5, output_dim=1):
        super().__init__()
        self.input_layer = nn.Linear(input_dim, hidden_dim)
        self.hidden_layers = nn.ModuleList([nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers)])
        self.output_layer = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        x = F.relu(self.input_layer(x))
        for layer in self.hidden_layers:
            x = F.relu(layer(x))
        return self.output_layer(x)


def handwritten_mlp(params, x):
    x = jax.nn.relu(x @ params["input_layer.weight"].T + params["input_layer.bias"])
    for i in range(5):
        x = jax.nn.relu(x @ params[f"hidden_layers.{i}.weight"].T + params[f"hidden_layers.{i}.bias"])
    return x @ params["output_layer.weight"].T + params["output_layer.bias"]


def time_calls(fn, steps: int) -> float:
    """Median seconds per call of fn() (fn blocks on its result)."""
    for _ in range(5):
        fn()
    samples = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def training_steps(batch: int):
    net = MLP()
    opt = optax.adam(1e-3)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((batch, 64)), jnp.float32)
    y = jnp.zeros((batch, 1))

    apply, params, buffers = nn.split(net)
    hand_params = dict(params)

    @jax.jit
    def hand_step(p, s, x, y):
        loss, g = jax.value_and_grad(lambda p: ((handwritten_mlp(p, x) - y) ** 2).mean())(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    @jax.jit
    def split_step(p, s, b, x, y):
        def loss_fn(p):
            out, nb = apply(p, b, x)
            return ((out - y) ** 2).mean(), nb

        (loss, b), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, b, loss

    @jax.jit
    def pytree_step(m, s, x, y):
        loss, g = jax.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(m)
        u, s = opt.update(g, s, m)
        return optax.apply_updates(m, u), s, loss

    state = {"hand": (hand_params, opt.init(hand_params)), "split": (params, opt.init(params), buffers),
             "pytree": (net, opt.init(net))}

    def run_hand():
        p, s = state["hand"]
        p, s, loss = hand_step(p, s, x, y)
        state["hand"] = (p, s)
        loss.block_until_ready()

    def run_split():
        p, s, b = state["split"]
        p, s, b, loss = split_step(p, s, b, x, y)
        state["split"] = (p, s, b)
        loss.block_until_ready()

    def run_pytree():
        m, s = state["pytree"]
        m, s, loss = pytree_step(m, s, x, y)
        state["pytree"] = (m, s)
        loss.block_until_ready()

    return {"hand-written JAX": run_hand, "jnn split": run_split, "jnn module pytree": run_pytree}


def flatten_calls(n_modules: int):
    net = nn.Sequential(*[nn.Linear(1, 1) for _ in range(n_modules)])
    arrays = dict(net.state_dict())
    f_dict = jax.jit(lambda d: d["0.weight"])
    f_mod = jax.jit(lambda m: m[0].weight)
    return {
        "dict of arrays": lambda: f_dict(arrays).block_until_ready(),
        "jnn module pytree": lambda: f_mod(net).block_until_ready(),
    }


def interleaved(cases: dict, steps: int, rounds: int = 5) -> dict[str, float]:
    results: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            results[name].append(time_calls(fn, steps // rounds))
    return {k: statistics.median(v) for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, jax {jax.__version__}")
    for batch in (8, 128):
        medians = interleaved(training_steps(batch), args.steps)
        base = medians["hand-written JAX"]
        print(f"\nMLP training step, batch {batch}")
        for name, t in medians.items():
            print(f"  {name:20s} {t * 1e6:9.1f} us   {t / base:5.2f}x")
    for n in (10, 100, 1000):
        medians = interleaved(flatten_calls(n), args.steps)
        base = medians["dict of arrays"]
        print(f"\njitted call on {n} Linear(1, 1) modules")
        for name, t in medians.items():
            print(f"  {name:20s} {t * 1e6:9.1f} us   {t / base:5.2f}x")


if __name__ == "__main__":
    main()
