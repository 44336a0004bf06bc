"""HuggingFace transformers' own source for the transformers port tests: the installed package's files, ported once
per jnn source, cached, never committed.

transformers is installed by the test extra (its pinned version builds the torch reference models, and its
dependencies, huggingface_hub, tokenizers, safetensors, ..., are imported by its own files on either side).
``source_tree()`` copies, untouched, the package files that importing the models in ``CLASSES`` loads: the list
comes from importing them in a subprocess with torch and reading ``sys.modules`` (about 190 of the ~3000 files:
configuration, modeling and attention utilities, the generation, quantizer and integration modules that
``modeling_utils`` imports, and the four model directories). ``ported_tree()`` is its port by
``python -m jnn.port transformers -o transformers_jnn``, cached next to it for the jnn source that made it.
``subset_tree`` and ``load`` take the package and the names, and serve the diffusers tests too
(``_diffusers_source``).

The ported package reads, like the original, whether the ``torch`` distribution is installed
(``transformers.utils.import_utils.is_torch_available``, package metadata): without it, it exposes dummy objects
instead of its models, so the port runs here next to an installed torch, which it does not import.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

from _timm_source import _cached, port_cached

CACHE = pathlib.Path(os.environ.get("JNN_TEST_CACHE", pathlib.Path.home() / ".cache" / "jnn-tests"))
ROOT = pathlib.Path(__file__).resolve().parents[1]
# the names the tests take from the package: importing them loads the subset
CLASSES = ["GPT2Config", "GPT2LMHeadModel", "BertConfig", "BertModel", "LlamaConfig", "LlamaForCausalLM",
           "ViTConfig", "ViTModel"]


def version(package: str = "transformers") -> str:
    return importlib.metadata.version(package)


def subset_name(package: str = "transformers", names: list[str] = CLASSES) -> str:
    """The cache entry: one per installed version and list of names."""
    return f"{package}-{version(package)}-subset-" + hashlib.sha256(" ".join(names).encode()).hexdigest()[:8]


def _installed(package: str) -> pathlib.Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{package} is not installed: pip install -e '.[test]'")
    return pathlib.Path(spec.submodule_search_locations[0])


def _imported_files(package: str, names: list[str]) -> list[str]:
    """The package files (relative to ``package/``) that importing ``names`` from it with torch loads."""
    code = (
        f"import json, sys, pathlib, {package}\n"
        f"for name in {names!r}:\n"
        f"    getattr({package}, name)\n"
        f"root = pathlib.Path({package}.__file__).parent\n"
        "files = {str(pathlib.Path(m.__file__).relative_to(root)) for k, m in list(sys.modules.items())\n"
        f"         if k.split('.')[0] == {package!r} and getattr(m, '__file__', None)}}\n"
        "print(json.dumps(sorted(files)))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=CACHE)
    if run.returncode != 0:
        raise RuntimeError(f"importing {package}'s models failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def subset_tree(package: str, names: list[str], marker: str) -> pathlib.Path:
    """A directory with the installed ``package``'s files that importing ``names`` from it loads, untouched
    (cached; ``marker`` is one of them, relative to ``package/``)."""
    def fill(tmp: pathlib.Path) -> None:
        installed = _installed(package)
        for rel in _imported_files(package, names):
            (tmp / package / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(installed / rel, tmp / package / rel)

    CACHE.mkdir(parents=True, exist_ok=True)
    return _cached(CACHE / subset_name(package, names), f"{package}/{marker}", fill)


def source_tree() -> pathlib.Path:
    """A directory with the ``transformers`` subset (cached)."""
    return subset_tree("transformers", CLASSES, "modeling_utils.py")


def ported_tree() -> pathlib.Path:
    """``transformers_jnn``, the port of :func:`source_tree` (see ``_timm_source.port_cached``)."""
    return port_cached(source_tree(), "transformers", subset_name(), "modeling_utils.py")


def load(package: str, parent: pathlib.Path | None = None, names: list[str] = CLASSES):
    """``import package`` (from ``parent`` when given) and ``names`` from it, with torchvision
    hidden while they import (``sys.modules["torchvision"] = None``: not found, not importable; the ``torchvision``
    modules in ``sys.modules`` before are back afterwards). The torchvision port tests leave their pure-Python
    subset of torchvision (no ``torchvision.io``) importable in the same worker, and transformers imports
    ``torchvision.io`` when it finds torchvision."""
    import importlib

    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "torchvision"}
    for k in saved:
        del sys.modules[k]
    sys.modules["torchvision"] = None
    if parent is not None:
        sys.path.insert(0, str(parent))
    try:
        module = importlib.import_module(package)
        for name in names:
            getattr(module, name)
        return module
    finally:
        if parent is not None:
            sys.path.remove(str(parent))
        del sys.modules["torchvision"]
        sys.modules.update(saved)


def import_ported():
    """``import transformers_jnn`` from the ported tree, with its models."""
    return load("transformers_jnn", ported_tree())
