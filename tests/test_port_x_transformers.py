"""lucidrains' x-transformers, ported by ``python -m jnn.port`` from its own source (x-transformers 2.31.10, fetched
at test time, see ``_pypi_source``): ``x_transformers`` -> ``x_transformers_jnn``, no hand edits.

x-transformers imports lucidrains' torch-einops-utils, a torch package too: it is ported beside it
(``torch_einops_utils`` -> ``torch_einops_utils_jnn``), and the port of x-transformers imports that port under the
original name (``_ported_utils``: ``sys.modules`` maps ``torch_einops_utils`` to it while x_transformers_jnn is
imported). einx (einx's own JAX backend takes JAX arrays, eagerly and under ``jax.jit``) and loguru are test
dependencies, used as they are on both sides.

Five small models, each built from the package's classes on both sides with the same arguments, torch's state_dict
(constants randomised) loaded into the port with ``strict=True``, printed as torch's:

- a pre-norm decoder: rotary embeddings, GLU feedforward, memory key/values, RMSNorm, query/key norm, token shift,
  macaron feedforwards, sandwich norm, and "flash" attention (``F.scaled_dot_product_attention`` inside
  ``torch.nn.attention.sdpa_kernel``, which the port maps to ``jnn.attention``);
- a post-norm decoder: ALiBi, residual attention (attention logits carried to the next layer), ScaleNorm;
- a decoder with T5's relative position buckets, gated (GRU) residuals, head scales, gated values;
- an encoder with a padding mask, T5's relative positions, memory key/values and memory tokens, four heads
  sharing two key/value heads, attention on attention, soft-clamped logits;
- an encoder-decoder ``XTransformer`` (cross attention with the source's padding mask, tied token embeddings,
  flash attention).

Compared with torch: logits eagerly and under ``jax.jit``; ``AutoregressiveWrapper``'s loss and its gradients
w.r.t. every parameter through ``jnn.split`` under ``jax.jit`` (train mode); the kv cache (``cache=`` of
``return_intermediates``): the next token's logits are torch's and those of the uncached sequence; generation
(greedy, and sampling after a top-k filter that leaves one token, so torch's ``multinomial`` and jnn's draw the
same) with the kv cache under ``jax.jit``, beam search, and the XTransformer's generation; the logit
filters (top-k, top-p, top-a, min-p). ``generate`` with ``eos_token`` stops when every row has ended
(``if is_eos_tokens.any(-1).all(): break``) and with ``prompt_lens`` pads by the longest prompt's padding (a
value-dependent shape): it runs eagerly.
"""

from __future__ import annotations

import sys

import _pypi_source as pypi
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import jitted, load_twin

import jnn

# x_transformers.py compiles a helper with torch.jit.script when imported with torch
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

VOCAB, SEQ, BATCH = 50, 12, 2
DEC = dict(dim=32, depth=2, heads=2)


def _wrapper(x, layers, **kwargs):
    return x.TransformerWrapper(num_tokens=VOCAB, max_seq_len=SEQ, attn_layers=layers, **kwargs)


# name -> the model, given the package (torch's or the port); the decoders are wrapped by AutoregressiveWrapper
MODELS = {
    "prenorm": lambda x: x.AutoregressiveWrapper(_wrapper(x, x.Decoder(
        **DEC, rotary_pos_emb=True, ff_glu=True, attn_num_mem_kv=2, use_rmsnorm=True, attn_qk_norm=True,
        shift_tokens=1, macaron=True, sandwich_norm=True, attn_flash=True))),
    "postnorm": lambda x: x.AutoregressiveWrapper(_wrapper(x, x.Decoder(
        **DEC, alibi_pos_bias=True, pre_norm=False, residual_attn=True, use_scalenorm=True))),
    "t5": lambda x: x.AutoregressiveWrapper(_wrapper(x, x.Decoder(
        **DEC, rel_pos_bias=True, gate_residual=True, attn_head_scale=True, attn_gate_values=True))),
    "encoder": lambda x: _wrapper(x, x.Encoder(
        dim=32, depth=2, heads=4, rel_pos_bias=True, attn_num_mem_kv=2, attn_kv_heads=2, attn_on_attn=True,
        attn_softclamp_logits=True), num_memory_tokens=2),
    "xtransformer": lambda x: x.XTransformer(
        dim=32, tie_token_emb=True, enc_num_tokens=VOCAB, enc_depth=1, enc_heads=2, enc_max_seq_len=SEQ,
        enc_use_rmsnorm=True, dec_num_tokens=VOCAB, dec_depth=1, dec_heads=2, dec_max_seq_len=SEQ,
        dec_rotary_pos_emb=True, enc_attn_flash=True, dec_attn_flash=True),
}


def _ported_utils():
    """A context in which ``import torch_einops_utils[.x]`` finds ``torch_einops_utils_jnn[.x]``."""
    pypi.imported(pypi.TORCH_EINOPS_UTILS, ported=True)
    return pypi.modules_as({name.replace("_jnn", "", 1): module for name, module in list(sys.modules.items())
                            if name.split(".")[0] == "torch_einops_utils_jnn"})


@pytest.fixture(scope="module")
def xt_torch():
    """The original x_transformers and torch_einops_utils files, imported with torch."""
    pypi.imported(pypi.TORCH_EINOPS_UTILS)
    return pypi.imported(pypi.X_TRANSFORMERS)


@pytest.fixture(scope="module")
def xt_jnn():
    """``python -m jnn.port x_transformers -o x_transformers_jnn``, imported with jnn and the port of
    torch_einops_utils."""
    with _ported_utils():
        return pypi.imported(pypi.X_TRANSFORMERS, ported=True)


def _twins(xt_torch, xt_jnn, name: str):
    """torch's model and its port, built from the same arguments, torch's state loaded strictly into the port; both
    in eval mode. The port prints as torch's model does."""
    torch.manual_seed(0)
    reference, model = MODELS[name](xt_torch), MODELS[name](xt_jnn)
    assert repr(model) == repr(reference)
    load_twin(model, reference)
    return reference, model


def _tokens(shape=(BATCH, SEQ), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, shape).astype(np.int64)


def _close(actual, expected, rtol: float = 1e-5) -> None:
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol,
                               atol=rtol * max(float(np.abs(expected).max(initial=0.0)), 1.0))


def _grads_match(reference, model, args: tuple[np.ndarray, ...], kwargs: dict[str, np.ndarray]) -> None:
    """Train mode: the wrapper's loss and its gradients w.r.t. every parameter, through ``jnn.split`` under
    ``jax.jit``, against torch's backward."""
    reference.train()
    model.train()
    reference.zero_grad()
    loss = reference(*map(torch.from_numpy, args), **{k: torch.from_numpy(v) for k, v in kwargs.items()})
    loss.backward()
    apply, params, buffers = jnn.split(model)
    value, grads = jax.jit(jax.value_and_grad(lambda p, a, k: apply(p, buffers, *a, **k)[0]))(params, args, kwargs)
    _close(value, loss)
    expected = {k: p.grad for k, p in reference.named_parameters()}
    assert set(grads) == set(expected) and all(g is not None for g in expected.values())
    for k, g in expected.items():
        _close(grads[k], g)
    reference.eval()
    model.eval()


@pytest.mark.parametrize("name", ["prenorm", "postnorm", "t5", "encoder"])
def test_ported_x_transformers_matches_torch(name, xt_torch, xt_jnn):
    """Logits eagerly and jitted (the encoder's with a padding mask); the pre-norm and T5 decoders' training step
    (T5's on sequences of different lengths, ``lens``)."""
    reference, model = _twins(xt_torch, xt_jnn, name)
    tokens = _tokens()
    net_t, net = (reference.net, model.net) if name != "encoder" else (reference, model)
    mask = np.arange(SEQ)[None] < np.array([[SEQ], [7]])  # the encoder's second row: seven tokens
    with torch.no_grad():
        expected = net_t(torch.from_numpy(tokens), mask=torch.from_numpy(mask) if name == "encoder" else None)
    assert expected.shape == (BATCH, SEQ, VOCAB)
    if name == "encoder":
        _close(net(jnp.asarray(tokens), mask=jnp.asarray(mask)), expected)
        _close(jitted(lambda t, m: net(t, mask=m), (tokens, mask), {}), expected)
    else:
        _close(net(jnp.asarray(tokens)), expected)
        _close(jitted(net, (tokens,), {}), expected)
    if name == "prenorm":
        _grads_match(reference, model, (tokens,), {})
    elif name == "t5":  # sequences of 12 and 8 tokens: the padding is the loss's ignore_index
        _grads_match(reference, model, (tokens,), {"lens": np.array([SEQ, 8])})


def _generate(model, prompt, *args, **kwargs):
    """``model.generate`` under ``jax.jit`` (the Python loop unrolled: one compile), with a key for sampling."""
    def run(model, prompt):
        with jnn.random.fork(jax.random.key(0)):
            return model.generate(prompt, *args, **kwargs)

    return jax.jit(run)(model, jnp.asarray(prompt))


def test_ported_x_transformers_kv_cache_and_generate_match_torch(xt_torch, xt_jnn):
    """The post-norm ALiBi decoder, under ``jax.jit``: one more token with the kv cache of the first eight gives
    torch's logits and cache and the uncached logits; greedy generation, sampling after a top-k (k=1) filter, and
    beam search (tokens and scores) are torch's. With ``eos_token`` and
    ``prompt_lens``: eagerly."""
    reference, model = _twins(xt_torch, xt_jnn, "postnorm")
    tokens = _tokens()
    with torch.no_grad():
        full = reference.net(torch.from_numpy(tokens))
        _, cache = reference.net(torch.from_numpy(tokens[:, :8]), return_intermediates=True)
        expected, expected_cache = reference.net(torch.from_numpy(tokens[:, :9]), return_intermediates=True,
                                                 cache=cache)

    def step(net, tokens):  # the cache (a dataclass, not a pytree) stays inside
        _, cache = net(tokens[:, :8], return_intermediates=True)
        logits, cache = net(tokens, return_intermediates=True, cache=cache)
        return logits, [inter.cached_kv for inter in cache.attn_intermediates]

    got, cache = jax.jit(step)(model.net, jnp.asarray(tokens[:, :9]))
    assert got.shape == (BATCH, 1, VOCAB)
    _close(got, expected)
    _close(got[:, -1], full[:, 8])
    for ours, theirs in zip(cache, expected_cache.attn_intermediates, strict=True):
        for got_kv, expected_kv in zip(ours, theirs.cached_kv, strict=True):
            assert got_kv.shape == (BATCH, 2, 9, 64)  # keys and values of the nine tokens (dim_head 64)
            _close(got_kv, expected_kv)

    prompt = tokens[:, :4]
    runs = {"greedy": dict(temperature=0.0),
            "top_k": dict(temperature=0.7, filter_logits_fn="top_k", filter_kwargs=dict(k=1))}
    for run, kwargs in runs.items():
        with torch.no_grad():
            expected = reference.generate(torch.from_numpy(prompt), 4, **kwargs)
        np.testing.assert_array_equal(_generate(model, prompt, 4, **kwargs), expected.numpy(), err_msg=run)
    with torch.no_grad():  # beam search: the cache gathered by beam, the beams sorted by score
        expected, scores = reference.beam_search(torch.from_numpy(prompt), 3, beams=2, return_beams_and_scores=True)
    got, got_scores = jax.jit(lambda m, p: m.beam_search(p, 3, beams=2, return_beams_and_scores=True))(model, prompt)
    np.testing.assert_array_equal(got, expected.numpy())
    _close(got_scores, scores)

    # a ragged prompt (right-aligned by its length) and an end token that one row reaches: eagerly (with the cache)
    lens = np.array([4, 3])
    with torch.no_grad():
        eos = int(reference.generate(torch.from_numpy(prompt), 1, temperature=0.0,
                                     prompt_lens=torch.from_numpy(lens))[1, 0])  # the second row's first token
        expected = reference.generate(torch.from_numpy(prompt), 2, temperature=0.0, eos_token=eos,
                                      prompt_lens=torch.from_numpy(lens))
    assert expected.shape == (BATCH, 2) and int(expected[1, 1]) == reference.pad_value  # padded after its end
    got = model.generate(jnp.asarray(prompt), 2, temperature=0.0, eos_token=eos, prompt_lens=jnp.asarray(lens))
    np.testing.assert_array_equal(got, expected.numpy())


def test_ported_x_transformers_logit_filters_match_torch(xt_torch, xt_jnn):
    """autoregressive_wrapper's logit filters on the same logits: top-k, top-p (a boolean-mask write and a
    scatter), top-a, min-p; eagerly and jitted."""
    logits = np.random.default_rng(0).standard_normal((3, VOCAB)).astype(np.float32)
    for name, kwargs in {"top_k": dict(k=5), "top_p": dict(thres=0.5), "top_a": {}, "min_p": dict(min_p=0.2)}.items():
        expected = getattr(xt_torch.autoregressive_wrapper, name)(torch.from_numpy(logits), **kwargs).numpy()
        fn = getattr(xt_jnn.autoregressive_wrapper, name)
        for got in (fn(jnp.asarray(logits), **kwargs), jitted(fn, (logits,), kwargs)):
            np.testing.assert_array_equal(np.isinf(got), np.isinf(expected), err_msg=name)
            _close(np.where(np.isinf(expected), 0, got), np.where(np.isinf(expected), 0, expected))


def test_ported_x_transformers_encoder_decoder_matches_torch(xt_torch, xt_jnn):
    """XTransformer: the decoder cross-attends to the encoded source under its padding mask; the loss and its
    gradients (tied token embeddings) through ``jnn.split`` under ``jax.jit``; greedy generation under ``jax.jit``."""
    reference, model = _twins(xt_torch, xt_jnn, "xtransformer")
    src, tgt = _tokens((BATCH, 10)), _tokens((BATCH, 8), seed=1)
    mask = np.arange(10)[None] < np.array([[10], [6]])
    _grads_match(reference, model, (src, tgt), {"mask": mask})
    with torch.no_grad():
        expected = reference.generate(torch.from_numpy(src), torch.from_numpy(tgt[:, :1]), 3,
                                      mask=torch.from_numpy(mask), temperature=0.0)

    def run(model, src, start, mask):
        return model.generate(src, start, 3, mask=mask, temperature=0.0)

    got = jax.jit(run)(model, jnp.asarray(src), jnp.asarray(tgt[:, :1]), jnp.asarray(mask))
    np.testing.assert_array_equal(got, expected.numpy())
