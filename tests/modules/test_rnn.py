"""RNN/LSTM/GRU and their cells against torch.nn: repr, state dict, outputs, final states, gradients, errors."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn

TOL = {"rtol": 1e-4, "atol": 1e-5}
IN, HID = 3, 5  # odd sizes, shared by most examples so that compiled programs are reused


def error_of(fn) -> tuple[type, str]:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    raise AssertionError("no error raised")


def twins(cls: str, *args, **kw):
    t = getattr(torch.nn, cls)(*args, **kw)
    j = copy_torch_weights(getattr(jnn, cls)(*args, **kw), t)
    return t, j


def flat(out) -> list:
    """(output, h) / (output, (h, c)) / h / (h, c) as a flat list of arrays."""
    return [a for a in jax.tree_util.tree_leaves(out, is_leaf=lambda a: isinstance(a, torch.Tensor))]


def sq_loss(leaves) -> object:
    return sum((a**2).sum() for a in leaves)


@functools.partial(jax.jit, static_argnums=0)
@functools.partial(jax.value_and_grad, argnums=(1, 3, 4), has_aux=True)
def _jnn_loss(apply, params, buffers, x, hx):
    out = flat(apply(params, buffers, x, hx)[0])
    return sq_loss(out), out


def jnn_run(module, x: np.ndarray, hx) -> tuple[list, dict, np.ndarray, list]:
    """Outputs, parameter grads, input grad and initial-state grads of sum of squares, in one jitted call
    (cached on the module's structure and the shapes, so hypothesis examples that repeat them reuse it)."""
    apply, params, buffers = jnn.split(module)
    (_, outs), (gp, gx, gh) = _jnn_loss(apply, params, buffers, jnp.asarray(x), jax.tree_util.tree_map(jnp.asarray, hx))
    return [np.asarray(o) for o in outs], {k: np.asarray(v) for k, v in gp.items()}, np.asarray(gx), flat(gh)


def torch_run(module, x: np.ndarray, hx) -> tuple[list, dict, np.ndarray, list]:
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    th = jax.tree_util.tree_map(lambda a: torch.from_numpy(a.copy()).requires_grad_(True), hx)
    module.zero_grad()
    outs = flat(module(tx, th))
    sq_loss(outs).backward()
    grads = {k: p.grad.numpy().copy() for k, p in module.named_parameters()}
    return [o.detach().numpy() for o in outs], grads, tx.grad.numpy(), [h.grad.numpy() for h in flat(th)]


def compare(j, t, x: np.ndarray, hx) -> None:
    outs, gp, gx, gh = jnn_run(j, x, hx)
    touts, tgp, tgx, tgh = torch_run(t, x, hx)
    assert [o.shape for o in outs] == [o.shape for o in touts]
    for a, b in zip(outs, touts, strict=True):
        assert_close(a, b, **TOL)
    assert sorted(gp) == sorted(tgp)
    for k in tgp:
        assert_close(gp[k], tgp[k], **TOL)
    assert_close(gx, tgx, **TOL)
    for a, b in zip(gh, tgh, strict=True):
        assert_close(a, b, **TOL)


@st.composite
def layer_configs(draw):
    cls = draw(st.sampled_from(["RNN", "LSTM", "GRU"]))
    kw = {
        "num_layers": draw(st.integers(1, 2)),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bidirectional": draw(st.booleans()),
    }
    if cls == "RNN":
        kw["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    if cls == "LSTM":
        kw["proj_size"] = draw(st.sampled_from([0, 2]))
    return cls, kw


def make_states(cls: str, kw: dict, batch: int | None, rng) -> object:
    d = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    shape = lambda size: (d, size) if batch is None else (d, batch, size)  # noqa: E731
    h = rng.standard_normal(shape(kw.get("proj_size") or HID)).astype(np.float32)
    if cls != "LSTM":
        return h
    return (h, rng.standard_normal(shape(HID)).astype(np.float32))


@settings(max_examples=15, deadline=None)
@given(config=layer_configs(), seq_len=st.sampled_from([1, 4]), batch=st.sampled_from([None, 3]),
       with_hx=st.booleans(), seed=st.integers(0, 2**16))
def test_layers_match_torch(config, seq_len, batch, with_hx, seed):
    cls, kw = config
    torch.manual_seed(seed)
    t, j = twins(cls, IN, HID, **kw)
    assert repr(j) == repr(t)
    assert [(k, v.shape) for k, v in j.state_dict().items()] == [(k, v.shape) for k, v in torch_state(t).items()]
    rng = np.random.default_rng(seed)
    if batch is None:
        shape = (seq_len, IN)
    else:
        shape = (batch, seq_len, IN) if kw["batch_first"] else (seq_len, batch, IN)
    x = rng.standard_normal(shape).astype(np.float32)
    hx = make_states(cls, kw, batch, rng) if with_hx else None
    compare(j, t, x, hx)


@pytest.mark.parametrize("cls,kw", [
    ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 2, "batch_first": True}),
    ("GRU", {"num_layers": 2, "bias": False}),
    ("RNN", {"nonlinearity": "relu", "bidirectional": True}),
])
def test_eager_forward_matches_torch(cls, kw):
    """The eager path (no jit), with and without initial states; an empty batch gives torch's shapes."""
    torch.manual_seed(0)
    t, j = twins(cls, IN, HID, **kw)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, IN) if kw.get("batch_first") else (5, 2, IN)).astype(np.float32)
    for hx in (None, make_states(cls, kw, 2, rng)):
        th = None if hx is None else jax.tree_util.tree_map(torch.from_numpy, hx)
        for a, b in zip(flat(j(jnp.asarray(x), hx)), flat(t(torch.from_numpy(x), th)), strict=True):
            assert_close(a, b, **TOL)
    empty = np.zeros((0, 4, IN) if kw.get("batch_first") else (4, 0, IN), np.float32)
    assert [a.shape for a in flat(j(jnp.asarray(empty)))] == [tuple(b.shape) for b in flat(t(torch.from_numpy(empty)))]


@pytest.mark.parametrize("cls,kw,dots", [
    ("GRU", {}, 1), ("RNN", {}, 1), ("LSTM", {}, 1), ("LSTM", {"proj_size": 2}, 2),
])
def test_scan_body_holds_only_the_recurrent_matmul(cls, kw, dots):
    """The input projection is one matmul over the whole sequence, outside the scan: the scan body has only
    the hidden-to-hidden matmul (and the projection for proj_size)."""
    m = getattr(jnn, cls)(IN, HID, num_layers=2, **kw)
    jaxpr = jax.make_jaxpr(lambda mod, v: mod(v))(m, jnp.ones((4, 2, IN)))

    def scans(eqns):
        for e in eqns:
            if e.primitive.name == "scan":
                yield e
            for p in e.params.values():
                if hasattr(p, "jaxpr") and hasattr(p.jaxpr, "eqns"):
                    yield from scans(p.jaxpr.eqns)

    found = list(scans(jaxpr.jaxpr.eqns))
    assert len(found) == 2  # one per layer (one direction)
    for e in found:
        body = e.params["jaxpr"].jaxpr
        assert sum(q.primitive.name == "dot_general" for q in body.eqns) == dots


# --- cells ------------------------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(cls=st.sampled_from(["RNNCell", "LSTMCell", "GRUCell"]), bias=st.booleans(), relu=st.booleans(),
       batch=st.sampled_from([None, 1, 3]), with_hx=st.booleans(), seed=st.integers(0, 2**16))
def test_cells_match_torch(cls, bias, relu, batch, with_hx, seed):
    kw = {"bias": bias}
    if cls == "RNNCell" and relu:
        kw["nonlinearity"] = "relu"
    torch.manual_seed(seed)
    t, j = twins(cls, IN, HID, **kw)
    assert repr(j) == repr(t)
    assert [(k, v.shape) for k, v in j.state_dict().items()] == [(k, v.shape) for k, v in torch_state(t).items()]
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    x = rng.standard_normal((*lead, IN)).astype(np.float32)
    hx = None
    if with_hx:
        hx = rng.standard_normal((*lead, HID)).astype(np.float32)
        if cls == "LSTMCell":
            hx = (hx, rng.standard_normal((*lead, HID)).astype(np.float32))
    compare(j, t, x, hx)


def test_cell_loop_matches_layer():
    """An LSTMCell stepped over a sequence with the layer's weights gives the layer's output."""
    layer = jnn.LSTM(IN, HID, key=jax.random.key(1))
    cell = jnn.LSTMCell(IN, HID)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = jax.random.normal(jax.random.key(2), (4, 2, IN))
    out, (h_n, c_n) = layer(x)
    h = c = jnp.zeros((2, HID))
    for step in range(4):
        h, c = cell(x[step], (h, c))
        assert_close(h, out[step], **TOL)
    assert_close(h, h_n[0], **TOL)
    assert_close(c, c_n[0], **TOL)


# --- dropout between layers -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_dropout_between_layers(cls):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((4, 2, IN)).astype(np.float32)
    tx = torch.from_numpy(x)
    # eval mode ignores dropout; p=0 and p=1 in training mode are deterministic, so torch is the oracle
    for p, train in ((0.5, False), (0.0, True), (1.0, True)):
        t, j = twins(cls, IN, HID, num_layers=2, dropout=p)
        t.train(train)
        j.train(train)
        for a, b in zip(flat(j(jnp.asarray(x))), flat(t(tx)), strict=True):
            assert_close(a, b, **TOL)
    # p in (0, 1) in training mode: randomness from jnn's stream; under jit it needs a key
    t, j = twins(cls, IN, HID, num_layers=2, dropout=0.5)
    fn = jax.jit(lambda m, v: m(v))
    with pytest.raises(jnn.random.MissingKeyError):
        fn(j, jnp.asarray(x))
    apply, params, buffers = jnn.split(j)
    run = jax.jit(lambda p, v, k: apply(p, buffers, v, train=True, key=k)[0][0])
    a, b = run(params, jnp.asarray(x), jax.random.key(0)), run(params, jnp.asarray(x), jax.random.key(0))
    c = run(params, jnp.asarray(x), jax.random.key(1))
    evaluated = apply(params, buffers, jnp.asarray(x), train=False)[0][0]
    assert bool((a == b).all()) and not bool((a == c).all()) and not bool((a == evaluated).all())
    j.train()
    eager1, eager2 = j(jnp.asarray(x))[0], j(jnp.asarray(x))[0]
    assert not bool((eager1 == eager2).all())  # the global stream advances between eager calls
    # dropout acts only between layers: a one-layer network with dropout is deterministic (torch warns too)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        one = jnn.GRU(IN, HID, dropout=0.5)
    assert bool((one(jnp.asarray(x))[0] == one(jnp.asarray(x))[0]).all())


# --- repr, state dict, init, misc --------------------------------------------------------------------------

REPR_CASES = [
    ("LSTM", (10, 20), {"num_layers": 2, "batch_first": True, "bidirectional": True}),
    ("LSTM", (10, 20), {"proj_size": 3, "bias": False, "dropout": 0.25, "num_layers": 3}),
    ("RNN", (10, 20), {"nonlinearity": "relu"}),
    ("RNN", (1, 1), {}),
    ("GRU", (4, 6), {"dropout": 0.5, "num_layers": 2, "bidirectional": True}),
    ("RNNCell", (3, 4), {"bias": False, "nonlinearity": "relu"}),
    ("LSTMCell", (3, 4), {}),
    ("GRUCell", (3, 4), {"bias": False}),
]


@pytest.mark.parametrize("cls,args,kw", REPR_CASES)
def test_repr_state_dict_and_init(cls, args, kw):
    t = getattr(torch.nn, cls)(*args, **kw)
    j = getattr(jnn, cls)(*args, **kw, key=jax.random.key(0))
    assert repr(j) == repr(t)
    ours, theirs = j.state_dict(), torch_state(t)
    assert [(k, tuple(v.shape), str(v.dtype)) for k, v in ours.items()] == \
        [(k, v.shape, str(v.dtype)) for k, v in theirs.items()]
    assert [k for k, _ in j.named_parameters()] == [k for k, _ in t.named_parameters()]
    bound = 1 / math.sqrt(args[1])
    for v in ours.values():
        assert float(jnp.abs(v).max()) <= bound
    again = getattr(jnn, cls)(*args, **kw, key=jax.random.key(0))
    assert all(bool((again.state_dict()[k] == v).all()) for k, v in ours.items())
    j.reset_parameters()
    assert all(j.state_dict()[k].shape == v.shape for k, v in ours.items())
    assert any(not bool((j.state_dict()[k] == v).all()) for k, v in ours.items())
    if not cls.endswith("Cell"):
        assert j.flatten_parameters() is None
        assert [[a.shape for a in g] for g in j.all_weights] == [[tuple(a.shape) for a in g] for g in t.all_weights]


def test_init_distribution():
    """U(-1/sqrt(hidden), 1/sqrt(hidden)) for every parameter, biases included."""
    j = jnn.LSTM(64, 100, num_layers=2, key=jax.random.key(3))
    bound = 0.1
    for name, v in j.state_dict().items():
        v = np.asarray(v)
        assert v.min() >= -bound and v.max() <= bound, name
        assert abs(v.std() - bound / math.sqrt(3)) < 0.1 * bound, name
        assert abs(v.mean()) < 0.1 * bound, name


def test_dtype_and_jit():
    j = jnn.GRU(IN, HID, dtype=jnp.bfloat16)
    assert all(v.dtype == jnp.bfloat16 for v in j.state_dict().values())
    out, h = j(jnp.ones((2, IN), jnp.bfloat16))
    assert out.dtype == h.dtype == jnp.bfloat16
    assert error_of(lambda: j(jnp.ones((2, IN))))[0] is ValueError
    m = jnn.LSTM(IN, HID, batch_first=True)
    x = jnp.ones((2, 3, IN))
    jitted = jax.jit(lambda mod, v: mod(v))(m, x)
    for a, b in zip(flat(jitted), flat(m(x)), strict=True):
        assert_close(a, b, **TOL)
    # vmap over unbatched sequences gives the batched result
    out, (h, c) = jax.vmap(lambda v: m(v))(x)  # states come back (batch, layers, H)
    ref_out, (ref_h, ref_c) = m(x)
    assert_close(out, ref_out, **TOL)
    assert_close(jnp.swapaxes(h, 0, 1), ref_h, **TOL)
    assert_close(jnp.swapaxes(c, 0, 1), ref_c, **TOL)


# --- errors: torch's types and messages ----------------------------------------------------------------------

ERROR_CASES = [
    lambda nn: nn.RNN(10, 20, nonlinearity="sigmoid"),
    lambda nn: nn.RNN(10, 20, proj_size=2),
    lambda nn: nn.GRU(10, 20, proj_size=2),
    lambda nn: nn.LSTM(10, 20, proj_size=20),
    lambda nn: nn.LSTM(10, 20, proj_size=-1),
    lambda nn: nn.LSTM(10, 20, dropout=1.5),
    lambda nn: nn.LSTM(10, 20, dropout=True),
    lambda nn: nn.LSTM(10, 20, bias=1),
    lambda nn: nn.LSTM(10, 20, batch_first=None),
    lambda nn: nn.LSTM(10.0, 20),
    lambda nn: nn.LSTM(0, 20),
    lambda nn: nn.GRU(10, 0),
    lambda nn: nn.GRU(10, 20, num_layers=0),
]


def forward_error_cases(nn, arr):
    return [
        lambda: nn.RNN(10, 20)(arr(5, 3, 7)),
        lambda: nn.LSTM(10, 20, batch_first=True)(arr(3, 5, 7)),
        lambda: nn.GRU(10, 20)(arr(3, 10, 3, 3)),
        lambda: nn.RNN(10, 20)(arr(10)),
        lambda: nn.LSTM(10, 20)(arr(3, 10, 3, 3)),
        lambda: nn.RNN(10, 20)(arr(0, 3, 10)),
        lambda: nn.GRU(10, 20)(arr(5, 3, 10), arr(1, 4, 20)),
        lambda: nn.GRU(10, 20)(arr(5, 10), arr(1, 4, 20)),
        lambda: nn.RNN(10, 20)(arr(5, 3, 10), arr(3, 20)),
        lambda: nn.RNN(10, 20, bidirectional=True)(arr(5, 3, 10), arr(1, 3, 20)),
        lambda: nn.LSTM(10, 20, proj_size=5)(arr(5, 3, 10), (arr(1, 3, 20), arr(1, 3, 20))),
        lambda: nn.LSTM(10, 20, proj_size=5)(arr(5, 3, 10), (arr(1, 3, 5), arr(1, 3, 5))),
        lambda: nn.LSTM(10, 20)(arr(5, 3, 10), (arr(1, 3, 20), arr(3, 20))),
        lambda: nn.LSTM(10, 20)(arr(5, 10), (arr(1, 3, 20), arr(1, 3, 20))),
        lambda: nn.LSTMCell(10, 20)(arr(3, 7)),
        lambda: nn.LSTMCell(10, 20)(arr(3, 10, 1)),
        lambda: nn.LSTMCell(10, 20)(arr(3, 10), (arr(3, 20), arr(3, 5))),
        lambda: nn.LSTMCell(10, 20)(arr(3, 10), (arr(3, 20, 1), arr(3, 20))),
        lambda: nn.GRUCell(10, 20)(arr(3, 10), arr(3, 5)),
        lambda: nn.GRUCell(10, 20)(arr(3, 10), arr(4, 20)),
        lambda: nn.GRUCell(10, 20)(arr(3, 10), arr(1, 3, 20)),
        lambda: nn.RNNCell(10, 20)(arr(1, 3, 10)),
    ]


@pytest.mark.parametrize("case", range(len(ERROR_CASES)))
def test_constructor_errors_match_torch(case):
    expected = error_of(lambda: ERROR_CASES[case](torch.nn))
    assert error_of(lambda: ERROR_CASES[case](jnn)) == expected


@pytest.mark.parametrize("case", range(len(forward_error_cases(None, None))))
def test_forward_errors_match_torch(case):
    expected = error_of(forward_error_cases(torch.nn, lambda *s: torch.zeros(s))[case])
    assert error_of(forward_error_cases(jnn, lambda *s: jnp.zeros(s))[case]) == expected


def test_rnncell_unknown_nonlinearity():
    # torch raises this at the first forward; jnn at construction, with the same type and text
    expected = error_of(lambda: torch.nn.RNNCell(3, 4, nonlinearity="gelu")(torch.zeros(3)))
    assert error_of(lambda: jnn.RNNCell(3, 4, nonlinearity="gelu")) == expected
