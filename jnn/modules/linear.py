"""Linear layers: Identity, Linear, Bilinear and LazyLinear."""

from __future__ import annotations

from typing import Any

import jax

from jnn import functional as F
from jnn import random
from jnn.modules._utils import fan_in_bound, redraw_uniform, uniform
from jnn.modules.lazy import LazyModuleMixin
from jnn.modules.module import Module, Parameter
from jnn.parameter import UninitializedParameter

__all__ = ["Identity", "Linear", "Bilinear", "LazyLinear"]


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

    Args:
        in_features: size of each input sample (the last dimension).
        out_features: size of each output sample.
        bias: learn an additive bias.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

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


class Bilinear(Module):
    """``y = x1^T A x2 + b`` with weight ``(out_features, in1_features, in2_features)``; torch's init
    U(-1/sqrt(in1_features), 1/sqrt(in1_features)) for weight and bias.

    Args:
        in1_features: size of the first input's last dimension.
        in2_features: size of the second input's last dimension.
        out_features: size of each output sample.
        bias: learn an additive bias.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> m = nn.Bilinear(2, 3, 4)
    >>> m
    Bilinear(in1_features=2, in2_features=3, out_features=4, bias=True)
    >>> m(jnp.ones((5, 2)), jnp.ones((5, 3))).shape
    (5, 4)
    """

    def __init__(
        self, in1_features: int, in2_features: int, out_features: int, bias: bool = True, device: Any = None,
        dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        bound = fan_in_bound(in1_features)
        with random.fork(key):
            self.weight = Parameter(uniform((out_features, in1_features, in2_features), bound, dtype, device,
                                            "Bilinear"))
            if bias:
                self.bias = Parameter(uniform((out_features,), bound, dtype, device, "Bilinear"))
            else:
                self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Re-draw weight and bias from the default init (jnn's random stream), keeping dtype and device."""
        bound = fan_in_bound(self.in1_features)
        self.weight = redraw_uniform(self.weight, bound, "Bilinear")
        if self.bias is not None:
            self.bias = redraw_uniform(self.bias, bound, "Bilinear")

    def forward(self, input1: jax.Array, input2: jax.Array) -> jax.Array:
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class LazyLinear(LazyModuleMixin, Linear):
    """A :class:`Linear` whose ``in_features`` is inferred from the first input; it then becomes a ``Linear``.

    The first call must be eager (not under ``jit``/``grad``/``vmap`` or a ``jnn.split`` apply): parameters cannot
    be created inside a transformation, so that raises an error. Until then ``weight`` and ``bias`` are ``None``
    and absent from ``state_dict`` (torch lists them as uninitialized parameters). ``load_state_dict`` of a
    Linear's state dict sizes it too (see :mod:`jnn.modules.lazy`).

    Args:
        out_features: size of each output sample; ``in_features`` is taken from the first input.
        bias: learn an additive bias.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> m = nn.LazyLinear(4)
    >>> m
    LazyLinear(in_features=0, out_features=4, bias=True)
    >>> m(jnp.ones((2, 3))).shape
    (2, 4)
    >>> m
    Linear(in_features=3, out_features=4, bias=True)
    """

    cls_to_become = Linear
    _lazy_size_name = "in_features"
    _lazy_first_call = "the first call infers in_features and creates the parameters"

    def __init__(self, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None, *,
                 key: jax.Array | None = None) -> None:
        Module.__init__(self)
        self.in_features = 0
        self.out_features = out_features
        self._lazy_config = (bias, device, dtype, key)
        self._lazy_register({"weight": UninitializedParameter(device=device, dtype=dtype),
                             **({"bias": UninitializedParameter(device=device, dtype=dtype)} if bias else {})})
        if not bias:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Nothing to re-draw before the parameters exist."""
        if not self.has_uninitialized_params():
            Linear.reset_parameters(self)

    def _lazy_size_from_input(self, input: Any) -> int:
        x = jax.numpy.asarray(input)
        if x.ndim == 0:
            raise ValueError("LazyLinear: expected an input of shape (*, in_features), got a scalar")
        return x.shape[-1]

    def _lazy_size_from_state(self, shapes: dict[str, tuple[int, ...]]) -> int | None:
        weight = shapes.get("weight")
        return weight[1] if weight is not None and len(weight) == 2 else None

    def _lazy_materialize(self, in_features: int) -> None:
        bias, device, dtype, key = self._lazy_config
        bound = fan_in_bound(in_features)
        with random.fork(key):
            weight = uniform((self.out_features, in_features), bound, dtype, device, "LazyLinear")
            b = uniform((self.out_features,), bound, dtype, device, "LazyLinear") if bias else None
        del self._lazy_config
        self.in_features = in_features
        self._parameters["weight"] = weight
        self._parameters["bias"] = b

    def forward(self, input: jax.Array) -> jax.Array:
        self.initialize_parameters(input)
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        bias = self._lazy_config[0] if "_lazy_config" in self.__dict__ else self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={bias}"
