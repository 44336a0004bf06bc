"""``torch.fft``: discrete Fourier transforms over JAX arrays with torch's signatures (``dim=``, ``s=``, ``norm=``).

Each function is ``jnp.fft``'s with torch's argument names; results are complex64 for float32 (or integer) input,
as torch gives without float64.

>>> import jax.numpy as jnp
>>> from jnn import ops
>>> ops.fft.rfft(jnp.array([1.0, 2.0, 3.0, 4.0]), norm="ortho").round(3).tolist()
[(5+0j), (-1+1j), (-1+0j)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from jnn.ops._core import default_float, floating, to_dtype

__all__ = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn",
           "rfftn", "irfftn", "fftfreq", "rfftfreq", "fftshift", "ifftshift"]


def _axes(dim: int | Sequence[int] | None) -> tuple[int, ...] | None:
    return None if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)


def _one_dim(transform: Callable) -> Callable:
    def one_dim(input: Any, n: int | None = None, dim: int = -1, norm: str | None = None, *, out: Any = None) -> Any:
        return transform(*floating(input), n=n, axis=dim, norm=norm)

    one_dim.__name__ = one_dim.__qualname__ = transform.__name__
    one_dim.__doc__ = f"torch.fft.{transform.__name__}: ``jnp.fft.{transform.__name__}`` over ``dim``."
    return one_dim


def _n_dim(transform: Callable, default_dim: tuple[int, ...] | None) -> Callable:
    def n_dim(input: Any, s: Sequence[int] | None = None, dim: int | Sequence[int] | None = default_dim,
              norm: str | None = None, *, out: Any = None) -> Any:
        axes = _axes(dim)
        if s is not None and axes is None:  # torch: the last len(s) dims
            axes = tuple(range(-len(s), 0))
        return transform(*floating(input), s=None if s is None else tuple(s), axes=axes, norm=norm)

    n_dim.__name__ = n_dim.__qualname__ = transform.__name__
    n_dim.__doc__ = f"torch.fft.{transform.__name__}: ``jnp.fft.{transform.__name__}`` over ``dim``."
    return n_dim


fft, ifft, rfft, irfft, hfft, ihfft = (_one_dim(getattr(jnp.fft, n)) for n in __all__[:6])
fft2, ifft2, rfft2, irfft2 = (_n_dim(getattr(jnp.fft, n), (-2, -1)) for n in __all__[6:10])
fftn, ifftn, rfftn, irfftn = (_n_dim(getattr(jnp.fft, n), None) for n in __all__[10:14])


def fftfreq(n: int, d: float = 1.0, *, out: Any = None, dtype: Any = None, **kwargs: Any) -> Any:
    """The sample frequencies of an ``n``-point transform with sample spacing ``d`` (float32 by default)."""
    return jnp.asarray(np.fft.fftfreq(n, d), to_dtype(dtype) or default_float())


def rfftfreq(n: int, d: float = 1.0, *, out: Any = None, dtype: Any = None, **kwargs: Any) -> Any:
    """The non-negative sample frequencies of an ``n``-point real transform."""
    return jnp.asarray(np.fft.rfftfreq(n, d), to_dtype(dtype) or default_float())


def fftshift(input: Any, dim: int | Sequence[int] | None = None) -> Any:
    """Move the zero frequency to the centre of ``dim`` (every dim by default)."""
    return jnp.fft.fftshift(jnp.asarray(input), axes=_axes(dim))


def ifftshift(input: Any, dim: int | Sequence[int] | None = None) -> Any:
    """The inverse of :func:`fftshift`."""
    return jnp.fft.ifftshift(jnp.asarray(input), axes=_axes(dim))
