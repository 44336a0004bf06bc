"""Meta's EnCodec neural audio codec, ported by ``python -m jnn.port`` from its own source (encodec 0.1.1, a source
archive fetched at test time, see ``_pypi_source``): ``encodec`` -> ``encodec_jnn``, no hand edits.

Small codecs are built from the package's classes on both sides (SEANet encoder and decoder with 4 filters, ratios
[4, 2], residual layers with dilation, the LSTM, a residual vector quantizer of 16-entry codebooks), torch's
state_dict (weight norm's ``weight_g``/``weight_v``, spectral norm's ``weight_orig``/``weight_u``/``weight_v``,
GroupNorm's, the codebooks' EMA buffers) loads into the port with ``strict=True`` (same names, same order), and
they are compared with torch:

- the SEANet encoder and decoder, causal (reflect padding on the left, a transposed convolution trimmed on the right
  by a ratio) and not (asymmetric padding, GroupNorm), on short audio too (the reflect padding of an input shorter
  than the padding); spectral-norm convolutions, in training mode too (power iteration);
- ``EncodecModel``: encode (the codes are equal integers) and decode, eagerly and under ``jax.jit``, with and
  without volume normalisation, at a target bandwidth (fewer quantizers), and in overlapping segments (linear
  overlap-add); the full-size 24 kHz and 48 kHz layouts' state_dicts; the streaming transformer language model,
  whole and in chunks that carry its states;
- training: the gradients of a reconstruction loss (through the quantizer's straight-through estimator, plus its
  commitment loss) w.r.t. every parameter, and the codebooks' buffers after the step (EMA cluster sizes and sums,
  the codebooks, dead codes expired); k-means initialisation of the codebooks on the first batch (``inited``).

The k-means initialisation and the expiry of dead codes draw samples at random (``torch.randperm``): the training
tests take the first samples instead, on both sides (``sample_vectors`` patched in both modules), so the whole step
is deterministic and compared exactly. The torch code decides with Python ``if`` on values, as any JAX port would
have to: the quantizer's forward on its buffers (``if self.inited``, ``if not torch.any(expired_codes)``), so the
jitted training step closes over the buffers and decides while tracing (``jax.ensure_compile_time_eval``); k-means
(``torch.bincount``, whose length depends on values) and the overlap-add (``assert sum_weight.min() > 0``) run
eagerly only.
"""

from __future__ import annotations

import hashlib
import sys

import _pypi_source as pypi
import _torchaudio_source as tasource
import _torchvision_source as tvsource
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import jitted, load_twin, torch_state

import jnn

SAMPLE_RATE, LENGTH, BINS = 1000, 1000, 16

pytestmark = [
    # encodec uses the legacy torch.nn.utils.weight_norm, deprecated in torch (and so in jnn)
    pytest.mark.filterwarnings("ignore:.*weight_norm`? is deprecated:FutureWarning"),
    # codebooks made by `t = torch.empty(shape); nn.init.kaiming_uniform_(t)`: the port keeps the returned array
    # (`t = nn.init.kaiming_uniform_(t)`), which jnn.init cannot see, so it warns all the same
    pytest.mark.filterwarnings("ignore::jnn.init.NotInPlaceWarning"),
]


def _import(tree, name):
    """``name`` from ``tree``; its utils.py imports torchaudio (for its audio file helpers, unused here): the
    torchaudio subset of ``_torchaudio_source``, with torch, unless a torchaudio is imported already."""
    if "torchaudio" not in sys.modules:
        tasource.import_package(tasource.source_tree(), "torchaudio")
    return tvsource.import_package(tree, name)


@pytest.fixture(scope="module")
def ec():
    """The original encodec files, imported with torch."""
    return _import(pypi.source_tree(pypi.ENCODEC), "encodec")


@pytest.fixture(scope="module")
def ej():
    """``python -m jnn.port encodec -o encodec_jnn``, imported with jnn."""
    return _import(pypi.ported_tree(pypi.ENCODEC), "encodec_jnn")


CONFIGS = {
    # the 24 kHz model's layout: causal, weight norm, a 2-layer LSTM; the decoder trims half on the right
    "causal": dict(channels=1, causal=True, norm="weight_norm", lstm=2, trim_right_ratio=0.5),
    # the 48 kHz model's layout: stereo, not causal, GroupNorm after each convolution, no LSTM, true skips
    "noncausal": dict(channels=2, causal=False, norm="time_group_norm", lstm=0, true_skip=True, n_residual_layers=1),
    # for the training step (its compile time): causal, weight norm, one residual layer, a 1-layer LSTM
    "small": dict(channels=1, causal=True, norm="weight_norm", lstm=1, n_residual_layers=1),
}


def _codec(ec, config="causal", normalize=False, segment=None, kmeans_init=True):
    """A small EncodecModel of ``ec``'s classes: ``CONFIGS[config]``, 4 quantizers of ``BINS`` codes (0.5 kbps
    each at 125 frames per second)."""
    options = dict(CONFIGS[config])
    trim = options.pop("trim_right_ratio", 1.0)
    common = dict(dimension=8, n_filters=4, ratios=[4, 2], kernel_size=5, last_kernel_size=3,
                  **{"n_residual_layers": 2, **options})
    encoder = ec.modules.SEANetEncoder(**common)
    decoder = ec.modules.SEANetDecoder(**common, trim_right_ratio=trim)
    quantizer = ec.quantization.ResidualVectorQuantizer(dimension=8, n_q=4, bins=BINS, kmeans_init=kmeans_init,
                                                        kmeans_iters=3)
    return ec.EncodecModel(encoder, decoder, quantizer, target_bandwidths=[1.0, 2.0], sample_rate=SAMPLE_RATE,
                           channels=options["channels"], normalize=normalize, segment=segment)


def _pair(ec, ej, config="causal", prepare=None, **kwargs):
    """The same codec on both sides: torch's (``prepare``\\ d, constants randomised) loaded into the port."""
    torch.manual_seed(0)
    reference, model = _codec(ec, config, **kwargs), _codec(ej, config, **kwargs)
    if prepare is not None:
        prepare(reference)
    load_twin(model, reference)
    return reference, model


def _audio(channels, length=LENGTH, batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, channels, length)).astype(np.float32)


def _close(actual, expected, rtol=1e-5):
    """Within ``rtol``, and an absolute ``rtol`` of ``expected``'s largest magnitude (for values near zero)."""
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    atol = rtol * max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol)


def test_ported_encodec_seanet_matches_torch(ec, ej):
    """The causal SEANet encoder and decoder (weight norm's ``weight_g``/``weight_v``: ``load_twin`` asserts the
    names, in order): outputs on 1000 samples eagerly (the model test runs them under jit, in ``encode`` and
    ``decode``), and on 3 (shorter than the first convolution's padding: reflect after zeros) under jit."""
    reference, model = _pair(ec, ej)
    assert any(k.endswith("conv.weight_g") for k in model.state_dict())
    for length in (LENGTH, 3):
        x = _audio(1, length)
        with torch.no_grad():
            emb = reference.encoder(torch.from_numpy(x))
            out = reference.decoder(emb)
        assert emb.shape[-1] == -(-length // 8) and out.shape[-1] == 8 * emb.shape[-1]
        e = emb.numpy()
        if length == LENGTH:
            _close(model.encoder(jnp.asarray(x)), emb)
            _close(model.decoder(jnp.asarray(e)), out)
        else:
            _close(jitted(model.encoder, (x,), {}), emb)
            _close(jitted(model.decoder, (e,), {}), out)


def _training(model):
    """A jitted training step of ``sum(model(x) ** 2)`` over ``jnn.split(model)``: ``(loss, new buffers)`` and the
    gradients; with the params and buffers."""
    apply, params, buffers = jnn.split(model)

    def loss(params, buffers, x):
        y, new_buffers = apply(params, buffers, x, train=True)
        return (y ** 2).sum(), new_buffers

    return jax.jit(jax.value_and_grad(loss, has_aux=True)), params, buffers


def test_ported_encodec_pretrained_layouts_load_torch_state(ec, ej, tmp_path):
    """The full-size models of ``encodec_model_24khz`` and ``encodec_model_48khz`` (``EncodecModel._get_model``
    with their settings, no download): torch's state_dict loads with ``strict=True``, the names in the same order
    and the same shapes, as a pretrained checkpoint would. A checkpoint torch saved in a local repository (a
    ``name-<sha256 prefix>.th`` file) is checked and read by the port's ``_get_pretrained`` (``jnn.load``)."""
    layouts = (([1.5, 3.0, 6, 12.0, 24.0], 24_000, 1, True, "weight_norm"),
               ([3.0, 6.0, 12.0, 24.0], 48_000, 2, False, "time_group_norm"))
    for bandwidths, sample_rate, channels, causal, norm in layouts:
        torch.manual_seed(0)
        models = [package.EncodecModel._get_model(bandwidths, sample_rate, channels, causal=causal, model_norm=norm)
                  for package in (ec, ej)]
        load_twin(models[1], models[0])
        shapes = [[(k, tuple(np.shape(v))) for k, v in model.state_dict().items()] for model in models]
        assert shapes[0] == shapes[1] and len(shapes[0]) > 200
        assert (models[1].frame_rate, models[1].quantizer.n_q) == (models[0].frame_rate, models[0].quantizer.n_q)

    with torch.no_grad():
        for p in models[0].parameters():
            p.mul_(2)  # a checkpoint that differs from what the port holds
    torch.save(models[0].state_dict(), tmp_path / "checkpoint")
    digest = hashlib.sha256((tmp_path / "checkpoint").read_bytes()).hexdigest()
    (tmp_path / "checkpoint").rename(tmp_path / f"encodec_48khz-{digest[:8]}.th")
    models[1].load_state_dict(ej.EncodecModel._get_pretrained(f"encodec_48khz-{digest[:8]}.th", tmp_path))
    for k, v in torch_state(models[0]).items():
        np.testing.assert_array_equal(np.asarray(models[1].state_dict()[k]), v, err_msg=k)
    (tmp_path / f"encodec_48khz-{digest[:8]}.th").rename(tmp_path / "encodec_48khz-00000000.th")
    with pytest.raises(RuntimeError, match="Invalid checksum"):
        ej.EncodecModel._get_pretrained("encodec_48khz-00000000.th", tmp_path)


def test_ported_encodec_spectral_norm_convolutions_match_torch(ec, ej):
    """SConv1d and SConvTranspose1d with spectral norm (``weight_orig``, ``weight_u``, ``weight_v``): eval outputs
    eagerly and under jit, then two steps in training mode (a power iteration each, updating ``weight_u`` and
    ``weight_v`` in place) and their gradients."""
    x = _audio(4, 50)
    for conv in ("SConv1d", "SConvTranspose1d"):
        torch.manual_seed(0)
        options = dict(causal=conv == "SConv1d", norm="spectral_norm")
        reference = getattr(ec.modules, conv)(4, 6, 5, 2, **options)
        model = getattr(ej.modules, conv)(4, 6, 5, 2, **options)
        load_twin(model, reference)
        assert {k.rsplit(".", 1)[-1] for k in model.state_dict()} == {"bias", "weight_orig", "weight_u", "weight_v"}
        with torch.no_grad():
            expected = reference(torch.from_numpy(x))
        _close(model(jnp.asarray(x)), expected)
        _close(jitted(model, (x,), {}), expected)

        reference.train()
        step, params, buffers = _training(model)
        for _ in range(2):
            reference.zero_grad()
            expected = reference(torch.from_numpy(x))
            (expected ** 2).sum().backward()
            (value, buffers), grads = step(params, buffers, x)
            _close(value, (expected ** 2).sum().detach())
            for k, p in reference.named_parameters():
                _close(grads[k], p.grad)
            for k, b in reference.named_buffers():
                _close(buffers[k], b)


@pytest.mark.parametrize("config, segment", [("causal", None), ("noncausal", 0.4)])
def test_ported_encodec_model_matches_torch(config, segment, ec, ej):
    """EncodecModel.encode (equal integer codes and scales), decode and forward: with all 4 quantizers (eagerly and
    under jit), then normalising the volume at 1 kbps (2 quantizers). With ``segment`` 0.4 s (the 48 kHz model's
    way, normalising each segment's volume), 1000 samples are three overlapping segments (the last one shorter),
    decoded and overlap-added (eagerly: the overlap-add asserts on values)."""
    reference, model = _pair(ec, ej, config, segment=segment)
    x = _audio(CONFIGS[config]["channels"])
    variants = ((False, None, 4), (True, 1.0, 2)) if segment is None else ((True, None, 4),)
    for normalize, bandwidth, n_q in variants:
        for codec in (reference, model):
            codec.normalize = normalize
            if bandwidth is not None:
                codec.set_target_bandwidth(bandwidth)
        with torch.no_grad():
            frames = reference.encode(torch.from_numpy(x))
            decoded = reference.decode(frames)
            forward = reference(torch.from_numpy(x))
        assert len(frames) == (1 if segment is None else 3)
        jit = segment is None and not normalize
        encoders = [model.encode(jnp.asarray(x))] + ([jitted(model.encode, (x,), {})] if jit else [])
        for got in encoders:
            assert len(got) == len(frames)
            for (codes, scale), (expected, expected_scale) in zip(got, frames, strict=True):
                assert jnp.issubdtype(codes.dtype, jnp.integer) and codes.shape == (2, n_q, expected.shape[-1])
                np.testing.assert_array_equal(np.asarray(codes), expected.numpy())
                assert (scale is None) == (expected_scale is None)
                if scale is not None:
                    _close(scale, expected_scale)
        ours = [(jnp.asarray(c.numpy()), None if s is None else jnp.asarray(s.numpy())) for c, s in frames]
        _close(model.decode(ours), decoded)
        _close(model(jnp.asarray(x)), forward)
        if jit:
            _close(jax.jit(model.decode)(ours), decoded)


def _first_samples(samples, num):
    """``sample_vectors`` without its randomness: the first ``num`` samples (repeated when there are fewer)."""
    return samples[np.arange(num) % samples.shape[0]]


def _trainer(nn):
    """A module of ``nn`` (torch.nn or jnn) running a codec as in training: encoder, the quantizer's forward
    (straight-through, commitment loss, codebook updates), decoder."""
    class Trainer(nn.Module):
        def __init__(self, codec):
            super().__init__()
            self.codec = codec

        def forward(self, x):
            codec = self.codec
            quantized = codec.quantizer(codec.encoder(x), codec.frame_rate, codec.bandwidth)
            return codec.decoder(quantized.quantized), quantized.codes, quantized.penalty, quantized.bandwidth

    return Trainer


def _torch_step(reference, x):
    """torch's training step: the outputs, loss and gradients (``reference``'s buffers change in place)."""
    y, codes, penalty, bandwidth = _trainer(torch.nn)(reference).train()(torch.from_numpy(x))
    loss = torch.mean((y - torch.from_numpy(x)) ** 2) + penalty
    loss.backward()
    return y, codes, loss, bandwidth, {f"codec.{k}": p.grad for k, p in reference.named_parameters()}


def _check_buffers(new_buffers, reference):
    after = {f"codec.{k}": v for k, v in torch_state(reference).items()}
    assert set(new_buffers) == {k for k, _ in reference.named_buffers(prefix="codec")}
    for k, v in new_buffers.items():
        _close(v, after[k])


def test_ported_encodec_training_step_matches_torch(ec, ej, monkeypatch):
    """Training, with the codebooks in training mode.

    One step of ``mse(decoded, x) + commitment penalty``, under ``jax.jit`` (the buffers closed over: the codebook
    decides on their values in Python): the loss, codes, every parameter's gradient (weight norm's g and v, the
    LSTM's), and every buffer afterwards (EMA cluster sizes and sums, the codebooks; the cluster sizes start
    between 0 and 4, so some codes expire). Then, eagerly (``bincount`` gives a length that depends on values), a
    first step of the quantizer whose codebooks are made by k-means on the batch: the output, codes, penalty, and
    the buffers (``inited``)."""
    for package in (ec, ej):
        monkeypatch.setattr(package.quantization.core_vq, "sample_vectors", _first_samples)

    def sizes(reference):
        for name, buffer in reference.named_buffers():
            if name.endswith("cluster_size"):
                buffer.uniform_(0.0, 4.0)

    reference, model = _pair(ec, ej, "small", prepare=sizes, kmeans_init=False)
    x = _audio(1)
    y, codes, loss, bandwidth, expected = _torch_step(reference, x)
    apply, params, buffers = jnn.split(_trainer(jnn)(model))

    def step(params, x):
        with jax.ensure_compile_time_eval():  # the codebook's `if`s on buffers: decided while tracing
            (y, codes, penalty, bandwidth), new_buffers = apply(params, buffers, x, train=True)
        return jnp.mean((y - x) ** 2) + penalty, (codes, bandwidth, new_buffers)

    (value, (got_codes, got_bandwidth, new_buffers)), grads = jax.jit(jax.value_and_grad(step, has_aux=True))(
        params, x)
    np.testing.assert_array_equal(np.asarray(got_codes), codes.numpy())
    _close(got_bandwidth, bandwidth)
    _close(value, loss.detach())
    assert set(grads) == set(expected)
    for k, g in expected.items():
        _close(grads[k], g)
    _check_buffers(new_buffers, reference)

    options = dict(dimension=8, n_q=4, bins=BINS, kmeans_iters=3)
    reference = ec.quantization.ResidualVectorQuantizer(**options).train()
    model = ej.quantization.ResidualVectorQuantizer(**options)
    model.load_state_dict(torch_state(reference))  # zeros, not inited
    emb = _audio(8, 125)
    expected = reference(torch.from_numpy(emb), 125)
    apply, params, buffers = jnn.split(model)
    got, new_buffers = apply(params, buffers, jnp.asarray(emb), 125, train=True)
    np.testing.assert_array_equal(np.asarray(got.codes), expected.codes.numpy())
    for name in ("quantized", "bandwidth", "penalty"):
        _close(getattr(got, name), getattr(expected, name).detach())
    after = torch_state(reference)
    assert set(new_buffers) == set(after) and all(v.item() == 1.0 for k, v in after.items() if k.endswith("inited"))
    for k, v in new_buffers.items():
        _close(v, after[k])


def test_ported_encodec_language_model_matches_torch(ec, ej):
    """The streaming transformer language model over codes (a past context of 3 steps): whole, eagerly and under
    jit, then in two chunks that carry the states and offset (under jit)."""
    torch.manual_seed(0)
    options = dict(n_q=2, card=BINS, dim=16, num_layers=1, num_heads=2, past_context=3)
    reference, model = ec.model.LMModel(**options), ej.model.LMModel(**options)
    load_twin(model, reference)
    indices = np.random.default_rng(0).integers(0, BINS + 1, (2, 2, 6)).astype(np.int64)
    with torch.no_grad():
        whole = reference(torch.from_numpy(indices))
        first = reference(torch.from_numpy(indices[..., :4]))
        second = reference(torch.from_numpy(indices[..., 4:]), first[1], first[2])

    def streamed(indices):
        first = model(indices[..., :4])
        return model(indices[..., 4:], first[1], first[2])

    for got, expected in ((model(jnp.asarray(indices)), whole), (jitted(model, (indices,), {}), whole),
                          (jitted(streamed, (indices,), {}), second)):
        _close(got[0], expected[0])
        assert len(got[1]) == len(expected[1]) and int(got[2]) == expected[2] == 6
        for s, e in zip(got[1], expected[1], strict=True):
            _close(s, e)
    _close(second[0], whole[0][..., 4:])  # torch itself: the streamed steps see what the whole sees
