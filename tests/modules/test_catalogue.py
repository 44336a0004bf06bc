"""Every layer of the catalogue runs the three ways of DESIGN.md and they agree: eager, module as a pytree under
jax.jit, and jnn.split's apply under jax.jit — in training mode (buffers updated, randomness from one key) and in
eval mode. Parity with torch is tested per family; this test is about the three paths, over the whole catalogue."""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jnn
import jnn as nn
import jnn.functional as F

_rng = np.random.default_rng(0)


def r(*shape):
    return jnp.asarray(_rng.standard_normal(shape), jnp.float32)


def ints(high, *shape):
    return jnp.asarray(_rng.integers(0, high, shape), jnp.int32)


def pm1(*shape):
    return jnp.sign(r(*shape)) + (r(*shape) == 0)


def pooled(fn, x):
    return fn(x, 2, return_indices=True)


ELEMENTWISE = ["ReLU", "Sigmoid", "Tanh", "Hardtanh", "ReLU6", "Hardsigmoid", "SiLU", "Mish", "Hardswish", "ELU",
               "CELU", "SELU", "GELU", "Hardshrink", "LeakyReLU", "LogSigmoid", "Softplus", "Softshrink", "PReLU",
               "Softsign", "Tanhshrink", "RReLU", "Identity", "Flatten"]

# name -> (constructor, inputs)
CASES = {name: (lambda name=name: getattr(nn, name)(), lambda: (r(2, 3, 4),)) for name in ELEMENTWISE}
CASES.update({
    "Softmax": (lambda: nn.Softmax(dim=1), lambda: (r(2, 3, 4),)),
    "Softmin": (lambda: nn.Softmin(dim=1), lambda: (r(2, 3, 4),)),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=1), lambda: (r(2, 3, 4),)),
    "Softmax2d": (lambda: nn.Softmax2d(), lambda: (r(2, 3, 4, 4),)),
    "GLU": (lambda: nn.GLU(), lambda: (r(2, 4),)),
    "Threshold": (lambda: nn.Threshold(0.1, 20.0), lambda: (r(2, 3),)),
    "MultiheadAttention": (lambda: nn.MultiheadAttention(8, 2, dropout=0.5),
                           lambda: (r(5, 2, 8), r(6, 2, 8), r(6, 2, 8))),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3), lambda: (r(4, 3),)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3, momentum=None), lambda: (r(2, 3, 4, 4),)),
    "BatchNorm3d": (lambda: nn.BatchNorm3d(3), lambda: (r(2, 3, 2, 2, 2),)),
    "LazyBatchNorm1d": (lambda: nn.LazyBatchNorm1d(), lambda: (r(4, 3),)),
    "LazyBatchNorm2d": (lambda: nn.LazyBatchNorm2d(), lambda: (r(2, 3, 4, 4),)),
    "LazyBatchNorm3d": (lambda: nn.LazyBatchNorm3d(), lambda: (r(2, 3, 2, 2, 2),)),
    "SyncBatchNorm": (lambda: nn.SyncBatchNorm(3), lambda: (r(2, 3, 4, 4),)),
    "ChannelShuffle": (lambda: nn.ChannelShuffle(2), lambda: (r(1, 4, 2, 2),)),
    "Sequential": (lambda: nn.Sequential(nn.Linear(3, 4), nn.Dropout(), nn.BatchNorm1d(4)), lambda: (r(5, 3),)),
    "Conv1d": (lambda: nn.Conv1d(2, 3, 3, padding_mode="reflect", padding=1), lambda: (r(2, 2, 8),)),
    "Conv2d": (lambda: nn.Conv2d(2, 4, 3, groups=2, dilation=2), lambda: (r(2, 2, 7, 7),)),
    "Conv3d": (lambda: nn.Conv3d(2, 3, 3, padding="same"), lambda: (r(1, 2, 4, 4, 4),)),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(2, 3, 3, stride=2), lambda: (r(2, 2, 5),)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1), lambda: (r(2, 2, 4, 4),)),
    "ConvTranspose3d": (lambda: nn.ConvTranspose3d(2, 3, 2), lambda: (r(1, 2, 3, 3, 3),)),
    "LazyConv1d": (lambda: nn.LazyConv1d(3, 3), lambda: (r(2, 2, 8),)),
    "LazyConv2d": (lambda: nn.LazyConv2d(3, 3), lambda: (r(2, 2, 6, 6),)),
    "LazyConv3d": (lambda: nn.LazyConv3d(3, 3), lambda: (r(1, 2, 5, 5, 5),)),
    "LazyConvTranspose1d": (lambda: nn.LazyConvTranspose1d(3, 3), lambda: (r(2, 2, 5),)),
    "LazyConvTranspose2d": (lambda: nn.LazyConvTranspose2d(3, 3), lambda: (r(2, 2, 4, 4),)),
    "LazyConvTranspose3d": (lambda: nn.LazyConvTranspose3d(3, 2), lambda: (r(1, 2, 3, 3, 3),)),
    "CosineSimilarity": (lambda: nn.CosineSimilarity(), lambda: (r(3, 4), r(3, 4))),
    "PairwiseDistance": (lambda: nn.PairwiseDistance(), lambda: (r(3, 4), r(3, 4))),
    "Dropout": (lambda: nn.Dropout(0.5), lambda: (r(4, 8),)),
    "Dropout1d": (lambda: nn.Dropout1d(0.5), lambda: (r(2, 3, 8),)),
    "Dropout2d": (lambda: nn.Dropout2d(0.5), lambda: (r(2, 3, 4, 4),)),
    "Dropout3d": (lambda: nn.Dropout3d(0.5), lambda: (r(2, 3, 2, 2, 2),)),
    "AlphaDropout": (lambda: nn.AlphaDropout(0.5), lambda: (r(4, 8),)),
    "FeatureAlphaDropout": (lambda: nn.FeatureAlphaDropout(0.5), lambda: (r(2, 3, 4, 4),)),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 2)), lambda: (r(3, 4),)),
    "Fold": (lambda: nn.Fold(output_size=(4, 4), kernel_size=2), lambda: (r(1, 12, 9),)),
    "Unfold": (lambda: nn.Unfold(kernel_size=2), lambda: (r(1, 3, 4, 4),)),
    "InstanceNorm1d": (lambda: nn.InstanceNorm1d(3), lambda: (r(2, 3, 5),)),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True), lambda: (r(2, 3, 4, 4),)),
    "InstanceNorm3d": (lambda: nn.InstanceNorm3d(3), lambda: (r(2, 3, 2, 2, 2),)),
    "LazyInstanceNorm1d": (lambda: nn.LazyInstanceNorm1d(affine=True), lambda: (r(2, 3, 5),)),
    "LazyInstanceNorm2d": (lambda: nn.LazyInstanceNorm2d(track_running_stats=True), lambda: (r(2, 3, 4, 4),)),
    "LazyInstanceNorm3d": (lambda: nn.LazyInstanceNorm3d(), lambda: (r(2, 3, 2, 2, 2),)),
    "Linear": (lambda: nn.Linear(3, 4), lambda: (r(2, 3),)),
    "Bilinear": (lambda: nn.Bilinear(3, 2, 4), lambda: (r(5, 3), r(5, 2))),
    "LazyLinear": (lambda: nn.LazyLinear(4), lambda: (r(2, 3),)),
    "L1Loss": (lambda: nn.L1Loss(), lambda: (r(3, 4), r(3, 4))),
    "MSELoss": (lambda: nn.MSELoss(), lambda: (r(3, 4), r(3, 4))),
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(weight=jnp.arange(1.0, 6.0), label_smoothing=0.1),
                         lambda: (r(4, 5), ints(5, 4))),
    "NLLLoss": (lambda: nn.NLLLoss(), lambda: (jax.nn.log_softmax(r(4, 5)), ints(5, 4))),
    "BCELoss": (lambda: nn.BCELoss(), lambda: (jax.nn.sigmoid(r(3, 4)), jax.nn.sigmoid(r(3, 4)))),
    "BCEWithLogitsLoss": (lambda: nn.BCEWithLogitsLoss(pos_weight=jnp.full(4, 2.0)),
                          lambda: (r(3, 4), jax.nn.sigmoid(r(3, 4)))),
    "KLDivLoss": (lambda: nn.KLDivLoss(reduction="batchmean"),
                  lambda: (jax.nn.log_softmax(r(3, 4)), jax.nn.softmax(r(3, 4)))),
    "HuberLoss": (lambda: nn.HuberLoss(delta=0.5), lambda: (r(3, 4), r(3, 4))),
    "SmoothL1Loss": (lambda: nn.SmoothL1Loss(), lambda: (r(3, 4), r(3, 4))),
    "SoftMarginLoss": (lambda: nn.SoftMarginLoss(), lambda: (r(3, 4), pm1(3, 4))),
    "MultiLabelSoftMarginLoss": (lambda: nn.MultiLabelSoftMarginLoss(), lambda: (r(3, 4), jnp.abs(pm1(3, 4)))),
    "MultiLabelMarginLoss": (lambda: nn.MultiLabelMarginLoss(),
                             lambda: (r(2, 4), jnp.array([[3, 0, -1, 1], [1, -1, 0, 0]], jnp.int32))),
    "MultiMarginLoss": (lambda: nn.MultiMarginLoss(), lambda: (r(3, 4), ints(4, 3))),
    "CosineEmbeddingLoss": (lambda: nn.CosineEmbeddingLoss(), lambda: (r(3, 4), r(3, 4), pm1(3))),
    "MarginRankingLoss": (lambda: nn.MarginRankingLoss(), lambda: (r(3), r(3), pm1(3))),
    "HingeEmbeddingLoss": (lambda: nn.HingeEmbeddingLoss(), lambda: (r(3, 4), pm1(3, 4))),
    "TripletMarginLoss": (lambda: nn.TripletMarginLoss(), lambda: (r(3, 4), r(3, 4), r(3, 4))),
    "TripletMarginWithDistanceLoss": (lambda: nn.TripletMarginWithDistanceLoss(), lambda: (r(3, 4), r(3, 4), r(3, 4))),
    "PoissonNLLLoss": (lambda: nn.PoissonNLLLoss(), lambda: (r(3, 4), jnp.abs(r(3, 4)))),
    "GaussianNLLLoss": (lambda: nn.GaussianNLLLoss(), lambda: (r(3, 4), r(3, 4), jnp.abs(r(3, 4)) + 0.1)),
    "CTCLoss": (lambda: nn.CTCLoss(), lambda: (jax.nn.log_softmax(r(6, 2, 4)), 1 + ints(3, 2, 3),
                                               jnp.array([6, 5]), jnp.array([3, 2]))),
    "LinearCrossEntropyLoss": (lambda: nn.LinearCrossEntropyLoss(4, 6, out_features=(2,), bias=True,
                                                                 label_smoothing=0.1),
                               lambda: (r(3, 4), ints(6, 3, 2))),
    "LayerNorm": (lambda: nn.LayerNorm(4), lambda: (r(2, 3, 4),)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), lambda: (r(2, 4, 3),)),
    "RMSNorm": (lambda: nn.RMSNorm(4), lambda: (r(2, 4),)),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(2), lambda: (r(2, 4, 3, 3),)),
    "CrossMapLRN2d": (lambda: nn.CrossMapLRN2d(3), lambda: (r(2, 4, 3, 3),)),
    "PixelShuffle": (lambda: nn.PixelShuffle(2), lambda: (r(1, 8, 2, 2),)),
    "PixelUnshuffle": (lambda: nn.PixelUnshuffle(2), lambda: (r(1, 2, 4, 4),)),
    "MaxUnpool1d": (lambda: nn.MaxUnpool1d(2), lambda: pooled(F.max_pool1d, r(2, 3, 8))),
    "MaxUnpool2d": (lambda: nn.MaxUnpool2d(2), lambda: pooled(F.max_pool2d, r(2, 3, 4, 4))),
    "MaxUnpool3d": (lambda: nn.MaxUnpool3d(2), lambda: pooled(F.max_pool3d, r(1, 2, 4, 4, 4))),
    "FractionalMaxPool2d": (lambda: nn.FractionalMaxPool2d(2, output_size=3), lambda: (r(1, 2, 6, 6),)),
    "FractionalMaxPool3d": (lambda: nn.FractionalMaxPool3d(2, output_size=2), lambda: (r(1, 2, 5, 5, 5),)),
    "RNN": (lambda: nn.RNN(3, 4), lambda: (r(5, 2, 3),)),
    "LSTM": (lambda: nn.LSTM(3, 4, num_layers=2, dropout=0.5, proj_size=2), lambda: (r(5, 2, 3),)),
    "GRU": (lambda: nn.GRU(3, 4, bidirectional=True, batch_first=True), lambda: (r(2, 5, 3),)),
    "RNNCell": (lambda: nn.RNNCell(3, 4), lambda: (r(2, 3),)),
    "LSTMCell": (lambda: nn.LSTMCell(3, 4), lambda: (r(2, 3),)),
    "GRUCell": (lambda: nn.GRUCell(3, 4), lambda: (r(2, 3),)),
    "Embedding": (lambda: nn.Embedding(10, 4, padding_idx=0), lambda: (ints(10, 2, 3),)),
    "EmbeddingBag": (lambda: nn.EmbeddingBag(10, 4, mode="max"), lambda: (ints(10, 2, 3),)),
    "Transformer": (lambda: nn.Transformer(8, 2, 1, 1, 16), lambda: (r(5, 2, 8), r(4, 2, 8))),
    "TransformerEncoder": (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2),
                           lambda: (r(5, 2, 8),)),
    "TransformerDecoder": (lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), 1),
                           lambda: (r(4, 2, 8), r(5, 2, 8))),
    "TransformerEncoderLayer": (lambda: nn.TransformerEncoderLayer(8, 2, 16, norm_first=True),
                                lambda: (r(5, 2, 8),)),
    "TransformerDecoderLayer": (lambda: nn.TransformerDecoderLayer(8, 2, 16, batch_first=True),
                                lambda: (r(2, 4, 8), r(2, 5, 8))),
    "Upsample": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), lambda: (r(1, 2, 3, 3),)),
    "UpsamplingNearest2d": (lambda: nn.UpsamplingNearest2d(scale_factor=2), lambda: (r(1, 2, 3, 3),)),
    "UpsamplingBilinear2d": (lambda: nn.UpsamplingBilinear2d(scale_factor=2), lambda: (r(1, 2, 3, 3),)),
})
for d, shape in ((1, (2, 3, 8)), (2, (2, 3, 6, 6)), (3, (1, 2, 4, 4, 4))):
    x_shape = shape
    CASES.update({
        f"MaxPool{d}d": (lambda d=d: getattr(nn, f"MaxPool{d}d")(2), lambda s=x_shape: (r(*s),)),
        f"AvgPool{d}d": (lambda d=d: getattr(nn, f"AvgPool{d}d")(2, ceil_mode=True), lambda s=x_shape: (r(*s),)),
        f"AdaptiveAvgPool{d}d": (lambda d=d: getattr(nn, f"AdaptiveAvgPool{d}d")(3), lambda s=x_shape: (r(*s),)),
        f"AdaptiveMaxPool{d}d": (lambda d=d: getattr(nn, f"AdaptiveMaxPool{d}d")(3), lambda s=x_shape: (r(*s),)),
        f"LPPool{d}d": (lambda d=d: getattr(nn, f"LPPool{d}d")(2, 2), lambda s=x_shape: (r(*s),)),
        f"CircularPad{d}d": (lambda d=d: getattr(nn, f"CircularPad{d}d")(1), lambda s=x_shape: (r(*s),)),
        f"ConstantPad{d}d": (lambda d=d: getattr(nn, f"ConstantPad{d}d")(1, 0.5), lambda s=x_shape: (r(*s),)),
        f"ReflectionPad{d}d": (lambda d=d: getattr(nn, f"ReflectionPad{d}d")(1), lambda s=x_shape: (r(*s),)),
        f"ReplicationPad{d}d": (lambda d=d: getattr(nn, f"ReplicationPad{d}d")(1), lambda s=x_shape: (r(*s),)),
        f"ZeroPad{d}d": (lambda d=d: getattr(nn, f"ZeroPad{d}d")(1), lambda s=x_shape: (r(*s),)),
    })

# Not layers with a forward of their own: the base class, markers, containers without forward, abstract bases.
NOT_RUNNABLE = {"Module", "Parameter", "Buffer", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
                "RNNBase", "RNNCellBase", "LinearCrossEntropyOptions"}


def test_every_catalogue_class_has_a_case():
    assert set(nn.modules.__all__) - NOT_RUNNABLE - set(CASES) == set()


def _close(a, b) -> None:
    jax.tree_util.tree_map(lambda u, v: np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(v, np.float64),
                                                                   rtol=2e-5, atol=2e-5), a, b)


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_pytree_and_split_agree(name):
    make, make_inputs = CASES[name]
    jnn.manual_seed(0)
    module = make()
    inputs = make_inputs()
    if type(module).__name__.startswith("Lazy"):
        module.eval()(*inputs)  # lazy layers initialise on their first (eager) call
        assert not type(module).__name__.startswith("Lazy")
        module.train()
    before = {k: np.asarray(v) for k, v in module.state_dict().items()}
    key, eval_key = jax.random.key(1), jax.random.key(2)  # FractionalMaxPool draws in eval mode too

    # 1. eager, on a copy: train-mode call (buffers change on the module), then eval
    eager = copy.deepcopy(module).train()
    with jnn.random.fork(key):
        eager_train = eager(*inputs)
    with jnn.random.fork(eval_key):
        eager_eval = eager.eval()(*inputs)

    # 2. the module as a pytree under jit; the changed module comes back
    def run_tree(m, xs, k, k_eval):
        with jnn.random.fork(k):
            out_train = m.train()(*xs)
        with jnn.random.fork(k_eval):
            out_eval = m.eval()(*xs)
        return out_train, out_eval, m

    tree_train, tree_eval, tree_module = jax.jit(run_tree)(module, inputs, key, eval_key)

    # 3. split: pure apply under jit; new buffers come back
    apply, params, buffers = jnn.split(module)

    def run_split(p, b, xs, k, k_eval):
        out_train, new_b = apply(p, b, *xs, train=True, key=k)
        return out_train, apply(p, new_b, *xs, train=False, key=k_eval)[0], new_b

    split_train, split_eval, new_buffers = jax.jit(run_split)(params, buffers, inputs, key, eval_key)

    for got in (tree_train, split_train):
        _close(got, eager_train)
    for got in (tree_eval, split_eval):
        _close(got, eager_eval)
    _close(tree_module.state_dict(), eager.state_dict())
    _close(new_buffers, {k: v for k, v in eager.named_buffers()} | {
        k: v for k, v in eager.named_parameters() if k in new_buffers})
    # neither transformed path touched the original module
    assert all(m.training for m in module.modules())
    _close({k: np.asarray(v) for k, v in module.state_dict().items()}, before)
