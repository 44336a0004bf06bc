"""``skip_init`` (``torch.nn.utils.skip_init``): build a module without running its parameter initialization."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from jnn import random
from jnn.modules.module import Module

__all__ = ["skip_init"]

T = TypeVar("T", bound=Module)


def skip_init(module_cls: type[T], *args: Any, **kwargs: Any) -> T:
    """``module_cls(*args, **kwargs)`` with its parameters and buffers left uninitialized (zeros in jnn: JAX has no
    uninitialized memory), on ``device`` (default CPU). The constructor is only traced (``jax.eval_shape``), so no
    random numbers are drawn, jnn's random stream does not advance and large modules cost no initialization time.
    Like PyTorch, the class must accept a ``device`` argument.

    >>> import jnn as nn
    >>> m = nn.utils.skip_init(nn.Linear, 5, 1)
    >>> m.weight.shape, float(abs(m.weight).sum())
    ((1, 5), 0.0)
    """
    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    device = kwargs.pop("device", "cpu")

    def build() -> Module:
        with random.fork(jax.random.key(0)):  # the initializers' draws are traced away, never computed
            return module_cls(*args, **kwargs)

    shapes = jax.eval_shape(build)
    module = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    return module.to(device)
