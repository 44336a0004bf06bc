"""Compile time against depth: a stack of identical Transformer-encoder blocks, unrolled vs ``jnn.scan_layers``.

    python benchmarks/scan_depth.py [--depths 8 32 64] [--d-model 64] [--nhead 4] [--block transformer|mlp] [--tiny]

For each depth, a jitted training step (forward + backward + SGD update through ``jnn.split``) is lowered and
compiled (``jax.jit(step).lower(...).compile()``, timed together), then run ``steps`` times. Three modes: the
blocks in a Python loop ('unrolled'); ``jnn.scan_layers`` with per-layer parameters in the training state
('scanned': stacked inside the step, gradients split again); and ``jnn.scan_layers`` with the parameters kept
stacked by ``jnn.split(net, stacked=["layers"])`` ('scanned, stacked params'). The table shows the compile time,
the median step time, and the unrolled/scanned compile-time ratio. The target is 64 scanned blocks compiling in
at most 1/5 of the unrolled time. ``run()`` returns the rows for other scripts.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import jnn
import jnn as nn


class MLPBlock(nn.Module):
    """A pre-norm residual MLP block: x + Linear(GELU(Linear(LayerNorm(x))))."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, 2 * d_model)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(2 * d_model, d_model)

    def forward(self, x: jax.Array) -> jax.Array:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


def make_block(kind: str, d_model: int, nhead: int) -> nn.Module:
    if kind == "transformer":
        return nn.TransformerEncoderLayer(d_model, nhead, 2 * d_model, dropout=0.0, batch_first=True)
    if kind == "mlp":
        return MLPBlock(d_model)
    raise ValueError(f"scan_depth: block must be 'transformer' or 'mlp', got {kind!r}")


class Encoder(nn.Module):
    """``depth`` identical blocks, run by a Python loop or by jnn.scan_layers."""

    def __init__(self, depth: int, d_model: int, nhead: int, scan: bool, block: str = "transformer") -> None:
        super().__init__()
        self.layers = nn.ModuleList([make_block(block, d_model, nhead) for _ in range(depth)])
        self.scan = scan

    def forward(self, x: jax.Array) -> jax.Array:
        if self.scan:
            return jnn.scan_layers(self.layers, x)
        for layer in self.layers:
            x = layer(x)
        return x


MODES = ("unrolled", "scanned", "scanned, stacked params")


def _measure(depth: int, mode: str, d_model: int, nhead: int, batch: int, seq: int, steps: int,
             block: str) -> dict:
    jnn.manual_seed(0)
    net = Encoder(depth, d_model, nhead, mode != "unrolled", block)
    apply, params, buffers = jnn.split(net, stacked=["layers"] if mode == "scanned, stacked params" else ())
    x = jax.random.normal(jax.random.key(0), (batch, seq, d_model))

    def step(params: dict, buffers: dict, x: jax.Array) -> tuple[dict, jax.Array]:
        def loss(p: dict) -> jax.Array:
            return jnp.mean(apply(p, buffers, x, train=True)[0] ** 2)

        value, grads = jax.value_and_grad(loss)(params)
        return jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads), value

    def forward(params: dict, buffers: dict, x: jax.Array) -> jax.Array:
        return apply(params, buffers, x, train=True)[0]

    start = time.perf_counter()
    jax.jit(forward).lower(params, buffers, x).compile()
    forward_compile_s = time.perf_counter() - start
    start = time.perf_counter()
    compiled = jax.jit(step).lower(params, buffers, x).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(params, buffers, x))  # first run (allocation), not timed
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        jax.block_until_ready(compiled(params, buffers, x))
        times.append(time.perf_counter() - start)
    return {"depth": depth, "mode": mode, "compile_s": compile_s,
            "forward_compile_s": forward_compile_s,
            "step_ms": 1e3 * statistics.median(times), "block": block, "d_model": d_model,
            "device": jax.devices()[0].platform}


def run(depths: tuple[int, ...] = (8, 32, 64), d_model: int = 64, nhead: int = 4, batch: int = 8, seq: int = 16,
        steps: int = 10, block: str = "transformer") -> list[dict]:
    """One row per (depth, mode): ``depth``, ``mode`` ('unrolled', 'scanned' or 'scanned, stacked params'),
    ``compile_s`` (lower + compile of the jitted training step), ``forward_compile_s`` (the same for the forward
    pass alone), ``step_ms`` (median steady-state step), ``block`` ('transformer': nn.TransformerEncoderLayer,
    or 'mlp'), ``d_model``, ``device``; scanned rows also carry ``compile_speedup`` (unrolled compile time /
    this row's) and ``step_ratio`` (this row's step time / unrolled)."""
    rows = []
    for depth in depths:
        unrolled, *scanned = (_measure(depth, mode, d_model, nhead, batch, seq, steps, block) for mode in MODES)
        for row in scanned:
            row["compile_speedup"] = unrolled["compile_s"] / row["compile_s"]
            row["step_ratio"] = row["step_ms"] / unrolled["step_ms"]
        rows += [unrolled, *scanned]
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'depth':>5}  {'mode':<23} {'fwd compile s':>13} {'step compile s':>14} {'step ms':>9} "
             f"{'compile speed-up':>17} {'step ratio':>11}"]
    for r in rows:
        speedup = f"{r['compile_speedup']:.1f}x" if "compile_speedup" in r else ""
        ratio = f"{r['step_ratio']:.2f}" if "step_ratio" in r else ""
        lines.append(f"{r['depth']:>5}  {r['mode']:<23} {r['forward_compile_s']:>13.2f} {r['compile_s']:>14.2f} "
                     f"{r['step_ms']:>9.2f} {speedup:>17} {ratio:>11}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--nhead", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--block", choices=["transformer", "mlp"], default="transformer")
    parser.add_argument("--tiny", action="store_true", help="smoke test: depths 2 and 4, d_model 16, 2 steps")
    args = parser.parse_args()
    if args.tiny:
        d_model, nhead = 16, 2
        rows = run(depths=(2, 4), d_model=d_model, nhead=nhead, batch=2, seq=4, steps=2, block=args.block)
    else:
        d_model, nhead = args.d_model, args.nhead
        rows = run(depths=tuple(args.depths), d_model=d_model, nhead=nhead, steps=args.steps, block=args.block)
    print(f"Training step of N identical {args.block} blocks (d_model {d_model}, {nhead} heads) on "
          f"{jax.devices()[0].device_kind}; compile = lower + compile of the jitted step")
    print(table(rows))


if __name__ == "__main__":
    main()
