"""``torch.special``: special functions over JAX arrays with torch's names and signatures. Integer input is
computed in the default float dtype, as torch does.

>>> import jax.numpy as jnp
>>> from jnn import ops
>>> ops.special.expit(jnp.array([0.0])).tolist(), ops.special.xlog1py(jnp.array([0.0]), jnp.array([-1.0])).tolist()
([0.5], [0.0])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special as jss

from jnn.ops import pointwise, reduction
from jnn.ops._core import floating

__all__ = ["expit", "logit", "erf", "erfc", "erfcx", "erfinv", "exp2", "expm1", "log1p", "gammaln", "digamma", "psi",
           "polygamma", "multigammaln", "i0", "i0e", "i1", "i1e", "modified_bessel_i0", "modified_bessel_i1", "ndtr",
           "ndtri", "log_ndtr", "sinc", "round", "xlogy", "xlog1py", "zeta", "entr", "gammainc", "gammaincc",
           "spherical_bessel_j0", "softmax", "log_softmax", "logsumexp"]


def _unary(fn: Callable, name: str) -> Callable:
    def special(input: Any, *, out: Any = None) -> jax.Array:
        return fn(*floating(input))

    special.__name__ = special.__qualname__ = name
    special.__doc__ = f"torch.special.{name}, elementwise."
    return special


def _binary(fn: Callable, name: str) -> Callable:
    def special(input: Any, other: Any, *, out: Any = None) -> jax.Array:
        return fn(*floating(input, other))

    special.__name__ = special.__qualname__ = name
    special.__doc__ = f"torch.special.{name}, elementwise (broadcast)."
    return special


expit = pointwise.sigmoid
logit = pointwise.logit
erf, erfc, erfinv = pointwise.erf, pointwise.erfc, pointwise.erfinv
expm1, log1p, sinc, round = pointwise.expm1, pointwise.log1p, pointwise.sinc, pointwise.round
digamma = psi = pointwise.digamma
gammaln = pointwise.lgamma
i0 = modified_bessel_i0 = pointwise.i0
xlogy = pointwise.xlogy
gammainc, gammaincc = pointwise.igamma, pointwise.igammac
polygamma, multigammaln = pointwise.polygamma, pointwise.mvlgamma
softmax, log_softmax, logsumexp = reduction.softmax, reduction.log_softmax, reduction.logsumexp

erfcx = _unary(jss.erfcx, "erfcx")
exp2 = _unary(jnp.exp2, "exp2")
i0e = _unary(jss.i0e, "i0e")
i1 = modified_bessel_i1 = _unary(jss.i1, "i1")
i1e = _unary(jss.i1e, "i1e")
ndtr = _unary(jss.ndtr, "ndtr")
ndtri = _unary(jss.ndtri, "ndtri")
log_ndtr = _unary(jss.log_ndtr, "log_ndtr")
entr = _unary(jss.entr, "entr")
xlog1py = _binary(jss.xlog1py, "xlog1py")
zeta = _binary(jss.zeta, "zeta")


def spherical_bessel_j0(input: Any, *, out: Any = None) -> jax.Array:
    """``sin(x) / x`` (1 at 0)."""
    (x,) = floating(input)
    safe = jnp.where(x == 0, 1, x)
    return jnp.where(x == 0, 1, jnp.sin(safe) / safe)
