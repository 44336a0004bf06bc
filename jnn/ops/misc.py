"""Shims for the rest of torch's tensor API: host values (``item``, ``tolist``), autograd names that have no tape
in JAX (``detach``, ``no_grad``, ``requires_grad_``), devices (``cpu``, ``cuda``), ``torch.jit``/``torch.fx``
decorators that model code uses, ``_assert``, and constants.

JAX has no autograd tape: gradients are taken by ``jax.grad`` of a function. ``no_grad()`` switches torch's grad
mode flag (``is_grad_enabled()``) and cuts from the gradient what leaves it: a decorated function's results, and
in ported code the values stored in its ``with`` block; ``detach`` (``jax.lax.stop_gradient``) cuts one path.

>>> import jax, jax.numpy as jnp
>>> with no_grad():
...     y = jnp.ones(2) * 2
>>> item(y[0]), jax.grad(lambda x: x * detach(x))(3.0).tolist(), jit.is_scripting()
(2.0, 3.0, False)
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import math
import operator
import re
import threading
import types
import typing
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn import _sparse
from jnn import random as _random
from jnn._arrays import is_staging
from jnn.ops import _eager
from jnn.ops._core import METHODS, call_receiver, concrete, is_array, is_traced, method

__all__ = [
    "item", "tolist", "numpy", "detach", "clone", "cpu", "cuda", "requires_grad_", "no_grad", "enable_grad",
    "inference_mode", "set_grad_enabled", "is_grad_enabled", "is_inference_mode_enabled", "detach_if_no_grad",
    "is_tensor",
    "is_autocast_enabled", "are_deterministic_algorithms_enabled", "use_deterministic_algorithms", "compile", "jit",
    "fx", "compiler", "_dynamo", "distributed", "library", "version", "_assert", "manual_seed", "initial_seed", "pi",
    "e", "inf", "nan", "get_device", "autocast", "amp", "backends", "xpu", "mps", "contiguous_format", "channels_last",
    "channels_last_3d", "preserve_format", "strided", "accelerator", "__version__", "to_sparse", "sparse_coo",
]

pi = math.pi
e = math.e
inf = math.inf
nan = math.nan
manual_seed = _random.manual_seed
initial_seed = _random.initial_seed
# memory formats and layouts: accepted (``x.contiguous(memory_format=ops.channels_last)``), meaningless for JAX arrays
contiguous_format = "contiguous_format"
channels_last = "channels_last"
channels_last_3d = "channels_last_3d"
preserve_format = "preserve_format"
strided = "strided"
sparse_coo = _sparse.sparse_coo


@method
def item(input: Any) -> Any:
    """The value of a one-element array as a python number. Eager only."""
    concrete(input, "item", "Keep it as a 0-d array (arithmetic and comparisons work on it), or call item() "
                            "outside the jitted function.")
    if np.size(input) != 1:
        raise ValueError(f"jnn.ops.item: the array has {np.size(input)} elements, expected one")
    return np.asarray(input).reshape(()).item()


@method
def tolist(input: Any) -> Any:
    """The array as nested python lists. Eager only."""
    concrete(input, "tolist", "Keep it as an array, or call tolist() outside the jitted function.")
    return np.asarray(input).tolist()


@method
def numpy(input: Any, *, force: builtins.bool = False) -> np.ndarray:
    """The array as a numpy array. Eager only."""
    concrete(input, "numpy", "Keep it as a JAX array, or convert outside the jitted function.")
    return np.asarray(input)


@method
def detach(input: Any) -> jax.Array:
    """The same values with the gradient path cut (``jax.lax.stop_gradient``)."""
    return jax.lax.stop_gradient(input)


@method
def clone(input: Any, *, memory_format: Any = None) -> jax.Array:
    """A copy: a new array, as torch's is a new tensor (jnn ties module slots by array identity, so a buffer made as
    another's clone must not be the same array); under ``jit`` the copy costs nothing.

    >>> import jax.numpy as jnp
    >>> x = jnp.ones(2)
    >>> clone(x) is x, clone(x).tolist()
    (False, [1.0, 1.0])
    """
    views = _eager.host(input)  # a concrete CPU array: copied on the host, no compile per shape
    return _eager.placed(views[0]) if views is not None else jnp.array(input, copy=True)


@method
def to_sparse(input: Any, sparse_dim: int | None = None, *, layout: Any = None, blocksize: Any = None,
              dense_dim: int | None = None) -> _sparse.SparseCOOTensor:
    """torch's ``x.to_sparse()``: a sparse COO tensor (:class:`jnn._sparse.SparseCOOTensor`, with torch's
    ``indices()``, ``values()``, ``to_dense()``) of a concrete array; ``sparse_dim`` makes a hybrid one (positions over
    the first ``sparse_dim`` dims, dense values below). Only the COO layout exists in jnn; the positions depend on the
    values, so under ``jit`` it raises.

    >>> import jax.numpy as jnp
    >>> s = to_sparse(jnp.array([[0, 0], [0, 5]]))
    >>> s.indices().tolist(), s.values().tolist(), s.layout
    ([[1], [1]], [5], 'sparse_coo')
    """
    if layout not in (None, sparse_coo) or blocksize is not None:
        raise NotImplementedError(f"jnn.ops.to_sparse: jnn has sparse COO tensors only (layout=ops.sparse_coo), "
                                  f"not {layout!r}")
    if dense_dim is not None:
        sparse_dim = np.ndim(input) - dense_dim if sparse_dim is None else sparse_dim
        if sparse_dim + dense_dim != np.ndim(input):
            raise RuntimeError(f"to_sparse: sparse_dim {sparse_dim} + dense_dim {dense_dim} must be the number of "
                               f"dims, {np.ndim(input)}")
    concrete(input, "to_sparse", "Make the sparse tensor outside the jitted function (a buffer made at construction).")
    return _sparse.dense_to_sparse(input, sparse_dim)


@method
def cpu(input: Any, memory_format: Any = None) -> Any:
    """The array itself (JAX places arrays; use ``jax.device_put`` to move one)."""
    return input


@method
def requires_grad_(input: Any, requires_grad: builtins.bool = True) -> Any:
    """The array itself: JAX differentiates with respect to function arguments, not flagged arrays."""
    return input


@method
def get_device(input: Any) -> builtins.int:
    """-1 (torch's answer for CPU tensors; JAX arrays can span devices: see ``x.devices()``)."""
    return -1


class _Cuda:
    """``x.cuda()`` (the array itself, as :func:`cpu`) and the ``torch.cuda`` names model code checks
    (``is_available()`` is False: jnn code never needs to move arrays to a device by hand)."""

    __name__ = "cuda"

    def __init__(self) -> None:
        METHODS.add("cuda")

    def __call__(self, input: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_array(input):
            return call_receiver(input, "cuda", args, kwargs)
        return input

    @staticmethod
    def is_available() -> builtins.bool:
        return False

    @staticmethod
    def device_count() -> builtins.int:
        return 0

    @staticmethod
    def synchronize(device: Any = None) -> None:
        return None

    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def manual_seed(seed: builtins.int) -> None:
        _random.manual_seed(seed)

    manual_seed_all = manual_seed
    amp = types.SimpleNamespace(autocast=lambda *args, **kwargs: autocast("cuda", *args, **kwargs))


cuda = _Cuda()


class _GradState(threading.local):
    enabled = True
    inference = False


_grad_state = _GradState()


def detach_if_no_grad(value: Any) -> Any:
    """``value`` with every array in it (in tuples, lists and dicts) cut from the gradient while grad mode is off
    (inside :func:`no_grad`, ``inference_mode()``, ``set_grad_enabled(False)``), else ``value`` itself: torch's
    tensors made there require no gradient. ``python -m jnn.port`` wraps the values stored and returned inside such
    blocks with it.

    >>> import jax
    >>> def f(x):
    ...     with no_grad():
    ...         y = detach_if_no_grad(x * x)
    ...     return x * y
    >>> float(jax.grad(f)(3.0)), float(jax.grad(lambda x: x * detach_if_no_grad(x * x))(3.0))
    (9.0, 27.0)
    """
    if _grad_state.enabled:
        return value
    return jax.tree_util.tree_map(lambda v: jax.lax.stop_gradient(v) if isinstance(v, jax.Array) else v, value,
                                  is_leaf=lambda v: not isinstance(v, (tuple, list, dict)))


class _GradMode:
    """torch's grad-mode switch (``no_grad()``, ``enable_grad()``, ``inference_mode()``, ``set_grad_enabled()``):
    inside it :func:`is_grad_enabled` says ``enabled``; as a decorator, the function runs in that mode, and with
    grad mode off its array results are cut from the gradient (:func:`detach_if_no_grad`), as torch's would
    require no gradient."""

    def __init__(self, enabled: builtins.bool, inference: builtins.bool = False) -> None:
        self.enabled, self.inference = builtins.bool(enabled), builtins.bool(inference)
        self._saved: list[tuple[builtins.bool, builtins.bool]] = []  # the modes to go back to, innermost last

    def _switch(self) -> None:
        self._saved.append((_grad_state.enabled, _grad_state.inference))
        _grad_state.enabled, _grad_state.inference = self.enabled, self.inference

    def __enter__(self) -> _GradMode:
        self._switch()
        return self

    def __exit__(self, *exc: Any) -> builtins.bool:
        if self._saved:
            _grad_state.enabled, _grad_state.inference = self._saved.pop()
        return False

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _GradMode(self.enabled, self.inference):
                return detach_if_no_grad(func(*args, **kwargs))

        return run

    def clone(self) -> _GradMode:
        return _GradMode(self.enabled, self.inference)


class _SetGradEnabled(_GradMode):
    """``set_grad_enabled(mode)``: switches when made; as a context manager, switches back on exit."""

    def __init__(self, enabled: builtins.bool) -> None:
        super().__init__(enabled)
        self._switch()

    def __enter__(self) -> _SetGradEnabled:
        return self


def _mode(func: Any, enabled: builtins.bool, inference: builtins.bool = False) -> Any:
    mode = _GradMode(enabled, inference)
    return mode(func) if callable(func) else mode  # used bare as a decorator (@torch.no_grad), or called


def no_grad(func: Callable | None = None) -> Any:
    """torch's ``no_grad``, a context manager and decorator: inside, :func:`is_grad_enabled` is False, and what
    is computed there is cut from the gradient where it leaves: a decorated function's results, and (in ported
    code) the values stored inside a ``with`` block (:func:`detach_if_no_grad`). JAX has no tape to switch off: a
    ``with no_grad():`` block in hand-written code cuts nothing by itself; use :func:`detach` there.

    >>> import jax
    >>> scaled = no_grad()(lambda x: 2 * x)
    >>> float(jax.grad(lambda x: x * scaled(x))(3.0))
    6.0
    """
    return _mode(func, False)


def enable_grad(func: Callable | None = None) -> Any:
    """torch's ``enable_grad``: grad mode on inside (within a :func:`no_grad`, say)."""
    return _mode(func, True)


def inference_mode(mode: Any = True) -> Any:
    """torch's ``inference_mode``: as :func:`no_grad` (``mode=False``: no change), and
    :func:`is_inference_mode_enabled` is True inside."""
    if callable(mode):
        return _mode(mode, False, True)
    return _GradMode(not mode, builtins.bool(mode)) if mode else _GradMode(_grad_state.enabled,
                                                                           _grad_state.inference)


def set_grad_enabled(mode: builtins.bool) -> _SetGradEnabled:
    """torch's ``set_grad_enabled``: sets grad mode when called (a statement switches it until switched back), and
    as a context manager restores the previous mode on exit.

    >>> with set_grad_enabled(False):
    ...     is_grad_enabled()
    False
    >>> is_grad_enabled()
    True
    """
    return _SetGradEnabled(mode)


def is_grad_enabled() -> builtins.bool:
    """Whether grad mode is on (torch's flag: off inside :func:`no_grad`). Gradients themselves are taken by
    ``jax.grad``, wherever it is applied."""
    return _grad_state.enabled


def is_inference_mode_enabled() -> builtins.bool:
    """Whether code runs inside ``inference_mode()``."""
    return _grad_state.inference


def is_tensor(obj: Any) -> builtins.bool:
    """Whether ``obj`` is an array (JAX array or tracer, numpy array)."""
    return is_array(obj)


def is_autocast_enabled(*args: Any) -> builtins.bool:
    """False: jnn has no autocast state (see ``jnn.amp`` for mixed precision)."""
    return False


def are_deterministic_algorithms_enabled() -> builtins.bool:
    """False (torch's default); JAX on CPU is deterministic either way."""
    return False


def use_deterministic_algorithms(mode: builtins.bool, *, warn_only: builtins.bool = False) -> None:
    """Accepted and ignored (XLA has its own flags, e.g. ``--xla_gpu_deterministic_ops``)."""


def compile(model: Any = None, **kwargs: Any) -> Any:
    """``torch.compile``: returns ``model`` as it is (as a decorator too); compile with ``jax.jit`` instead."""
    if model is None:
        return lambda m: m
    return model


class autocast(contextlib.ContextDecorator):
    """``torch.autocast(device_type, dtype=...)`` as a context manager / decorator that changes nothing: code inside
    runs in the arrays' own dtypes. For mixed precision use :mod:`jnn.amp` (a policy over a whole model)."""

    def __init__(self, device_type: str = "cuda", dtype: Any = None, enabled: builtins.bool = True,
                 cache_enabled: Any = None) -> None:
        self.enabled = enabled

    def __enter__(self) -> autocast:
        return self

    def __exit__(self, *exc: Any) -> builtins.bool:
        return False


amp = types.SimpleNamespace(autocast=autocast)
"""``torch.amp`` / ``torch.cuda.amp``: :class:`autocast` (which changes nothing; see :mod:`jnn.amp`)."""

backends = types.SimpleNamespace(
    cudnn=types.SimpleNamespace(benchmark=False, deterministic=False, enabled=True, allow_tf32=True,
                                is_available=lambda: False),
    cuda=types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=False),
                               is_built=lambda: False),
    mps=types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False),
)
"""``torch.backends`` flags that scripts set (``torch.backends.cudnn.benchmark = True``): accepted, without effect
(XLA chooses its own kernels)."""


xpu = types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0, synchronize=lambda device=None: None,
                            empty_cache=lambda: None)
"""``torch.xpu``'s availability checks, which library code calls unguarded: no XPU (JAX places arrays itself)."""

mps = types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0, synchronize=lambda: None,
                            empty_cache=lambda: None)
"""``torch.mps``'s, the same: no MPS device."""

version = types.SimpleNamespace(cuda=None, hip=None, xpu=None, debug=False)
"""``torch.version``'s build facts that code checks (``torch.version.cuda``, ``torch.version.hip``): None, as for a
CPU-only torch build (XLA picks the backend; ask ``jax.default_backend()``)."""

def _version_key(version: Any) -> tuple:
    """``version`` (a string such as ``"2.4.0"`` or ``"2.5.0.dev20240101"``, or a tuple of ints) as a sortable key:
    the release numbers without trailing zeros, then -1 for a pre-release or dev build, 1 for a post-release or a
    local build (``+cpu``), 0 for the release itself, then the rest of the text."""
    text = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
    match = re.match(r"v?(\d+(?:\.\d+)*)(.*)", text.strip())
    if match is None:
        raise ValueError(f"{version!r} is not a version")
    release = tuple(builtins.int(p) for p in match.group(1).split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    rest = match.group(2).lower()
    stage = -1 if re.match(r"[.\-_]?(dev|a|alpha|b|beta|c|rc|pre)", rest) else 1 if rest else 0
    return release, stage, rest


class _TorchVersion(str):
    """``torch.__version__``: a string that compares as a version with strings and tuples (``"2.13.0" >= "2.4"``
    and ``>= (2, 4)`` are True), as torch's ``TorchVersion`` does.

    >>> _TorchVersion("2.13.0") >= "2.4.0", _TorchVersion("2.13.0") < (2, 14), _TorchVersion("2.13.0") == "2.13"
    (True, True, True)
    """

    def _compare(self, other: Any, op: Callable[[Any, Any], builtins.bool]) -> Any:
        if not isinstance(other, (str, tuple)):
            return NotImplemented
        return op(_version_key(self), _version_key(other))

    def __lt__(self, other: Any) -> Any:
        return self._compare(other, operator.lt)

    def __le__(self, other: Any) -> Any:
        return self._compare(other, operator.le)

    def __gt__(self, other: Any) -> Any:
        return self._compare(other, operator.gt)

    def __ge__(self, other: Any) -> Any:
        return self._compare(other, operator.ge)

    def __eq__(self, other: Any) -> Any:
        return self._compare(other, operator.eq)

    def __ne__(self, other: Any) -> Any:
        return self._compare(other, operator.ne)

    __hash__ = str.__hash__


__version__ = _TorchVersion("2.13.0")
"""``torch.__version__``: the torch release whose API jnn follows and is tested against, so that model code
choosing a code path by torch version (``if torch.__version__ >= "2.4.0":``) takes the current one."""

accelerator = types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0,
                                    current_accelerator=lambda check_available=False: None)
"""``torch.accelerator``'s queries, answered as by a CPU-only torch build (no accelerator; as ``cuda.is_available()``
says): code that picks a device with them gets ``cpu``, and JAX places arrays by itself."""


def _identity_decorator(fn: Any = None, **kwargs: Any) -> Any:
    """``@deco`` and ``@deco(...)`` both return the function unchanged."""
    if fn is None or not callable(fn):
        return lambda f: f
    return fn


def _never() -> builtins.bool:
    """False: the torch.jit/torch.compiler state queries (nothing is scripted, traced or compiled by torch here)."""
    return False


class _Jit:
    """torch.jit names that model code uses: no TorchScript here, so ``is_scripting()``/``is_tracing()`` are False
    and the decorators return their function. Under ``jax.jit``, ``is_tracing()`` is still False: code behind it
    is TorchScript/ONNX-specific."""

    Final = typing.Final
    annotations = types.SimpleNamespace(BroadcastingList1=list, BroadcastingList2=list, BroadcastingList3=list,
                                        Optional=typing.Optional, Union=typing.Union, Any=Any, List=list,
                                        Tuple=tuple, Dict=dict)
    unused = staticmethod(_identity_decorator)
    ignore = staticmethod(_identity_decorator)
    export = staticmethod(_identity_decorator)
    script = staticmethod(_identity_decorator)
    script_if_tracing = staticmethod(_identity_decorator)
    _script_if_tracing = staticmethod(_identity_decorator)
    _overload_method = staticmethod(_identity_decorator)
    _overload = staticmethod(_identity_decorator)
    interface = staticmethod(_identity_decorator)

    is_scripting = staticmethod(_never)
    is_tracing = staticmethod(_never)

    @staticmethod
    def annotate(the_type: Any, the_value: Any) -> Any:
        return the_value

    @staticmethod
    def Attribute(value: Any, type: Any = None) -> Any:  # noqa: N802 (torch's name)
        return value


class _Fx:
    """torch.fx names that model code uses: ``wrap`` marks a function for symbolic tracing; here it returns it."""

    @staticmethod
    def wrap(fn_or_name: Any) -> Any:
        return fn_or_name


class _Compiler:
    """torch.compiler names that model code uses: ``disable`` returns its function (as ``@disable`` and
    ``@disable(recursive=False)``). ``is_compiling()`` is True while ``jax.jit`` (or scan, eval_shape) stages the
    code: model code guards data-dependent Python branches with it, which a staged trace cannot take either, as under
    torch.compile. ``is_exporting()`` is False: nothing is exported."""

    disable = staticmethod(_identity_decorator)
    assume_constant_result = staticmethod(_identity_decorator)
    allow_in_graph = staticmethod(_identity_decorator)

    is_compiling = staticmethod(is_staging)
    is_dynamo_compiling = staticmethod(is_staging)
    is_exporting = staticmethod(_never)


class _Dynamo(_Compiler):
    """torch._dynamo names that model code uses: :class:`_Compiler`'s decorators and queries, and
    ``mark_static_address`` (a hint for torch.compile's CUDA graphs, here nothing to do)."""

    @staticmethod
    def mark_static_address(t: Any, guard: builtins.bool = True) -> None:
        return None


class _Distributed:
    """torch.distributed's availability queries, which model code asks before using a process group: there are no
    torch process groups here, so ``is_available()`` and ``is_initialized()`` are False (several JAX processes are
    :mod:`jnn.distributed`'s business; sharding is :mod:`jnn.sharding`'s)."""

    is_available = staticmethod(_never)
    is_initialized = staticmethod(_never)


class _Library:
    """torch.library's registration of custom operators, as libraries do at import time: a custom op here is its
    Python function (JAX traces it for shapes, so ``register_fake`` has nothing to add, and differentiates it, so a
    backward given to ``register_autograd`` is not used: its gradients are the function's own). ``custom_op`` returns
    the function, as a call and as a decorator (``@torch.library.custom_op("ns::name", mutates_args=())``)."""

    @staticmethod
    def custom_op(name: str, fn: Callable | None = None, /, *, mutates_args: Any = (), device_types: Any = None,
                  schema: str | None = None, tags: Any = None) -> Any:
        if fn is None:
            return lambda f: f
        return fn

    @staticmethod
    def register_fake(op: Any, fn: Callable | None = None, /, *, lib: Any = None, _stacklevel: builtins.int = 1,
                      allow_override: builtins.bool = False) -> Any:
        if fn is None:
            return lambda f: f
        return fn

    @staticmethod
    def register_autograd(op: Any, backward: Callable, /, *, setup_context: Callable | None = None,
                          lib: Any = None) -> None:
        return None


jit = _Jit()
fx = _Fx()
library = _Library()
compiler = _Compiler()
_dynamo = _Dynamo()
distributed = _Distributed()


def _assert(condition: Any, message: Any) -> None:
    """``assert condition, message`` (torch's traceable assert). A condition traced by ``jit`` cannot be checked
    when tracing and is skipped; conditions on shapes are python bools under ``jit`` and are checked."""
    if is_traced(condition):
        return
    if not builtins.bool(condition):
        raise AssertionError(message)
