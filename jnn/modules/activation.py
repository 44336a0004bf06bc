"""Activation layers: thin classes over jnn.functional."""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jnn import functional as F
from jnn.modules._utils import factory_dtype, full, refill
from jnn.modules.module import Module, Parameter

__all__ = [
    "ReLU", "Sigmoid", "Tanh", "Softmax", "Threshold", "RReLU", "Hardtanh", "ReLU6", "Hardsigmoid", "SiLU", "Mish",
    "Hardswish", "ELU", "CELU", "SELU", "GLU", "GELU", "Hardshrink", "LeakyReLU", "LogSigmoid", "Softplus",
    "Softshrink", "PReLU", "Softsign", "Tanhshrink", "Softmin", "Softmax2d", "LogSoftmax",
]


class ReLU(Module):
    """``max(x, 0)`` elementwise. ``inplace`` is accepted for compatibility (JAX arrays are immutable).

    Args:
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ReLU()(jnp.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` elementwise."""

    def forward(self, input: jax.Array) -> jax.Array:
        return F.sigmoid(input)


class Tanh(Module):
    """``tanh(x)`` elementwise."""

    def forward(self, input: jax.Array) -> jax.Array:
        return F.tanh(input)


class Softmax(Module):
    """Softmax along ``dim``.

    Args:
        dim: the dimension the softmax is computed over (negative counts from the end). ``None`` picks PyTorch's legacy
            choice (0 for 0-, 1- and 3-d input, else 1).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Softmax(dim=-1)(jnp.zeros(4)).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _inplace(inplace: bool, first: bool = False) -> str:
    return ("" if first else ", ") + "inplace=True" if inplace else ""


class Threshold(Module):
    """``x`` where ``x > threshold``, else ``value``.

    Args:
        threshold: values at or below it are replaced.
        value: the replacement.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Threshold(0.1, 20.0)(jnp.array([0.0, 1.0])).tolist()
    [20.0, 1.0]
    """

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.threshold(input, self.threshold, self.value)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}{_inplace(self.inplace)}"


class RReLU(Module):
    """Randomized leaky ReLU: negative inputs scaled by a slope drawn from U(lower, upper) per element in
    training mode, by ``(lower + upper) / 2`` in eval mode.

    Slopes come from jnn's stream (``jnn.manual_seed``) in eager code, and from the key given to
    ``apply(..., key=key)`` or ``with jnn.random.fork(key):`` under a transformation.

    Args:
        lower: lower bound of the random negative slope drawn in training mode.
        upper: upper bound of that slope; eval mode uses ``(lower + upper) / 2``.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.RReLU(0.1, 0.3)
    RReLU(lower=0.1, upper=0.3)
    >>> nn.RReLU(0.25, 0.75).eval()(jnp.array([-1.0, 1.0])).tolist()
    [-0.5, 1.0]
    """

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False) -> None:
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.rrelu(input, self.lower, self.upper, self.training)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}{_inplace(self.inplace)}"


class Hardtanh(Module):
    """``x`` clipped to ``[min_val, max_val]``. ``min_value``/``max_value`` are torch's deprecated spellings.

    Args:
        min_val: lower clipping value.
        max_val: upper clipping value.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.
        min_value: deprecated alias of ``min_val``.
        max_value: deprecated alias of ``max_val``.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Hardtanh(-2, 2)(jnp.array([-3.0, 1.0, 3.0])).tolist()
    [-2.0, 1.0, 2.0]
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None) -> None:
        super().__init__()
        if min_value is not None:
            warnings.warn("keyword argument `min_value` is deprecated and renamed to `min_val`", FutureWarning,
                          stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to `max_val`", FutureWarning,
                          stacklevel=2)
            max_val = max_value
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace
        if self.max_val <= self.min_val:
            raise AssertionError(f"max_val ({self.max_val}) must be greater than min_val ({self.min_val})")

    def forward(self, input: jax.Array) -> jax.Array:
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace(self.inplace)}"


class ReLU6(Hardtanh):
    """``min(max(0, x), 6)``; a :class:`Hardtanh` with bounds 0 and 6, as in torch.

    Args:
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ReLU6()(jnp.array([-1.0, 7.0])).tolist()
    [0.0, 6.0]
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return _inplace(self.inplace, first=True)


class _InplaceOnly(Module):
    """An elementwise activation whose only argument is torch's ``inplace`` (accepted; arrays are immutable)."""

    _fn: Any = None
    _show_inplace = True

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return type(self)._fn(input)

    def extra_repr(self) -> str:
        return _inplace(self.inplace, first=True) if self._show_inplace else ""


class Hardsigmoid(_InplaceOnly):
    """``0`` for ``x <= -3``, ``1`` for ``x >= 3``, else ``x / 6 + 1 / 2``.

    Args:
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Hardsigmoid()(jnp.array([-4.0, 0.0, 4.0])).tolist()
    [0.0, 0.5, 1.0]
    """

    _fn = staticmethod(F.hardsigmoid)
    _show_inplace = False


class Hardswish(_InplaceOnly):
    """``x * hardsigmoid(x)``.

    Args:
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Hardswish()(jnp.array([-4.0, 4.0])).tolist()
    [-0.0, 4.0]
    """

    _fn = staticmethod(F.hardswish)
    _show_inplace = False


class SiLU(_InplaceOnly):
    """``x * sigmoid(x)``.

    Args:
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.SiLU()(jnp.array([0.0])).tolist()
    [0.0]
    """

    _fn = staticmethod(F.silu)


class Mish(_InplaceOnly):
    """``x * tanh(softplus(x))``.

    Args:
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Mish()(jnp.array([0.0])).tolist()
    [0.0]
    """

    _fn = staticmethod(F.mish)


class SELU(_InplaceOnly):
    """``scale * elu(x, alpha)`` with the self-normalising constants.

    Args:
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.SELU()(jnp.array([0.0])).tolist()
    [0.0]
    """

    _fn = staticmethod(F.selu)


class _AlphaActivation(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace(self.inplace)}"


class ELU(_AlphaActivation):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``.

    Args:
        alpha: the scale of the negative part, ``alpha * (exp(x) - 1)``.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ELU(alpha=0.5)
    ELU(alpha=0.5)
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.elu(input, self.alpha)


class CELU(_AlphaActivation):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.

    Args:
        alpha: the ``alpha`` of ``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.CELU(alpha=2.0)
    CELU(alpha=2.0)
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.celu(input, self.alpha)


class GLU(Module):
    """Gated linear unit along ``dim``: ``a * sigmoid(b)`` for the two halves ``a, b`` of the input.

    Args:
        dim: the dimension split in two halves (its size must be even).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.GLU()(jnp.ones((4, 2))).shape
    (4, 1)
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GELU(Module):
    """``x * Phi(x)``; ``approximate='tanh'`` uses the tanh approximation.

    Args:
        approximate: ``'none'`` for the exact erf form, ``'tanh'`` for the tanh approximation.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.GELU(approximate="tanh")
    GELU(approximate='tanh')
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: jax.Array) -> jax.Array:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class _LambdActivation(Module):
    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Hardshrink(_LambdActivation):
    """``0`` for ``-lambd <= x <= lambd``, else ``x``.

    Args:
        lambd: values with ``|x| <= lambd`` become 0.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Hardshrink()(jnp.array([0.25, 1.0])).tolist()
    [0.0, 1.0]
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.hardshrink(input, self.lambd)


class Softshrink(_LambdActivation):
    """``x - lambd`` for ``x > lambd``, ``x + lambd`` for ``x < -lambd``, else ``0``.

    Args:
        lambd: values with ``|x| <= lambd`` become 0, the others move ``lambd`` towards 0.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Softshrink()(jnp.array([0.25, 1.0])).tolist()
    [0.0, 0.5]
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.softshrink(input, self.lambd)


class LeakyReLU(Module):
    """``x`` for ``x > 0``, else ``negative_slope * x``.

    Args:
        negative_slope: the slope for negative inputs.
        inplace: accepted for PyTorch compatibility; JAX arrays are immutable, so the result is always a new array.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.LeakyReLU(0.5)(jnp.array([-2.0, 2.0])).tolist()
    [-1.0, 2.0]
    """

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace(self.inplace)}"


class LogSigmoid(Module):
    """``log(sigmoid(x))``, computed stably.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.LogSigmoid()(jnp.array([100.0])).tolist()
    [-0.0]
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.logsigmoid(input)


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``.

    Args:
        beta: the ``beta`` of ``log(1 + exp(beta * x)) / beta``.
        threshold: above ``beta * x > threshold`` the layer is linear (for numerical stability).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Softplus(beta=2.0)
    Softplus(beta=2.0, threshold=20.0)
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: jax.Array) -> jax.Array:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(Module):
    """``x`` for ``x > 0``, else ``weight * x``: a learnable slope per channel (dim 1) or one shared slope.

    ``weight`` has shape ``(num_parameters,)`` and starts at ``init``.

    Args:
        num_parameters: number of learnable slopes: 1, or the number of channels (dimension 1 of the input).
        init: the initial slope.
        device: where the weight is placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the weight's floating dtype (default float32).

    >>> import jax.numpy as jnp, jnn as nn
    >>> m = nn.PReLU(3)
    >>> m, m.weight.tolist()
    (PReLU(num_parameters=3), [0.25, 0.25, 0.25])
    >>> m(jnp.full((2, 3, 4), -1.0)).shape
    (2, 3, 4)
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(full((num_parameters,), init, factory_dtype(dtype, "PReLU"), device))

    def reset_parameters(self) -> None:
        """Set every slope back to ``init``, keeping dtype and device."""
        self.weight = refill(self.weight, self.init)

    def forward(self, input: jax.Array) -> jax.Array:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softsign(Module):
    """``x / (1 + |x|)``.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Softsign()(jnp.array([1.0])).tolist()
    [0.5]
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.softsign(input)


class Tanhshrink(Module):
    """``x - tanh(x)``.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Tanhshrink()(jnp.array([0.0])).tolist()
    [0.0]
    """

    def forward(self, input: jax.Array) -> jax.Array:
        return F.tanhshrink(input)


class Softmin(Module):
    """Softmin (softmax of the negated input) along ``dim``.

    Args:
        dim: the dimension the softmin is computed over (negative counts from the end). ``None`` picks PyTorch's legacy
            choice.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Softmin(dim=1)(jnp.zeros((1, 2))).tolist()
    [[0.5, 0.5]]
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return F.softmin(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(Module):
    """Softmax over the channels (dim -3) of a ``(N, C, H, W)`` or ``(C, H, W)`` input.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.Softmax2d()(jnp.zeros((2, 4, 3, 3)))[0, :, 0, 0].tolist()
    [0.25, 0.25, 0.25, 0.25]
    """

    def forward(self, input: jax.Array) -> jax.Array:
        ndim = jnp.ndim(input)
        if ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {ndim}D instead")
        return F.softmax(input, -3, _stacklevel=5)


class LogSoftmax(Module):
    """Log of the softmax along ``dim``, computed stably.

    Args:
        dim: the dimension the log-softmax is computed over (negative counts from the end). ``None`` picks PyTorch's
            legacy choice.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.LogSoftmax(dim=1)
    LogSoftmax(dim=1)
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return F.log_softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
