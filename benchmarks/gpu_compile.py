"""Why does workload 4 take ~50 s to compile on a GPU? Time its hand-written JAX step under XLA flag sets.

    python -m benchmarks.gpu_compile [--tiny] [--steps 20]

Each flag set runs in a fresh process (``XLA_FLAGS`` is read once, when the backend starts): the step of workload 4
(the Transformer encoder, hand-written JAX, Adam) is built, its first call timed (trace + compile + one step), then
the median of ``--steps`` calls. Rows: XLA's defaults; autotuning off (``--xla_gpu_autotune_level=0``); Triton GEMM
fusions off (cuBLAS for every matmul); and matmul precision left at JAX's default instead of ``highest`` (the
benchmarks' setting, for float32 parity with PyTorch with TF32 off). The winner on compile time that costs no step
time is what ``benchmarks.run --gpu`` should set. On a machine without a GPU this runs on the CPU (the GPU flags are
accepted and do nothing), which is how the test suite checks the script.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
VARIANTS = {
    "XLA defaults, highest precision": ("", "highest"),
    "--xla_gpu_autotune_level=0": ("--xla_gpu_autotune_level=0", "highest"),
    "--xla_gpu_enable_triton_gemm=false": ("--xla_gpu_enable_triton_gemm=false", "highest"),
    "XLA defaults, default precision (TF32 on GPU)": ("", "default"),
}


def child(precision: str, tiny: bool, steps: int) -> dict:
    import jax

    if precision != "default":
        jax.config.update("jax_default_matmul_precision", precision)
    from benchmarks import transformer
    from benchmarks.harness import HAND, Settings

    shape = transformer.TINY if tiny else transformer.FULL
    case = transformer.builders(shape, Settings(gpu=jax.devices()[0].platform == "gpu", torch_compile=False))[HAND]()
    start = time.perf_counter()
    case.step()
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        case.step()
        times.append(time.perf_counter() - start)
    return {"first_s": first, "step_s": statistics.median(times), "platform": jax.devices()[0].platform}


def run(tiny: bool = False, steps: int = 20) -> list[dict]:
    rows = []
    for name, (flags, precision) in VARIANTS.items():
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip(),
               "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
        out = subprocess.run([sys.executable, "-m", "benchmarks.gpu_compile", "--child", precision, "--steps",
                              str(steps)] + (["--tiny"] if tiny else []), capture_output=True, text=True, env=env,
                             cwd=ROOT)
        if out.returncode != 0:
            rows.append({"variant": name, "error": out.stderr.strip().splitlines()[-1:]})
            continue
        rows.append({"variant": name, **json.loads(out.stdout.strip().splitlines()[-1])})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny Transformer of the smoke runs")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.tiny, args.steps)))
        return
    for row in run(args.tiny, args.steps):
        if "error" in row:
            print(f"{row['variant']:48s} failed: {row['error']}")
        else:
            print(f"{row['variant']:48s} first call {row['first_s']:7.2f} s   step {1e3 * row['step_s']:8.2f} ms"
                  f"   ({row['platform']})", flush=True)


if __name__ == "__main__":
    main()
