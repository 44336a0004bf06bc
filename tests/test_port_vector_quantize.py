"""lucidrains' vector-quantize-pytorch, ported by ``python -m jnn.port`` from its own source (vector-quantize-pytorch
1.32.0, fetched at test time, see ``_pypi_source``): ``vector_quantize_pytorch`` -> ``vector_quantize_pytorch_jnn``,
no hand edits. einops, einx and loguru are test dependencies, used as they are on both sides.

Quantizers built from the package's classes on both sides with the same arguments, torch's state_dict (constants
randomised: the EMA cluster sizes too) loaded into the port with ``strict=True``, printed as torch's:
``VectorQuantize`` (Euclidean with separate codebooks per head and projections; cosine similarity with a shared
codebook over heads), ``ResidualVQ``, ``GroupedResidualVQ``, ``FSQ``, ``LFQ`` and ``LatentQuantize``.

Compared with torch:

- eval mode: the quantized output, the integer codes (equal) and the losses, eagerly and under ``jax.jit``; codes
  back to outputs (``get_output_from_indices``, ``indices_to_codes``); sequences of different lengths (``lens``:
  zeros and code -1 in the padding); a codebook set through ``VectorQuantize.codebook``'s property setter;
- training, the point of the package: ``VectorQuantize`` keeps its codebooks by exponential moving averages updated
  in place (``ema_inplace(self.cluster_size, ...)`` calls ``old.data.lerp_(new, ...)`` on the buffer passed in;
  ``self.embed.data.copy_(...)``): after each of two eager training steps every buffer (codebook, cluster sizes,
  ``embed_avg``) is torch's; a jitted step through ``jnn.split`` returns torch's new buffers, and the gradients of
  the output and commitment loss (rotation trick, straight-through estimator) w.r.t. the input and every parameter;
- k-means initialisation of the codebook on the first batch (``initted``) and the expiry of dead codes (a code
  whose EMA cluster size falls under a threshold takes a sample of the batch: ``self.embed.data[ind][mask] = ...``),
  eagerly: both draw samples at random (``torch.randperm``), so both sides take the first samples instead
  (``sample_vectors`` patched in both modules) and the steps are compared exactly; EMA statistics accumulated over
  calls (``accum_ema_update``: kept in the buffers' ``.grad``) and applied by a later one;
- ``FSQ``, ``LFQ`` (entropy and commitment losses) and ``LatentQuantize`` in training mode: outputs, losses and
  gradients (straight-through rounding) w.r.t. the input and the parameters.
"""

from __future__ import annotations

import _pypi_source as pypi
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import jitted, load_twin, torch_state

import jnn

pytestmark = [
    # codebooks made by `t = torch.empty(shape); nn.init.kaiming_uniform_(t)`: the port keeps the returned array
    pytest.mark.filterwarnings("ignore::jnn.init.NotInPlaceWarning"),
]

DIM, SEQ, BATCH, CODES = 8, 6, 2, 16

# name -> the quantizer, given the package (torch's or the port)
MODELS = {
    "vq": lambda v: v.VectorQuantize(dim=DIM, codebook_size=CODES, codebook_dim=4, heads=2,
                                     separate_codebook_per_head=True, commitment_weight=0.5),
    "vq_cosine": lambda v: v.VectorQuantize(dim=DIM, codebook_size=CODES, heads=2, codebook_dim=4,
                                            use_cosine_sim=True),
    "rvq": lambda v: v.ResidualVQ(dim=DIM, num_quantizers=3, codebook_size=CODES, codebook_dim=4,
                                  rotation_trick=False),  # the straight-through estimator
    "grvq": lambda v: v.GroupedResidualVQ(dim=DIM, groups=2, num_quantizers=2, codebook_size=CODES),
    "fsq": lambda v: v.FSQ(levels=[8, 5, 5], dim=DIM),
    "lfq": lambda v: v.LFQ(dim=DIM, codebook_size=CODES, entropy_loss_weight=0.1, commitment_loss_weight=0.25),
    "latent": lambda v: v.LatentQuantize(levels=[5, 5, 8], dim=DIM, commitment_loss_weight=0.1,
                                         quantization_loss_weight=0.1),
}


@pytest.fixture(scope="module")
def vq_torch():
    """The original vector_quantize_pytorch files, imported with torch."""
    return pypi.imported(pypi.VECTOR_QUANTIZE)


@pytest.fixture(scope="module")
def vq_jnn():
    """``python -m jnn.port vector_quantize_pytorch -o vector_quantize_pytorch_jnn``, imported with jnn."""
    return pypi.imported(pypi.VECTOR_QUANTIZE, ported=True)


def _twins(vq_torch, vq_jnn, name: str):
    """torch's quantizer and its port, built from the same arguments, torch's state loaded strictly into the port;
    both in eval mode. The port prints as torch's quantizer does."""
    torch.manual_seed(0)
    reference, model = MODELS[name](vq_torch), MODELS[name](vq_jnn)
    assert repr(model) == repr(reference)
    load_twin(model, reference)
    return reference, model


def _inputs(shape: tuple[int, ...] = (BATCH, SEQ, DIM), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(actual, expected, rtol: float = 1e-5) -> None:
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol,
                               atol=rtol * max(float(np.abs(expected).max(initial=0.0)), 1.0))


def _same(got, expected) -> None:
    """Outputs alike: arrays close (integer ones equal), tuples and None element by element."""
    if expected is None:
        assert got is None
    elif isinstance(expected, (tuple, list)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            _same(g, e)
    elif isinstance(expected, torch.Tensor) and not expected.is_floating_point():
        np.testing.assert_array_equal(np.asarray(got), expected.numpy())
    else:
        _close(got, expected)


def _buffers_match(model, reference) -> None:
    expected = torch_state(reference)
    state = model.state_dict()
    assert list(state) == list(expected)
    for k, v in state.items():
        _close(v, expected[k])


@pytest.mark.parametrize("name", list(MODELS))
def test_ported_quantizer_eval_matches_torch(name, vq_torch, vq_jnn):
    """Eval mode: the quantized output, the codes and the loss, eagerly and under jit; the output again from the
    codes."""
    reference, model = _twins(vq_torch, vq_jnn, name)
    x = _inputs((BATCH, DIM, SEQ) if name == "latent" else (BATCH, SEQ, DIM))  # LatentQuantize: channels first
    with torch.no_grad():
        expected = reference(torch.from_numpy(x))
    _same(model(jnp.asarray(x)), expected)
    _same(jitted(model, (x,), {}), expected)
    indices = expected[1]
    with torch.no_grad():
        decode = "indices_to_codes" if name in ("fsq", "lfq", "latent") else "get_output_from_indices"
        from_codes = getattr(reference, decode)(indices)
    _same(getattr(model, decode)(jnp.asarray(indices.numpy())), from_codes)
    if name != "vq":
        return
    # sequences of different lengths (padding: zeros and code -1), and a codebook set through the property's setter
    lens = np.array([SEQ, 3])
    with torch.no_grad():
        expected = reference(torch.from_numpy(x), lens=torch.from_numpy(lens))
    assert (expected[1][1, 3:] == -1).all()
    _same(model(jnp.asarray(x), lens=jnp.asarray(lens)), expected)
    _same(jitted(lambda x, lens: model(x, lens=lens), (x, lens), {}), expected)
    codes = _inputs((2, CODES, 4), seed=5)
    reference.codebook, model.codebook = torch.from_numpy(codes), jnp.asarray(codes)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x))
    _same(model(jnp.asarray(x)), expected)
    _close(model.codebook, codes)


def _total(out, w):
    """``sum(output * w) + sum(loss)`` (FSQ has no loss)."""
    return (out[0] * w).sum() + (out[2].sum() if len(out) > 2 else 0.0)


def _torch_step(reference, x: np.ndarray, w: np.ndarray):
    """torch's forward and backward of :func:`_total` (``reference``'s buffers change in place in training mode):
    the outputs, that loss, and its gradients w.r.t. the input (``"x"``) and every parameter."""
    reference.zero_grad()
    xt = torch.from_numpy(x).requires_grad_()
    out = reference(xt)
    total = _total(out, torch.from_numpy(w))
    total.backward()
    return out, total, {"x": xt.grad, **{k: p.grad for k, p in reference.named_parameters()}}


def _jax_step(model):
    """The same under ``jax.jit`` through ``jnn.split`` (training mode): ``((total, (outputs, new buffers)),
    gradients)`` of ``(params, x, w)``; the buffers are closed over and what depends on them alone is computed while
    tracing (``jax.ensure_compile_time_eval``): the quantizers decide on them in Python (``if self.initted``,
    LatentQuantize's ``if self.commitment_loss_weight != 0``)."""
    apply, params, buffers = jnn.split(model)

    def total(params, x, w):
        with jax.ensure_compile_time_eval():
            out, new_buffers = apply(params, buffers, x, train=True)
        return _total(out, w), (out, new_buffers)

    grad = jax.jit(jax.value_and_grad(total, argnums=(0, 1), has_aux=True))
    return lambda x, w: grad(params, x, w)


def _grads_match(grads, expected) -> None:
    """JAX's gradients ``(params, x)`` are torch's; zero where torch has none (LatentQuantize's values per latent,
    reached only through ``.detach()``)."""
    params, x = grads
    assert set(params) | {"x"} == set(expected)
    _close(x, expected["x"])
    for k, g in params.items():
        _close(g, expected[k] if expected[k] is not None else np.zeros_like(g))


@pytest.mark.parametrize("name", ["vq", "vq_cosine", "rvq"])
def test_ported_vector_quantize_training_updates_codebooks_as_torch(name, vq_torch, vq_jnn):
    """Training mode: two eager steps, after each every buffer (the codebooks, their EMA cluster sizes and sums,
    updated in place in torch by helpers given the buffers) is torch's, and the outputs, codes and losses; then a
    jitted step through ``jnn.split``: the new buffers it returns, and the gradients (rotation trick: the quantized
    output rotated from the input; commitment loss) w.r.t. the input and every parameter."""
    reference, model = _twins(vq_torch, vq_jnn, name)
    reference.train()
    model.train()
    w = _inputs(seed=9)
    for seed in (1, 2):
        x = _inputs(seed=seed)
        expected, *_ = _torch_step(reference, x, w)
        _same(model(jnp.asarray(x)), expected)
        _buffers_match(model, reference)
    x = _inputs(seed=3)
    (got_total, (got, new_buffers)), grads = _jax_step(model)(x, w)
    expected, total, expected_grads = _torch_step(reference, x, w)
    _same(got, expected)
    _close(got_total, total)
    _grads_match(grads, expected_grads)
    after = torch_state(reference)
    assert set(new_buffers) == {k for k, _ in reference.named_buffers()}
    for k, v in new_buffers.items():
        _close(v, after.get(k, dict(reference.named_buffers())[k]))


def _first_samples(samples, num: int):
    """``sample_vectors`` without its randomness: the first ``num`` samples (repeated when there are fewer)."""
    return samples[np.arange(num) % samples.shape[0]]


def test_ported_vector_quantize_kmeans_dead_codes_and_accumulated_ema_match_torch(vq_torch, vq_jnn, monkeypatch):
    """Eagerly, in training mode: a codebook made by k-means on the first batch (``initted`` becomes True) whose
    codes used too little (EMA cluster size under 2) take samples of the batch (``sample_vectors`` patched in both
    modules to take the first samples), over two steps: outputs, codes, loss and every buffer. Then EMA updates
    accumulated over two calls (``accum_ema_update=True`` keeps the sums in the buffers' ``.grad``) and applied by
    the third: the buffers."""
    for package in (vq_torch, vq_jnn):
        monkeypatch.setattr(package.vector_quantize_pytorch, "sample_vectors", _first_samples)
    options = dict(dim=DIM, codebook_size=CODES, kmeans_init=True, kmeans_iters=3, threshold_ema_dead_code=2)
    reference, model = vq_torch.VectorQuantize(**options).train(), vq_jnn.VectorQuantize(**options).train()
    model.load_state_dict(torch_state(reference))  # zeros, not initted
    w = _inputs((BATCH, 2 * SEQ, DIM), seed=9)
    for seed in (1, 2):
        x = _inputs((BATCH, 2 * SEQ, DIM), seed=seed)  # 24 vectors for 16 codes
        expected, *_ = _torch_step(reference, x, w)
        _same(model(jnp.asarray(x)), expected)
        _buffers_match(model, reference)
    sizes = reference._codebook.cluster_size
    assert bool(reference._codebook.initted) and bool((sizes == 2).any())  # initted, and codes were replaced

    reference, model = _twins(vq_torch, vq_jnn, "vq")
    reference.train()
    model.train()
    for seed in (1, 2, 3):
        x = _inputs(seed=seed)
        with torch.no_grad():
            reference(torch.from_numpy(x), accum_ema_update=seed < 3)
        model(jnp.asarray(x), accum_ema_update=seed < 3)
    _buffers_match(model, reference)


@pytest.mark.parametrize("name", ["fsq", "lfq", "latent"])
def test_ported_scalar_quantizers_train_as_torch(name, vq_torch, vq_jnn):
    """FSQ, LFQ (its entropy and commitment losses) and LatentQuantize (learnt values per latent) in training mode,
    a jitted step through ``jnn.split``: outputs, codes and losses, and the gradients (straight-through rounding)
    w.r.t. the input and every parameter."""
    reference, model = _twins(vq_torch, vq_jnn, name)
    reference.train()
    model.train()
    shape = (BATCH, DIM, SEQ) if name == "latent" else (BATCH, SEQ, DIM)
    x, w = _inputs(shape, seed=1), _inputs(shape, seed=9)
    (got_total, (got, _)), grads = _jax_step(model)(x, w)
    expected, total, expected_grads = _torch_step(reference, x, w)
    _same(got, expected)
    _close(got_total, total)
    _grads_match(grads, expected_grads)
