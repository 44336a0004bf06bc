"""Workload 8: building a model, first time in a fresh process and again, against PyTorch, Equinox and Flax NNX.

    python -m benchmarks.build [--repeats 3] [--tiny] [--all-torchvision] [--timm]

Each (framework, model) is built in a new Python process, the framework already imported: the first build pays
whatever the framework compiles or caches; the second build of the same model, right after, shows the steady
state. Times are the median over ``--repeats`` processes and include waiting for every array
(``jax.block_until_ready``). Models:

- *distinct layers*: 20 Conv2d and 20 Linear layers, every one a new shape, then ``kaiming_normal_`` on the first
  10 weights (in torch, jnn and hand-written JAX; Equinox and Flax NNX build the same layers, re-initialised with
  their own ``jax.nn.initializers.he_normal``);
- *Transformer encoder*: ``TransformerEncoder`` of 6 layers, d_model 256, 8 heads, feed-forward 1024 (torch, jnn);
- torchvision's own model code, ported with ``python -m jnn.port`` for jnn (torch and jnn; fetched as in the port
  tests): *resnet18*, *mobilenet_v3_small* (many small layers), *vit_b_16* (86M parameters), *swin_t* and
  *regnet_y_400mf* (tensor math in ``__init__``: relative-position tables, width schedules). ``--all-torchvision``
  builds every classification model of torchvision instead, one repeat each; ``--timm`` builds timm's models
  (timm's own code: ``trunc_normal_`` on every weight, Swin's window masks) instead.
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
DISTINCT = "distinct layers (20 Conv2d + 20 Linear, 10 kaiming_normal_)"
TRANSFORMER = "TransformerEncoder (6 layers, d_model 256)"
TORCHVISION = ("resnet18", "mobilenet_v3_small", "vit_b_16", "swin_t", "regnet_y_400mf")
ALL_TORCHVISION = ("alexnet", "vgg11_bn", "resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "densenet121",
                   "squeezenet1_1", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5", "mnasnet0_5",
                   "efficientnet_b0", "efficientnet_v2_s", "regnet_y_400mf", "convnext_tiny", "googlenet",
                   "inception_v3", "vit_b_16", "swin_t", "maxvit_t")
TIMM = ("resnet50", "efficientnet_b0", "vit_base_patch16_224", "swin_tiny_patch4_window7_224", "convnext_tiny",
        "regnety_032")  # from the subset tests/_timm_source.py fetches and ports
FRAMEWORKS = {DISTINCT: ("torch", "jnn", "jax", "equinox", "flax.nnx"), TRANSFORMER: ("torch", "jnn"),
              **{name: ("torch", "jnn") for name in TORCHVISION}}


def _distinct(framework: str, layers: int):
    """The distinct-layers model in ``framework``; returns its arrays."""
    if framework in ("torch", "jnn"):
        nn = __import__("torch.nn", fromlist=["nn"]) if framework == "torch" else __import__("jnn")
        built = []
        for i in range(layers // 2):
            built += [nn.Conv2d(3 + i, 8 + i, 3), nn.Linear(10 + i, 20 + i)]
        for layer in built[: layers // 4]:
            nn.init.kaiming_normal_(layer.weight)
        return [p for layer in built for p in layer.parameters()]
    import jax

    key = jax.random.key(0)
    if framework == "jax":  # what a JAX user writes: torch's default bounds, one draw per array
        arrays = []
        for i in range(layers // 2):
            for shape in ((8 + i, 3 + i, 3, 3), (20 + i, 10 + i)):
                fan_in = shape[1] * (9 if len(shape) == 4 else 1)
                key, wk, bk = jax.random.split(key, 3)
                bound = fan_in ** -0.5
                arrays += [jax.random.uniform(wk, shape, minval=-bound, maxval=bound),
                           jax.random.uniform(bk, shape[:1], minval=-bound, maxval=bound)]
        for n in range(0, layers // 2, 2):  # the weights of the first layers // 4 layers
            key, sub = jax.random.split(key)
            arrays[n] = jax.nn.initializers.he_normal(in_axis=1, out_axis=0)(sub, arrays[n].shape)
        return arrays
    he_normal = jax.nn.initializers.he_normal(in_axis=1, out_axis=0)
    if framework == "equinox":
        import equinox as eqx

        built = []
        for i in range(layers // 2):
            key, ck, lk = jax.random.split(key, 3)
            built += [eqx.nn.Conv2d(3 + i, 8 + i, 3, key=ck), eqx.nn.Linear(10 + i, 20 + i, key=lk)]
        for n in range(layers // 4):
            key, sub = jax.random.split(key)
            built[n] = eqx.tree_at(lambda m: m.weight, built[n], he_normal(sub, built[n].weight.shape))
        return jax.tree_util.tree_leaves(eqx.filter(built, eqx.is_array))
    from flax import nnx

    rngs = nnx.Rngs(0)
    built = []
    for i in range(layers // 2):
        built += [nnx.Conv(3 + i, 8 + i, (3, 3), rngs=rngs), nnx.Linear(10 + i, 20 + i, rngs=rngs)]
    for layer in built[: layers // 4]:  # flax kernels are (..., in, out)
        layer.kernel.value = jax.nn.initializers.he_normal()(rngs.params(), layer.kernel.value.shape)
    return jax.tree_util.tree_leaves(nnx.state(built, nnx.Param))


def _transformer(framework: str):
    if framework == "torch":
        import torch

        layer = torch.nn.TransformerEncoderLayer(256, 8, 1024, batch_first=True)
        return list(torch.nn.TransformerEncoder(layer, 6, enable_nested_tensor=False).parameters())
    import jnn

    return list(jnn.TransformerEncoder(jnn.TransformerEncoderLayer(256, 8, 1024, batch_first=True), 6).parameters())


def _child_env() -> dict[str, str]:
    """The environment of this script's child processes: the project importable, JAX on the CPU unless told."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}


def _torchvision_root(framework: str) -> pathlib.Path:
    """A directory to put on sys.path: torchvision's source for torch, its port for jnn (made once, cached)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import _torchvision_source

    return _torchvision_source.source_tree() if framework == "torch" else _torchvision_source.ported_tree()


def _timm(framework: str):
    """timm's package (fetched and its port made as in the timm tests), imported with a torchvision stand-in."""
    sys.path.insert(0, str(ROOT / "tests"))
    import _timm_source

    nn = __import__("torch.nn" if framework == "torch" else "jnn", fromlist=["nn"])
    frozen = type("FrozenBatchNorm2d", (nn.BatchNorm2d,), {})  # building only: its statistics do not matter
    if framework == "torch":
        return _timm_source.import_package(_timm_source.source_tree(), "timm", frozen)
    return _timm_source.import_package(_timm_source.ported_tree(), "timm_jnn", frozen)


def child(framework: str, model: str, layers: int) -> dict:
    """In this (fresh) process: import the framework, then time two builds of ``model``."""
    if model.startswith("timm:"):
        timm = _timm(framework)
        make = lambda: list(timm.create_model(model[5:]).parameters())  # noqa: E731
    elif model not in (DISTINCT, TRANSFORMER):  # a torchvision model
        sys.path.insert(0, str(_torchvision_root(framework)))
        models = __import__("torchvision.models" if framework == "torch" else "torchvision_jnn.models",
                            fromlist=["models"])
        make = lambda: list(getattr(models, model)().parameters())  # noqa: E731
    elif model == TRANSFORMER:
        make = lambda: _transformer(framework)  # noqa: E731
    else:
        make = lambda: _distinct(framework, layers)  # noqa: E731
    __import__("torch" if framework == "torch" else "jax")
    if framework == "jnn":
        import jnn  # noqa: F401
    if framework == "torch":
        import torch

        torch.set_num_threads(1)  # as the JAX rows: one CPU thread draws
    wait = (lambda arrays: arrays) if framework == "torch" else __import__("jax").block_until_ready
    times = []
    for _ in range(2):
        start = time.perf_counter()
        arrays = wait(make())
        times.append(time.perf_counter() - start)
    return {"first_s": times[0], "second_s": times[1], "arrays": len(arrays)}


def run(repeats: int = 3, tiny: bool = False, all_torchvision: bool = False, timm: bool = False) -> list[dict]:
    """One row per (model, framework): median first and second build times, and ratios to torch."""
    plan = {DISTINCT: ("torch", "jnn", "jax")} if tiny else FRAMEWORKS
    if all_torchvision:
        plan, repeats = {name: ("torch", "jnn") for name in ALL_TORCHVISION}, 1
    if timm:
        plan = {f"timm:{name}": ("torch", "jnn") for name in TIMM}
    layers = 8 if tiny else 40
    env = _child_env()
    rows = []
    for model, frameworks in plan.items():
        for framework in frameworks:
            runs = []
            for _ in range(1 if tiny else repeats):
                out = subprocess.run([sys.executable, "-m", "benchmarks.build", "--child", framework, model,
                                      "--layers", str(layers)], capture_output=True, text=True, env=env, cwd=ROOT)
                if out.returncode != 0:
                    raise RuntimeError(f"building {model} in {framework} failed:\n{out.stderr[-3000:]}")
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            rows.append({"workload": model, "impl": framework, "repeats": len(runs), "arrays": runs[0]["arrays"],
                         "first_s": statistics.median(r["first_s"] for r in runs),
                         "second_s": statistics.median(r["second_s"] for r in runs)})
    for row in rows:
        torch_row = next(r for r in rows if r["workload"] == row["workload"] and r["impl"] == "torch")
        row["first_ratio"] = row["first_s"] / torch_row["first_s"]
        row["second_ratio"] = row["second_s"] / torch_row["second_s"]
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = ["| model | framework | first build (fresh process) | vs torch | second build | vs torch |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['impl']} | {1e3 * r['first_s']:.1f} ms | {r['first_ratio']:.2f}x | "
                     f"{1e3 * r['second_s']:.1f} ms | {r['second_ratio']:.2f}x |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per row (median)")
    parser.add_argument("--tiny", action="store_true", help="the distinct-layers model at 8 layers, 3 frameworks")
    parser.add_argument("--all-torchvision", action="store_true", help="every torchvision classification model")
    parser.add_argument("--timm", action="store_true", help="timm models (timm's own code, ported)")
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--layers", type=int, default=40, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.layers)))
        return
    print("\n".join(table(run(args.repeats, args.tiny, args.all_torchvision, args.timm))))


if __name__ == "__main__":
    main()
