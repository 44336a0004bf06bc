"""Packed and padded sequences, as ``torch.nn.utils.rnn``.

A :class:`PackedSequence` holds torch's four fields with torch's layout: ``data`` stacks, time step after time
step, the elements of the sequences still running at that step (longest first), ``batch_sizes[t]`` counts them,
``sorted_indices`` / ``unsorted_indices`` map between the caller's batch order and the sorted one (``None`` when
the batch came sorted, ``enforce_sorted=True``).

**What is static.** The layout of ``data`` depends on the sequence lengths, so the lengths must be concrete
values: a list, a NumPy array, or a JAX array outside ``jit``. ``batch_sizes``, ``sorted_indices`` and
``unsorted_indices`` are therefore NumPy ``int64`` arrays (torch keeps them as CPU ``int64`` tensors), and the
lengths :func:`pad_packed_sequence` returns are one too. As a pytree a ``PackedSequence`` has one leaf, ``data``;
the other three fields are static, so ``jax.jit`` of a function taking one traces once per length pattern.
Packing *inside* ``jit`` works when the lengths are static there (closed over, or a ``static_argnums``); traced
lengths raise a ``TypeError`` saying so. Sorting with ``enforce_sorted=False`` is stable (ties keep the caller's
order); torch's sort is not stable on batches above 16, so its ``sorted_indices`` may order equal lengths
differently, with the same padded/unpacked results.

>>> import jax.numpy as jnp
>>> from jnn.utils.rnn import pack_sequence, pad_packed_sequence
>>> packed = pack_sequence([jnp.array([1.0, 2.0, 3.0]), jnp.array([4.0, 5.0])])
>>> packed.data.tolist(), packed.batch_sizes.tolist()
([1.0, 4.0, 2.0, 5.0, 3.0], [2, 2, 1])
>>> padded, lengths = pad_packed_sequence(packed, batch_first=True)
>>> padded.tolist(), lengths.tolist()
([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]], [3, 2])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
    "unpad_sequence", "pack_sequence", "unpack_sequence",
]


def _static_ints(value: Any, who: str, what: str) -> np.ndarray | None:
    """``value`` as a concrete NumPy int64 array (None stays None); a traced value raises."""
    if value is None:
        return None
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{who}: {what} must be concrete (a list, a NumPy array, or an array computed outside jit): they fix "
            "the packed layout's static shapes. Under jax.jit, close over them or pass them as a static argument "
            "(static_argnums), or pack outside the jitted function and pass the PackedSequence in."
        )
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value).astype(np.int64)


def invert_permutation(permutation: Any) -> np.ndarray | None:
    """The inverse of a permutation (``None`` stays ``None``), as torch's ``invert_permutation``.

    >>> from jnn.utils.rnn import invert_permutation
    >>> invert_permutation([2, 0, 1]).tolist()
    [1, 2, 0]
    """
    perm = _static_ints(permutation, "invert_permutation", "the permutation")
    if perm is None:
        return None
    out = np.empty_like(perm)
    out[perm] = np.arange(perm.size)
    return out


class _PackedFields(NamedTuple):
    data: jax.Array
    batch_sizes: np.ndarray
    sorted_indices: np.ndarray | None
    unsorted_indices: np.ndarray | None


class PackedSequence(_PackedFields):
    """Sequences of different lengths packed time step by time step, with torch's four fields.

    Made by :func:`pack_padded_sequence` or :func:`pack_sequence` and consumed by ``nn.RNN``, ``nn.LSTM`` and
    ``nn.GRU``; ``data`` is a JAX array, the other fields NumPy ``int64`` arrays (see the module's note on what is
    static). ``PackedSequence(data, batch_sizes, sorted_indices=None, unsorted_indices=None)`` builds one by hand
    as in torch (``unsorted_indices`` is derived from ``sorted_indices`` when left out).

    >>> import jax.numpy as jnp
    >>> from jnn.utils.rnn import PackedSequence
    >>> p = PackedSequence(jnp.arange(3.0), [2, 1], [1, 0])
    >>> p.unsorted_indices.tolist(), p.float().data.dtype
    ([1, 0], dtype('float32'))
    """

    __slots__ = ()

    def __new__(cls, data: Any, batch_sizes: Any = None, sorted_indices: Any = None,
                unsorted_indices: Any = None) -> PackedSequence:
        if batch_sizes is None:  # torch also takes PackedSequence((data, batch_sizes))
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise TypeError("PackedSequence: expected data and batch_sizes, or a (data, batch_sizes) pair")
            data, batch_sizes = data
        who = "PackedSequence"
        batch_sizes = _static_ints(batch_sizes, who, "batch_sizes")
        sorted_indices = _static_ints(sorted_indices, who, "sorted_indices")
        unsorted_indices = _static_ints(unsorted_indices, who, "unsorted_indices")
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes.ndim != 1:
            raise ValueError(f"PackedSequence: batch_sizes must be 1-D, got shape {batch_sizes.shape}")
        if not isinstance(data, jax.core.Tracer) and hasattr(data, "detach"):
            data = data.detach().cpu().numpy()
        data = jnp.asarray(data)
        if data.ndim == 0 or data.shape[0] != batch_sizes.sum():
            raise ValueError(f"PackedSequence: data must have sum(batch_sizes) = {batch_sizes.sum()} rows, "
                             f"got shape {data.shape}")
        return tuple.__new__(cls, (data, batch_sizes, sorted_indices, unsorted_indices))

    def _replace_data(self, data: jax.Array) -> PackedSequence:
        return tuple.__new__(type(self), (data, *self[1:]))

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """``data`` moved and/or cast as ``Tensor.to`` would (``to(dtype)``, ``to(device)``, ``to(array)``)."""
        from jnn.modules.module import _as_dtype, _resolve_device

        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None), kwargs.pop("copy", None)
        if kwargs:
            raise TypeError(f"PackedSequence.to() got unexpected keyword arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, (jax.Array, np.ndarray)):
                dtype = arg.dtype
            elif _as_dtype(arg) is not None:
                dtype = _as_dtype(arg)
            else:
                device = arg
        data = self.data if dtype is None else self.data.astype(_as_dtype(dtype) or dtype)
        target = _resolve_device(device)
        return self._replace_data(data if target is None else jax.device_put(data, target))

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def cuda(self, device: Any = None) -> PackedSequence:
        return self.to("cuda" if device is None else device)

    @property
    def is_cuda(self) -> bool:
        return any(d.platform == "gpu" for d in getattr(self.data, "devices", lambda: set())())

    def is_pinned(self) -> bool:
        return False


# torch's dtype shorthands: packed.float(), packed.half(), packed.long(), ...
for _name, _dtype in (("double", jnp.float64), ("float", jnp.float32), ("half", jnp.float16), ("long", jnp.int64),
                      ("int", jnp.int32), ("short", jnp.int16), ("char", jnp.int8), ("byte", jnp.uint8)):
    setattr(PackedSequence, _name, lambda self, dtype=_dtype: self.to(dtype))


def _flatten(p: PackedSequence):
    static = tuple(None if a is None else tuple(a.tolist()) for a in p[1:])
    return (p.data,), static


def _unflatten(static, children) -> PackedSequence:
    fields = tuple(None if a is None else np.asarray(a, np.int64) for a in static)
    return tuple.__new__(PackedSequence, (children[0], *fields))


jax.tree_util.register_pytree_node(PackedSequence, _flatten, _unflatten)


def _lengths_of(batch_sizes: np.ndarray) -> np.ndarray:
    """Each sorted sequence's length from ``batch_sizes``."""
    b = int(batch_sizes[0]) if batch_sizes.size else 0
    return (batch_sizes[None, :] > np.arange(b)[:, None]).sum(1).astype(np.int64)


def _packed_positions(batch_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(time, sorted batch slot)`` of each row of ``data``, in order."""
    t = np.repeat(np.arange(batch_sizes.size), batch_sizes)
    starts = np.repeat(np.cumsum(batch_sizes) - batch_sizes, batch_sizes)
    return t, np.arange(t.size) - starts


def pack_padded_sequence(input: Any, lengths: Any, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) of sequences of ``lengths``.

    ``lengths`` must be concrete (see the module's note). With ``enforce_sorted=True`` they must decrease, as in
    torch; ``enforce_sorted=False`` sorts them and records the permutation.

    >>> import jax.numpy as jnp
    >>> from jnn.utils.rnn import pack_padded_sequence
    >>> x = jnp.array([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]])
    >>> p = pack_padded_sequence(x, [2, 3], batch_first=True, enforce_sorted=False)
    >>> p.data.tolist(), p.batch_sizes.tolist(), p.sorted_indices.tolist()
    ([3.0, 1.0, 4.0, 2.0, 5.0], [2, 2, 1], [1, 0])
    """
    who = "pack_padded_sequence"
    lengths = _static_ints(lengths, who, "lengths")
    x = jnp.asarray(input)
    if lengths.ndim != 1:
        raise ValueError(f"{who}: 'lengths' argument should be a 1D int64 array, but got a {lengths.ndim}D one")
    if x.ndim < 2:
        raise ValueError(f"{who}: expected input of at least 2 dimensions (T, B, *), got shape {x.shape}")
    if batch_first:
        x = jnp.swapaxes(x, 0, 1)
    if lengths.size != x.shape[1]:
        raise ValueError(f"{who}: Expected `len(lengths)` to be equal to batch_size, but got {lengths.size} "
                         f"(batch_size={x.shape[1]})")
    if lengths.size and lengths.min() <= 0:
        raise ValueError(f"{who}: Length of all samples has to be greater than 0, but found an element in "
                         "'lengths' that is <= 0")
    if lengths.size and lengths.max() > x.shape[0]:
        raise ValueError(f"{who}: a length ({lengths.max()}) exceeds the padded sequence length {x.shape[0]}")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise ValueError(
                f"{who}: `lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can "
                "pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this "
                "requirement if you do not need ONNX exportability."
            )
        sorted_indices = None
    else:
        sorted_indices = np.argsort(-lengths, kind="stable")
    batch_sizes = (lengths[None, :] > np.arange(int(lengths.max()))[:, None]).sum(1).astype(np.int64)
    return _pack(x, batch_sizes, sorted_indices)


def _pack(x: jax.Array, batch_sizes: np.ndarray, sorted_indices: np.ndarray | None) -> PackedSequence:
    """Pack the time-major padded ``x`` (T, B, *), in the caller's batch order, with the layout given."""
    order = np.arange(x.shape[1]) if sorted_indices is None else sorted_indices
    t, slot = _packed_positions(batch_sizes)
    return PackedSequence(x[t, order[slot]], batch_sizes, sorted_indices)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[jax.Array, np.ndarray]:
    """Undo :func:`pack_padded_sequence`: ``(padded, lengths)`` in the caller's batch order.

    ``padded`` is ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``), ``T`` the longest length or
    ``total_length``; ``lengths`` is a NumPy ``int64`` array.

    >>> import jax.numpy as jnp
    >>> from jnn.utils.rnn import pack_sequence, pad_packed_sequence
    >>> p = pack_sequence([jnp.array([1.0]), jnp.array([2.0, 3.0])], enforce_sorted=False)
    >>> padded, lengths = pad_packed_sequence(p, padding_value=-1.0, total_length=3)
    >>> padded.tolist(), lengths.tolist()
    ([[1.0, 2.0], [-1.0, 3.0], [-1.0, -1.0]], [1, 2])
    """
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence, got {type(sequence).__name__}")
    batch_sizes = sequence.batch_sizes
    steps = batch_sizes.size
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in input, but got "
                f"total_length={total_length} and max sequence length being {steps}"
            )
        steps = total_length
    batch = int(batch_sizes[0])
    order = np.arange(batch) if sequence.sorted_indices is None else sequence.sorted_indices
    # row of data for every (t, caller's b); one past the end selects the padding row
    rows = np.full((steps, batch), batch_sizes.sum(), np.int64)
    t, slot = _packed_positions(batch_sizes)
    rows[t, order[slot]] = np.arange(t.size)
    data = sequence.data
    padded = jnp.concatenate([data, jnp.full((1, *data.shape[1:]), padding_value, data.dtype)])[rows]
    lengths = _lengths_of(batch_sizes)
    if sequence.unsorted_indices is not None:
        lengths = lengths[sequence.unsorted_indices]
    return (jnp.swapaxes(padded, 0, 1) if batch_first else padded), lengths


def pad_sequence(sequences: Any, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> jax.Array:
    """Stack sequences ``(L_i, *)`` into ``(max L, B, *)`` (``(B, max L, *)`` with ``batch_first``), padded on
    ``padding_side`` with ``padding_value``.

    >>> import jax.numpy as jnp
    >>> from jnn.utils.rnn import pad_sequence
    >>> pad_sequence([jnp.array([1, 2]), jnp.array([3])], batch_first=True, padding_side="left").tolist()
    [[1, 2], [0, 3]]
    """
    if isinstance(sequences, (jax.Array, np.ndarray)):
        sequences = list(sequences)  # unbind the first dimension, as torch does under tracing
    if not isinstance(sequences, Iterable):
        raise TypeError(f"pad_sequence: Expected iterable for input sequences, but got arg of type: "
                        f"{type(sequences)}")
    seqs = [jnp.asarray(s) for s in sequences]
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: Expected padding_side to be one of left or right, but got {padding_side}.")
    if not seqs:
        raise ValueError("pad_sequence: received an empty list of sequences")
    if any(s.ndim == 0 for s in seqs):
        raise ValueError("pad_sequence: expected sequences of at least 1 dimension (L, *), got a 0-d array")
    trailing = seqs[0].shape[1:]
    for i, s in enumerate(seqs):
        if s.shape[1:] != trailing:
            raise ValueError(f"pad_sequence: sequence {i} has trailing shape {s.shape[1:]}, expected {trailing} "
                             "(the trailing dimensions of all sequences must match)")
    dtype = jnp.result_type(*seqs)
    longest = max(s.shape[0] for s in seqs)

    def pad(s):
        width = [(0, longest - s.shape[0]) if padding_side == "right" else (longest - s.shape[0], 0)]
        return jnp.pad(s.astype(dtype), width + [(0, 0)] * len(trailing), constant_values=padding_value)

    return jnp.stack([pad(s) for s in seqs], axis=0 if batch_first else 1)


def unpad_sequence(padded_sequences: Any, lengths: Any, batch_first: bool = False) -> list[jax.Array]:
    """Split a padded batch back into its sequences (a list of ``(L_i, *)`` arrays); ``lengths`` concrete.

    >>> import jax.numpy as jnp
    >>> from jnn.utils.rnn import unpad_sequence
    >>> [s.tolist() for s in unpad_sequence(jnp.array([[1, 2], [3, 0]]), [2, 1], batch_first=True)]
    [[1, 2], [3]]
    """
    lengths = _static_ints(lengths, "unpad_sequence", "lengths")
    x = jnp.asarray(padded_sequences)
    if not batch_first:
        x = jnp.swapaxes(x, 0, 1)
    if lengths.shape != (x.shape[0],):
        raise ValueError(f"unpad_sequence: expected {x.shape[0]} lengths (one per sequence), got shape "
                         f"{lengths.shape}")
    return [x[b, :int(n)] for b, n in enumerate(lengths)]


def pack_sequence(sequences: Sequence[Any], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences ``(L_i, *)``: ``pack_padded_sequence(pad_sequence(sequences), lengths)``.

    >>> import jax.numpy as jnp
    >>> from jnn.utils.rnn import pack_sequence
    >>> pack_sequence([jnp.array([1, 2, 3]), jnp.array([4])]).batch_sizes.tolist()
    [2, 1, 1]
    """
    lengths = [jnp.shape(s)[0] if jnp.ndim(s) else 0 for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[jax.Array]:
    """The list of sequences a :class:`PackedSequence` holds, in the caller's order.

    >>> import jax.numpy as jnp
    >>> from jnn.utils.rnn import pack_sequence, unpack_sequence
    >>> [s.tolist() for s in unpack_sequence(pack_sequence([jnp.array([1]), jnp.array([2, 3])], False))]
    [[1], [2, 3]]
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
