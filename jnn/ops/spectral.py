"""torch's signal functions: window functions, ``stft`` / ``istft``, and the complex views
(``view_as_real``, ``view_as_complex``, ``complex``, ``polar``) that spectrogram code uses.

>>> import jax.numpy as jnp
>>> from jnn import ops
>>> spec = ops.stft(jnp.ones(64), 16, window=ops.hann_window(16), return_complex=True)
>>> spec.shape, ops.istft(spec, 16, window=ops.hann_window(16), length=64).round(4).tolist()[:3]
((9, 17), [1.0, 1.0, 1.0])
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn._arrays import host_copy, is_staging, is_tracer, to_device
from jnn.ops._core import default_float, method, to_dtype

__all__ = ["hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window", "stft", "istft",
           "view_as_real", "view_as_complex", "complex", "polar"]


def _window(name: str, symmetric: Callable[[np.ndarray, int], np.ndarray]) -> Callable:
    """A torch window function from ``symmetric(n, N)``, the length-``N`` symmetric window at ``n = 0..N-1``
    (computed in float64 on the host); ``periodic=True`` is the length ``window_length + 1`` one without its last
    value, as torch makes it for spectral analysis."""

    def window(window_length: int, periodic: bool = True, *args: Any, dtype: Any = None, layout: Any = None,
               device: Any = None, requires_grad: bool = False, **kwargs: Any) -> jax.Array:
        if window_length < 0:
            raise RuntimeError(f"{name} requires non-negative window_length, got window_length={window_length}")
        if window_length <= 1:
            values = np.ones(window_length)
        else:
            length = window_length + 1 if periodic else window_length
            values = symmetric(np.arange(length, dtype=np.float64), length, *args, **kwargs)[:window_length]
        dtype = to_dtype(dtype) or default_float()
        return jnp.asarray(values, dtype) if is_staging() else to_device(host_copy(values, dtype))

    window.__name__ = window.__qualname__ = name
    return window


def _cosine_sum(*coefficients: float) -> Callable:
    def symmetric(n: np.ndarray, length: int) -> np.ndarray:
        return builtins.sum((-1) ** k * a * np.cos(2 * np.pi * k * n / (length - 1))
                            for k, a in enumerate(coefficients))
    return symmetric


def _hamming(n: np.ndarray, length: int, alpha: float = 0.54, beta: float = 0.46) -> np.ndarray:
    return alpha - beta * np.cos(2 * np.pi * n / (length - 1))


def _bartlett(n: np.ndarray, length: int) -> np.ndarray:
    return 1 - np.abs(2 * n / (length - 1) - 1)


def _kaiser(n: np.ndarray, length: int, beta: float = 12.0) -> np.ndarray:
    half = (length - 1) / 2
    return np.i0(beta * np.sqrt(np.clip(1 - ((n - half) / half) ** 2, 0, None))) / np.i0(beta)


hann_window = _window("hann_window", _cosine_sum(0.5, 0.5))
hamming_window = _window("hamming_window", _hamming)
blackman_window = _window("blackman_window", _cosine_sum(0.42, 0.5, 0.08))
bartlett_window = _window("bartlett_window", _bartlett)
kaiser_window = _window("kaiser_window", _kaiser)

_PAD_MODES = {"reflect": "reflect", "constant": "constant", "replicate": "edge", "circular": "wrap"}


def _full_window(window: Any, win_length: int, n_fft: int, dtype: Any) -> jax.Array:
    """``window`` (ones by default) padded on both sides to ``n_fft``, as torch centres it."""
    if window is None:
        window = jnp.ones(win_length, dtype)
    window = jnp.asarray(window)
    if window.shape != (win_length,):
        raise RuntimeError(f"stft: expected a 1D window tensor of size equal to win_length={win_length}, but got "
                           f"window with size {list(window.shape)}")
    left = (n_fft - win_length) // 2
    return jnp.pad(window, (left, n_fft - win_length - left))


def _lengths(n_fft: int, hop_length: int | None, win_length: int | None) -> tuple[int, int]:
    hop_length = n_fft // 4 if hop_length is None else hop_length
    win_length = n_fft if win_length is None else win_length
    if hop_length <= 0 or not 0 < win_length <= n_fft:
        raise RuntimeError(f"stft: expected 0 < hop_length and 0 < win_length <= n_fft, but got n_fft={n_fft}, "
                           f"hop_length={hop_length}, win_length={win_length}")
    return hop_length, win_length


@method
def stft(input: Any, n_fft: int, hop_length: int | None = None, win_length: int | None = None, window: Any = None,
         center: bool = True, pad_mode: str = "reflect", normalized: bool = False, onesided: bool | None = None,
         return_complex: bool | None = None, align_to_window: bool | None = None) -> jax.Array:
    """torch.stft: the short-time Fourier transform of a 1-D signal or a batch ``(B, L)`` of them, shaped
    ``(B?, frequencies, frames)``; ``center`` pads ``n_fft // 2`` on both sides with ``pad_mode`` first."""
    x = jnp.asarray(input)
    complex_input = jnp.issubdtype(x.dtype, jnp.complexfloating)
    if return_complex is None and not complex_input:
        raise RuntimeError("stft requires the return_complex parameter be given for real inputs, and will further "
                           "require that return_complex=True in a future PyTorch release.")
    if x.ndim not in (1, 2):
        raise RuntimeError(f"stft: expected a 1D or 2D tensor, but got {x.ndim}D")
    x = x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(default_float())
    hop_length, win_length = _lengths(n_fft, hop_length, win_length)
    signal = x[None] if x.ndim == 1 else x
    if center:
        pad = n_fft // 2
        signal = jnp.pad(signal, ((0, 0), (pad, pad)), mode=_PAD_MODES[pad_mode])
    if not 0 < n_fft <= signal.shape[-1]:
        raise RuntimeError(f"stft: expected 0 < n_fft <= {signal.shape[-1]}, but got n_fft={n_fft}")
    frames = 1 + (signal.shape[-1] - n_fft) // hop_length
    index = hop_length * np.arange(frames)[:, None] + np.arange(n_fft)[None, :]
    windowed = signal[:, index] * _full_window(window, win_length, n_fft, signal.dtype.type(0).real.dtype)
    onesided = not complex_input if onesided is None else onesided
    spectrum = jnp.fft.rfft(windowed, axis=-1) if onesided else jnp.fft.fft(windowed, axis=-1)
    if normalized:
        spectrum = spectrum * np.float32(n_fft ** -0.5)
    spectrum = jnp.swapaxes(spectrum, -1, -2)
    spectrum = spectrum[0] if x.ndim == 1 else spectrum
    return spectrum if return_complex or return_complex is None else view_as_real(spectrum)


@method
def istft(input: Any, n_fft: int, hop_length: int | None = None, win_length: int | None = None, window: Any = None,
          center: bool = True, normalized: bool = False, onesided: bool | None = None, length: int | None = None,
          return_complex: bool = False) -> jax.Array:
    """torch.istft: the inverse of :func:`stft` by windowed overlap-add, divided by the summed squared window."""
    spectrum = jnp.asarray(input)
    if not jnp.issubdtype(spectrum.dtype, jnp.complexfloating):
        raise RuntimeError("istft requires a complex-valued input tensor matching the output from stft with "
                           "return_complex=True.")
    if spectrum.ndim not in (2, 3):
        raise RuntimeError(f"istft: expected a tensor with 2 or 3 dimensions of complex, but got {spectrum.ndim}D")
    hop_length, win_length = _lengths(n_fft, hop_length, win_length)
    batched = spectrum if spectrum.ndim == 3 else spectrum[None]
    onesided = batched.shape[-2] != n_fft if onesided is None else onesided
    if normalized:
        batched = batched * np.float32(n_fft ** 0.5)
    columns = jnp.swapaxes(batched, -1, -2)  # (B, frames, frequencies)
    frames = jnp.fft.irfft(columns, n=n_fft, axis=-1) if onesided else jnp.fft.ifft(columns, n=n_fft, axis=-1)
    if not return_complex and not onesided:
        frames = frames.real
    real_dtype = jnp.zeros((), spectrum.dtype).real.dtype
    full_window = _full_window(window, win_length, n_fft, real_dtype)
    count = frames.shape[1]
    total = n_fft + hop_length * (count - 1)
    index = (hop_length * np.arange(count)[:, None] + np.arange(n_fft)[None, :]).reshape(-1)
    signal = jnp.zeros((frames.shape[0], total), frames.dtype).at[:, index].add(
        (frames * full_window).reshape(frames.shape[0], -1))
    envelope = jnp.zeros(total, real_dtype).at[index].add(jnp.tile(full_window ** 2, count))
    start = n_fft // 2 if center else 0
    end = total - (n_fft // 2 if center else 0) if length is None else builtins.min(start + length, total)
    signal, envelope = signal[:, start:end], envelope[start:end]
    if not is_tracer(envelope) and bool(jnp.any(jnp.abs(envelope) < 1e-11)):
        raise RuntimeError("istft: window overlap add min: the window's squares sum to zero somewhere (NOLA "
                           "condition failed); use a window and hop_length whose overlaps cover every sample")
    signal = signal / envelope
    if length is not None and signal.shape[-1] < length:
        signal = jnp.pad(signal, ((0, 0), (0, length - signal.shape[-1])))
    return signal if spectrum.ndim == 3 else signal[0]


def view_as_real(input: Any) -> jax.Array:
    """A complex array as real ``(..., 2)``: real and imaginary parts on a new last dim."""
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return jnp.stack([x.real, x.imag], axis=-1)


def view_as_complex(input: Any) -> jax.Array:
    """A real ``(..., 2)`` array as complex: last dim's two entries are the real and imaginary parts."""
    x = jnp.asarray(input)
    if x.ndim == 0 or x.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    if x.dtype not in (jnp.float32, jnp.float64, jnp.float16):
        raise RuntimeError(f"view_as_complex is only supported for floating point tensors, but got a tensor of "
                           f"scalar type: {x.dtype}")
    return jax.lax.complex(x[..., 0], x[..., 1])


def complex(real: Any, imag: Any, *, out: Any = None) -> jax.Array:
    """``real + i * imag`` (both of one float dtype, as torch requires)."""
    real, imag = jnp.asarray(real), jnp.asarray(imag)
    if real.dtype != imag.dtype or not jnp.issubdtype(real.dtype, jnp.floating):
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got {real.dtype} and "
                           f"{imag.dtype}")
    return jax.lax.complex(*jnp.broadcast_arrays(real, imag))


def polar(abs: Any, angle: Any, *, out: Any = None) -> jax.Array:
    """``abs * (cos(angle) + i * sin(angle))``."""
    abs, angle = jnp.asarray(abs), jnp.asarray(angle)
    return complex(abs * jnp.cos(angle), abs * jnp.sin(angle))
