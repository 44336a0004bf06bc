"""Multi-device training with :mod:`jax.sharding`: data parallel and fully sharded parameters.

jnn does not bring its own distributed engine. A model is a pytree of ``jax.Array``; placing those arrays
with :class:`jax.sharding.NamedSharding` over a :class:`jax.sharding.Mesh` is all it takes, and ``jax.jit``
(XLA's SPMD partitioner) inserts the collectives. These helpers build the shardings from ``state_dict``
names:

- :func:`make_mesh` — a mesh over every device (all processes), with automatic (GSPMD) axes.
- :func:`data_parallel` — shardings for the batch (split on dim 0) and the parameters (replicated).
- :func:`partition` — place parameters by *rules*: an ordered list of ``(pattern, PartitionSpec)``, where
  ``pattern`` is a glob (``"*.weight"``) or a compiled regex matched against the whole name; the first rule
  that matches wins; a name no rule matches is replicated. :func:`named_shardings` gives the same
  placement as a dict of shardings (for ``jax.jit(..., out_shardings=...)``), :func:`fsdp_rules` ready-made
  rules that shard every array along its largest evenly divisible dimension.
- :func:`shard_batch` — a batch as one global array split over the data axis (on several hosts, each
  process passes its own part).
- :func:`save_sharded` / :func:`load_sharded` — a state dict as a sharded checkpoint directory
  (orbax-checkpoint, the optional extra ``jnn[orbax]``): each process writes and reads only its own shards,
  keys are the ``state_dict`` names, and a checkpoint restores onto another mesh or sharding.

Everything works on the flat dicts of :func:`jnn.split` and on a ``Module`` (placed in place, like
``net.to(sharding)``). On one device it all still runs:

>>> import jax, jnn
>>> from jax.sharding import PartitionSpec as P
>>> mesh = jnn.sharding.make_mesh()                       # every device on one axis named "data"
>>> net = jnn.Sequential(jnn.Linear(4, 8), jnn.BatchNorm1d(8), jnn.ReLU(), jnn.Linear(8, 2))
>>> apply, params, buffers = jnn.split(net)
>>> params = jnn.sharding.partition(params, mesh, [("*.weight", P("data")), ("*", P())])
>>> params["0.weight"].sharding.spec
P('data',)
>>> x = jnn.sharding.shard_batch(jax.numpy.ones((8, 4)), mesh)
>>> out, buffers = jax.jit(apply)(params, buffers, x)
>>> out.shape
(8, 2)
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Union

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jnn.modules.module import Module

__all__ = [
    "make_mesh",
    "replicated",
    "batch_sharding",
    "DataParallel",
    "data_parallel",
    "partition_specs",
    "named_shardings",
    "partition",
    "fsdp_rules",
    "shard_batch",
    "save_sharded",
    "load_sharded",
]

Pattern = Union[str, "re.Pattern[str]"]  # noqa: UP007 (a runtime alias: py3.10 cannot `|` a string)
Rules = Union[Sequence[tuple[Pattern, "PartitionSpec | None"]], Mapping[Pattern, "PartitionSpec | None"]]  # noqa: UP007


# ---------------------------------------------------------------------------------------------------------
# Meshes and the two basic shardings


def make_mesh(
    shape: int | Sequence[int] | None = None,
    axis_names: str | Sequence[str] = ("data",),
    *,
    devices: Sequence[jax.Device] | None = None,
) -> Mesh:
    """A :class:`~jax.sharding.Mesh` over ``devices`` (default: ``jax.devices()``, every device of every process).

    ``shape`` gives the size of each axis in ``axis_names``; one entry may be ``-1`` (the remaining devices);
    ``None`` puts every device on a single axis. The axes are ``AxisType.Auto``: ``jax.jit`` propagates
    shardings through jnn's layers by itself (``jax.make_mesh`` may default to explicit axes, which need
    sharding annotations on every ambiguous operation).

    >>> import jax, jnn
    >>> mesh = jnn.sharding.make_mesh((-1, 1), ("data", "model"))
    >>> mesh.axis_names, mesh.shape["data"] == len(jax.devices())
    (('data', 'model'), True)
    """
    devices = list(jax.devices() if devices is None else devices)
    names = (axis_names,) if isinstance(axis_names, str) else tuple(axis_names)
    sizes = [len(devices)] if shape is None else ([shape] if isinstance(shape, int) else list(shape))
    if len(sizes) != len(names):
        raise ValueError(f"jnn.sharding.make_mesh: shape {tuple(sizes)} has {len(sizes)} axes but axis_names "
                         f"{names} has {len(names)}")
    if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise ValueError(f"jnn.sharding.make_mesh: bad shape {tuple(sizes)}: sizes must be positive, at most one -1")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if len(devices) % known:
            raise ValueError(f"jnn.sharding.make_mesh: cannot fill shape {tuple(sizes)} with {len(devices)} devices "
                             f"({len(devices)} is not a multiple of {known})")
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices):
        raise ValueError(f"jnn.sharding.make_mesh: shape {tuple(sizes)} needs {math.prod(sizes)} devices, but "
                         f"{len(devices)} are given (use -1 for 'the rest')")
    return jax.make_mesh(tuple(sizes), names, axis_types=(AxisType.Auto,) * len(names), devices=devices)


def _check_axes(mesh: Mesh, axes: Iterable[str | None], who: str) -> None:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{who}: expected a jax.sharding.Mesh (see jnn.sharding.make_mesh), got {type(mesh).__name__}")
    explicit = [name for name, kind in zip(mesh.axis_names, mesh.axis_types, strict=True) if kind == AxisType.Explicit]
    if explicit:
        raise ValueError(
            f"{who}: mesh axes {tuple(explicit)} are AxisType.Explicit (what jax.make_mesh makes by default), under "
            "which every operation on sharded arrays must be annotated by hand; jnn's layers rely on automatic "
            "sharding propagation. Build the mesh with jnn.sharding.make_mesh(...), or pass "
            "axis_types=(jax.sharding.AxisType.Auto,) * n to jax.make_mesh."
        )
    for axis in axes:
        if axis is not None and axis not in mesh.axis_names:
            raise ValueError(f"{who}: the mesh has no axis {axis!r}; its axes are {tuple(mesh.axis_names)}")


def _axes_of(entry: Any) -> tuple[str, ...]:
    """The mesh axes one PartitionSpec entry names (None, an axis, or a tuple of axes)."""
    if entry is None or entry is PartitionSpec.UNCONSTRAINED:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of ``mesh``.

    >>> import jnn
    >>> jnn.sharding.replicated(jnn.sharding.make_mesh()).spec
    P()
    """
    _check_axes(mesh, (), "jnn.sharding.replicated")
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, axis: str | Sequence[str] = "data") -> NamedSharding:
    """Dimension 0 split over the mesh ``axis`` (a name, or several names to split over their product).

    >>> import jnn
    >>> jnn.sharding.batch_sharding(jnn.sharding.make_mesh()).spec
    P('data',)
    """
    axes = _axes_of(tuple(axis) if not isinstance(axis, str) else axis)
    _check_axes(mesh, axes, "jnn.sharding.batch_sharding")
    return NamedSharding(mesh, PartitionSpec(axes[0] if len(axes) == 1 else axes))


class DataParallel(NamedTuple):
    """The shardings of data-parallel training: ``batch`` splits dim 0, ``params`` is replicated."""

    batch: NamedSharding
    params: NamedSharding


def data_parallel(mesh: Mesh, axis: str | Sequence[str] = "data") -> DataParallel:
    """Shardings for data parallelism over ``axis``: place the model with ``net.to(dp.params)`` (or
    ``jax.device_put(params, dp.params)``), each batch with ``jax.device_put(x, dp.batch)`` or
    :func:`shard_batch`; ``jax.jit`` then all-reduces the gradients. BatchNorm statistics are over the global
    batch (what ``SyncBatchNorm`` gives in PyTorch), so the losses are the single-device ones.

    >>> import jnn
    >>> dp = jnn.sharding.data_parallel(jnn.sharding.make_mesh())
    >>> dp.batch.spec, dp.params.spec
    (P('data',), P())
    >>> net = jnn.Linear(3, 2).to(dp.params)
    >>> net.weight.sharding == dp.params
    True
    """
    _check_axes(mesh, _axes_of(axis if isinstance(axis, str) else tuple(axis)), "jnn.sharding.data_parallel")
    return DataParallel(batch_sharding(mesh, axis), replicated(mesh))


# ---------------------------------------------------------------------------------------------------------
# Rules: state_dict names -> PartitionSpec


def _named_arrays(tree: Any, who: str) -> dict[str, Any]:
    """name -> array for a flat dict keyed by state_dict names or a Module (tied arrays once, first name)."""
    if isinstance(tree, Module):
        flat, _ = jax.tree_util.tree_flatten_with_path(tree)
        return {path[0].name: value for path, value in flat}
    if isinstance(tree, Mapping):
        for name, value in tree.items():
            if not isinstance(name, str) or not hasattr(value, "shape"):
                raise TypeError(f"{who}: expected a flat dict of arrays keyed by state_dict names (what jnn.split "
                                f"returns) or a jnn.Module; entry {name!r} is a {type(value).__name__}")
        return dict(tree)
    raise TypeError(f"{who}: expected a flat dict keyed by state_dict names (what jnn.split returns) or a "
                    f"jnn.Module, got {type(tree).__name__}")


def _compile_rules(rules: Rules, who: str) -> list[tuple[Pattern, Any, PartitionSpec]]:
    items = list(rules.items()) if isinstance(rules, Mapping) else list(rules)
    compiled = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"{who}: each rule must be a (pattern, PartitionSpec) pair, got {item!r}")
        pattern, spec = item
        if spec is None:
            spec = PartitionSpec()
        if not isinstance(spec, PartitionSpec):
            raise TypeError(f"{who}: rule {pattern!r} maps to {spec!r}; expected a jax.sharding.PartitionSpec "
                            "(or None for replicated)")
        if isinstance(pattern, str):
            matcher = re.compile(fnmatch.translate(pattern)).match
        elif isinstance(pattern, re.Pattern):
            matcher = pattern.fullmatch
        else:
            raise TypeError(f"{who}: a rule's pattern must be a glob string or a compiled re.Pattern, got "
                            f"{type(pattern).__name__} {pattern!r}")
        compiled.append((pattern, matcher, spec))
    return compiled


def partition_specs(tree: Any, rules: Rules) -> dict[str, PartitionSpec]:
    """The PartitionSpec the first matching rule gives each array of ``tree`` (a flat dict from
    :func:`jnn.split` or a Module); ``PartitionSpec()`` (replicated) where no rule matches.

    A string pattern is a glob over the whole name (``*`` also crosses dots); a compiled ``re.Pattern`` must
    match the whole name (``fullmatch``). A spec with more entries than the array has dimensions is an error.

    >>> import jax, jnn
    >>> from jax.sharding import PartitionSpec as P
    >>> shapes = {"fc.weight": jax.ShapeDtypeStruct((8, 4), "float32"),
    ...           "fc.bias": jax.ShapeDtypeStruct((8,), "float32")}
    >>> jnn.sharding.partition_specs(shapes, [("*.weight", P("model", None))])
    {'fc.weight': P('model', None), 'fc.bias': P()}
    """
    who = "jnn.sharding.partition_specs"
    arrays = _named_arrays(tree, who)
    compiled = _compile_rules(rules, who)
    specs = {}
    for name, value in arrays.items():
        spec = next((spec for _, matcher, spec in compiled if matcher(name)), PartitionSpec())
        if len(spec) > len(value.shape):
            pattern = next(p for p, matcher, _ in compiled if matcher(name))
            raise ValueError(f"{who}: rule {pattern!r} gives {name!r} (shape {tuple(value.shape)}) the spec {spec}, "
                             f"which has {len(spec)} entries for an array of {len(value.shape)} dimension(s)")
        specs[name] = spec
    return specs


def _checked_sharding(mesh: Mesh, name: str, shape: tuple[int, ...], spec: PartitionSpec, who: str) -> NamedSharding:
    for dim, entry in enumerate(spec):
        axes = _axes_of(entry)
        _check_axes(mesh, axes, f"{who} ({name!r})")
        parts = math.prod(mesh.shape[a] for a in axes)
        if shape[dim] % parts:
            raise ValueError(
                f"{who}: cannot shard {name!r} of shape {tuple(shape)} with {spec}: dimension {dim} has size "
                f"{shape[dim]}, which does not divide by {parts}, the size of "
                f"{f'mesh axis {axes[0]!r}' if len(axes) == 1 else f'mesh axes {axes} together'} "
                f"(mesh {dict(mesh.shape)}). Change the rule for this name (e.g. P() to replicate it) or the mesh."
            )
    try:
        return NamedSharding(mesh, spec)
    except ValueError as error:
        raise ValueError(f"{who}: bad spec {spec} for {name!r}: {error}") from None


def named_shardings(tree: Any, mesh: Mesh, rules: Rules) -> dict[str, NamedSharding]:
    """name -> :class:`~jax.sharding.NamedSharding` by ``rules`` (see :func:`partition_specs`), checked
    against ``mesh``: a sharded dimension that does not divide by its mesh axis size is an error naming the
    array. Use it for ``jax.device_put`` or ``jax.jit(..., in_shardings=..., out_shardings=...)``.

    >>> import jax, jnn
    >>> from jax.sharding import PartitionSpec as P
    >>> mesh = jnn.sharding.make_mesh()
    >>> apply, params, buffers = jnn.split(jnn.Sequential(jnn.Linear(4, 8)))
    >>> shardings = jnn.sharding.named_shardings(params, mesh, [("*.weight", P("data", None))])
    >>> shardings["0.weight"].spec, shardings["0.bias"].spec
    (P('data', None), P())
    """
    return _named_shardings(tree, mesh, rules, "jnn.sharding.named_shardings")


def _named_shardings(tree: Any, mesh: Mesh, rules: Rules, who: str) -> dict[str, NamedSharding]:
    _check_axes(mesh, (), who)
    arrays = _named_arrays(tree, who)
    return {
        name: _checked_sharding(mesh, name, tuple(arrays[name].shape), spec, who)
        for name, spec in partition_specs(arrays, rules).items()
    }


def _place(value: Any, sharding: NamedSharding) -> jax.Array:
    """device_put; on several processes, build the global array from this process's full copy."""
    if jax.process_count() == 1 or isinstance(value, jax.core.Tracer):
        return jax.device_put(value, sharding)
    if isinstance(value, jax.Array) and not value.is_fully_addressable:  # already a global array: reshard it
        return jax.device_put(value, sharding)
    host = np.asarray(jax.device_get(value)) if not isinstance(value, np.ndarray) else value
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def partition(tree: Any, mesh: Mesh, rules: Rules) -> Any:
    """Place every array of ``tree`` by ``rules`` over ``mesh`` (see :func:`named_shardings`).

    A flat dict gives a new dict of placed arrays; a Module is placed in place and returned, like
    ``net.to(sharding)``; tied parameters stay tied and follow the rule for their first ``state_dict`` name.
    On several processes every process must hold the same full values (same seed or same checkpoint); each
    device receives its own slice.

    >>> import jnn
    >>> from jax.sharding import PartitionSpec as P
    >>> net = jnn.Sequential(jnn.Linear(4, 8), jnn.BatchNorm1d(8))
    >>> net = jnn.sharding.partition(net, jnn.sharding.make_mesh(), [("0.weight", P("data", None))])
    >>> net[0].weight.sharding.spec, net[1].running_mean.sharding.spec
    (P('data', None), P())
    """
    shardings = _named_shardings(tree, mesh, rules, "jnn.sharding.partition")
    if not isinstance(tree, Module):
        return {name: _place(value, shardings[name]) for name, value in tree.items()}
    placed = {id(value): _place(value, shardings[name]) for name, value in _named_arrays(tree, "").items()}
    return tree._replace_arrays(lambda value: placed.get(id(value), value))


def fsdp_rules(
    tree: Any, mesh: Mesh, axis: str = "data", *, min_size: int = 0
) -> list[tuple[re.Pattern, PartitionSpec]]:
    """Fully-sharded (FSDP / ZeRO-3 style) rules: each array with at least ``min_size`` elements is split over
    ``axis`` along its largest dimension that divides by the axis size (the first such, on ties); the others
    (scalars, small or indivisible arrays) are left out of the rules and so stay replicated. One exact-name
    rule per array; combine with your own rules by concatenating lists (the first match wins).

    >>> import jax, jnn
    >>> mesh = jnn.sharding.make_mesh()
    >>> rules = jnn.sharding.fsdp_rules(jnn.Linear(4, 8 * len(jax.devices())), mesh)
    >>> [(pattern.pattern, spec) for pattern, spec in rules]
    [('weight', P('data', None)), ('bias', P('data',))]
    """
    who = "jnn.sharding.fsdp_rules"
    _check_axes(mesh, (axis,), who)
    size = mesh.shape[axis]
    rules = []
    for name, value in _named_arrays(tree, who).items():
        shape = tuple(value.shape)
        if not shape or math.prod(shape) < min_size:
            continue
        divisible = [d for d in range(len(shape)) if shape[d] % size == 0]
        if divisible:
            dim = max(divisible, key=lambda d: (shape[d], -d))
            spec = PartitionSpec(*([None] * dim), axis, *([None] * (len(shape) - dim - 1)))
            rules.append((re.compile(re.escape(name)), spec))
    return rules


# ---------------------------------------------------------------------------------------------------------
# Batches


def shard_batch(batch: Any, mesh: Mesh, axis: str | Sequence[str] = "data") -> Any:
    """Every array of ``batch`` (any pytree) as one global array split on dim 0 over ``axis``.

    With one process, ``batch`` is the whole batch (``jax.device_put``); its size must divide by the number
    of devices on ``axis``. With several processes (``jax.distributed.initialize()``), each process passes
    its own part (``global batch / jax.process_count()`` rows) and gets back the global array
    (``jax.make_array_from_process_local_data``).

    >>> import jax.numpy as jnp, jnn
    >>> mesh = jnn.sharding.make_mesh()
    >>> x = jnn.sharding.shard_batch({"x": jnp.ones((8, 3))}, mesh)["x"]
    >>> x.shape, x.sharding.spec
    ((8, 3), P('data',))
    """
    sharding = batch_sharding(mesh, axis)
    parts = math.prod(mesh.shape[a] for a in _axes_of(sharding.spec[0]))

    def place(path: Any, value: Any) -> jax.Array:
        shape = np.shape(value)
        if not shape:
            raise ValueError(f"jnn.sharding.shard_batch: batch entry {jax.tree_util.keystr(path) or 'value'} is a "
                             "scalar; every entry needs a batch dimension 0 to split")
        if jax.process_count() > 1:
            return jax.make_array_from_process_local_data(sharding, value)
        if shape[0] % parts:
            raise ValueError(
                f"jnn.sharding.shard_batch: batch entry {jax.tree_util.keystr(path) or 'value'} has {shape[0]} rows "
                f"(shape {tuple(shape)}), which does not split evenly over the {parts} devices of mesh axis "
                f"{sharding.spec[0]!r}; use a batch size that is a multiple of {parts}"
            )
        return jax.device_put(value, sharding)

    return jax.tree_util.tree_map_with_path(place, batch)


# ---------------------------------------------------------------------------------------------------------
# Sharded checkpoints (orbax-checkpoint)


def _orbax(who: str) -> Any:
    try:
        import orbax.checkpoint as ocp
    except ImportError:
        raise ImportError(f"{who} needs orbax-checkpoint: pip install 'jnn[orbax]' (or orbax-checkpoint)") from None
    return ocp


def _state_of(state: Any, who: str) -> dict[str, Any]:
    """A flat name -> array dict from a state dict or a Module (its ``state_dict()``)."""
    if isinstance(state, Module):
        state = state.state_dict()
    if not isinstance(state, Mapping):
        raise TypeError(f"{who}: expected a state dict (a mapping of state_dict names to arrays) or a jnn.Module, "
                        f"got {type(state).__name__}")
    for name, value in state.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise TypeError(f"{who}: keys must be non-empty state_dict names without '/', got {name!r}")
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise TypeError(f"{who}: value of {name!r} is a {type(value).__name__}, not an array")
    return dict(state)


def save_sharded(path: str | os.PathLike, state: Any) -> None:
    """Write ``state`` (a state dict, the flat dicts of :func:`jnn.split`, or a Module) to the directory ``path``
    as a sharded checkpoint (orbax-checkpoint; install ``jnn[orbax]``); an existing checkpoint there is replaced.

    Each process writes only the shards its devices hold, so a model that fits no single host saves without
    being gathered; with several processes, call it on every process with the same keys (``path`` on a file
    system they share). Keys are the ``state_dict`` names. Restore with :func:`load_sharded`, onto any mesh.
    For one file on one host, use :func:`jnn.save` instead.

    >>> import jax.numpy as jnp, jnn, tempfile, os
    >>> folder = os.path.join(tempfile.mkdtemp(), "ckpt")
    >>> jnn.sharding.save_sharded(folder, {"fc.weight": jnp.ones((2, 3)), "fc.bias": jnp.zeros(2)})
    >>> restored = jnn.sharding.load_sharded(folder, jnn.sharding.make_mesh())
    >>> restored["fc.weight"].shape, restored["fc.weight"].sharding.spec
    ((2, 3), P())
    """
    who = "jnn.sharding.save_sharded"
    ocp = _orbax(who)
    state = _state_of(state, who)
    checkpointer = ocp.StandardCheckpointer()
    try:
        checkpointer.save(os.path.abspath(os.fspath(path)), state, force=True,
                          custom_metadata={"jnn": {"keys": list(state)}})  # orbax sorts keys; keep state_dict order
        checkpointer.wait_until_finished()
    finally:
        checkpointer.close()


def _saved_arrays(checkpointer: Any, path: str, who: str) -> dict[str, jax.ShapeDtypeStruct]:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{who}: no checkpoint at {path!r}")
    meta = checkpointer.metadata(path)
    tree = getattr(meta, "item_metadata", meta)  # orbax >= 0.11 wraps the tree in StepMetadata/TreeMetadata
    tree = getattr(tree, "tree", tree)
    if not isinstance(tree, Mapping):
        raise ValueError(f"{who}: {path!r} is not a checkpoint of a state dict (written by save_sharded)")
    order = ((getattr(meta, "custom_metadata", None) or {}).get("jnn") or {}).get("keys") or []
    order = [k for k in order if k in tree] + [k for k in tree if k not in order]
    return {name: jax.ShapeDtypeStruct(tuple(tree[name].shape), np.dtype(tree[name].dtype)) for name in order}


def load_sharded(path: str | os.PathLike, target: Any = None, *, rules: Rules | None = None) -> Any:
    """Read a checkpoint written by :func:`save_sharded`, each array placed where ``target`` says:

    - a :class:`~jax.sharding.Mesh`: by ``rules`` over that mesh (see :func:`partition`; no rules: replicated);
    - a mapping of names to shardings (e.g. :func:`named_shardings`), or to arrays / ``jax.ShapeDtypeStruct``
      whose ``sharding`` and dtype the restored arrays take;
    - a Module: loaded into it, each array keeping the module's current sharding and dtype (like
      ``load_state_dict``); the module is returned;
    - ``None``: as it was saved (the same device layout must exist).

    Each process reads only the shards its devices need, so the checkpoint may come from another mesh or
    another number of processes. The names must be exactly those saved (an error lists the missing and the
    unexpected ones), and each shape must match. Returns a dict name -> ``jax.Array`` (or the Module).
    """
    who = "jnn.sharding.load_sharded"
    ocp = _orbax(who)
    path = os.path.abspath(os.fspath(path))
    checkpointer = ocp.StandardCheckpointer()
    try:
        saved = _saved_arrays(checkpointer, path, who)
        module = target if isinstance(target, Module) else None
        if target is None:
            restored = checkpointer.restore(path)
            return {name: restored[name] for name in saved}
        if isinstance(target, Mesh):
            target = _named_shardings(saved, target, [] if rules is None else rules, who)
        elif module is not None:
            target = _state_of(module, who)
        elif not isinstance(target, Mapping):
            raise TypeError(f"{who}: target must be a Mesh, a mapping of names to shardings or arrays, a jnn.Module "
                            f"or None, got {type(target).__name__}")
        missing = [k for k in target if k not in saved]
        unexpected = [k for k in saved if k not in target]
        if missing or unexpected:
            raise KeyError(f"{who}: the checkpoint at {path!r} does not match the target. Missing key(s): "
                           f"{', '.join(map(repr, missing)) or 'none'}. Unexpected key(s): "
                           f"{', '.join(map(repr, unexpected)) or 'none'}.")
        abstract = {name: _abstract(name, target[name], saved[name], who) for name in saved}
        restored = checkpointer.restore(path, abstract)
        restored = {name: restored[name] for name in target}
    finally:
        checkpointer.close()
    if module is not None:
        module.load_state_dict(restored)
        return module
    return restored


def _abstract(name: str, like: Any, saved: jax.ShapeDtypeStruct, who: str) -> jax.ShapeDtypeStruct:
    if isinstance(like, jax.sharding.Sharding):
        return jax.ShapeDtypeStruct(saved.shape, saved.dtype, sharding=like)
    sharding = getattr(like, "sharding", None)
    if not isinstance(sharding, jax.sharding.Sharding) or not hasattr(like, "shape"):
        raise TypeError(f"{who}: the target of {name!r} is a {type(like).__name__}; expected a jax.sharding.Sharding, "
                        "or a jax.Array / jax.ShapeDtypeStruct with a sharding")
    if tuple(like.shape) != saved.shape:
        raise ValueError(f"{who}: size mismatch for {name!r}: the checkpoint has shape {saved.shape}, the target "
                         f"{tuple(like.shape)}")
    return jax.ShapeDtypeStruct(saved.shape, like.dtype, sharding=sharding)
