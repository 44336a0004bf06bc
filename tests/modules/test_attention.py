"""scaled_dot_product_attention, multi_head_attention_forward and MultiheadAttention against torch."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn
import jnn.functional as F

SETTINGS = settings(max_examples=15, deadline=None)
TOL = {"rtol": 1e-4, "atol": 1e-5}
T = torch.from_numpy


def error_of(fn) -> tuple[type, str]:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    raise AssertionError("no error raised")


# --- scaled_dot_product_attention ------------------------------------------------------------------------


@SETTINGS
@given(
    lead=st.sampled_from([(2, 3), ()]),
    LS=st.sampled_from([(4, 5), (1, 1)]), Ev=st.just(6),
    mask=st.sampled_from(["none", "bool", "float", "causal", "bool_bcast"]),
    scale=st.sampled_from([None, 0.3]),
    seed=st.integers(0, 2**16),
)
def test_sdpa_matches_torch(lead, LS, Ev, mask, scale, seed):
    L, S = LS
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((*lead, L, 4)).astype(np.float32)
    k = rng.standard_normal((*lead, S, 4)).astype(np.float32)
    v = rng.standard_normal((*lead, S, Ev)).astype(np.float32)
    kw: dict = {"scale": scale}
    if mask == "bool":
        kw["attn_mask"] = rng.random((*lead, L, S)) > 0.4  # fully masked rows allowed: torch gives 0 there
    elif mask == "bool_bcast":
        kw["attn_mask"] = rng.random((L, S)) > 0.4
    elif mask == "float":
        kw["attn_mask"] = rng.standard_normal((L, S)).astype(np.float32)
    elif mask == "causal":
        kw["is_causal"] = True
    tkw = {n: (T(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a) for n, a in kw.items()}
    tq, tk, tv = (T(a.copy()).requires_grad_(True) for a in (q, k, v))
    expected = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **tkw)
    (expected ** 2).sum().backward()

    def loss(a, b, c):
        out = F.scaled_dot_product_attention(a, b, c, **kw)
        return (out ** 2).sum(), out

    (_, out), g = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(q, k, v)
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, **TOL)
    for ours, theirs in zip(g, (tq, tk, tv), strict=True):
        assert_close(ours, theirs.grad, rtol=1e-4, atol=1e-4)


def test_sdpa_gqa_fully_masked_rows_and_jit():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 4, 3, 8)).astype(np.float32)
    k = rng.standard_normal((2, 2, 5, 8)).astype(np.float32)
    v = rng.standard_normal((2, 2, 5, 8)).astype(np.float32)
    ours = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    assert_close(ours, torch.nn.functional.scaled_dot_product_attention(T(q), T(k), T(v), enable_gqa=True), **TOL)
    m = np.ones((3, 5), bool)
    m[1] = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=m, enable_gqa=True)
    assert np.all(np.asarray(out)[:, :, 1] == 0)  # a row with nothing to attend to is 0, as in torch
    assert_close(out, torch.nn.functional.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(m),
                                                                        enable_gqa=True), **TOL)
    jitted = jax.jit(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True))(q, k[:, :1], v[:, :1])
    expected = torch.nn.functional.scaled_dot_product_attention(T(q), T(k[:, :1]), T(v[:, :1]), is_causal=True)
    assert_close(jitted, expected, **TOL)


def test_sdpa_dropout():
    jnn.manual_seed(0)  # the global stream must exist before a traced draw (see the MissingKeyError check)
    q = jnp.ones((1, 1, 4, 4))
    kv = jnp.asarray(np.random.default_rng(0).standard_normal((1, 1, 6, 4)), jnp.float32)
    a = F.scaled_dot_product_attention(q, kv, kv, dropout_p=0.5, dropout_key=jax.random.key(0))
    b = F.scaled_dot_product_attention(q, kv, kv, dropout_p=0.5, dropout_key=jax.random.key(0))
    c = F.scaled_dot_product_attention(q, kv, kv)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c))
    # weights * v with all-ones values: each output is (sum of kept weights) / (1 - p)
    ones = jnp.ones((1, 1, 6, 4))
    y = np.asarray(F.scaled_dot_product_attention(q, kv, ones, dropout_p=0.5, dropout_key=jax.random.key(1)))
    assert y.max() <= 2.0 + 1e-5 and y.min() >= 0
    # under jit without a key: a clear error
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(lambda x: F.scaled_dot_product_attention(x, x, x, dropout_p=0.5))(q)
    with jnn.random.fork(jax.random.key(2)):
        assert F.scaled_dot_product_attention(q, kv, kv, dropout_p=0.5).shape == (1, 1, 4, 4)


def test_sdpa_errors():
    q = jnp.ones((2, 3, 4))
    with pytest.raises(ValueError, match="is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=jnp.ones((3, 3), bool), is_causal=True)
    with pytest.raises(ValueError, match="same embedding size"):
        F.scaled_dot_product_attention(q, jnp.ones((2, 3, 5)), q)
    with pytest.raises(ValueError, match="broadcast"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=jnp.ones((4, 3), bool))
    with pytest.raises(ValueError, match="dropout probability"):
        F.scaled_dot_product_attention(q, q, q, dropout_p=1.5)


# --- torch.nn.functional's private mask helpers, which model code calls (torchaudio's WavLM attention) ---------
@pytest.mark.parametrize("dtype", ["bool", "float32", "float16"])
def test_canonical_mask_matches_torch(dtype):
    rng = np.random.default_rng(0)
    mask = rng.random((2, 5)) < 0.5 if dtype == "bool" else rng.standard_normal((2, 5)).astype(dtype)
    tdtype = getattr(torch, dtype)
    for other, jother in [(None, None), (torch.float32, jnp.float32), (tdtype, jnp.dtype(dtype))]:
        with warnings.catch_warnings(record=True) as expected_warnings:
            warnings.simplefilter("always")
            expected = torch.nn.functional._canonical_mask(T(mask), "key_padding_mask", other, "attn_mask",
                                                           torch.float32)
        with warnings.catch_warnings(record=True) as ours_warnings:
            warnings.simplefilter("always")
            ours = F._canonical_mask(jnp.asarray(mask), "key_padding_mask", jother, "attn_mask", jnp.float32)
        assert [str(w.message) for w in ours_warnings] == [str(w.message) for w in expected_warnings]
        assert ours.dtype == jnp.dtype(str(expected.dtype).removeprefix("torch."))
        np.testing.assert_array_equal(np.asarray(ours), expected.numpy())
        np.testing.assert_array_equal(  # under jit too
            jax.jit(lambda m: F._canonical_mask(m, "key_padding_mask", None, "", jnp.float32))(jnp.asarray(mask)),
            torch.nn.functional._canonical_mask(T(mask), "key_padding_mask", None, "", torch.float32).numpy())
    assert F._canonical_mask(None, "attn_mask", None, "", jnp.float32) is None
    with pytest.raises(TypeError, match="only bool and floating types of attn_mask are supported"):
        F._canonical_mask(jnp.ones((2, 2), jnp.int32), "attn_mask", None, "", jnp.float32)


def test_none_or_dtype_matches_torch():
    assert F._none_or_dtype(None) is None and torch.nn.functional._none_or_dtype(None) is None
    assert F._none_or_dtype(jnp.zeros(2, jnp.float16)) == jnp.float16
    assert F._none_or_dtype(np.zeros(2, bool)) == np.bool_
    with pytest.raises(TypeError, match="must be None or"):
        F._none_or_dtype(1.0)


# --- MultiheadAttention ----------------------------------------------------------------------------------


def make_twins(embed_dim, num_heads, **kw):
    t = torch.nn.MultiheadAttention(embed_dim, num_heads, **kw)
    with torch.no_grad():  # non-zero biases so that they are exercised
        for name, p in t.named_parameters():
            if "bias" in name:
                p.copy_(torch.randn_like(p))
    j = copy_torch_weights(jnn.MultiheadAttention(embed_dim, num_heads, **kw), t)
    return t, j


@pytest.mark.parametrize("kw", [{}, {"kdim": 3, "vdim": 5}, {"bias": False, "add_bias_kv": True},
                                {"add_zero_attn": True, "batch_first": True, "dropout": 0.1}])
def test_mha_repr_state_dict_and_init(kw):
    t, j = torch.nn.MultiheadAttention(8, 2, **kw), jnn.MultiheadAttention(8, 2, **kw)
    assert repr(j) == repr(t)
    ours, theirs = j.state_dict(), torch_state(t)
    assert list(ours) == list(theirs)
    assert [ours[k].shape for k in ours] == [theirs[k].shape for k in theirs]
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]
    for name in ("embed_dim", "kdim", "vdim", "num_heads", "head_dim", "batch_first", "dropout",
                 "_qkv_same_embed_dim", "add_zero_attn"):
        assert getattr(j, name) == getattr(t, name), name
    if "in_proj_bias" in ours:
        assert not np.asarray(ours["in_proj_bias"]).any() and not np.asarray(ours["out_proj.bias"]).any()


def test_mha_init_distributions():
    jnn.manual_seed(0)
    m = jnn.MultiheadAttention(256, 4, add_bias_kv=True)
    w = np.asarray(m.in_proj_weight)
    bound = np.sqrt(6 / (256 + 768))  # xavier_uniform_ on (3E, E)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound
    ow = np.asarray(m.out_proj.weight)  # Linear's default init
    assert np.abs(ow).max() <= 1 / 16 and np.abs(ow).max() > 0.98 / 16
    bk = np.concatenate([np.asarray(m.bias_k).ravel(), np.asarray(m.bias_v).ravel()])
    assert abs(bk.std() - np.sqrt(1 / 256)) < 0.15 * np.sqrt(1 / 256)  # xavier_normal_ on (1, 1, E)
    sep = jnn.MultiheadAttention(16, 2, kdim=4, vdim=8)
    for name, fan_in in (("q_proj_weight", 16), ("k_proj_weight", 4), ("v_proj_weight", 8)):
        assert np.abs(np.asarray(getattr(sep, name))).max() <= np.sqrt(6 / (fan_in + 16))
    a, b = jnn.MultiheadAttention(8, 2, key=jax.random.key(0)), jnn.MultiheadAttention(8, 2, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(a.in_proj_weight), np.asarray(b.in_proj_weight))


def random_mask(rng, kind, shape):
    """A mask with column 0 never masked (no fully-masked rows: there torch's two paths differ, NaN vs 0)."""
    allowed = rng.random(shape) > 0.4
    allowed[..., 0] = True
    if kind == "bool":
        return ~allowed  # MHA: True = masked out
    return np.where(allowed, rng.standard_normal(shape) * 0.5, -np.inf).astype(np.float32)


@SETTINGS
@given(
    heads=st.sampled_from([1, 2, 4]),
    kv=st.sampled_from([(None, None), (3, 5)]),
    bias=st.booleans(), add_bias_kv=st.booleans(), add_zero_attn=st.booleans(), batch_first=st.booleans(),
    batched=st.booleans(),
    LS=st.sampled_from([(3, 5), (1, 1)]),
    attn=st.sampled_from(["none", "bool", "float", "bool3d", "float3d"]),
    kpm=st.sampled_from(["none", "bool", "float"]),
    need_weights=st.booleans(), average=st.booleans(), train=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_mha_matches_torch(heads, kv, bias, add_bias_kv, add_zero_attn, batch_first, batched, LS, attn, kpm,
                           need_weights, average, train, seed):
    E, N = 8, 2
    kdim, vdim = kv
    torch.manual_seed(seed)
    t, j = make_twins(E, heads, bias=bias, add_bias_kv=add_bias_kv, add_zero_attn=add_zero_attn, kdim=kdim,
                      vdim=vdim, batch_first=batch_first)
    t.train(train)
    j.train(train)
    rng = np.random.default_rng(seed)
    L, S = LS

    def seq(n, d):
        shape = ((N, n, d) if batch_first else (n, N, d)) if batched else (n, d)
        return rng.standard_normal(shape).astype(np.float32)

    q, k, v = seq(L, E), seq(S, kdim or E), seq(S, vdim or E)
    kw: dict = {"need_weights": need_weights, "average_attn_weights": average}
    if attn != "none":
        shape = (L, S) if "3d" not in attn else ((N if batched else 1) * heads, L, S)
        kw["attn_mask"] = random_mask(rng, attn.removesuffix("3d"), shape)
    if kpm != "none":
        kw["key_padding_mask"] = random_mask(rng, kpm, (N, S) if batched else (S,))
    tkw = {n: (T(a) if isinstance(a, np.ndarray) else a) for n, a in kw.items()}
    tq = T(q.copy()).requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, expected_w = t(tq, T(k), T(v), **tkw)
    (expected ** 2).sum().backward()
    tg = {n: p.grad for n, p in t.named_parameters()}
    # jnn: outputs and gradients w.r.t. every parameter and the query, in one compiled call
    apply, params, buffers = jnn.split(j)

    def loss(p, x):
        out, w = apply(p, buffers, x, k, v, **kw)[0]
        return (out ** 2).sum(), (out, w)

    (_, (out, w)), (gp, gq) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, q)
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, **TOL)
    if need_weights:
        assert w.shape == tuple(expected_w.shape)
        assert_close(w, expected_w, **TOL)
    else:
        assert w is None and expected_w is None
    assert sorted(gp) == sorted(tg)
    for name in tg:
        assert_close(gp[name], tg[name], rtol=1e-4, atol=1e-4)
    assert_close(gq, tq.grad, rtol=1e-4, atol=1e-4)
    if seed % 4 == 0:  # eager calls give the same numbers as the compiled one
        assert_close(j(q, k, v, **kw)[0], expected, **TOL)


def test_mha_causal_hint_jit_and_functional():
    torch.manual_seed(0)
    t, j = make_twins(8, 2, batch_first=True)
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    causal = np.asarray(jnn.Transformer.generate_square_subsequent_mask(5))
    for need_weights in (True, False):
        expected = t(T(x), T(x), T(x), attn_mask=T(causal), is_causal=True, need_weights=need_weights)[0]
        out = j(x, x, x, attn_mask=causal, is_causal=True, need_weights=need_weights)[0]
        assert_close(out, expected, **TOL)
    jitted = jax.jit(lambda m, a: m(a, a, a, attn_mask=causal))(j, jnp.asarray(x))
    assert_close(jitted[0], t(T(x), T(x), T(x), attn_mask=T(causal))[0], **TOL)
    assert_close(jitted[1], t(T(x), T(x), T(x), attn_mask=T(causal))[1], **TOL)
    with pytest.raises(ValueError, match="Need attn_mask if specifying the is_causal hint"):
        j(x, x, x, is_causal=True)
    # the functional form with torch's argument list
    xs = np.swapaxes(x, 0, 1).copy()
    sd = {n: np.asarray(a) for n, a in j.state_dict().items()}
    args = (8, 2, sd["in_proj_weight"], sd["in_proj_bias"], None, None, False, 0.0, sd["out_proj.weight"],
            sd["out_proj.bias"])
    ours = F.multi_head_attention_forward(xs, xs, xs, *args, training=False)
    theirs = torch.nn.functional.multi_head_attention_forward(T(xs), T(xs), T(xs), *[
        T(a) if isinstance(a, np.ndarray) else a for a in args], training=False)
    assert_close(ours[0], theirs[0], **TOL)
    assert_close(ours[1], theirs[1], **TOL)


def test_mha_dropout_in_training():
    j = jnn.MultiheadAttention(8, 2, dropout=0.5)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 1, 8)), jnp.float32)
    j.eval()
    ev = j(x, x, x)
    j.train()
    with jnn.random.fork(jax.random.key(0)):
        a = j(x, x, x)
    with jnn.random.fork(jax.random.key(0)):
        b = j(x, x, x)
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert not np.allclose(np.asarray(a[0]), np.asarray(ev[0]))
    wv = np.unique(np.round(np.asarray(a[1]) * 2, 5))  # per-head weights are 0 or 2 * softmax; average of 2 heads
    assert wv.size > 1
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(lambda m, v: m(v, v, v))(j, x)
    apply, params, buffers = jnn.split(j)
    out, _ = apply(params, buffers, x, x, x, key=jax.random.key(0))
    assert out[0].shape == (4, 1, 8)


def test_mha_errors_match_torch():
    with pytest.raises(ValueError, match="embed_dim and num_heads must be greater than 0"):
        jnn.MultiheadAttention(0, 2)
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        jnn.MultiheadAttention(6, 4)
    m = jnn.MultiheadAttention(8, 2)
    x = jnp.ones((3, 2, 8))
    _, msg = error_of(lambda: m(x, jnp.ones((3, 8)), jnp.ones((3, 8))))
    assert msg == ("For batched (3-D) `query`, expected `key` and `value` to be 3-D but found 2-D and 2-D tensors "
                   "respectively")
    _, msg = error_of(lambda: m(x, x, x, attn_mask=jnp.ones((3, 4), bool)))
    assert msg == "The shape of the 2D attn_mask is (3, 4), but should be (3, 3)."
    _, msg = error_of(lambda: m(x, x, x, attn_mask=jnp.ones((2, 3, 3), bool)))
    assert msg == "The shape of the 3D attn_mask is (2, 3, 3), but should be (4, 3, 3)."
    _, msg = error_of(lambda: m(jnp.ones((3,)), x, x))
    assert "query should be unbatched 2D or batched 3D tensor but received 1-D query tensor" in msg
    _, msg = error_of(lambda: m(x, x, x, key_padding_mask=jnp.ones((2, 3), jnp.int32)))
    assert msg == "only bool and floating types of key_padding_mask are supported"
