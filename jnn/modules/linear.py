"""Linear layers: Identity and Linear."""

from __future__ import annotations

from typing import Any

import jax

from jnn import functional as F
from jnn import random
from jnn.modules._utils import fan_in_bound, redraw_uniform, uniform
from jnn.modules.module import Module, Parameter

__all__ = ["Identity", "Linear"]


class Identity(Module):
    """Returns its input unchanged; accepts and ignores any constructor arguments.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Identity(54, unused="x")(jnp.ones(2)).tolist()
    [1.0, 1.0]
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: jax.Array) -> jax.Array:
        return input


class Linear(Module):
    """``y = x @ weight.T + bias`` with weight ``(out_features, in_features)``; PyTorch's init.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Linear(2, 4)
    Linear(in_features=2, out_features=4, bias=True)
    >>> nn.Linear(2, 4)(jnp.ones((3, 2))).shape
    (3, 4)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None,
        *, key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        bound = fan_in_bound(in_features)
        with random.fork(key):
            self.weight = Parameter(uniform((out_features, in_features), bound, dtype, device, "Linear"))
            if bias:
                self.bias = Parameter(uniform((out_features,), bound, dtype, device, "Linear"))
            else:
                self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Re-draw weight and bias from the default init (jnn's random stream), keeping dtype and device."""
        bound = fan_in_bound(self.in_features)
        self.weight = redraw_uniform(self.weight, bound, "Linear")
        if self.bias is not None:
            self.bias = redraw_uniform(self.bias, bound, "Linear")

    def forward(self, input: jax.Array) -> jax.Array:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
