"""RESULTS.md and the plots: tables per workload, the targets (met or missed), machine and versions."""

from __future__ import annotations

import datetime
from pathlib import Path

from benchmarks import overhead
from benchmarks.harness import EQX, HAND, NNX, ORDER, PYTREE, SPLIT, fmt_time

SPLIT_TARGET, PYTREE_TARGET = 1.05, 1.35
DEPTH_TARGET = 5.0  # 64 scanned blocks compile in at most a fifth of the unrolled time

NOTES = """\
## Notes

- **Method.** Every workload builds all frameworks from the same weights (jnn's init, copied across; Flax NNX and
  Equinox use their own init for ResNet-18 and the Transformer, same shapes). After warm-up (the first call, which
  compiles, is reported as "first call"), the frameworks run round-robin for several rounds, rotating the order each
  round, each step timed on its own and blocking on its loss; the table gives the median over all steps and the
  ratio to hand-written JAX. A training step is forward + backward + Adam (lr 1e-3, optax's and torch's defaults).
- **The two jnn paths.** *split*: `apply, params, buffers = jnn.split(net)` called inside a `jax.jit`-ed step over the
  flat dicts (the same step as the hand-written one, with `apply` in place of the hand-written forward).
  *module pytree*: `jax.jit(step)(net, opt_state, x, y)` with `jax.value_and_grad` over the module and
  `optax.adam` over the module; with BatchNorm buffers, gradients are taken with `allow_int=True` and Adam runs
  under `optax.masked` on the trainable leaves (the buffers come from the module that forward returned).
- **Peers.** Flax NNX: its documented `nnx.Optimizer(model, tx, wrt=nnx.Param)` + `nnx.jit` loop; convolutions in
  NHWC, its native layout (the input is transposed once, outside the timed step). Equinox: `eqx.filter_jit` +
  `eqx.filter_value_and_grad`, per-example layers under `jax.vmap` (BatchNorm with `axis_name`, mode "batch").
  PyTorch eager: the same model source as jnn's (ResNet-18 and the Transformer are written once against the
  torch.nn API and built with `nn = jnn` or `nn = torch.nn`), `torch.optim.Adam`, default thread count.
  torch.compile: `torch.compile(model)` + `torch.compile(opt.step)` (the compiled-optimizer recipe); by default
  only on workloads 1-2, because on this 2-core CPU inductor's compile of the ResNet and Transformer training steps
  takes minutes (pass `--torch-compile all` to include them).
- **Noise.** On a loaded machine PyTorch's OpenMP threads spin-wait against XLA's thread pool; small PyTorch
  steps then become erratic (tens of ms). Run on a quiet machine; the IQR columns show how steady each row was.
- **What remains for jnn (profiled).** The module-as-pytree path rebuilds Python module objects for every
  module a jitted function returns (`build` in `jnn/modules/_pytree.py`: straight-line code generated once per
  slot layout, per submodule one `object.__new__`, one C-level copy of its class's template dict of static
  attributes, and three slot dicts; the garbage collector is paused while it runs). Generating the code instead of
  looping over the nodes halved it (MLP: 12 -> 6.5 us); `python -m benchmarks.pytree_step` measures the batch-8
  step against hand-written JAX, interleaved: 1.16x median on a quiet 2-core machine (1.36x before), about 1.4x
  with one core busy with another process.
  A training step returns three module-shaped trees (the model, Adam's
  `mu` and `nu`), which is the pytree path's remaining gap on the batch-8 MLP and the slope of its `update` rows
  in workload 5 (still under Equinox's and Flax NNX's). Flattening an unchanged module is O(1) (a cached walk), so
  the `call` rows stay flat; the cache is keyed by one global version counter that any change to any module bumps,
  after which the next flatten walks the whole tree once. The split path has none of this: a dict in, a dict out.
  (Fixed while measuring: `load_state_dict` used to commit loaded arrays to the device, so a jitted step mixing
  them with uncommitted optimizer state compiled twice.)
- **Compile time against depth (workload 6).** Three modes: a Python loop over the blocks (*unrolled*),
  `jnn.scan_layers` over per-layer parameters (*scanned*), and `jnn.scan_layers` with
  `jnn.split(net, stacked=["layers"])` (*scanned, stacked params*). Scanning alone makes the forward compile
  constant, but a training step over per-layer arrays still slices the stacked gradient back into N x L arrays and
  updates each one, a small XLA:CPU kernel apiece, so its compile time keeps growing; with the parameters kept
  stacked in the training state the step compiles in nearly constant time. The target (64 blocks at most a fifth
  of the unrolled compile time) is met for the Transformer layer of workload 4 (d_model 256) and narrowly missed
  for the small d_model-64 layer, whose unrolled copies XLA:CPU compiles cheaply; hand-written JAX with stacked
  parameters reaches the same ratio (about 3-5x on this CPU for that block), so that is XLA:CPU's floor, not jnn's
  overhead. Run time: a scanned step costs about the same as the unrolled one at depth 64 and up to ~1.7x at
  depth 32 with d_model 256 (XLA:CPU fuses less across a while loop; hand-written JAX shows the same), so scan is
  for compile time and deep models, not for speed on CPU.
- **CPU convolutions.** XLA:CPU's flag sets (oneDNN, XNNPACK/YNNPACK fusions) and other convolution lowerings
  (NHWC, im2col) against PyTorch eager on the seed CNN and ResNet-18: `python -m benchmarks.cpu_conv`, results
  in [RESULTS-cpu-conv.md](RESULTS-cpu-conv.md).
- **Building a model (workload 8).** Each (framework, model) builds in a fresh process (framework imported first),
  twice; the median over processes. jnn draws parameters on the host with NumPy and hands them to the device once,
  so building compiles nothing; hand-written JAX, Equinox and Flax NNX draw with `jax.random`, which compiles a
  generator per new shape (seconds for the first build). jnn's first build also pays JAX's backend start (~15 ms).
  Large arrays (4 MiB and more) get host pages of their own without NumPy's huge-page advice, whose first touch
  cost 3-4x on this machine (vgg11_bn 3.6 s -> 1.8 s). Eager placement takes ~7 us per array. Tensor math in
  `__init__` through `jnn.ops` compiles little: reshapes, stacking, element updates and `where` on concrete CPU
  arrays are made in NumPy, elementwise functions run in fixed-size chunks (one program per function and dtype for
  every shape): swin_t's first build 2.3x -> 1.3x torch, timm's Swin 8.2 s -> 1.5 s (`python -m benchmarks.build
  --timm`). What is left against torch: on models of many small layers, JAX's backend start (~15 ms, about half of
  torch's whole build of mobilenet_v3_small); JAX's own operators on arrays (`a * w + b`, `a[:, None] - a`) still
  compile once per new shape, ~20 ms each: regnet's width schedule, in the first build of a process only.
- **GPU mode** (`--gpu`): JAX on the GPU with `jax_default_matmul_precision="highest"` and PyTorch on CUDA with
  `torch.backends.cuda.matmul.allow_tf32 = False` and `torch.backends.cudnn.allow_tf32 = False`: TF32 off in both.
"""


def _table(rows: list[dict]) -> list[str]:
    lines = ["| framework | median step | ratio to JAX | IQR | first call (compile) | note |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    rank = {name: i for i, name in enumerate(ORDER)}
    for row in sorted(rows, key=lambda r: rank.get(r["framework"], 99)):
        if "median_s" in row:
            ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
            lines.append(f"| {row['framework']} | {fmt_time(row['median_s'])} | {ratio} | {fmt_time(row['iqr_s'])} | "
                         f"{fmt_time(row['first_call_s'])} | {row.get('note', '')} |")
        else:
            lines.append(f"| {row['framework']} | not run | | | | {row.get('error', '')} |")
    return lines


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets, checked against these rows."""
    out = []
    for row in rows:
        label = row.get("workload", "")
        if label.startswith("overhead") or "ratio" not in row:
            continue
        if row["framework"] == SPLIT:
            met = row["ratio"] <= SPLIT_TARGET
            out.append(f"- {label}: split path {row['ratio']:.2f}x of hand-written JAX (target <= {SPLIT_TARGET}): "
                       f"**{'met' if met else 'missed'}**")
        if row["framework"] == PYTREE and label.startswith("MLP"):
            met = row["ratio"] <= PYTREE_TARGET
            out.append(f"- {label}: module-as-pytree path {row['ratio']:.2f}x (target <= {PYTREE_TARGET}): "
                       f"**{'met' if met else 'missed'}**")
    over = [r for r in rows if r.get("workload", "").startswith("overhead")]
    if over:
        slopes = overhead.per_module(over)
        for kind in ("call", "update"):
            mine = slopes.get((kind, PYTREE))
            peers = [slopes[kind, p] for p in (NNX, EQX) if (kind, p) in slopes]
            if mine is not None and peers:
                met = all(mine < p for p in peers)
                parts = ", ".join(f"{name} {fmt_time(slopes[kind, name])}" for name in (HAND, SPLIT, PYTREE, NNX, EQX)
                                  if (kind, name) in slopes)
                out.append(f"- overhead per submodule ({kind}): {parts}; jnn module pytree under Flax NNX's and "
                           f"Equinox's: **{'met' if met else 'missed'}**")
    deepest = {}
    for row in rows:  # workload 6: the deepest scanned stack against the unrolled one, per block size
        if "compile_speedup" in row:
            key = (row["d_model"], row["mode"])
            if row["depth"] >= deepest.get(key, {"depth": -1})["depth"]:
                deepest[key] = row
    for (d_model, mode), row in deepest.items():
        met = row["compile_speedup"] >= DEPTH_TARGET
        out.append(f"- {row['depth']} blocks (d_model {d_model}), {mode}: training step compiles "
                   f"{row['compile_speedup']:.1f}x faster than unrolled (target >= {DEPTH_TARGET}x): "
                   f"**{'met' if met else 'missed'}**")
    return out


def plot_overhead(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, kind in zip(axes, ("call", "update"), strict=True):
        for framework in ORDER:
            pts = sorted((r["modules"], r["median_s"]) for r in rows
                         if r.get("kind") == kind and r["framework"] == framework and "median_s" in r)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] * 1e6 for p in pts], marker="o", label=framework)
        ax.set(xscale="log", yscale="log", xlabel="submodules (Linear(1, 1))", ylabel="median time per call (µs)",
               title=f"jitted {'forward call' if kind == 'call' else 'model in, updated model out'}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_depth(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(dict.fromkeys(r.get("d_model") for r in rows))
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.2), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        block = [r for r in rows if r.get("d_model") == size]
        for mode in dict.fromkeys(r["mode"] for r in block):
            for key, style, what in (("compile_s", "-", "training step"), ("forward_compile_s", "--", "forward")):
                pts = sorted((r["depth"], r[key]) for r in block if r["mode"] == mode and key in r)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=f"{mode}: {what}")
        ax.set(xlabel="identical blocks", ylabel="compile time (s)",
               title=f"compile time against depth (d_model {size})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def depth_table(rows: list[dict]) -> list[str]:
    lines = ["| d_model | depth | mode | compile (training step) | compile (forward) | median step | "
             "compile speed-up over unrolled |", "| ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        speed = f"{r['compile_speedup']:.1f}x" if "compile_speedup" in r else ""
        forward = f"{r['forward_compile_s']:.2f} s" if "forward_compile_s" in r else ""
        lines.append(f"| {r.get('d_model', '')} | {r['depth']} | {r['mode']} | {r['compile_s']:.2f} s | {forward} | "
                     f"{r['step_ms']:.2f} ms | {speed} |")
    return lines


def write(path: Path, info: dict, command: str, results: dict[str, list[dict]], seconds: float,
          notes: str = NOTES) -> None:
    """Write RESULTS.md (and the plots next to it)."""
    lines = ["# jnn benchmarks", "",
             f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `{command}` "
             f"({seconds / 60:.1f} min).", "", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    all_rows = [r for rows in results.values() for r in rows if "workload" in r or "compile_speedup" in r]
    found = targets(all_rows)
    if found:
        lines += ["", "## Targets", ""] + found
    prefix = "" if path.stem == "RESULTS" else f"{path.stem}-"  # RESULTS-gpu.md keeps its own plots
    for title, rows in results.items():
        lines += ["", f"## {title}", ""]
        if title.startswith("7"):
            from benchmarks import linear_ce

            lines += [f"### {rows[0]['workload']}", ""] + linear_ce.table(rows) if rows else []
            continue
        if title.startswith("8"):
            from benchmarks import build

            lines += build.table(rows)
            continue
        if title.startswith("6"):
            lines += depth_table(rows)
            plot_depth(rows, path.parent / f"{prefix}depth.png")
            lines += ["", f"![compile time against depth]({prefix}depth.png)"]
            continue
        for label in dict.fromkeys(r["workload"] for r in rows):
            lines += ["", f"### {label}", ""] + _table([r for r in rows if r["workload"] == label])
        if title.startswith("5"):
            plot_overhead(rows, path.parent / f"{prefix}overhead.png")
            lines += ["", f"![per-call overhead against model size]({prefix}overhead.png)"]
    lines += ["", notes]
    path.write_text("\n".join(lines) + "\n")
