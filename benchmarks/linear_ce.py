"""Workload 7: the loss of a large-vocabulary head, ``F.linear_cross_entropy`` (chunked over the vocabulary)
against the plain ``F.cross_entropy(F.linear(x, w), target)`` that holds all ``tokens x vocab`` logits.

    python -m benchmarks.linear_ce [--tokens 1024] [--features 256] [--vocab 50257] [--steps 5] [--tiny]

For the forward and for forward + backward (the gradients of input and weight), each version is jitted; its peak
temporary memory comes from XLA's compiled memory analysis (``jax.jit(f).lower(...).compile().memory_analysis()``,
``temp_size_in_bytes``: the buffers the program allocates besides its arguments and outputs), and its time is the
median of ``steps`` calls after a warm-up. ``run()`` returns the rows; ``table()`` formats them for RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jnn.functional as F

PLAIN = "Linear + cross_entropy"
CHUNKED = "linear_cross_entropy"


def _functions(options=None):
    def plain(x, w, t):
        return F.cross_entropy(F.linear(x, w), t)

    def chunked(x, w, t):
        return F.linear_cross_entropy(x, w, t, options=options)

    return {PLAIN: plain, CHUNKED: chunked}


def run(tokens: int = 1024, features: int = 256, vocab: int = 50257, steps: int = 5) -> list[dict]:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((tokens, features), dtype=np.float32))
    w = jnp.asarray(rng.standard_normal((vocab, features), dtype=np.float32) * 0.02)
    t = jnp.asarray(rng.integers(0, vocab, tokens, dtype=np.int32))
    rows, values = [], {}
    for name, fn in _functions().items():
        for mode, f in (("forward", fn), ("forward+backward", jax.value_and_grad(fn, argnums=(0, 1)))):
            jitted = jax.jit(f)
            t0 = time.perf_counter()
            compiled = jitted.lower(x, w, t).compile()
            compile_s = time.perf_counter() - t0
            memory = compiled.memory_analysis()
            out = jax.block_until_ready(compiled(x, w, t))  # warm-up
            values[(name, mode)] = out
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                jax.block_until_ready(compiled(x, w, t))
                times.append(time.perf_counter() - t0)
            rows.append({"workload": f"linear cross entropy, {tokens} tokens x {features} features -> vocab {vocab}",
                         "impl": name, "mode": mode, "temp_bytes": int(memory.temp_size_in_bytes),
                         "logits_bytes": tokens * vocab * 4, "median_s": statistics.median(times),
                         "compile_s": compile_s, "n": steps})
    # the same numbers from both: loss, and the gradients of the forward+backward
    loss_p, (gx_p, gw_p) = values[(PLAIN, "forward+backward")]
    loss_c, (gx_c, gw_c) = values[(CHUNKED, "forward+backward")]
    for a, b in ((loss_c, loss_p), (gx_c, gx_p), (gw_c, gw_p)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=1e-6)
    for r in rows:
        base = next(p for p in rows if p["impl"] == PLAIN and p["mode"] == r["mode"])
        r["time_ratio"] = r["median_s"] / base["median_s"]
        r["memory_ratio"] = base["temp_bytes"] / max(r["temp_bytes"], 1)
    return rows


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def table(rows: list[dict]) -> list[str]:
    lines = ["| pass | implementation | peak temporary memory | logits (tokens x vocab, f32) | memory saved | "
             "median time | time vs plain | compile |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['impl']} | {_mb(r['temp_bytes'])} | {_mb(r['logits_bytes'])} | "
                     f"{r['memory_ratio']:.1f}x | {r['median_s'] * 1e3:.1f} ms | {r['time_ratio']:.2f}x | "
                     f"{r['compile_s']:.2f} s |")
    return lines


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="a smoke run: 64 tokens, 16 features, vocab 1000")
    args = parser.parse_args(argv)
    if args.tiny:
        args.tokens, args.features, args.vocab, args.steps = 64, 16, 1000, 2
    rows = run(args.tokens, args.features, args.vocab, args.steps)
    print(f"### {rows[0]['workload']}\n")
    print("\n".join(table(rows)))
    return rows


if __name__ == "__main__":
    main()
