"""``torch.nn.utils.convert_parameters``: parameters to one flat vector and back.

torch's ``vector_to_parameters`` writes into the parameters in place; here it returns new arrays in the
structure it was given (a list for a list or generator, a dict with the same keys for a dict, any pytree).
The order is the pytree's (``jax.tree.leaves``): for a list or ``net.parameters()`` torch's order; for a dict,
such as :func:`jnn.split`'s flat ``params``, JAX's sorted-key order, which is what a dict keeps through ``jax.jit``
(insertion order does not survive it), so a vector made eagerly and one made under ``jit`` agree.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _flatten(parameters: Any, who: str) -> tuple[list[jax.Array], Any]:
    """The arrays in order and a function rebuilding the same structure from new arrays."""
    if not isinstance(parameters, (list, tuple, dict)) and not hasattr(parameters, "__array__") and \
            hasattr(parameters, "__iter__"):
        parameters = list(parameters)  # a generator such as net.parameters()
    leaves, treedef = jax.tree.flatten(parameters)
    if not leaves:
        raise ValueError(f"{who}: expected at least one parameter, got none")
    return [jnp.asarray(p) for p in leaves], lambda new: jax.tree.unflatten(treedef, new)


def parameters_to_vector(parameters: Any) -> jax.Array:
    """Concatenate the flattened parameters into one vector.

    >>> import jnn as nn
    >>> from jnn.utils import parameters_to_vector
    >>> parameters_to_vector(nn.Linear(3, 2).parameters()).shape
    (8,)
    """
    leaves, _ = _flatten(parameters, "parameters_to_vector")
    return jnp.concatenate([p.reshape(-1) for p in leaves])


def vector_to_parameters(vec: Any, parameters: Any) -> Any:
    """Slice ``vec`` into arrays shaped like ``parameters``; returns them in ``parameters``' structure.

    >>> import jax.numpy as jnp
    >>> from jnn.utils import vector_to_parameters
    >>> new = vector_to_parameters(jnp.arange(5.0), [jnp.zeros((2, 2)), jnp.zeros(1)])
    >>> new[0].tolist(), new[1].tolist()
    ([[0.0, 1.0], [2.0, 3.0]], [4.0])
    """
    if not isinstance(vec, jax.Array) and not hasattr(vec, "__array__"):
        raise TypeError(f"vector_to_parameters: expected an array, but got: {type(vec).__name__}")
    vec = jnp.asarray(vec)
    leaves, rebuild = _flatten(parameters, "vector_to_parameters")
    total = sum(p.size for p in leaves)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: expected a vector of {total} elements (the parameters' total size), "
                         f"got shape {vec.shape}")
    new, start = [], 0
    for p in leaves:
        new.append(vec[start:start + p.size].reshape(p.shape))
        start += p.size
    return rebuild(new)
