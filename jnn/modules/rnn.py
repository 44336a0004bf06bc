"""Recurrent layers: RNN, LSTM, GRU and their single-step cells RNNCell, LSTMCell, GRUCell.

The multi-layer layers run one ``jax.lax.scan`` per layer and direction; the input projection
``x @ weight_ih.T + bias_ih`` is computed for the whole sequence with one matmul before the scan, so the scan
body holds only the recurrent matmul. Gate order, parameter names, shapes and init are PyTorch's.
A :class:`jnn.utils.rnn.PackedSequence` input gives a packed output, as in torch: it runs as its zero-padded
form with a mask (a sequence's state stops changing after its last step, the reverse direction starts at its
last step), so ``h_n``/``c_n`` are each sequence's state at its true end; its lengths are static (see
:mod:`jnn.utils.rnn`).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from numbers import Number
from typing import Any

import jax
import jax.numpy as jnp

from jnn import functional as F
from jnn import random
from jnn.modules._utils import redraw_uniform, uniform
from jnn.modules.module import Module, Parameter
from jnn.utils.rnn import PackedSequence, _pack, pad_packed_sequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# --- one recurrent step, shared by the layers (inside scan) and the cells ----------------------------------
# ``gi`` is the input projection ``x @ W_ih.T + b_ih`` (plus the foldable part of b_hh), ``w_hh_t`` is W_hh.T.


def _rnn_step(gi: jax.Array, h: jax.Array, w_hh_t: jax.Array, b_hh: jax.Array | None, relu: bool) -> jax.Array:
    pre = gi + h @ w_hh_t
    if b_hh is not None:
        pre = pre + b_hh
    return jax.nn.relu(pre) if relu else jnp.tanh(pre)


def _lstm_step(
    gi: jax.Array, h: jax.Array, c: jax.Array, w_hh_t: jax.Array, b_hh: jax.Array | None, w_hr_t: jax.Array | None
) -> tuple[jax.Array, jax.Array]:
    gates = gi + h @ w_hh_t
    if b_hh is not None:
        gates = gates + b_hh
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    if w_hr_t is not None:
        h = h @ w_hr_t
    return h, c


def _gru_step(gi: jax.Array, h: jax.Array, w_hh_t: jax.Array, b_hh: jax.Array | None) -> jax.Array:
    gh = h @ w_hh_t
    if b_hh is not None:
        gh = gh + b_hh
    i_r, i_z, i_n = jnp.split(gi, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(gh, 3, axis=-1)
    r = jax.nn.sigmoid(i_r + h_r)
    z = jax.nn.sigmoid(i_z + h_z)
    n = jnp.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


_rnn_cell = jax.jit(_rnn_step, static_argnums=4)
_lstm_cell = jax.jit(_lstm_step)
_gru_cell = jax.jit(_gru_step)


def _direction(
    mode: str, xs: jax.Array, h0: jax.Array, c0: jax.Array | None, weights: dict[str, jax.Array | None],
    reverse: bool, lengths: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """One layer, one direction over a time-major sequence ``xs`` (T, B, F): (outputs (T, B, H), h_T, c_T).

    With ``lengths`` (B,) (a packed sequence), steps at ``t >= lengths[b]`` leave sequence ``b``'s state as it is and
    output zeros, so the final state is the one at each sequence's true end and the reverse direction starts there.
    """
    w_ih, w_hh, b_ih, b_hh, w_hr = (weights[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh", "w_hr"))
    gi = xs @ w_ih.T  # the whole sequence's input projection in one matmul
    if b_ih is not None:
        gi = gi + b_ih
    w_hh_t = w_hh.T
    if b_hh is not None and mode != "GRU":  # GRU keeps b_hn inside r * (W_hn h + b_hn)
        gi, b_hh = gi + b_hh, None
    if mode == "LSTM":
        w_hr_t = None if w_hr is None else w_hr.T

        def cell(g, carry):
            return _lstm_step(g, *carry, w_hh_t, b_hh, w_hr_t)
    elif mode == "GRU":
        def cell(g, carry):
            return _gru_step(g, carry, w_hh_t, b_hh)
    else:
        relu = mode == "RNN_RELU"

        def cell(g, carry):
            return _rnn_step(g, carry, w_hh_t, b_hh, relu)

    def output(carry):
        return carry[0] if mode == "LSTM" else carry

    if lengths is None:
        def step(carry, g):
            carry = cell(g, carry)
            return carry, output(carry)

        carry, ys = jax.lax.scan(step, (h0, c0) if mode == "LSTM" else h0, gi, reverse=reverse)
    else:
        def step(carry, g_t):
            g, t = g_t
            valid = (t < lengths)[:, None]
            new = cell(g, carry)
            carry = jax.tree.map(lambda n, o: jnp.where(valid, n, o), new, carry)
            return carry, jnp.where(valid, output(new), 0)

        carry, ys = jax.lax.scan(step, (h0, c0) if mode == "LSTM" else h0, (gi, jnp.arange(gi.shape[0])),
                                 reverse=reverse)
    return (ys, *carry) if mode == "LSTM" else (ys, carry, None)


@functools.partial(jax.jit, static_argnums=0)
def _layer(
    mode: str, x: jax.Array, h0: jax.Array, c0: jax.Array | None, weights: tuple[dict[str, jax.Array | None], ...],
    lengths: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """One layer, both directions: outputs (T, B, D * H) and final states (D, B, H).

    Jitted so that eager calls reuse the compiled scan (a fresh closure per call would recompile it); under an
    outer jit it is inlined.
    """
    outs, hs, cs = [], [], []
    for direction, w in enumerate(weights):
        ys, h, c = _direction(mode, x, h0[direction], None if c0 is None else c0[direction], w, direction == 1,
                              lengths)
        outs.append(ys)
        hs.append(h)
        cs.append(c)
    out = outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=-1)
    return out, jnp.stack(hs), None if c0 is None else jnp.stack(cs)


def _check_dtype(who: str, x: jax.Array, w: jax.Array) -> None:
    if x.dtype != w.dtype:
        raise ValueError(
            f"{who} input dtype ({x.dtype}) does not match weight dtype ({w.dtype}). "
            f"Convert input: input.astype({w.dtype}), or convert model: model.to({x.dtype})"
        )


def _init_params(module: Module, shapes: list[tuple[str, tuple[int, ...]]], hidden_size: int, dtype: Any,
                 device: Any, key: jax.Array | None, who: str) -> None:
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    with random.fork(key):
        for name, shape in shapes:
            setattr(module, name, Parameter(uniform(shape, bound, dtype, device, who)))


def _redraw(module: Module, hidden_size: int, who: str) -> None:
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for name, value in list(module.named_parameters(recurse=False)):
        setattr(module, name, redraw_uniform(value, bound, who))


# --- multi-layer layers ------------------------------------------------------------------------------------


class RNNBase(Module):
    """Base class of RNN, LSTM and GRU: parameters ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (and ``weight_hr_l{k}`` for an LSTM with ``proj_size``), ``_reverse`` for the backward
    direction, all initialised from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).

    >>> import jnn as nn
    >>> nn.RNNBase("GRU", 3, 5, num_layers=2)
    RNNBase(3, 5, num_layers=2)
    """

    def __init__(
        self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
        device: Any = None, dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        who = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(mode, mode)
        if not isinstance(dropout, Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                stacklevel=3,
            )
        for name, value in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size

        gate_size = _GATES[mode] * hidden_size
        num_directions = 2 if bidirectional else 1
        real_hidden = proj_size if proj_size > 0 else hidden_size
        shapes: list[tuple[str, tuple[int, ...]]] = []
        all_weights: list[list[str]] = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_in = input_size if layer == 0 else real_hidden * num_directions
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                group = [("weight_ih" + sfx, (gate_size, layer_in)), ("weight_hh" + sfx, (gate_size, real_hidden))]
                if bias:
                    group += [("bias_ih" + sfx, (gate_size,)), ("bias_hh" + sfx, (gate_size,))]
                if proj_size > 0:
                    group += [("weight_hr" + sfx, (proj_size, hidden_size))]
                shapes += group
                all_weights.append([name for name, _ in group])
        self._flat_weights_names = [name for name, _ in shapes]
        self._all_weights = all_weights
        _init_params(self, shapes, hidden_size, dtype, device, key, who)

    @property
    def _who(self) -> str:
        return "RNN" if self.mode.startswith("RNN") else self.mode

    @property
    def all_weights(self) -> list[list[jax.Array]]:
        """The parameters grouped per layer and direction, in torch's order."""
        return [[getattr(self, name) for name in group] for group in self._all_weights]

    @property
    def _flat_weights(self) -> list[jax.Array]:
        return [getattr(self, name) for name in self._flat_weights_names]

    def flatten_parameters(self) -> None:
        """A no-op: in PyTorch it only re-lays out memory for cuDNN; JAX arrays need nothing of the sort."""
        return None

    def reset_parameters(self) -> None:
        """Re-draw every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) (jnn's random stream)."""
        _redraw(self, self.hidden_size, self._who)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # -- forward ------------------------------------------------------------------------------------------

    def _layer_weights(self, layer: int, direction: int) -> dict[str, jax.Array | None]:
        sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        get = self._parameters.get
        return {"w_ih": get("weight_ih" + sfx), "w_hh": get("weight_hh" + sfx), "b_ih": get("bias_ih" + sfx),
                "b_hh": get("bias_hh" + sfx), "w_hr": get("weight_hr" + sfx)}

    def _check_input(self, x: jax.Array) -> None:
        _check_dtype(self._who, x, self._parameters[self._flat_weights_names[0]])
        if x.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {x.shape[-1]}"
            )
        if x.shape[0] == 0:  # time-major by now
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")

    def _expected(self, batch: int, size: int) -> tuple[int, int, int]:
        return (self.num_layers * (2 if self.bidirectional else 1), batch, size)

    @staticmethod
    def _check_hidden(h: jax.Array, expected: tuple[int, int, int], msg: str = "Expected hidden size {}, got {}"):
        if tuple(h.shape) != expected:
            raise RuntimeError(msg.format(expected, list(h.shape)))

    def _run(self, x: jax.Array, h0: jax.Array, c0: jax.Array | None, lengths: jax.Array | None = None):
        """``x`` batched, time-major (T, B, F); ``h0``/``c0`` (D * num_layers, B, H); ``lengths`` (B,) for packed
        input. Returns (out, h_n, c_n)."""
        d = 2 if self.bidirectional else 1
        hs, cs = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, training=True)
            weights = tuple(self._layer_weights(layer, direction) for direction in range(d))
            x, h, c = _layer(self.mode, x, h0[layer * d:(layer + 1) * d],
                             None if c0 is None else c0[layer * d:(layer + 1) * d], weights, lengths)
            hs.append(h)
            cs.append(c)
        h_n = hs[0] if len(hs) == 1 else jnp.concatenate(hs)
        c_n = None if c0 is None else (cs[0] if len(cs) == 1 else jnp.concatenate(cs))
        return x, h_n, c_n

    def _prepare(self, input: Any) -> tuple[jax.Array, bool, PackedSequence | None, jax.Array | None]:
        """Input as batched, time-major (T, B, F), whether it came batched, and for a packed sequence the packed
        input and the lengths (B,) in the caller's batch order (then ``x`` is its zero-padded form)."""
        if isinstance(input, PackedSequence):
            x, lengths = pad_packed_sequence(input)
            return x, True, input, jnp.asarray(lengths, jnp.int32)
        x = jnp.asarray(input)
        if x.ndim not in (2, 3):
            suffix = " tensor instead" if self.mode.startswith("RNN") else " instead"
            raise ValueError(f"{self._who}: Expected input to be 2D or 3D, got {x.ndim}D{suffix}")
        batched = x.ndim == 3
        if not batched:
            x = jnp.expand_dims(x, 0 if self.batch_first else 1)
        if self.batch_first:
            x = jnp.swapaxes(x, 0, 1)
        return x, batched, None, None


class RNN(RNNBase):
    """Multi-layer Elman RNN, ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or ReLU).

    ``forward(input, hx=None)`` takes input ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``) or
    unbatched ``(L, H_in)`` and returns ``(output, h_n)`` with PyTorch's shapes.

    Args:
        input_size: features of the input.
        hidden_size: features of the hidden state.
        num_layers: number of stacked layers.
        nonlinearity: ``'tanh'`` or ``'relu'``.
        bias: learn the ``b_ih``/``b_hh`` biases.
        batch_first: input and output are ``(batch, seq, feature)`` instead of ``(seq, batch, feature)``.
        dropout: dropout probability on the outputs of each layer but the last (training mode).
        bidirectional: run a second, reversed direction and concatenate the outputs.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> rnn = nn.RNN(10, 20, num_layers=2, nonlinearity="relu")
    >>> rnn
    RNN(10, 20, num_layers=2)
    >>> out, h_n = rnn(jnp.ones((5, 3, 10)))
    >>> out.shape, h_n.shape
    ((5, 3, 20), (2, 3, 20))
    >>> from jnn.utils.rnn import pack_sequence   # sequences of lengths 5 and 2: packed in, packed out
    >>> out, h_n = rnn(pack_sequence([jnp.ones((5, 10)), jnp.ones((2, 10))]))
    >>> out.data.shape, out.batch_sizes.tolist(), h_n.shape
    ((7, 20), [2, 2, 1, 1, 1], (2, 2, 20))
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh", bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
        dtype: Any = None, *, key: jax.Array | None = None, **kwargs: Any,
    ) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if kwargs:
            raise TypeError(f"RNN.__init__() got an unexpected keyword argument '{next(iter(kwargs))}'")
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype, key=key)
        self.nonlinearity = nonlinearity

    def forward(self, input: jax.Array, hx: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        x, batched, packed, lengths = self._prepare(input)
        if hx is not None:
            hx = jnp.asarray(hx)
            if batched and hx.ndim != 3:
                raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.ndim}-D tensor")
            if not batched:
                if hx.ndim != 2:
                    raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.ndim}-D tensor")
                hx = hx[:, None]
        self._check_input(x)
        expected = self._expected(x.shape[1], self.hidden_size)
        if hx is None:
            hx = jnp.zeros(expected, x.dtype)
        self._check_hidden(hx, expected)
        out, h_n, _ = self._run(x, hx, None, lengths)
        return _finish(self, out, batched, packed), (h_n if batched else h_n[:, 0])


def _finish(module: RNNBase, out: jax.Array, batched: bool, packed: PackedSequence | None) -> Any:
    if packed is not None:  # the output packed as the input was (same batch_sizes and permutation)
        return _pack(out, packed.batch_sizes, packed.sorted_indices)
    if not batched:
        return out[:, 0]
    return jnp.swapaxes(out, 0, 1) if module.batch_first else out


class LSTM(RNNBase):
    """Multi-layer LSTM with PyTorch's gate order (i, f, g, o) and optional projection (``proj_size``).

    ``forward(input, hx=None)`` with ``hx = (h_0, c_0)`` returns ``(output, (h_n, c_n))``; ``h`` has
    ``proj_size`` features when it is set, ``c`` always ``hidden_size``.

    Args:
        input_size: features of the input.
        hidden_size: features of the hidden state.
        num_layers: number of stacked layers.
        bias: learn the ``b_ih``/``b_hh`` biases.
        batch_first: input and output are ``(batch, seq, feature)`` instead of ``(seq, batch, feature)``.
        dropout: dropout probability on the outputs of each layer but the last (training mode).
        bidirectional: run a second, reversed direction and concatenate the outputs.
        proj_size: project the hidden state to this size (0: no projection).
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> lstm = nn.LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True)
    >>> lstm
    LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True)
    >>> out, (h_n, c_n) = lstm(jnp.ones((3, 5, 10)))
    >>> out.shape, h_n.shape, c_n.shape
    ((3, 5, 40), (4, 3, 20), (4, 3, 20))
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, batch_first: bool = False,
        dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0, device: Any = None,
        dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device=device, dtype=dtype, key=key)

    def forward(
        self, input: jax.Array, hx: tuple[jax.Array, jax.Array] | None = None
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        x, batched, packed, lengths = self._prepare(input)
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"LSTM: hx should be a tuple (h_0, c_0), got {type(hx).__name__}")
            h0, c0 = jnp.asarray(hx[0]), jnp.asarray(hx[1])
            want = 3 if batched else 2
            if h0.ndim != want or c0.ndim != want:
                kind = "batched 3-D" if batched else "unbatched 2-D"
                raise RuntimeError(f"For {kind} input, hx and cx should also be {want}-D but got "
                                   f"({h0.ndim}-D, {c0.ndim}-D) tensors")
            if not batched:
                h0, c0 = h0[:, None], c0[:, None]
        self._check_input(x)
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        expected_h = self._expected(x.shape[1], real_hidden)
        expected_c = self._expected(x.shape[1], self.hidden_size)
        if hx is None:
            h0, c0 = jnp.zeros(expected_h, x.dtype), jnp.zeros(expected_c, x.dtype)
        self._check_hidden(h0, expected_h, "Expected hidden[0] size {}, got {}")
        self._check_hidden(c0, expected_c, "Expected hidden[1] size {}, got {}")
        out, h_n, c_n = self._run(x, h0, c0, lengths)
        if not batched:
            h_n, c_n = h_n[:, 0], c_n[:, 0]
        return _finish(self, out, batched, packed), (h_n, c_n)


class GRU(RNNBase):
    """Multi-layer GRU with PyTorch's gate order (r, z, n) and ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.

    ``forward(input, hx=None)`` returns ``(output, h_n)`` with PyTorch's shapes.

    Args:
        input_size: features of the input.
        hidden_size: features of the hidden state.
        num_layers: number of stacked layers.
        bias: learn the ``b_ih``/``b_hh`` biases.
        batch_first: input and output are ``(batch, seq, feature)`` instead of ``(seq, batch, feature)``.
        dropout: dropout probability on the outputs of each layer but the last (training mode).
        bidirectional: run a second, reversed direction and concatenate the outputs.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> gru = nn.GRU(4, 6, bidirectional=True)
    >>> out, h_n = gru(jnp.ones((7, 4)))   # unbatched (L, H_in)
    >>> out.shape, h_n.shape
    ((7, 12), (2, 6))
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, batch_first: bool = False,
        dropout: float = 0.0, bidirectional: bool = False, device: Any = None, dtype: Any = None,
        *, key: jax.Array | None = None, **kwargs: Any,
    ) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if kwargs:
            raise TypeError(f"GRU.__init__() got an unexpected keyword argument '{next(iter(kwargs))}'")
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype, key=key)

    forward = RNN.forward


# --- cells -------------------------------------------------------------------------------------------------


class RNNCellBase(Module):
    """Base class of the cells: ``weight_ih`` ``(chunks * hidden, input)``, ``weight_hh`` ``(chunks * hidden,
    hidden)``, ``bias_ih``/``bias_hh`` ``(chunks * hidden,)``, all U(-1/sqrt(hidden), 1/sqrt(hidden)).

    >>> import jnn as nn
    >>> nn.RNNCellBase(3, 4, bias=False, num_chunks=2).weight_ih.shape
    (8, 3)
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device: Any = None,
        dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        shapes = [("weight_ih", (num_chunks * hidden_size, input_size)),
                  ("weight_hh", (num_chunks * hidden_size, hidden_size))]
        if bias:
            shapes += [("bias_ih", (num_chunks * hidden_size,)), ("bias_hh", (num_chunks * hidden_size,))]
        _init_params(self, shapes, hidden_size, dtype, device, key, type(self).__name__)
        if not bias:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def reset_parameters(self) -> None:
        """Re-draw every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) (jnn's random stream)."""
        _redraw(self, self.hidden_size, type(self).__name__)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = self.__dict__.get("nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s

    def _prepare(self, input: Any, hx: Any, n_hidden: int) -> tuple[jax.Array, list[jax.Array], bool]:
        """Checks as torch does; returns batched input (N, H_in), hidden states (N, H) and whether batched."""
        who = type(self).__name__
        x = jnp.asarray(input)
        if x.ndim not in (1, 2):
            raise ValueError(f"{who}: Expected input to be 1D or 2D, got {x.ndim}D instead")
        if hx is None:
            hs = None
        elif n_hidden == 1:
            hs = [jnp.asarray(hx)]
            if hs[0].ndim not in (1, 2):
                raise ValueError(f"{who}: Expected hidden to be 1D or 2D, got {hs[0].ndim}D instead")
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{who}: hx should be a tuple (h_0, c_0), got {type(hx).__name__}")
            hs = [jnp.asarray(h) for h in hx]
            for i, h in enumerate(hs):
                if h.ndim not in (1, 2):
                    raise ValueError(f"{who}: Expected hx[{i}] to be 1D or 2D, got {h.ndim}D instead")
        batched = x.ndim == 2
        if not batched:
            x = x[None]
            if hs is not None:
                for i, h in enumerate(hs):
                    if h.ndim != 1:
                        raise RuntimeError(f"{who}: for unbatched 1-D input, hidden state {i} should also be 1-D, "
                                           f"got {h.ndim}-D")
                hs = [h[None] for h in hs]
        _check_dtype(who, x, self.weight_ih)
        if x.shape[1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {x.shape[1]} expected {self.input_size}")
        if hs is None:
            hs = [jnp.zeros((x.shape[0], self.hidden_size), x.dtype)] * n_hidden
        for i, h in enumerate(hs):
            if h.shape[0] != x.shape[0]:
                raise RuntimeError(f"Input batch size {x.shape[0]} doesn't match hidden{i} batch size {h.shape[0]}")
            if h.shape[1] != self.hidden_size:
                raise RuntimeError(
                    f"hidden{i} has inconsistent hidden_size: got {h.shape[1]}, expected {self.hidden_size}"
                )
        return x, hs, batched

    def _gi(self, x: jax.Array) -> jax.Array:
        gi = x @ self.weight_ih.T
        return gi if self.bias_ih is None else gi + self.bias_ih


def _unbatch(batched: bool) -> Callable[[jax.Array], jax.Array]:
    return (lambda a: a) if batched else (lambda a: a[0])


class RNNCell(RNNCellBase):
    """One step of an Elman RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ReLU).

    Args:
        input_size: features of the input.
        hidden_size: features of the hidden state.
        bias: learn the ``bias_ih``/``bias_hh`` biases.
        nonlinearity: ``'tanh'`` or ``'relu'``.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> cell = nn.RNNCell(10, 20, nonlinearity="relu")
    >>> cell
    RNNCell(10, 20, nonlinearity=relu)
    >>> cell(jnp.ones((3, 10))).shape, cell(jnp.ones(10)).shape
    ((3, 20), (20,))
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", device: Any = None,
        dtype: Any = None, *, key: jax.Array | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):  # torch raises this at the first forward; we raise it here
            raise RuntimeError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype, key=key)
        self.nonlinearity = nonlinearity

    def forward(self, input: jax.Array, hx: jax.Array | None = None) -> jax.Array:
        x, (h,), batched = self._prepare(input, hx, 1)
        h = _rnn_cell(self._gi(x), h, self.weight_hh.T, self.bias_hh, self.nonlinearity == "relu")
        return _unbatch(batched)(h)


class LSTMCell(RNNCellBase):
    """One LSTM step with PyTorch's gate order (i, f, g, o): ``forward(input, (h, c)) -> (h', c')``.

    Args:
        input_size: features of the input.
        hidden_size: features of the hidden state.
        bias: learn the ``bias_ih``/``bias_hh`` biases.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> cell = nn.LSTMCell(10, 20)
    >>> h, c = cell(jnp.ones((3, 10)))
    >>> h.shape, c.shape
    ((3, 20), (3, 20))
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None,
        *, key: jax.Array | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype, key=key)

    def forward(
        self, input: jax.Array, hx: tuple[jax.Array, jax.Array] | None = None
    ) -> tuple[jax.Array, jax.Array]:
        x, (h, c), batched = self._prepare(input, hx, 2)
        h, c = _lstm_cell(self._gi(x), h, c, self.weight_hh.T, self.bias_hh, None)
        un = _unbatch(batched)
        return un(h), un(c)


class GRUCell(RNNCellBase):
    """One GRU step with PyTorch's gate order (r, z, n) and ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.

    Args:
        input_size: features of the input.
        hidden_size: features of the hidden state.
        bias: learn the ``bias_ih``/``bias_hh`` biases.
        device: where the parameters are placed (a JAX device, ``'cpu'``, or a torch.device).
        dtype: the parameters' floating dtype (default float32).
        key: a JAX key for the initial parameters (default: jnn's global stream, see ``jnn.manual_seed``).

    >>> import jax.numpy as jnp, jnn as nn
    >>> nn.GRUCell(10, 20)(jnp.ones(10), jnp.zeros(20)).shape
    (20,)
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None,
        *, key: jax.Array | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype, key=key)

    def forward(self, input: jax.Array, hx: jax.Array | None = None) -> jax.Array:
        x, (h,), batched = self._prepare(input, hx, 1)
        return _unbatch(batched)(_gru_cell(self._gi(x), h, self.weight_hh.T, self.bias_hh))
