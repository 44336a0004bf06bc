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

import collections
import contextlib
import sys

import _pypi_source as pypi
import _timm_source as timmsource
import jax
import numpy as np
import pytest
import torch
from helpers import jitted, randomise_constants
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


@pytest.fixture(scope="module")
def models(open_clip_torch, open_clip_jnn):
    torch.manual_seed(0)
    reference = open_clip_torch.CLIP(32, dict(VISION), dict(TEXT))
    randomise_constants(reference)
    model = open_clip_jnn.CLIP(32, dict(VISION), dict(TEXT))
    torch_state = reference.state_dict()
    state = collections.OrderedDict((k, v.detach().numpy()) for k, v in torch_state.items())
    state._metadata = torch_state._metadata
    assert list(model.state_dict()) == list(state)
    model.load_state_dict(state, strict=True)
    return reference.eval(), model.eval()


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


def test_ported_open_clip_training_step_matches_torch(models, open_clip_torch, open_clip_jnn):
    """ClipLoss on forward's normalised features and logit scale: the loss and every parameter's gradient."""
    reference, model = models
    images, text = _inputs()
    reference.train()
    reference.zero_grad()
    loss = open_clip_torch.ClipLoss()(*reference(torch.from_numpy(images), torch.from_numpy(text)))
    loss.backward()
    expected = {k: p.grad.numpy() for k, p in reference.named_parameters()}

    model.train()
    apply, params, buffers = jnn.split(model)
    clip_loss = open_clip_jnn.ClipLoss()

    def step(params, images, text):
        outputs, _ = apply(params, buffers, images, text)
        return clip_loss(*outputs)

    value, grads = jax.jit(jax.value_and_grad(step))(params, images, text)
    _close(value, loss)
    assert set(grads) == set(expected)
    for k, g in expected.items():
        _close(grads[k], g, rtol=1e-4)
