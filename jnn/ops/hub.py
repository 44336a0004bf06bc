"""``torch.hub`` for ported model code: where checkpoints are cached, and loading a state dict from a URL.

Model files call ``torch.hub.load_state_dict_from_url`` (torchvision's weights, most model zoos); ported code calls
this module instead. Files are cached where torch caches them (``$TORCH_HOME`` or ``$XDG_CACHE_HOME/torch``, then
``hub/checkpoints``), so a checkpoint torch already downloaded is reused, and read by :func:`jnn.load` (torch's zip
format, no torch needed, no code executed).

>>> import os, pathlib
>>> os.environ["TORCH_HOME"] = "/tmp/jnn-hub-doctest"
>>> get_dir() == os.path.join("/tmp/jnn-hub-doctest", "hub")
True
>>> del os.environ["TORCH_HOME"]
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["get_dir", "set_dir", "download_url_to_file", "load_state_dict_from_url"]

_HASH = re.compile(r"-([a-f0-9]*)\.")
_hub_dir: str | None = None


def _get_torch_home() -> str:
    return os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")))


def get_dir() -> str:
    """The hub cache directory, as ``torch.hub.get_dir``."""
    return _hub_dir if _hub_dir is not None else os.path.join(_get_torch_home(), "hub")


def set_dir(d: str | os.PathLike) -> None:
    """Set the hub cache directory, as ``torch.hub.set_dir``."""
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


def download_url_to_file(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
    """Download ``url`` to ``dst`` (atomically); check its SHA-256 starts with ``hash_prefix`` when given."""
    dst = os.path.expanduser(dst)
    folder = os.path.dirname(os.path.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(delete=False, dir=folder) as tmp:
        try:
            with urllib.request.urlopen(url) as response:
                while chunk := response.read(1 << 20):
                    tmp.write(chunk)
                    digest.update(chunk)
            tmp.close()
            if hash_prefix is not None and not digest.hexdigest().startswith(hash_prefix):
                raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "{digest.hexdigest()}")')
            shutil.move(tmp.name, dst)
        finally:
            if os.path.exists(tmp.name):
                os.remove(tmp.name)


def load_state_dict_from_url(url: str, model_dir: str | None = None, map_location: Any = None, progress: bool = True,
                             check_hash: bool = False, file_name: str | None = None,
                             weights_only: bool = True) -> dict[str, Any]:
    """Download (once) and load a checkpoint saved by ``torch.save``, as ``torch.hub.load_state_dict_from_url``.

    ``map_location`` and ``weights_only`` are accepted for torch's signature; the file is always read as data.
    """
    from jnn.serialization import load

    model_dir = model_dir if model_dir is not None else os.path.join(get_dir(), "checkpoints")
    os.makedirs(model_dir, exist_ok=True)
    filename = file_name or os.path.basename(urllib.parse.urlparse(url).path)
    cached = os.path.join(model_dir, filename)
    if not os.path.exists(cached):
        match = _HASH.search(filename) if check_hash else None
        download_url_to_file(url, cached, match.group(1) if match else None, progress=progress)
    return load(cached)
