"""``torch.utils`` names that model code uses: :mod:`jnn.ops.utils._pytree` (``torch.utils._pytree``, over
``jax.tree_util``). ``torch.utils.checkpoint`` is :mod:`jnn.utils.checkpoint`."""

from jnn.ops.utils import _pytree as _pytree
