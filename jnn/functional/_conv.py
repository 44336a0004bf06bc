"""Convolutions (1-3-d, plain and transposed) and the sliding-block pair unfold/fold."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jnn._arrays import check_same_dtype
from jnn.functional._utils import _ntuple

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "unfold",
           "fold"]

_IntOrTuple = int | Sequence[int]
_SPEC = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


def _prepare(fn: str, n: int, input: ArrayLike, weight: ArrayLike, what: str) -> tuple[jax.Array, jax.Array, bool]:
    x, w = jnp.asarray(input), jnp.asarray(weight)
    if x.ndim not in (n + 1, n + 2):
        raise ValueError(f"{fn}: expected {n + 1}D (unbatched) or {n + 2}D (batched) input, got input of shape "
                         f"{x.shape}")
    if w.ndim != n + 2:
        raise ValueError(f"{fn}: expected {n + 2}D weight {what}, got weight of shape {w.shape}")
    check_same_dtype(x, w, fn)
    unbatched = x.ndim == n + 1
    return (x[None] if unbatched else x), w, unbatched


def _positive(fn: str, **values: tuple[int, ...]) -> None:
    for name, v in values.items():
        if min(v) <= 0:
            raise ValueError(f"{fn}: {name} must be positive, got {name}={v}")


def _check_stride_dilation(fn: str, stride: tuple[int, ...], dilation: tuple[int, ...]) -> None:
    if min(stride) <= 0 or min(dilation) <= 0:
        raise ValueError(f"{fn}: stride and dilation must be positive, got stride={stride}, dilation={dilation}")


def _add_bias(fn: str, y: jax.Array, bias: ArrayLike | None, w: jax.Array, channels: int, n: int) -> jax.Array:
    if bias is None:
        return y
    b = jnp.asarray(bias)
    if b.shape != (channels,):
        raise ValueError(f"{fn}: given weight of shape {w.shape}, expected bias of shape ({channels},), got {b.shape}")
    return y + b.reshape((channels,) + (1,) * n)


def _convnd(n: int, input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None, stride: _IntOrTuple,
            padding: str | _IntOrTuple, dilation: _IntOrTuple, groups: int) -> jax.Array:
    fn = f"conv{n}d"
    x, w, unbatched = _prepare(fn, n, input, weight, "(out_channels, in_channels/groups, *kernel_size)")
    if groups < 1 or w.shape[0] % groups:
        raise ValueError(f"{fn}: given groups={groups}, expected weight to be divisible by {groups} at "
                         f"dimension 0 (out_channels), but got weight of shape {w.shape}")
    if x.shape[1] != w.shape[1] * groups:
        raise ValueError(f"{fn}: given groups={groups}, weight of shape {w.shape}, expected input of shape "
                         f"{tuple(jnp.shape(input))} to have {w.shape[1] * groups} channels, but got "
                         f"{x.shape[1]} channels instead")
    stride, dilation = _ntuple(stride, n, "stride", fn), _ntuple(dilation, n, "dilation", fn)
    _check_stride_dilation(fn, stride, dilation)
    eff = [d * (k - 1) + 1 for d, k in zip(dilation, w.shape[2:], strict=True)]
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * n
        elif padding == "same":
            if stride != (1,) * n:
                raise ValueError(f"{fn}: padding='same' is not supported for strided convolutions "
                                 f"(got stride={stride})")
            pads = [((e - 1) // 2, (e - 1) - (e - 1) // 2) for e in eff]  # the odd extra goes at the end
        else:
            raise ValueError(f"{fn}: invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    else:
        p = _ntuple(padding, n, "padding", fn)
        if min(p) < 0:
            raise ValueError(f"{fn}: negative padding is not supported, got padding={p}")
        pads = [(e, e) for e in p]
    padded = [x.shape[2 + i] + sum(pads[i]) for i in range(n)]
    if any(s < e for s, e in zip(padded, eff, strict=True)):
        raise ValueError(f"{fn}: calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
                         f"Kernel size (dilated): ({' x '.join(map(str, eff))}). Kernel size can't be greater "
                         "than actual input size")
    if _small_cpu_conv(n, groups, padded, eff, stride):
        y = _conv_by_taps(x, w, stride, pads, dilation)
    else:
        y = lax.conv_general_dilated(x, w, window_strides=stride, padding=pads, rhs_dilation=dilation,
                                     dimension_numbers=_SPEC[n], feature_group_count=groups)
    y = _add_bias(fn, y, bias, w, w.shape[0], n)
    return y[0] if unbatched else y


# XLA:CPU's convolution is slow on tiny feature maps with many channels (ResNet's last stages on small images):
# a 512-channel 3x3 convolution over 1x1 maps trains ~30x slower than the same sum written as slices and a matmul.
SMALL_CONV_OUTPUT = 16  # 2-d convolutions with at most this many output positions per map, on CPU, use _conv_by_taps


def _small_cpu_conv(n: int, groups: int, padded: list[int], eff: list[int], stride: tuple[int, ...]) -> bool:
    positions = math.prod((p - e) // s + 1 for p, e, s in zip(padded, eff, stride, strict=True))
    return n == 2 and groups == 1 and positions <= SMALL_CONV_OUTPUT and jax.default_backend() == "cpu"


def _conv_by_taps(x: jax.Array, w: jax.Array, stride: tuple[int, ...], pads: list[tuple[int, int]],
                  dilation: tuple[int, ...]) -> jax.Array:
    """The convolution as one strided slice of the padded input per kernel tap, stacked, times the weight matrix
    (slices differentiate to pads: no convolution in the backward pass either)."""
    xp = jnp.pad(x, [(0, 0), (0, 0), *pads])
    kernel = w.shape[2:]
    out = [(xp.shape[2 + i] - dilation[i] * (k - 1) - 1) // stride[i] + 1 for i, k in enumerate(kernel)]
    taps = [xp[(slice(None), slice(None), *(slice(o * d, o * d + s * (m - 1) + 1, s)
                                            for o, d, s, m in zip(offset, dilation, stride, out, strict=True)))]
            for offset in itertools.product(*map(range, kernel))]
    patches = jnp.stack(taps, axis=2).reshape(x.shape[0], x.shape[1] * len(taps), math.prod(out))  # (N, C*taps, P)
    y = jnp.einsum("nkp,ok->nop", patches, w.reshape(w.shape[0], -1).astype(patches.dtype))
    return y.reshape(x.shape[0], w.shape[0], *out)


def conv1d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: _IntOrTuple = 1,
           padding: str | _IntOrTuple = 0, dilation: _IntOrTuple = 1, groups: int = 1) -> jax.Array:
    """1-D convolution over ``(N, C, L)`` or unbatched ``(C, L)`` input; weight ``(out, in/groups, kL)``.

    ``padding`` as in :func:`conv2d`.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.conv1d(jnp.ones((2, 3, 10)), jnp.ones((4, 3, 3)), stride=2).shape
    (2, 4, 4)
    """
    return _convnd(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: _IntOrTuple = 1,
           padding: str | _IntOrTuple = 0, dilation: _IntOrTuple = 1, groups: int = 1) -> jax.Array:
    """2-D convolution (cross-correlation, as in torch) over ``(N, C, H, W)`` or unbatched ``(C, H, W)`` input.

    ``weight`` is ``(out_channels, in_channels / groups, kH, kW)``. ``padding`` is an int, a pair,
    ``'valid'`` (no padding) or ``'same'`` (output size = input size; stride 1 only, the odd extra padding
    goes on the bottom/right as in torch).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.conv2d(jnp.ones((1, 3, 8, 8)), jnp.ones((4, 3, 3, 3)), padding="same").shape
    (1, 4, 8, 8)
    """
    return _convnd(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: _IntOrTuple = 1,
           padding: str | _IntOrTuple = 0, dilation: _IntOrTuple = 1, groups: int = 1) -> jax.Array:
    """3-D convolution over ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; weight ``(out, in/groups, kD, kH, kW)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.conv3d(jnp.ones((1, 2, 4, 5, 6)), jnp.ones((3, 2, 3, 3, 3)), padding=1).shape
    (1, 3, 4, 5, 6)
    """
    return _convnd(3, input, weight, bias, stride, padding, dilation, groups)


def _conv_transposend(n: int, input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None, stride: _IntOrTuple,
                      padding: _IntOrTuple, output_padding: _IntOrTuple, groups: int,
                      dilation: _IntOrTuple) -> jax.Array:
    fn = f"conv_transpose{n}d"
    x, w, unbatched = _prepare(fn, n, input, weight, "(in_channels, out_channels/groups, *kernel_size)")
    if isinstance(padding, str):
        raise ValueError(f"{fn}: padding must be an int or a tuple of ints (transposed convolutions take no "
                         f"padding string), got {padding!r}")
    if groups < 1 or w.shape[0] % groups:
        raise ValueError(f"{fn}: given groups={groups}, expected weight to be divisible by {groups} at "
                         f"dimension 0 (in_channels), but got weight of shape {w.shape}")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"{fn}: given transposed=1, weight of size {w.shape}, expected input of shape "
                         f"{tuple(jnp.shape(input))} to have {w.shape[0]} channels, but got {x.shape[1]} "
                         "channels instead")
    stride, dilation = _ntuple(stride, n, "stride", fn), _ntuple(dilation, n, "dilation", fn)
    pad, out_pad = _ntuple(padding, n, "padding", fn), _ntuple(output_padding, n, "output_padding", fn)
    _check_stride_dilation(fn, stride, dilation)
    if min(pad) < 0 or min(out_pad) < 0:
        raise ValueError(f"{fn}: negative padding is not supported, got padding={pad}, output_padding={out_pad}")
    if any(op >= s and op >= d for op, s, d in zip(out_pad, stride, dilation, strict=True)):
        raise ValueError(f"{fn}: output padding must be smaller than either stride or dilation, but got "
                         f"output_padding={out_pad}, stride={stride}, dilation={dilation}")
    k = w.shape[2:]
    out_size = [(x.shape[2 + i] - 1) * stride[i] - 2 * pad[i] + dilation[i] * (k[i] - 1) + out_pad[i] + 1
                for i in range(n)]
    if min(out_size) <= 0:
        raise ValueError(f"{fn}: given input size per channel: ({' x '.join(map(str, x.shape[2:]))}). Calculated "
                         f"output size per channel: ({' x '.join(map(str, out_size))}). Output size is too small")
    # The gradient of a strided conv: dilate the input by the stride, pad by d*(k-1)-p (negative pads crop),
    # and correlate with the spatially flipped kernel, regrouped from (in, out/g, *k) to (out, in/g, *k).
    cin, cout_g = w.shape[0], w.shape[1]
    w = w.reshape((groups, cin // groups, cout_g) + k)
    w = jnp.swapaxes(w, 1, 2).reshape((groups * cout_g, cin // groups) + k)
    w = jnp.flip(w, axis=tuple(range(2, n + 2)))
    pads = [(dilation[i] * (k[i] - 1) - pad[i], dilation[i] * (k[i] - 1) - pad[i] + out_pad[i]) for i in range(n)]
    y = lax.conv_general_dilated(x, w, window_strides=(1,) * n, padding=pads, lhs_dilation=stride,
                                 rhs_dilation=dilation, dimension_numbers=_SPEC[n], feature_group_count=groups)
    y = _add_bias(fn, y, bias, jnp.asarray(weight), groups * cout_g, n)
    return y[0] if unbatched else y


def conv_transpose1d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: _IntOrTuple = 1,
                     padding: _IntOrTuple = 0, output_padding: _IntOrTuple = 0, groups: int = 1,
                     dilation: _IntOrTuple = 1) -> jax.Array:
    """1-D transposed convolution over ``(N, C, L)`` or ``(C, L)``; weight ``(in, out/groups, kL)``.

    Output length ``(L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.conv_transpose1d(jnp.ones((1, 3, 5)), jnp.ones((3, 2, 3)), stride=2, output_padding=1).shape
    (1, 2, 12)
    """
    return _conv_transposend(1, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose2d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: _IntOrTuple = 1,
                     padding: _IntOrTuple = 0, output_padding: _IntOrTuple = 0, groups: int = 1,
                     dilation: _IntOrTuple = 1) -> jax.Array:
    """2-D transposed convolution over ``(N, C, H, W)`` or ``(C, H, W)``; weight ``(in, out/groups, kH, kW)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.conv_transpose2d(jnp.ones((1, 4, 5, 5)), jnp.ones((4, 2, 3, 3)), stride=2, padding=1).shape
    (1, 2, 9, 9)
    """
    return _conv_transposend(2, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose3d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: _IntOrTuple = 1,
                     padding: _IntOrTuple = 0, output_padding: _IntOrTuple = 0, groups: int = 1,
                     dilation: _IntOrTuple = 1) -> jax.Array:
    """3-D transposed convolution over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; weight ``(in, out/groups, kD, kH, kW)``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.conv_transpose3d(jnp.ones((1, 2, 3, 3, 3)), jnp.ones((2, 1, 2, 2, 2)), stride=2).shape
    (1, 1, 6, 6, 6)
    """
    return _conv_transposend(3, input, weight, bias, stride, padding, output_padding, groups, dilation)


def _block_args(fn: str, kernel_size: _IntOrTuple, dilation: _IntOrTuple, padding: _IntOrTuple,
                stride: _IntOrTuple) -> tuple[tuple[int, int], ...]:
    k, d = _ntuple(kernel_size, 2, "kernel_size", fn), _ntuple(dilation, 2, "dilation", fn)
    p, s = _ntuple(padding, 2, "padding", fn), _ntuple(stride, 2, "stride", fn)
    _positive(fn, kernel_size=k, dilation=d, stride=s)
    if min(p) < 0:
        raise ValueError(f"{fn}: padding must be non-negative, got padding={p}")
    return k, d, p, s


def _blocks(fn: str, size: Sequence[int], k: tuple, d: tuple, p: tuple, s: tuple) -> tuple[int, int]:
    blocks = tuple((size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2))
    if min(blocks) < 1:
        raise ValueError(f"{fn}: given input with spatial size {tuple(size)}, kernel_size={k}, dilation={d}, "
                         f"padding={p}, calculated shape of the array of sliding blocks as {blocks}, but its "
                         "components must be at least one.")
    return blocks


def _unfold4d(x: jax.Array, k: tuple, d: tuple, p: tuple, s: tuple) -> jax.Array:
    # One strided slice per kernel offset (a patch-extracting convolution would multiply every input by the
    # zeros of its one-hot kernel, spreading a NaN or inf into other blocks). Rows come out channel-major,
    # (C, kH, kW) flattened, exactly torch's im2col order.
    x = jnp.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    out = [(x.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2)]
    cols = [x[:, :, i * d[0]:i * d[0] + (out[0] - 1) * s[0] + 1:s[0], j * d[1]:j * d[1] + (out[1] - 1) * s[1] + 1:s[1]]
            for i in range(k[0]) for j in range(k[1])]
    y = jnp.stack(cols, axis=2)  # (N, C, kH * kW, outH, outW)
    return y.reshape(x.shape[0], x.shape[1] * k[0] * k[1], out[0] * out[1])


def unfold(input: ArrayLike, kernel_size: _IntOrTuple, dilation: _IntOrTuple = 1, padding: _IntOrTuple = 0,
           stride: _IntOrTuple = 1) -> jax.Array:
    """Extract sliding local blocks: ``(N, C, H, W) -> (N, C * kH * kW, L)`` (or unbatched ``(C, H, W)``).

    ``L`` is the number of block positions; rows are ordered channel-major, as in torch's ``im2col``.

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.unfold(jnp.ones((2, 3, 5, 6)), kernel_size=(2, 3)).shape
    (2, 18, 16)
    """
    fn = "unfold"
    x = jnp.asarray(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: expected 3D (unbatched) or 4D (batched) input, got input of shape {x.shape}")
    k, d, p, s = _block_args(fn, kernel_size, dilation, padding, stride)
    unbatched = x.ndim == 3
    x = x[None] if unbatched else x
    _blocks(fn, x.shape[2:], k, d, p, s)
    if x.shape[0] == 0 or x.shape[1] == 0:
        blocks = _blocks(fn, x.shape[2:], k, d, p, s)
        y = jnp.zeros((x.shape[0], x.shape[1] * math.prod(k), math.prod(blocks)), x.dtype)
    else:
        y = _unfold4d(x, k, d, p, s)
    return y[0] if unbatched else y


def fold(input: ArrayLike, output_size: _IntOrTuple, kernel_size: _IntOrTuple, dilation: _IntOrTuple = 1,
         padding: _IntOrTuple = 0, stride: _IntOrTuple = 1) -> jax.Array:
    """Combine sliding blocks into a tensor, summing overlaps: ``(N, C * kH * kW, L) -> (N, C, *output_size)``.

    The adjoint of :func:`unfold` (unbatched ``(C * kH * kW, L)`` works too).

    >>> import jnn.functional as F, jax.numpy as jnp
    >>> F.fold(jnp.ones((1, 4, 9)), output_size=4, kernel_size=2, stride=1)[0, 0].tolist()[1]
    [2.0, 4.0, 4.0, 2.0]
    """
    fn = "fold"
    x = jnp.asarray(input)
    if x.ndim not in (2, 3):
        raise ValueError(f"{fn}: expected 2D (unbatched) or 3D (batched) input, got input of shape {x.shape}")
    out = _ntuple(output_size, 2, "output_size", fn)
    k, d, p, s = _block_args(fn, kernel_size, dilation, padding, stride)
    unbatched = x.ndim == 2
    x = x[None] if unbatched else x
    kk = math.prod(k)
    if x.shape[1] % kk:
        raise ValueError(f"{fn}: expected size of input's dimension 1 to be divisible by the product of "
                         f"kernel_size, but got input.size(1)={x.shape[1]} and kernel_size={k}")
    blocks = _blocks(fn, out, k, d, p, s)
    if x.shape[2] != math.prod(blocks):
        raise ValueError(f"{fn}: given output_size={out}, kernel_size={k}, dilation={d}, padding={p}, "
                         f"stride={s}, expected size of input's dimension 2 to match the calculated number of "
                         f"sliding blocks {blocks[0]} * {blocks[1]} = {math.prod(blocks)}, but got "
                         f"input.size(2)={x.shape[2]}.")
    n, c = x.shape[0], x.shape[1] // kk
    if n == 0 or c == 0:
        y = jnp.zeros((n, c) + out, x.dtype)
    else:
        # fold is linear and the transpose of unfold: let JAX derive it (a scatter-add, jit/grad friendly)
        spec = jax.ShapeDtypeStruct((n, c) + out, x.dtype)
        (y,) = jax.linear_transpose(lambda v: _unfold4d(v, k, d, p, s), spec)(x)
    return y[0] if unbatched else y
