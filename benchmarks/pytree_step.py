"""The module-as-pytree step against hand-written JAX: workload 1's MLP + Adam at batch 8, interleaved.

    python -m benchmarks.pytree_step [--repeats 5] [--rounds 5] [--steps 50]

Each repeat times the hand-written, split and module-as-pytree steps round-robin (``harness.measure``) and prints
their ratios to hand-written JAX; the summary gives the median ratio and its range over the repeats, so machine
load shows as spread rather than as a wrong number. The pytree step's own cost is flattening the model and Adam's
state (cached: O(1)) and unflattening them on every call (the root of each alone, ``_pytree.PendingDict``: the
rest of a tree is built only when something reads it).
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks import mlp
from benchmarks.harness import HAND, PYTREE, SPLIT, Settings, build_cases, measure


def ratios(settings: Settings, batch: int = 8) -> dict[str, float]:
    builders = {k: v for k, v in mlp.builders(batch, settings).items() if k in (HAND, SPLIT, PYTREE)}
    cases, _ = build_cases(builders)
    rows = measure(cases, settings, f"MLP + Adam, batch {batch}")
    return {r["framework"]: r["ratio"] for r in rows if "ratio" in r} | {
        "hand_us": next(r["median_s"] for r in rows if r["framework"] == HAND) * 1e6}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv)
    settings = Settings(warmup=3, rounds=args.rounds, steps=args.steps)
    runs = []
    for i in range(args.repeats):
        runs.append(ratios(settings))
        print(f"repeat {i}: " + ", ".join(f"{k} {v:.3f}" for k, v in runs[-1].items()), flush=True)
    for key in (SPLIT, PYTREE):
        values = [r[key] for r in runs]
        print(f"{key}: median {statistics.median(values):.3f}x hand-written JAX (range {min(values):.3f}-"
              f"{max(values):.3f}, {len(values)} repeats)")


if __name__ == "__main__":
    main()
