"""torchaudio's own model source for the port tests: fetched once as the wheel, cached, never committed.

``source_tree()`` gives a directory holding a ``torchaudio`` package made of the wheel's ``torchaudio/models``
files (every model family: wav2vec2 / HuBERT / WavLM, Conformer, Emformer, RNN-T, ConvTasNet, DeepSpeech, WaveRNN,
Wav2Letter, Tacotron2, HDemucs, Squim), untouched, plus the package's ``__init__.py`` and ``version.py``. Only the
top-level ``__init__.py`` is filtered: its imports of the parts left out (the compiled extension loader
``_extension``, ``_torchcodec``, ``functional``, ``transforms``, ``datasets``, ``pipelines``, ...) are dropped,
mechanically, so ``from . import compliance, ..., models, ...`` keeps ``models`` alone. The wheel's compiled
extension is built for another torch and is never loaded: no model file needs it (the CTC decoders that do are
imported lazily, by name, and are not used here). So no stand-in module is needed at all, and the torch reference
models are built from the same files as the port.

``ported_tree()`` is ``python -m jnn.port torchaudio -o torchaudio_jnn`` of that subset, cached next to it for the
jnn source that made it (absolute imports ``from torchaudio.models import ...`` follow the package to
``torchaudio_jnn``).
"""

from __future__ import annotations

import ast
import importlib
import os
import pathlib
import sys
import types
import zipfile

from _timm_source import _cached, port_cached
from _torchvision_source import download_wheel

VERSION = "2.11.1"
CACHE = pathlib.Path(os.environ.get("JNN_TEST_CACHE", pathlib.Path.home() / ".cache" / "jnn-tests"))
ROOT = pathlib.Path(__file__).resolve().parents[1]
NAME = f"torchaudio-{VERSION}-models"  # the cache entry: one per version


def _subset(names: list[str]) -> list[str]:
    """The wheel's files (relative to ``torchaudio/``) that make up the subset."""
    return [n for n in names if n in ("__init__.py", "version.py") or n.startswith("models/")]


def _filtered_init(text: str, present: set[str]) -> str:
    """``text`` without its top-level relative imports of modules not in ``present`` (``from . import a, b`` keeps
    the names in ``present``; ``from .x import ...`` goes when ``x`` is absent)."""
    lines = text.splitlines(keepends=True)
    edits: list[tuple[ast.stmt, str]] = []
    for stmt in ast.parse(text).body:
        if not (isinstance(stmt, ast.ImportFrom) and stmt.level == 1):
            continue
        if stmt.module is None:
            kept = [a for a in stmt.names if a.name in present]
            if len(kept) != len(stmt.names):
                edits.append((stmt, ast.unparse(ast.ImportFrom(None, kept, 1)) + "\n" if kept else ""))
        elif stmt.module.split(".")[0] not in present:
            edits.append((stmt, ""))
    for stmt, replacement in sorted(edits, key=lambda e: e[0].lineno, reverse=True):
        lines[stmt.lineno - 1: stmt.end_lineno] = [replacement]
    return "".join(lines)


def source_tree() -> pathlib.Path:
    """A directory with the ``torchaudio`` subset (cached)."""
    def fill(tmp: pathlib.Path) -> None:
        wheel = download_wheel("torchaudio", VERSION, f"torchaudio-{VERSION}-*.whl")
        with zipfile.ZipFile(wheel) as z:
            names = [n.removeprefix("torchaudio/") for n in z.namelist()
                     if n.startswith("torchaudio/") and n.endswith(".py")]
            for rel in _subset(names):
                (tmp / "torchaudio" / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / "torchaudio" / rel).write_bytes(z.read(f"torchaudio/{rel}"))
        init = tmp / "torchaudio" / "__init__.py"
        init.write_text(_filtered_init(init.read_text(), {"models", "version"}))

    return _cached(CACHE / NAME, "torchaudio/models/__init__.py", fill)


def ported_tree() -> pathlib.Path:
    """``torchaudio_jnn``, the port of :func:`source_tree` (see ``_timm_source.port_cached``)."""
    return port_cached(source_tree(), "torchaudio", NAME, "models/__init__.py")


def import_package(parent: pathlib.Path, name: str) -> types.ModuleType:
    """``import name`` from the directory ``parent`` (a ``name`` imported before, from elsewhere, is replaced)."""
    for k in [k for k in sys.modules if k.split(".")[0] == name]:
        del sys.modules[k]
    sys.path.insert(0, str(parent))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(parent))
