"""Functional layer of jnn: ``torch.nn.functional`` on top of ``jax.nn`` / ``jax.lax`` / ``jax.numpy``.

Every function has PyTorch's name, argument names, argument order, defaults and semantics, so
``import jnn.functional as F`` replaces ``import torch.nn.functional as F``. Inputs may be JAX or NumPy
arrays; outputs are JAX arrays. The functions live in one private file per family (``_activation``,
``_conv``, ``_loss``, ...), like ``torch.nn.modules``; use them from here. Where JAX forces a difference it
is small and documented:

- No in-place ops: ``inplace=True`` (``relu``, ``dropout``) is accepted and returns a new array, so use the
  result (``x = F.relu(x, inplace=True)``), as ``nn.ReLU(inplace=True)`` does.
- ``batch_norm`` cannot update the running statistics it is given; :func:`batch_norm_with_stats` returns them.
- ``dropout`` draws its key from :mod:`jnn.random` (or takes ``key=``); under ``jax.jit`` without a key or a
  ``jnn.random.fork`` context, or under ``jax.vmap`` without a per-example key, it raises
  :class:`jnn.random.MissingKeyError`.
- Integer outputs (``max_pool2d`` indices) are int32 unless ``jax_enable_x64`` is on; integer class targets
  may be int32 or int64 (or uint8, as in torch).
- Out-of-range class targets and ``embedding`` indices raise ``IndexError`` eagerly like torch; under ``jit`` the
  values cannot be inspected, so those losses come out NaN and ``embedding`` clamps the index. Wrap the step in
  :func:`jnn.checked` (``jnn.checked(jax.jit(step))``) to turn them into errors under ``jit`` too.
- NaN and infinities propagate as in torch (a test compares every function). One backend difference: a NaN/inf in
  a convolution's weight poisons the outputs it touches, and whether the border outputs that only meet zero
  padding (or a transposed convolution's inserted zeros) turn NaN too differs between torch's oneDNN and XLA.
  Likewise ``grouped_mm`` of a 2-D input and 3-D weights (``jax.lax.ragged_dot``): XLA:CPU computes it as a masked
  dense product, so a NaN/inf in one group's weight also turns the other groups' rows NaN (torch: its rows only).
  torch's vectorised ``gelu`` gives NaN for +inf; jnn gives inf, as torch's scalar path does.
- ``cross_entropy`` raises for ``label_smoothing < 0`` (torch silently ignores it for class-index targets).
- Max-type pools (``max_pool1d/2d/3d``, adaptive, fractional): where a window holds a NaN, values and indices
  match torch, but the gradient may go to the window's largest number rather than to the NaN.
- Errors raised by torch's C++ checks as ``RuntimeError`` are ``ValueError`` here (``TypeError``,
  ``IndexError`` and ``NotImplementedError`` where torch uses those), each naming the function.
"""

from jnn.functional import (  # noqa: E402, I001
    _activation,
    _attention,
    _conv,
    _distance,
    _dropout,
    _linear,
    _loss,
    _normalization,
    _padding,
    _pooling,
    _sparse,
    _vision,
)
from jnn.functional._activation import *  # noqa: F403
from jnn.functional._attention import *  # noqa: F403
# private in torch too, but model code calls them (torchaudio's WavLM attention)
from jnn.functional._attention import _canonical_mask, _none_or_dtype  # noqa: F401
from jnn.functional._conv import *  # noqa: F403
from jnn.functional._distance import *  # noqa: F403
from jnn.functional._dropout import *  # noqa: F403
from jnn.functional._linear import *  # noqa: F403
from jnn.functional._loss import *  # noqa: F403
from jnn.functional._normalization import *  # noqa: F403
from jnn.functional._padding import *  # noqa: F403
from jnn.functional._pooling import *  # noqa: F403
from jnn.functional._sparse import *  # noqa: F403
from jnn.functional._vision import *  # noqa: F403

_FAMILIES = (
    _activation, _attention, _conv, _distance, _dropout, _linear, _loss, _normalization, _padding, _pooling,
    _sparse, _vision,
)
__all__ = [name for family in _FAMILIES for name in family.__all__]
