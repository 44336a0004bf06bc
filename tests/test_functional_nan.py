"""NaN and infinity propagate through every jnn.functional function as through torch's.

Each function in ``jnn.functional.__all__`` is called as torch's is, on random inputs where one float input holds
a NaN, a +inf or a -inf (one element, at the start or in the middle); the outputs must match torch's, NaN for NaN
and inf for inf. Functions of random draws are compared where torch makes them deterministic (``training=False``,
``p=0``, given samples); the test at the end checks that no function was left out.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import jnn.functional as F

jax.config.update("jax_enable_x64", False)


class Lib:
    """One library's functional module and array constructors, so one call spec serves jnn and torch."""

    def __init__(self, is_torch: bool):
        self.is_torch, self.F = is_torch, TF if is_torch else F

    def __call__(self, a):  # an exact (non-float or float) constant
        return torch.as_tensor(np.asarray(a)) if self.is_torch else jnp.asarray(np.asarray(a))

    def long(self, a):
        return torch.as_tensor(np.asarray(a, np.int64)) if self.is_torch else jnp.asarray(np.asarray(a, np.int32))


# name -> (shapes of the float inputs, call(lib, *float inputs)); extra exact arguments are built inside the call.
I = np.array  # noqa: E741
X = (2, 3, 5, 5)
CASES = {
    "relu": ([(4, 6)], lambda L, x: L.F.relu(x)),
    "sigmoid": ([(4, 6)], lambda L, x: L.F.sigmoid(x)),
    "tanh": ([(4, 6)], lambda L, x: L.F.tanh(x)),
    "softmax": ([(4, 6)], lambda L, x: L.F.softmax(x, 1)),
    "log_softmax": ([(4, 6)], lambda L, x: L.F.log_softmax(x, 1)),
    "softmin": ([(4, 6)], lambda L, x: L.F.softmin(x, 1)),
    "threshold": ([(4, 6)], lambda L, x: L.F.threshold(x, 0.5, 9.0)),
    "relu6": ([(4, 6)], lambda L, x: L.F.relu6(x)),
    "hardtanh": ([(4, 6)], lambda L, x: L.F.hardtanh(x, -0.5, 0.5)),
    "leaky_relu": ([(4, 6)], lambda L, x: L.F.leaky_relu(x, 0.1)),
    "prelu": ([(4, 6), (6,)], lambda L, x, w: L.F.prelu(x, w)),
    "rrelu": ([(4, 6)], lambda L, x: L.F.rrelu(x, training=False)),
    "elu": ([(4, 6)], lambda L, x: L.F.elu(x)),
    "celu": ([(4, 6)], lambda L, x: L.F.celu(x, 0.7)),
    "selu": ([(4, 6)], lambda L, x: L.F.selu(x)),
    "relu_": ([(4, 6)], lambda L, x: L.F.relu_(x)),
    "elu_": ([(4, 6)], lambda L, x: L.F.elu_(x, 0.5)),
    "celu_": ([(4, 6)], lambda L, x: L.F.celu_(x, 0.7)),
    "selu_": ([(4, 6)], lambda L, x: L.F.selu_(x)),
    "leaky_relu_": ([(4, 6)], lambda L, x: L.F.leaky_relu_(x, 0.1)),
    "hardtanh_": ([(4, 6)], lambda L, x: L.F.hardtanh_(x, -0.5, 0.5)),
    "rrelu_": ([(4, 6)], lambda L, x: L.F.rrelu_(x, training=False)),
    "threshold_": ([(4, 6)], lambda L, x: L.F.threshold_(x, 0.5, 9.0)),
    "gelu": ([(4, 6)], lambda L, x: L.F.gelu(x)),
    "silu": ([(4, 6)], lambda L, x: L.F.silu(x)),
    "mish": ([(4, 6)], lambda L, x: L.F.mish(x)),
    "logsigmoid": ([(4, 6)], lambda L, x: L.F.logsigmoid(x)),
    "hardsigmoid": ([(4, 6)], lambda L, x: L.F.hardsigmoid(x)),
    "hardswish": ([(4, 6)], lambda L, x: L.F.hardswish(x)),
    "hardshrink": ([(4, 6)], lambda L, x: L.F.hardshrink(x, 0.3)),
    "softshrink": ([(4, 6)], lambda L, x: L.F.softshrink(x, 0.3)),
    "tanhshrink": ([(4, 6)], lambda L, x: L.F.tanhshrink(x)),
    "softplus": ([(4, 6)], lambda L, x: L.F.softplus(x, 2.0, 5.0)),
    "softsign": ([(4, 6)], lambda L, x: L.F.softsign(x)),
    "glu": ([(4, 6)], lambda L, x: L.F.glu(x, 1)),
    "scaled_dot_product_attention": ([(2, 3, 4), (2, 5, 4), (2, 5, 4)],
                                     lambda L, q, k, v: L.F.scaled_dot_product_attention(q, k, v)),
    "multi_head_attention_forward": (
        [(3, 2, 4), (5, 2, 4), (5, 2, 4), (12, 4), (12,), (4, 4), (4,)],
        lambda L, q, k, v, w, b, ow, ob: L.F.multi_head_attention_forward(
            q, k, v, 4, 2, w, b, None, None, False, 0.0, ow, ob, training=False)[0]),
    "conv1d": ([(2, 3, 7), (4, 3, 3), (4,)], lambda L, x, w, b: L.F.conv1d(x, w, b, padding=1)),
    "conv2d": ([X, (4, 3, 3, 3), (4,)], lambda L, x, w, b: L.F.conv2d(x, w, b, stride=2)),
    "conv3d": ([(1, 2, 4, 4, 4), (3, 2, 2, 2, 2), (3,)], lambda L, x, w, b: L.F.conv3d(x, w, b)),
    "conv_transpose1d": ([(2, 3, 5), (3, 2, 3), (2,)], lambda L, x, w, b: L.F.conv_transpose1d(x, w, b, stride=2)),
    "conv_transpose2d": ([(1, 3, 4, 4), (3, 2, 3, 3), (2,)],
                         lambda L, x, w, b: L.F.conv_transpose2d(x, w, b, stride=2)),
    "conv_transpose3d": ([(1, 2, 3, 3, 3), (2, 2, 2, 2, 2), (2,)],
                         lambda L, x, w, b: L.F.conv_transpose3d(x, w, b)),
    "unfold": ([X], lambda L, x: L.F.unfold(x, 2, stride=2)),
    "fold": ([(2, 12, 4)], lambda L, x: L.F.fold(x, (3, 3), 2)),
    "cosine_similarity": ([(4, 6), (4, 6)], lambda L, a, b: L.F.cosine_similarity(a, b)),
    "pairwise_distance": ([(4, 6), (4, 6)], lambda L, a, b: L.F.pairwise_distance(a, b)),
    "pdist": ([(4, 6)], lambda L, x: L.F.pdist(x)),
    "dropout": ([(4, 6)], lambda L, x: L.F.dropout(x, 0.5, training=False)),
    "dropout1d": ([(4, 6)], lambda L, x: L.F.dropout1d(x, 0.0)),
    "dropout2d": ([X], lambda L, x: L.F.dropout2d(x, 0.0)),
    "dropout3d": ([(2, 3, 2, 2, 2)], lambda L, x: L.F.dropout3d(x, 0.0)),
    "alpha_dropout": ([(4, 6)], lambda L, x: L.F.alpha_dropout(x, 0.5, training=False)),
    "feature_alpha_dropout": ([(4, 6)], lambda L, x: L.F.feature_alpha_dropout(x, 0.5, training=False)),
    "linear": ([(4, 6), (3, 6), (3,)], lambda L, x, w, b: L.F.linear(x, w, b)),
    "bilinear": ([(4, 5), (4, 6), (3, 5, 6), (3,)], lambda L, a, b, w, c: L.F.bilinear(a, b, w, c)),
    "grouped_mm": ([(8, 4), (2, 4, 4)], lambda L, a, b: L.F.grouped_mm(a, b, offs=L(np.array([3, 8], np.int32)))),
    "nll_loss": ([(4, 6)], lambda L, x: L.F.nll_loss(x, L.long([0, 5, 2, 1]))),
    "cross_entropy": ([(4, 6)], lambda L, x: L.F.cross_entropy(x, L.long([0, 5, 2, 1]), label_smoothing=0.1)),
    "linear_cross_entropy": ([(4, 5), (6, 5)], lambda L, x, w: L.F.linear_cross_entropy(
        x, w, L.long([0, 5, 2, 1]), label_smoothing=0.1)),
    "mse_loss": ([(4, 6), (4, 6)], lambda L, x, y: L.F.mse_loss(x, y)),
    "l1_loss": ([(4, 6), (4, 6)], lambda L, x, y: L.F.l1_loss(x, y, reduction="none")),
    "binary_cross_entropy": ([(4, 6)], lambda L, x: L.F.binary_cross_entropy(
        L.F.sigmoid(x), L(np.linspace(0, 1, 24, dtype=np.float32).reshape(4, 6)), reduction="none")),
    "binary_cross_entropy_with_logits": ([(4, 6), (4, 6)], lambda L, x, y: L.F.binary_cross_entropy_with_logits(
        x, L.F.sigmoid(y), reduction="none")),
    "kl_div": ([(4, 6), (4, 6)], lambda L, x, y: L.F.kl_div(x, L.F.softmax(y, 1), reduction="none")),
    "huber_loss": ([(4, 6), (4, 6)], lambda L, x, y: L.F.huber_loss(x, y, reduction="none", delta=0.5)),
    "smooth_l1_loss": ([(4, 6), (4, 6)], lambda L, x, y: L.F.smooth_l1_loss(x, y, reduction="none", beta=0.5)),
    "soft_margin_loss": ([(4, 6)], lambda L, x: L.F.soft_margin_loss(
        x, L(np.sign(np.arange(24) % 2 - 0.5).astype(np.float32).reshape(4, 6)), reduction="none")),
    "multilabel_soft_margin_loss": ([(4, 6)], lambda L, x: L.F.multilabel_soft_margin_loss(
        x, L((np.arange(24) % 3 == 0).astype(np.float32).reshape(4, 6)), reduction="none")),
    "multilabel_margin_loss": ([(4, 6)], lambda L, x: L.F.multilabel_margin_loss(
        x, L.long(np.array([[1, 3, -1, 0, 0, 0]] * 4)), reduction="none")),
    "multi_margin_loss": ([(4, 6)], lambda L, x: L.F.multi_margin_loss(x, L.long([0, 5, 2, 1]), reduction="none")),
    "cosine_embedding_loss": ([(4, 6), (4, 6)], lambda L, a, b: L.F.cosine_embedding_loss(
        a, b, L([1.0, -1.0, 1.0, -1.0]), reduction="none")),
    "margin_ranking_loss": ([(6,), (6,)], lambda L, a, b: L.F.margin_ranking_loss(
        a, b, L(np.array([1, -1, 1, -1, 1, -1], np.float32)), reduction="none")),
    "hinge_embedding_loss": ([(4, 6)], lambda L, x: L.F.hinge_embedding_loss(
        x, L(np.sign(np.arange(24) % 2 - 0.5).astype(np.float32).reshape(4, 6)), reduction="none")),
    "triplet_margin_loss": ([(4, 6), (4, 6), (4, 6)],
                            lambda L, a, p, n: L.F.triplet_margin_loss(a, p, n, swap=True, reduction="none")),
    "triplet_margin_with_distance_loss": ([(4, 6), (4, 6), (4, 6)], lambda L, a, p, n:
                                          L.F.triplet_margin_with_distance_loss(a, p, n, reduction="none")),
    "poisson_nll_loss": ([(4, 6), (4, 6)], lambda L, x, y: L.F.poisson_nll_loss(x, y.abs() if L.is_torch else
                                                                                jnp.abs(y), reduction="none")),
    "gaussian_nll_loss": ([(4, 6), (4, 6), (4, 6)], lambda L, x, y, v: L.F.gaussian_nll_loss(
        x, y, v.abs() if L.is_torch else jnp.abs(v), reduction="none")),
    "ctc_loss": ([(6, 2, 5)], lambda L, x: L.F.ctc_loss(L.F.log_softmax(x, 2), L.long([[1, 2, 2], [3, 4, 1]]),
                                                        L.long([6, 5]), L.long([3, 2]), reduction="none")),
    "batch_norm": ([X, (3,), (3,), (3,), (3,)], lambda L, x, m, v, w, b: L.F.batch_norm(
        x, m, v.abs() if L.is_torch else jnp.abs(v), w, b, training=False)),
    "batch_norm_with_stats": ([X, (3,), (3,)], lambda L, x, w, b: L.F.batch_norm(x, None, None, w, b, True)
                              if L.is_torch else F.batch_norm_with_stats(x, None, None, w, b, True)[0]),
    "instance_norm": ([X, (3,), (3,)], lambda L, x, w, b: L.F.instance_norm(x, weight=w, bias=b)),
    "instance_norm_with_stats": ([X], lambda L, x: L.F.instance_norm(x) if L.is_torch
                                 else F.instance_norm_with_stats(x)[0]),
    "layer_norm": ([X, (5, 5), (5, 5)], lambda L, x, w, b: L.F.layer_norm(x, (5, 5), w, b)),
    "group_norm": ([(2, 4, 5), (4,), (4,)], lambda L, x, w, b: L.F.group_norm(x, 2, w, b)),
    "rms_norm": ([X, (5,)], lambda L, x, w: L.F.rms_norm(x, (5,), w)),
    "local_response_norm": ([X], lambda L, x: L.F.local_response_norm(x, 2)),
    "normalize": ([(4, 6)], lambda L, x: L.F.normalize(x)),
    "pad": ([X], lambda L, x: L.F.pad(x, (1, 2, 2, 1), mode="reflect")),
    "max_pool1d": ([(2, 3, 8)], lambda L, x: L.F.max_pool1d(x, 3, 2, 1)),
    "max_pool2d": ([X], lambda L, x: L.F.max_pool2d(x, 2, 2, ceil_mode=True)),
    "max_pool3d": ([(1, 2, 4, 4, 4)], lambda L, x: L.F.max_pool3d(x, 2)),
    "max_unpool1d": ([(2, 3, 4)], lambda L, x: L.F.max_unpool1d(x, L.long(np.tile([0, 3, 4, 7], (2, 3, 1))), 2)),
    "max_unpool2d": ([(1, 2, 2, 2)], lambda L, x: L.F.max_unpool2d(
        x, L.long(np.tile([[0, 3], [8, 15]], (1, 2, 1, 1))), 2)),
    "max_unpool3d": ([(1, 1, 2, 2, 2)], lambda L, x: L.F.max_unpool3d(
        x, L.long(np.arange(8).reshape(1, 1, 2, 2, 2) * 9), 2)),
    "avg_pool1d": ([(2, 3, 8)], lambda L, x: L.F.avg_pool1d(x, 3, 2, 1)),
    "avg_pool2d": ([X], lambda L, x: L.F.avg_pool2d(x, 2, 2, ceil_mode=True)),
    "avg_pool3d": ([(1, 2, 4, 4, 4)], lambda L, x: L.F.avg_pool3d(x, 2)),
    "adaptive_avg_pool1d": ([(2, 3, 7)], lambda L, x: L.F.adaptive_avg_pool1d(x, 3)),
    "adaptive_avg_pool2d": ([X], lambda L, x: L.F.adaptive_avg_pool2d(x, (2, 3))),
    "adaptive_avg_pool3d": ([(1, 2, 4, 5, 3)], lambda L, x: L.F.adaptive_avg_pool3d(x, 2)),
    "adaptive_max_pool1d": ([(2, 3, 7)], lambda L, x: L.F.adaptive_max_pool1d(x, 3)),
    "adaptive_max_pool2d": ([X], lambda L, x: L.F.adaptive_max_pool2d(x, (2, 3))),
    "adaptive_max_pool3d": ([(1, 2, 4, 5, 3)], lambda L, x: L.F.adaptive_max_pool3d(x, 2)),
    "lp_pool1d": ([(2, 3, 8)], lambda L, x: L.F.lp_pool1d(x, 2.0, 2)),
    "lp_pool2d": ([X], lambda L, x: L.F.lp_pool2d(x, 3.0, 2)),
    "lp_pool3d": ([(1, 2, 4, 4, 4)], lambda L, x: L.F.lp_pool3d(x, 2.0, 2)),
    "fractional_max_pool2d": ([X], lambda L, x: L.F.fractional_max_pool2d(
        x, 2, output_size=3, _random_samples=L(np.full((2, 3, 2), 0.4, np.float32)))),
    "fractional_max_pool3d": ([(1, 2, 5, 5, 5)], lambda L, x: L.F.fractional_max_pool3d(
        x, 2, output_size=3, _random_samples=L(np.full((1, 2, 3), 0.4, np.float32)))),
    "embedding": ([(5, 4)], lambda L, w: L.F.embedding(L.long([[0, 4], [2, 0]]), w)),
    "embedding_bag": ([(5, 4)], lambda L, w: L.F.embedding_bag(L.long([0, 4, 2, 0, 1]), w, L.long([0, 2]),
                                                               mode="max")),
    "one_hot": None,  # integer in, integer out
    "embedding_renorm": None,  # jnn's functional form of torch's in-place embedding_renorm_: checked below
    "interpolate": ([X], lambda L, x: L.F.interpolate(x, scale_factor=1.6, mode="bicubic", align_corners=False)),
    "upsample": ([X], lambda L, x: L.F.interpolate(x, size=(7, 4), mode="bilinear") if L.is_torch
                 else F.upsample(x, size=(7, 4), mode="bilinear")),
    "upsample_nearest": ([X], lambda L, x: L.F.interpolate(x, scale_factor=2, mode="nearest") if L.is_torch
                         else F.upsample_nearest(x, scale_factor=2)),
    "upsample_bilinear": ([X], lambda L, x: L.F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
                          if L.is_torch else F.upsample_bilinear(x, scale_factor=2)),
    "pixel_shuffle": ([(1, 8, 2, 3)], lambda L, x: L.F.pixel_shuffle(x, 2)),
    "pixel_unshuffle": ([(1, 2, 4, 6)], lambda L, x: L.F.pixel_unshuffle(x, 2)),
    "channel_shuffle": ([(1, 6, 2, 2)], lambda L, x: L.F.channel_shuffle(x, 2) if L.is_torch
                        else F.channel_shuffle(x, 2)),
    "affine_grid": ([(2, 2, 3)], lambda L, t: L.F.affine_grid(t, (2, 1, 3, 4), align_corners=False)),
    "grid_sample": ([(1, 2, 4, 5), (1, 3, 3, 2)], lambda L, x, g: L.F.grid_sample(
        x, (g.tanh() if L.is_torch else jnp.tanh(g)) * 1.2, align_corners=False)),
    "gumbel_softmax": None,  # a random draw in torch, with no way to give it the noise
}
EXTRA_MODES = {  # further calls of functions whose modes take different paths
    "grid_sample nearest border": ([(1, 2, 4, 5), (1, 3, 3, 2)], lambda L, x, g: L.F.grid_sample(
        x, g, mode="nearest", padding_mode="border", align_corners=True)),
    "grid_sample bicubic reflection": ([(1, 2, 4, 5), (1, 3, 3, 2)], lambda L, x, g: L.F.grid_sample(
        x, (g.tanh() if L.is_torch else jnp.tanh(g)), mode="bicubic", padding_mode="reflection")),
    "interpolate nearest-exact": ([X], lambda L, x: L.F.interpolate(x, size=(3, 7), mode="nearest-exact")),
    "interpolate area": ([X], lambda L, x: L.F.interpolate(x, size=(2, 3), mode="area")),
    "grouped_mm 2d@2d": ([(4, 8), (8, 4)], lambda L, a, b: L.F.grouped_mm(a, b, offs=L(np.array([4, 8], np.int32)))),
    "grouped_mm 3d@2d": ([(2, 4, 4), (4, 8)],
                         lambda L, a, b: L.F.grouped_mm(a, b, offs=L(np.array([4, 8], np.int32)))),
    "interpolate linear": ([(2, 3, 6)], lambda L, x: L.F.interpolate(x, size=9, mode="linear")),
    "interpolate trilinear": ([(1, 2, 3, 3, 3)], lambda L, x: L.F.interpolate(x, size=5, mode="trilinear")),
    "pad replicate": ([X], lambda L, x: L.F.pad(x, (1, 2, 2, 1), mode="replicate")),
    "pad circular": ([X], lambda L, x: L.F.pad(x, (1, 2, 2, 1), mode="circular")),
    "pad constant": ([X], lambda L, x: L.F.pad(x, (1, 2), value=float("nan"))),
    "normalize p=1": ([(4, 6)], lambda L, x: L.F.normalize(x, p=1.0, dim=0)),
    "normalize p=inf": ([(4, 6)], lambda L, x: L.F.normalize(x, p=float("inf"))),
    "cross_entropy probabilities": ([(4, 6), (4, 6)], lambda L, x, y: L.F.cross_entropy(
        x, L.F.softmax(y, 1), reduction="none")),
    "nll_loss ignore_index": ([(4, 6)], lambda L, x: L.F.nll_loss(x, L.long([0, 5, -100, 1]), reduction="sum")),
    "embedding_bag sum": ([(5, 4)], lambda L, w: L.F.embedding_bag(L.long([0, 4, 2, 0, 1]), w, L.long([0, 2]),
                                                                   mode="sum")),
    "embedding max_norm": ([(5, 4)], lambda L, w: L.F.embedding(L.long([[0, 4], [2, 0]]), w.clone() if L.is_torch
                                                                else w, max_norm=1.0)),
    "avg_pool2d padded": ([X], lambda L, x: L.F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
    "adaptive_max_pool2d uneven": ([(1, 2, 7, 5)], lambda L, x: L.F.adaptive_max_pool2d(x, (3, 4))),
    "max_pool2d dilated": ([X], lambda L, x: L.F.max_pool2d(x, 2, 1, dilation=2)),
    "hardtanh wide": ([(4, 6)], lambda L, x: L.F.hardtanh(x, -2.0, 2.0)),
    "softplus beta": ([(4, 6)], lambda L, x: L.F.softplus(x, 0.5, 1.0)),
    "gelu tanh": ([(4, 6)], lambda L, x: L.F.gelu(x, approximate="tanh")),
    "cosine_similarity dim0": ([(4, 6), (4, 6)], lambda L, a, b: L.F.cosine_similarity(a, b, dim=0)),
    "pairwise_distance p=inf": ([(4, 6), (4, 6)], lambda L, a, b: L.F.pairwise_distance(a, b, p=float("inf"))),
    "pairwise_distance p=1": ([(4, 6), (4, 6)], lambda L, a, b: L.F.pairwise_distance(a, b, p=1.0)),
    "lp_pool2d p=1": ([X], lambda L, x: L.F.lp_pool2d(x, 1.0, 2)),
}
SPECIALS = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}
ALL = {**{k: v for k, v in CASES.items() if v is not None}, **EXTRA_MODES}
PARAMS = [(name, i, special, where) for name, (shapes, _) in ALL.items() for i in range(len(shapes))
          for special in SPECIALS for where in ("first", "middle")]


def inputs(shapes, which, special, where, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    flat = arrays[which].reshape(-1)
    flat[0 if where == "first" else flat.size // 2] = SPECIALS[special]
    return arrays


def run(name, arrays):
    call = ALL[name][1]
    with torch.no_grad():
        theirs = call(Lib(True), *[torch.from_numpy(a.copy()) for a in arrays])
    ours = call(Lib(False), *[jnp.asarray(a) for a in arrays])
    return np.asarray(ours), theirs.detach().numpy()


# Where the backends themselves differ, documented in jnn.functional's module docstring:
# - a NaN/inf in a convolution's *weight* poisons the outputs it touches; whether the border outputs that also
#   touch zero padding (or the zeros a transposed convolution inserts) become NaN depends on the backend (oneDNN
#   skips them, XLA multiplies 0 * NaN), so only positions where both are finite are compared;
# - grouped_mm of 2-d @ 3-d is jax.lax.ragged_dot, a masked dense product on XLA:CPU: a NaN/inf in one group's
#   weight also reaches the other groups' rows (0 * NaN); the 2-d @ 2-d and 3-d @ 2-d splits select, as torch;
# - torch's vectorised gelu gives NaN for +inf (its one-element path, and the exact formula, give inf).
BACKEND_DEPENDENT = {("conv1d", 1), ("conv_transpose1d", 1), ("conv_transpose3d", 1), ("grouped_mm", 1)}


@pytest.mark.parametrize(("name", "which", "special", "where"), PARAMS,
                         ids=[f"{n}-in{i}-{s}-{w}" for n, i, s, w in PARAMS])
def test_special_values_propagate_like_torch(name, which, special, where):
    arrays = inputs(ALL[name][0], which, special, where)
    try:
        ours, theirs = run(name, arrays)
    except RuntimeError as e:  # torch refuses the input (binary_cross_entropy of NaN): jnn must refuse it too
        with pytest.raises(ValueError, match=str(e).split(":")[-1].strip()[:30]):
            ALL[name][1](Lib(False), *[jnp.asarray(a) for a in arrays])
        return
    assert ours.shape == theirs.shape
    if (name, which) in BACKEND_DEPENDENT:
        assert not np.isfinite(ours).all() and not np.isfinite(theirs).all()
        both = np.isfinite(ours) & np.isfinite(theirs)
        np.testing.assert_allclose(ours[both], theirs[both], rtol=2e-4, atol=2e-4, err_msg=name)
        return
    if name.startswith("gelu") and special == "inf":
        assert np.isposinf(ours.reshape(-1)[0 if where == "first" else ours.size // 2])
        assert TF.gelu(torch.tensor([np.inf])).item() == np.inf  # torch's scalar path agrees
        theirs = np.where(np.isnan(theirs) & np.isposinf(ours), np.inf, theirs)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=f"{name}: NaN positions differ")
    np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(theirs), err_msg=f"{name}: +inf positions")
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs), err_msg=f"{name}: -inf positions")
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=2e-4, atol=2e-4, err_msg=name)


def test_issue_examples():
    assert np.isnan(np.asarray(F.normalize(jnp.array([[np.nan, 1.0, 2.0]])))).all()  # torch: all NaN
    assert np.isnan(np.asarray(F.threshold(jnp.array([np.nan]), 0.5, 9.0))).all()  # torch: [nan]


def test_embedding_renorm_like_torch_embedding_renorm_():
    w = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    w[2, 1] = np.nan
    w[4, 0] = np.inf
    idx = np.array([0, 2, 4])
    theirs = torch.from_numpy(w.copy())
    with torch.no_grad():
        torch.embedding_renorm_(theirs, torch.from_numpy(idx), 1.0, 2.0)
    ours = np.asarray(F.embedding_renorm(jnp.asarray(w), jnp.asarray(idx), 1.0))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs.numpy()))
    finite = np.isfinite(theirs.numpy())
    np.testing.assert_allclose(ours[finite], theirs.numpy()[finite], rtol=1e-5)


def test_every_functional_is_covered():
    assert set(CASES) == set(F.__all__)
