"""``torch.ops``: the namespaces of custom operators that model code calls as ``torch.ops.<namespace>.<name>(...)``.

jnn runs no compiled torch code; the operators it implements itself, in JAX, live here under their namespace:
:mod:`jnn.ops.ops.torchvision` (torchvision's ``nms``, ``roi_align``, ``roi_pool``), so ported code's
``torch.ops.torchvision.nms(boxes, scores, 0.5)`` becomes ``ops.ops.torchvision.nms(boxes, scores, 0.5)``.
:func:`load_library` is what a package's loader of its compiled extension calls.

>>> import jax.numpy as jnp
>>> from jnn import ops
>>> boxes = jnp.array([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
>>> ops.ops.torchvision.nms(boxes, jnp.array([0.9, 0.8, 0.7]), 0.5).tolist()
[0, 2]
"""

from __future__ import annotations

import os
import pathlib

from jnn.ops.ops import torchvision as torchvision

__all__ = ["load_library", "torchvision"]

_NAMESPACES = ("torchvision",)  # the torch.ops namespaces jnn implements


def load_library(path: str | os.PathLike) -> None:
    """``torch.ops.load_library``: torch loads a compiled library that registers operators. jnn runs no compiled
    torch code: a library that registers operators of a namespace jnn implements (``torchvision``: its ``_C``
    library) "loads" without running anything, its operators being jnn's own; any other raises :class:`OSError`,
    as a library built for another torch does, so that a package's fallback for a missing extension takes over.
    The namespaces a library registers are read from its bytes (``b"torchvision::nms"``).

    >>> load_library("/no/such/_C.so")
    Traceback (most recent call last):
    ...
    OSError: Could not load this library: /no/such/_C.so
    """
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError as error:
        raise OSError(f"Could not load this library: {path}") from error
    if not any(f"{namespace}::".encode() in data for namespace in _NAMESPACES):
        raise OSError(f"Could not load this library: {path} (jnn runs no compiled torch code, and this library "
                      f"registers no operators of the namespaces jnn implements: {', '.join(_NAMESPACES)})")
