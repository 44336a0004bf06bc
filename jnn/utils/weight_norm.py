"""The legacy weight norm hook (``torch.nn.utils.weight_norm``): ``weight_g`` and ``weight_v`` parameters.

PyTorch recommends :func:`jnn.utils.parametrizations.weight_norm` instead; this one is kept for checkpoints and code
that use the ``weight_g``/``weight_v`` names. ``module.weight`` is computed on access (PyTorch recomputes and stores
it before every forward), so it is always current and never a stale plain tensor.

>>> import jnn as nn
>>> m = nn.utils.weight_norm(nn.Linear(20, 40), name="weight")
>>> list(m.state_dict())
['bias', 'weight_g', 'weight_v']
>>> m.weight_g.shape, m.weight.shape
((40, 1), (40, 20))
"""

from __future__ import annotations

import warnings
from typing import Any, TypeVar

import jax

from jnn.modules.module import Module, Parameter
from jnn.utils.parametrizations import _norm_except_dim, _weight_norm
from jnn.utils.parametrize import _add_attribute_hook, _attribute_hooks, _remove_attribute_hook

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]

T_module = TypeVar("T_module", bound=Module)


class WeightNorm:
    """The forward pre-hook of :func:`weight_norm`: ``<name> = <name>_g * <name>_v / ||<name>_v||``."""

    def __init__(self, name: str, dim: int | None) -> None:
        self.name = name
        self.dim = -1 if dim is None else dim

    @property
    def _jnn_attribute(self) -> str:
        return self.name

    def compute_weight(self, module: Module) -> jax.Array:
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    _jnn_compute = compute_weight

    def __call__(self, module: Module, inputs: Any) -> None:
        """Nothing to do before forward: ``module.<name>`` is computed when forward reads it."""

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> WeightNorm:
        warnings.warn("jnn.utils.weight_norm is deprecated (as torch.nn.utils.weight_norm is) in favor of "
                      "jnn.utils.parametrizations.weight_norm.", FutureWarning, stacklevel=3)
        if isinstance(_attribute_hooks(module).get(name), WeightNorm):
            raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        weight = module._parameters.get(name)
        if weight is None:
            raise ValueError(f"weight_norm: {type(module).__name__} has no parameter named '{name}'")
        fn = WeightNorm(name, dim)
        delattr(module, name)
        module.register_parameter(name + "_g", Parameter(jax.lax.stop_gradient(_norm_except_dim(weight, fn.dim))))
        module.register_parameter(name + "_v", Parameter(weight))
        _add_attribute_hook(module, fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = jax.lax.stop_gradient(self.compute_weight(module))
        _remove_attribute_hook(module, self)
        delattr(module, self.name + "_g")
        delattr(module, self.name + "_v")
        module.register_parameter(self.name, Parameter(weight))


def weight_norm(module: T_module, name: str = "weight", dim: int | None = 0) -> T_module:
    """Reparametrize ``module.<name>`` as ``<name>_g * <name>_v / ||<name>_v||`` (norm over every dim but ``dim``;
    ``None``: over the whole tensor), with two new parameters ``<name>_g`` and ``<name>_v``."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: T_module, name: str = "weight") -> T_module:
    """Undo :func:`weight_norm`: ``<name>`` is a plain parameter again, holding the current normalized weight."""
    hook = _attribute_hooks(module).get(name)
    if not isinstance(hook, WeightNorm):
        raise ValueError(f"weight_norm of '{name}' not found in {module}")
    hook.remove(module)
    return module
