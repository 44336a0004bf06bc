"""Randomness for jnn: one stream that serves eager code, pytree modules under transformations and `jnn.split`.

Eager code draws from a global stream seeded by :func:`manual_seed` (parameter initialisation and eager
Dropout both use it, so ``jnn.manual_seed(0); Net()`` is reproducible); parameters are drawn from it on the host
with NumPy and copied to the device once, as PyTorch does, so building a model compiles nothing. Under
``jax.jit``/``grad``/``vmap`` a global stream cannot advance (it would leak tracers), so randomness comes from a key
given explicitly (and then draws are JAX's, the same under ``jit`` as eagerly)::

    >>> import jax, jnn
    >>> drop = jnn.Dropout(0.5)
    >>> with jnn.random.fork(jax.random.key(0)):      # every draw inside is split from this key
    ...     y = drop(jax.numpy.ones(4))

``apply(params, buffers, x, key=key)`` from :func:`jnn.split` uses the same mechanism.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import jax
import numpy as np

from jnn._arrays import is_staging, is_tracer

__all__ = ["manual_seed", "initial_seed", "next_key", "next_source", "fork", "MissingKeyError"]


class MissingKeyError(RuntimeError):
    """Randomness was needed inside a JAX transformation and no key was provided."""


_DEFAULT_SEED = 0
_lock = threading.Lock()
# "key": the JAX key of the global stream (eager Dropout, jnn.ops.rand...); "host": the NumPy generator that
# parameter initialisation draws from. Both are made from the seed when first needed.
_global: dict = {"seed": _DEFAULT_SEED, "key": None, "host": None}


class _Forks(threading.local):
    def __init__(self) -> None:
        self.stack: list[list] = []


_forks = _Forks()


def manual_seed(seed: int) -> None:
    """Seed the global stream used for initialisation and eager randomness (like ``torch.manual_seed``).

    >>> import jnn
    >>> jnn.manual_seed(0); a = jnn.Linear(2, 2).weight
    >>> jnn.manual_seed(0); b = jnn.Linear(2, 2).weight
    >>> bool((a == b).all())
    True
    """
    seed = int(seed)
    with _lock:
        _global.update(seed=seed, key=None, host=None)


def initial_seed() -> int:
    """The seed the global stream was last seeded with."""
    return _global["seed"]


def _missing_key(who: str) -> MissingKeyError:
    return MissingKeyError(
        f"{who} needs randomness inside a JAX transformation (jit/grad/vmap/scan), but no key was "
        "given, and jnn's global stream cannot advance under a transformation. Pass a key: "
        "`apply(params, buffers, x, key=key)` for a model from jnn.split, or wrap the call in "
        "`with jnn.random.fork(key): ...` (a fresh key per step, e.g. from jax.random.split). "
        "Modules that create parameters inside a transformation need the same, or `key=` "
        "in their constructor."
    )


def next_key(who: str = "this call") -> jax.Array:
    """Draw a fresh key: from the innermost :func:`fork` context if there is one, else the global stream.

    Inside a JAX transformation with no :func:`fork` context, this raises :class:`MissingKeyError`
    instead of silently producing the same mask on every step.
    """
    if _forks.stack:
        slot = _forks.stack[-1]
        slot[0], sub = jax.random.split(slot[0])
        return sub
    with _lock:
        if _global["key"] is None:
            with jax.ensure_compile_time_eval():  # a concrete key, even if the first draw happens while tracing
                _global["key"] = jax.random.key(_global["seed"] % (2**32))
        new, sub = jax.random.split(_global["key"])
        if is_tracer(new):
            raise _missing_key(who)
        _global["key"] = new
    return sub


def next_source(who: str = "this call") -> np.random.Generator | jax.Array:
    """Where the next draw comes from: a JAX key split from the innermost :func:`fork` context (the same values
    under ``jit`` as eagerly), else the NumPy generator of the global stream, for a draw on the host.

    Inside a transformation that stages code (jit, scan, eval_shape) with no :func:`fork` context, this raises
    :class:`MissingKeyError`, as :func:`next_key` does.

    >>> import jnn
    >>> jnn.manual_seed(0)
    >>> type(jnn.random.next_source()).__name__
    'Generator'
    """
    if _forks.stack:
        return next_key(who)
    if is_staging():
        raise _missing_key(who)
    with _lock:
        if _global["host"] is None:
            _global["host"] = np.random.default_rng(_global["seed"] % 2**64)
        return _global["host"]


@contextlib.contextmanager
def fork(key: jax.Array | None) -> Iterator[None]:
    """Within this context every draw of randomness is split from ``key`` (works under jit/grad/vmap).

    ``fork(None)`` changes nothing, so ``with fork(key):`` can wrap calls whose key is optional.
    """
    if key is None:
        yield
        return
    if not (hasattr(key, "dtype") and (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
                                       or (key.dtype == "uint32" and key.shape[-1:] == (2,)))):
        raise TypeError(
            f"jnn.random.fork expected a JAX PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), "
            f"got {type(key).__name__}"
            + (f" with dtype {key.dtype} and shape {key.shape}" if hasattr(key, "dtype") else "")
        )
    _forks.stack.append([key])
    try:
        yield
    finally:
        _forks.stack.pop()
