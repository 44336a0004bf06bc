"""The one mechanism behind every Lazy layer (torch's ``LazyModuleMixin``): LazyLinear, LazyConv*, LazyConvTranspose*,
LazyBatchNorm* and LazyInstanceNorm*.

A lazy layer does not know one size (``in_features``, ``in_channels``, ``num_features``) until it sees an input
or a state dict. Until then its uninitialised slots are recorded in ``_lazy_slots`` (slot name ->
:class:`~jnn.parameter.UninitializedParameter` / :class:`~jnn.parameter.UninitializedBuffer`, part of the
module's static structure); the slots themselves hold ``None`` or, for layers whose ``state_dict`` lists them as
torch does (``_lazy_listed``), an empty array. Then:

- the first eager forward infers the size from the input, creates the arrays and turns the module into
  ``cls_to_become`` (Linear, Conv2d, BatchNorm1d...), as in torch; under a JAX transformation or a
  ``jnn.split`` apply it raises instead (the arrays would be traced, or drawn anew on every call);
- ``load_state_dict`` at any depth sizes the layer from the state dict's arrays (``_load_from_state_dict``), then
  loads them; a lazy layer given no entries reports them missing, as torch does.

A layer using the mixin defines ``_lazy_size_name``, ``_lazy_first_call`` (the start of the error message),
``_lazy_size_from_input(input)``, ``_lazy_size_from_state(shapes)`` and ``_lazy_materialize(size)``.

>>> import numpy as np, jnn as nn
>>> net = nn.Sequential(nn.LazyLinear(2), nn.LazyBatchNorm1d())
>>> _ = net.load_state_dict({"0.weight": np.ones((2, 3)), "0.bias": np.zeros(2), "1.weight": np.ones(2),
...     "1.bias": np.zeros(2), "1.running_mean": np.zeros(2), "1.running_var": np.ones(2),
...     "1.num_batches_tracked": np.zeros((), np.int32)})
>>> net
Sequential(
  (0): Linear(in_features=3, out_features=2, bias=True)
  (1): BatchNorm1d(2, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
)
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from jnn._arrays import is_tracer
from jnn.parameter import UninitializedBuffer, UninitializedParameter

__all__ = ["LazyModuleMixin"]


class LazyModuleMixin:
    """Mixin of the Lazy layers: uninitialised slots, sized by the first input or by a state dict."""

    cls_to_become: type | None = None
    # True: uninitialised slots hold empty arrays and are listed in state_dict (torch's LazyBatchNorm keys);
    # False: they hold None and are absent until the size is known.
    _lazy_listed: bool = False
    _lazy_size_name: str = "in_features"
    _lazy_first_call: str = "the first call infers the input size and creates the parameters"

    def _lazy_register(self, slots: dict[str, UninitializedParameter | UninitializedBuffer]) -> None:
        """Declare the uninitialised slots (parameters and buffers) of this layer."""
        for name, placeholder in slots.items():
            value = jnp.empty((0,), placeholder.dtype) if self._lazy_listed else None
            if isinstance(placeholder, UninitializedBuffer):
                self.register_buffer(name, value, placeholder.persistent)  # type: ignore[attr-defined]
            else:
                self.register_parameter(name, None)  # type: ignore[attr-defined]
                self._parameters[name] = value  # type: ignore[attr-defined]
        self.__dict__["_lazy_slots"] = dict(slots)
        self._changed()  # type: ignore[attr-defined]

    def has_uninitialized_params(self) -> bool:
        """True until the size is known (first forward or load_state_dict)."""
        return "_lazy_slots" in self.__dict__

    def initialize_parameters(self, *args: Any, **kwargs: Any) -> None:
        """Infer the size from the first input, create the arrays and become ``cls_to_become``.

        Args:
            *args: the forward's arguments (the first is the input).
            **kwargs: the forward's keyword arguments (unused).
        """
        if not self.has_uninitialized_params():
            return
        name = type(self).__name__
        if any(is_tracer(a) for a in args) or "_jnn_private" in self.__dict__:
            raise RuntimeError(
                f"{name}: {self._lazy_first_call}, which cannot happen inside a JAX transformation "
                "(jit/grad/vmap) or a jnn.split apply (the arrays would be traced, or drawn anew on every call). "
                f"Run one eager forward first, e.g. `net(example_input)`, then transform the initialised module "
                f"(or use the non-lazy class with {self._lazy_size_name} given)."
            )
        self._lazy_finish(self._lazy_size_from_input(args[0]))

    def _lazy_finish(self, size: int) -> None:
        self._lazy_materialize(size)
        del self.__dict__["_lazy_slots"]
        if self.cls_to_become is not None:
            self.__class__ = self.cls_to_become

    def _lazy_size_from_input(self, input: Any) -> int:
        raise NotImplementedError

    def _lazy_size_from_state(self, shapes: dict[str, tuple[int, ...]]) -> int | None:
        raise NotImplementedError

    def _lazy_materialize(self, size: int) -> None:
        raise NotImplementedError

    def _load_from_state_dict(
        self, state_dict: dict, prefix: str, local_metadata: dict, strict: bool, missing_keys: list[str],
        unexpected_keys: list[str], error_msgs: list[str],
    ) -> None:
        pending = self.__dict__.get("_lazy_slots")
        if pending:  # a layer with no arrays at all stays lazy until its first input, as in torch
            shapes = {name: tuple(np.shape(state_dict[prefix + name])) for name in pending
                      if prefix + name in state_dict}
            size = self._lazy_size_from_state(shapes) if shapes else None
            if size is not None:
                self._lazy_finish(size)
        args = (state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        if isinstance(self, LazyModuleMixin):
            super()._load_from_state_dict(*args)  # type: ignore[misc]
            if strict and not self._lazy_listed:  # torch reports uninitialised slots as missing
                missing_keys.extend(prefix + name for name, p in self.__dict__.get("_lazy_slots", {}).items()
                                    if getattr(p, "persistent", True))
        else:  # sized above: load as the class it became
            type(self)._load_from_state_dict(self, *args)
