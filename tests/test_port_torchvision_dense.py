"""torchvision's segmentation, video and optical-flow models, ported by ``python -m jnn.port`` from torchvision's own
source (the subset of ``_torchvision_source``; the fixtures ``tv_torch`` and ``tv_jnn`` are in ``conftest.py``).

As for the classification models (``test_port_torchvision.py``): every model is built with the same arguments on
both sides (``weights=None``, few classes, small inputs), its BatchNorm statistics and constant-initialised tensors
are randomised, torch's state_dict loads into the port with ``strict=True``, and the eval-mode outputs (a dict of
maps, a clip's logits, RAFT's list of flow estimates) match eagerly and under ``jax.jit``. One model per family also
takes a train-mode step through ``jnn.split`` under ``jax.jit``: the loss, every parameter's gradient and every
buffer afterwards (BatchNorm statistics) match torch's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import load_twin

import jnn
import jnn.functional as jF


def _small_mvit(video):
    """MViT with mvit_v2_s's structure, four small blocks: query pooling twice, key/value pooling from stride 4 down
    to 1, relative positional embeddings, residual pooling."""
    heads, channels = [1, 2, 2, 4], [16, 16, 32, 32, 64]
    stride_q, stride_kv = [[1, 1, 1], [1, 2, 2], [1, 1, 1], [1, 2, 2]], [[1, 4, 4], [1, 2, 2], [1, 2, 2], [1, 1, 1]]
    blocks = [video.mvit.MSBlockConfig(num_heads=heads[i], input_channels=channels[i],
                                       output_channels=channels[i + 1], kernel_q=[3, 3, 3], kernel_kv=[3, 3, 3],
                                       stride_q=stride_q[i], stride_kv=stride_kv[i]) for i in range(4)]
    return video.MViT(spatial_size=(32, 32), temporal_size=4, block_setting=blocks, residual_pool=True,
                      residual_with_cls_embed=False, rel_pos_embed=True, proj_after_attn=True, num_classes=5)


def _small_swin3d(video):
    """swin3d_t's structure, narrower and two stages: shifted 2x4x4 windows (with their attention masks) in the
    first, a window as large as the map (no shift) in the second."""
    return video.SwinTransformer3d(patch_size=[2, 4, 4], embed_dim=24, depths=[2, 2], num_heads=[2, 4],
                                   window_size=[2, 4, 4], num_classes=5)


def _seg(name: str, **kwargs):
    return lambda m: getattr(m.segmentation, name)(weights=None, weights_backbone=None, num_classes=3, **kwargs)


# two images or clips: BatchNorm's train-mode statistics over one 1x2x2 map are too few for gradients to 1e-4
IMAGE, CLIP, FLOW = (2, 3, 64, 64), (2, 3, 4, 32, 32), (1, 3, 128, 128)  # RAFT: 8x down, then 3 pyramid halvings
# name -> (how to build it from the package's ``models``, the input shapes, keyword arguments of forward)
MODELS = {
    "fcn_resnet50": (_seg("fcn_resnet50", aux_loss=True), [IMAGE], {}),
    "deeplabv3_mobilenet_v3_large": (_seg("deeplabv3_mobilenet_v3_large"), [IMAGE], {}),
    "lraspp_mobilenet_v3_large": (_seg("lraspp_mobilenet_v3_large"), [IMAGE], {}),
    "r3d_18": (lambda m: m.video.r3d_18(num_classes=5), [CLIP], {}),
    "mc3_18": (lambda m: m.video.mc3_18(num_classes=5), [CLIP], {}),
    "r2plus1d_18": (lambda m: m.video.r2plus1d_18(num_classes=5), [CLIP], {}),
    # S3D's head pools 2x7x7 with no padding: the smallest clip it takes is 16 frames of 224 px
    "s3d": (lambda m: m.video.s3d(num_classes=5), [(1, 3, 16, 224, 224)], {}),
    "mvit_v2_small": (lambda m: _small_mvit(m.video), [CLIP], {}),
    "swin3d_small": (lambda m: _small_swin3d(m.video), [CLIP], {}),
    "raft_large": (lambda m: m.optical_flow.raft_large(), [FLOW, FLOW], {"num_flow_updates": 2}),
    "raft_small": (lambda m: m.optical_flow.raft_small(), [FLOW, FLOW], {"num_flow_updates": 2}),
}
EVAL = list(MODELS)[:-1]  # raft_small: its train step (below) is jitted, its forward has no batch statistics
TRAIN = ["lraspp_mobilenet_v3_large", "r3d_18", "raft_small"]


def _models(name, tv_torch, tv_jnn):
    """The torch model (constants randomised) and its port holding the same state, both in eval mode."""
    build, shapes, _ = MODELS[name]
    torch.manual_seed(0)
    reference, model = build(tv_torch.models), build(tv_jnn.models)
    load_twin(model, reference)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    return reference, model, inputs


def _numpy(tree):
    """``tree`` (a tensor, or a dict or list of them: torch's or jnn's) with NumPy arrays for leaves."""
    if isinstance(tree, dict):
        return {k: _numpy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_numpy(v) for v in tree]
    return tree.detach().numpy() if isinstance(tree, torch.Tensor) else np.asarray(tree)


def _close(actual, expected, rtol=1e-4, scale=1e-5, floor=0.0, what=""):
    """``actual`` matches ``expected`` leaf by leaf, to ``rtol`` and an absolute tolerance of ``scale`` times each
    leaf's largest magnitude (at least ``floor``)."""
    actual, expected = _numpy(actual), _numpy(expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected), what
        for k in expected:
            _close(actual[k], expected[k], rtol, scale, floor, f"{what}[{k!r}]")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), what
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _close(a, e, rtol, scale, floor, f"{what}[{i}]")
    else:
        assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
        atol = max(scale * float(np.abs(expected).max()), floor)
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("name", EVAL)
def test_ported_dense_model_matches_torch(name, tv_torch, tv_jnn):
    reference, model, inputs = _models(name, tv_torch, tv_jnn)
    kwargs = MODELS[name][2]
    with torch.no_grad():
        expected = reference(*map(torch.from_numpy, inputs), **kwargs)
    _close(model(*map(jnp.asarray, inputs), **kwargs), expected)
    _close(jax.jit(lambda m, *xs: m(*xs, **kwargs))(model, *map(jnp.asarray, inputs)), expected)


def _loss(F, name: str, out, target):
    """The training loss of torchvision's reference scripts, with ``F`` torch's or jnn's functional: cross-entropy
    (plus half the auxiliary head's), or RAFT's sequence loss (L1, later estimates weighted more)."""
    if name.startswith("raft"):
        return sum(0.8 ** (len(out) - 1 - i) * abs(flow - target).mean() for i, flow in enumerate(out))
    if isinstance(out, dict):
        return F.cross_entropy(out["out"], target) + 0.5 * F.cross_entropy(out["aux"], target) if "aux" in out \
            else F.cross_entropy(out["out"], target)
    return F.cross_entropy(out, target)


def _target(name: str, inputs: list[np.ndarray]) -> np.ndarray:
    rng = np.random.default_rng(1)
    if name.startswith("raft"):
        return rng.standard_normal((1, 2, *inputs[0].shape[-2:])).astype(np.float32)
    if inputs[0].ndim == 4:  # a class per pixel
        return rng.integers(0, 3, (inputs[0].shape[0], *inputs[0].shape[-2:]))
    return rng.integers(0, 5, inputs[0].shape[:1])


@pytest.mark.parametrize("name", TRAIN)
def test_ported_dense_model_train_step_matches_torch(name, tv_torch, tv_jnn):
    """One train-mode step (models without dropout): the loss, the gradients (``jax.grad`` through ``jnn.split``,
    jitted) and the buffers after it (BatchNorm statistics)."""
    reference, model, inputs = _models(name, tv_torch, tv_jnn)
    kwargs = MODELS[name][2]
    target = _target(name, inputs)
    reference.train()
    loss = _loss(torch.nn.functional, name, reference(*map(torch.from_numpy, inputs), **kwargs),
                 torch.from_numpy(target))
    loss.backward()

    apply, params, buffers = jnn.split(model)

    def step(params, buffers, inputs, target):
        out, buffers = apply(params, buffers, *inputs, train=True, **kwargs)
        return _loss(jF, name, out, target), buffers

    (value, new_buffers), grads = jax.jit(jax.value_and_grad(step, has_aux=True))(
        params, buffers, list(map(jnp.asarray, inputs)), jnp.asarray(target))
    _close(value, loss)
    torch_params = dict(reference.named_parameters())
    assert sorted(grads) == sorted(torch_params)
    # Gradients to 1e-4 of each one's largest (BatchNorm's train-mode backward over few values loses digits: the
    # largest differences are about 2e-5). A bias followed by a normalisation (a conv's before BatchNorm, RAFT's
    # before InstanceNorm) has a gradient of zero but for rounding: that is compared to the largest gradient of all.
    floor = 1e-6 * max(float(p.grad.abs().max()) for p in torch_params.values())
    for k, p in torch_params.items():
        _close(grads[k], p.grad, rtol=1e-4, scale=1e-4, floor=floor, what=k)
    torch_buffers = dict(reference.named_buffers())
    assert set(torch_buffers) <= set(new_buffers), set(torch_buffers) - set(new_buffers)
    for k, v in torch_buffers.items():
        _close(new_buffers[k], v, what=k)
