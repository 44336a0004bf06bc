"""jnn.ops.fft (torch.fft) and jnn.ops.spectral (windows, stft/istft, complex views) against torch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jnn import ops

RNG = np.random.default_rng(0)


def same(ours, theirs, rtol=1e-5, atol=1e-5):
    theirs = theirs.resolve_conj().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def both(name, x, *args, jit=True, **kwargs):
    """``ops.fft.<name>`` eagerly and jitted against ``torch.fft.<name>``."""
    theirs = getattr(torch.fft, name)(torch.from_numpy(x), *args, **kwargs)
    fn = getattr(ops.fft, name)
    same(fn(jnp.asarray(x), *args, **kwargs), theirs)
    if jit:
        same(jax.jit(lambda a: fn(a, *args, **kwargs))(jnp.asarray(x)), theirs)


@pytest.mark.parametrize("norm", [None, "ortho", "forward", "backward"])
def test_one_dimensional_transforms(norm):
    x = RNG.standard_normal((3, 10)).astype(np.float32)
    z = (x + 1j * RNG.standard_normal((3, 10))).astype(np.complex64)
    for name in ("fft", "ifft", "rfft", "ihfft"):
        both(name, x, norm=norm)
        both(name, x, 7, 0, norm=norm)  # n shorter than the dim: cropped; longer: zero-padded
        both(name, x, n=16, dim=-1, norm=norm)
    for name in ("fft", "ifft", "irfft", "hfft"):
        both(name, z, norm=norm)
        both(name, z, n=12, dim=1, norm=norm)
    both("fft", np.arange(6, dtype=np.int64))  # integer input: the default float's complex


@pytest.mark.parametrize("norm", [None, "ortho"])
def test_multi_dimensional_transforms(norm):
    x = RNG.standard_normal((2, 4, 6, 5)).astype(np.float32)
    z = np.fft.rfftn(x, axes=(-2, -1)).astype(np.complex64)
    for name in ("fft2", "ifft2", "rfft2", "fftn", "ifftn", "rfftn"):
        both(name, x, norm=norm)
        both(name, x, s=(3, 8), norm=norm)
        both(name, x, dim=(0, 2), norm=norm)
    both("fftn", x, s=(4, 4, 4))  # s without dim: the last len(s) dims
    both("fftn", x, dim=1)
    for name in ("irfft2", "irfftn"):
        both(name, z, norm=norm)
        both(name, z, s=(6, 8), norm=norm)


def test_frequencies_and_shifts():
    for n, d in ((8, 1.0), (7, 0.1)):
        same(ops.fft.fftfreq(n, d), torch.fft.fftfreq(n, d))
        same(ops.fft.rfftfreq(n, d), torch.fft.rfftfreq(n, d))
    x = RNG.standard_normal((4, 5, 3)).astype(np.float32)
    for dim in (None, 1, (0, 2), -1):
        both("fftshift", x, dim=dim)
        both("ifftshift", x, dim=dim)


@pytest.mark.parametrize("name", ["hann_window", "hamming_window", "blackman_window", "bartlett_window",
                                  "kaiser_window"])
@pytest.mark.parametrize("length", [0, 1, 2, 5, 16, 400])
@pytest.mark.parametrize("periodic", [True, False])
def test_windows(name, length, periodic):
    same(getattr(ops, name)(length, periodic), getattr(torch, name)(length, periodic), atol=2e-6)
    same(jax.jit(lambda: getattr(ops, name)(length, periodic=periodic))(), getattr(torch, name)(length, periodic),
         atol=2e-6)
    same(getattr(ops, name)(length, dtype=ops.float64), getattr(torch, name)(length, dtype=torch.float64).float())


def test_window_options():
    same(ops.hamming_window(12, True, 0.5, 0.5), torch.hamming_window(12, True, 0.5, 0.5))
    same(ops.kaiser_window(12, False, 5.0), torch.kaiser_window(12, False, 5.0), atol=2e-6)


STFT_CASES = [  # (signal shape, n_fft, keyword arguments)
    ((400,), 64, {}),
    ((2, 301), 32, {"hop_length": 7, "window": "hann"}),
    ((2, 300), 32, {"win_length": 20, "window": "hamming", "normalized": True}),
    ((257,), 16, {"center": False, "window": "hann", "hop_length": 4}),
    ((3, 100), 20, {"pad_mode": "constant", "window": "hann", "onesided": False}),
    ((100,), 20, {"pad_mode": "replicate", "hop_length": 5, "window": "hann"}),
    ((100,), 20, {"pad_mode": "circular", "hop_length": 5, "window": "hann"}),
]


def _window_kwargs(kwargs, lib):
    kwargs = dict(kwargs)
    if "window" in kwargs:
        kwargs["window"] = getattr(lib, kwargs["window"] + "_window")(kwargs.get("win_length", kwargs["n_fft"]))
    del kwargs["n_fft"]
    return kwargs


@pytest.mark.parametrize(("shape", "n_fft", "options"), STFT_CASES)
def test_stft_and_istft_match_torch(shape, n_fft, options):
    x = RNG.standard_normal(shape).astype(np.float32)
    theirs_options, ours_options = (_window_kwargs({**options, "n_fft": n_fft}, lib) for lib in (torch, ops))
    theirs = torch.stft(torch.from_numpy(x), n_fft, return_complex=True, **theirs_options)
    same(ops.stft(jnp.asarray(x), n_fft, return_complex=True, **ours_options), theirs, atol=1e-4)
    jitted = jax.jit(lambda a: ops.stft(a, n_fft, return_complex=True, **ours_options))(jnp.asarray(x))
    same(jitted, theirs, atol=1e-4)
    same(ops.stft(jnp.asarray(x), n_fft, return_complex=False, **ours_options),
         torch.stft(torch.from_numpy(x), n_fft, return_complex=False, **theirs_options), atol=1e-4)
    inverse = {k: v for k, v in theirs_options.items() if k != "pad_mode"}
    ours_inverse = {k: v for k, v in ours_options.items() if k != "pad_mode"}
    if options.get("center", True) and "window" in options:
        for length in (None, shape[-1], shape[-1] + 5):
            back = torch.istft(theirs, n_fft, length=length, **inverse)
            same(ops.istft(jnp.asarray(theirs.numpy()), n_fft, length=length, **ours_inverse), back, atol=1e-4)
            inverted = jax.jit(lambda s, n=length: ops.istft(s, n_fft, length=n, **ours_inverse))
            same(inverted(jnp.asarray(theirs.numpy())), back, atol=1e-4)


def test_stft_gradient_matches_torch():
    x = RNG.standard_normal((2, 128)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    torch.stft(tx, 32, window=torch.hann_window(32), return_complex=True).abs().pow(2).sum().backward()
    grad = jax.grad(lambda a: (jnp.abs(ops.stft(a, 32, window=ops.hann_window(32), return_complex=True)) ** 2).sum())
    same(grad(jnp.asarray(x)), tx.grad, rtol=1e-4, atol=1e-3)


def test_stft_errors_match_torch():
    x = jnp.ones(64)
    with pytest.raises(RuntimeError, match="stft requires the return_complex parameter"):
        ops.stft(x, 16)
    with pytest.raises(RuntimeError, match="window overlap add min"):
        ops.istft(ops.stft(x, 16, return_complex=True, window=ops.hann_window(16), hop_length=16), 16,
                  window=ops.hann_window(16), hop_length=16)


def test_complex_views():
    z = (RNG.standard_normal((3, 4)) + 1j * RNG.standard_normal((3, 4))).astype(np.complex64)
    same(ops.view_as_real(jnp.asarray(z)), torch.view_as_real(torch.from_numpy(z)))
    r = RNG.standard_normal((3, 4, 2)).astype(np.float32)
    same(ops.view_as_complex(jnp.asarray(r)), torch.view_as_complex(torch.from_numpy(r)))
    a, b = RNG.standard_normal((2, 3, 1)).astype(np.float32)
    same(ops.complex(jnp.asarray(a), jnp.asarray(b)), torch.complex(torch.from_numpy(a), torch.from_numpy(b)))
    same(ops.polar(jnp.abs(jnp.asarray(a)), jnp.asarray(b)), torch.polar(torch.from_numpy(a).abs(),
                                                                           torch.from_numpy(b)))
    with pytest.raises(RuntimeError, match="last dimension of size 2"):
        ops.view_as_complex(jnp.ones((3, 3)))


def test_the_port_writes_these():
    from jnn.port import port_source

    ported = port_source("import torch\ndef f(x):\n    w = torch.hann_window(8)\n"
                         "    return torch.fft.rfft(x * w, dim=-1), x.stft(8, window=w, return_complex=True)\n")
    assert "ops.fft.rfft(" in ported and "ops.hann_window(" in ported and "ops.stft(x, 8" in ported
    assert "missing" not in ported
