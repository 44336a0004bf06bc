"""Gradient clipping, as ``torch.nn.utils.clip_grad``, over gradient pytrees.

In JAX gradients are values (the pytree ``jax.grad`` returns), not ``.grad`` slots, so where torch scales
``p.grad`` in place these functions take the gradients and return the clipped ones:

- ``clip_grad_norm_(grads, max_norm, norm_type=2.0) -> (clipped_grads, total_norm)``
- ``clip_grad_value_(grads, clip_value) -> clipped_grads``
- ``get_total_norm(grads, norm_type=2.0) -> total_norm``
- ``clip_grads_with_norm_(grads, max_norm, total_norm) -> clipped_grads``

``grads`` is any pytree of arrays: the flat dict of :func:`jnn.split`, a list, a single array. ``None`` leaves
(parameters without a gradient) are skipped, as torch skips ``p.grad is None``. The numerics are torch's: the
total norm is the ``norm_type``-norm of the per-array norms (``inf`` and ``-inf`` included), and the gradients are
scaled by ``min(1, max_norm / (total_norm + 1e-6))`` whether or not they exceed ``max_norm``.

``error_if_nonfinite=True`` raises ``RuntimeError`` at once when the norm is a concrete value (eager code). Under
``jax.jit`` the norm is known only when the compiled function runs: the check then runs as a
``jax.debug.callback`` and its ``RuntimeError`` surfaces (wrapped by JAX's runtime error) when the result is
computed, so a jitted training step still refuses to apply a non-finite update.

``foreach`` is accepted for torch's signature and changes nothing: XLA fuses the per-array work anyway.

Inside an optax chain, :func:`clip_by_total_norm` is the same norm clipping as a ``GradientTransformation``
(any ``norm_type``, torch's epsilon); for value clipping use ``optax.clip(clip_value)``, which is exactly
``clip_grad_value_``; ``optax.clip_by_global_norm`` is the L2 case without the epsilon.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_",
           "clip_by_total_norm"]

_EPS = 1e-6


def _tree(grads: Any) -> Any:
    """``grads`` as a pytree: a generator (``(g for g in ...)``, ``dict.values()``) becomes a list."""
    if isinstance(grads, (list, tuple, dict)) or hasattr(grads, "__array__") or not hasattr(grads, "__iter__"):
        return grads
    return list(grads)


def _leaves(tensors: Any) -> list[jax.Array]:
    return [jnp.asarray(leaf) for leaf in jax.tree.leaves(_tree(tensors))]


def _vector_norm(x: jax.Array, p: float) -> jax.Array:
    """``torch.linalg.vector_norm(x, p)`` of all of ``x``'s elements."""
    a = jnp.abs(x.reshape(-1))
    if p == math.inf:
        return a.max()
    if p == -math.inf:
        return a.min()
    if p == 0:
        return (a != 0).sum().astype(a.dtype)
    if p == 1:
        return a.sum()
    if p == 2:
        return jnp.sqrt((a * a).sum())
    return (a ** p).sum() ** (1.0 / p)


def _raise_nonfinite(total_norm: Any, norm_type: float) -> None:
    if not bool(jnp.isfinite(total_norm)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )


def get_total_norm(tensors: Any, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> jax.Array:
    """The ``norm_type``-norm of the norms of every array in ``tensors`` (a pytree, list or single array).

    >>> import jax.numpy as jnp
    >>> from jnn.utils import get_total_norm
    >>> float(get_total_norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])}))
    5.0
    >>> float(get_total_norm([jnp.array([3.0, -7.0]), jnp.array([4.0])], norm_type="inf"))
    7.0
    """
    norm_type = float(norm_type)
    leaves = _leaves(tensors)
    if not leaves:
        return jnp.asarray(0.0)
    norms = jnp.stack([_vector_norm(g, norm_type) for g in leaves])
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite:
        if isinstance(total, jax.core.Tracer):
            jax.debug.callback(_raise_nonfinite, total, norm_type)
        else:
            _raise_nonfinite(total, norm_type)
    return total


def clip_grads_with_norm_(grads: Any, max_norm: float, total_norm: Any, foreach: bool | None = None) -> Any:
    """Scale ``grads`` by ``min(1, max_norm / (total_norm + 1e-6))``; returns the new gradients (same structure).

    >>> import jax.numpy as jnp
    >>> from jnn.utils import clip_grads_with_norm_
    >>> [round(float(g), 4) for g in clip_grads_with_norm_([jnp.array([3.0, 4.0])], 1.0, 5.0)[0]]
    [0.6, 0.8]
    """
    coef = jnp.minimum(float(max_norm) / (jnp.asarray(total_norm) + _EPS), 1.0)
    return jax.tree.map(lambda g: g * coef.astype(g.dtype), _tree(grads))


def clip_grad_norm_(grads: Any, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> tuple[Any, jax.Array]:
    """Clip the gradients' total norm to ``max_norm``: returns ``(clipped_grads, total_norm)``.

    torch returns only ``total_norm`` and scales ``p.grad`` in place; here the clipped gradients come back too.

    >>> import jax.numpy as jnp
    >>> from jnn.utils import clip_grad_norm_
    >>> grads, norm = clip_grad_norm_({"w": jnp.array([6.0, 8.0])}, max_norm=1.0)
    >>> float(norm), [round(float(g), 4) for g in grads["w"]]
    (10.0, [0.6, 0.8])
    """
    grads = _tree(grads)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    return clip_grads_with_norm_(grads, max_norm, total, foreach), total


def clip_grad_norm(grads: Any, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> tuple[Any, jax.Array]:
    """Deprecated alias of :func:`clip_grad_norm_` (as ``torch.nn.utils.clip_grad_norm``)."""
    import warnings

    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(grads, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(grads: Any, clip_value: float, foreach: bool | None = None) -> Any:
    """Clamp every gradient element to ``[-clip_value, clip_value]``; returns the new gradients.

    >>> import jax.numpy as jnp
    >>> from jnn.utils import clip_grad_value_
    >>> clip_grad_value_([jnp.array([-3.0, 0.5, 2.0])], 1.0)[0].tolist()
    [-1.0, 0.5, 1.0]
    """
    clip_value = float(clip_value)
    return jax.tree.map(lambda g: jnp.clip(g, -clip_value, clip_value), _tree(grads))


def clip_by_total_norm(max_norm: float, norm_type: float = 2.0) -> optax.GradientTransformation:
    """An optax transformation doing :func:`clip_grad_norm_` on the updates (torch's numerics, any ``norm_type``).

    ``optax.clip_by_global_norm`` is the L2 case without torch's ``1e-6``; use this one to reproduce a torch
    training loop that calls ``clip_grad_norm_`` before ``optimizer.step()``, or to clip by the max-norm.

    >>> import jax.numpy as jnp, optax
    >>> from jnn.utils import clip_by_total_norm
    >>> tx = optax.chain(clip_by_total_norm(1.0, norm_type="inf"), optax.sgd(1.0))
    >>> updates, _ = tx.update({"w": jnp.array([4.0, -2.0])}, tx.init({"w": jnp.zeros(2)}))
    >>> [round(float(u), 4) for u in updates["w"]]
    [-1.0, 0.5]
    """
    norm_type = float(norm_type)

    def update(updates, state, params=None):
        del params
        clipped, _ = clip_grad_norm_(updates, max_norm, norm_type)
        return clipped, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
