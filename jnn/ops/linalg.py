"""``torch.linalg`` over JAX arrays (torch's older top-level names, ``torch.det``, ``torch.svd``, ..., are in
:mod:`jnn.ops.matrix`). Results are torch's: its named tuples (``Q, R``,
``U, S, Vh``, ``sign, logabsdet``), its defaults (``norm``'s vector/matrix rule, ``pinv``'s tolerance) and its
errors for singular or non-positive-definite input when the values are known (under ``jit`` those give NaN or inf,
as JAX's decompositions do).

>>> import jax.numpy as jnp
>>> from jnn import ops
>>> a = jnp.array([[2.0, 1.0], [1.0, 3.0]])
>>> ops.linalg.det(a).item(), ops.linalg.vector_norm(jnp.array([3.0, 4.0])).item()
(5.0, 5.0)
>>> [round(v, 4) for v in ops.linalg.solve(a, jnp.array([3.0, 5.0])).tolist()]
[0.8, 1.4]
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn._arrays import is_tracer
from jnn.ops._core import astype, normalize_dims

__all__ = ["norm", "vector_norm", "matrix_norm", "det", "slogdet", "inv", "inv_ex", "pinv", "solve",
           "solve_triangular", "cholesky", "cholesky_ex", "qr", "svd", "svdvals", "eigh", "eigvalsh", "matrix_rank",
           "matrix_power", "matrix_exp", "cross", "vecdot", "multi_dot", "diagonal", "cond"]

_slogdet = namedtuple("slogdet", ["sign", "logabsdet"])
_qr = namedtuple("qr", ["Q", "R"])
_svd = namedtuple("svd", ["U", "S", "Vh"])
_eigh = namedtuple("eigh", ["eigenvalues", "eigenvectors"])
_inv_ex = namedtuple("inv_ex", ["inverse", "info"])
_cholesky_ex = namedtuple("cholesky_ex", ["L", "info"])


def _float(input: Any, who: str) -> jax.Array:
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise RuntimeError(f"linalg.{who}: Expected a floating point or complex tensor as input. Got {x.dtype}")
    return x


def _square(input: Any, who: str) -> jax.Array:
    x = _float(input, who)
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise RuntimeError(f"linalg.{who}: A must be batches of square matrices, but they are "
                           f"{x.shape[-2] if x.ndim >= 2 else x.size} by {x.shape[-1] if x.ndim else 1} matrices")
    return x


def _check_finite(result: Any, who: str, why: str) -> Any:
    """Eagerly, torch's error where LAPACK failed (JAX returns NaN/inf there); traced values pass through."""
    if not is_tracer(result) and not bool(jnp.all(jnp.isfinite(result))):
        raise RuntimeError(f"linalg.{who}: {why}")
    return result


def vector_norm(x: Any, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None,
                out: Any = None) -> jax.Array:
    """The vector ``ord``-norm over ``dim`` (every element when None)."""
    x = astype(_float(x, "vector_norm"), dtype)
    axes = None if dim is None else normalize_dims(dim, x.ndim, "linalg.vector_norm")
    if axes is None:
        return jnp.linalg.vector_norm(x.reshape(-1), ord=ord).reshape((1,) * x.ndim if keepdim else ())
    return jnp.linalg.vector_norm(x, axis=axes, keepdims=keepdim, ord=ord)


def matrix_norm(A: Any, ord: Any = "fro", dim: tuple[int, int] = (-2, -1), keepdim: bool = False, *,
                dtype: Any = None, out: Any = None) -> jax.Array:
    """The matrix norm (``"fro"``, ``"nuc"``, ``inf``, ``-inf``, ``1``, ``-1``, ``2``, ``-2``) of the matrices in
    ``dim``."""
    x = astype(_float(A, "matrix_norm"), dtype)
    axes = normalize_dims(dim, x.ndim, "linalg.matrix_norm")
    return jnp.linalg.norm(x, ord=ord, axis=axes, keepdims=keepdim)


def norm(A: Any, ord: Any = None, dim: Any = None, keepdim: bool = False, *, dtype: Any = None,
         out: Any = None) -> jax.Array:
    """torch.linalg.norm: a vector norm when ``dim`` is an int (or ``A`` is 1-d), a matrix norm when ``dim`` is a
    pair (or ``A`` is 2-d with ``ord`` given), the 2-norm of all elements when both ``ord`` and ``dim`` are None."""
    x = jnp.asarray(A)
    if dim is None and ord is None:
        return vector_norm(x, 2, None, keepdim, dtype=dtype)
    if isinstance(dim, int) or (dim is not None and len(dim) == 1) or (dim is None and x.ndim == 1):
        return vector_norm(x, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is None and x.ndim != 2:
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got "
                           f"{x.ndim}D.")
    return matrix_norm(x, "fro" if ord is None else ord, (-2, -1) if dim is None else dim, keepdim, dtype=dtype)


def det(A: Any, *, out: Any = None) -> jax.Array:
    """The determinant of each square matrix."""
    return jnp.linalg.det(_square(A, "det"))


def slogdet(A: Any, *, out: Any = None) -> tuple:
    """``(sign, logabsdet)`` of the determinant."""
    return _slogdet(*jnp.linalg.slogdet(_square(A, "slogdet")))


def inv(A: Any, *, out: Any = None) -> jax.Array:
    """The inverse of each square matrix (eagerly, torch's error for a singular one)."""
    return _check_finite(jnp.linalg.inv(_square(A, "inv")), "inv", "The diagonal element 1 is zero, the inversion "
                         "could not be completed because the input matrix is singular.")


def inv_ex(A: Any, *, check_errors: bool = False, out: Any = None) -> tuple:
    """``(inverse, info)``: info is 0 where the inverse is finite, 1 where the matrix was singular."""
    inverse = jnp.linalg.inv(_square(A, "inv_ex"))
    info = jnp.where(jnp.all(jnp.isfinite(inverse), axis=(-2, -1)), 0, 1).astype(jnp.int32)
    if check_errors:
        _check_finite(inverse, "inv_ex", "The matrix is singular.")
    return _inv_ex(inverse, info)


def _tolerance(s: jax.Array, shape: tuple, atol: Any, rtol: Any) -> jax.Array:
    """torch's cut-off for small singular values: ``max(atol, rtol * largest)``, ``rtol = eps * max(m, n)`` when
    neither is given."""
    if rtol is None:
        rtol = 0.0 if atol is not None and np.any(np.asarray(atol) > 0) else jnp.finfo(s.dtype).eps * builtins.max(
            shape[-2:])
    largest = jnp.max(s, axis=-1, keepdims=True, initial=0.0)
    return jnp.maximum(jnp.asarray(0.0 if atol is None else atol, s.dtype)[..., None], rtol * largest)


def pinv(A: Any, *, atol: Any = None, rtol: Any = None, hermitian: bool = False, out: Any = None) -> jax.Array:
    """The pseudo-inverse, dropping singular values below torch's tolerance."""
    x = _float(A, "pinv")
    u, s, vh = jnp.linalg.svd(x, full_matrices=False)
    s_inv = jnp.where(s > _tolerance(s, x.shape, atol, rtol), 1 / jnp.where(s == 0, 1, s), 0).astype(s.dtype)
    return jnp.matmul(jnp.swapaxes(vh, -1, -2).conj() * s_inv[..., None, :], jnp.swapaxes(u, -1, -2).conj())


def matrix_rank(A: Any, *, atol: Any = None, rtol: Any = None, hermitian: bool = False, out: Any = None) -> jax.Array:
    """The number of singular values above torch's tolerance (int64, int32 without x64)."""
    x = _float(A, "matrix_rank")
    s = jnp.linalg.svd(x, compute_uv=False)
    return jnp.sum(s > _tolerance(s, x.shape, atol, rtol), axis=-1).astype(jnp.int64)


def _vector_right_side(A: jax.Array, B: jax.Array) -> bool:
    """torch's rule: ``B`` is a (batch of) vector(s) when 1-d or shaped ``A.shape[:-1]``."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])


def solve(A: Any, B: Any, *, left: bool = True, out: Any = None) -> jax.Array:
    """``X`` with ``A @ X = B`` (``X @ A = B`` when ``left=False``); ``B`` may be a vector or a batch of them."""
    A, B = _square(A, "solve"), jnp.asarray(B)
    vector = _vector_right_side(A, B)
    if not left:
        A, B = jnp.swapaxes(A, -1, -2), (B if vector else jnp.swapaxes(B, -1, -2))
    rhs = B[..., None] if vector else B
    batch = jnp.broadcast_shapes(A.shape[:-2], rhs.shape[:-2])
    X = jnp.linalg.solve(jnp.broadcast_to(A, batch + A.shape[-2:]), jnp.broadcast_to(rhs, batch + rhs.shape[-2:]))
    X = X[..., 0] if vector else X
    X = X if left or vector else jnp.swapaxes(X, -1, -2)
    return _check_finite(X, "solve", "The solver failed because the input matrix is singular.")


def solve_triangular(A: Any, B: Any, *, upper: bool, left: bool = True, unitriangular: bool = False,
                     out: Any = None) -> jax.Array:
    """``X`` with ``A @ X = B`` (or ``X @ A = B``) for triangular ``A``, reading only its upper or lower part."""
    A, B = _float(A, "solve_triangular"), jnp.asarray(B)
    batch = jnp.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    return jax.lax.linalg.triangular_solve(jnp.broadcast_to(A, batch + A.shape[-2:]),
                                           jnp.broadcast_to(B, batch + B.shape[-2:]), left_side=left,
                                           lower=not upper, unit_diagonal=unitriangular)


def cholesky(A: Any, *, upper: bool = False, out: Any = None) -> jax.Array:
    """The Cholesky factor ``L`` (``A = L @ L^H``; ``upper=True``: ``L^H``) of positive-definite matrices."""
    L = jnp.linalg.cholesky(_square(A, "cholesky"))
    L = _check_finite(L, "cholesky", "The factorization could not be completed because the input is not "
                      "positive-definite.")
    return jnp.swapaxes(L, -1, -2).conj() if upper else L


def cholesky_ex(A: Any, *, upper: bool = False, check_errors: bool = False, out: Any = None) -> tuple:
    """``(L, info)``: info is 0 where the factorization succeeded, 1 where ``A`` was not positive-definite."""
    L = jnp.linalg.cholesky(_square(A, "cholesky_ex"))
    info = jnp.where(jnp.all(jnp.isfinite(L), axis=(-2, -1)), 0, 1).astype(jnp.int32)
    if check_errors:
        _check_finite(L, "cholesky_ex", "The factorization could not be completed because the input is not "
                      "positive-definite.")
    return _cholesky_ex(jnp.swapaxes(L, -1, -2).conj() if upper else L, info)


def qr(A: Any, mode: str = "reduced", *, out: Any = None) -> tuple:
    """``(Q, R)``: ``mode="reduced"`` (default), ``"complete"``, or ``"r"`` (Q empty)."""
    x = _float(A, "qr")
    if mode == "r":
        return _qr(jnp.zeros((0,), x.dtype), jnp.linalg.qr(x, mode="r"))
    return _qr(*jnp.linalg.qr(x, mode=mode))


def svd(A: Any, full_matrices: bool = True, *, driver: Any = None, out: Any = None) -> tuple:
    """``(U, S, Vh)`` with ``A = U @ diag(S) @ Vh``, singular values in descending order."""
    return _svd(*jnp.linalg.svd(_float(A, "svd"), full_matrices=full_matrices))


def svdvals(A: Any, *, driver: Any = None, out: Any = None) -> jax.Array:
    """The singular values, in descending order."""
    return jnp.linalg.svd(_float(A, "svdvals"), compute_uv=False)


def eigh(A: Any, UPLO: str = "L", *, out: Any = None) -> tuple:  # noqa: N803 (torch's name)
    """``(eigenvalues, eigenvectors)`` of Hermitian matrices, eigenvalues ascending."""
    return _eigh(*jnp.linalg.eigh(_square(A, "eigh"), UPLO=UPLO))


def eigvalsh(A: Any, UPLO: str = "L", *, out: Any = None) -> jax.Array:  # noqa: N803
    """The eigenvalues of Hermitian matrices, ascending."""
    return jnp.linalg.eigvalsh(_square(A, "eigvalsh"), UPLO=UPLO)


def matrix_power(A: Any, n: int, *, out: Any = None) -> jax.Array:
    """``A @ A @ ... (n times)``; ``n = 0``: the identity; ``n < 0``: powers of the inverse."""
    return jnp.linalg.matrix_power(_square(A, "matrix_power"), n)


def matrix_exp(A: Any) -> jax.Array:
    """The matrix exponential of each square matrix."""
    x = _square(A, "matrix_exp")
    flat = x.reshape((-1,) + x.shape[-2:])
    return jax.vmap(jax.scipy.linalg.expm)(flat).reshape(x.shape)


def cross(input: Any, other: Any, *, dim: int = -1, out: Any = None) -> jax.Array:
    """The cross product of 3-vectors along ``dim`` (broadcasting the rest)."""
    return jnp.cross(input, other, axis=dim)


def vecdot(x: Any, y: Any, *, dim: int = -1, out: Any = None) -> jax.Array:
    """``sum(conj(x) * y)`` over ``dim``."""
    return jnp.sum(jnp.conj(x) * y, axis=dim)


def multi_dot(tensors: Sequence[Any], *, out: Any = None) -> jax.Array:
    """The product of the matrices (the first and last may be vectors), in the cheapest order."""
    return jnp.linalg.multi_dot(list(tensors))


def diagonal(A: Any, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> jax.Array:
    """The diagonals of the matrices in ``dim1``, ``dim2``."""
    return jnp.diagonal(A, offset=offset, axis1=dim1, axis2=dim2)


def cond(A: Any, p: Any = None, *, out: Any = None) -> jax.Array:
    """The condition number in the ``p`` norm (2-norm by default: largest over smallest singular value)."""
    x = _float(A, "cond")
    if p in (None, 2, -2):
        s = jnp.linalg.svd(x, compute_uv=False)
        return s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
    return matrix_norm(x, p) * matrix_norm(jnp.linalg.inv(x), p)
