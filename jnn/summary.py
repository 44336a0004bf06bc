"""Model summaries and intermediate outputs.

:func:`summary` is a torchinfo-style table (output shape and parameter count per layer) computed with
``jax.eval_shape``: the model is traced on abstract inputs, so no FLOPs are spent and no activation memory is
allocated, whatever the input size. :func:`capture_outputs` and :func:`feature_extractor` collect the outputs of
named submodules in a way that also works under ``jax.jit`` and through ``jnn.split``: the collected arrays are
returned from the call, never stored where a tracer could leak.

>>> import jnn as nn
>>> net = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
>>> info = nn.summary(net, input_size=(1, 20))
>>> [(row["name"], row["output_size"], row["num_params"]) for row in info.rows]
[('', [1, 10], 7946), ('0', [1, 256], 5376), ('1', [1, 256], 0), ('2', [1, 10], 2570)]
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import get_opaque_trace_state

from jnn import random, transforms
from jnn.modules.module import Module

__all__ = ["summary", "ModelSummary", "capture_outputs", "feature_extractor"]

# ---------------------------------------------------------------------------------------------------------
# Collecting outputs of named submodules


class _Collector:
    """Outputs collected during one capture; knows the JAX trace it belongs to, so tracers cannot leak."""

    def __init__(self, token: object, who: str) -> None:
        self.token = token
        self.who = who
        self.trace = get_opaque_trace_state()
        self.outputs: dict[str, Any] = {}


class _Active(threading.local):
    def __init__(self) -> None:
        self.collectors: list[_Collector] = []


_active = _Active()


def _find(token: object) -> _Collector | None:
    for collector in reversed(_active.collectors):
        if collector.token is token:
            return collector
    return None


class _Store:
    """Forward hook: put the module's output under ``key`` in the active collector for ``token`` (if any)."""

    def __init__(self, token: object, name: str, key: str) -> None:
        self.token, self.name, self.key = token, name, key

    def __call__(self, module: Module, args: tuple, output: Any) -> None:
        collector = _find(self.token)
        if collector is None:  # not inside a capture (e.g. the submodule called on its own)
            return
        if get_opaque_trace_state() != collector.trace:
            raise RuntimeError(
                f"{collector.who}: module '{self.name}' ({type(module).__name__}) ran under a different JAX trace "
                "than the one the outputs are collected in, so its output would be a leaked tracer. This happens "
                "when a `with capture_outputs(...)` block outside jax.jit wraps a call of a jitted function, or "
                "when the module runs inside jax.vmap/lax.scan/jax.checkpoint within the model's forward. Put the "
                "`with` block inside the jitted function, around the model call, and return the collected dict."
            )
        key, repeat = self.key, 1
        while key in collector.outputs:  # the module ran more than once: key, key:1, key:2, ...
            key, repeat = f"{self.key}:{repeat}", repeat + 1
        collector.outputs[key] = output


def _resolve_nodes(model: Module, return_nodes: Sequence[str] | Mapping[str, str], who: str) -> dict[str, str]:
    """``{submodule name: output key}`` from a list of names or a mapping; every name checked."""
    if not isinstance(model, Module):
        raise TypeError(f"{who} expects a jnn.Module, got {type(model).__name__}")
    if isinstance(return_nodes, str):
        raise TypeError(f"{who}: return_nodes must be a list of submodule names or a dict, got the string "
                        f"{return_nodes!r} (wrap it in a list)")
    nodes = dict(return_nodes) if isinstance(return_nodes, Mapping) else {n: n for n in return_nodes}
    if not nodes:
        raise ValueError(f"{who}: return_nodes is empty; name at least one submodule")
    available = [name for name, _ in model.named_modules()]
    for name, key in nodes.items():
        if not isinstance(name, str) or name not in available:
            shown = ", ".join(repr(n) for n in available[:20]) + (", ..." if len(available) > 20 else "")
            raise ValueError(f"{who}: {name!r} is not a submodule of {type(model).__name__}; "
                             f"names are as in named_modules() ('' is the model itself): {shown}")
        if not isinstance(key, str):
            raise TypeError(f"{who}: output names must be strings, got {key!r} for {name!r}")
    if len(set(nodes.values())) != len(nodes):
        raise ValueError(f"{who}: two return nodes have the same output name: {list(nodes.values())}")
    return nodes


def _ordered(outputs: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Outputs in return_nodes order; a repeated module's extra outputs (key:1, key:2, ...) follow its key."""
    ordered = {}
    for key in keys:
        ordered.update((k, v) for k, v in outputs.items() if k == key or k.startswith(key + ":"))
    return ordered


@contextlib.contextmanager
def capture_outputs(model: Module, return_nodes: Sequence[str] | Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """Collect the outputs of named submodules while ``model`` runs inside the ``with`` block.

    ``return_nodes`` lists names as in ``named_modules()`` (``''`` is the model itself) or maps them to output
    names. The yielded dict fills as the submodules run (a module that runs twice adds ``'name:1'``). Under
    ``jax.jit``, put the block inside the jitted function, around the call of the module passed in, and return
    the dict; a block outside a jitted call raises instead of leaking tracers.

    >>> import jax, jax.numpy as jnp, jnn as nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> @jax.jit
    ... def run(net, x):
    ...     with nn.capture_outputs(net, {"1": "hidden"}) as feats:
    ...         y = net(x)
    ...     return y, feats
    >>> y, feats = run(net, jnp.ones((2, 3)))
    >>> feats["hidden"].shape
    (2, 4)
    """
    nodes = _resolve_nodes(model, return_nodes, "capture_outputs")
    collector = _Collector(object(), "capture_outputs")
    handles = [model.get_submodule(name).register_forward_hook(_Store(collector.token, name, key))
               for name, key in nodes.items()]
    _active.collectors.append(collector)
    try:
        yield collector.outputs
    finally:
        _active.collectors.remove(collector)
        for handle in handles:
            handle.remove()
        ordered = _ordered(collector.outputs, list(nodes.values()))
        collector.outputs.clear()
        collector.outputs.update(ordered)


class _Start:
    """Root pre-hook of a feature extractor: open a collector for this call."""

    def __init__(self, token: object) -> None:
        self.token = token

    def __call__(self, module: Module, args: tuple) -> None:
        _active.collectors.append(_Collector(self.token, "feature_extractor"))


class _Finish:
    """Root forward hook (always called) of a feature extractor: close the collector, return its outputs."""

    def __init__(self, token: object, nodes: dict[str, str]) -> None:
        self.token, self.nodes = token, nodes

    def __call__(self, module: Module, args: tuple, output: Any) -> dict[str, Any]:
        collector = _find(self.token)
        if collector is None:  # something raised before _Start ran; the error is on its way
            return None
        _active.collectors.remove(collector)
        missing = [name for name, key in self.nodes.items() if key not in collector.outputs]
        if missing and output is not None:  # (output None: forward raised, and that error is on its way)
            raise RuntimeError(f"feature_extractor: submodule(s) {missing} of {type(module).__name__} did not run "
                               "during forward, so there is no output to return for them")
        return _ordered(collector.outputs, list(self.nodes.values()))


def feature_extractor(model: Module, return_nodes: Sequence[str] | Mapping[str, str]) -> Module:
    """A copy of ``model`` whose call returns ``{output name: output}`` for the named submodules.

    Like torchvision's ``create_feature_extractor``: ``return_nodes`` lists names as in ``named_modules()``
    (``''`` is the model's own output) or maps them to output names. The copy holds the same arrays under the
    same ``state_dict`` names, so it runs eagerly, as a pytree under ``jax.jit``, and through ``jnn.split``.

    >>> import jax, jax.numpy as jnp, jnn as nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> body = nn.feature_extractor(net, {"1": "hidden", "": "out"})
    >>> apply, params, buffers = nn.split(body)
    >>> feats, _ = jax.jit(apply)(params, buffers, jnp.ones((2, 3)))
    >>> {k: v.shape for k, v in feats.items()}
    {'hidden': (2, 4), 'out': (2, 1)}
    """
    nodes = _resolve_nodes(model, return_nodes, "feature_extractor")
    copy = jax.tree_util.tree_map(lambda leaf: leaf, model)  # fresh module objects, same arrays
    token = object()
    for name, key in nodes.items():
        copy.get_submodule(name).register_forward_hook(_Store(token, name, key))
    copy.register_forward_pre_hook(_Start(token), prepend=True)
    copy.register_forward_hook(_Finish(token, nodes), always_call=True)
    return copy


# ---------------------------------------------------------------------------------------------------------
# summary


def _shape_of(tree: Any) -> Any:
    """Shapes in an output: an array becomes a list of ints; tuples, lists and dicts keep their structure."""
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        return [int(n) for n in tree.shape]
    if isinstance(tree, list):
        return [_shape_of(x) for x in tree]
    if isinstance(tree, tuple):
        return tuple(_shape_of(x) for x in tree)
    if isinstance(tree, Mapping):
        return {k: _shape_of(v) for k, v in tree.items()}
    return None if tree is None else type(tree).__name__


def _nbytes(tree: Any) -> int:
    return sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize
               for x in jax.tree_util.tree_leaves(tree) if hasattr(x, "shape") and hasattr(x, "dtype"))


def _format_shape(shape: Any) -> str:
    if shape is None:
        return "--"
    if isinstance(shape, list) and all(isinstance(n, int) for n in shape):
        return "[" + ", ".join(map(str, shape)) + "]"
    if isinstance(shape, (tuple, list)):
        inner = ", ".join(_format_shape(s) for s in shape)
        return f"({inner})" if isinstance(shape, tuple) else f"[{inner}]"
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {_format_shape(v)}" for k, v in shape.items()) + "}"
    return str(shape)


_COLUMNS = {"input_size": "Input Shape", "output_size": "Output Shape", "num_params": "Param #",
            "params_percent": "Param %", "trainable": "Trainable"}


class ModelSummary:
    """What :func:`summary` returns: ``str()``/``repr()`` is the table; the numbers are attributes.

    ``rows`` has one dict per module call, in call order: ``name`` (as in ``named_modules()``), ``type``,
    ``depth`` (call nesting; 0 for the model), ``depth_index`` (e.g. ``'2-3'``), ``input_size`` and
    ``output_size`` (an array's shape as a list of ints, containers kept), ``own_params`` (the module's own
    parameters), ``num_params`` and ``trainable_params`` (its whole subtree), ``recursive`` (a module's second
    and later calls), ``output_bytes``. Without inputs, rows list the modules with no shapes.
    """

    def __init__(self, model_name: str, rows: list[dict], totals: dict[str, int], depth: int,
                 col_names: tuple[str, ...], row_settings: tuple[str, ...], output: Any) -> None:
        self.model_name = model_name
        self.rows = rows
        self.total_params = totals["total_params"]
        self.trainable_params = totals["trainable_params"]
        self.non_trainable_params = self.total_params - self.trainable_params
        self.param_bytes = totals["param_bytes"]
        self.buffer_bytes = totals["buffer_bytes"]
        self.input_bytes = totals["input_bytes"]
        self.forward_bytes = totals["forward_bytes"]
        self.output = output  # the model's output as jax.ShapeDtypeStruct (None without inputs)
        self.depth, self.col_names, self.row_settings = depth, col_names, row_settings

    def _cells(self, row: dict, has_children: bool) -> list[str]:
        cells = []
        for col in self.col_names:
            if col in ("input_size", "output_size"):
                cells.append(_format_shape(row[col]))
            elif row["recursive"] and col in ("num_params", "params_percent"):
                cells.append("(recursive)")
            elif col in ("num_params", "params_percent"):
                count = row["own_params"] if has_children else row["num_params"]
                if count == 0:
                    cells.append("--")
                elif col == "num_params":
                    cells.append(f"{count:,}")
                else:
                    cells.append(f"{100 * count / max(self.total_params, 1):.2f}%")
            else:
                total, trainable = row["num_params"], row["trainable_params"]
                cells.append("--" if total == 0 else str(trainable == total) if trainable in (0, total) else "Partial")
        return cells

    def __str__(self) -> str:
        shown = [(i, row) for i, row in enumerate(self.rows) if row["depth"] <= self.depth]
        lines = []
        for pos, (_, row) in enumerate(shown):
            nxt = shown[pos + 1][1] if pos + 1 < len(shown) else None
            has_children = nxt is not None and nxt["depth"] > row["depth"]
            label = row["type"]
            if "var_names" in self.row_settings and row["name"]:
                label += f" ({row['name'].rpartition('.')[2]})"
            if row["depth"] > 0:
                if "depth" in self.row_settings:
                    label += f": {row['depth_index']}"
                label = ("├─" if row["depth"] == 1 else "│    " * (row["depth"] - 1) + "└─") + label
            lines.append([label, *self._cells(row, has_children)])
        header = ["Layer (type (var_name):depth-idx)" if "var_names" in self.row_settings
                  else "Layer (type:depth-idx)", *(_COLUMNS[c] for c in self.col_names)]
        widths = [max(25, *(len(line[j]) + 1 for line in [header, *lines])) for j in range(len(header))]
        widths[0] = max(widths[0], 40)

        def fmt(cells: list[str]) -> str:
            return "".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        bar = "=" * sum(widths)
        mb = 1e6
        table = [bar, fmt(header), bar, *map(fmt, lines), bar,
                 f"Total params: {self.total_params:,}",
                 f"Trainable params: {self.trainable_params:,}",
                 f"Non-trainable params: {self.non_trainable_params:,}", bar,
                 f"Input size (MB): {self.input_bytes / mb:,.2f}",
                 f"Forward pass size (MB): {self.forward_bytes / mb:,.2f}",
                 f"Params size (MB): {self.param_bytes / mb:,.2f}",
                 f"Buffers size (MB): {self.buffer_bytes / mb:,.2f}",
                 "Estimated Total Size (MB): "
                 f"{(self.input_bytes + self.forward_bytes + self.param_bytes + self.buffer_bytes) / mb:,.2f}", bar]
        return "\n".join(table)

    __repr__ = __str__


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(n, (int, np.integer)) for n in value)


def _abstract_inputs(input_size: Any, input_data: Any, dtypes: Sequence[Any] | None) -> tuple[tuple, dict]:
    """(args, kwargs) for forward from torchinfo-style ``input_size`` / ``input_data``."""
    if input_size is not None and input_data is not None:
        raise ValueError("jnn.summary: give input_size or input_data, not both")
    if input_size is not None:
        sizes = [input_size] if _is_shape(input_size) or isinstance(input_size, jax.ShapeDtypeStruct) else input_size
        if not isinstance(sizes, (tuple, list)) or not all(
                _is_shape(s) or isinstance(s, jax.ShapeDtypeStruct) for s in sizes):
            raise TypeError(f"jnn.summary: input_size must be a shape like (1, 3, 32, 32), a jax.ShapeDtypeStruct, "
                            f"or a list of those (one per forward argument); got {input_size!r}")
        dtypes = [jnp.float32] * len(sizes) if dtypes is None else list(dtypes)
        if len(dtypes) != len(sizes):
            raise ValueError(f"jnn.summary: {len(sizes)} input sizes but {len(dtypes)} dtypes")
        return tuple(s if isinstance(s, jax.ShapeDtypeStruct) else jax.ShapeDtypeStruct(tuple(map(int, s)), d)
                     for s, d in zip(sizes, dtypes, strict=True)), {}
    if isinstance(input_data, Mapping):
        return (), dict(input_data)
    return (tuple(input_data) if isinstance(input_data, (tuple, list)) else (input_data,)), {}


def _is_array_like(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct)) or (
        hasattr(x, "__dlpack__") and hasattr(x, "shape") and hasattr(x, "dtype"))  # e.g. a torch tensor


def _abstract(x: Any) -> jax.ShapeDtypeStruct:
    dtype = x.dtype if isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct)) else str(x.dtype)
    return jax.ShapeDtypeStruct(tuple(x.shape), jnp.dtype(dtype.removeprefix("torch.") if isinstance(dtype, str)
                                                          else dtype))


def _subtree_counts(model: Module) -> dict[int, dict[str, int]]:
    counts = {}
    for _, module in model.named_modules():
        trainable = {id(v) for _, v in module.named_trainable_parameters()}
        params = {id(v): v for v in module.parameters()}
        counts[id(module)] = {
            "own_params": sum(math.prod(v.shape) for v in module._parameters.values() if v is not None),
            "num_params": sum(math.prod(v.shape) for v in params.values()),
            "trainable_params": sum(math.prod(v.shape) for k, v in params.items() if k in trainable),
        }
    return counts


def summary(
    model: Module,
    input_size: Any = None,
    input_data: Any = None,
    *,
    dtypes: Sequence[Any] | None = None,
    depth: int = 3,
    col_names: Sequence[str] = ("output_size", "num_params"),
    row_settings: Sequence[str] = ("depth",),
    mode: str = "same",
    **kwargs: Any,
) -> ModelSummary:
    """A torchinfo-style summary: per-layer output shapes and parameter counts, computed with ``jax.eval_shape``.

    ``input_size`` is a shape (batch dimension included, as given), a ``jax.ShapeDtypeStruct``, or a list of
    them for several forward arguments (``dtypes`` sets their dtypes; float32 by default). ``input_data``
    gives arrays instead (only their shapes and dtypes are used), a list of them, or a dict of keyword
    arguments; extra ``**kwargs`` go to forward. Nothing is computed: a 100 GB input costs nothing.
    ``depth`` limits the table's nesting (the rows keep every call); ``col_names`` picks from
    ``input_size, output_size, num_params, params_percent, trainable``; ``row_settings`` from
    ``depth, var_names``; ``mode`` is ``'same'``, ``'train'`` or ``'eval'`` (the model itself is not changed).
    Print the result to see the table (unlike torchinfo, nothing is printed by the call itself).

    >>> import jnn as nn
    >>> print(nn.summary(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), input_size=(10_000, 3, 1024, 1024)))
    ==========================================================================================
    Layer (type:depth-idx)                  Output Shape             Param #
    ==========================================================================================
    Sequential                              [10000, 8, 1022, 1022]   --
    ├─Conv2d: 1-1                           [10000, 8, 1022, 1022]   224
    ├─ReLU: 1-2                             [10000, 8, 1022, 1022]   --
    ==========================================================================================
    Total params: 224
    Trainable params: 224
    Non-trainable params: 0
    ==========================================================================================
    Input size (MB): 125,829.12
    Forward pass size (MB): 668,469.76
    Params size (MB): 0.00
    Buffers size (MB): 0.00
    Estimated Total Size (MB): 794,298.88
    ==========================================================================================
    """
    if not isinstance(model, Module):
        raise TypeError(f"jnn.summary expects a jnn.Module, got {type(model).__name__}")
    if not isinstance(depth, int) or depth < 0:
        raise ValueError(f"jnn.summary: depth must be a non-negative int, got {depth!r}")
    col_names = tuple(col_names)
    for col in col_names:
        if col not in _COLUMNS:
            raise ValueError(f"jnn.summary: unknown column {col!r}; choose from {list(_COLUMNS)}")
    row_settings = tuple(row_settings)
    for setting in row_settings:
        if setting not in ("depth", "var_names"):
            raise ValueError(f"jnn.summary: unknown row setting {setting!r}; choose from ['depth', 'var_names']")
    if mode not in ("same", "train", "eval"):
        raise ValueError(f"jnn.summary: mode must be 'same', 'train' or 'eval', got {mode!r}")

    counts = _subtree_counts(model)
    names = {id(m): name for name, m in model.named_modules()}
    rows: list[dict] = []
    output = None
    input_bytes = 0
    if input_size is None and input_data is None and not kwargs:
        for name, module in model.named_modules():
            rows.append({"name": name, "type": type(module).__name__, "depth": name.count(".") + (name != ""),
                         "input_size": None, "output_size": None, "output_bytes": 0})
    else:
        args, forward_kwargs = _abstract_inputs(input_size, input_data, dtypes)
        forward_kwargs.update(kwargs)
        leaves, treedef = jax.tree_util.tree_flatten((args, forward_kwargs))
        arrays = [_abstract(x) for x in leaves if _is_array_like(x)]
        input_bytes = _nbytes(arrays)
        output = _trace(model, leaves, treedef, arrays, mode, rows)
        for row in rows:
            row["name"] = names[row.pop("id")]

    seen: set[int] = set()
    index_at_depth: dict[int, int] = {}
    module_of = dict(model.named_modules())
    for row in rows:
        module = module_of[row["name"]]
        row.update(counts[id(module)])
        row["recursive"] = id(module) in seen
        seen.add(id(module))
        index_at_depth[row["depth"]] = index_at_depth.get(row["depth"], 0) + 1
        row["depth_index"] = f"{row['depth']}-{index_at_depth[row['depth']]}"
    order = ("name", "type", "depth", "depth_index", "input_size", "output_size", "own_params", "num_params",
             "trainable_params", "recursive", "output_bytes")
    rows = [{k: row[k] for k in order} for row in rows]
    is_leaf_call = [i + 1 == len(rows) or rows[i + 1]["depth"] <= row["depth"] for i, row in enumerate(rows)]
    root = counts[id(model)]
    totals = {
        "total_params": root["num_params"],
        "trainable_params": root["trainable_params"],
        "param_bytes": _nbytes(list({id(p): p for p in model.parameters()}.values())),
        "buffer_bytes": _nbytes(list({id(b): b for b in model.buffers()}.values())),
        "input_bytes": input_bytes,
        "forward_bytes": sum(row["output_bytes"] for row, leaf in zip(rows, is_leaf_call, strict=True) if leaf),
    }
    return ModelSummary(type(model).__name__, rows, totals, depth, col_names, row_settings, output)


def _trace(model: Module, leaves: list, treedef: Any, arrays: list, mode: str, rows: list[dict]) -> Any:
    """Run forward under jax.eval_shape with recording hooks on every submodule of the traced copy."""
    originals = [m for _, m in model.named_modules()]
    key = jax.random.key(0)  # Dropout in training mode draws from it; nothing is computed

    def run(copy: Module, dynamic: list) -> Any:
        it = iter(dynamic)
        args, kwargs = jax.tree_util.tree_unflatten(treedef, [next(it) if _is_array_like(x) else x for x in leaves])
        if mode != "same":
            copy.train(mode == "train")
        stack: list[dict] = []

        def pre(module: Module, call_args: tuple, call_kwargs: dict) -> None:
            row = {"id": id(originals[index[id(module)]]), "type": type(module).__name__, "depth": len(stack),
                   "input_size": _shape_of(call_args if len(call_args) != 1 else call_args[0]),
                   "output_size": None, "output_bytes": 0}
            rows.append(row)
            stack.append(row)

        def post(module: Module, call_args: tuple, call_output: Any) -> None:
            row = stack.pop()
            row["output_size"] = _shape_of(call_output)
            row["output_bytes"] = _nbytes(call_output)

        copies = [m for _, m in copy.named_modules()]
        index = {id(m): i for i, m in enumerate(copies)}
        for m in copies:
            m.register_forward_pre_hook(pre, with_kwargs=True)
            m.register_forward_hook(post, always_call=True)
        with random.fork(key):
            return copy(*args, **kwargs)

    looping = transforms._loop_layers.set(True)  # a row per block of a jnn.scan_layers stack
    try:
        return jax.eval_shape(run, model, arrays)
    except Exception as error:
        ran = [f"{row['type']}" for row in rows]
        raise RuntimeError(f"jnn.summary: the forward of {type(model).__name__} failed on the given inputs "
                           f"({type(error).__name__}: {error}). Layers that ran: {ran}") from error
    finally:
        transforms._loop_layers.reset(looping)
