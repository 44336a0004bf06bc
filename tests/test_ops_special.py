"""jnn.ops.special (torch.special) against torch over ordinary values, edges and integer input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jnn import ops

RNG = np.random.default_rng(0)
VALUES = np.concatenate([RNG.uniform(-6, 6, 40), [0.0, 1.0, -1.0, 0.5, 1e-6, 20.0, -20.0]]).astype(np.float32)
POSITIVE = np.concatenate([RNG.uniform(0.01, 10, 40), [1.0, 2.0, 0.5, 30.0]]).astype(np.float32)
UNIT = np.concatenate([RNG.uniform(0.001, 0.999, 40), [0.5]]).astype(np.float32)

UNARY = [("expit", VALUES), ("logit", UNIT), ("erf", VALUES), ("erfc", VALUES), ("erfcx", VALUES),
         ("erfinv", UNIT * 2 - 1), ("exp2", VALUES), ("expm1", VALUES), ("log1p", POSITIVE), ("gammaln", POSITIVE),
         ("digamma", POSITIVE), ("psi", POSITIVE), ("i0", VALUES), ("i0e", VALUES), ("i1", VALUES), ("i1e", VALUES),
         ("modified_bessel_i0", VALUES), ("modified_bessel_i1", VALUES), ("ndtr", VALUES), ("ndtri", UNIT),
         ("log_ndtr", VALUES), ("sinc", VALUES), ("round", VALUES * 3), ("entr", np.abs(VALUES)),
         ("spherical_bessel_j0", VALUES)]


def same(ours, theirs, rtol=2e-5, atol=1e-5):
    assert np.asarray(ours).dtype == theirs.numpy().dtype
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize(("name", "values"), UNARY)
def test_unary(name, values):
    theirs = getattr(torch.special, name)(torch.from_numpy(values))
    fn = getattr(ops.special, name)
    rtol = 1e-4 if name in ("i0", "i1", "modified_bessel_i0", "modified_bessel_i1", "exp2", "erfcx") else 2e-5
    same(fn(jnp.asarray(values)), theirs, rtol)
    same(jax.jit(fn)(jnp.asarray(values)), theirs, rtol)


def test_integer_input_is_computed_in_float():
    ints = np.arange(-3, 4)
    for name in ("expit", "erf", "exp2", "i1e", "ndtr"):
        same(getattr(ops.special, name)(jnp.asarray(ints)), getattr(torch.special, name)(torch.from_numpy(ints)))


def test_binary_and_parameterised():
    x, y = POSITIVE, POSITIVE[::-1].copy()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for name in ("xlogy", "xlog1py", "gammainc", "gammaincc"):
        same(getattr(ops.special, name)(jnp.asarray(x), jnp.asarray(y)), getattr(torch.special, name)(tx, ty),
             rtol=1e-4)
    same(ops.special.zeta(jnp.asarray(x + 1.5), jnp.asarray(y)), torch.special.zeta(tx + 1.5, ty), rtol=1e-4)
    for n in (0, 1, 3):
        same(ops.special.polygamma(n, jnp.asarray(x)), torch.special.polygamma(n, tx), rtol=1e-4, atol=1e-4)
    same(ops.special.multigammaln(jnp.asarray(x + 2), 3), torch.special.multigammaln(tx + 2, 3), rtol=1e-4)
    same(ops.special.logit(jnp.asarray(UNIT), eps=0.1), torch.special.logit(torch.from_numpy(UNIT), eps=0.1))
    m = RNG.standard_normal((3, 5)).astype(np.float32)
    for name in ("softmax", "log_softmax"):
        same(getattr(ops.special, name)(jnp.asarray(m), 1), getattr(torch.special, name)(torch.from_numpy(m), 1))
    same(ops.special.logsumexp(jnp.asarray(m), 0, keepdim=True),
         torch.special.logsumexp(torch.from_numpy(m), 0, keepdim=True))
