"""open_clip's CLIP, ported by ``python -m jnn.port`` from its own source (open_clip_torch 3.3.0, fetched at test
time, see ``_pypi_source``): ``open_clip`` -> ``open_clip_jnn``, no hand edits.

A tiny CLIP (a 2-layer ViT image tower, a 2-layer causal text transformer with argmax pooling, learnable logit
scale) is built from a config dict on both sides, its constants randomised, and torch's state_dict loads into the
port with ``strict=True``. Compared, eagerly and under ``jax.jit``: encode_image, encode_text, get_logits and
forward; then one training step's contrastive loss (open_clip's ClipLoss) and its gradients w.r.t. every parameter,
through ``jnn.split``. Both sides import a stand-in for the one torchvision name open_clip's utils.py needs
(``_timm_source``), with transformers and timm hidden (open_clip's HF and timm towers are optional and unused).
"""

from __future__ import annotations

import contextlib
import sys

import _pypi_source as pypi
import _timm_source as timmsource
import jax
import numpy as np
import pytest
import torch
from helpers import jitted, load_twin
from test_port_timm import _JnnFrozenBatchNorm2d, _TorchFrozenBatchNorm2d

import jnn

VISION = {"layers": 2, "width": 32, "head_width": 16, "patch_size": 8, "image_size": 32}
TEXT = {"context_length": 16, "vocab_size": 100, "width": 32, "heads": 2, "layers": 2}
BATCH = 4


@contextlib.contextmanager
def _hidden(*names):
    """``import name`` fails (ImportError) inside the block; ``sys.modules`` is as before afterwards."""
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in names}
    for k in saved:
        del sys.modules[k]
    sys.modules.update(dict.fromkeys(names))
    try:
        yield
    finally:
        for name in names:
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def open_clip_torch():
    """The original open_clip files, imported with torch."""
    with _hidden("transformers", "timm"):
        return timmsource.import_package(pypi.source_tree(pypi.OPEN_CLIP), "open_clip", _TorchFrozenBatchNorm2d)


@pytest.fixture(scope="module")
def open_clip_jnn():
    """``python -m jnn.port open_clip -o open_clip_jnn``, imported with jnn."""
    with _hidden("transformers", "timm"):
        return timmsource.import_package(pypi.ported_tree(pypi.OPEN_CLIP), "open_clip_jnn", _JnnFrozenBatchNorm2d)


def _pair(open_clip_torch, open_clip_jnn, vision=VISION, text=TEXT, **kwargs):
    """The same CLIP on both sides, torch's weights (constants randomised) loaded into the port."""
    torch.manual_seed(0)
    reference = open_clip_torch.CLIP(32, dict(vision), dict(text), **kwargs)
    model = open_clip_jnn.CLIP(32, dict(vision), dict(text), **kwargs)
    load_twin(model, reference)
    return reference, model


@pytest.fixture(scope="module")
def models(open_clip_torch, open_clip_jnn):
    return _pair(open_clip_torch, open_clip_jnn)


def _inputs():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((BATCH, 3, 32, 32)).astype(np.float32)
    text = rng.integers(1, 98, (BATCH, TEXT["context_length"])).astype(np.int64)
    text[np.arange(BATCH), [3, 15, 7, 0]] = 99  # the end-of-text token (the largest id: argmax pooling finds it)
    return images, text


def _close(actual, expected, rtol=1e-5):
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    atol = 1e-5 * max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("method", ["encode_image", "encode_text", "get_logits", "forward"])
def test_ported_open_clip_matches_torch(method, models):
    reference, model = models
    images, text = _inputs()
    args = {"encode_image": (images,), "encode_text": (text,)}.get(method, (images, text))
    with torch.no_grad():
        expected = getattr(reference, method)(*map(torch.from_numpy, args))
    expected = expected if isinstance(expected, tuple) else (expected,)
    for got in (getattr(model, method)(*args), jitted(getattr(model, method), args, {})):
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            _close(g, e)


@pytest.mark.parametrize("loss", ["ClipLoss", "SigLipLoss"])
def test_ported_open_clip_training_step_matches_torch(loss, models, open_clip_torch, open_clip_jnn):
    """A contrastive loss on forward's normalised features and logit scale: the loss and every parameter's
    gradient. SigLIP's sigmoid loss takes a learnt logit bias too, here on a CLIP with layer scale in both towers
    and the text pooled at its last token."""
    if loss == "ClipLoss":
        reference, model = models
    else:
        reference, model = _pair(open_clip_torch, open_clip_jnn, {**VISION, "ls_init_value": 0.1},
                                 {**TEXT, "ls_init_value": 0.1, "pool_type": "last"}, init_logit_bias=-10.0)
    images, text = _inputs()
    reference.train()
    reference.zero_grad()
    value = getattr(open_clip_torch.loss, loss)()(*reference(torch.from_numpy(images), torch.from_numpy(text)))
    value.backward()
    expected = {k: p.grad.numpy() for k, p in reference.named_parameters()}

    model.train()
    apply, params, buffers = jnn.split(model)
    clip_loss = getattr(open_clip_jnn.loss, loss)()

    def step(params, images, text):
        outputs, _ = apply(params, buffers, images, text)
        return clip_loss(*outputs)

    got, grads = jax.jit(jax.value_and_grad(step))(params, images, text)
    _close(got, value)
    assert set(grads) == set(expected)
    for k, g in expected.items():
        _close(grads[k], g, rtol=1e-4)
