"""Folding an eval-mode BatchNorm into the convolution or linear layer before it (``torch.nn.utils.fusion``).

>>> import jax.numpy as jnp, jnn as nn
>>> from jnn.utils import fuse_conv_bn_eval
>>> conv, bn = nn.Conv2d(3, 4, 3).eval(), nn.BatchNorm2d(4).eval()
>>> fused = fuse_conv_bn_eval(conv, bn)
>>> x = jnp.ones((1, 3, 5, 5))
>>> bool(jnp.allclose(fused(x), bn(conv(x)), atol=1e-5))
True
"""

from __future__ import annotations

import copy
from typing import TypeVar

import jax
import jax.numpy as jnp

from jnn.modules.batchnorm import _BatchNorm
from jnn.modules.conv import _ConvNd
from jnn.modules.linear import Linear
from jnn.modules.module import Module, Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]

ConvT = TypeVar("ConvT", bound=_ConvNd)
LinearT = TypeVar("LinearT", bound=Linear)


def _check_eval(layer: object, bn: _BatchNorm, who: str) -> None:
    if layer.training or bn.training:
        raise AssertionError(f"{who}: Fusion only for eval! Call .eval() on both modules first.")
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError(f"{who}: bn.running_mean and bn.running_var must not be None (the BatchNorm needs "
                             "track_running_stats=True)")


def _trainable(module: Module, name: str) -> bool:
    return module._parameters.get(name) is not None and name not in module._frozen_parameters


def _assign(fused: Module, layer: Module, weight: jax.Array, bias: jax.Array) -> None:
    """Store the fused arrays; as in torch, a bias the layer did not have is created frozen."""
    fused.weight = Parameter(weight, requires_grad=_trainable(layer, "weight"))
    fused.bias = Parameter(bias, requires_grad=_trainable(layer, "bias"))


def fuse_conv_bn_eval(conv: ConvT, bn: _BatchNorm, transpose: bool = False) -> ConvT:
    """A copy of ``conv`` whose weight and bias include ``bn``'s eval-mode normalization (both in eval mode;
    ``transpose=True`` for a ConvTranspose, whose output channels are weight dim 1)."""
    _check_eval(conv, bn, "fuse_conv_bn_eval")
    fused = copy.deepcopy(conv)
    weight, bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
                                        bn.bias, transpose)
    _assign(fused, conv, weight, bias)
    return fused


def fuse_conv_bn_weights(conv_w: jax.Array, conv_b: jax.Array | None, bn_rm: jax.Array, bn_rv: jax.Array,
                         bn_eps: float, bn_w: jax.Array | None, bn_b: jax.Array | None,
                         transpose: bool = False) -> tuple[jax.Array, jax.Array]:
    """The fused convolution ``(weight, bias)``; weight keeps ``conv_w``'s dtype, bias ``conv_b``'s (or the
    weight's when ``conv_b`` is None). Returns arrays (torch returns Parameters; assign them to a module)."""
    weight_dtype = conv_w.dtype
    bias_dtype = conv_w.dtype if conv_b is None else conv_b.dtype
    conv_b = jnp.zeros_like(bn_rm) if conv_b is None else conv_b
    bn_w = jnp.ones_like(bn_rm) if bn_w is None else bn_w
    bn_b = jnp.zeros_like(bn_rm) if bn_b is None else bn_b
    rsqrt = jax.lax.rsqrt(bn_rv + bn_eps)
    shape = ((1, -1) if transpose else (-1, 1)) + (1,) * (conv_w.ndim - 2)
    weight = (conv_w * (bn_w * rsqrt).reshape(shape)).astype(weight_dtype)
    bias = ((conv_b - bn_rm) * rsqrt * bn_w + bn_b).astype(bias_dtype)
    return weight, bias


def fuse_linear_bn_eval(linear: LinearT, bn: _BatchNorm) -> LinearT:
    """A copy of ``linear`` whose weight and bias include ``bn``'s eval-mode normalization (both in eval mode;
    ``bn.num_features`` must be ``linear.out_features`` or 1)."""
    _check_eval(linear, bn, "fuse_linear_bn_eval")
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise AssertionError(f"To fuse, linear.out_features == bn.num_features or bn.num_features == 1, got "
                             f"linear.out_features={linear.out_features} and bn.num_features={bn.num_features}")
    fused = copy.deepcopy(linear)
    weight, bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps,
                                          bn.weight, bn.bias)
    _assign(fused, linear, weight, bias)
    return fused


def fuse_linear_bn_weights(linear_w: jax.Array, linear_b: jax.Array | None, bn_rm: jax.Array, bn_rv: jax.Array,
                           bn_eps: float, bn_w: jax.Array | None,
                           bn_b: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """The fused linear ``(weight, bias)`` (arrays; torch returns Parameters)."""
    weight_dtype = linear_w.dtype
    bias_dtype = linear_w.dtype if linear_b is None else linear_b.dtype
    linear_b = jnp.zeros_like(bn_rm) if linear_b is None else linear_b
    bn_w = jnp.ones_like(bn_rm) if bn_w is None else bn_w
    bn_b = jnp.zeros_like(bn_rm) if bn_b is None else bn_b
    scale = bn_w * jax.lax.rsqrt(bn_rv + bn_eps)
    weight = linear_w * scale[:, None].astype(weight_dtype)
    bias = ((linear_b - bn_rm) * scale + bn_b).astype(bias_dtype)
    return weight, bias
