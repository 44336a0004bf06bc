"""Arrays, dtypes and devices for the Module core: one helper per concept, shared by the layer files.

Nothing here knows about modules. ``is_tracer`` (is this a value being traced by jit/grad/vmap?),
``as_array`` (user input to a private JAX array), ``torch_dtype_name`` / ``as_dtype`` (torch's dtypes without
importing torch), ``check_float_dtype`` and ``resolve_device`` are the single implementations the rest of jnn
uses.

>>> import jax.numpy as jnp
>>> from jnn._arrays import as_dtype, check_float_dtype
>>> as_dtype("bfloat16"), as_dtype("cpu")
(dtype(bfloat16), None)
>>> check_float_dtype(jnp.int32, "nn.Module.to")
Traceback (most recent call last):
    ...
TypeError: nn.Module.to only accepts floating point or complex dtypes, but got desired dtype=int32
"""

from __future__ import annotations

import math
import mmap
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

try:  # the class of concrete (not traced) arrays
    from jax._src.array import ArrayImpl as _ArrayImpl
except ImportError:  # pragma: no cover - other JAX versions
    _ArrayImpl = jax.Array

try:  # whether no JAX transformation is active (a fast answer for is_staging)
    from jax._src.core import trace_ctx as _trace_context

    _at_top_level = _trace_context.is_top_level
except (ImportError, AttributeError):  # pragma: no cover - other JAX versions
    _at_top_level = lambda: False  # noqa: E731

_STAGING_PROBE = np.float32(0)

try:  # the transfer jax.device_put ends in, for to_device's eager fast path
    from jax._src import config as _jax_config
    from jax._src.interpreters.pxla import batched_device_put as _batched_device_put

    _configured_device = _jax_config.default_device
except (ImportError, AttributeError):  # pragma: no cover - other JAX versions
    _batched_device_put = None
_default_placement: dict = {}  # the default device -> (its sharding, [device])

__all__ = ["is_array", "is_tracer", "is_staging", "is_vmapped", "is_deleted", "as_array", "host_buffer", "host_copy",
           "to_device", "host_view", "default_device", "is_torch_object",
           "torch_dtype_name", "as_dtype",
           "check_float_dtype", "resolve_device", "shape_text", "torch_scalar_name", "check_same_dtype",
           "default_float", "default_complex", "set_default_float"]


def is_array(value: Any) -> bool:
    """A JAX or numpy array (or numpy scalar)."""
    return isinstance(value, (jax.Array, np.ndarray, np.generic))


def is_tracer(value: Any) -> bool:
    """A value being traced by a JAX transformation (jit, grad, vmap, scan...), not a concrete array."""
    return isinstance(value, jax.core.Tracer)


def is_staging() -> bool:
    """Whether code runs under a transformation that stages it (jit, scan, eval_shape): an array made now would be
    a tracer. Under grad and vmap alone, constants stay concrete. Eagerly this costs nothing and compiles nothing."""
    return not _at_top_level() and is_tracer(jax.device_put(_STAGING_PROBE))


def to_device(value: np.ndarray) -> Array:
    """``jax.device_put(value)`` of a filled host array: on the default device, uncommitted (a CPU device adopts a
    :func:`host_buffer` without copying). Eagerly, with no default device configured, it makes the transfer that
    ``jax.device_put`` ends in directly: a seventh of its ~30 us, and building a model places every array."""
    if (_batched_device_put is None or not _at_top_level() or _configured_device.value is not None
            or value.dtype != jax.dtypes.canonicalize_dtype(value.dtype)):
        return jax.device_put(value)
    device = jax.local_devices()[0]
    placement = _default_placement.get(device)
    if placement is None:
        placement = _default_placement[device] = (jax.sharding.SingleDeviceSharding(device), [device])
    aval = jax.core.ShapedArray(value.shape, value.dtype)
    return _batched_device_put(aval, placement[0], [value], placement[1], committed=False)


def default_device() -> Any:
    """The device eager results go to: ``jax.config.jax_default_device`` if set, else the first local device."""
    configured = jax.config.jax_default_device
    if configured is not None:
        return configured
    if not _first_device:
        _first_device.append(jax.local_devices()[0])
    return _first_device[0]


_first_device: list = []


def host_view(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array without copying when it is host data: a NumPy array or scalar, or a concrete JAX
    array on the default device when that is a CPU; None otherwise (tracers, accelerator or sharded arrays)."""
    if type(value) is _ArrayImpl:
        devices = value.devices()
        if len(devices) != 1 or value.is_deleted():
            return None
        device = next(iter(devices))
        return np.asarray(value) if device.platform == "cpu" and device == default_device() else None
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biufc":
        return np.asarray(value)
    return None


def is_vmapped(value: Any) -> bool:
    """A value being traced by ``jax.vmap`` (its tracer class is private to JAX: matched by name)."""
    return isinstance(value, jax.core.Tracer) and type(value).__name__ == "BatchTracer"


def is_deleted(value: Any) -> bool:
    """A concrete JAX array whose buffer was deleted (donated to a jitted call)."""
    return type(value) is _ArrayImpl and value.is_deleted()


_ALIGNMENT = 64
_MAPPED = 1 << 22  # NumPy asks the kernel for huge pages from this size on


def host_buffer(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised host array aligned so that ``jax.device_put`` to a CPU device adopts its memory instead of
    copying it (XLA's CPU client shares host memory aligned to 64 bytes; NumPy's own arrays are aligned to 16).
    Hand it to JAX only once it is filled, and never change it afterwards.

    Large buffers are mapped pages of their own, as torch's allocator gives: NumPy advises the kernel to back
    arrays of 4 MiB and more with huge pages, whose first touch can cost several times as long (compaction)."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    if size >= _MAPPED:
        return np.frombuffer(mmap.mmap(-1, size), dtype).reshape(shape)
    raw = np.empty(size + _ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % _ALIGNMENT
    return raw[start:start + size].view(dtype).reshape(shape)


def as_array(value: Any, owner: str, what: str) -> Array:
    """Turn numpy or dlpack input (torch tensors) into a private JAX array; refuse anything that is not an array."""
    if isinstance(value, jax.Array):
        return value
    # The caller may change its buffer right after (torch training on, `.numpy()` views of its tensors), and JAX
    # transfers host data asynchronously: take a private copy now, as torch's load_state_dict does.
    # (moving a host array compiles nothing; jnp.asarray would compile a copy for every new shape.)
    if isinstance(value, (np.ndarray, np.generic)):
        return to_device(host_copy(value))
    if hasattr(value, "__dlpack__"):  # e.g. a torch tensor, bfloat16 included; copied, never shared
        shared = jnp.from_dlpack(value.detach() if hasattr(value, "detach") else value)
        return to_device(host_copy(np.asarray(shared)))
    raise TypeError(
        f"{owner}: cannot use '{type(value).__name__}' object as {what} (jax.Array or numpy.ndarray required)"
    )


def host_copy(value: np.ndarray | np.generic, dtype: Any = None) -> np.ndarray:
    """A private copy of a host array (cast to ``dtype`` if given) in a :func:`host_buffer`."""
    copy = host_buffer(np.shape(value), np.asarray(value).dtype if dtype is None else dtype)
    np.copyto(copy, value, casting="unsafe")
    return copy


def is_torch_object(value: Any, kind: str) -> bool:
    """``value`` is a torch object of class ``kind`` ('dtype', 'device', 'Tensor'...), checked without importing
    torch."""
    return type(value).__module__.startswith("torch") and type(value).__name__ == kind


def torch_dtype_name(value: Any) -> str | None:
    """``torch.float16`` -> ``'float16'``; None for anything that is not a torch dtype."""
    if is_torch_object(value, "dtype"):
        return str(value).removeprefix("torch.")
    return None


def as_dtype(arg: Any) -> np.dtype | None:
    """A dtype from a dtype-like (``jnp.float16``, ``'bfloat16'``, ``torch.float16``), else None."""
    if isinstance(arg, (jax.Device, jax.sharding.Sharding, int)) or is_torch_object(arg, "device"):
        return None
    name = torch_dtype_name(arg)
    try:
        return jnp.dtype(arg if name is None else name)
    except TypeError:
        return None


def check_float_dtype(dtype: Any, who: str) -> np.dtype:
    """``dtype`` as a numpy dtype if it is floating point or complex (and usable in this JAX mode), else TypeError."""
    name = torch_dtype_name(dtype)
    dtype = jnp.dtype(dtype if name is None else name)
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(f"{who} only accepts floating point or complex dtypes, but got desired dtype={dtype}")
    if dtype.itemsize == 8 and dtype.kind == "f" or dtype == jnp.complex128:
        if not jax.config.jax_enable_x64:
            raise TypeError(
                f"{who}: {dtype} needs 64-bit mode in JAX, which is off. Enable it at start-up with "
                "jax.config.update('jax_enable_x64', True) (or JAX_ENABLE_X64=1)."
            )
    return dtype


# torch's default floating dtype (``torch.set_default_dtype``): what layers create their parameters in and what
# Python floats become; one per process, as torch's
_default_float = [np.dtype(np.float32)]


def default_float() -> np.dtype:
    """The default floating dtype: float32 unless :func:`set_default_float` changed it."""
    return _default_float[0]


def default_complex() -> np.dtype:
    """The complex dtype that goes with it, as torch's: complex128 for float64, else complex64 (JAX has no
    complex32, torch's for float16)."""
    return np.dtype(np.complex128 if _default_float[0] == np.float64 else np.complex64)


def set_default_float(dtype: Any, who: str) -> None:
    """Make ``dtype`` (float16, bfloat16, float32, or float64 in JAX's 64-bit mode) the default floating dtype."""
    name = torch_dtype_name(dtype)
    if not jnp.issubdtype(jnp.dtype(dtype if name is None else name), jnp.floating):
        raise TypeError(f"{who}: only floating-point types are supported as the default type, got {dtype}")
    _default_float[0] = np.dtype(check_float_dtype(dtype, who))

def resolve_device(device: Any, who: str = "Module.to") -> Any:
    """'cpu', 'cuda', 'cuda:1', 'gpu', 'tpu:0', a torch.device, a jax.Device or a jax Sharding; None passes.
    ``who`` starts the error messages (the API the user called)."""
    if isinstance(device, (jax.Device, jax.sharding.Sharding)):
        return device
    if device is None:
        return None
    if isinstance(device, int):
        device = f"cuda:{device}"
    if not isinstance(device, str) and hasattr(device, "type"):  # torch.device, without importing torch
        device = device.type + ("" if getattr(device, "index", None) is None else f":{device.index}")
    if not isinstance(device, str):
        raise TypeError(f"{who}: expected a device string, jax.Device or Sharding, got {device!r}")
    match = re.fullmatch(r"(cpu|cuda|gpu|rocm|tpu)(?::(\d+))?", device.strip())
    if match is None:
        raise ValueError(f"{who}: unknown device {device!r}; expected e.g. 'cpu', 'cuda', 'cuda:0', 'gpu'")
    kind, index = match.group(1), int(match.group(2) or 0)
    platform = {"cuda": "gpu", "rocm": "gpu"}.get(kind, kind)
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    if not devices:
        available = sorted({d.platform for d in jax.devices()})
        raise RuntimeError(
            f"{who}({device!r}): JAX sees no {platform.upper()} device on this machine (available: "
            f"{', '.join(available)}). Install a JAX build for your accelerator (e.g. pip install "
            "'jax[cuda12]') or use 'cpu'."
        )
    if index >= len(devices):
        raise RuntimeError(f"{who}({device!r}): only {len(devices)} {platform} device(s) are available")
    return devices[index]


_TORCH_SCALAR_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
                       "int32": "Int", "int64": "Long", "int16": "Short", "int8": "Char", "uint8": "Byte",
                       "bool": "Bool", "complex64": "ComplexFloat", "complex128": "ComplexDouble"}


def torch_scalar_name(dtype: Any) -> str:
    """torch's name for a dtype in its messages (``float32`` -> ``'Float'``, ``int32`` -> ``'Int'``)."""
    name = str(jnp.dtype(dtype))
    return _TORCH_SCALAR_NAMES.get(name, name)


def check_same_dtype(input: Array, weight: Array, fn: str) -> None:
    """torch refuses a layer input whose dtype differs from its weight's (no silent promotion): so does jnn."""
    if input.dtype != weight.dtype:
        a, b = torch_scalar_name(input.dtype), torch_scalar_name(weight.dtype)
        if fn == "linear":  # torch's own words
            raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {a} and {b}")
        raise RuntimeError(
            f"{fn}: Input type ({a}) and weight type ({b}) should be the same; cast the input "
            f"(x.astype(...)) or the module (.to(dtype))"
        )


def shape_text(shape: tuple[int, ...]) -> str:
    """PyTorch's wording for a shape (``torch.Size([2, 3])``), so messages match torch's character for character."""
    return f"torch.Size({list(shape)})"
