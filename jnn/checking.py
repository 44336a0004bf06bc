"""Checked mode: turn the index errors jnn raises eagerly into errors under ``jax.jit`` too.

Eagerly, ``F.embedding`` (so ``nn.Embedding``) and the class-index losses (``cross_entropy``, ``nll_loss``,
``multi_margin_loss``, ``multilabel_margin_loss``) raise ``IndexError`` for an out-of-range index, as torch does.
Under ``jax.jit`` the values are not known while tracing: JAX clamps the gather (``Embedding`` returns the last
row for a too-large index and wraps a negative one), and the losses come out NaN. :func:`checked` runs a function
through ``jax.experimental.checkify``, where the checks these functions stage under tracing become real ones:
the call raises ``jax.experimental.checkify.JaxRuntimeError`` naming the function and the bad index.

>>> import jax, jax.numpy as jnp, jnn
>>> emb = jnn.Embedding(3, 2)
>>> step = jnn.checked(jax.jit(lambda m, i: m(i)))
>>> step(emb, jnp.array([0, 2])).shape
(2, 2)
>>> step(emb, jnp.array([0, 3]))
Traceback (most recent call last):
...
jax._src.checkify.JaxRuntimeError: embedding: index 3 out of range (expected indices in [0, 3))...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import checkify

__all__ = ["checked"]

DEFAULT_ERRORS = checkify.user_checks


def checked(fn: Callable[..., Any], errors: frozenset = DEFAULT_ERRORS) -> Callable[..., Any]:
    """``fn`` with jnn's index checks enforced, under ``jit`` as well.

    ``jnn.checked(jax.jit(step))`` compiles ``step`` once with the checks in it and raises
    ``checkify.JaxRuntimeError`` after a call whose indices were out of range; the results of a call that passes
    are those of ``step``. ``errors`` is a set of ``checkify`` error kinds: jnn's checks are ``user_checks``; add
    e.g. ``checkify.nan_checks`` or ``checkify.index_checks`` (JAX's own gather bounds; it fails on some
    gradients of gathers in jax 0.10).
    Without ``checked``, the checks cost nothing: they are dropped when ``fn`` is not checkified.
    """
    checkified = checkify.checkify(fn, errors=errors)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        err, out = checkified(*args, **kwargs)
        err.throw()
        return out

    return run


def check_indices(indices: jax.Array, low: int, high: int, where: str, allowed: int | None = None) -> None:
    """Stage a check that every ``indices`` value lies in ``[low, high)`` (or equals ``allowed``), when traced.

    Eager values are checked by the caller (with torch's message); this only adds the check :func:`checked`
    enforces under ``jit``, a no-op otherwise.
    """
    if not isinstance(indices, jax.core.Tracer) or indices.size == 0:
        return
    flat = indices.reshape(-1)
    bad = (flat < low) | (flat >= high)
    if allowed is not None:
        bad = bad & (flat != allowed)
    first = flat[jnp.argmax(bad)]
    checkify.debug_check(~bad.any(), f"{where}: index {{}} out of range (expected indices in [{low}, {high})"
                         + ("" if allowed is None else f" or {allowed}") + ")", first)
