"""torch's top-level matrix functions (``torch.det``, ``torch.inverse``, ``torch.svd``, ``torch.qr``, ...), also
Tensor methods (``x.det()``); each is :mod:`jnn.ops.linalg`'s, with torch's older conventions where they differ
(``svd`` gives ``V``, not ``Vh``; ``qr(some=)``; ``cholesky(upper=)`` positional).

>>> import jax.numpy as jnp
>>> from jnn import ops
>>> ops.inverse(jnp.array([[2.0, 0.0], [0.0, 4.0]])).tolist(), ops.svd(jnp.eye(2)).V.shape
([[0.5, 0.0], [0.0, 0.25]], (2, 2))
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import jax
import jax.numpy as jnp

from jnn.ops import linalg
from jnn.ops._core import method

__all__ = ["det", "logdet", "slogdet", "inverse", "pinverse", "cholesky", "cholesky_solve", "svd", "qr",
           "matrix_power", "matrix_exp", "dist", "chain_matmul"]

_svd = namedtuple("svd", ["U", "S", "V"])

det = method(linalg.det)
slogdet = method(linalg.slogdet)
matrix_power = method(linalg.matrix_power)
matrix_exp = method(linalg.matrix_exp)


@method
def logdet(input: Any) -> jax.Array:
    """``log(det(A))``: NaN for a negative determinant, -inf for zero, as torch."""
    sign, logabsdet = linalg.slogdet(input)
    return jnp.where(sign < 0, jnp.nan, jnp.where(sign == 0, -jnp.inf, logabsdet))


@method
def inverse(input: Any, *, out: Any = None) -> jax.Array:
    """torch.inverse: :func:`inv`."""
    return linalg.inv(input)


@method
def pinverse(input: Any, rcond: float = 1e-15) -> jax.Array:
    """torch.pinverse: the pseudo-inverse dropping singular values below ``rcond`` times the largest."""
    return linalg.pinv(input, rtol=rcond)


@method
def cholesky(input: Any, upper: bool = False, *, out: Any = None) -> jax.Array:
    """torch.cholesky: :func:`jnn.ops.linalg.cholesky`."""
    return linalg.cholesky(input, upper=upper)


@method
def cholesky_solve(B: Any, L: Any, upper: bool = False, *, out: Any = None) -> jax.Array:
    """``X`` with ``A @ X = B`` given ``A``'s Cholesky factor ``L`` (upper: ``U`` with ``A = U^H U``)."""
    L = jnp.asarray(L)
    lower = jnp.swapaxes(L, -1, -2).conj() if upper else L
    y = linalg.solve_triangular(lower, B, upper=False)
    return linalg.solve_triangular(jnp.swapaxes(lower, -1, -2).conj(), y, upper=True)


@method
def svd(input: Any, some: bool = True, compute_uv: bool = True, *, out: Any = None) -> tuple:
    """torch.svd: ``(U, S, V)`` (V, not Vh), reduced when ``some``; zeros for U and V without ``compute_uv``."""
    u, s, vh = linalg.svd(input, full_matrices=not some)
    if not compute_uv:
        return _svd(jnp.zeros_like(u), s, jnp.zeros_like(vh))
    return _svd(u, s, jnp.swapaxes(vh, -1, -2).conj())


@method
def qr(input: Any, some: bool = True, *, out: Any = None) -> tuple:
    """torch.qr: ``(Q, R)``, reduced when ``some``."""
    return linalg.qr(input, "reduced" if some else "complete")


@method
def dist(input: Any, other: Any, p: float = 2) -> jax.Array:
    """The ``p``-norm of ``input - other`` (broadcast)."""
    return linalg.vector_norm(jnp.asarray(input) - jnp.asarray(other), p)


def chain_matmul(*matrices: Any, out: Any = None) -> jax.Array:
    """torch.chain_matmul: :func:`multi_dot` of the arguments."""
    return linalg.multi_dot(matrices)


