"""``jnn.utils`` is both ``torch.nn.utils`` and the ``torch.utils.checkpoint`` mirror.

- ``torch.nn.utils`` (what ``nn.utils`` means after ``import jnn as nn``): :mod:`~jnn.utils.parametrize`,
  :mod:`~jnn.utils.parametrizations`, :func:`weight_norm` / :func:`spectral_norm` (legacy hooks),
  :mod:`~jnn.utils.prune`, :mod:`~jnn.utils.fusion`, :func:`skip_init`, :mod:`~jnn.utils.stateless`,
  :mod:`~jnn.utils.rnn` (packed sequences), :mod:`~jnn.utils.clip_grad`, :mod:`~jnn.utils.convert_parameters`.
- ``torch.utils.checkpoint``: :mod:`jnn.utils.checkpoint` (gradient checkpointing over ``jax.checkpoint``). PyTorch
  keeps it outside ``torch.nn.utils``; jnn has no separate ``torch.utils``, so it lives here under the same name, and
  ``jnn.checkpoint`` is the same function.
"""

from jnn.utils import checkpoint as checkpoint  # noqa: F401  (the submodule, as in torch.utils.checkpoint)
from jnn.utils import (  # noqa: F401  (the submodules, as in torch.nn.utils)
    clip_grad,
    convert_parameters,
    fusion,
    parametrizations,
    parametrize,
    prune,
    rnn,
    stateless,
)
from jnn.utils.clip_grad import *  # noqa: F403
from jnn.utils.convert_parameters import *  # noqa: F403
from jnn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights
from jnn.utils.init import skip_init
from jnn.utils.spectral_norm import remove_spectral_norm, spectral_norm
from jnn.utils.weight_norm import remove_weight_norm, weight_norm

__all__ = ["checkpoint",
           "parametrize", "parametrizations", "prune", "fusion", "stateless", "skip_init",
           "weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm",
           "fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights",
           "clip_grad", "convert_parameters", "rnn", *clip_grad.__all__, *convert_parameters.__all__]
