"""Run every workload in every framework, in one process on one machine, and write RESULTS.md.

    python -m benchmarks.run [--workloads 1,2,3,4,5,6,7,8] [--tiny] [--gpu] [--torch-compile small|all|none]
                             [--out benchmarks/RESULTS.md (RESULTS-gpu.md with --gpu)]

Workloads: 1 MLP (batch 8, 128), 2 small CNN, 3 ResNet-18, 4 Transformer encoder, 5 overhead against model size,
6 compile time against depth (unrolled vs jnn.scan_layers, from benchmarks/scan_depth.py), 7 the loss of a
50k-vocabulary head, F.linear_cross_entropy against Linear + cross_entropy (from benchmarks/linear_ce.py), 8 building
a model, first time in a fresh process and again (from benchmarks/build.py; against torch on the CPU).
Frameworks: hand-written JAX (the reference; ratios are to it), jnn's split and module-as-pytree paths, Flax NNX,
Equinox, PyTorch eager and torch.compile. ``--tiny`` runs every workload at a tiny size with a couple of steps (the
test suite's smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

# How long each workload is timed in a full run: (warm-up calls, rounds, steps per round per framework).
FULL = {1: (5, 10, 40), 2: (3, 6, 10), 3: (2, 2, 2), 4: (2, 3, 2), 5: (3, 6, 20)}
TINY = (2, 1, 2)  # two warm-up calls: see RESULTS.md on the second-call recompile after load_state_dict
TITLES = {
    1: "1. MLP (64 -> 64 x5 -> 1), training step",
    2: "2. Small CNN (Conv 1->20, Conv 20->20, Linear -> 10) on 28x28, batch 64, training step",
    3: "3. ResNet-18 on 3x32x32, batch 128, BatchNorm in training mode, training step",
    4: "4. Transformer encoder (6 layers, d_model 256, 8 heads, seq 128, batch 16), training step",
    5: "5. Overhead against model size (N x Linear(1, 1))",
    6: "6. Compile time against depth (unrolled vs jnn.scan_layers)",
    7: "7. Linear cross-entropy at vocab 50k: chunked F.linear_cross_entropy vs Linear + cross_entropy",
    8: "8. Building a model in a fresh process (CPU): torch, jnn, hand-written JAX, Equinox, Flax NNX",
}


def configure_gpu() -> None:
    """Same matmul precision in both frameworks: full float32 (TF32 off) in JAX and in PyTorch."""
    import jax

    jax.config.update("jax_default_matmul_precision", "highest")
    if jax.devices()[0].platform != "gpu":
        raise SystemExit("benchmarks --gpu: JAX sees no GPU here (install a CUDA build of jax)")
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("benchmarks --gpu: PyTorch sees no CUDA device (install a CUDA build of torch)")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def run_workload(number: int, tiny: bool, gpu: bool, torch_compile: str) -> list[dict]:
    from benchmarks import cnn, mlp, overhead, resnet, transformer
    from benchmarks.harness import Settings

    if number == 6:
        return run_depth(tiny)
    if number == 7:
        from benchmarks import linear_ce

        return linear_ce.run(64, 16, 1000, steps=2) if tiny else linear_ce.run()
    if number == 8:
        from benchmarks import build

        return build.run(tiny=tiny)
    warmup, rounds, steps = TINY if tiny else FULL[number]
    compile_here = torch_compile == "all" or (torch_compile == "small" and number in (1, 2))
    settings = Settings(warmup=warmup, rounds=rounds, steps=steps, gpu=gpu, torch_compile=compile_here and not tiny)
    module = {1: mlp, 2: cnn, 3: resnet, 4: transformer, 5: overhead}[number]
    return module.run(settings, tiny=tiny)


def run_depth(tiny: bool) -> list[dict]:
    """Workload 6 comes from benchmarks/scan_depth.py (compile time of a training step, unrolled vs scanned)."""
    try:
        from benchmarks import scan_depth
    except ImportError as error:  # the hook: scan_depth.py provides run(depths=..., ...) -> list[dict]
        print(f"workload 6 skipped: {error}", file=sys.stderr)
        return []
    if tiny:
        return scan_depth.run(depths=(2, 4), d_model=16, nhead=2, batch=2, seq=4, steps=2)
    # the small block of scan_depth's default and the Transformer of workload 4 (d_model 256, 8 heads)
    return (scan_depth.run(depths=(8, 32, 64), d_model=64, nhead=4, steps=5)
            + scan_depth.run(depths=(8, 32, 64), d_model=256, nhead=8, steps=3))


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default=None, help="comma-separated workload numbers (1-8; default all, and "
                        "with --gpu all but 8, which measures building on the CPU)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, a couple of steps: a smoke run")
    parser.add_argument("--gpu", action="store_true", help="run JAX and PyTorch on the GPU, TF32 off in both")
    parser.add_argument("--torch-compile", choices=["small", "all", "none"], default="small",
                        help="torch.compile rows: workloads 1-2 only (default), all, or none")
    parser.add_argument("--out", default=None, help="write RESULTS.md (and plots) here; default "
                        "benchmarks/RESULTS.md for a full run (RESULTS-gpu.md with --gpu), nothing for --tiny")
    args = parser.parse_args(argv)
    if args.workloads is None:
        args.workloads = ",".join(str(n) for n in TITLES if not (args.gpu and n == 8))
    workloads = [int(w) for w in args.workloads.split(",") if w.strip()]
    if not set(workloads) <= set(TITLES):
        parser.error(f"--workloads: choose from {sorted(TITLES)}, got {args.workloads}")
    if not args.gpu:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if args.gpu:  # before JAX starts: JAX would take 75% of GPU memory up front, leaving PyTorch the rest
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        configure_gpu()
    from benchmarks import report
    from benchmarks.harness import machine, print_rows

    start = time.perf_counter()
    results: dict[str, list[dict]] = {}
    failures: list[str] = []
    for number in workloads:
        t0 = time.perf_counter()
        try:
            rows = run_workload(number, args.tiny, args.gpu, args.torch_compile)
        except Exception:  # one broken workload must not cost the others' results
            traceback.print_exc()
            failures.append(f"workload {number}: {traceback.format_exc().strip().splitlines()[-1]}")
            rows = []
        results[TITLES[number]] = rows
        if number == 6:
            for r in rows:
                print(f"  depth {r['depth']:3d} {r['mode']:9s} compile {r['compile_s']:.2f} s, "
                      f"step {r['step_ms']:.2f} ms", flush=True)
        elif number == 7:
            from benchmarks import linear_ce

            print("\n".join(linear_ce.table(rows)), flush=True)
        elif number == 8:
            from benchmarks import build

            print("\n".join(build.table(rows)), flush=True)
        else:
            for label in dict.fromkeys(r["workload"] for r in rows):
                print_rows(label, [r for r in rows if r["workload"] == label])
        print(f"[workload {number}: {time.perf_counter() - t0:.0f} s]", flush=True)
    default = "RESULTS-gpu.md" if args.gpu else "RESULTS.md"  # a GPU run never overwrites the CPU results
    out = args.out or (None if args.tiny else str(Path(__file__).with_name(default)))
    if out:
        command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
        notes = report.NOTES + "".join(f"\n- **Failed in this run:** {f}\n" for f in failures)
        report.write(Path(out), machine(), command.strip(), results, time.perf_counter() - start, notes)
        Path(out).with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
        print(f"wrote {out}")
    if failures:
        print("failed: " + "; ".join(failures), file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
