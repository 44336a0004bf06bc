"""Meta's ESM protein language models, ported by ``python -m jnn.port`` from their own source (fair-esm 2.0.0, fetched
at test time, see ``_pypi_source``): ``esm`` -> ``esm_jnn``, no hand edits.

Tiny models are built from the package's classes on both sides: ESM-2 (rotary embeddings, token dropout's rescaling
on and off), ESM-1b and ESM-1 (``ProteinBertModel``: learned or sinusoidal positions, fairseq's attention through
``F.multi_head_attention_forward`` or by hand, bias_kv) and the MSA Transformer (tied row and column axial attention);
constants randomised, torch's state_dict loaded into the port with ``strict=True``. Token batches come from the
package's own alphabet and batch converter (both sides' converters give the same ids), padded, with ``<mask>``
tokens. Compared with torch: logits, ``repr_layers`` representations, per-head attention maps and the contact head
(symmetrize + APC + logistic regression), eagerly and under ``jax.jit``; a masked-LM training step's loss and
gradients (the tied embedding / LM-head weight included); the rotary embedding's cos/sin tables, which forward
caches on the module (reused eagerly and under jit, private to ``jnn.split``'s apply and to a jitted module argument,
refused with a clear error when a closure would leak tracers into them).

ESM's forward branches in Python on the token values (``if not padding_mask.any(): padding_mask = None``), so under
``jax.jit`` the token ids are constants of the program (``jax.ensure_compile_time_eval``, as torch.compile specialises
on them) while the weights are traced; with traced ids JAX refuses the branch, which the tests check too.
"""

from __future__ import annotations

import argparse

import _pypi_source as pypi
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import load_twin

import jnn
import jnn.functional as jF

# different lengths (padding), <mask> tokens in two sequences (token dropout's rescaling differs per sequence)
SEQUENCES = [("p1", "MKTAYIAK<mask>QRQISFVK"), ("p2", "KALTAR<mask>QQ<mask>"), ("p3", "MKVL")]
MSAS = [[("a", "MKTAYIAK"), ("b", "MKT-YIAR"), ("c", "MRTAY-AK")], [("a", "KALTA"), ("b", "KAL-A")]]


@pytest.fixture(scope="module")
def esm_torch():
    """The original esm files, imported with torch."""
    return pypi.imported(pypi.ESM)


@pytest.fixture(scope="module")
def esm_jnn():
    """``python -m jnn.port esm -o esm_jnn``, imported with jnn."""
    return pypi.imported(pypi.ESM, ported=True)


def _tokens(esm_torch, esm_jnn, architecture: str, data) -> np.ndarray:
    """The batch converter's token ids for ``data``; the port's converter (built with ``jnn.ops``) gives torch's."""
    theirs = esm_torch.Alphabet.from_architecture(architecture).get_batch_converter()(data)
    ours = esm_jnn.Alphabet.from_architecture(architecture).get_batch_converter()(data)
    assert ours[:2] == theirs[:2]
    assert isinstance(ours[2], jax.Array) and ours[2].dtype == jnp.int32  # int64 canonicalised without x64
    np.testing.assert_array_equal(np.asarray(ours[2]), theirs[2].numpy())
    return theirs[2].numpy()


def _twins(build):
    """``build(package)`` for torch's esm and the port; the port prints as torch's model, and gets its state."""
    torch.manual_seed(0)
    reference, model = build(0), build(1)
    assert repr(model) == repr(reference)
    load_twin(model, reference)
    return reference, model


def _close(actual, expected, rtol: float = 1e-5) -> None:
    expected = np.asarray(expected)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol,
                               atol=rtol * max(float(np.abs(expected).max(initial=0.0)), 1.0))


def _compare(got: dict, expected: dict) -> None:
    """Every output of ESM's result dict (representations by layer) against torch's."""
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if key == "representations":
            assert sorted(got[key]) == sorted(value)
            for layer in value:
                _close(got[key][layer], value[layer].numpy())
        else:
            _close(got[key], value.numpy())


def _check(reference, model, tokens: np.ndarray, jit: bool = True, **kwargs) -> None:
    """``model(tokens, **kwargs)`` against torch, eagerly and (``jit``) under ``jax.jit`` with the model traced and
    the token ids baked in."""
    with torch.no_grad():
        expected = reference(torch.from_numpy(tokens), **kwargs)
    _compare(model(jnp.asarray(tokens), **kwargs), expected)
    if jit:
        def run(m):
            with jax.ensure_compile_time_eval():  # the token ids stay concrete: forward branches on them
                return m(tokens, **kwargs)

        _compare(jax.jit(run)(model), expected)


def _esm2(esm_torch, esm_jnn, token_dropout: bool):
    packages = (esm_torch, esm_jnn)
    return _twins(lambda i: packages[i].ESM2(
        num_layers=2, embed_dim=32, attention_heads=4, token_dropout=token_dropout,
        alphabet=packages[i].Alphabet.from_architecture("ESM-1b")))


@pytest.mark.parametrize("token_dropout", [True, False])
def test_ported_esm2_matches_torch(esm_torch, esm_jnn, token_dropout):
    reference, model = _esm2(esm_torch, esm_jnn, token_dropout)
    tokens = _tokens(esm_torch, esm_jnn, "ESM-1b", SEQUENCES)
    assert (tokens == model.padding_idx).any() and (tokens == model.mask_idx).any()
    # logits, every layer's representation, attention maps and contacts; then the logits alone
    _check(reference, model, tokens, repr_layers=[0, 1, 2], return_contacts=True)
    _check(reference, model, tokens, jit=False, repr_layers=[1], need_head_weights=True)
    _check(reference, model, tokens, jit=False)
    # a batch without padding (of the same shape): forward drops the padding mask (padding_mask = None)
    _check(reference, model, _tokens(esm_torch, esm_jnn, "ESM-1b", SEQUENCES[:1] * 3), jit=False,
           return_contacts=True)
    # traced token ids: forward's Python branch on their values cannot be staged
    with pytest.raises(jax.errors.TracerBoolConversionError):
        jax.jit(lambda m, t: m(t)["logits"])(model, tokens)


def test_ported_esm2_training_step_matches_torch(esm_torch, esm_jnn):
    """A masked-LM step: cross-entropy of the logits at the <mask> positions against the residues they hide. The
    LM head's weight is the embedding's (tied): one parameter, whose gradient sums both uses."""
    reference, model = _esm2(esm_torch, esm_jnn, True)
    original = _tokens(esm_torch, esm_jnn, "ESM-1b", [(n, s.replace("<mask>", "W")) for n, s in SEQUENCES])
    tokens = _tokens(esm_torch, esm_jnn, "ESM-1b", SEQUENCES)
    targets = np.where(tokens == model.mask_idx, original, -100)
    assert model.lm_head.weight is model.embed_tokens.weight
    reference.train()
    model.train()

    reference.zero_grad()
    logits = reference(torch.from_numpy(tokens))["logits"]
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.from_numpy(targets).flatten())
    loss.backward()
    # the contact head takes no part: no gradient in torch, zeros in JAX
    expected = {k: np.zeros(p.shape, np.float32) if p.grad is None else p.grad.numpy()
                for k, p in reference.named_parameters()}
    assert sum(p.grad is None for p in reference.parameters()) == 2

    apply, params, buffers = jnn.split(model)
    assert sorted(params) == sorted(expected)  # the tied weight once, under its first name

    def step(p):
        with jax.ensure_compile_time_eval():
            out, _ = apply(p, buffers, tokens)
        return jF.cross_entropy(out["logits"].reshape(-1, out["logits"].shape[-1]), targets.reshape(-1))

    value, grads = jax.jit(jax.value_and_grad(step))(params)
    _close(value, loss.item())
    for k in expected:
        _close(grads[k], expected[k])


def test_rotary_embedding_caches_its_tables_as_torch(esm_torch, esm_jnn):
    """``RotaryEmbedding.forward`` keeps cos/sin tables for the last sequence length on the module (plain
    attributes). Eagerly they are rebuilt when the length changes, as in torch; under jit a cached table of the
    right length is a constant of the program, and tables built while tracing stay in the traced copy (a module
    passed to jit, jnn.split's apply), never in the model; a module captured by a closure refuses them."""
    torch_rotary, rotary = esm_torch.rotary_embedding.RotaryEmbedding(8), esm_jnn.rotary_embedding.RotaryEmbedding(8)
    assert list(rotary.state_dict()) == ["inv_freq"]
    _close(rotary.inv_freq, torch_rotary.inv_freq.numpy())
    rng = np.random.default_rng(0)

    def check(run, length: int) -> None:
        q, k = (rng.standard_normal((6, length, 8)).astype(np.float32) for _ in "qk")
        with torch.no_grad():
            expected = torch_rotary(torch.from_numpy(q), torch.from_numpy(k))
        for got, want in zip(run(q, k), expected, strict=True):
            _close(got, want.numpy())

    def cached(length: int) -> None:  # the model's own tables: concrete, for ``length``
        assert rotary._seq_len_cached == length
        for table in (rotary._cos_cached, rotary._sin_cached):
            assert isinstance(table, jax.Array) and not isinstance(table, jax.core.Tracer)
            assert table.shape == (1, length, 8)

    eager = lambda q, k: rotary(jnp.asarray(q), jnp.asarray(k))  # noqa: E731
    check(eager, 7)
    cached(7)
    check(eager, 5)
    cached(5)

    jitted = jax.jit(lambda m, q, k: m(q, k))
    for length in (5, 9, 5, 9):
        check(lambda q, k: jitted(rotary, q, k), length)
        cached(5)
    q = np.zeros((6, 5, 8), np.float32)
    assert "cos" not in str(jax.make_jaxpr(lambda m, q: m(q, q))(rotary, q))  # the cached tables: constants
    assert "cos" in str(jax.make_jaxpr(lambda m, q: m(q, q))(rotary, q[:, :4]))

    apply, params, buffers = jnn.split(rotary)
    assert not params and list(buffers) == ["inv_freq"]
    for length in (5, 11, 3):
        check(lambda q, k: jax.jit(apply)(params, buffers, q, k)[0], length)
        cached(5)

    check(jax.jit(lambda q, k: rotary(q, k)), 5)  # a closure: the cached tables serve, nothing is stored
    cached(5)
    with pytest.raises(RuntimeError, match="store a traced value in attribute '_cos_cached'"):
        jax.jit(lambda q, k: rotary(q, k))(np.zeros((6, 12, 8), np.float32), np.zeros((6, 12, 8), np.float32))
    check(eager, 13)
    cached(13)
    for length in (5, 13):  # the module's cache changed since jitted traced it: its tables now, not those
        check(lambda q, k: jitted(rotary, q, k), length)
        cached(13)
    assert "cos" not in str(jax.make_jaxpr(lambda m, q: m(q, q))(rotary, np.zeros((6, 13, 8), np.float32)))


ESM1 = dict(layers=2, embed_dim=32, ffn_embed_dim=64, attention_heads=4, max_positions=64, token_dropout=True,
            emb_layer_norm_before=True, final_bias=True)


@pytest.mark.parametrize("arch", ["roberta_large", "protein_bert_base"])  # ESM-1b, ESM-1
def test_ported_protein_bert_matches_torch(esm_torch, esm_jnn, arch):
    """ESM-1b: learned positions, and ``F.multi_head_attention_forward`` when no head weights are asked for.
    ESM-1: sinusoidal positions (a table that forward caches on the module), bias_kv, TF-style LayerNorm, an extra
    null-token attention column dropped from the maps."""
    name = "ESM-1b" if arch == "roberta_large" else "ESM-1"
    packages = (esm_torch, esm_jnn)
    args = argparse.Namespace(arch=arch, **ESM1)
    reference, model = _twins(lambda i: packages[i].ProteinBertModel(
        args, packages[i].Alphabet.from_architecture(name)))
    assert model.model_version == name
    tokens = _tokens(esm_torch, esm_jnn, name, SEQUENCES)
    _check(reference, model, tokens, repr_layers=[0, 2], return_contacts=True)
    _check(reference, model, tokens, jit=name == "ESM-1b")  # through F.multi_head_attention_forward


def test_ported_msa_transformer_matches_torch(esm_torch, esm_jnn):
    """Two MSAs of different depth and width (padded rows and columns), MSA position embeddings; one axial layer."""
    args = argparse.Namespace(layers=1, embed_dim=16, ffn_embed_dim=32, attention_heads=2, dropout=0.0,
                              attention_dropout=0.0, activation_dropout=0.0, max_tokens_per_msa=2**14, max_tokens=2**14,
                              max_positions=64, embed_positions_msa=True)
    packages = (esm_torch, esm_jnn)
    reference, model = _twins(lambda i: packages[i].MSATransformer(
        args, packages[i].Alphabet.from_architecture("msa_transformer")))
    tokens = _tokens(esm_torch, esm_jnn, "msa_transformer", MSAS)
    assert tokens.shape == (2, 3, 9) and (tokens == model.padding_idx).any()
    _check(reference, model, tokens, repr_layers=[0, 1], return_contacts=True)
    # Torch takes the axial attentions' chunked path (max_tokens_per_msa, a memory saving) only with gradients
    # disabled; jnn.ops.is_grad_enabled() is True, so the port's forward never does: the path itself, compared
    x = np.random.default_rng(0).standard_normal((3, 9, 2, 16)).astype(np.float32)  # rows, columns, batch, dim
    mask = torch.from_numpy(tokens == model.padding_idx)  # batch, rows, columns: a padded row, padded columns
    for name in ("row_self_attention", "column_self_attention"):
        ours, theirs = getattr(model.layers[0], name).layer, getattr(reference.layers[0], name).layer
        ours.max_tokens_per_msa = theirs.max_tokens_per_msa = 20  # chunks of 2 rows (3 columns)
        with torch.no_grad():
            expected = theirs._batched_forward(torch.from_numpy(x), None, mask)
        for got, want in zip(ours._batched_forward(jnp.asarray(x), None, jnp.asarray(mask.numpy())), expected,
                             strict=True):
            _close(got, want.numpy())


@pytest.mark.parametrize("extra", [{}, {"add_bias_kv": True, "add_zero_attn": True}])
def test_fairseq_attention_incremental_state_matches_torch(esm_torch, esm_jnn, extra):
    """fairseq's MultiheadAttention decoding step by step: the keys, values and padding masks of earlier steps are
    kept in the caller's ``incremental_state`` dict (its writes ported as in-place dict updates)."""
    packages = (esm_torch, esm_jnn)
    reference, model = _twins(lambda i: packages[i].multihead_attention.MultiheadAttention(
        16, 2, self_attention=True, **extra))
    rng = np.random.default_rng(0)
    theirs, ours = {}, {}
    for step in range(3):
        x = rng.standard_normal((1, 2, 16)).astype(np.float32)  # one step, batch of 2
        padding = np.array([[False], [step == 1]])
        with torch.no_grad():
            expected = reference(*[torch.from_numpy(x)] * 3, key_padding_mask=torch.from_numpy(padding),
                                 incremental_state=theirs, need_head_weights=True)
        got = model(*[jnp.asarray(x)] * 3, key_padding_mask=jnp.asarray(padding), incremental_state=ours,
                    need_head_weights=True)
        for a, b in zip(got, expected, strict=True):
            _close(a, b.numpy())
        (saved,), (want,) = ours.values(), theirs.values()
        assert list(saved) == list(want) == ["prev_key", "prev_value", "prev_key_padding_mask"]
        for key in want:
            _close(saved[key], want[key].numpy())
