"""State dicts on disk: :func:`save` and :func:`load`, jnn's ``torch.save``/``torch.load`` for state dicts.

One format per module, over one common part (:mod:`jnn.serialization._common`: checking what is saved, atomic
writes that keep permissions, defensive reads, the memory bound):

- :mod:`~jnn.serialization.npz` -- jnn's own ``.npz`` (also ``numpy.savez``'s);
- :mod:`~jnn.serialization.safetensors` -- the Hugging Face format;
- :mod:`~jnn.serialization.torch` -- PyTorch's ``torch.save`` zip (``.pt``/``.pth``), read and written, and its
  legacy layout, read; pickles go through the restricted unpickler of :mod:`jnn.serialization._pickle`.

:func:`save` chooses the format from the path's suffix (``format=`` overrides); :func:`load` recognises it from the
content, never from the name, and trusts nothing in the file: nothing in it runs, every size is checked before
anything is allocated, and the arrays a file yields take at most 8x its size plus 64 MiB. Files are read with plain
reads, never memory-mapped, so a file truncated while it is read raises :class:`LoadError` (a map would kill the
process with SIGBUS); each array is read once, straight into its own memory.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Mapping
from typing import IO, Any

from jnn import distributed
from jnn.serialization import npz, safetensors, torch
from jnn.serialization._common import LoadError, PathLike, Source, atomic_write, check_state_dict, suffix_format
from jnn.serialization.npz import META_KEY

__all__ = ["save", "load", "LoadError", "META_KEY"]

_FORMATS = ("npz", "safetensors", "torch")


def save(obj: Mapping[str, Any], f: PathLike | IO[bytes], *, compress: bool = False,
         format: str | None = None) -> None:
    """Write a mapping of ``str`` keys to arrays (e.g. ``net.state_dict()``) to ``f``: npz, safetensors or
    PyTorch's ``.pt``.

    ``f`` is a path (written atomically; an existing file keeps its permissions) or a writable binary file object.
    The format is ``format`` (``"npz"``, ``"safetensors"`` or ``"torch"``) or else the path's suffix:
    ``.safetensors``; ``.pt``/``.pth`` for PyTorch's own zip checkpoint, which ``torch.load(path,
    weights_only=True)`` reads into the same tensors; anything else npz. Values may be jax or numpy arrays or
    scalars of bool, integer, float (float16, bfloat16, float8, ...) or complex dtype; key order and dtypes are
    kept exactly (safetensors has no complex128 or 4-bit types, PyTorch no 4-bit types). ``compress=True``
    deflates npz members.

    >>> import io, numpy as np
    >>> buf = io.BytesIO()
    >>> save({"fc.weight": np.eye(2, dtype=np.float32), "fc.bias": np.zeros(2, np.float32)}, buf)
    >>> list(load(io.BytesIO(buf.getvalue())))
    ['fc.weight', 'fc.bias']
    """
    # Everything that turns what the caller passes into the arrays written happens here, once, for every format.
    if distributed.spans_processes(obj):  # sharded over several processes: gathered, process 0 writes, all wait
        return distributed.write_once(obj, lambda host: save(host, f, compress=compress, format=format))
    items = check_state_dict(obj)
    npz.check_keys(items)  # '.jnn_meta*' stays reserved in every format, so any file converts to .npz
    is_path = isinstance(f, (str, bytes, os.PathLike))
    if format is None:
        format = suffix_format(os.fsdecode(os.fspath(f))) if is_path else "npz"
    if format not in _FORMATS:
        raise ValueError(f"jnn.save: format must be 'npz', 'safetensors' or 'torch', got {format!r}")
    if compress and format != "npz":
        raise ValueError(f"jnn.save: compress=True applies to npz only; {format} files are never compressed")
    if format == "safetensors":
        safetensors.check(items)
        write: Callable[[IO[bytes]], None] = lambda fh: safetensors.write(fh, items)  # noqa: E731
    elif format == "torch":
        torch.check(items)
        write = lambda fh: torch.write(fh, items)  # noqa: E731
    else:
        write = lambda fh: npz.write(fh, items, compress)  # noqa: E731
    if is_path:
        atomic_write(f, write)
    elif callable(getattr(f, "write", None)):
        write(f)
    else:
        raise TypeError(f"jnn.save: f must be a path or a writable binary file, got {type(f).__name__}")


def load(f: PathLike | IO[bytes], map_location: Any = None, pickle_module: Any = None, *,
         weights_only: bool | None = None, mmap: bool | None = None) -> Any:
    """Read a state dict (or checkpoint) saved by jnn, numpy, safetensors or PyTorch, as numpy arrays.

    ``f`` is a path or a readable binary file object. torch.load's ``map_location``, ``weights_only`` and ``mmap``
    are accepted (ported ``torch.load(path, map_location="cpu", weights_only=True)``) and change nothing: the
    arrays are NumPy arrays on the host wherever they were saved, nothing is ever unpickled but tensors, arrays and
    plain containers (``weights_only=False`` does not widen that), and the file is read, never mapped. A
    ``pickle_module`` is refused. The format is recognised from the content, not the file
    name: npz and safetensors files give an ``OrderedDict`` of arrays in file order; a PyTorch ``torch.save``
    file gives what was saved with each tensor (or JAX array) as a numpy array -- an ``OrderedDict`` when that was
    a mapping (a ``state_dict``), nested dicts/lists/tuples otherwise. Dtypes are kept (bfloat16 and float8 as
    ml_dtypes arrays). Nothing in the file is executed; content jnn cannot or will not read (unknown format,
    corrupt, sizes the file cannot hold, pickled objects other than tensors, arrays and plain containers) raises
    :class:`LoadError`.

    >>> import io, numpy as np, ml_dtypes
    >>> buf = io.BytesIO()
    >>> save({"w": np.array([1.5, 3e38], ml_dtypes.bfloat16), "step": 3}, buf)
    >>> sd = load(io.BytesIO(buf.getvalue()))
    >>> sd["w"].dtype, sd["step"]
    (dtype(bfloat16), array(3))
    >>> buf = io.BytesIO()
    >>> save({"b": np.ones(2, ml_dtypes.bfloat16), "a": np.arange(3)}, buf, format="safetensors")
    >>> [(k, v.dtype.name, v.shape) for k, v in load(io.BytesIO(buf.getvalue())).items()]
    [('b', 'bfloat16', (2,)), ('a', 'int64', (3,))]
    """
    if pickle_module is not None:
        raise TypeError("jnn.load: pickle_module is not supported: checkpoints are read by jnn's own restricted "
                        "unpickler, which builds only tensors, arrays and plain containers")
    for name, value in (("weights_only", weights_only), ("mmap", mmap)):
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"jnn.load: {name} must be a bool or None, got {type(value).__name__}")
    if isinstance(f, (str, bytes, os.PathLike)):
        with open(f, "rb") as fh:
            return _dispatch(fh)
    if not callable(getattr(f, "read", None)):
        raise TypeError(f"jnn.load: f must be a path or a readable binary file, got {type(f).__name__}")
    seekable = getattr(f, "seekable", None)
    return _dispatch(f if seekable is not None and seekable() else io.BytesIO(f.read()))


def _dispatch(fh: IO[bytes]) -> Any:
    """Sniff the format from the first bytes, then hand the file to that format's reader."""
    source = Source(fh, fh.tell())
    head = source.bytes(0, 264)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip (empty: numpy.savez())
        return _read_zip(fh, source)
    if head[257:262] == b"ustar":
        raise LoadError("jnn.load: this is a tar archive, PyTorch's oldest checkpoint format (before 0.4); it is "
                        "not read -- load it with that PyTorch and re-save it with torch.save")
    if torch.sniff_legacy(head):
        return torch.read_legacy(source)
    if safetensors.sniff(head):
        return safetensors.read(source)
    raise LoadError(f"jnn.load: unrecognised file format (starts with {head[:16]!r}); expected an .npz, a "
                    f"safetensors file or a PyTorch torch.save checkpoint")


def _read_zip(fh: IO[bytes], source: Source) -> Any:
    """A zip is an npz unless it holds an '<archive>/data.pkl' member (a PyTorch checkpoint)."""
    try:
        zf = zipfile.ZipFile(fh)
    except Exception as e:
        raise LoadError(f"jnn.load: corrupt zip archive (its central directory): {type(e).__name__}: {e}") from e
    with zf:
        npz.check_expansion(zf, fh.seek(0, os.SEEK_END))
        if torch.is_torch_zip(zf.namelist()):
            return torch.read_zip(zf, Source(fh, 0))
        return npz.read(zf)
