"""torch.autograd's ``Function``: a forward and its hand-written backward, as a ``jax.custom_vjp``.

Model code defines gradient tricks this way (fairseq/torchaudio's ``GradMultiply``, straight-through estimators,
memory-saving activations). ``Function.apply(*args)`` runs ``forward``; under ``jax.grad`` (and ``jax.jit``,
``jax.vmap``) the gradient is ``backward``'s. The arrays among ``apply``'s arguments are differentiable inputs;
other arguments are constants, whose gradient ``backward`` gives as ``None``. What ``forward`` stores on ``ctx``
(``ctx.save_for_backward(x)``, ``ctx.scale = 0.5``) is there in ``backward``.

>>> import jax, jax.numpy as jnp
>>> from jnn import ops
>>> class GradMultiply(ops.autograd.Function):
...     @staticmethod
...     def forward(ctx, x, scale):
...         ctx.scale = scale
...         return x * 1.0
...     @staticmethod
...     def backward(ctx, grad):
...         return grad * ctx.scale, None
>>> jax.grad(lambda x: GradMultiply.apply(x, 0.1).sum())(jnp.ones(2)).tolist()
[0.10000000149011612, 0.10000000149011612]
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from jnn.ops.autograd import function as function
from jnn.ops.autograd.function import Function, FunctionCtx, once_differentiable

__all__ = ["Function", "FunctionCtx", "once_differentiable", "function", "Variable"]


def Variable(data: Any, requires_grad: bool = False, volatile: bool = False) -> Any:  # noqa: N802 (torch's name)
    """torch's legacy ``Variable(tensor)``: the array itself (JAX arrays need no wrapper to be differentiated)."""
    return jnp.asarray(data) if isinstance(data, (list, tuple, np.ndarray)) else data

