"""Every loss layer against torch.nn's, for every reduction: values, input gradients, buffers, reprs, errors.

Class weights, ignore_index and label smoothing of cross_entropy/nll_loss are covered in tests/test_functional.py.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, torch_state
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import jnn
import jnn.functional as F

SETTINGS = settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
REDUCTIONS = ["none", "mean", "sum"]


def check(jmod, tmod, args, diff, seed=0, rtol=1e-5, atol=1e-5, jit=False, prep=None):
    """Call both modules on copies of ``args``; compare outputs and the gradients of ``sum(out * ct)`` with
    respect to the args flagged in ``diff``. ``prep`` (a pair of jax/torch functions) maps the first argument
    before the loss (e.g. log_softmax for CTC)."""
    rng = np.random.default_rng(seed)
    args = [np.asarray(a) if isinstance(a, np.generic) else a for a in args]
    targs = [torch.tensor(a, requires_grad=d) if isinstance(a, np.ndarray) else a
             for a, d in zip(args, diff, strict=True)]
    tin = list(targs)
    if prep is not None:
        tin[0] = prep[1](tin[0])
    tout = tmod(*tin)
    ct = rng.standard_normal(tuple(tout.shape)).astype(np.float32)
    idx = [i for i, d in enumerate(diff) if d]
    fixed = [jax.device_put(a) if isinstance(a, np.ndarray) else a for a in args]

    def fwd(*d):
        a = list(fixed)
        for i, v in zip(idx, d, strict=True):
            a[i] = v
        if prep is not None:
            a[0] = prep[0](a[0])
        return jmod(*a)

    def fwd_bwd(*d):
        out, vjp = jax.vjp(fwd, *d)
        return out, vjp(jnp.asarray(ct))

    jout, grads = (jax.jit(fwd_bwd) if jit else fwd_bwd)(*[fixed[i] for i in idx])
    assert jout.shape == tuple(tout.shape)
    assert_close(jout, tout, rtol, atol)
    (tout * torch.tensor(ct)).sum().backward()
    for g, i in zip(grads, idx, strict=True):
        t = targs[i]
        assert_close(g, t.grad if t.grad is not None else torch.zeros_like(t), rtol, atol)
    return jout


def pair(name, *args, **kw):
    """The jnn and torch layer of the same name, built with the same arguments (arrays converted for each)."""
    conv = lambda f: lambda v: f(v) if isinstance(v, np.ndarray) else v  # noqa: E731
    jn, tn = conv(jnp.asarray), conv(torch.tensor)
    jmod = getattr(jnn, name)(*map(jn, args), **{k: jn(v) for k, v in kw.items()})
    tmod = getattr(torch.nn, name)(*map(tn, args), **{k: tn(v) for k, v in kw.items()})
    assert repr(jmod) == repr(tmod)
    ours, theirs = jmod.state_dict(), torch_state(tmod)
    assert list(ours) == list(theirs)
    for k in theirs:
        assert ours[k].shape == theirs[k].shape
        assert_close(ours[k], theirs[k])
    return jmod, tmod


def randn(rng, shape, lo=None, hi=None):
    if lo is not None:
        return rng.uniform(lo, hi, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def signs(rng, shape):
    return rng.choice(np.array([-1.0, 1.0], np.float32), shape)


# --------------------------------------------------------------------------------------- element-wise losses
ELEMENT_SHAPES = [(), (5,), (3, 4), (2, 3, 4), (0, 3)]
shapes = st.sampled_from(ELEMENT_SHAPES)
reductions = st.sampled_from(REDUCTIONS)
seeds = st.integers(0, 2**16)


@given(shape=shapes, reduction=reductions, seed=seeds, name=st.sampled_from(["L1Loss", "MSELoss", "SoftMarginLoss"]))
@SETTINGS
def test_simple_elementwise(shape, reduction, seed, name):
    rng = np.random.default_rng(seed)
    jmod, tmod = pair(name, reduction=reduction)
    t = signs(rng, shape) if name == "SoftMarginLoss" else randn(rng, shape)
    check(jmod, tmod, [randn(rng, shape), t], [True, name != "SoftMarginLoss"], seed)


@given(shape=shapes, reduction=reductions, seed=seeds, delta=st.sampled_from([0.5, 1.0, 2]))
@SETTINGS
def test_huber(shape, reduction, seed, delta):
    rng = np.random.default_rng(seed)
    check(*pair("HuberLoss", reduction=reduction, delta=delta), [randn(rng, shape) * 2, randn(rng, shape)],
          [True, True], seed)


@given(shape=shapes, reduction=reductions, seed=seeds, beta=st.sampled_from([0.0, 0.5, 1.0, 2.0]))
@SETTINGS
def test_smooth_l1(shape, reduction, seed, beta):
    rng = np.random.default_rng(seed)
    check(*pair("SmoothL1Loss", reduction=reduction, beta=beta), [randn(rng, shape) * 2, randn(rng, shape)],
          [True, True], seed)


@given(shape=shapes, reduction=reductions, seed=seeds, wshape=st.sampled_from([None, "same", "last"]))
@SETTINGS
def test_bce(shape, reduction, seed, wshape):
    rng = np.random.default_rng(seed)
    kw = {}
    if wshape is not None:
        kw["weight"] = randn(rng, shape if wshape == "same" else shape[-1:], 0.1, 2.0)
    jmod, tmod = pair("BCELoss", reduction=reduction, **kw)
    check(jmod, tmod, [randn(rng, shape, 0.02, 0.98), randn(rng, shape, 0, 1)], [True, True], seed)


def test_bce_clamps_log_at_minus_100():
    x, t = np.array([0.0, 1.0, 0.0, 1.0], np.float32), np.array([1.0, 0.0, 0.0, 1.0], np.float32)
    jmod, tmod = pair("BCELoss", reduction="none")
    got = jmod(jnp.asarray(x), jnp.asarray(t))
    assert_close(got, tmod(torch.tensor(x), torch.tensor(t)))
    assert got.tolist() == [100.0, 100.0, 0.0, 0.0]


@given(shape=shapes, reduction=reductions, seed=seeds, wshape=st.sampled_from([None, "same", "last"]),
       pos=st.booleans())
@SETTINGS
def test_bce_with_logits(shape, reduction, seed, wshape, pos):
    rng = np.random.default_rng(seed)
    kw = {}
    if wshape is not None:
        kw["weight"] = randn(rng, shape if wshape == "same" else shape[-1:], 0.1, 2.0)
    if pos:
        kw["pos_weight"] = randn(rng, shape[-1:], 0.1, 3.0)
    jmod, tmod = pair("BCEWithLogitsLoss", reduction=reduction, **kw)
    check(jmod, tmod, [randn(rng, shape) * 4, randn(rng, shape, 0, 1)], [True, True], seed)


def test_bce_with_logits_is_stable_for_large_logits():
    x, t = np.array([-200.0, 200.0, 60.0], np.float32), np.array([1.0, 0.0, 1.0], np.float32)
    jmod, tmod = pair("BCEWithLogitsLoss", reduction="none", pos_weight=np.array([2.0], np.float32))
    check(jmod, tmod, [x, t], [True, True])


@given(shape=shapes, reduction=st.sampled_from(REDUCTIONS + ["batchmean"]), seed=seeds, log_target=st.booleans())
@SETTINGS
def test_kl_div(shape, reduction, seed, log_target):
    rng = np.random.default_rng(seed)
    x = randn(rng, shape)
    t = randn(rng, shape) if log_target else randn(rng, shape, 0, 1) * (rng.uniform(size=shape) > 0.2)
    jmod, tmod = pair("KLDivLoss", reduction=reduction, log_target=log_target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(jmod, tmod, [x, t.astype(np.float32)], [True, True], seed)


def test_kl_div_mean_warns_like_torch():
    x = jnp.zeros((2, 3))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(x, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.kl_div(x, x, reduction="batchmean")
    with pytest.raises(ValueError, match="kl_div: 'foo' is not a valid value"):
        F.kl_div(x, x, reduction="foo")
    with pytest.raises(ValueError, match="KLDivLoss: 'foo' is not a valid value"):
        jnn.KLDivLoss(reduction="foo")


@given(shape=shapes, reduction=reductions, seed=seeds, log_input=st.booleans(), full=st.booleans(),
       eps=st.sampled_from([1e-8, 0.1]))
@SETTINGS
def test_poisson_nll(shape, reduction, seed, log_input, full, eps):
    rng = np.random.default_rng(seed)
    x = randn(rng, shape) if log_input else randn(rng, shape, 0.05, 3.0)
    t = rng.integers(0, 6, shape).astype(np.float32)
    # (torch's target gradient of the masked Stirling term is NaN at target 0; ours is the finite one)
    check(*pair("PoissonNLLLoss", log_input=log_input, full=full, eps=eps, reduction=reduction), [x, t],
          [True, not full], seed, rtol=1e-4, atol=1e-4)


GAUSS_SHAPES = [((5,), (5,)), ((3, 4), (3, 4)), ((3, 4), (3,)), ((3, 4), (3, 1)), ((2, 3, 4), (2, 1, 4)),
                ((2, 3, 4), (2, 3)), ((4,), None), ((0, 3), (0, 3))]


@given(shapes=st.sampled_from(GAUSS_SHAPES), reduction=reductions, seed=seeds, full=st.booleans(),
       eps=st.sampled_from([1e-6, 0.3]))
@SETTINGS
def test_gaussian_nll(shapes, reduction, seed, full, eps):
    rng = np.random.default_rng(seed)
    shape, vshape = shapes
    jmod, tmod = pair("GaussianNLLLoss", full=full, eps=eps, reduction=reduction)
    x, t = randn(rng, shape), randn(rng, shape)
    if vshape is None:
        check(jmod, tmod, [x, t, 0.7], [True, True, False], seed)
    else:  # some variances below eps: clamped, with the gradient passed straight through as in torch
        check(jmod, tmod, [x, t, randn(rng, vshape, 0.01, 2.0)], [True, True, True], seed, rtol=1e-4, atol=1e-4)


@given(shape=shapes, reduction=reductions, seed=seeds, margin=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
       int_target=st.booleans())
@SETTINGS
def test_hinge_embedding(shape, reduction, seed, margin, int_target):
    rng = np.random.default_rng(seed)
    t = signs(rng, shape)
    check(*pair("HingeEmbeddingLoss", margin=margin, reduction=reduction),
          [randn(rng, shape), t.astype(np.int64) if int_target else t], [True, False], seed)


@given(shape=shapes, reduction=reductions, seed=seeds, margin=st.sampled_from([0.0, 0.5, 1.0]))
@SETTINGS
def test_margin_ranking(shape, reduction, seed, margin):
    rng = np.random.default_rng(seed)
    check(*pair("MarginRankingLoss", margin=margin, reduction=reduction),
          [randn(rng, shape), randn(rng, shape), signs(rng, shape)], [True, True, False], seed)


# ---------------------------------------------------------------------------------- class / embedding losses
@given(shape=st.sampled_from([(4,), (3, 4), (0, 4), (5, 1), (2, 3, 4)]), reduction=reductions, seed=seeds,
       weighted=st.booleans())
@SETTINGS
def test_multilabel_soft_margin(shape, reduction, seed, weighted):
    rng = np.random.default_rng(seed)
    kw = {"weight": randn(rng, shape[-1:], 0.1, 2.0)} if weighted else {}
    check(*pair("MultiLabelSoftMarginLoss", reduction=reduction, **kw),
          [randn(rng, shape), (rng.uniform(size=shape) > 0.5).astype(np.float32)], [True, True], seed)


def multilabel_targets(rng, shape):
    c = shape[-1]
    rows = []
    for _ in range(int(np.prod(shape[:-1]))):
        k = rng.integers(0, c + 1)
        row = list(rng.integers(0, c, k)) + [-1] * (c - k)  # repeated labels count twice, as in torch
        if k < c:
            row[k + 1:] = rng.integers(-1, c, c - k - 1)  # anything after the first -1 is ignored
        rows.append(row)
    return np.array(rows, np.int64).reshape(shape)


@given(shape=st.sampled_from([(4,), (3, 4), (6, 5), (0, 3)]), reduction=reductions, seed=seeds)
@SETTINGS
def test_multilabel_margin(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    if shape[0] == 0:  # torch returns uninitialised memory for 'sum'/'mean' of an empty batch
        out = F.multilabel_margin_loss(jnp.zeros(shape), jnp.zeros(shape, int), reduction=reduction)
        assert out.shape == ((0,) if reduction == "none" else ())
        assert reduction != "sum" or out == 0
        assert reduction != "mean" or np.isnan(out)
        return
    check(*pair("MultiLabelMarginLoss", reduction=reduction),
          [randn(rng, shape), multilabel_targets(rng, shape)], [True, False], seed)


@given(shape=st.sampled_from([(4,), (3, 4), (6, 5), (0, 3)]), reduction=reductions, seed=seeds,
       p=st.sampled_from([1, 2]), margin=st.sampled_from([0.5, 1.0, 2.0]), weighted=st.booleans())
@SETTINGS
def test_multi_margin(shape, reduction, seed, p, margin, weighted):
    rng = np.random.default_rng(seed)
    kw = {"weight": randn(rng, shape[-1:], 0.1, 2.0)} if weighted else {}
    t = rng.integers(0, shape[-1], shape[:-1]).astype(np.int64)
    if shape[0] == 0:  # torch returns uninitialised memory for 'sum'/'mean' of an empty batch
        out = F.multi_margin_loss(jnp.zeros(shape), jnp.asarray(t), reduction=reduction)
        assert out.shape == ((0,) if reduction == "none" else ())
        assert reduction != "sum" or out == 0
        assert reduction != "mean" or np.isnan(out)
        return
    check(*pair("MultiMarginLoss", p=p, margin=margin, reduction=reduction, **kw),
          [randn(rng, shape), t], [True, False], seed)


def test_multi_margin_unbatched_target_of_shape_1():
    x = np.array([0.1, 0.2, 0.4, 0.8], np.float32)
    for t in (np.array([2]), np.array(2)):
        for reduction in REDUCTIONS:
            check(*pair("MultiMarginLoss", reduction=reduction), [x, t], [True, False])


@given(shape=st.sampled_from([(5,), (3, 5), (0, 4)]), reduction=reductions, seed=seeds,
       margin=st.sampled_from([-0.5, 0.0, 0.5]))
@SETTINGS
def test_cosine_embedding(shape, reduction, seed, margin):
    rng = np.random.default_rng(seed)
    x1 = randn(rng, shape)
    x2 = np.where(rng.uniform(size=shape[:-1] + (1,)) > 0.7, x1, randn(rng, shape)).astype(np.float32)
    check(*pair("CosineEmbeddingLoss", margin=margin, reduction=reduction),
          [x1, x2, signs(rng, shape[:-1])], [True, True, False], seed, rtol=1e-4, atol=1e-4)


@given(shape=st.sampled_from([(5,), (3, 5), (0, 4), (4, 1)]), reduction=reductions, seed=seeds,
       margin=st.sampled_from([0.5, 1.0, 3.0]), p=st.sampled_from([1.0, 2.0, 3.0, 0.5, math.inf]),
       eps=st.sampled_from([1e-6, 0.1]), swap=st.booleans())
@SETTINGS
def test_triplet_margin(shape, reduction, seed, margin, p, eps, swap):
    rng = np.random.default_rng(seed)
    a, pos, neg = (randn(rng, shape) for _ in range(3))
    check(*pair("TripletMarginLoss", margin=margin, p=p, eps=eps, swap=swap, reduction=reduction),
          [a, pos, neg], [True, True, True], seed, rtol=1e-4, atol=1e-4)


DISTANCES = {
    "default": (None, None),
    "l1": (lambda x, y: jnp.abs(x - y).sum(-1), lambda x, y: (x - y).abs().sum(-1)),
    "cosine": (lambda x, y: 1 - (x * y).sum(-1) / jnp.sqrt((x * x).sum(-1) * (y * y).sum(-1)),
               lambda x, y: 1 - torch.nn.functional.cosine_similarity(x, y, dim=-1, eps=0)),
}


@given(shape=st.sampled_from([(5,), (3, 5), (4, 1)]), reduction=reductions, seed=seeds,
       margin=st.sampled_from([0.5, 1.0, 3.0]), dist=st.sampled_from(sorted(DISTANCES)), swap=st.booleans())
@SETTINGS
def test_triplet_margin_with_distance(shape, reduction, seed, margin, dist, swap):
    rng = np.random.default_rng(seed)
    jd, td = DISTANCES[dist]
    jmod = jnn.TripletMarginWithDistanceLoss(distance_function=jd, margin=margin, swap=swap, reduction=reduction)
    tmod = torch.nn.TripletMarginWithDistanceLoss(distance_function=td, margin=margin, swap=swap,
                                                  reduction=reduction)
    if dist == "default":
        assert repr(jmod) == repr(tmod)
    assert list(jmod.state_dict()) == list(tmod.state_dict()) == []
    args = [randn(rng, shape) for _ in range(3)]
    check(jmod, tmod, args, [True, True, True], seed, rtol=1e-4, atol=1e-4)
    ref = F.triplet_margin_with_distance_loss(*map(jnp.asarray, args), distance_function=jd, margin=margin,
                                              swap=swap, reduction=reduction)
    assert_close(ref, jmod(*map(jnp.asarray, args)))


# ----------------------------------------------------------------------------- cross entropy / nll as layers
@given(shape=st.sampled_from([(4,), (3, 4), (2, 4, 3, 2), (0, 4)]), reduction=reductions, seed=seeds,
       weighted=st.booleans(), probs=st.booleans())
@settings(SETTINGS, max_examples=8)
def test_cross_entropy_and_nll_layers(shape, reduction, seed, weighted, probs):
    rng = np.random.default_rng(seed)
    c = shape[0] if len(shape) == 1 else shape[1]
    kw = {"weight": randn(rng, (c,), 0.1, 2.0)} if weighted else {}
    t = rng.integers(0, c, shape[1:] if len(shape) == 1 else shape[:1] + shape[2:]).astype(np.int64)
    check(*pair("NLLLoss", reduction=reduction, ignore_index=1, **kw), [randn(rng, shape), t], [True, False], seed,
          rtol=1e-4, atol=1e-4)
    if probs:
        t = np.asarray(jax.nn.softmax(randn(rng, shape), axis=0 if len(shape) == 1 else 1))
    check(*pair("CrossEntropyLoss", reduction=reduction, label_smoothing=0.1, **kw),
          [randn(rng, shape), t], [True, False], seed, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------------------ CTC
def log_softmax_pair():
    return (lambda a: jax.nn.log_softmax(a, axis=-1), lambda a: a.log_softmax(-1))


@given(reduction=reductions, seed=seeds, zero_infinity=st.booleans(), concatenated=st.booleans(),
       blank=st.sampled_from([0, 3]))
@settings(SETTINGS, max_examples=10)
def test_ctc(reduction, seed, zero_infinity, concatenated, blank):
    rng = np.random.default_rng(seed)
    T, N, C, S = 9, 4, 5, 4
    il = rng.integers(1, T + 1, N)
    il[0] = T
    tl = rng.permutation([0, 1, 3, 4])  # a fixed sum keeps concatenated targets at one shape (one compilation)
    labels = np.array([c for c in range(C) if c != blank])
    tg = labels[rng.integers(0, C - 1, (N, S))]
    tg[0, 1] = tg[0, 0]  # repeated labels need a blank between them
    if not zero_infinity:  # impossible alignments give inf, whose torch gradient is not meaningful
        il = np.maximum(il, 2 * tl + 1)
    targets = np.concatenate([tg[i, :tl[i]] for i in range(N)]) if concatenated else tg
    jmod, tmod = pair("CTCLoss", blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    check(jmod, tmod, [randn(rng, (T, N, C)), targets.astype(np.int64), il, tl], [True, False, False, False], seed,
          rtol=1e-4, atol=1e-4, prep=log_softmax_pair())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_unbatched_and_infinite(reduction):
    rng = np.random.default_rng(1)
    x = randn(rng, (6, 4))
    out = check(*pair("CTCLoss", reduction=reduction), [x, np.array([1, 2, 2]), np.array(6), np.array(3)],
                [True, False, False, False], prep=log_softmax_pair(), rtol=1e-4, atol=1e-4)
    lp = jax.nn.log_softmax(jnp.asarray(x), -1)
    assert_close(F.ctc_loss(lp, jnp.array([1, 2, 2]), 6, 3, reduction=reduction), out)  # python ints, as lengths
    # 3 labels with a repeat need 4 frames: 3 frames cannot align -> inf, or 0 (and zero gradient)
    lp = jax.nn.log_softmax(jnp.asarray(x[:3]), -1)
    out = F.ctc_loss(lp, jnp.array([1, 2, 2]), 3, 3, reduction=reduction)
    ref = torch.nn.functional.ctc_loss(torch.tensor(np.asarray(lp)), torch.tensor([1, 2, 2]),
                                       torch.tensor(3), torch.tensor(3), reduction=reduction)
    assert_close(out, ref)
    assert np.isinf(out).all()
    check(*pair("CTCLoss", reduction=reduction, zero_infinity=True),
          [x[:3], np.array([1, 2, 2]), np.array(3), np.array(3)], [True, False, False, False], prep=log_softmax_pair())


def test_ctc_jit_with_traced_lengths_and_concatenated_targets():
    rng = np.random.default_rng(2)
    x = jax.nn.log_softmax(jnp.asarray(randn(rng, (8, 2, 5))), -1)
    f = jax.jit(lambda x, t, il, tl: F.ctc_loss(x, t, il, tl, reduction="none"))
    t, il, tl = np.array([1, 2, 3, 4, 4]), np.array([8, 7]), np.array([2, 3])
    ref = torch.nn.functional.ctc_loss(torch.tensor(np.asarray(x)), torch.tensor(t), torch.tensor(il),
                                       torch.tensor(tl), reduction="none")
    assert_close(f(x, t, il, tl), ref, 1e-4, 1e-4)


def test_ctc_errors():
    lp = jnp.zeros((5, 2, 4))
    with pytest.raises(ValueError, match="ctc_loss: blank must be in label range"):
        F.ctc_loss(lp, jnp.ones((2, 2), int), jnp.array([5, 5]), jnp.array([2, 2]), blank=4)
    with pytest.raises(ValueError, match="input_lengths to have value at most 5"):
        F.ctc_loss(lp, jnp.ones((2, 2), int), jnp.array([6, 5]), jnp.array([2, 2]))
    with pytest.raises(ValueError, match="target_lengths"):
        F.ctc_loss(lp, jnp.ones((2, 2), int), jnp.array([5, 5]), jnp.array([3, 2]))
    with pytest.raises(ValueError, match=r"expected input_lengths of shape \(2,\)"):
        F.ctc_loss(lp, jnp.ones((2, 2), int), jnp.array([5]), jnp.array([2, 2]))
    with pytest.raises(TypeError, match="targets must be integers"):
        F.ctc_loss(lp, jnp.ones((2, 2)), jnp.array([5, 5]), jnp.array([2, 2]))
    with pytest.raises(ValueError, match=r"expected log_probs of shape \(T, N, C\) or \(T, C\)"):
        F.ctc_loss(jnp.zeros(5), jnp.ones((2, 2), int), jnp.array([5, 5]), jnp.array([2, 2]))


# --------------------------------------------------------------------------- legacy args, warnings, errors
LEGACY = [(None, False), (False, None), (True, True), (False, True), (True, False), (None, True)]


@pytest.mark.parametrize("size_average, reduce", LEGACY)
@pytest.mark.parametrize("name", ["l1_loss", "smooth_l1_loss", "binary_cross_entropy", "soft_margin_loss",
                                  "kl_div", "poisson_nll_loss", "hinge_embedding_loss",
                                  "multilabel_soft_margin_loss"])
def test_legacy_size_average_and_reduce(name, size_average, reduce):
    rng = np.random.default_rng(0)
    x, t = randn(rng, (3, 4), 0.1, 0.9), randn(rng, (3, 4), 0, 1)
    if name in ("soft_margin_loss", "hinge_embedding_loss"):
        t = signs(rng, (3, 4))
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        got = getattr(F, name)(jnp.asarray(x), jnp.asarray(t), size_average=size_average, reduce=reduce)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(t), size_average=size_average,
                                                 reduce=reduce)
        tmod_name = {"l1_loss": "L1Loss", "soft_margin_loss": "SoftMarginLoss", "kl_div": "KLDivLoss"}.get(name)
        if tmod_name:
            tm = getattr(torch.nn, tmod_name)(size_average=size_average, reduce=reduce)
    assert_close(got, ref)
    if tmod_name:
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
            jm = getattr(jnn, tmod_name)(size_average=size_average, reduce=reduce)
        assert jm.reduction == tm.reduction


@pytest.mark.parametrize("name", ["l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss"])
def test_broadcast_targets_warn_like_torch(name):
    rng = np.random.default_rng(0)
    x, t = randn(rng, (3, 1)), randn(rng, (3, 4))
    with pytest.warns(UserWarning) as rec:
        got = getattr(F, name)(jnp.asarray(x), jnp.asarray(t))
    with pytest.warns(UserWarning) as trec:
        ref = getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(t))
    assert str(rec[0].message) == str(trec[0].message).replace("torch.Size([3, 4])", "(3, 4)").replace(
        "torch.Size([3, 1])", "(3, 1)")
    assert_close(got, ref)
    with pytest.raises(ValueError, match=f"{name}: input of shape"):
        getattr(F, name)(jnp.zeros(3), jnp.zeros(4))


@pytest.mark.parametrize("name", ["l1_loss", "huber_loss", "mse_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_weight(name, reduction):
    rng = np.random.default_rng(0)
    x, t, w = randn(rng, (3, 4)) * 2, randn(rng, (3, 4)), randn(rng, (3, 4), 0.1, 2)
    jf = lambda a, b: getattr(F, name)(a, b, reduction=reduction, weight=jnp.asarray(w))  # noqa: E731
    tf = lambda a, b: getattr(torch.nn.functional, name)(a, b, reduction=reduction, weight=torch.tensor(w))  # noqa: E731
    check(jf, tf, [x, t], [True, True])
    with pytest.raises(ValueError, match=f"{name}: weights and input must have the same size"):
        getattr(F, name)(jnp.asarray(x), jnp.asarray(t), weight=jnp.ones(4))


def test_errors_match_torch_where_torch_has_them():
    z = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: Using a target size \(\(2, 3\)\) that is different"):
        F.binary_cross_entropy(jnp.zeros((2, 4)) + 0.5, z)
    with pytest.raises(ValueError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(z + 1.5, z)
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: Target size \(\(2, 3\)\) must be"):
        F.binary_cross_entropy_with_logits(jnp.zeros((2, 4)), z)
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        jnn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        F.multi_margin_loss(z, jnp.array([0, 1]), p=3)
    with pytest.raises(ValueError, match="MultiMarginLoss: expected weight to be None or 1D tensor, got 2D"):
        jnn.MultiMarginLoss(weight=jnp.ones((2, 3)))
    with pytest.raises(IndexError, match="multi_margin_loss: target out of range"):
        F.multi_margin_loss(z, jnp.array([0, 3]))
    with pytest.raises(IndexError, match="multilabel_margin_loss: target values must be in"):
        F.multilabel_margin_loss(z, jnp.array([[0, 3, -1], [0, -1, 1]]))
    with pytest.raises(ValueError, match="margin_ranking_loss : All input tensors should have same dimension"):
        F.margin_ranking_loss(z, z, jnp.ones(2))
    with pytest.raises(ValueError, match="TripletMarginLoss: expected margin to be greater than 0, got 0"):
        jnn.TripletMarginLoss(margin=0)
    with pytest.raises(ValueError, match="TripletMarginWithDistanceLoss: expected margin to be greater than 0"):
        jnn.TripletMarginWithDistanceLoss(margin=-1.0)
    with pytest.raises(ValueError, match="triplet_margin_loss: margin must be greater than 0"):
        F.triplet_margin_loss(z, z, z, margin=0)
    with pytest.raises(ValueError, match="expected to have the same number of dimensions, but got: anchor 2D"):
        F.triplet_margin_loss(z, z, jnp.zeros(3))
    with pytest.raises(ValueError, match="1D target tensor expects 2D input tensors"):
        F.cosine_embedding_loss(jnp.zeros(3), jnp.zeros(3), jnp.ones(2))
    with pytest.raises(ValueError, match="var has negative entry"):
        F.gaussian_nll_loss(z, z, -z - 1)
    with pytest.raises(ValueError, match="var has negative entry"):
        F.gaussian_nll_loss(z, z, -1.0)
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(z, z, jnp.ones((3, 3)))
    with pytest.raises(TypeError, match="delta must be a float or int"):
        jnn.HuberLoss(delta="1")
    with pytest.raises(ValueError, match="smooth_l1_loss does not support negative values for beta"):
        F.smooth_l1_loss(z, z, beta=-1.0)
    for name in ("L1Loss", "BCELoss", "CTCLoss", "HuberLoss"):
        with pytest.raises(ValueError, match=f"{name}: 'batchmean' is not a valid value for reduction"):
            getattr(jnn, name)(reduction="batchmean")


# --------------------------------------------------------------------------------- jit, split, reprs, buffers
def test_losses_under_jit_and_split():
    rng = np.random.default_rng(0)
    x, t = jnp.asarray(randn(rng, (3, 4))), jnp.asarray(randn(rng, (3, 4), 0, 1))
    w = jnp.asarray(randn(rng, (4,), 0.5, 1.5))
    m = jnn.BCEWithLogitsLoss(weight=w, pos_weight=w + 1)
    eager = m(x, t)
    assert_close(jax.jit(lambda m, x, t: m(x, t))(m, x, t), eager)
    apply, params, buffers = jnn.split(m)
    assert params == {} and sorted(buffers) == ["pos_weight", "weight"]
    assert_close(apply(params, buffers, x, t)[0], eager)
    m2 = jnn.TripletMarginWithDistanceLoss()
    assert_close(jax.jit(lambda m, a: m(a, a, a + 1))(m2, x), m2(x, x, x + 1))
    m3 = jnn.MultiMarginLoss(weight=w)
    tgt = jnp.array([0, 3, 1])
    assert_close(jax.jit(lambda m, x: m(x, tgt))(m3, x), m3(x, tgt))


@pytest.mark.parametrize("name", ["L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
                                  "BCEWithLogitsLoss", "KLDivLoss", "HuberLoss", "SmoothL1Loss", "SoftMarginLoss",
                                  "MultiLabelSoftMarginLoss", "MultiLabelMarginLoss", "MultiMarginLoss",
                                  "CosineEmbeddingLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
                                  "TripletMarginLoss", "TripletMarginWithDistanceLoss", "PoissonNLLLoss",
                                  "GaussianNLLLoss", "CTCLoss"])
def test_defaults_repr_and_attributes(name):
    jm, tm = pair(name)
    assert repr(jm) == repr(tm)
    for attr in ("reduction", "ignore_index", "label_smoothing", "log_target", "delta", "beta", "p", "margin",
                 "eps", "swap", "log_input", "full", "blank", "zero_infinity"):
        if hasattr(tm, attr):
            assert getattr(jm, attr) == getattr(tm, attr), attr
    if hasattr(tm, "weight"):
        assert jm.weight is None


def _jit_inputs(name: str) -> list:
    rng = np.random.default_rng(3)
    x, p = randn(rng, (3, 4)), randn(rng, (3, 4), 0.1, 0.9)
    cls = rng.integers(0, 4, 3)
    return {
        "CrossEntropyLoss": [x, cls], "NLLLoss": [x, cls], "BCELoss": [p, p], "MultiMarginLoss": [x, cls],
        "MultiLabelMarginLoss": [x, multilabel_targets(rng, (3, 4))], "SoftMarginLoss": [x, signs(rng, (3, 4))],
        "HingeEmbeddingLoss": [x, signs(rng, (3, 4))], "GaussianNLLLoss": [x, x + 1, p],
        "CosineEmbeddingLoss": [x, p, signs(rng, (3,))], "MarginRankingLoss": [x, p, signs(rng, (3, 4))],
        "TripletMarginLoss": [x, p, x + 1], "TripletMarginWithDistanceLoss": [x, p, x + 1],
        "CTCLoss": [np.asarray(jax.nn.log_softmax(randn(rng, (6, 2, 4)), -1)), np.array([[1, 2], [3, 3]]),
                    np.array([6, 5]), np.array([2, 2])],
    }.get(name, [x, p])


@pytest.mark.parametrize("name", ["L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
                                  "BCEWithLogitsLoss", "KLDivLoss", "HuberLoss", "SmoothL1Loss", "SoftMarginLoss",
                                  "MultiLabelSoftMarginLoss", "MultiLabelMarginLoss", "MultiMarginLoss",
                                  "CosineEmbeddingLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
                                  "TripletMarginLoss", "TripletMarginWithDistanceLoss", "PoissonNLLLoss",
                                  "GaussianNLLLoss", "CTCLoss"])
def test_every_loss_under_jit_matches_torch(name):
    args = _jit_inputs(name)
    jm = getattr(jnn, name)(reduction="sum")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(torch.nn, name)(reduction="sum")(*map(torch.tensor, args))
    got = jax.jit(lambda m, *a: m(*a))(jm, *map(jnp.asarray, args))
    assert_close(got, ref, 1e-4, 1e-4)


def test_ctc_lengths_as_tuples_like_torch():
    rng = np.random.default_rng(4)
    lp = np.asarray(jax.nn.log_softmax(randn(rng, (6, 2, 4)), -1))
    got = F.ctc_loss(jnp.asarray(lp), jnp.array([1, 2, 3]), (6, 5), [2, 1], reduction="none")
    ref = torch.nn.functional.ctc_loss(torch.tensor(lp), torch.tensor([1, 2, 3]), (6, 5), (2, 1), reduction="none")
    assert_close(got, ref, 1e-4, 1e-4)
