"""The legacy spectral norm hook (``torch.nn.utils.spectral_norm``): ``weight_orig``, ``weight_u``, ``weight_v``.

PyTorch recommends :func:`jnn.utils.parametrizations.spectral_norm` instead; this one is kept for checkpoints and
code that use the legacy names. In training mode each forward first runs ``n_power_iterations`` rounds of power
iteration and stores the new ``weight_u``/``weight_v`` buffers (on the module when eager, in the returned buffers of
a ``jnn.split`` apply, in the returned module under ``jax.jit``). ``module.weight`` is computed on access from
``weight_orig`` and the current vectors, so before the first forward it is already normalized (PyTorch holds the
raw weight there until then).

>>> import jax.numpy as jnp, jnn as nn
>>> m = nn.utils.spectral_norm(nn.Linear(20, 40))
>>> list(m.state_dict())
['bias', 'weight_orig', 'weight_u', 'weight_v']
>>> m.weight_u.shape
(40,)
"""

from __future__ import annotations

from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from jnn.modules.module import Module, Parameter
from jnn.utils.parametrizations import _as_matrix, _default_spectral_dim, _power_iteration, _random_unit
from jnn.utils.parametrize import _add_attribute_hook, _attribute_hooks, _remove_attribute_hook

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm"]

T_module = TypeVar("T_module", bound=Module)


class SpectralNorm:
    """The forward pre-hook of :func:`spectral_norm`: power iteration in training mode, then
    ``<name> = <name>_orig / sigma`` on access."""

    _version: int = 1

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name = name
        self.dim = dim
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    @property
    def _jnn_attribute(self) -> str:
        return self.name

    def reshape_weight_to_matrix(self, weight: jax.Array) -> jax.Array:
        return _as_matrix(weight, self.dim)

    def compute_weight(self, module: Module, do_power_iteration: bool = False) -> jax.Array:
        """``<name>_orig / sigma``; ``do_power_iteration`` first updates the ``<name>_u``/``<name>_v`` buffers."""
        if do_power_iteration:
            self(module, ())
        weight = getattr(module, self.name + "_orig")
        u = jax.lax.stop_gradient(getattr(module, self.name + "_u"))
        v = jax.lax.stop_gradient(getattr(module, self.name + "_v"))
        sigma = jnp.dot(u, self.reshape_weight_to_matrix(weight) @ v)
        return weight / sigma

    def _jnn_compute(self, module: Module) -> jax.Array:
        return self.compute_weight(module)

    def __call__(self, module: Module, inputs: Any) -> None:
        if not module.training:
            return
        weight_mat = self.reshape_weight_to_matrix(getattr(module, self.name + "_orig"))
        u, v = _power_iteration(weight_mat, getattr(module, self.name + "_u"), getattr(module, self.name + "_v"),
                                self.n_power_iterations, self.eps, v_first=True)
        setattr(module, self.name + "_u", u)
        setattr(module, self.name + "_v", v)

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int, eps: float) -> SpectralNorm:
        if isinstance(_attribute_hooks(module).get(name), SpectralNorm):
            raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters.get(name)
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        h, w = fn.reshape_weight_to_matrix(weight).shape
        u = _random_unit(h, weight.dtype, eps, "spectral_norm")
        v = _random_unit(w, weight.dtype, eps, "spectral_norm")
        requires_grad = name not in module._frozen_parameters
        delattr(module, name)
        module.register_parameter(name + "_orig", Parameter(weight, requires_grad=requires_grad))
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        _add_attribute_hook(module, fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = jax.lax.stop_gradient(self.compute_weight(module))
        _remove_attribute_hook(module, self)
        for suffix in ("_u", "_v", "_orig"):
            delattr(module, self.name + suffix)
        module.register_parameter(self.name, Parameter(weight))


def spectral_norm(module: T_module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> T_module:
    """Divide ``module.<name>`` by its spectral norm, estimated by power iteration with the buffers ``<name>_u`` and
    ``<name>_v`` (initial vectors from jnn's random stream). ``dim`` defaults to 1 for ConvTranspose, else 0."""
    SpectralNorm.apply(module, name, n_power_iterations, _default_spectral_dim(module, dim), eps)
    return module


def remove_spectral_norm(module: T_module, name: str = "weight") -> T_module:
    """Undo :func:`spectral_norm`: ``<name>`` is a plain parameter again (the current normalized weight)."""
    hook = _attribute_hooks(module).get(name)
    if not isinstance(hook, SpectralNorm):
        raise ValueError(f"spectral_norm of '{name}' not found in {module}")
    hook.remove(module)
    return module
