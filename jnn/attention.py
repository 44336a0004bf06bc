"""``torch.nn.attention``'s kernel selection: :class:`SDPBackend` and :func:`sdpa_kernel`.

torch runs ``scaled_dot_product_attention`` with one of several kernels (math, flash, memory-efficient, cuDNN) and
``sdpa_kernel`` limits its choice. :func:`jnn.functional.scaled_dot_product_attention` is one JAX function that XLA
compiles for the device: there is nothing to choose, and its values are those of torch's math kernel (the others
agree with it up to rounding). :func:`sdpa_kernel` checks its arguments as torch does and changes nothing, so code
written for torch (x-transformers' flash-attention path) runs as it is.

>>> import jax.numpy as jnp
>>> import jnn.functional as F
>>> from jnn.attention import SDPBackend, sdpa_kernel
>>> q = jnp.ones((1, 2, 4, 8))
>>> with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):
...     F.scaled_dot_product_attention(q, q, q, is_causal=True).shape
(1, 2, 4, 8)
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator

__all__ = ["SDPBackend", "sdpa_kernel"]


class SDPBackend(enum.IntEnum):
    """torch's scaled-dot-product-attention kernels, with torch's values.

    >>> SDPBackend.FLASH_ATTENTION, int(SDPBackend.MATH)
    (<SDPBackend.FLASH_ATTENTION: 1>, 0)
    """

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


@contextlib.contextmanager
def sdpa_kernel(backends: list[SDPBackend] | SDPBackend, set_priority: bool = False) -> Iterator[dict]:
    """torch's ``sdpa_kernel``: a context in which ``scaled_dot_product_attention`` may use only ``backends``
    (in that order of priority with ``set_priority``). XLA compiles jnn's one attention function whatever the
    selection, so inside the block everything runs as outside it; ``backends`` is checked as torch checks it.

    >>> with sdpa_kernel(SDPBackend.MATH) as state:
    ...     state
    {}
    >>> with sdpa_kernel("math"):
    ...     pass
    Traceback (most recent call last):
    ...
    TypeError: sdpa_kernel: backends must be an SDPBackend or a list of SDPBackend, got str
    """
    if not isinstance(backends, (list, SDPBackend)) or (
            isinstance(backends, list) and not all(isinstance(b, SDPBackend) for b in backends)):
        got = type(backends).__name__ if not isinstance(backends, list) else \
            "a list holding " + ", ".join(sorted({type(b).__name__ for b in backends if not isinstance(b, SDPBackend)}))
        raise TypeError(f"sdpa_kernel: backends must be an SDPBackend or a list of SDPBackend, got {got}")
    yield {}
