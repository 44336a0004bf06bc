"""jnn.utils.rnn and packed input to nn.RNN/LSTM/GRU against torch.nn.utils.rnn: fields, layouts, errors, outputs,
final states and gradients; eager, under jit (a PackedSequence is a pytree) and through split."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils import rnn as TR

import jnn
from jnn.utils import rnn as R

TOL = {"rtol": 1e-4, "atol": 1e-5}


def same_error(ours, theirs, ours_type=ValueError):
    with pytest.raises(RuntimeError) as t:
        theirs()
    with pytest.raises(ours_type) as o:
        ours()
    assert str(t.value) in str(o.value)


def assert_packed_equal(ours: R.PackedSequence, theirs) -> None:
    assert isinstance(ours, R.PackedSequence)
    assert_close(ours.data, theirs.data, **TOL)
    assert ours.batch_sizes.dtype == np.int64
    np.testing.assert_array_equal(ours.batch_sizes, theirs.batch_sizes.numpy())
    for mine, its in ((ours.sorted_indices, theirs.sorted_indices), (ours.unsorted_indices, theirs.unsorted_indices)):
        assert (mine is None) == (its is None)
        if its is not None:
            np.testing.assert_array_equal(mine, its.numpy())


# --- pad_sequence, pack/pad, pack_sequence/unpack, unpad ---------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5), trailing=st.sampled_from([(), (3,), (2, 2)]),
       batch_first=st.booleans(), side=st.sampled_from(["right", "left"]), value=st.sampled_from([0.0, -1.5]))
def test_pad_sequence_matches_torch(lengths, trailing, batch_first, side, value):
    rng = np.random.default_rng(len(lengths))
    seqs = [rng.standard_normal((n, *trailing)).astype(np.float32) for n in lengths]
    want = TR.pad_sequence([torch.from_numpy(s) for s in seqs], batch_first, value, side)
    got = R.pad_sequence([jnp.asarray(s) for s in seqs], batch_first, value, side)
    assert got.shape == tuple(want.shape)
    np.testing.assert_array_equal(np.asarray(got), want.numpy())


def test_pad_sequence_int_dtype_and_errors():
    seqs = [np.array([1, 2, 3]), np.array([4])]
    want = TR.pad_sequence([torch.from_numpy(s) for s in seqs], batch_first=True, padding_value=7)
    got = R.pad_sequence(seqs, batch_first=True, padding_value=7)
    np.testing.assert_array_equal(np.asarray(got), want.numpy())
    assert jnp.issubdtype(got.dtype, jnp.integer)
    same_error(lambda: R.pad_sequence([jnp.ones(2)], padding_side="top"),
               lambda: TR.pad_sequence([torch.ones(2)], padding_side="top"))
    same_error(lambda: R.pad_sequence([]), lambda: TR.pad_sequence([]))
    same_error(lambda: R.pad_sequence(3), lambda: TR.pad_sequence(3), TypeError)
    with pytest.raises(ValueError, match="trailing dimensions"):
        R.pad_sequence([jnp.ones((2, 3)), jnp.ones((3, 4))])


LENGTHS = [[5, 3, 3, 1], [2, 5, 1, 4], [1], [3, 3, 3], [4, 1, 4, 2, 4]]


@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_and_pad_packed_match_torch(lengths, batch_first):
    b, t = len(lengths), max(lengths) + 1  # one extra padded step
    x = np.random.default_rng(b).standard_normal((b, t, 3) if batch_first else (t, b, 3)).astype(np.float32)
    sorted_ = all(a >= c for a, c in itertools.pairwise(lengths))
    for enforce in ([True, False] if sorted_ else [False]):
        for as_lengths in (lambda v: v, np.array, torch.tensor, jnp.array):
            theirs = TR.pack_padded_sequence(torch.from_numpy(x), torch.tensor(lengths), batch_first, enforce)
            ours = R.pack_padded_sequence(jnp.asarray(x), as_lengths(lengths), batch_first, enforce)
            assert_packed_equal(ours, theirs)
        for total, value in ((None, 0.0), (t + 2, -2.0)):
            want, want_len = TR.pad_packed_sequence(theirs, batch_first, value, total)
            got, got_len = R.pad_packed_sequence(ours, batch_first, value, total)
            np.testing.assert_array_equal(np.asarray(got), want.numpy())
            assert got_len.dtype == np.int64
            np.testing.assert_array_equal(got_len, want_len.numpy())
        # the packed data of a jitted function: pack with closed-over lengths, padded back under jit
        jitted = jax.jit(lambda a, enforce=enforce: R.pad_packed_sequence(
            R.pack_padded_sequence(a, lengths, batch_first, enforce), batch_first)[0])
        np.testing.assert_array_equal(np.asarray(jitted(jnp.asarray(x))),
                                      TR.pad_packed_sequence(theirs, batch_first)[0].numpy())


def test_pack_errors_match_torch():
    x = np.zeros((5, 3, 2), np.float32)
    for lengths in ([3, 5, 2], [5, 3, 0], [5, 3]):
        same_error(lambda lengths=lengths: R.pack_padded_sequence(jnp.asarray(x), lengths),
                   lambda lengths=lengths: TR.pack_padded_sequence(torch.from_numpy(x), lengths))
    with pytest.raises(ValueError, match="exceeds the padded sequence length 5"):  # torch reads out of bounds
        R.pack_padded_sequence(jnp.asarray(x), [6, 3, 2])
    with pytest.raises(ValueError, match="1D"):
        R.pack_padded_sequence(jnp.asarray(x), [[5, 3, 2]])
    packed = R.pack_padded_sequence(jnp.asarray(x), [5, 3, 2])
    with pytest.raises(ValueError, match="total_length=4 and max sequence length being 5"):
        R.pad_packed_sequence(packed, total_length=4)
    with pytest.raises(TypeError, match="lengths must be concrete"):
        jax.jit(lambda a, n: R.pack_padded_sequence(a, n))(jnp.asarray(x), jnp.array([5, 3, 2]))
    with pytest.raises(TypeError, match="expected a PackedSequence"):
        R.pad_packed_sequence(jnp.asarray(x))


def test_pack_sequence_unpack_unpad_match_torch():
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (2, 4, 1)]
    theirs = TR.pack_sequence([torch.from_numpy(s) for s in seqs], enforce_sorted=False)
    ours = R.pack_sequence([jnp.asarray(s) for s in seqs], enforce_sorted=False)
    assert_packed_equal(ours, theirs)
    for a, b in zip(R.unpack_sequence(ours), TR.unpack_sequence(theirs), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b.numpy())
    padded = TR.pad_sequence([torch.from_numpy(s) for s in seqs])
    for batch_first in (False, True):
        p = padded.transpose(0, 1).contiguous() if batch_first else padded.clone()
        want = TR.unpad_sequence(p.clone(), torch.tensor([2, 4, 1]), batch_first)
        got = R.unpad_sequence(jnp.asarray(p.numpy()), [2, 4, 1], batch_first)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(np.asarray(a), b.numpy())
    same_error(lambda: R.pack_sequence([jnp.ones(1), jnp.ones(2)]),
               lambda: TR.pack_sequence([torch.ones(1), torch.ones(2)]))


def test_packed_sequence_is_a_pytree_with_static_layout():
    packed = R.pack_sequence([jnp.ones((3, 2)), jnp.ones((1, 2))])
    leaves, treedef = jax.tree.flatten(packed)
    assert len(leaves) == 1 and leaves[0] is packed.data
    doubled = jax.jit(lambda p: jax.tree.map(lambda d: d * 2, p))(packed)
    assert isinstance(doubled, R.PackedSequence)
    np.testing.assert_array_equal(doubled.batch_sizes, packed.batch_sizes)
    np.testing.assert_array_equal(np.asarray(doubled.data), 2 * np.asarray(packed.data))
    data, batch_sizes, sorted_indices, unsorted_indices = packed  # a named tuple, as in torch
    assert sorted_indices is None and unsorted_indices is None
    by_hand = R.PackedSequence(data, batch_sizes, np.array([1, 0]))
    np.testing.assert_array_equal(by_hand.unsorted_indices, [1, 0])
    assert by_hand.half().data.dtype == jnp.float16 and by_hand.to(jnp.int32).data.dtype == jnp.int32
    assert by_hand.to("cpu").data.dtype == jnp.float32
    with pytest.raises(ValueError, match="sum\\(batch_sizes\\) = 4 rows"):
        R.PackedSequence(jnp.ones((3, 2)), batch_sizes)


def test_gradients_through_pack_and_pad_match_torch():
    x = np.random.default_rng(1).standard_normal((4, 3, 2)).astype(np.float32)
    w = np.random.default_rng(2).standard_normal((7, 2)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    packed = TR.pack_padded_sequence(tx, [2, 4, 1], enforce_sorted=False)
    loss = (packed.data * torch.from_numpy(w)).sum() + (TR.pad_packed_sequence(packed, padding_value=3.0)[0] ** 2).sum()
    loss.backward()

    def f(a):
        p = R.pack_padded_sequence(a, [2, 4, 1], enforce_sorted=False)
        return (p.data * w).sum() + (R.pad_packed_sequence(p, padding_value=3.0)[0] ** 2).sum()

    assert_close(jax.grad(f)(jnp.asarray(x)), tx.grad)


# --- RNN, LSTM, GRU with packed input ------------------------------------------------------------------------------

CONFIGS = [
    ("RNN", dict(num_layers=1)), ("RNN", dict(num_layers=2, bidirectional=True, nonlinearity="relu")),
    ("GRU", dict(num_layers=1, bidirectional=True)), ("GRU", dict(num_layers=2, batch_first=True)),
    ("LSTM", dict(num_layers=1)), ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=3, batch_first=True)),
    ("LSTM", dict(num_layers=1, proj_size=2, bias=False)),
]
IN, HID = 3, 5


def twins(mode, kw):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, mode)(IN, HID, **kw)
    return copy_torch_weights(getattr(jnn, mode)(IN, HID, **kw), theirs), theirs


def states(h):
    return list(h) if isinstance(h, tuple) else [h]


@pytest.mark.parametrize("mode,kw", CONFIGS, ids=[f"{m}-{k}" for m, k in CONFIGS])
@pytest.mark.parametrize("lengths", [[4, 6, 1, 3], [6, 6, 2, 2]], ids=str)
@pytest.mark.parametrize("with_hx", [False, True])
def test_rnn_packed_input_matches_torch(mode, kw, lengths, with_hx):
    net, tnet = twins(mode, kw)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, len(lengths), IN)).astype(np.float32)  # time-major: packed ignores batch_first
    d = (2 if kw.get("bidirectional") else 1) * kw["num_layers"]
    hx = None
    if with_hx:
        hx = [rng.standard_normal((d, len(lengths), kw.get("proj_size") or HID)).astype(np.float32)]
        if mode == "LSTM":
            hx.append(rng.standard_normal((d, len(lengths), HID)).astype(np.float32))
    thx = None if hx is None else [torch.from_numpy(h).requires_grad_() for h in hx]
    tx = torch.from_numpy(x).requires_grad_()
    tpacked = TR.pack_padded_sequence(tx, lengths, enforce_sorted=False)
    tout, th = tnet(tpacked, None if thx is None else (tuple(thx) if mode == "LSTM" else thx[0]))
    packed = R.pack_padded_sequence(jnp.asarray(x), lengths, enforce_sorted=False)
    jhx = None if hx is None else (tuple(map(jnp.asarray, hx)) if mode == "LSTM" else jnp.asarray(hx[0]))
    out, h = net(packed, jhx)
    assert_packed_equal(out, tout)
    for a, b in zip(states(h), states(th), strict=True):
        assert_close(a, b, **TOL)

    # gradients of a loss of the packed output and the final states: parameters, input and hx
    def loss_of(o, hs):
        return (o.data ** 2).sum() + sum((s * (i + 1)).sum() for i, s in enumerate(hs))

    loss_of(tout, states(th)).backward()
    apply, params, buffers = jnn.split(net)

    def loss(p, xs, hs):
        pk = R.pack_padded_sequence(xs, lengths, enforce_sorted=False)
        o, hn = apply(p, buffers, pk, None if hs is None else (tuple(hs) if mode == "LSTM" else hs[0]))[0]
        return loss_of(o, states(hn))

    gp, gx, gh = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, jnp.asarray(x),
                                                           None if hx is None else list(map(jnp.asarray, hx)))
    for k, p in tnet.named_parameters():
        assert_close(gp[k], p.grad, **TOL)
    assert_close(gx, tx.grad, **TOL)
    if hx is not None:
        for a, b in zip(gh, thx, strict=True):
            assert_close(a, b.grad, **TOL)


def test_rnn_packed_under_jit_as_a_pytree_and_sorted_input():
    net, tnet = twins("GRU", dict(num_layers=2, bidirectional=True))
    seqs = [np.random.default_rng(i).standard_normal((n, IN)).astype(np.float32) for i, n in enumerate((5, 3, 2))]
    tout, th = tnet(TR.pack_sequence([torch.from_numpy(s) for s in seqs]))
    packed = R.pack_sequence([jnp.asarray(s) for s in seqs])
    out, h = jax.jit(lambda m, p: m(p))(net, packed)
    assert out.sorted_indices is None
    assert_close(out.data, tout.data, **TOL)
    assert_close(h, th, **TOL)
    padded, lengths = R.pad_packed_sequence(out, batch_first=True)
    want, want_len = TR.pad_packed_sequence(tout, batch_first=True)
    assert_close(padded, want, **TOL)
    np.testing.assert_array_equal(lengths, want_len.numpy())


def test_rnn_packed_hidden_size_error_matches_torch():
    net, tnet = twins("LSTM", dict(num_layers=1))
    x = np.zeros((4, 2, IN), np.float32)
    h = np.zeros((1, 3, HID), np.float32)
    with pytest.raises(RuntimeError):  # torch's message here comes from a broadcast deep inside
        tnet(TR.pack_padded_sequence(torch.from_numpy(x), [4, 2]), (torch.from_numpy(h), torch.from_numpy(h)))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 2, 5\), got \[1, 3, 5\]"):
        net(R.pack_padded_sequence(jnp.asarray(x), [4, 2]), (jnp.asarray(h), jnp.asarray(h)))
