"""Ready-made parametrizations (``torch.nn.utils.parametrizations``): weight_norm, spectral_norm, orthogonal.

Each registers a module with :func:`jnn.utils.parametrize.register_parametrization`, so the state_dict keys are
PyTorch's (``parametrizations.weight.original0``/``original1`` for weight_norm, ``parametrizations.weight.original``
and the power-iteration buffers ``parametrizations.weight.0._u``/``_v`` for spectral_norm).

Spectral norm's power iteration runs in training mode on every access of the weight and stores the new ``_u``/``_v``
on the parametrization module, as BatchNorm's running statistics are stored: on the module itself when eager, in a
module returned from a jitted function, and in the ``new_buffers`` of a ``jnn.split`` apply.

>>> import jax.numpy as jnp, jnn as nn
>>> from jnn.utils.parametrizations import spectral_norm
>>> nn.manual_seed(0)  # power iteration converges slowly for the rare weights whose top singular values are close
>>> m = spectral_norm(nn.Linear(4, 3))
>>> list(m.state_dict())
['bias', 'parametrizations.weight.original', 'parametrizations.weight.0._u', 'parametrizations.weight.0._v']
>>> float(jnp.linalg.norm(m.weight, ord=2)) < 1.01
True
"""

from __future__ import annotations

import enum
from typing import Any

import jax
import jax.numpy as jnp

from jnn import random
from jnn.functional import normalize
from jnn.modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from jnn.modules.module import Module
from jnn.utils import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


# --- weight norm ------------------------------------------------------------------------------------------------


def _norm_except_dim(v: jax.Array, dim: int) -> jax.Array:
    """The 2-norm of every slice along ``dim`` (kept as a size-1-elsewhere array); ``dim=-1``: of the whole tensor,
    as a 0-d array (torch's ``norm_except_dim`` convention)."""
    if dim == -1:
        return jnp.sqrt(jnp.sum(jnp.square(v)))
    dim = dim % v.ndim
    return jnp.sqrt(jnp.sum(jnp.square(v), axis=tuple(a for a in range(v.ndim) if a != dim), keepdims=True))


def _weight_norm(v: jax.Array, g: jax.Array, dim: int) -> jax.Array:
    return v * (g / _norm_except_dim(v, dim))


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: jax.Array, weight_v: jax.Array) -> jax.Array:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _norm_except_dim(weight, self.dim), weight

    @staticmethod
    def _legacy_state_dict_keys(name: str) -> dict[str, str]:
        """The legacy hook's keys (``weight_g``, ``weight_v``) and the originals they load into, so that a legacy
        checkpoint loads as in torch (see :func:`jnn.utils.parametrize.register_parametrization`)."""
        return {f"{name}_g": f"parametrizations.{name}.original0", f"{name}_v": f"parametrizations.{name}.original1"}


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (the norm over every dim but ``dim``; ``None``: over
    the whole tensor). ``g`` and ``v`` are ``parametrizations.<name>.original0`` and ``original1``.

    >>> import jnn as nn
    >>> m = weight_norm(nn.Linear(20, 40), name="weight")
    >>> m.parametrizations.weight.original0.shape, m.parametrizations.weight.original1.shape
    ((40, 1), (40, 20))
    """
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


# --- spectral norm ----------------------------------------------------------------------------------------------


def _as_matrix(weight: jax.Array, dim: int) -> jax.Array:
    """``weight`` with ``dim`` first and the other dims flattened: the matrix whose spectral norm is taken."""
    return jnp.moveaxis(weight, dim, 0).reshape(weight.shape[dim], -1)


def _power_iteration(weight_mat: jax.Array, u: jax.Array, v: jax.Array, steps: int, eps: float,
                     v_first: bool) -> tuple[jax.Array, jax.Array]:
    """``steps`` rounds of power iteration for the top singular vectors, without gradient; ``v_first``: update v
    before u in each round (the legacy spectral_norm's order)."""
    weight_mat = jax.lax.stop_gradient(weight_mat)
    for _ in range(steps):
        if v_first:
            v = normalize(weight_mat.conj().T @ u, dim=0, eps=eps)
            u = normalize(weight_mat @ v, dim=0, eps=eps)
        else:
            u = normalize(weight_mat @ v, dim=0, eps=eps)
            v = normalize(weight_mat.conj().T @ u, dim=0, eps=eps)
    return jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)


def _random_unit(rows: int, dtype: Any, eps: float, who: str) -> jax.Array:
    return normalize(jax.random.normal(random.next_key(who), (rows,), dtype), dim=0, eps=eps)


class _SpectralNorm(Module):
    def __init__(self, weight: jax.Array, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim % ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = _as_matrix(weight, self.dim)
            h, w = weight_mat.shape
            u = _random_unit(h, weight.dtype, eps, "spectral_norm")
            v = _random_unit(w, weight.dtype, eps, "spectral_norm")
            u, v = _power_iteration(weight_mat, u, v, 15, eps, v_first=False)
            self.register_buffer("_u", u)
            self.register_buffer("_v", v)

    def forward(self, weight: jax.Array) -> jax.Array:
        if weight.ndim == 1:
            return normalize(weight, dim=0, eps=self.eps)
        weight_mat = _as_matrix(weight, self.dim)
        u, v = self._u, self._v
        if self.training:
            u, v = _power_iteration(weight_mat, u, v, self.n_power_iterations, self.eps, v_first=False)
            self._u, self._v = u, v
        sigma = jnp.vdot(u, weight_mat @ v)
        return weight / sigma

    def right_inverse(self, value: jax.Array) -> jax.Array:
        return value


def _default_spectral_dim(module: Module, dim: int | None) -> int:
    if dim is not None:
        return dim
    return 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its spectral norm, estimated by power iteration (one round per access in
    training mode; the vectors are the buffers ``parametrizations.<name>.0._u`` and ``_v``). ``dim`` defaults
    to 1 for ConvTranspose and 0 otherwise. The initial vectors come from jnn's random stream
    (``jnn.manual_seed``).

    >>> import jnn as nn
    >>> m = spectral_norm(nn.Linear(20, 40))
    >>> m.parametrizations.weight[0]._u.shape
    (40,)
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, jax.Array):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    dim = _default_spectral_dim(module, dim)
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


# --- orthogonal -------------------------------------------------------------------------------------------------


class _OrthMaps(enum.Enum):
    matrix_exp = enum.auto()
    cayley = enum.auto()
    householder = enum.auto()


def _mT(x: jax.Array) -> jax.Array:
    return jnp.swapaxes(x, -1, -2)


def _geqrf(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """LAPACK's geqrf (Householder reflectors below the diagonal, R on and above it, and the scales tau)."""
    h, tau = jnp.linalg.qr(a, mode="raw")
    return _mT(h), tau


def _diagonal(x: jax.Array) -> jax.Array:
    return jnp.diagonal(x, axis1=-2, axis2=-1)


def _sgn(x: jax.Array) -> jax.Array:
    if jnp.iscomplexobj(x):
        magnitude = jnp.abs(x)
        return jnp.where(magnitude == 0, 0, x / jnp.where(magnitude == 0, 1, magnitude))
    return jnp.sign(x)


def _householder_product(a: jax.Array, tau: jax.Array) -> jax.Array:
    """The first k columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^H with v_i the unit-lower i-th column of ``a``
    (LAPACK's orgqr, as ``jax.lax.linalg.householder_product``, which has no derivative rule; this one has)."""
    n, k = a.shape[-2], a.shape[-1]
    rows = jnp.arange(n)

    def step(q: jax.Array, column: tuple) -> tuple[jax.Array, None]:
        i, col, t = column
        v = jnp.where(rows > i, col, (rows == i).astype(a.dtype))
        qv = jnp.einsum("...nm,...m->...n", q, v)
        return q - t[..., None, None] * qv[..., :, None] * v.conj()[..., None, :], None

    eye = jnp.broadcast_to(jnp.eye(n, dtype=a.dtype), (*a.shape[:-2], n, n))
    columns = (jnp.arange(k), jnp.moveaxis(a, -1, 0), jnp.moveaxis(tau, -1, 0))
    q, _ = jax.lax.scan(step, eye, columns)
    return q[..., :k]


def _make_orthogonal(a: jax.Array) -> jax.Array:
    """The Q of a's QR decomposition, with the signs making R's diagonal positive."""
    x, tau = _geqrf(a)
    q = jax.lax.linalg.householder_product(x, tau)
    return q * _sgn(_diagonal(x))[..., None, :]


def _is_orthogonal(q: jax.Array) -> bool:
    n, k = q.shape[-2], q.shape[-1]
    eps = 10.0 * n * float(jnp.finfo(q.dtype).eps)
    return bool(jnp.allclose(_mT(q).conj() @ q, jnp.eye(k, dtype=q.dtype), rtol=1e-5, atol=eps))


def _set_diagonal(x: jax.Array, diagonal: jax.Array) -> jax.Array:
    k = min(x.shape[-2:])
    rows = jnp.arange(k)
    return x.at[..., rows, rows].set(diagonal)


class _Orthogonal(Module):
    def __init__(self, weight: jax.Array, orthogonal_map: _OrthMaps, *, use_trivialization: bool = True) -> None:
        super().__init__()
        if jnp.iscomplexobj(weight) and orthogonal_map == _OrthMaps.householder:
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: jax.Array) -> jax.Array:
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X, n, k = _mT(X), k, n
        if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
            X = jnp.tril(X)
            if n != k:
                X = jnp.concatenate([X, jnp.zeros((*X.shape[:-2], n, n - k), X.dtype)], axis=-1)
            A = X - _mT(X).conj()
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                Q = jax.scipy.linalg.expm(A)
            else:
                eye = jnp.eye(n, dtype=A.dtype)
                Q = jnp.linalg.solve(eye - 0.5 * A, eye + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = jnp.tril(X, -1)
            tau = 2.0 / (1.0 + jnp.sum(A * A, axis=-2))
            Q = _householder_product(A, tau)
            Q = Q * jnp.trunc(_diagonal(X))[..., None, :]  # torch casts the diagonal to int: truncation
        if "base" in self._buffers:
            Q = self.base @ Q
        return _mT(Q) if transposed else Q

    def right_inverse(self, Q: jax.Array) -> jax.Array:
        if tuple(Q.shape) != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. Got a tensor of shape "
                             f"{tuple(Q.shape)}.")
        Q = jax.lax.stop_gradient(Q)
        Q_init = Q
        n, k = Q.shape[-2], Q.shape[-1]
        transpose = n < k
        if transpose:
            Q, n, k = _mT(Q), k, n
        if "base" not in self._buffers:
            if self.orthogonal_map in (_OrthMaps.cayley, _OrthMaps.matrix_exp):
                raise NotImplementedError("It is not possible to assign to the matrix exponential or the Cayley "
                                          "parametrizations when use_trivialization=False.")
            A, tau = _geqrf(Q)
            diagonal = jnp.sign(_diagonal(A))
            diagonal = jnp.where(tau == 0.0, -diagonal, diagonal)
            A = _set_diagonal(A, diagonal)
            return _mT(A) if transpose else A
        if n == k:
            Q = Q if _is_orthogonal(Q) else _make_orthogonal(Q)
        else:
            noise = jax.random.normal(random.next_key("orthogonal"), (*Q.shape[:-2], n, n - k), Q.dtype)
            Q = _make_orthogonal(jnp.concatenate([Q, noise], axis=-1))
        self.base = Q
        return _set_diagonal(jnp.zeros_like(Q_init), jnp.full(min(Q_init.shape[-2:]), -1.0, Q_init.dtype))


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Constrain ``module.<name>`` (a matrix or batch of matrices) to be orthogonal (unitary if complex).

    ``orthogonal_map`` is ``"matrix_exp"``, ``"cayley"`` or ``"householder"`` (default: matrix_exp for square or
    complex matrices, householder otherwise). With ``use_trivialization=True`` (the default) a buffer ``base``
    holds the starting point and the parametrization moves around it.

    >>> import jax.numpy as jnp, jnn as nn
    >>> m = orthogonal(nn.Linear(5, 3))
    >>> bool(jnp.allclose(m.weight @ m.weight.T, jnp.eye(3), atol=1e-5))
    True
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, jax.Array):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        square = weight.shape[-2] == weight.shape[-1]
        orthogonal_map = "matrix_exp" if square or jnp.iscomplexobj(weight) else "householder"
    orth_enum = getattr(_OrthMaps, orthogonal_map, None) if isinstance(orthogonal_map, str) else None
    if orth_enum is None:
        raise ValueError(f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: '
                         f"{orthogonal_map}")
    orth = _Orthogonal(weight, orth_enum, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
