"""Six timm architectures, ported by ``python -m jnn.port`` from timm's own source (timm 1.0.31, fetched at test time).

The wheel's files are ported with no hand edits (see ``_timm_source``): ``timm`` -> ``timm_jnn``. The torch
reference models come from the same, unported files imported with torch. Both sides import a stand-in for the one
torchvision name timm needs (``torchvision.ops.misc.FrozenBatchNorm2d``, below), present only while they import.
Each model is made by ``create_model(name, pretrained=False, ...)`` on both sides; its constant-initialised tensors
(BatchNorm statistics, layer scales, zero-init heads and biases) are randomised, torch's state_dict loads into the
port with ``strict=True``, eval-mode outputs match eagerly and under ``jax.jit``, and one train-mode step (under
``jax.jit``, through ``jnn.split``) gives torch's output and leaves every buffer as torch leaves it. The port
imports, builds and runs with no torch at all.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import subprocess
import sys
import zipfile

import _timm_source as timmsource
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import randomise_constants

import jnn
import jnn.functional as F
from jnn.port import port_source


class _TorchFrozenBatchNorm2d(torch.nn.BatchNorm2d):
    """Stands for torchvision.ops.misc.FrozenBatchNorm2d: normalises with its running statistics, always."""

    def forward(self, x):
        return torch.nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                              False, 0.0, self.eps)


class _JnnFrozenBatchNorm2d(jnn.BatchNorm2d):
    """The same, in jnn."""

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


# name -> (create_model keyword arguments, input height/width). Dropout and drop-path are off so that a
# train-mode step is deterministic; BatchNorm is in every model but the ViT and Swin.
MODELS = {
    "resnet10t": ({}, 64),  # deep ("tiered") stem, average-pool downsampling, BatchNorm2d
    "efficientnet_b0": ({}, 64),  # timm's BatchNormAct2d (F.batch_norm on its own buffers), SE, depthwise convs
    "vit_tiny_patch16_224": ({"img_size": 64}, 64),  # patch embedding, class token, F.scaled_dot_product_attention
    "swin_tiny_patch4_window7_224": ({"img_size": 64, "window_size": 4}, 64),  # relative position index, shifted
    # window masks (stages 1-2), windows clamped to the feature map (stages 3-4)
    "convnext_atto": ({}, 64),  # LayerNorm2d, 7x7 depthwise convs, layer scale
    "regnety_002": ({}, 64),  # group convs, SE, RegNet's width quantisation
}
BATCH = 2


@pytest.fixture(scope="module")
def timm_torch():
    """The original timm files, imported with torch."""
    return timmsource.import_package(timmsource.source_tree(), "timm", _TorchFrozenBatchNorm2d)


@pytest.fixture(scope="module")
def timm_jnn():
    """``python -m jnn.port timm -o timm_jnn``, imported with jnn."""
    return timmsource.import_package(timmsource.ported_tree(), "timm_jnn", _JnnFrozenBatchNorm2d)


def _models(name, timm_torch, timm_jnn):
    kwargs, size = MODELS[name]
    kwargs = {"num_classes": 10, "drop_rate": 0.0, "drop_path_rate": 0.0, **kwargs}
    torch.manual_seed(0)
    reference = timm_torch.create_model(name, pretrained=False, **kwargs)
    randomise_constants(reference)
    model = timm_jnn.create_model(name, pretrained=False, **kwargs)
    torch_state = reference.state_dict()
    state = collections.OrderedDict((k, v.detach().numpy()) for k, v in torch_state.items())
    state._metadata = torch_state._metadata
    assert list(model.state_dict()) == list(state)
    model.load_state_dict(state, strict=True)
    x = np.random.default_rng(0).standard_normal((BATCH, 3, size, size)).astype(np.float32)
    return reference, model, x


def _close(actual, expected, rtol=1e-3):
    expected = np.asarray(expected)
    atol = 1e-4 * max(float(np.abs(expected).max()), 1.0) if expected.size else 0.0
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(MODELS))
def test_ported_timm_model_matches_torch(name, timm_torch, timm_jnn):
    reference, model, x = _models(name, timm_torch, timm_jnn)

    # eval mode: eagerly and under jax.jit
    reference.eval()
    model.eval()
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    assert expected.shape == (BATCH, 10)
    _close(model(jnp.asarray(x)), expected)
    _close(jax.jit(lambda m, v: m(v))(model, jnp.asarray(x)), expected)

    # one train-mode step: the output, and every buffer afterwards (BatchNorm statistics and counters, fixed
    # tables such as Swin's relative position index and attention masks)
    reference.train()
    model.train()
    before = {k: v.detach().clone() for k, v in reference.named_buffers()}
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    apply, params, buffers = jnn.split(model)
    out, buffers = jax.jit(apply, static_argnames="train")(params, buffers, jnp.asarray(x), train=True,
                                                            key=jax.random.key(0))
    _close(out, expected)
    torch_buffers = dict(reference.named_buffers())
    assert set(torch_buffers) <= set(buffers), set(torch_buffers) - set(buffers)
    for key, value in torch_buffers.items():
        if value.is_floating_point():
            _close(buffers[key], value.numpy(), rtol=1e-4)
        else:
            np.testing.assert_array_equal(np.asarray(buffers[key]), value.numpy(), err_msg=key)
    changed = [k for k, v in torch_buffers.items() if not torch.equal(v, before[k])]
    assert bool(changed) == any(k.endswith("running_mean") for k in torch_buffers), changed


def test_ported_timm_runs_without_torch():
    """The port needs no torch: with ``import torch`` made to fail, timm_jnn imports, builds and runs a model."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import jax.numpy as jnp, jnn, _timm_source\n"
        "class FrozenBatchNorm2d(jnn.BatchNorm2d): pass\n"
        "timm = _timm_source.import_package(_timm_source.ported_tree(), 'timm_jnn', FrozenBatchNorm2d)\n"
        "y = timm.create_model('resnet10t', num_classes=3)(jnp.ones((2, 3, 32, 32)))\n"
        "assert y.shape == (2, 3), y.shape\n"
        "assert not {'torch', 'torchvision', 'timm'} & {m.split('.')[0] for m in sys.modules if sys.modules[m]}\n"
        "print('ok')\n"
    )
    tests = os.path.dirname(os.path.abspath(__file__))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join([tests, str(timmsource.ROOT)])})
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


@pytest.fixture(scope="module")
def model_ema(tmp_path_factory):
    """timm's ``timm/utils/model_ema.py`` (standalone: it imports only torch), as it is and ported."""
    with zipfile.ZipFile(timmsource._wheel()) as wheel:
        text = wheel.read("timm/utils/model_ema.py").decode()
    ported = port_source(text, "model_ema.py", report=None)
    modules = []
    for name, source in (("model_ema_torch", text), ("model_ema_jnn", ported)):
        path = tmp_path_factory.mktemp(name) / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


@pytest.mark.parametrize("kind, kwargs", [
    ("ModelEmaV2", {}),  # ema_v.copy_(...) over state_dict().values()
    ("ModelEmaV3", {}),  # torch._foreach_lerp_ over the floating-point state_dict() values, copy_ for the others
    ("ModelEmaV3", {"foreach": False}),  # ema_v.lerp_(...) one by one
    ("ModelEmaV3", {"exclude_buffers": True}),  # _foreach_lerp_ over list(parameters()), buffers copied
])
def test_timm_model_ema_tracks_the_model_as_torch(kind, kwargs, model_ema):
    """timm's EMA of a model updates its copy's tensors in place, read from ``state_dict().values()`` or
    ``parameters()``; ported, the in-place functions write the new arrays back to the copy's slots (before, every
    update was lost and the EMA stayed the initial model, silently)."""
    theirs, ours = model_ema

    def net(nn):
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))

    torch.manual_seed(0)
    reference, model = net(torch.nn), net(jnn)
    reference_ema = getattr(theirs, kind)(reference, decay=0.9, **kwargs)
    model.load_state_dict({k: jnp.asarray(v.numpy()) for k, v in reference.state_dict().items()})
    model_ema_ = getattr(ours, kind)(model, decay=0.9, **kwargs)
    rng = np.random.default_rng(0)
    for step in range(3):  # the models move (a train-mode forward moves BatchNorm's statistics), the EMAs follow
        with torch.no_grad():
            for p in reference.parameters():
                p.add_(torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
        x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
        reference.train()(torch.from_numpy(x))
        model.load_state_dict({k: jnp.asarray(v.numpy()) for k, v in reference.state_dict().items()})
        reference_ema.update(reference, **({"step": step + 5} if kind == "ModelEmaV3" else {}))
        model_ema_.update(model, **({"step": step + 5} if kind == "ModelEmaV3" else {}))
        state = model_ema_.module.state_dict()
        for key, value in reference_ema.module.state_dict().items():
            np.testing.assert_allclose(np.asarray(state[key]), value.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    assert not np.allclose(np.asarray(model_ema_.module.state_dict()["0.weight"]), np.asarray(model.state_dict()[
        "0.weight"]))  # an average, not a copy
