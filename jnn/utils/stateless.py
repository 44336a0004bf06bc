"""``functional_call`` (``torch.nn.utils.stateless`` / ``torch.func``): run a module with other parameters and buffers.

The call runs on private copies of the module (as :func:`jnn.split`'s apply does), so it is safe under
``jax.jit``/``jax.grad``, and the module itself keeps its arrays. Where PyTorch changes buffers in place (a
training-mode BatchNorm), jnn writes the new values back: into ``parameters_and_buffers`` for the names given there,
onto the module for the others (eagerly; under a transformation that would leak tracers, and raises).

>>> import jax, jax.numpy as jnp, jnn as nn
>>> from jnn.utils.stateless import functional_call
>>> m = nn.Linear(3, 1)
>>> functional_call(m, {"weight": jnp.ones((1, 3)), "bias": jnp.zeros(1)}, (jnp.ones(3),)).tolist()
[3.0]
>>> jax.grad(lambda w: functional_call(m, {"weight": w}, jnp.ones(3)).sum())(jnp.zeros((1, 3))).tolist()
[[1.0, 1.0, 1.0]]
"""

from __future__ import annotations

from typing import Any

from jnn.modules.module import Module, _flatten
from jnn.transforms import _private_copies

__all__ = ["functional_call"]


def _slots(root: Module) -> dict[str, tuple[Module, str, str]]:
    """Every parameter and buffer name, tied aliases and shared submodules included -> (module, slot dict, name)."""
    slots = {}
    for prefix, module in root.named_modules(remove_duplicate=False):
        for kind in ("_parameters", "_buffers"):
            for attr, value in module.__dict__[kind].items():
                if value is not None:
                    slots[f"{prefix}.{attr}" if prefix else attr] = (module, kind, attr)
    return slots


def _value(slot: tuple[Module, str, str]) -> Any:
    module, kind, attr = slot
    return module.__dict__[kind][attr]


def functional_call(module: Module, parameters_and_buffers: dict[str, Any], args: Any = None,
                    kwargs: dict[str, Any] | None = None, *, tie_weights: bool = True, strict: bool = False) -> Any:
    """``module(*args, **kwargs)`` with the arrays in ``parameters_and_buffers`` (keyed by ``state_dict`` names) in
    place of the module's own; names not given keep the module's values. ``args`` that is not a tuple is one
    argument. ``tie_weights=True``: a value given for one name of tied arrays is used for all of them.
    ``strict=True``: every parameter and buffer must be given, and nothing else."""
    if not isinstance(module, Module):
        raise TypeError(f"functional_call expects a jnn.Module, got {type(module).__name__}")
    if not isinstance(parameters_and_buffers, dict):
        raise TypeError(f"functional_call: parameters_and_buffers must be a dict keyed by state_dict names, got "
                        f"{type(parameters_and_buffers).__name__}")
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    kwargs = {} if kwargs is None else kwargs
    leaves, treedef = _flatten(module)
    copies = _private_copies(treedef, leaves)
    slots = _slots(copies[0])
    if strict:
        missing = sorted(k for k in slots if k not in parameters_and_buffers)
        unexpected = sorted(k for k in parameters_and_buffers if k not in slots)
        errors = ([f"Unexpected key(s): {', '.join(map(repr, unexpected))}."] if unexpected else []) + (
            [f"Missing key(s): {', '.join(map(repr, missing))}."] if missing else [])
        if errors:
            raise RuntimeError(f"Error(s) in reparametrizing for {module._get_name()}:\n\t" + "\n\t".join(errors))
    given = {k: v for k, v in parameters_and_buffers.items() if k in slots}
    targets = {k: [k] for k in given}
    if tie_weights:
        aliases: dict[int, list[str]] = {}
        for name, slot in slots.items():
            aliases.setdefault(id(_value(slot)), []).append(name)
        for name in given:
            tied = aliases[id(_value(slots[name]))]
            values = {id(given[t]) for t in tied if t in given}
            if len(values) > 1:
                raise ValueError(f"functional_call got multiple values for keys {sorted(tied)}, which are tied. "
                                 "Consider using tie_weights=False")
            targets[name] = tied
    for name, value in given.items():
        for target in targets[name]:
            owner, _, attr = slots[target]
            setattr(owner, attr, value)
    output = copies[0](*args, **kwargs)
    # write back what forward changed: given names into the dict, the module's own buffers onto the module
    written = {t for ts in targets.values() for t in ts}
    for name in given:
        parameters_and_buffers[name] = _value(slots[name])
    own = _slots(module)
    for name, slot in slots.items():
        if name not in written and slot[1] == "_buffers" and _value(slot) is not _value(own[name]):
            setattr(own[name][0], own[name][2], _value(slot))
    return output
