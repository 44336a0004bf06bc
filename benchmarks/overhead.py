"""Workload 5: per-call overhead against model size.

Models of N = 10, 100, 1000 ``Linear(1, 1)`` submodules doing almost no work, passed whole to each framework's
jitted path every call:

- ``call``: a jitted forward that runs only the first submodule on a (1, 1) input: compile time and work stay
  flat in N, everything a framework does per submodule (flattening, graph traversal) grows with it;
- ``update``: a jitted function that takes the model and returns it with every parameter scaled by 0.999 (the
  shape of a training step: all state in, all state out; Flax NNX updates the module in place, its idiom).

The hand-written row is ``jax.jit`` over a dict of the same arrays; the per-submodule overhead is the slope of
time against N. (A full training step of a 1000-layer chain is not used: XLA's CPU compile of it takes minutes.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jnn as nn
from benchmarks.harness import EQX, HAND, NNX, PYTREE, SPLIT, Case, Settings, build_cases, measure

SIZES = (10, 100, 1000)
TINY_SIZES = (2, 4)
DECAY = 0.999


class Stack(nn.Module):
    """N Linear(1, 1) submodules; forward runs the first one."""

    def __init__(self, n: int):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(1, 1) for _ in range(n)])

    def forward(self, x):
        return self.blocks[0](x)


def hand_forward(params, x):
    return x @ params["blocks.0.weight"].T + params["blocks.0.bias"]


def jnn_model(n: int) -> nn.Module:
    nn.manual_seed(0)
    return Stack(n)


def nnx_model(n: int):
    from flax import nnx

    class NnxStack(nnx.Module):
        def __init__(self, rngs):
            self.blocks = nnx.List([nnx.Linear(1, 1, rngs=rngs) for _ in range(n)])

        def __call__(self, x):
            return self.blocks[0](x)

    return NnxStack(nnx.Rngs(0))


def eqx_model(n: int):
    import equinox as eqx

    class EqxStack(eqx.Module):
        blocks: list

        def __call__(self, x):
            return jax.vmap(self.blocks[0])(x)

    return EqxStack([eqx.nn.Linear(1, 1, key=k) for k in jax.random.split(jax.random.key(0), n)])


def _decay(tree):
    return jax.tree_util.tree_map(lambda a: a * DECAY, tree)


def _runner(fn, state: list, *data):
    """Feed the returned model back in, as a training loop does; block on it."""

    def run():
        state[0] = jax.block_until_ready(fn(state[0], *data))

    return run


def call_builders(n: int) -> dict:
    x = jnp.ones((1, 1))

    def hand():
        params = dict(jnn_model(n).state_dict())
        f = jax.jit(hand_forward)
        return Case(HAND, lambda: jax.block_until_ready(f(params, x)))

    def split():
        apply, params, buffers = nn.split(jnn_model(n))
        f = jax.jit(lambda p, b, x: apply(p, b, x)[0])
        return Case(SPLIT, lambda: jax.block_until_ready(f(params, buffers, x)))

    def pytree():
        net, f = jnn_model(n), jax.jit(lambda m, x: m(x))
        return Case(PYTREE, lambda: jax.block_until_ready(f(net, x)))

    def flax():
        from flax import nnx

        model, f = nnx_model(n), nnx.jit(lambda m, x: m(x))
        return Case(NNX, lambda: jax.block_until_ready(f(model, x)))

    def equinox():
        import equinox as eqx

        model, f = eqx_model(n), eqx.filter_jit(lambda m, x: m(x))
        return Case(EQX, lambda: jax.block_until_ready(f(model, x)))

    return {HAND: hand, SPLIT: split, PYTREE: pytree, NNX: flax, EQX: equinox}


def update_builders(n: int) -> dict:
    def hand():
        return Case(HAND, _runner(jax.jit(_decay), [dict(jnn_model(n).state_dict())]))

    def split():
        _, params, buffers = nn.split(jnn_model(n))
        f = jax.jit(lambda p, b: (_decay(p), b))
        state = [params, buffers]

        def run():
            state[:] = jax.block_until_ready(f(*state))

        return Case(SPLIT, run)

    def pytree():
        return Case(PYTREE, _runner(jax.jit(_decay), [jnn_model(n)]))

    def flax():
        from flax import nnx

        model = nnx_model(n)

        @nnx.jit
        def decay(m):
            for _, param in nnx.iter_graph(m):
                if isinstance(param, nnx.Param):
                    param[...] = param[...] * DECAY

        def run():
            decay(model)
            jax.block_until_ready(model.blocks[0].kernel[...])

        return Case(NNX, run)

    def equinox():
        import equinox as eqx

        return Case(EQX, _runner(eqx.filter_jit(_decay), [eqx_model(n)]))

    return {HAND: hand, SPLIT: split, PYTREE: pytree, NNX: flax, EQX: equinox}


def run(settings: Settings, tiny: bool = False) -> list[dict]:
    rows = []
    for n in TINY_SIZES if tiny else SIZES:
        for kind, builders in (("call", call_builders), ("update", update_builders)):
            cases, failed = build_cases(builders(n))
            label = f"overhead {kind} N={n}"
            found = measure(cases, settings, label) + [dict(r, workload=label) for r in failed]
            rows += [dict(r, kind=kind, modules=n) for r in found]
    return rows


def per_module(rows: list[dict]) -> dict[tuple[str, str], float]:
    """Slope (seconds per extra submodule) between the smallest and largest N, per (kind, framework)."""
    slopes = {}
    for kind in ("call", "update"):
        for framework in {r["framework"] for r in rows}:
            pts = sorted((r["modules"], r["median_s"]) for r in rows
                         if r["kind"] == kind and r["framework"] == framework and "median_s" in r)
            if len(pts) >= 2:
                (n0, t0), (n1, t1) = pts[0], pts[-1]
                slopes[kind, framework] = (t1 - t0) / (n1 - n0)
    return slopes


def outputs(n: int = 4) -> dict[str, np.ndarray]:
    """Forward of the hand-written dict function and of jnn's two paths on the same weights."""
    net = jnn_model(n)
    x = jnp.full((1, 1), 0.5)
    apply, params, buffers = nn.split(net)
    return {
        HAND: np.asarray(hand_forward(params, x)),
        SPLIT: np.asarray(jax.jit(apply)(params, buffers, x)[0]),
        PYTREE: np.asarray(jax.jit(lambda m, x: m(x))(net, x)),
    }
