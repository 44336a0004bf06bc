"""einops' layers as jnn modules: what ``einops.layers.torch`` is for torch (``python -m jnn.port`` maps it here).

``Rearrange``, ``Reduce`` and ``EinMix`` are built, as einops builds its torch and flax layers, from einops' own
public mixins (``einops.layers.RearrangeMixin``, ``ReduceMixin``, ``_EinmixMixin``) on :class:`jnn.Module`: the
patterns are parsed and checked by einops, and the layers print, save (EinMix's ``weight`` and ``bias`` are
parameters in ``state_dict``) and trace (``jax.jit``, ``jnn.split``) like any other jnn module. It needs einops
(``pip install einops``); jnn itself does not. einops' functions (``einops.rearrange``, ``reduce``, ``repeat``,
``pack``, ``einsum``, ...) take JAX arrays as they are, through einops' JAX backend.

>>> import jax.numpy as jnp
>>> import jnn
>>> from jnn.einops import EinMix, Rearrange, Reduce
>>> net = jnn.Sequential(Rearrange("b c (h p1) (w p2) -> b h w (p1 p2 c)", p1=2, p2=2),
...                      EinMix("b h w c -> b h w d", weight_shape="c d", bias_shape="d", c=12, d=5),
...                      Reduce("b h w d -> b d", "mean"))
>>> net
Sequential(
  (0): Rearrange('b c (h p1) (w p2) -> b h w (p1 p2 c)', p1=2, p2=2)
  (1): EinMix('b h w c -> b h w d', 'c d', 'd', c=12, d=5)
  (2): Reduce('b h w d -> b d', 'mean')
)
>>> net(jnp.ones((2, 3, 4, 6))).shape, list(net.state_dict())
((2, 5), ['1.weight', '1.bias'])
"""

from __future__ import annotations

from typing import Any

try:
    from einops.layers import RearrangeMixin, ReduceMixin
    from einops.layers._einmix import _EinmixMixin
except ImportError as error:  # pragma: no cover - the test extra installs einops
    raise ImportError("jnn.einops needs einops: pip install einops") from error

from jnn import ops
from jnn.modules.module import Module
from jnn.parameter import Parameter

__all__ = ["EinMix", "Rearrange", "Reduce"]


class Rearrange(RearrangeMixin, Module):
    """``einops.rearrange(x, pattern, **axes_lengths)`` as a layer (``einops.layers.torch.Rearrange``).

    >>> import jax.numpy as jnp
    >>> Rearrange("b (h d) -> b h d", h=2)(jnp.arange(8.0).reshape(2, 4)).shape
    (2, 2, 2)
    """

    def forward(self, input: Any) -> Any:
        return self._apply_recipe(input)


class Reduce(ReduceMixin, Module):
    """``einops.reduce(x, pattern, reduction, **axes_lengths)`` as a layer (``einops.layers.torch.Reduce``).

    >>> import jax.numpy as jnp
    >>> Reduce("b c (h 2) (w 2) -> b c h w", "max")(jnp.ones((1, 3, 4, 4))).shape
    (1, 3, 2, 2)
    """

    def forward(self, input: Any) -> Any:
        return self._apply_recipe(input)


class EinMix(_EinmixMixin, Module):
    """An einsum with a learned ``weight`` (and ``bias``), with rearranges around it (``einops.layers.torch.EinMix``):
    the parameters are drawn as torch's EinMix draws them, uniform in einops' bounds, from jnn's random stream.

    >>> import jax.numpy as jnp
    >>> mix = EinMix("t b (h c) -> t b (h d)", weight_shape="h c d", h=2, c=3, d=4)
    >>> mix(jnp.ones((5, 1, 6))).shape, mix.weight.shape, mix.bias
    ((5, 1, 8), (2, 3, 4), None)
    """

    def _create_parameters(self, weight_shape: list, weight_bound: float, bias_shape: list | None,
                           bias_bound: float) -> None:
        self.weight = Parameter(ops.uniform_(ops.zeros(weight_shape), -weight_bound, weight_bound))
        if bias_shape is not None:
            self.bias = Parameter(ops.uniform_(ops.zeros(bias_shape), -bias_bound, bias_bound))
        else:
            self.bias = None

    def _create_rearrange_layers(self, pre_reshape_pattern: str | None, pre_reshape_lengths: dict | None,
                                 post_reshape_pattern: str | None, post_reshape_lengths: dict | None) -> None:
        self.pre_rearrange = None
        if pre_reshape_pattern is not None:
            self.pre_rearrange = Rearrange(pre_reshape_pattern, **(pre_reshape_lengths or {}))
        self.post_rearrange = None
        if post_reshape_pattern is not None:
            self.post_rearrange = Rearrange(post_reshape_pattern, **(post_reshape_lengths or {}))

    def forward(self, input: Any) -> Any:
        if self.pre_rearrange is not None:
            input = self.pre_rearrange(input)
        result = ops.einsum(self.einsum_pattern, input, self.weight)
        if self.bias is not None:
            result = result + self.bias
        if self.post_rearrange is not None:
            result = self.post_rearrange(result)
        return result
