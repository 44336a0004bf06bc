"""lucidrains' vit-pytorch, ported by ``python -m jnn.port`` from its own source (vit-pytorch 1.26.14, fetched at
test time, see ``_pypi_source``): ``vit_pytorch`` -> ``vit_pytorch_jnn``, no hand edits.

Model code in einops' style: ``einops.rearrange/repeat/reduce/pack/unpack/einsum`` on tensors in ``forward`` (einops
takes JAX arrays through its JAX backend, eagerly, under ``jax.jit`` and ``jax.grad``), and einops' torch layers
``Rearrange``/``Reduce`` inside ``nn.Sequential``, which the port maps to ``jnn.einops`` (jnn modules: printed,
saved and traced as torch's are). Each model is small, built from the package's classes on both sides with the same
arguments; torch's state_dict (constants randomised) loads into the port with ``strict=True``; ``print(net)`` is
torch's; eval outputs agree eagerly and under ``jax.jit``; training-step gradients (and BatchNorm's running
statistics) through ``jnn.split`` agree for ViT with the decorrelation loss, MaxViT and MAE on a ViT. MAE masks random
patches: the port draws its own noise from jnn's stream, and torch's ``torch.rand`` replays the same noise.
"""

from __future__ import annotations

import subprocess
import sys

import _pypi_source as pypi
import jax
import numpy as np
import pytest
import torch
from helpers import jitted, load_twin

import jnn

IMG = 16
VIT = dict(image_size=IMG, patch_size=4, num_classes=5, dim=16, depth=2, heads=2, dim_head=8, mlp_dim=32)

# name -> (module, class, arguments); every model takes (2, 3, IMG, IMG) images
MODELS = {
    "vit": ("vit", "ViT", VIT),
    "simple_vit_with_register_tokens": ("simple_vit_with_register_tokens", "SimpleViT",
                                        dict(VIT, num_register_tokens=3)),  # einops pack/unpack
    # layer_dropout 0: CaiT drops random layers in eval mode too (with a Python loop over concrete draws)
    "cait": ("cait", "CaiT", dict(VIT, cls_depth=1, layer_dropout=0.0)),
    "deepvit": ("deepvit", "DeepViT", dict(VIT, pool="mean")),  # Rearrange layers around re-attention's LayerNorm
    "cross_vit": ("cross_vit", "CrossViT", dict(
        image_size=IMG, num_classes=5, sm_dim=16, lg_dim=24, sm_patch_size=4, sm_enc_depth=1, sm_enc_heads=2,
        sm_enc_mlp_dim=32, sm_enc_dim_head=8, lg_patch_size=8, lg_enc_depth=1, lg_enc_heads=2, lg_enc_mlp_dim=32,
        lg_enc_dim_head=8, cross_attn_depth=1, cross_attn_heads=2, cross_attn_dim_head=8, depth=1)),
    "max_vit": ("max_vit", "MaxViT", dict(num_classes=5, dim=8, depth=(1,), dim_head=4, window_size=2,
                                          dropout=0.0)),  # Reduce layer, BatchNorm, windowed/grid Rearranges
    "vit_with_decorr": ("vit_with_decorr", "ViT", dict(VIT, decorr_use_subspace=True, decorr_dim_subspace=8,
                                                       decorr_num_subspaces=2)),  # einops einsum and reduce
}


@pytest.fixture(scope="module")
def vit_torch():
    """The original vit_pytorch files, imported with torch."""
    return pypi.imported(pypi.VIT_PYTORCH)


@pytest.fixture(scope="module")
def vit_jnn():
    """``python -m jnn.port vit_pytorch -o vit_pytorch_jnn``, imported with jnn."""
    return pypi.imported(pypi.VIT_PYTORCH, ported=True)


def _build(package, name: str):
    module, cls, kwargs = MODELS[name]
    return getattr(__import__(f"{package.__name__}.{module}", fromlist=[cls]), cls)(**kwargs)


def _twins(vit_torch, vit_jnn, name: str):
    """torch's model and its port, built from the same arguments, torch's state loaded strictly into the port;
    both in eval mode. The port prints as torch's model does (einops' layers included)."""
    torch.manual_seed(0)
    reference, model = _build(vit_torch, name), _build(vit_jnn, name)
    assert repr(model) == repr(reference)
    load_twin(model, reference)
    return reference, model


def _images() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((2, 3, IMG, IMG)).astype(np.float32)


def _close(actual, expected, rtol: float = 1e-5) -> None:
    expected = np.asarray(expected)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol,
                               atol=rtol * max(float(np.abs(expected).max(initial=0.0)), 1.0))


def _numpy(value):
    return tuple(map(_numpy, value)) if isinstance(value, tuple) else value.detach().numpy()


@pytest.mark.parametrize("name", list(MODELS))
def test_ported_vit_pytorch_model_matches_torch(name, vit_torch, vit_jnn):
    reference, model = _twins(vit_torch, vit_jnn, name)
    x = _images()
    with torch.no_grad():
        expected = _numpy(reference(torch.from_numpy(x)))
    for got in (model(jax.numpy.asarray(x)), jitted(model, (x,), {})):
        jax.tree.map(_close, got, expected)
    if name == "vit":
        rearrange = model.to_patch_embedding[0]
        assert isinstance(rearrange, jnn.Module) and type(rearrange).__module__ == "jnn.einops"
        assert repr(rearrange) == "Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=4, p2=4)"


def _torch_step(reference, x, loss):
    reference.zero_grad()
    value = loss(reference(torch.from_numpy(x)))
    value.backward()
    # a parameter the loss does not use (MAE's encoder head) has no gradient in torch, zeros in JAX
    return value.item(), {k: np.zeros(p.shape, np.float32) if p.grad is None else p.grad.numpy()
                          for k, p in reference.named_parameters()}


def _jnn_step(model, x, loss):
    """The loss, its gradients and the buffers after one training step, through ``jnn.split`` under ``jax.jit``."""
    apply, params, buffers = jnn.split(model)

    def step(p, x):
        out, new = apply(p, buffers, x)
        return loss(out), new

    (value, new), grads = jax.jit(jax.value_and_grad(step, has_aux=True))(params, x)
    return value, grads, new


@pytest.mark.parametrize("name", ["vit_with_decorr", "max_vit"])
def test_ported_vit_pytorch_training_step_matches_torch(name, vit_torch, vit_jnn):
    """Train mode: a ViT's loss on its logits plus its decorrelation auxiliary loss (einops einsum and reduce);
    MaxViT's loss, its BatchNorms updating their running statistics. (MAE's test trains a plain ViT.)"""
    reference, model = _twins(vit_torch, vit_jnn, name)
    reference.train()
    model.train()
    x = _images()

    def loss(out):
        logits, aux = out if isinstance(out, tuple) else (out, 0.0)
        return (logits**2).mean() + 10 * aux

    expected, grads = _torch_step(reference, x, loss)
    value, got, buffers = _jnn_step(model, x, loss)
    _close(value, expected)
    assert set(got) == set(grads)
    for k, g in grads.items():
        _close(got[k], g, rtol=1e-5)
    state = reference.state_dict()  # after the step: BatchNorm's running statistics updated
    persistent = [k for k in buffers if k in state]
    assert set(persistent) == {k for k, _ in reference.named_buffers() if k in state}
    for k in persistent:
        _close(buffers[k], state[k].numpy())
    assert name != "max_vit" or any(k.endswith("running_var") for k in persistent)


def test_ported_vit_pytorch_mae_matches_torch(vit_torch, vit_jnn, monkeypatch):
    """MAE on a ViT: its reconstruction loss and gradients. Which patches are masked is random: the port draws the
    noise from jnn's stream (``ops.rand``, seeded eagerly, from a forked key under ``jax.jit``); torch's
    ``torch.rand`` is made to return that same noise, so both mask the same patches."""
    torch.manual_seed(0)
    # a mean-pooling ViT: with a cls token (ViT's default) 1.26.14's MAE slices ViT's 2-d position embedding as if
    # it were 3-d, and fails in torch too
    encoders = [package.ViT(**dict(VIT, pool="mean")) for package in (vit_torch, vit_jnn)]
    kwargs = dict(decoder_dim=8, masking_ratio=0.5, decoder_depth=1, decoder_heads=2, decoder_dim_head=4)
    reference = vit_torch.MAE(encoder=encoders[0], **kwargs)
    model = vit_jnn.MAE(encoder=encoders[1], **kwargs)
    assert repr(model) == repr(reference)
    load_twin(model, reference)
    reference.train()
    model.train()
    x = _images()

    drawn = []
    rand = jnn.ops.rand
    monkeypatch.setattr(jnn.ops, "rand", lambda *a, **k: drawn.append(rand(*a, **k)) or drawn[-1])
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.from_numpy(np.array(noise)))

    jnn.manual_seed(1)
    eager = model(jax.numpy.asarray(x))
    noise = drawn[-1]
    assert noise.shape == (2, 16)
    _close(eager, reference(torch.from_numpy(x)).item())

    apply, params, buffers = jnn.split(model)

    def step(p, x, key):
        loss = apply(p, buffers, x, key=key)[0]
        return loss, drawn[-1]

    (value, noise), grads = jax.jit(jax.value_and_grad(step, has_aux=True))(params, x, jax.random.key(2))
    assert not np.allclose(noise, drawn[0])  # a new draw, under jit
    expected, expected_grads = _torch_step(reference, x, lambda loss: loss)
    _close(value, expected)
    assert set(grads) == set(expected_grads)
    for k, g in expected_grads.items():
        _close(grads[k], g, rtol=1e-5)


def test_jnn_einops_needs_einops_and_jnn_does_not():
    """Without einops, jnn imports (it never imports jnn.einops itself) and ``import jnn.einops`` says what is
    missing."""
    code = ("import sys; sys.modules['einops'] = None\nimport jnn, jnn.port, jnn.functional\n"
            "assert 'jnn.einops' not in sys.modules\ntry:\n    import jnn.einops\nexcept ImportError as e:\n"
            "    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "jnn.einops needs einops: pip install einops"
