"""jnn.ops.linalg (torch.linalg) and jnn.ops.matrix (torch.det, torch.svd, ...) against torch, eager and jitted."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import jitted

from jnn import ops

RNG = np.random.default_rng(0)
INF = float("inf")


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def spd(*batch, n=4):
    a = randn(*batch, n, n)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n, dtype=np.float32)


def same(ours, theirs, rtol=1e-4, atol=1e-4):
    if isinstance(theirs, tuple):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            same(a, b, rtol, atol)
        return
    theirs = theirs.numpy()
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert ours.dtype == (np.int32 if theirs.dtype == np.int64 else theirs.dtype), (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def check(path, *args, jit=True, rtol=1e-4, atol=1e-4, **kwargs):
    """``ops.<path>`` against ``torch.<path>`` (e.g. ``"linalg.det"``), arrays given as NumPy."""
    def get(root):
        for part in path.split("."):
            root = getattr(root, part)
        return root

    def convert(a, to):
        return to(a) if isinstance(a, np.ndarray) else [to(x) for x in a] if isinstance(a, list) else a

    theirs = get(torch)(*[convert(a, torch.from_numpy) for a in args], **kwargs)
    theirs = tuple(theirs) if isinstance(theirs, tuple) else theirs
    fn = get(ops)
    same(fn(*[convert(a, jnp.asarray) for a in args], **kwargs), theirs, rtol, atol)
    if jit:
        same(jitted(fn, args, kwargs), theirs, rtol, atol)


@pytest.mark.parametrize("ord", [2, 1, 0, INF, -INF, 3.5, -1])
def test_vector_norm(ord):
    x = randn(3, 4, 5)
    check("linalg.vector_norm", x, ord)
    check("linalg.vector_norm", x, ord, dim=1, keepdim=True)
    check("linalg.vector_norm", x, ord, dim=(0, 2))
    check("linalg.vector_norm", x, ord, keepdim=True)


@pytest.mark.parametrize("ord", ["fro", "nuc", INF, -INF, 1, -1, 2, -2])
def test_matrix_norm_and_norm(ord):
    x = randn(2, 4, 3)
    check("linalg.matrix_norm", x, ord)
    check("linalg.matrix_norm", x, ord, dim=(0, 2), keepdim=True)
    check("linalg.norm", x[0], ord)


def test_norm_rule():
    x = randn(2, 3, 4)
    check("linalg.norm", x)  # all elements, 2-norm
    check("linalg.norm", x, 3, 1)  # int dim: vector norm
    check("linalg.norm", x, None, (1, 2))  # pair: Frobenius
    check("linalg.norm", x[0, 0], INF)  # 1-d: vector
    with pytest.raises(RuntimeError, match="must be 1D or 2D"):
        ops.linalg.norm(jnp.asarray(x), 2)


def test_determinants_and_inverses():
    a = randn(3, 4, 4)
    for name in ("linalg.det", "linalg.slogdet", "linalg.inv", "det", "slogdet", "inverse", "logdet"):
        check(name, a)
    check("linalg.inv_ex", a)
    check("linalg.pinv", randn(3, 5, 4))
    check("linalg.pinv", randn(5, 4), atol=0.5)  # atol: drops small singular values
    check("pinverse", randn(4, 6))
    check("linalg.matrix_rank", np.ones((3, 3), np.float32))
    check("linalg.matrix_rank", randn(2, 5, 4))
    low_rank = randn(6, 2) @ randn(2, 5)
    check("linalg.matrix_rank", low_rank)
    with pytest.raises(RuntimeError, match="singular"):
        ops.linalg.inv(jnp.zeros((3, 3)))


def test_solves():
    a, b = randn(2, 4, 4), randn(2, 4, 3)
    check("linalg.solve", a, b)
    check("linalg.solve", a, randn(2, 4))  # a batch of vectors (B shaped A.shape[:-1])
    check("linalg.solve", a[0], randn(4))
    check("linalg.solve", a, randn(3, 4), left=False)
    check("linalg.solve", a[0], randn(5, 4, 2))  # broadcast batch
    upper = np.triu(randn(2, 4, 4)) + 4 * np.eye(4, dtype=np.float32)
    check("linalg.solve_triangular", upper, b, upper=True)
    check("linalg.solve_triangular", np.swapaxes(upper, -1, -2), b, upper=False, unitriangular=True)
    check("linalg.solve_triangular", upper, randn(2, 3, 4), upper=True, left=False)
    factor = np.linalg.cholesky(spd(2)).astype(np.float32)
    check("cholesky_solve", b, factor)
    check("cholesky_solve", b, np.swapaxes(factor, -1, -2).copy(), True)


def test_decompositions():
    a = spd(3)
    check("linalg.cholesky", a)
    check("linalg.cholesky", a, upper=True)
    check("cholesky", a, True)
    check("linalg.cholesky_ex", a)
    check("linalg.eigvalsh", a)
    check("linalg.svdvals", randn(2, 5, 3))
    m = randn(2, 5, 3)
    for mode in ("reduced", "complete", "r"):  # Householder QR: LAPACK's signs on both sides
        check("linalg.qr", m, mode)
    check("qr", m, False)
    with pytest.raises(RuntimeError, match="not positive-definite"):
        ops.linalg.cholesky(-jnp.eye(3))


@pytest.mark.parametrize("full_matrices", [True, False])
def test_svd_and_eigh_reconstruct_with_torchs_values(full_matrices):
    m = jnp.asarray(randn(2, 5, 3))
    u, s, vh = ops.linalg.svd(m, full_matrices=full_matrices)
    tu, ts, tvh = torch.linalg.svd(torch.from_numpy(np.asarray(m)), full_matrices=full_matrices)
    assert (u.shape, s.shape, vh.shape) == (tuple(tu.shape), tuple(ts.shape), tuple(tvh.shape))
    np.testing.assert_allclose(s, ts.numpy(), rtol=1e-5)
    np.testing.assert_allclose((u[..., :3] * s[..., None, :]) @ vh[..., :3, :], m, atol=1e-5)
    legacy = ops.svd(m, some=not full_matrices)
    v_h = jnp.swapaxes(legacy.V, -1, -2)
    np.testing.assert_allclose((legacy.U[..., :3] * legacy.S[..., None, :]) @ v_h[..., :3, :], m, atol=1e-5)
    assert legacy.V.shape == tuple(torch.svd(torch.from_numpy(np.asarray(m)), some=not full_matrices).V.shape)
    a = jnp.asarray(spd(2))
    w, v = ops.linalg.eigh(a)
    np.testing.assert_allclose(w, torch.linalg.eigh(torch.from_numpy(np.asarray(a))).eigenvalues, rtol=1e-5)
    np.testing.assert_allclose((v * w[..., None, :]) @ jnp.swapaxes(v, -1, -2), a, rtol=1e-4, atol=1e-4)


def test_products_powers_and_others():
    a = randn(3, 4, 4) / 2
    for n in (0, 1, 3, -2):
        check("linalg.matrix_power", a, n, rtol=1e-3, atol=1e-3)
        check("matrix_power", a, n, rtol=1e-3, atol=1e-3)
    check("linalg.matrix_exp", a)
    check("matrix_exp", a[0])
    check("linalg.cross", randn(4, 3), randn(1, 3))
    check("linalg.cross", randn(3, 5), randn(3, 5), dim=0)
    check("linalg.vecdot", randn(3, 4), randn(4))
    check("linalg.multi_dot", [randn(3, 4), randn(4, 5), randn(5, 2)], jit=False)
    check("linalg.multi_dot", [randn(4), randn(4, 5), randn(5)], jit=False)
    check("chain_matmul", randn(3, 4), randn(4, 5), randn(5, 2))
    check("linalg.diagonal", randn(2, 4, 5), offset=1)
    check("linalg.cond", spd(2))
    check("linalg.cond", spd(2), "fro")
    check("dist", randn(3, 4), randn(4), 3)


def test_tensor_methods_port():
    from jnn.port import port_source

    ported = port_source("import torch\ndef f(a, b):\n    return a.det() + a.inverse().sum() + "
                         "torch.linalg.norm(b, dim=1).sum() + torch.svd(a)[0].sum() + a.dist(b)\n")
    for call in ("ops.det(a)", "ops.inverse(a)", "ops.linalg.norm(b", "ops.svd(a)", "ops.dist(a, b)"):
        assert call in ported
    assert "missing" not in ported
