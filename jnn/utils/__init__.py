"""Utilities mirroring ``torch.utils``: :mod:`jnn.utils.checkpoint` (gradient checkpointing)."""

from jnn.utils import checkpoint as checkpoint  # noqa: F401  (the submodule, as in torch.utils.checkpoint)
from jnn.utils import clip_grad, convert_parameters, rnn  # noqa: F401  (torch.nn.utils.clip_grad, ...)
from jnn.utils.clip_grad import *  # noqa: F403
from jnn.utils.convert_parameters import *  # noqa: F403

__all__ = ["checkpoint"]
__all__ += ["clip_grad", "convert_parameters", "rnn", *clip_grad.__all__, *convert_parameters.__all__]
