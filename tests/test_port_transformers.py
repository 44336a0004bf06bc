"""Four HuggingFace transformers models, ported by ``python -m jnn.port`` from transformers' own source.

The installed transformers package (the test extra pins it) builds the torch reference models; the files that
importing those models loads are ported with no hand edits and no stand-ins (see ``_transformers_source``):
``transformers`` -> ``transformers_jnn``. Each model is made from a small random config on both sides, its
constant-initialised tensors (LayerNorm weights and biases, zero biases) are randomised, torch's state_dict loads
into the port with ``strict=True`` (same keys, same order), eval-mode outputs (a ``ModelOutput``, which the port
registers as a JAX pytree) match eagerly and under ``jax.jit``, and one training step through ``jnn.split`` gives
torch's loss and gradients: HuggingFace's own causal-LM loss for GPT-2 (tied input and output embeddings: one
parameter, as in torch) and LLaMA, a fixed random projection of the outputs for BERT and ViT.
"""

from __future__ import annotations

import collections

import _transformers_source as source
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jnn

# one pytest-xdist worker runs this file: its module fixture ports transformers (over a minute), which each worker
# given one of its tests would make again
pytestmark = pytest.mark.xdist_group("transformers")

pytest.importorskip("transformers")
transformers = source.load("transformers")  # the installed package, with its models imported

RNG = np.random.default_rng(0)
TOKENS = RNG.integers(0, 100, (2, 12))
IMAGES = RNG.standard_normal((2, 3, 32, 32)).astype(np.float32)
SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
# name -> (model class, config class, config, input, causal LM). Dropout is off so a training step is deterministic.
MODELS = {
    "gpt2": ("GPT2LMHeadModel", "GPT2Config", {
        "n_layer": 2, "n_embd": 64, "n_head": 4, "vocab_size": 100, "n_positions": 32, "bos_token_id": 0,
        "eos_token_id": 0, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}, TOKENS, True),
    "bert": ("BertModel", "BertConfig", {
        **SMALL, "vocab_size": 100, "max_position_embeddings": 32, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0}, TOKENS, False),
    "llama": ("LlamaForCausalLM", "LlamaConfig", {  # grouped-query attention, rotary embeddings, RMSNorm, SwiGLU
        **SMALL, "num_key_value_heads": 2, "vocab_size": 100, "max_position_embeddings": 32}, TOKENS, True),
    "vit": ("ViTModel", "ViTConfig", {
        **SMALL, "image_size": 32, "patch_size": 8, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0}, IMAGES, False),
}


@pytest.fixture(scope="module")
def transformers_jnn():
    return source.import_ported()


def randomise(model: torch.nn.Module) -> None:
    """Give every constant-initialised float tensor (LayerNorm weights and biases, zero biases) random values."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point() and t.numel() > 1 and bool((t == t.flatten()[0]).all()):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1 + (1.0 if bool((t == 1).all()) else 0.0))


def _models(name, transformers_jnn):
    cls, config_cls, config, x, causal = MODELS[name]
    torch.manual_seed(0)
    reference = getattr(transformers, cls)(getattr(transformers, config_cls)(**config))
    randomise(reference)
    model = getattr(transformers_jnn, cls)(getattr(transformers_jnn, config_cls)(**config))
    torch_state = reference.state_dict()
    state = collections.OrderedDict((k, v.detach().numpy()) for k, v in torch_state.items())
    state._metadata = torch_state._metadata
    assert list(model.state_dict()) == list(state)
    model.load_state_dict(state, strict=True)
    return reference, model, x, causal


def _main(output):
    return output.logits if hasattr(output, "logits") else output.last_hidden_state


def _close(actual, expected, rtol=1e-4):
    expected = np.asarray(expected)
    atol = 1e-5 * max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(MODELS))
def test_ported_transformers_model_matches_torch(name, transformers_jnn):
    reference, model, x, causal = _models(name, transformers_jnn)
    if name == "gpt2":  # tied by post_init's tie_weights, and still after load_state_dict
        assert model.lm_head.weight is model.transformer.wte.weight

    # eval mode: eagerly and under jax.jit (the ModelOutput comes back through jit as a pytree)
    reference.eval()
    model.eval()
    with torch.no_grad():
        expected = _main(reference(torch.from_numpy(x))).numpy()
    output = model(jnp.asarray(x))
    assert type(output).__name__ == type(reference(torch.from_numpy(x))).__name__
    _close(_main(output), expected)
    # A causal LM's output holds its key/value cache, an object that is no pytree (in torch's pytree registry
    # neither), so the jitted function returns the logits. With use_cache=False the whole output comes back;
    # transformers then checks for packed sequences with a data-dependent branch that it skips while compiling
    # (jnn.ops.compiler.is_compiling() is True under jax.jit).
    jitted = jax.jit(lambda m, v: _main(m(v)) if causal else m(v))(model, jnp.asarray(x))
    _close(jitted if causal else _main(jitted), expected)
    if causal:
        _close(_main(jax.jit(lambda m, v: m(v, use_cache=False))(model, jnp.asarray(x))), expected)

    # one training step: the loss and every parameter's gradient
    reference.train()
    model.train()
    projection = np.random.default_rng(1).standard_normal(expected.shape).astype(np.float32)
    if causal:
        loss = reference(torch.from_numpy(x), labels=torch.from_numpy(x)).loss
    else:
        out = reference(torch.from_numpy(x))
        loss = (out.last_hidden_state * torch.from_numpy(projection)).sum() + out.pooler_output.sum()
    loss.backward()
    apply, params, buffers = jnn.split(model)

    def objective(params):
        if causal:
            out, _ = apply(params, buffers, jnp.asarray(x), labels=jnp.asarray(x), train=True)
            return out.loss
        out, _ = apply(params, buffers, jnp.asarray(x), train=True)
        return (out.last_hidden_state * projection).sum() + out.pooler_output.sum()

    value, grads = jax.jit(jax.value_and_grad(objective))(params)
    _close(value, loss.detach().numpy())
    torch_grads = {k: p.grad for k, p in reference.named_parameters()}  # tied weights: one entry, as in params
    assert set(grads) == set(torch_grads)
    for key, grad in torch_grads.items():
        _close(grads[key], np.zeros(params[key].shape) if grad is None else grad.numpy(), rtol=1e-3)
