"""timm's own source for the timm port tests: fetched once as the wheel, cached, never committed.

``source_tree()`` gives a directory holding a ``timm`` package made of the wheel's files that a handful of model
families import (``timm/layers`` whole, the ``timm/models/_*.py`` helpers, the model files in ``MODEL_FILES`` and
``timm/data/constants.py``), untouched. Only the package ``__init__.py`` files of ``timm.models`` and ``timm.data``
are filtered: their ``from .x import ...`` statements naming a module left out are dropped, mechanically. Porting
this subset takes about 20 s on one core, all of timm about 75 s (the ~100 other model files, the data pipeline,
optimisers and schedulers). ``ported_tree()`` is its port by ``python -m jnn.port``, cached next to it for
the jnn source that made it.

timm imports ``torchvision`` at import time, for one name: ``torchvision.ops.misc.FrozenBatchNorm2d`` (in
``timm/layers/create_norm.py`` and ``timm/layers/norm_act.py``; ``timm/layers/_fx.py`` tries
``torchvision.models.feature_extraction`` and copes with an ImportError). torchvision is not installed in the test
environment, so ``stand_in_torchvision(FrozenBatchNorm2d)`` provides a stand-in package with just that module for
the length of a ``with`` block, and takes it out of ``sys.modules`` afterwards, so the torch side (with a torch
class) and the jnn side (with a jnn class) each get their own and neither is left for other tests to find.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.abc
import importlib.machinery
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import types
import zipfile

from _torchvision_source import download_wheel, jnn_digest

VERSION = "1.0.31"
CACHE = pathlib.Path(os.environ.get("JNN_TEST_CACHE", pathlib.Path.home() / ".cache" / "jnn-tests"))
ROOT = pathlib.Path(__file__).resolve().parents[1]

MODEL_FILES = ["resnet", "efficientnet", "vision_transformer", "swin_transformer", "convnext", "regnet"]
NAME = f"timm-{VERSION}-subset-" + "-".join(MODEL_FILES)  # the cache entry: one per version and subset


def _subset(names: list[str]) -> list[str]:
    """The wheel's files (relative to ``timm/``) that make up the subset."""
    keep = ["__init__.py", "version.py", "data/__init__.py", "data/constants.py",
            *[f"models/{name}.py" for name in MODEL_FILES]]
    return [n for n in names if n in keep or n.startswith("layers/") or n.startswith("models/_")]


def _wheel() -> pathlib.Path:
    """The timm wheel."""
    return download_wheel("timm", VERSION, f"timm-{VERSION}-*.whl")


def _filtered_init(text: str, present: set[str], package: str | None = None) -> str:
    """``text`` without its top-level ``from .x import ...`` statements whose module ``x`` is not in ``present``,
    and ``from . import x, y`` naming none that is; with ``package`` (the init's own dotted name), also those written
    ``from package.x import ...``."""
    lines = text.splitlines(keepends=True)

    def modules(stmt: ast.ImportFrom) -> list[str]:
        if stmt.level == 1:
            return [stmt.module] if stmt.module else [alias.name for alias in stmt.names]
        if package and stmt.level == 0 and stmt.module and stmt.module.startswith(package + "."):
            return [stmt.module[len(package) + 1:]]
        return []

    drop = [stmt for stmt in ast.parse(text).body if isinstance(stmt, ast.ImportFrom) and modules(stmt)
            and all(name.split(".")[0] not in present for name in modules(stmt))]
    for stmt in sorted(drop, key=lambda s: s.lineno, reverse=True):
        lines[stmt.lineno - 1: stmt.end_lineno] = []
    return "".join(lines)


@contextlib.contextmanager
def _lock(path: pathlib.Path):
    """An exclusive lock on ``path`` (a file), so that two pytest-xdist workers do not both port timm."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, the rename below still keeps the cache whole
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _cached(target: pathlib.Path, marker: str, fill) -> pathlib.Path:
    """``target``, made once by ``fill(tmp)`` in a temporary directory beside it and renamed into place (under a
    lock, so that parallel workers wait for the first one instead of repeating its work)."""
    if (target / marker).exists():
        return target
    with _lock(CACHE / "timm.lock"):
        if (target / marker).exists():
            return target
        tmp = pathlib.Path(tempfile.mkdtemp(dir=target.parent))
        try:
            fill(tmp)
            shutil.rmtree(target, ignore_errors=True)  # an incomplete one, left by a process that was killed
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def source_tree() -> pathlib.Path:
    """A directory with the ``timm`` subset (cached)."""
    def fill(tmp: pathlib.Path) -> None:
        with zipfile.ZipFile(_wheel()) as z:
            names = [n.removeprefix("timm/") for n in z.namelist() if n.startswith("timm/") and n.endswith(".py")]
            subset = _subset(names)
            for rel in subset:
                (tmp / "timm" / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / "timm" / rel).write_bytes(z.read(f"timm/{rel}"))
        for package in ("models", "data"):
            present = {rel.split("/")[1].removesuffix(".py") for rel in subset if rel.startswith(package + "/")}
            init = tmp / "timm" / package / "__init__.py"
            init.write_text(_filtered_init(init.read_text(), present))

    return _cached(CACHE / NAME, "timm/models/_registry.py", fill)


def port_cached(source: pathlib.Path, package: str, name: str, marker: str) -> pathlib.Path:
    """A directory with ``<package>_jnn``: ``python -m jnn.port source/package -o <package>_jnn``, cached as
    ``<name>-jnn-port-<jnn digest>`` (a port made by other jnn code is removed when a new one is made); the port's
    report is kept beside it as ``port-report.txt``. ``marker`` is a file the finished port holds."""
    prefix = f"{name}-jnn-port-"

    def fill(tmp: pathlib.Path) -> None:
        for old in CACHE.glob(prefix + "*"):
            shutil.rmtree(old, ignore_errors=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        run = subprocess.run([sys.executable, "-m", "jnn.port", str(source / package), "-o",
                              str(tmp / f"{package}_jnn")], capture_output=True, text=True, env=env)
        if run.returncode != 0 or "jnn.port: wrote" not in run.stderr:
            raise RuntimeError(f"jnn.port failed on {package}:\n{run.stderr[-5000:]}")
        (tmp / "port-report.txt").write_text(run.stderr)

    return _cached(CACHE / (prefix + jnn_digest()), f"{package}_jnn/{marker}", fill)


def ported_tree() -> pathlib.Path:
    """``timm_jnn``, the port of :func:`source_tree` (see :func:`port_cached`)."""
    return port_cached(source_tree(), "timm", NAME, "models/_registry.py")


class _StandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``torchvision``, ``torchvision.ops`` and ``torchvision.ops.misc`` (holding ``FrozenBatchNorm2d``);
    every other ``torchvision.*`` module is not found (ModuleNotFoundError), as when torchvision lacks it."""

    def __init__(self, frozen_batch_norm: type) -> None:
        self.frozen_batch_norm = frozen_batch_norm

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] != "torchvision":
            return None
        if fullname not in ("torchvision", "torchvision.ops", "torchvision.ops.misc"):
            raise ModuleNotFoundError(f"No module named {fullname!r} (jnn tests' torchvision stand-in)", name=fullname)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname != "torchvision.ops.misc")

    def create_module(self, spec):
        return types.ModuleType(spec.name, "jnn tests' stand-in for torchvision (see tests/_timm_source.py)")

    def exec_module(self, module):
        if module.__name__ == "torchvision.ops.misc":
            module.FrozenBatchNorm2d = self.frozen_batch_norm


@contextlib.contextmanager
def stand_in_torchvision(frozen_batch_norm: type):
    """Inside the block, ``import torchvision.ops.misc`` finds the stand-in; afterwards ``sys.modules`` holds the
    ``torchvision`` modules it held before (if any), and the finder is gone."""
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "torchvision"}
    for k in saved:
        del sys.modules[k]
    finder = _StandIn(frozen_batch_norm)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for k in [k for k in sys.modules if k.split(".")[0] == "torchvision"]:
            del sys.modules[k]
        sys.modules.update(saved)


def import_package(parent: pathlib.Path, name: str, frozen_batch_norm: type) -> types.ModuleType:
    """``import name`` from the directory ``parent``, with the torchvision stand-in in place while it imports."""
    sys.path.insert(0, str(parent))
    try:
        with stand_in_torchvision(frozen_batch_norm):
            import importlib

            return importlib.import_module(name)
    finally:
        sys.path.remove(str(parent))
