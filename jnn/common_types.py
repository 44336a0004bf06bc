"""Type aliases for layer arguments, named as in ``torch.nn.common_types`` (``_size_2_t`` & co.).

An argument that is "a scalar or a tuple" (kernel sizes, strides, paddings, ratios) is typed with these, so
model code written against torch imports them unchanged:

>>> from jnn.common_types import _size_2_t
>>> def kernel(size: _size_2_t) -> tuple[int, int]:
...     return (size, size) if isinstance(size, int) else tuple(size)
>>> kernel(3)
(3, 3)
"""

from typing import TypeAlias, TypeVar

import jax

T = TypeVar("T")

# A value, or a tuple of such values (of any length, or of the length the suffix names).
_scalar_or_tuple_any_t: TypeAlias = T | tuple[T, ...]
_scalar_or_tuple_1_t: TypeAlias = T | tuple[T]
_scalar_or_tuple_2_t: TypeAlias = T | tuple[T, T]
_scalar_or_tuple_3_t: TypeAlias = T | tuple[T, T, T]
_scalar_or_tuple_4_t: TypeAlias = T | tuple[T, T, T, T]
_scalar_or_tuple_5_t: TypeAlias = T | tuple[T, T, T, T, T]
_scalar_or_tuple_6_t: TypeAlias = T | tuple[T, T, T, T, T, T]

# Sizes (kernel sizes, strides, paddings, output sizes).
_size_any_t: TypeAlias = _scalar_or_tuple_any_t[int]
_size_1_t: TypeAlias = _scalar_or_tuple_1_t[int]
_size_2_t: TypeAlias = _scalar_or_tuple_2_t[int]
_size_3_t: TypeAlias = _scalar_or_tuple_3_t[int]
_size_4_t: TypeAlias = _scalar_or_tuple_4_t[int]
_size_5_t: TypeAlias = _scalar_or_tuple_5_t[int]
_size_6_t: TypeAlias = _scalar_or_tuple_6_t[int]

# Sizes where None keeps the input's size (adaptive pooling).
_size_any_opt_t: TypeAlias = _scalar_or_tuple_any_t[int | None]
_size_2_opt_t: TypeAlias = _scalar_or_tuple_2_t[int | None]
_size_3_opt_t: TypeAlias = _scalar_or_tuple_3_t[int | None]

# Scale factors per dimension (upsampling).
_ratio_2_t: TypeAlias = _scalar_or_tuple_2_t[float]
_ratio_3_t: TypeAlias = _scalar_or_tuple_3_t[float]
_ratio_any_t: TypeAlias = _scalar_or_tuple_any_t[float]

# Arrays (torch's Tensor is a jax.Array here).
_tensor_list_t: TypeAlias = _scalar_or_tuple_any_t[jax.Array]
_maybe_indices_t: TypeAlias = _scalar_or_tuple_2_t[jax.Array]
