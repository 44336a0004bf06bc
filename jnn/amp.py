"""Mixed precision: compute in bfloat16 (or float16) with float32 master weights and float32 outputs.

jnn's answer to ``torch.autocast(device_type, dtype=torch.bfloat16)``. Where torch's autocast is a context that
changes how each op runs, jnn wraps the function instead: ``jnn.amp.autocast(apply)`` (or
``policy.wrap(apply)``) is a pure function with the signature of ``apply`` that, inside the call, casts the
floating parameters and inputs to the compute dtype, keeps buffers (BatchNorm running statistics) in their own
dtype, casts floating outputs to float32 and returns the new buffers in their original dtypes. The cast is
differentiable, so ``jax.grad`` with respect to float32 master parameters returns float32 gradients.
Normalisation layers compute their statistics in float32 whatever the input dtype.

>>> import jax, jax.numpy as jnp, jnn as nn
>>> net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
>>> apply, params, buffers = nn.split(net)
>>> apply_bf16 = nn.amp.autocast(apply, dtype=jnp.bfloat16)
>>> out, new_buffers = jax.jit(apply_bf16)(params, buffers, jnp.ones((2, 3)))
>>> out.dtype, new_buffers["1.running_mean"].dtype
(dtype('float32'), dtype('float32'))
>>> grads = jax.grad(lambda p: apply_bf16(p, buffers, jnp.ones((2, 3)))[0].sum())(params)
>>> grads["0.weight"].dtype
dtype('float32')
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn.modules.module import Module, _as_dtype, _check_float_dtype, _is_array
from jnn.stateless import Apply, split

__all__ = ["Policy", "autocast", "MixedPrecisionApply", "cast_floating"]


def _floating_dtype(dtype: Any, who: str) -> np.dtype:
    resolved = None if dtype is None else _as_dtype(dtype)  # jnp.dtype(None) would be float64
    if resolved is None or not jnp.issubdtype(resolved, jnp.floating):
        raise TypeError(f"{who} must be a floating-point dtype (jnp.bfloat16, jnp.float16 or jnp.float32), "
                        f"got {dtype!r}")
    return _check_float_dtype(resolved, who)  # float64 needs x64


def _is_floating_array(x: Any) -> bool:
    return _is_array(x) and jnp.issubdtype(x.dtype, jnp.floating)


def cast_floating(tree: Any, dtype: Any) -> Any:
    """``tree`` with every floating-point array cast to ``dtype``; integer/bool arrays and Python scalars are
    left alone (as ``Module.half()`` leaves ``num_batches_tracked``).

    >>> import jax.numpy as jnp, jnn
    >>> out = jnn.amp.cast_floating({"w": jnp.ones(2), "step": jnp.array(3)}, jnp.bfloat16)
    >>> out["w"].dtype, out["step"].dtype
    (dtype(bfloat16), dtype('int32'))
    """
    dtype = _floating_dtype(dtype, "jnn.amp.cast_floating: dtype")
    return jax.tree_util.tree_map(lambda x: x.astype(dtype) if _is_floating_array(x) and x.dtype != dtype else x,
                                  tree)


@dataclasses.dataclass(frozen=True)
class Policy:
    """Which dtype each kind of array has: ``param_dtype`` for the stored (master) parameters that the
    optimiser updates, ``compute_dtype`` for parameters and inputs inside the forward, ``output_dtype`` for
    the forward's floating outputs (compute the loss on them). Buffers always keep their own dtype.

    Dtypes may be given as JAX/numpy dtypes, names (``"bfloat16"``) or torch dtypes.

    >>> import jax.numpy as jnp, jnn
    >>> policy = jnn.amp.Policy(compute_dtype=jnp.bfloat16)
    >>> policy
    Policy(compute_dtype=bfloat16, param_dtype=float32, output_dtype=float32)
    >>> policy.cast_to_compute(jnp.ones(2)).dtype
    dtype(bfloat16)
    """

    compute_dtype: Any = jnp.bfloat16
    param_dtype: Any = jnp.float32
    output_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        for field in ("compute_dtype", "param_dtype", "output_dtype"):
            object.__setattr__(self, field, _floating_dtype(getattr(self, field), f"jnn.amp.Policy: {field}"))

    def __repr__(self) -> str:
        return (f"Policy(compute_dtype={self.compute_dtype}, param_dtype={self.param_dtype}, "
                f"output_dtype={self.output_dtype})")

    def cast_to_compute(self, tree: Any) -> Any:
        """Floating arrays of ``tree`` in ``compute_dtype``."""
        return cast_floating(tree, self.compute_dtype)

    def cast_to_param(self, tree: Any) -> Any:
        """Floating arrays of ``tree`` in ``param_dtype``: ``params = policy.cast_to_param(params)`` makes master
        weights of a model built (or loaded) in low precision."""
        return cast_floating(tree, self.param_dtype)

    def cast_to_output(self, tree: Any) -> Any:
        """Floating arrays of ``tree`` in ``output_dtype``."""
        return cast_floating(tree, self.output_dtype)

    def wrap(self, fn: Apply | Module) -> MixedPrecisionApply | _AutocastModule:
        """Run ``fn`` under this policy.

        ``fn`` is the ``apply`` of ``jnn.split`` (returns a :class:`MixedPrecisionApply`, same signature), or a
        Module: ``policy.wrap(net)(x)`` runs ``net`` with its parameters cast for the call and writes updated
        buffers (in their own dtype) back to ``net``, as an eager call would (under ``jax.jit``, pass the
        module in and return it).
        """
        if isinstance(fn, Apply):
            return MixedPrecisionApply(fn, self)
        if isinstance(fn, Module):
            return _AutocastModule(fn, self)
        raise TypeError(f"jnn.amp: expected the apply function of jnn.split or a jnn.Module, got "
                        f"{type(fn).__name__}; for other functions cast the inputs yourself with "
                        "policy.cast_to_compute(...) and the outputs with policy.cast_to_output(...)")


class MixedPrecisionApply:
    """``apply`` of ``jnn.split`` run under a :class:`Policy`; call it exactly like ``apply``.

    ``(params, buffers, *args, train=None, key=None, **kwargs) -> (output, new_buffers)``: floating
    parameters, frozen parameters and floating inputs are cast to ``compute_dtype`` for the call; buffers are
    passed as they are (running statistics stay float32 and are updated in float32); floating outputs come
    back in ``output_dtype`` and every new buffer in the dtype it came in with. Floating trainable parameters
    must be in ``param_dtype`` (the master weights the optimiser updates); others raise a TypeError.
    ``jnn.merge(mixed.apply, params, buffers)`` rebuilds the module.

    >>> import jax.numpy as jnp, jnn as nn
    >>> apply, params, buffers = nn.split(nn.Linear(2, 2))
    >>> mixed = nn.amp.Policy(jnp.bfloat16, output_dtype=jnp.bfloat16).wrap(apply)
    >>> mixed(params, buffers, jnp.ones((1, 2)))[0].dtype
    dtype(bfloat16)
    """

    __slots__ = ("apply", "policy", "_frozen", "__weakref__")

    def __init__(self, apply: Apply, policy: Policy) -> None:
        if not isinstance(apply, Apply):
            raise TypeError(f"jnn.amp.MixedPrecisionApply expects the apply function of jnn.split, got "
                            f"{type(apply).__name__}")
        self.apply = apply
        self.policy = policy
        self._frozen = frozenset(name for name, _, slots, _ in apply._buffer_slots if slots == "_parameters")

    @property
    def param_names(self) -> list[str]:
        return self.apply.param_names

    @property
    def buffer_names(self) -> list[str]:
        return self.apply.buffer_names

    def __call__(
        self, params: dict, buffers: dict, *args: Any, train: bool | None = None, key: jax.Array | None = None,
        **kwargs: Any,
    ) -> tuple[Any, dict]:
        policy = self.policy
        if not hasattr(buffers, "items"):
            raise TypeError(f"jnn amp apply: buffers must be a dict keyed by state_dict names, got "
                            f"{type(buffers).__name__}")
        if hasattr(params, "items"):
            for name, value in params.items():
                if _is_floating_array(value) and value.dtype != policy.param_dtype:
                    raise TypeError(
                        f"jnn amp apply: parameter '{name}' is {value.dtype}, but the policy's param_dtype is "
                        f"{policy.param_dtype}. Keep master weights in {policy.param_dtype}: params = "
                        "policy.cast_to_param(params) (or net.float() before jnn.split), or choose "
                        "Policy(param_dtype=...)")
        compute_buffers = {k: policy.cast_to_compute(v) if k in self._frozen else v for k, v in buffers.items()}
        args, kwargs = policy.cast_to_compute((args, kwargs))
        output, new_buffers = self.apply(policy.cast_to_compute(params), compute_buffers, *args, train=train,
                                         key=key, **kwargs)
        restored = {}
        for name, value in new_buffers.items():
            old = buffers.get(name)
            if value is compute_buffers.get(name):
                value = old  # unchanged (a frozen parameter is handed back without a round trip through bf16)
            elif old is not None and _is_floating_array(value) and value.dtype != old.dtype:
                value = value.astype(old.dtype)
            restored[name] = value
        return policy.cast_to_output(output), restored

    def __hash__(self) -> int:
        return hash((self.apply, self.policy))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MixedPrecisionApply) and (self.apply, self.policy) == (other.apply, other.policy)

    def __repr__(self) -> str:
        return f"<{self.policy!r} over {self.apply!r}>"


class _AutocastModule:
    """A module called under a policy; updated buffers are written back to the module."""

    __slots__ = ("module", "policy")

    def __init__(self, module: Module, policy: Policy) -> None:
        self.module = module
        self.policy = policy

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        apply, params, buffers = split(self.module)
        output, new_buffers = MixedPrecisionApply(apply, self.policy)(params, buffers, *args, **kwargs)
        for name, value in new_buffers.items():
            if value is not buffers[name]:
                owner, _, attr = name.rpartition(".")
                setattr(self.module.get_submodule(owner) if owner else self.module, attr, value)
        return output

    def __repr__(self) -> str:
        return f"<{self.policy!r} over {type(self.module).__name__}>"


def autocast(fn: Apply | Module, dtype: Any = jnp.bfloat16, *, output_dtype: Any = jnp.float32) -> Any:
    """``jnn.amp.autocast(apply, dtype=jnp.bfloat16)``: ``apply`` (or a Module) computing in ``dtype`` with
    float32 outputs; shorthand for ``Policy(compute_dtype=dtype, output_dtype=output_dtype).wrap(fn)``.

    Unlike ``torch.autocast`` this wraps a function rather than opening a context: JAX traces pure
    functions, so the casts are part of the function that ``jit``/``grad`` see.

    >>> import jax.numpy as jnp, jnn as nn
    >>> net = nn.Linear(2, 3)
    >>> nn.amp.autocast(net)(jnp.ones(2)).dtype  # bfloat16 inside, float32 out
    dtype('float32')
    """
    if not isinstance(fn, (Apply, Module)):
        hint = ""
        if isinstance(fn, str) or _as_dtype(fn) is not None:
            hint = (" jnn.amp.autocast is not a context manager like torch.autocast(device_type, dtype): wrap the "
                    "function instead, e.g. apply_bf16 = jnn.amp.autocast(apply, dtype=jnp.bfloat16) or "
                    "jnn.amp.autocast(net)(x).")
        raise TypeError(f"jnn.amp.autocast: expected the apply function of jnn.split or a jnn.Module, got "
                        f"{fn!r}.{hint}")
    return Policy(compute_dtype=dtype, output_dtype=output_dtype).wrap(fn)
