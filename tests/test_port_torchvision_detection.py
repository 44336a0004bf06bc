"""torchvision's detection models, and the compiled operators they call, ported by ``python -m jnn.port``.

The operators (``torch.ops.torchvision.nms``, ``roi_align``, ``roi_pool``) are jnn's own, in JAX
(:mod:`jnn.ops.ops.torchvision`); torchvision's compiled ``_C`` cannot load next to torch 2.13, so the torch side
gets references: ``nms`` and ``roi_pool`` written here with torch ops after torchvision's CPU kernels (greedy NMS
visiting boxes by decreasing score, equal scores by index), ``roi_align`` torchvision's own pure-PyTorch
``_roi_align`` from the fetched source (which torchvision itself falls back to without ``_C``; run uncompiled here).

The models are built from torchvision's unedited source on both sides (``_torchvision_source``) with small
configurations (3 classes, ~64 px images, fewer candidate boxes); their constant-initialised tensors are randomised,
torch's state_dict loads into the port with ``strict=True``, and eval-mode detections (boxes, scores, labels,
masks, keypoints) match torch's. Detection runs eagerly only: NMS and the per-class filtering keep a number of
boxes that depends on the values. RetinaNet's and FCOS's training losses, which depend on nothing random, match
too; the R-CNNs' losses sample proposals with ``torch.randperm``, which no port reproduces, and are not compared.
"""

from __future__ import annotations

import sys

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import load_twin
from hypothesis import given, settings

from jnn.ops.ops import torchvision as jnn_tv


# -- torch references for torchvision's compiled operators ------------------------------------------------------
def _nms_reference(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """torchvision's CPU NMS kernel, step for step with torch ops."""
    if dets.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    order = torch.sort(scores, descending=True, stable=True).indices
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(len(dets), dtype=torch.bool)
    keep = []
    for position, i in enumerate(order.tolist()):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[position + 1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        suppressed[rest[inter / (areas[i] + areas[rest] - inter) > iou_threshold]] = True
    return torch.tensor(keep, dtype=torch.int64)


def _roi_pool_reference(input: torch.Tensor, rois: torch.Tensor, spatial_scale: float, pooled_height: int,
                        pooled_width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's CPU RoIPool kernel, bin by bin."""
    _, channels, height, width = input.shape
    out = torch.zeros(len(rois), channels, pooled_height, pooled_width, dtype=input.dtype)
    where = torch.full(out.shape, -1, dtype=torch.int64)
    for k, roi in enumerate(rois.tolist()):
        x1, y1, x2, y2 = (int(np.sign(v) * np.floor(abs(v) + 0.5)) for v in np.float32(roi[1:]) * spatial_scale)
        roi_h, roi_w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bin_h, bin_w = np.float32(roi_h) / pooled_height, np.float32(roi_w) / pooled_width
        for ph in range(pooled_height):
            h0 = min(max(int(np.floor(ph * bin_h)) + y1, 0), height)
            h1 = min(max(int(np.ceil((ph + 1) * bin_h)) + y1, 0), height)
            for pw in range(pooled_width):
                w0 = min(max(int(np.floor(pw * bin_w)) + x1, 0), width)
                w1 = min(max(int(np.ceil((pw + 1) * bin_w)) + x1, 0), width)
                if h1 <= h0 or w1 <= w0:
                    continue
                patch = input[int(roi[0]), :, h0:h1, w0:w1].reshape(channels, -1)
                best = patch.argmax(dim=1)  # the first maximum, as the kernel's strict ">"
                out[k, :, ph, pw] = patch.gather(1, best[:, None])[:, 0]
                where[k, :, ph, pw] = (best // (w1 - w0) + h0) * width + best % (w1 - w0) + w0
    return out, where


if not hasattr(torch.ops.torchvision, "nms"):  # process-wide: torch.library cannot take an operator back
    torch.library.custom_op("torchvision::nms", mutates_args=())(_nms_reference)


@pytest.fixture(scope="module")
def tvt(tv_torch):
    """torchvision with torch, its operators given: ``torch.ops.torchvision.nms`` the reference above, ``roi_align``
    its own ``_roi_align`` run eagerly (torchvision compiles it with ``torch.compile`` on first use)."""
    extension, roi_align = sys.modules["torchvision.extension"], sys.modules["torchvision.ops.roi_align"]
    saved = extension._has_ops, roi_align._roi_align
    extension._has_ops = lambda: True
    roi_align._roi_align = getattr(roi_align._roi_align, "__wrapped__", roi_align._roi_align)
    yield tv_torch
    extension._has_ops, roi_align._roi_align = saved


def _boxes(draw, n: int) -> np.ndarray:
    """``n`` boxes on a coarse grid: equal, nested and touching boxes, and empty ones (x2 == x1)."""
    corners = draw(st.lists(st.tuples(*[st.integers(0, 6)] * 2, *[st.integers(0, 4)] * 2), min_size=n, max_size=n))
    return np.array([[x, y, x + w, y + h] for x, y, w, h in corners], np.float32).reshape(n, 4)


@st.composite
def _nms_cases(draw):
    n = draw(st.integers(0, 12))
    scores = draw(st.lists(st.sampled_from([0.1, 0.5, 0.5, 0.9]), min_size=n, max_size=n))
    return _boxes(draw, n), np.array(scores, np.float32), draw(st.sampled_from([0.0, 0.3, 0.5, 1.0]))


@settings(max_examples=150, deadline=None)
@given(_nms_cases())
def test_nms_matches_torchvisions_kernel(case):
    boxes, scores, threshold = case
    expected = _nms_reference(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).tolist()
    assert np.asarray(jnn_tv.nms(boxes, scores, threshold)).tolist() == expected


@settings(max_examples=60, deadline=None)
@given(_nms_cases(), st.data())
def test_batched_nms_matches_torchvisions(tvt, tv_jnn, case, data):
    """``batched_nms``: torchvision's own Python (its offset trick for few boxes, a loop per class for many) over
    jnn's ``nms`` and over the reference."""
    boxes, scores, threshold = case
    idxs = np.array(data.draw(st.lists(st.integers(0, 2), min_size=len(boxes), max_size=len(boxes))), np.int64)
    expected = tvt.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs),
                                   threshold)
    got = tv_jnn.ops.batched_nms(jnp.asarray(boxes), jnp.asarray(scores), jnp.asarray(idxs), threshold)
    assert np.asarray(got).tolist() == expected.tolist()


def test_nms_is_eager_only_and_checks_its_arguments():
    boxes, scores = np.zeros((3, 4), np.float32), np.ones(3, np.float32)
    with pytest.raises(TypeError, match=r"ops\.torchvision\.nms needs a concrete value"):
        jax.jit(lambda b, s: jnn_tv.nms(b, s, 0.5))(boxes, scores)
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        jnn_tv.nms(np.zeros((3, 5), np.float32), scores, 0.5)
    with pytest.raises(ValueError, match="one score per box"):
        jnn_tv.nms(boxes, np.ones(2, np.float32), 0.5)
    assert jnn_tv.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).shape == (0,)


def _rois(rng: np.random.Generator, n: int, batch: int, extent: float, low: float = 0.0) -> np.ndarray:
    """``n`` rois ``(batch index, x1, y1, x2, y2)`` with corners in ``[low, extent]``."""
    corners = np.sort(rng.uniform(low, extent, (n, 2, 2)), axis=1)  # x1 <= x2, y1 <= y2
    xyxy = np.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], axis=1)
    return np.concatenate([rng.integers(0, batch, (n, 1)), xyxy], axis=1).astype(np.float32)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio, spatial_scale, output_size", [(-1, 1.0, (3, 3)), (0, 0.5, (2, 4)),
                                                                         (2, 0.25, (7, 7)), (1, 0.5, (1, 2))])
def test_roi_align_matches_torchvisions_pure_pytorch(tvt, aligned, sampling_ratio, spatial_scale, output_size):
    """Eagerly, under ``jit``, and its gradient with respect to the features."""
    reference = sys.modules["torchvision.ops.roi_align"]._roi_align
    rng = np.random.default_rng(sampling_ratio + 2 + 10 * aligned)
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    # corners within the map, where torchvision's pure-PyTorch version and its C++ kernel agree (beyond one pixel
    # outside it, the kernel counts samples as zeros, the Python version clamps them: see the next test)
    rois = _rois(rng, 12, 2, 8.0 / spatial_scale)
    args = (spatial_scale, *output_size, sampling_ratio, aligned)
    xt = torch.from_numpy(x).requires_grad_()
    expected = reference(xt, torch.from_numpy(rois), *args)
    (expected ** 2).sum().backward()
    np.testing.assert_allclose(np.asarray(jnn_tv.roi_align(x, rois, *args)), expected.detach().numpy(), rtol=1e-5,
                               atol=1e-5)
    jitted = jax.jit(jnn_tv.roi_align, static_argnums=(2, 3, 4, 5, 6))(x, rois, *args)
    np.testing.assert_allclose(np.asarray(jitted), expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    grad = jax.grad(lambda v: (jnn_tv.roi_align(v, rois, *args) ** 2).sum())(x)
    np.testing.assert_allclose(np.asarray(grad), xt.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_roi_align_samples_beyond_the_map_are_zeros():
    """torchvision's C++ kernel (what ``torch.ops.torchvision.roi_align`` runs): a sample more than one pixel
    outside the map weighs nothing but still counts in the bin's mean; within one pixel it takes the border."""
    x = np.ones((1, 1, 4, 4), np.float32)
    rois = np.array([[0, 10, 10, 12, 12], [0, -3, 0, 1, 4], [0, -0.9, 0, 4, 4]], np.float32)
    out = np.asarray(jnn_tv.roi_align(x, rois, 1.0, 1, 1, 2, False))[:, 0, 0, 0]
    # roi 1: x samples at -2 (outside) and 0 (inside), so half the samples count; roi 2: all inside or within 1
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("spatial_scale, output_size", [(1.0, (2, 2)), (0.5, (3, 2)), (0.25, (7, 7))])
def test_roi_pool_matches_torchvisions_kernel(spatial_scale, output_size):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 10)).astype(np.float32)
    rois = _rois(rng, 10, 2, 12.0 / spatial_scale, low=-2.0 / spatial_scale)
    expected, where = _roi_pool_reference(torch.from_numpy(x), torch.from_numpy(rois), spatial_scale, *output_size)
    got, got_where = jax.jit(jnn_tv.roi_pool, static_argnums=(2, 3, 4))(x, rois, spatial_scale, *output_size)
    np.testing.assert_array_equal(np.asarray(got), expected.numpy())
    np.testing.assert_array_equal(np.asarray(got_where), where.numpy())


# -- the models -------------------------------------------------------------------------------------------------
_SMALL = dict(weights=None, weights_backbone=None, num_classes=3, min_size=64, max_size=96)
# fewer proposals; every detection kept (random weights give low scores), up to 20
_RCNN = dict(rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=50, box_score_thresh=0.0, box_detections_per_img=20)

# name -> the builder's keyword arguments (besides weights=None, weights_backbone=None)
MODELS = {
    "retinanet_resnet50_fpn": dict(_SMALL, topk_candidates=100),
    "fcos_resnet50_fpn": dict(_SMALL, topk_candidates=100),
    # its input size is fixed: images are resized to 320 x 320
    "ssdlite320_mobilenet_v3_large": dict(weights=None, weights_backbone=None, num_classes=3, topk_candidates=50),
    "fasterrcnn_mobilenet_v3_large_fpn": dict(_SMALL, **_RCNN),
    "maskrcnn_resnet50_fpn": dict(_SMALL, **_RCNN),
    "keypointrcnn_resnet50_fpn": dict(_SMALL, **_RCNN, num_classes=2, num_keypoints=5),
}


def _pair(name: str, tvt, tv_jnn):
    """The torch model (constants randomised) and its port holding torch's state_dict, both in eval mode."""
    torch.manual_seed(0)
    reference = getattr(tvt.models.detection, name)(**MODELS[name])
    model = getattr(tv_jnn.models.detection, name)(**MODELS[name])
    load_twin(model, reference)
    return reference, model


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((3, 80, 64)).astype(np.float32)]


def _assert_same_detections(got: dict, expected: dict, extent: float) -> None:
    """The same detections, in the same order but among equal scores (each torch detection is paired with the
    port's nearest one of the same label and score). Boxes and keypoints within 1e-4 of the image ``extent``,
    keypoint logits within 1e-4 of their largest value, mask probabilities (pasted at the boxes) within 1e-3: they
    come out of a deep random-weight network whose float32 rounding grows with depth (the classification tests allow
    the same for ResNet-50), boxes through exp() too. Scores match within 1e-5."""
    scores, boxes, labels = (np.asarray(got[k]) for k in ("scores", "boxes", "labels"))
    assert len(scores) == len(expected["scores"]) > 0
    order: list[int] = []
    for i, (score, box, label) in enumerate(zip(expected["scores"].numpy(), expected["boxes"].numpy(),
                                                expected["labels"].numpy(), strict=True)):
        near = [j for j in range(len(scores)) if labels[j] == label and abs(scores[j] - score) <= 1e-5 * (1 + score)
                and j not in order]
        assert near, f"detection {i} (label {label}, score {score}, box {box}) has no counterpart"
        order.append(min(near, key=lambda j: np.abs(boxes[j] - box).max()))
    np.testing.assert_array_equal(labels[order], expected["labels"].numpy())
    np.testing.assert_allclose(scores[order], expected["scores"].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(boxes[order], expected["boxes"].numpy(), rtol=1e-4, atol=1e-4 * extent)
    for key in sorted(set(expected) - {"boxes", "scores", "labels"}):
        values, want = np.asarray(got[key])[order], expected[key].numpy()
        # masks are pasted into the image at the (1e-4 * extent) boxes: a box edge that moves by a rounding error
        # moves the interpolated mask values at that edge by up to ~1e-3 of their largest
        largest = float(np.abs(want).max())
        atol = {"keypoints": 1e-4 * extent, "masks": 1e-3 * largest}.get(key, 1e-4 * largest)
        np.testing.assert_allclose(values, want, rtol=1e-4, atol=atol, err_msg=key)


def _assert_same_ssd_heads(reference, model, images: list[np.ndarray]) -> None:
    """SSDLite's class scores and box regressions, and its anchors, before the detections are chosen: with random
    weights its features repeat across the map, so many detections tie in score exactly, and which of two tied,
    overlapping boxes NMS keeps depends on the order torch's ``topk`` happens to give ties."""
    with torch.no_grad():
        batch, _ = reference.transform([torch.from_numpy(i) for i in images])
        features = list(reference.backbone(batch.tensors).values())
        expected = reference.head(features)
        anchors = reference.anchor_generator(batch, features)
    ours, _ = model.transform([jnp.asarray(i) for i in images])
    our_features = list(model.backbone(ours.tensors).values())
    got = model.head(our_features)
    for key in ("cls_logits", "bbox_regression"):
        want = expected[key].numpy()
        np.testing.assert_allclose(np.asarray(got[key]), want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
    for g, e in zip(model.anchor_generator(ours, our_features), anchors, strict=True):
        np.testing.assert_allclose(np.asarray(g), e.numpy(), rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("name", list(MODELS))
def test_ported_detector_matches_torch(name, tvt, tv_jnn):
    reference, model = _pair(name, tvt, tv_jnn)
    images = _images()
    with torch.no_grad():
        expected = reference([torch.from_numpy(i) for i in images])
    got = model([jnp.asarray(i) for i in images])
    assert len(got) == len(expected)
    if name.startswith("ssd"):
        assert all(sorted(g) == sorted(e) for g, e in zip(got, expected, strict=True))
        _assert_same_ssd_heads(reference, model, images)
        return
    for g, e, image in zip(got, expected, images, strict=True):
        assert sorted(g) == sorted(e)
        _assert_same_detections(g, e, max(image.shape[1:]))


@pytest.mark.parametrize("name", ["retinanet_resnet50_fpn", "fcos_resnet50_fpn"])
def test_ported_detector_training_losses_match_torch(name, tvt, tv_jnn):
    """Training mode: the loss dict for given targets (matching anchors or points to boxes, focal and box losses:
    nothing random), and the BatchNorm statistics the step leaves."""
    reference, model = _pair(name, tvt, tv_jnn)
    reference.train()
    model.train()
    images = _images()
    boxes = np.array([[4.0, 6.0, 40.0, 50.0], [30.0, 20.0, 60.0, 75.0]], np.float32)
    labels = np.array([1, 2], np.int64)
    expected = reference([torch.from_numpy(i) for i in images],
                         [{"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)}])
    got = model([jnp.asarray(i) for i in images], [{"boxes": jnp.asarray(boxes), "labels": jnp.asarray(labels)}])
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(float(got[key]), expected[key].item(), rtol=1e-4, err_msg=key)
    state = reference.state_dict()
    for key, value in model.state_dict().items():
        if "running_" in key:
            want = state[key].numpy()  # deep in a ResNet-50: within 1e-4 of the largest, as its outputs
            np.testing.assert_allclose(np.asarray(value), want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()),
                                       err_msg=key)
