"""torchvision's own source for the port tests: fetched once as the wheel, cached, never committed.

``source_tree()`` gives a directory holding a ``torchvision`` package made of the wheel's files that the
classification, dense-prediction and detection models import (models, ops, transforms, utils, and the extension
loader with its compiled ``_C`` library), untouched. Only the package ``__init__.py`` files are filtered: statements
importing parts left out (io, datasets, quantization, ...) are dropped, mechanically. torchvision 0.28's compiled
ops do not load next to torch 2.13: its loader catches the error, so with torch this subset imports but
``torch.ops.torchvision`` is empty (the detection tests register torch references for its ops), while ported,
the loader finds ``_C`` and gets jnn's own (``jnn.ops.ops.torchvision``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import types
import zipfile

VERSION = "0.28.*"
CACHE = pathlib.Path(os.environ.get("JNN_TEST_CACHE", pathlib.Path.home() / ".cache" / "jnn-tests"))


def jnn_digest() -> str:
    """A digest of jnn's source, to key cached ports: a port's output depends on jnn.port and on the names jnn has."""
    root = pathlib.Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted((root / "jnn").rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]

MODEL_FILES = ["alexnet", "convnext", "densenet", "efficientnet", "googlenet", "inception", "mnasnet", "mobilenet",
               "mobilenetv2", "mobilenetv3", "regnet", "resnet", "shufflenetv2", "squeezenet", "vgg",
               "vision_transformer", "swin_transformer", "maxvit"]
OPS_FILES = ["_box_convert", "_utils", "boxes", "ciou_loss", "deform_conv", "diou_loss", "drop_block",
             "feature_pyramid_network", "focal_loss", "giou_loss", "misc", "poolers", "ps_roi_align", "ps_roi_pool",
             "roi_align", "roi_pool", "stochastic_depth"]
SUBSET = ["__init__.py", "_utils.py", "_internally_replaced_utils.py", "utils.py", "version.py",
          "models/__init__.py", "models/_api.py", "models/_meta.py", "models/_utils.py",
          *[f"models/{name}.py" for name in MODEL_FILES],
          "ops/__init__.py", *[f"ops/{name}.py" for name in OPS_FILES],
          "extension.py", "_C.so",  # torchvision's compiled ops: they load with jnn (jnn.ops.ops), not with torch
          "transforms/__init__.py", "transforms/transforms.py", "transforms/autoaugment.py",
          "transforms/functional.py", "transforms/_functional_tensor.py", "transforms/_functional_pil.py",
          "transforms/_presets.py",
          # dense prediction: segmentation, video classification, optical flow
          *[f"models/{package}/{name}.py" for package, names in (
              ("segmentation", ["__init__", "_utils", "deeplabv3", "fcn", "lraspp"]),
              ("video", ["__init__", "mvit", "resnet", "s3d", "swin_transformer"]),
              ("optical_flow", ["__init__", "_utils", "raft"]),
              ("detection", ["__init__", "_utils", "anchor_utils", "backbone_utils", "faster_rcnn", "fcos",
                             "generalized_rcnn", "image_list", "keypoint_rcnn", "mask_rcnn", "retinanet",
                             "roi_heads", "rpn", "ssd", "ssdlite", "transform"])) for name in names]]


def download_wheel(project: str, version: str, cached: str) -> pathlib.Path:
    """``project==version``'s wheel, or its source archive where PyPI has no wheel (a cached one matching the glob
    ``cached`` if present), downloaded into the cache with pip (retried: CI networks fail now and then)."""
    wheels = CACHE / "wheels"
    found = sorted(wheels.glob(cached))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    errors = []
    for attempt in range(4):
        with tempfile.TemporaryDirectory(dir=wheels) as tmp:
            run = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                                  f"{project}=={version}", "-d", tmp], capture_output=True, text=True)
            # a wheel's file name spells the project with underscores (segment-anything: segment_anything-1.0-...)
            got = sorted(path for pattern in ("*.whl", "*.tar.gz") for path in pathlib.Path(tmp).glob(pattern)
                         if path.name.lower().startswith(project.replace("-", "_").lower() + "-"))
            if run.returncode == 0 and got:
                target = wheels / got[-1].name
                os.replace(got[-1], target)
                return target
            errors.append(run.stderr.strip()[-2000:])
        time.sleep(2 ** attempt)
    raise RuntimeError(f"could not download {project}=={version} with pip:\n" + "\n---\n".join(errors))


def _wheel() -> pathlib.Path:
    """The torchvision wheel."""
    return download_wheel("torchvision", VERSION, "torchvision-0.28.*.whl")


def _filtered_init(text: str, package: str, present: set[str]) -> str:
    """``text`` without the top-level imports of ``package`` modules not in ``present`` (and what uses them)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    dropped_names: set[str] = set()
    drop: list[ast.stmt] = []

    def absent(module: str) -> bool:
        return not any(p == module or p.startswith(module + ".") for p in present)

    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            base = package if stmt.level else ""
            if stmt.level > 1:
                base = ".".join(package.split(".")[: -(stmt.level - 1)])
            module = ".".join(p for p in (base, stmt.module or "") if p) if stmt.level else stmt.module or ""
            if not module.startswith("torchvision"):
                continue
            names = [a for a in stmt.names if stmt.module is None or module == package.split(".")[0]]
            if absent(module) and not names:
                drop.append(stmt)
                dropped_names |= {a.asname or a.name for a in stmt.names}
            elif names and any(absent(f"{module}.{a.name}") for a in names):
                kept = [a for a in names if not absent(f"{module}.{a.name}")]
                dropped_names |= {a.asname or a.name for a in names if absent(f"{module}.{a.name}")}
                drop.append(stmt)
                if kept:
                    stmt.names = kept
                    stmt.__dict__["_replacement"] = ast.unparse(stmt) + "\n"
    for stmt in tree.body:
        if stmt in drop or isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            continue
        if any(isinstance(n, ast.Name) and n.id in dropped_names for n in ast.walk(stmt)):
            drop.append(stmt)
    for stmt in sorted(drop, key=lambda s: s.lineno, reverse=True):
        lines[stmt.lineno - 1: stmt.end_lineno] = [stmt.__dict__.get("_replacement", "")]
    return "".join(lines)


def _name() -> str:
    """The subset's cache entry: one per version and list of files."""
    return f"torchvision-0.28-subset-{hashlib.sha256(' '.join(SUBSET).encode()).hexdigest()[:8]}"


def source_tree() -> pathlib.Path:
    """A directory with the ``torchvision`` subset (cached; built atomically so parallel workers can share it)."""
    root = CACHE / _name()
    if (root / "torchvision" / "models" / "resnet.py").exists():
        return root
    wheel = _wheel()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=CACHE))
    with zipfile.ZipFile(wheel) as z:
        for rel in SUBSET:
            (tmp / "torchvision" / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / "torchvision" / rel).write_bytes(z.read(f"torchvision/{rel}"))
    present = {("torchvision." + rel[:-3]).replace("/", ".").removesuffix(".__init__") for rel in SUBSET
               if rel.endswith(".py")}
    for rel in SUBSET:
        if rel.endswith("__init__.py") or rel == "version.py":
            path = tmp / "torchvision" / rel
            package = ("torchvision/" + rel).rsplit("/", 1)[0].replace("/", ".")
            path.write_text(_filtered_init(path.read_text(), package, present))
    try:
        os.replace(tmp, root)
    except OSError:  # another worker got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def ported_tree() -> pathlib.Path:
    """A directory with ``torchvision_jnn``, the port of :func:`source_tree` (see ``_timm_source.port_cached``)."""
    from _timm_source import port_cached  # imported here: _timm_source imports this module

    return port_cached(source_tree(), "torchvision", _name(), "models/resnet.py")


def import_package(parent: pathlib.Path, name: str) -> types.ModuleType:
    """``import name`` from the directory ``parent``; a ``name`` already imported must come from there."""
    loaded = sys.modules.get(name)
    if loaded is not None and not str(loaded.__file__).startswith(str(parent)):
        raise RuntimeError(f"another {name} is already imported in this process: {loaded.__file__}")
    sys.path.insert(0, str(parent))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(parent))
