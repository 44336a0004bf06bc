"""Utilities mirroring ``torch.utils``: :mod:`jnn.utils.checkpoint` (gradient checkpointing)."""

from jnn.utils import checkpoint as checkpoint  # noqa: F401  (the submodule, as in torch.utils.checkpoint)

__all__ = ["checkpoint"]
