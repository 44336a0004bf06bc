"""Port PyTorch model source to jnn + JAX: ``python -m jnn.port model.py -o model_jnn.py``.

A source-to-source rewrite (libcst, so comments and layout stay): torch imports become jnn imports
(``import torch.nn as nn`` -> ``import jnn as nn``, ``torch`` -> :mod:`jnn.ops`), torch functions and tensor
methods become :mod:`jnn.ops` functions (``x.view(b, -1)`` -> ``ops.view(x, b, -1)``; they call the receiver's own
method when it is not an array, so ``"a b".split()`` keeps working), in-place methods and element updates become
assignments (``x.add_(y)`` -> ``x = ops.add_(x, y)``, ``a[i] += v`` -> ``a = ops.at(a)[i].add(v)``), and
``torch.nn.init`` calls store their result in the slot they were given. What it cannot convert is reported on stderr as
``file:line: jnn.port: why`` and marked in the output with a ``# jnn.port:`` comment.

>>> print(port_source("import torch\\nimport torch.nn as nn\\ny = torch.cat([a, b], dim=1).view(2, -1)\\n"))
from jnn import ops
import jnn as nn
y = ops.view(ops.cat([a, b], dim=1), 2, -1)
<BLANKLINE>

The ``missing`` placeholder below is what ported code imports for a torch name with no jnn counterpart.
"""

from __future__ import annotations

import functools
import os
import pathlib
import shutil
import sys
import typing
from collections.abc import Iterable
from typing import Any

__all__ = ["port_source", "port_file", "port_tree", "missing", "Report", "PortedNameError"]

_SKIP_SUFFIXES = (".pyc",)


class PortedNameError(NotImplementedError, AttributeError):
    """Raised when ported code uses a torch name that jnn does not provide."""


class missing:  # noqa: N801  (reads as a function at the call site: ``x = missing("torch.hub.load")``)
    """A torch name with no jnn counterpart, left in ported code: it raises :class:`PortedNameError` naming the torch
    name when it is called or instantiated, and nothing earlier, so import-time code that only mentions it still runs.

    Its attributes are placeholders too (``missing("torch.optim").Optimizer``); it can be subscripted and joined with
    ``|`` in annotations (``Optional[missing("torch.optim.Optimizer")]``); as a base class it gives a stub base whose
    classes raise when instantiated (``class Fn(torch.autograd.Function)``); nothing is an instance of it.

    >>> load = missing("torch.hub.load_state_dict_from_url")
    >>> load("https://...")
    Traceback (most recent call last):
    ...
    jnn.port.PortedNameError: torch.hub.load_state_dict_from_url has no jnn counterpart (left by jnn.port)
    >>> class SwishFn(missing("torch.autograd").Function):
    ...     pass
    >>> SwishFn()
    Traceback (most recent call last):
    ...
    jnn.port.PortedNameError: torch.autograd.Function has no jnn counterpart (left by jnn.port): SwishFn cannot be made
    """

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _fail(self, detail: str = "") -> PortedNameError:
        return PortedNameError(f"{self._name} has no jnn counterpart (left by jnn.port){detail}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._fail()

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return missing(f"{self._name}.{attr}")

    def __getitem__(self, item: Any) -> missing:
        return self

    def __or__(self, other: Any) -> Any:
        return typing.Union[self, other]  # noqa: UP007 (placeholders are not types: `|` is this method)

    def __ror__(self, other: Any) -> Any:
        return typing.Union[other, self]  # noqa: UP007

    def __mro_entries__(self, bases: tuple) -> tuple[type]:
        return (_stub_base(self._name),)

    def __instancecheck__(self, obj: Any) -> bool:
        return self.__subclasscheck__(type(obj))

    def __subclasscheck__(self, cls: type) -> bool:
        return any(getattr(base, "_jnn_missing", None) == self._name for base in getattr(cls, "__mro__", ()))

    def __repr__(self) -> str:
        return f"missing({self._name!r})"


@functools.cache
def _stub_base(name: str) -> type:
    """The base class a ``missing`` placeholder stands for in a class statement: subclassing works, making one
    raises."""

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        raise missing(name)._fail(f": {cls.__name__} cannot be made")

    return type(name.rsplit(".", 1)[-1], (), {"__new__": __new__, "_jnn_missing": name, "__module__": "jnn.port",
                                              "__doc__": f"Stands for {name}, which jnn does not have."})


def _tables() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    from jnn import init, ops

    init_names = frozenset(n for n in init.__all__ if n.endswith("_"))
    return frozenset(ops.METHODS), frozenset(ops.INPLACE), init_names


def _port(text: str, path: str, rename: tuple[str, str] | None = None) -> tuple[str, list]:
    try:
        from jnn.port._rewrite import port_module
    except ImportError as e:  # pragma: no cover - libcst is an optional extra
        raise ImportError("jnn.port needs libcst: pip install 'jnn[port]'") from e
    return port_module(text, path, *_tables(), rename=rename)


def _emit(reports: Iterable[Any], stream: Any) -> None:
    for report in reports:
        print(report, file=stream)


def port_source(text: str, path: str = "<string>", *, report: Any = sys.stderr) -> str:
    """Port PyTorch source ``text`` to jnn; what cannot be converted is printed to ``report`` (None: silent).

    >>> print(port_source("x.add_(y)\\nimport torch\\n"), end="")
    x = ops.add_(x, y)
    from jnn import ops
    """
    new, reports = _port(text, path)
    if report is not None:
        _emit(reports, report)
    return new


def port_file(src: str | os.PathLike, dst: str | os.PathLike, *, report: Any = sys.stderr,
              rename: tuple[str, str] | None = None) -> list:
    """Port one file; returns the reports (also printed to ``report`` unless it is None)."""
    src, dst = pathlib.Path(src), pathlib.Path(dst)
    new, reports = _port(src.read_text(encoding="utf-8"), str(src), rename)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(new, encoding="utf-8")
    if report is not None:
        _emit(reports, report)
    return reports


def port_tree(src: str | os.PathLike, dst: str | os.PathLike, *, report: Any = sys.stderr) -> list:
    """Port a package directory: every ``.py`` file is ported, other files are copied (compiled libraries too: a
    package that loads one with ``torch.ops.load_library`` gets jnn's operators where jnn has them, see
    :func:`jnn.ops.ops.load_library`).

    Absolute imports of the package by its own name (``from torchvision.ops import ...``) follow it to the name of
    ``dst`` when the two differ. Returns the reports.
    """
    src, dst = pathlib.Path(src), pathlib.Path(dst)
    if not src.is_dir():
        raise NotADirectoryError(f"jnn.port.port_tree: {src} is not a directory")
    rename = (src.name, dst.name) if src.name != dst.name else None
    reports = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if "__pycache__" in rel.parts or path.is_dir() or path.suffix in _SKIP_SUFFIXES:
            continue
        out = dst / rel
        if path.suffix == ".py":
            reports += port_file(path, out, report=report, rename=rename)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
    return reports


def __getattr__(name: str) -> Any:
    if name == "Report":
        from jnn.port._rewrite import Report

        return Report
    raise AttributeError(f"module 'jnn.port' has no attribute '{name}'")
