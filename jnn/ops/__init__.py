"""torch's tensor API as functions over JAX arrays: what ``torch.xxx(...)`` and ``tensor.xxx(...)`` mean in model code.

``import torch`` becomes ``from jnn import ops``: torch functions keep their names and signatures (``ops.cat(xs,
dim=1)``, ``ops.zeros(2, 3)``, ``ops.max(x, dim=1)``), and each Tensor method is a function taking the tensor first
(``x.view(b, -1)`` -> ``ops.view(x, b, -1)``), with torch's meaning (``dim=``/``keepdim=``, negative dims,
``transpose(a, b)`` swapping two axes, ``max(dim)`` giving ``(values, indices)``). A method-function given something
that is not an array calls that object's own method, so ``ops.split("a b", " ")`` is ``"a b".split(" ")``.
In-place methods (:data:`INPLACE`: ``add_``, ``zero_``, ...) return the new array.

Everything traces under ``jax.jit``; the few functions whose result depends on values (``item``, ``tolist``,
``nonzero``, ``masked_select``, ``unique``) raise a clear error there, naming what to use instead. Without
``jax_enable_x64``, torch's int64 results (``long()``, ``arange(5)``, indices) are int32 and float64 is float32.
Eagerly, on concrete CPU arrays, most of them compile nothing per new shape (``jnn.ops._eager``: creation, reshapes,
stacking and element updates are made in NumPy, elementwise math runs in fixed-size chunks), as model code that
does tensor math while building needs.

>>> import jax, jax.numpy as jnp
>>> from jnn import ops
>>> x = jnp.arange(24.0).reshape(2, 3, 4)
>>> ops.view(ops.transpose(x, 1, 2), 2, -1).shape, ops.max(x, dim=-1).indices.tolist()
((2, 12), [[3, 3, 3], [3, 3, 3]])
>>> jax.jit(lambda x: ops.masked_fill(x, ops.tril(ops.ones(3, 4, dtype=ops.bool)) == 0, 0.0))(x).shape
(2, 3, 4)
>>> "split" in ops.METHODS, "add_" in ops.INPLACE
(True, True)
"""

from jnn.ops import _C as _C  # torch._C shims that model code calls
from jnn.ops import autograd as autograd  # torch.autograd.Function as jax.custom_vjp
from jnn.ops import creation, dtypes, indexing, inplace, matrix, misc, nn, pointwise, reduction, shape, spectral
from jnn.ops import fft as fft  # torch.fft
from jnn.ops import foreach as foreach  # torch._foreach_*: EMA and optimiser code
from jnn.ops import func as func  # torch.func
from jnn.ops import hub as hub  # torch.hub
from jnn.ops import linalg as linalg  # torch.linalg
from jnn.ops import ops as ops  # torch.ops: custom operator namespaces (torchvision's)
from jnn.ops import special as special  # torch.special
from jnn.ops import utils as utils  # torch.utils._pytree
from jnn.ops._core import INPLACE as _INPLACE
from jnn.ops._core import METHODS as _METHODS
from jnn.ops._port import at as at
from jnn.ops._port import attr as attr
from jnn.ops._port import data as data
from jnn.ops._port import set_data as set_data
from jnn.ops._port import store as store
from jnn.ops.creation import *  # noqa: F403
from jnn.ops.dtypes import *  # noqa: F403
from jnn.ops.foreach import *  # noqa: F403
from jnn.ops.func import vmap as vmap  # torch.vmap
from jnn.ops.indexing import *  # noqa: F403
from jnn.ops.inplace import *  # noqa: F403
from jnn.ops.matrix import *  # noqa: F403
from jnn.ops.misc import *  # noqa: F403
from jnn.ops.nn import *  # noqa: F403
from jnn.ops.pointwise import *  # noqa: F403
from jnn.ops.reduction import *  # noqa: F403
from jnn.ops.shape import *  # noqa: F403
from jnn.ops.spectral import *  # noqa: F403

METHODS: frozenset[str] = frozenset(_METHODS)
"""Every Tensor method name that has a method-function here (``view``, ``size``, ``float``, ``add_``, ...)."""
INPLACE: frozenset[str] = frozenset(_INPLACE)
"""The in-place method names (``add_``, ``zero_``, ``normal_``, ...); their functions return the new array."""

__all__ = sorted({*creation.__all__, *dtypes.__all__, *foreach.__all__, *indexing.__all__, *inplace.__all__,
                  *matrix.__all__, *misc.__all__, *nn.__all__, *pointwise.__all__, *reduction.__all__, *shape.__all__,
                  *spectral.__all__, "at", "attr", "data", "set_data", "store", "vmap", "METHODS", "INPLACE"})
