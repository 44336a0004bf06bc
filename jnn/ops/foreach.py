"""torch's ``_foreach_*`` functions (``torch._foreach_mul_(ema_values, 0.9)``, ``torch._foreach_norm(grads)``), used
by EMA and optimiser code: the elementwise function over a list of tensors, its other arguments lists of the same
length or one value for all. The in-place ones put the new arrays in the list given (and return it) and, as
:mod:`jnn.ops.inplace`'s functions do, write each back to the module slot its old array was read from
(``ema_values`` from ``ema.state_dict().values()``).

>>> import jax.numpy as jnp
>>> xs = [jnp.ones(2), jnp.zeros(3)]
>>> [x.tolist() for x in _foreach_lerp_(xs, [jnp.full(2, 3.0), jnp.ones(3)], 0.5)]
[[2.0, 2.0], [0.5, 0.5, 0.5]]
>>> [float(n) for n in _foreach_norm([jnp.array([3.0, 4.0]), jnp.ones(4)])]
[5.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from jnn.ops import inplace, pointwise, reduction
from jnn.ops._core import write_through

# torch's names for each function's arguments after the tensor list, in order, with the aliases of its overloads
# (``scalar``, ``scalars``, ``other``, ``tensor`` for one binary argument); the first name of those in _KEYWORDS is
# the element function's keyword, the others are positional
_BINARY = (("other", "scalar", "scalars", "tensor"),)
_ARGUMENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    **dict.fromkeys(("add", "sub"), (*_BINARY, ("alpha",))),
    **dict.fromkeys(("mul", "div", "clamp_min", "clamp_max", "maximum", "minimum"), _BINARY),
    "pow": (("exponent", "scalar", "scalars", "tensor"),),
    "lerp": (("tensors1", "end"), ("weight", "weights", "scalar", "scalars")),
    **dict.fromkeys(("addcmul", "addcdiv"), (("tensor1",), ("tensor2",), ("value", "scalars", "scalar"))),
    "copy": (("src",), ("non_blocking",)),
    **dict.fromkeys(("abs", "neg", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "sign", "sigmoid",
                     "tanh", "sin", "cos", "reciprocal", "floor", "ceil", "round", "trunc", "frac", "erf", "erfc",
                     "zero"), ()),
}
_KEYWORDS = frozenset({"alpha", "value"})

def _pick(arg: Any, i: int) -> Any:
    """The ``i``-th tensor's argument: an element of a list, or the one value given for all."""
    return arg[i] if isinstance(arg, (list, tuple)) else arg


def _foreach(name: str, element: Callable, arguments: tuple[tuple[str, ...], ...]) -> Callable:
    def op(self: Sequence[Any], *args: Any, **kwargs: Any) -> list:
        tensors = list(self)
        for names in arguments[len(args):]:  # torch's keywords, as the element function's positional arguments
            given = [n for n in names if n in kwargs]
            if len(given) > 1:
                raise TypeError(f"jnn.ops.{name}() got '{given[0]}' and '{given[1]}' for one argument")
            if not given:
                break
            args += (kwargs.pop(given[0]),)
        if kwargs:
            raise TypeError(f"jnn.ops.{name}() got an unexpected keyword argument '{next(iter(kwargs))}'")
        if len(args) > len(arguments):
            raise TypeError(f"jnn.ops.{name}() takes {len(arguments) + 1} arguments, got {len(args) + 1}")
        for arg in args:
            if isinstance(arg, (list, tuple)) and len(arg) != len(tensors):
                raise ValueError(f"jnn.ops.{name}: expected every list to hold {len(tensors)} tensors, as the first "
                                 f"does, got one of {len(arg)}")
        keywords = {names[0]: arg for names, arg in zip(arguments, args, strict=False) if names[0] in _KEYWORDS}
        args = args[:len(args) - len(keywords)]  # keyword arguments come last in torch's order
        results = [element(t, *[_pick(a, i) for a in args], **{k: _pick(v, i) for k, v in keywords.items()})
                   for i, t in enumerate(tensors)]
        if name.endswith("_") and isinstance(self, list):
            self[:] = results  # the caller's list holds the new arrays, as torch's holds the changed tensors
            return self
        return results

    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"torch's ``{name}``: ``{element.__name__}`` over a list of tensors" + (
        "; a list given is updated in place and returned" if name.endswith("_") else ", returned as a new list"))
    return op


__all__: list[str] = []
for _name, _arguments in _ARGUMENTS.items():
    if _name not in ("copy", "zero"):  # torch has these two in place only
        globals()[f"_foreach_{_name}"] = _foreach(f"_foreach_{_name}", getattr(pointwise, _name), _arguments)
        __all__.append(f"_foreach_{_name}")
    _element = getattr(inplace, _name + "_", None) or write_through(inplace._same_shape(_name + "_", getattr(
        pointwise, _name)))  # torch has no Tensor.maximum_: the in-place function only here
    globals()[f"_foreach_{_name}_"] = _foreach(f"_foreach_{_name}_", _element, _arguments)
    __all__.append(f"_foreach_{_name}_")


def _foreach_norm(self: Sequence[Any], ord: Any = 2, dtype: Any = None) -> list:
    """torch's ``_foreach_norm``: each tensor's vector norm of order ``ord`` (over all its elements)."""
    return [reduction.norm(t.reshape(-1), p=ord, dtype=dtype) for t in self]


__all__.append("_foreach_norm")
