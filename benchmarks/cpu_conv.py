"""CPU convolutions: XLA:CPU flag sets and convolution lowerings against PyTorch eager, in one interleaved run.

    python -m benchmarks.cpu_conv [--rounds 5] [--steps 3] [--workloads 'seed CNN,ResNet-18'] [--resnet-batch 32]
        [--resnet-width 64] [--threads 1] [--variants default,onednn,...] [--out benchmarks/RESULTS-cpu-conv.md]

XLA reads ``XLA_FLAGS`` once, when the backend starts, so every variant is its own worker process; PyTorch eager is
one more. All workers build their models (the seed CNN of workload 2 at batch 64, ResNet-18 of workload 3 on
32x32 images) and compile first; then the parent asks them in turn, rotating the order every round, for a few
training steps each (jnn's split path, Adam), so that they never run at the same time and a change of load on
the machine hits every variant alike. Reported: median step time, its spread (interquartile range over all
steps), and the ratio to PyTorch eager. Every variant's first loss is checked against the default's. The
table so far is printed after every round, so a run cut short still reports. ``--threads 1`` runs XLA and
PyTorch single-threaded: on an oversubscribed machine, multi-threaded timings measure the scheduler more than the
kernels (PyTorch's OpenMP threads suffer most).

Variants:

- ``default``: XLA:CPU as shipped, and jnn as shipped: 2-d convolutions with at most
  ``jnn.functional._conv.SMALL_CONV_OUTPUT`` (16) output positions per map run as one strided slice per kernel
  tap and a matmul (ResNet's last stages on small images).
- ``xla-conv``: every convolution through XLA's convolution (``SMALL_CONV_OUTPUT = 0``): jnn before that change.
- ``onednn``: ``--xla_cpu_use_onednn=true`` (oneDNN thunks for matmuls and convolutions).
- ``ynn-conv``: ``--xla_cpu_experimental_ynn_fusion_type=individual_convolution`` (YNNPACK convolutions).
- ``xnn-conv``: ``--xla_cpu_experimental_xnn_fusion_type=individual_convolution`` (XNNPACK convolutions).
- ``xnn-graph``: ``--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY``.
- ``nhwc``: jnn's convolutions computed in NHWC/HWIO with transposes around them (XLA may fold them).
- ``im2col-small``: convolutions whose output is at most 8x8 as patches (``conv_general_dilated_patches``) times
  a matrix (the patches operation is itself a convolution, and so is its gradient).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

FLAGS = {
    "default": "",
    "xla-conv": "",
    "onednn": "--xla_cpu_use_onednn=true",
    "ynn-conv": "--xla_cpu_experimental_ynn_fusion_type=individual_convolution",
    "xnn-conv": "--xla_cpu_experimental_xnn_fusion_type=individual_convolution",
    "xnn-graph": "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    "nhwc": "",
    "im2col-small": "",
}
TORCH = "torch eager"
WORKLOADS = ("seed CNN", "ResNet-18")


# ---------------------------------------------------------------------------------------------------------
# Alternative lowerings, swapped into jnn.functional._conv for one worker


class _Lax:
    """``jax.lax`` with ``conv_general_dilated`` replaced (the name jnn.functional._conv calls)."""

    def __init__(self, conv: Any) -> None:
        self.conv_general_dilated = conv

    def __getattr__(self, name: str) -> Any:
        import jax

        return getattr(jax.lax, name)


def _nhwc(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
          feature_group_count=1, **kwargs):
    from jax import lax

    if lhs.ndim != 4 or lhs_dilation not in (None, (1, 1)):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, **kwargs)
    y = lax.conv_general_dilated(lhs.transpose(0, 2, 3, 1), rhs.transpose(2, 3, 1, 0), window_strides, padding,
                                 None, rhs_dilation, ("NHWC", "HWIO", "NHWC"), feature_group_count, **kwargs)
    return y.transpose(0, 3, 1, 2)


def _im2col_small(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
                  feature_group_count=1, **kwargs):
    import jax.numpy as jnp
    from jax import lax

    y = lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                                 feature_group_count, **kwargs)
    if lhs.ndim != 4 or feature_group_count != 1 or lhs_dilation not in (None, (1, 1)) or y.shape[2] * y.shape[3] > 64:
        return y
    patches = lax.conv_general_dilated_patches(lhs, rhs.shape[2:], window_strides, padding, rhs_dilation=rhs_dilation,
                                               dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return jnp.einsum("nphw,op->nohw", patches, rhs.reshape(rhs.shape[0], -1))


# ---------------------------------------------------------------------------------------------------------
# A worker: builds both workloads, then runs steps when asked


def _widths(width: int) -> tuple[int, ...]:
    return (width, 2 * width, 4 * width, 8 * width)


def _cases(variant: str, resnet_batch: int, workloads: list[str], resnet_width: int = 64) -> dict[str, Any]:
    from benchmarks import cnn, resnet, steps
    from jnn.functional import _conv

    if variant in ("nhwc", "im2col-small"):
        _conv.lax = _Lax(_nhwc if variant == "nhwc" else _im2col_small)
    if variant == "xla-conv":
        _conv.SMALL_CONV_OUTPUT = 0
    cases = {}
    if "seed CNN" in workloads:
        data, net = cnn.data(64, 28), cnn.CNN(28)
        cases["seed CNN"] = (steps.torch_case(cnn.torch_model(net.state_dict(), 28), data, "xent")
                             if variant == TORCH else steps.split_case(net, data, "xent")).step
    if "ResNet-18" in workloads:
        data, net = resnet.data(resnet_batch, 32), resnet.jnn_model(arch=(_widths(resnet_width), (2, 2, 2, 2)))
        torch_net = resnet.torch_model(net.state_dict(), (_widths(resnet_width), (2, 2, 2, 2)))
        cases["ResNet-18"] = (steps.torch_case(torch_net, data, "xent")
                              if variant == TORCH else steps.split_case(net, data, "xent")).step
    return cases


def worker(variant: str, resnet_batch: int, workloads: list[str], resnet_width: int) -> None:
    import jnn

    jnn.manual_seed(0)
    cases = _cases(variant, resnet_batch, workloads, resnet_width)
    first = {}
    for name, step in cases.items():  # compile and warm up
        first[name] = float(step())
        step()
    print(json.dumps({"ready": variant, "first_loss": first}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        step = cases[command["workload"]]
        times = []
        for _ in range(command["steps"]):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        print(json.dumps({"times": times}), flush=True)


# ---------------------------------------------------------------------------------------------------------
# The parent


def _start(variant: str, resnet_batch: int, threads: int | None, workloads: Any,
           resnet_width: int) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    single = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" if threads == 1 else ""
    env["XLA_FLAGS"] = " ".join(f for f in (env.get("XLA_FLAGS", ""), FLAGS.get(variant, ""), single) if f)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)  # torch's intra-op threads
    # compiled steps persist between runs (XLA_FLAGS are part of the cache key): a second run skips compiling
    env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "jnn-cpu-conv"))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    command = [sys.executable, "-m", "benchmarks.cpu_conv", "--worker", variant, "--resnet-batch", str(resnet_batch),
               "--workloads", ",".join(workloads), "--resnet-width", str(resnet_width)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)


def _reply(proc: subprocess.Popen, variant: str) -> dict:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"benchmarks.cpu_conv: worker {variant!r} died (run it alone with --worker {variant})")
    return json.loads(line)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def run(variants: list[str], rounds: int, steps: int, resnet_batch: int, threads: int | None = None,
        workloads: tuple[str, ...] | list[str] = WORKLOADS, resnet_width: int = 64) -> dict:
    """Start the workers, then ``rounds`` rounds; prints the table so far after each round (to stderr)."""
    names = [TORCH, *variants]
    procs = {name: _start(name, resnet_batch, threads, workloads, resnet_width) for name in names}
    try:
        first = {name: _reply(proc, name)["first_loss"] for name, proc in procs.items()}
        times: dict[str, dict[str, list[float]]] = {w: {n: [] for n in names} for w in workloads}
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for workload in workloads:
                for name in order:
                    procs[name].stdin.write(json.dumps({"workload": workload, "steps": steps}) + "\n")
                    procs[name].stdin.flush()
                    times[workload][name] += _reply(procs[name], name)["times"]
            print(f"after round {r + 1}:" + table({"first_loss": first, "times": times}), file=sys.stderr,
                  flush=True)
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
    return {"first_loss": first, "times": times}


def table(result: dict) -> str:
    lines = []
    for workload, rows in result["times"].items():
        torch_median = statistics.median(rows[TORCH])
        lines += [f"\n### {workload}\n", "| variant | median step | IQR | ratio to torch eager | first loss |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for name, values in rows.items():
            q1, median, q3 = _quartiles(values)
            lines.append(f"| {name} | {median * 1e3:.1f} ms | {(q3 - q1) * 1e3:.1f} ms | "
                         f"{median / torch_median:.2f}x | {result['first_loss'][name][workload]:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--variants", default=",".join(FLAGS), help=f"comma-separated, from {', '.join(FLAGS)}")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps per variant per round")
    parser.add_argument("--resnet-batch", type=int, default=32)
    parser.add_argument("--resnet-width", type=int, default=64, help="channels of ResNet-18's first stage (64)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated, from {WORKLOADS}")
    parser.add_argument("--out", default=None, help="append this run's tables to this markdown file")
    parser.add_argument("--threads", type=int, default=None, help="1: XLA and torch single-threaded (a fairer "
                        "comparison on an oversubscribed machine); default: each framework's own")
    args = parser.parse_args(argv)
    workloads = [w for w in args.workloads.split(",") if w]
    if not set(workloads) <= set(WORKLOADS):
        parser.error(f"--workloads: choose from {WORKLOADS}, got {args.workloads}")
    if args.worker:
        return worker(args.worker, args.resnet_batch, workloads, args.resnet_width)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in FLAGS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {list(FLAGS)}")
    start = time.perf_counter()
    result = run(variants, args.rounds, args.steps, args.resnet_batch, args.threads, workloads, args.resnet_width)
    command = "python -m benchmarks.cpu_conv " + " ".join(
        f"'{a}'" if " " in a else a for a in (sys.argv[1:] if argv is None else argv))
    header = (f"`{command}` ({time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {time.perf_counter() - start:.0f} s;"
              f" ResNet-18 batch {args.resnet_batch} width {args.resnet_width}, seed CNN batch 64, "
              f"threads {args.threads or 'default'}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus)")
    print(header + "\n" + table(result))
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(f"\n{header}\n{table(result)}\n")
    for workload in workloads:
        reference = result["first_loss"]["default"][workload] if "default" in variants else None
        for name in variants:
            loss = result["first_loss"][name][workload]
            if reference is not None and abs(loss - reference) > 1e-3 * max(1.0, abs(reference)):
                print(f"WARNING: {name} gives first loss {loss} on {workload}, default {reference}")


if __name__ == "__main__":
    main()
