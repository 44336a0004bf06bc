"""``torch.nn.modules.utils``: the argument helpers that layer code imports (``_pair``, ``_single``, ...).

>>> _pair(3), _pair([1, 2]), _triple(0), _reverse_repeat_tuple((1, 2), 2)
((3, 3), (1, 2), (0, 0, 0), (2, 2, 1, 1))
"""

from __future__ import annotations

import collections.abc
import itertools
from collections.abc import Callable
from typing import Any

__all__: list[str] = []


def _ntuple(n: int, name: str = "parse") -> Callable[[Any], tuple]:
    """A function making an ``n``-tuple of one value; an iterable is made a tuple as it is (torch's ``_ntuple``).

    >>> _ntuple(2, "_pair")(5)
    (5, 5)
    """

    def parse(x: Any) -> tuple:
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(itertools.repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t: tuple, n: int) -> tuple:
    """``t`` reversed, each element repeated ``n`` times: a layer's padding as ``F.pad`` wants it.

    >>> _reverse_repeat_tuple((1, 2), 2)
    (2, 2, 1, 1)
    """
    return tuple(x for x in reversed(t) for _ in range(n))


def _list_with_default(out_size: Any, defaults: list[int]) -> Any:
    """An adaptive pooling ``output_size`` with its ``None`` entries taken from the input's trailing ``defaults``.

    >>> _list_with_default([None, 3], [8, 16, 16])
    [16, 3]
    """
    if isinstance(out_size, int):
        return out_size
    if len(defaults) <= len(out_size):
        raise ValueError(f"Input dimension should be at least {len(out_size) + 1}")
    return [v if v is not None else d for v, d in zip(out_size, defaults[-len(out_size):], strict=False)]
