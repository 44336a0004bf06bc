"""Channel shuffle layer."""

from __future__ import annotations

import jax

from jnn import functional as F
from jnn.modules.module import Module

__all__ = ["ChannelShuffle"]


class ChannelShuffle(Module):
    """Split the channels (dim 1) of ``(N, C, *)`` input into ``groups`` and interleave them.

    Args:
        groups: number of groups the channels are split into; the channels of the groups interleave.

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.ChannelShuffle(2)(jnp.arange(4.0).reshape(1, 4, 1, 1)).ravel().tolist()
    [0.0, 2.0, 1.0, 3.0]
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: jax.Array) -> jax.Array:
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
