"""Where each torch name lives in jnn: ``torch.nn.functional.relu`` -> ``jnn.functional.relu``, ``torch.cat`` -> ops."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

OPS = "jnn.ops"

# torch module prefixes and their jnn counterparts, longest first; everything else under ``torch`` is jnn.ops
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("torch.nn.functional", "jnn.functional"),
    ("torch.nn.init", "jnn.init"),
    ("torch.nn.utils", "jnn.utils"),
    ("torch.nn.parameter", "jnn.parameter"),
    ("torch.nn.common_types", "jnn.common_types"),
    ("torch.nn.modules", "jnn.modules"),
    ("torch.nn", "jnn"),
    ("torch.utils.checkpoint", "jnn.utils.checkpoint"),
    ("torch", OPS),
)

# single torch names whose jnn counterpart is not in jnn.ops
_SPECIAL: dict[str, str] = {
    "torch.manual_seed": "jnn.manual_seed",
    "torch.save": "jnn.save",
    "torch.load": "jnn.load",
}


# modules of other packages made for torch, and their jnn counterparts (``from einops.layers.torch import
# Rearrange`` -> ``from jnn.einops import Rearrange``); the rest of such a package (``einops.rearrange``) is kept
OTHER_MODULES: dict[str, str] = {
    "einops.layers.torch": "jnn.einops",
}


def jnn_name(torch_name: str) -> str | None:
    """The jnn qualified name for a torch qualified name, or None when ``torch_name`` is not torch's.

    >>> jnn_name("torch.nn.functional.relu"), jnn_name("torch.cat"), jnn_name("numpy.cat")
    ('jnn.functional.relu', 'jnn.ops.cat', None)
    """
    if torch_name in _SPECIAL:
        return _SPECIAL[torch_name]
    for prefix, target in _PREFIXES:
        if torch_name == prefix or torch_name.startswith(prefix + "."):
            return target + torch_name[len(prefix):]
    return None


@cache
def lookup(name: str) -> tuple[bool, Any]:
    """``(True, object)`` when the dotted ``name`` exists (a module or an attribute chain below one)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            if not hasattr(obj, part):
                return False, None
            obj = getattr(obj, part)
        return True, obj
    return False, None


def exists(name: str) -> bool:
    """Whether the dotted ``name`` can be imported or reached by attributes.

    >>> exists("jnn.functional.relu"), exists("jnn.functional.no_such_thing")
    (True, False)
    """
    return lookup(name)[0]


def is_module(name: str) -> bool:
    """Whether the dotted ``name`` is a module (``import name`` works)."""
    found, obj = lookup(name)
    return found and type(obj).__name__ == "module"
