"""Pruning (``torch.nn.utils.prune``): mask a parameter's entries with ``<name>_orig`` and a ``<name>_mask`` buffer.

As in PyTorch, pruning ``weight`` moves it to the parameter ``weight_orig``, adds the buffer ``weight_mask`` and
makes ``module.weight`` read ``weight_orig * weight_mask`` (jnn computes it on access; PyTorch stores it before each
forward). Masks are computed eagerly, with PyTorch's rules: the deterministic methods give PyTorch's masks, the random
ones draw from jnn's random stream (``jnn.manual_seed``). Pruning again combines the masks (a
:class:`PruningContainer`); :func:`remove` makes the pruned weight permanent.

>>> import jax.numpy as jnp, jnn as nn
>>> from jnn.utils import prune
>>> m = prune.l1_unstructured(nn.Linear(4, 3), name="weight", amount=0.5)
>>> list(m.state_dict())
['bias', 'weight_orig', 'weight_mask']
>>> int(m.weight_mask.sum()), int((m.weight != 0).sum())
(6, 6)
>>> m = prune.remove(m, "weight")
>>> list(m.state_dict())  # as in torch, the parameter comes back last
['bias', 'weight']
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnn import random
from jnn.modules.module import Module, Parameter
from jnn.utils.parametrize import _add_attribute_hook, _attribute_hooks, _remove_attribute_hook

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
           "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured", "l1_unstructured",
           "random_structured", "ln_structured", "global_unstructured", "custom_from_mask", "remove", "is_pruned"]


class BasePruningMethod(ABC):
    """A pruning method: ``compute_mask(t, default_mask)`` gives the new mask; it is also the module's forward
    pre-hook that makes ``<name>`` read ``<name>_orig * <name>_mask``."""

    PRUNING_TYPE: str
    _tensor_name: str | None = None

    @property
    def _jnn_attribute(self) -> str | None:
        return self._tensor_name

    def __call__(self, module: Module, inputs: Any) -> None:
        """Nothing to do before forward: ``module.<name>`` is computed when forward reads it."""
        return None

    @abstractmethod
    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        """The mask for ``t`` (a numpy array), given the mask already applied (``default_mask``)."""

    def apply_mask(self, module: Module) -> jax.Array:
        """``<name>_orig * <name>_mask``: the pruned tensor."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned")
        orig = getattr(module, self._tensor_name + "_orig")
        return getattr(module, self._tensor_name + "_mask").astype(orig.dtype) * orig

    _jnn_compute = apply_mask

    @classmethod
    def apply(cls, module: Module, name: str, *args: Any, importance_scores: Any = None, **kwargs: Any) -> Any:
        """Prune ``module.<name>`` with a new ``cls(*args, **kwargs)``, combined with earlier pruning of it."""
        old = _attribute_hooks(module).get(name)
        if old is not None and not isinstance(old, BasePruningMethod):
            raise ValueError(f"prune: '{name}' of {type(module).__name__} is computed by {type(old).__name__}; only "
                             "a parameter can be pruned")
        method = cls(*args, **kwargs)
        method._tensor_name = name
        if isinstance(old, PruningContainer):
            method = PruningContainer(*old, method)
        elif old is not None:
            method = PruningContainer(old, method)
        # the tensor as forward sees it (already pruned, if it was): what the new mask is computed from by default
        current = getattr(module, name) if old is not None else module._parameters.get(name)
        if current is None:
            raise ValueError(f"prune: {type(module).__name__} has no parameter named '{name}'")
        scores = current if importance_scores is None else importance_scores
        if tuple(np.shape(scores)) != tuple(current.shape):
            raise ValueError(f"importance_scores should have the same shape as parameter {name} of "
                             f"{type(module).__name__}, got {tuple(np.shape(scores))} vs {tuple(current.shape)}")
        if old is None:
            default_mask = np.ones(current.shape, np.dtype(current.dtype))
        else:
            default_mask = np.asarray(getattr(module, name + "_mask"))
        mask = method.compute_mask(np.asarray(scores), default_mask=default_mask)
        if old is None:
            requires_grad = name not in module._frozen_parameters
            delattr(module, name)
            module.register_parameter(name + "_orig", Parameter(current, requires_grad=requires_grad))
        else:
            _remove_attribute_hook(module, old)
        module.register_buffer(name + "_mask", jnp.asarray(mask, dtype=current.dtype))
        _add_attribute_hook(module, method)
        return method

    def prune(self, t: Any, default_mask: Any = None, importance_scores: Any = None) -> jax.Array:
        """``t`` times its mask (``default_mask``: the mask already applied; ``importance_scores``: what the
        mask is computed from, default ``t``)."""
        scores = t if importance_scores is None else importance_scores
        if tuple(np.shape(scores)) != tuple(np.shape(t)):
            raise ValueError(f"importance_scores should have the same shape as tensor t, got "
                             f"{tuple(np.shape(scores))} vs {tuple(np.shape(t))}")
        default_mask = np.ones(np.shape(t), np.asarray(t).dtype) if default_mask is None else default_mask
        return jnp.asarray(t) * jnp.asarray(self.compute_mask(np.asarray(scores), np.asarray(default_mask)))

    def remove(self, module: Module) -> None:
        """Make the pruning permanent: ``<name>`` becomes a parameter holding the pruned tensor."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned before pruning can be removed")
        name = self._tensor_name
        weight = self.apply_mask(module)
        requires_grad = name + "_orig" not in module._frozen_parameters
        _remove_attribute_hook(module, self)
        delattr(module, name + "_orig")
        delattr(module, name + "_mask")
        module.register_parameter(name, Parameter(weight, requires_grad=requires_grad))


class PruningContainer(BasePruningMethod):
    """Successive pruning of one tensor: each new method prunes what the earlier ones left."""

    def __init__(self, *args: Any) -> None:
        self._pruning_methods: tuple[BasePruningMethod, ...] = ()
        if args and isinstance(args[0], BasePruningMethod):
            self._tensor_name = args[0]._tensor_name
        for method in args:
            self.add_pruning_method(method)

    def add_pruning_method(self, method: BasePruningMethod) -> None:
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name != method._tensor_name:
            raise ValueError(f"Can only add pruning methods acting on the parameter named '{self._tensor_name}' to "
                             f"PruningContainer {self}. Found '{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self) -> Any:
        return iter(self._pruning_methods)

    def __getitem__(self, idx: int) -> BasePruningMethod:
        return self._pruning_methods[idx]

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        """The last method's mask, computed on the entries (unstructured) or channels (structured) that the
        current mask keeps, written into a copy of it."""
        method = self._pruning_methods[-1]
        t, mask = np.asarray(t), np.array(default_mask, dtype=np.asarray(t).dtype)
        if method.PRUNING_TYPE == "unstructured":
            where: Any = mask == 1
        elif method.PRUNING_TYPE == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError('Pruning methods of PRUNING_TYPE "structured" need to have the attribute `dim` '
                                     "defined.")
            dim = method.dim + t.ndim if method.dim < 0 else method.dim
            if dim < 0:
                raise IndexError(f"Index is out of bounds for tensor with dimensions {t.ndim}")
            keep = mask.sum(axis=tuple(d for d in range(t.ndim) if d != dim)) != 0
            where = tuple(keep if d == dim else slice(None) for d in range(t.ndim))
        elif method.PRUNING_TYPE == "global":
            where = tuple(slice(None) for _ in range(t.ndim))
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE}")
        mask[where] = np.asarray(method.compute_mask(t[where], default_mask=mask[where]), dtype=mask.dtype)
        return mask


def _validate_amount_init(amount: Any) -> None:
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral) and not 0.0 <= float(amount) <= 1.0):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _amount_to_prune(amount: Any, size: int) -> int:
    if isinstance(amount, numbers.Integral):
        if amount > size:
            raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={size}")
        return int(amount)
    return round(amount * size)


def _check_structured(t: np.ndarray, dim: int) -> None:
    if t.ndim <= 1:
        raise ValueError(f"Structured pruning can only be applied to multidimensional tensors. Found tensor of shape "
                         f"{t.shape} with {t.ndim} dims")
    if dim >= t.ndim:
        raise IndexError(f"Invalid index {dim} for tensor of size {t.shape}")


def _channel_mask(t: np.ndarray, dim: int, keep: np.ndarray) -> np.ndarray:
    """A mask of ones on the channels ``keep`` (indices or booleans) along ``dim``, zeros elsewhere."""
    mask = np.zeros_like(t)
    mask[tuple(keep if d == dim % t.ndim else slice(None) for d in range(t.ndim))] = 1
    return mask


def _norm(rows: np.ndarray, n: Any) -> np.ndarray:
    """The ``n``-norm of each row, with torch.norm's meaning of ``n`` (a number, inf, -inf, 0, or 'fro')."""
    rows = np.abs(rows.astype(np.float64))
    if n == "fro":
        n = 2
    if n == np.inf:
        return rows.max(axis=1)
    if n == -np.inf:
        return rows.min(axis=1)
    if n == 0:
        return (rows != 0).sum(axis=1).astype(np.float64)
    return (rows ** n).sum(axis=1) ** (1.0 / n)


def _uniform(shape: tuple[int, ...], who: str) -> np.ndarray:
    return np.asarray(jax.random.uniform(random.next_key(who), shape))


class Identity(BasePruningMethod):
    """Prunes nothing: the mask is all ones (useful to have the ``_orig``/``_mask`` layout)."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        return default_mask

    @classmethod
    def apply(cls, module: Module, name: str) -> Any:  # type: ignore[override]
        return super().apply(module, name)


def _zero_lowest(default_mask: Any, amount: float, size: int, scores: Callable[[], np.ndarray]) -> np.ndarray:
    """``default_mask`` with the ``amount`` entries of lowest ``scores()`` (flat, stable order) set to 0; the scores
    are computed (and random ones drawn) only when something is pruned, as in torch."""
    k = _amount_to_prune(amount, size)
    mask = np.array(default_mask)
    if k:
        mask.reshape(-1)[np.argsort(scores(), kind="stable")[:k]] = 0
    return mask


class RandomUnstructured(BasePruningMethod):
    """Prunes ``amount`` (a fraction, or a count) of the entries, chosen at random."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount: float) -> None:
        _validate_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        return _zero_lowest(default_mask, self.amount, t.size,
                            lambda: -_uniform((t.size,), "prune.random_unstructured"))

    @classmethod
    def apply(cls, module: Module, name: str, amount: float) -> Any:  # type: ignore[override]
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    """Prunes ``amount`` (a fraction, or a count) of the entries with the smallest absolute value."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount: float) -> None:
        _validate_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        return _zero_lowest(default_mask, self.amount, t.size, lambda: np.abs(t).reshape(-1))

    @classmethod
    def apply(cls, module: Module, name: str, amount: float, importance_scores: Any = None) -> Any:  # type: ignore[override]
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    """Prunes ``amount`` of the channels along ``dim``, chosen at random."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: float, dim: int = -1) -> None:
        _validate_amount_init(amount)
        self.amount = amount
        self.dim = dim

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        _check_structured(t, self.dim)
        channels = t.shape[self.dim]
        k = _amount_to_prune(self.amount, channels)
        if not k:
            return default_mask
        prob = _uniform((channels,), "prune.random_structured")
        threshold = np.sort(prob)[k - 1]  # the k-th smallest: channels above it are kept
        return _channel_mask(t, self.dim, prob > threshold) * np.asarray(default_mask, dtype=t.dtype)

    @classmethod
    def apply(cls, module: Module, name: str, amount: float, dim: int = -1) -> Any:  # type: ignore[override]
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    """Prunes ``amount`` of the channels along ``dim`` with the smallest ``n``-norm."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: float, n: Any, dim: int = -1) -> None:
        _validate_amount_init(amount)
        self.amount = amount
        self.n = n
        self.dim = dim

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        _check_structured(t, self.dim)
        channels = t.shape[self.dim]
        k = _amount_to_prune(self.amount, channels)
        if not k:
            return default_mask
        norm = _norm(np.moveaxis(t, self.dim, 0).reshape(channels, -1), self.n)
        keep = np.argsort(-norm, kind="stable")[:channels - k]
        return _channel_mask(t, self.dim, keep) * np.asarray(default_mask, dtype=t.dtype)

    @classmethod
    def apply(cls, module: Module, name: str, amount: float, n: Any, dim: int,  # type: ignore[override]
              importance_scores: Any = None) -> Any:
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prunes with a given mask (multiplied into the current one)."""

    PRUNING_TYPE = "global"

    def __init__(self, mask: Any) -> None:
        self.mask = np.asarray(mask)

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        default_mask = np.asarray(default_mask)
        if default_mask.shape != self.mask.shape:
            raise ValueError(f"custom_from_mask: the mask has shape {self.mask.shape}, the tensor {default_mask.shape}")
        return default_mask * self.mask.astype(default_mask.dtype)

    @classmethod
    def apply(cls, module: Module, name: str, mask: Any) -> Any:  # type: ignore[override]
        return super().apply(module, name, mask=mask)


def identity(module: Module, name: str) -> Module:
    """Add the pruning layout (``<name>_orig``, an all-ones ``<name>_mask``) without pruning anything."""
    Identity.apply(module, name)
    return module


def random_unstructured(module: Module, name: str, amount: float) -> Module:
    """Prune ``amount`` (fraction or count) of ``module.<name>``'s entries at random (jnn's random stream)."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module: Module, name: str, amount: float, importance_scores: Any = None) -> Module:
    """Prune ``amount`` (fraction or count) of ``module.<name>``'s entries with the smallest absolute value (of
    ``importance_scores`` if given)."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module: Module, name: str, amount: float, dim: int) -> Module:
    """Prune ``amount`` of the channels of ``module.<name>`` along ``dim``, at random."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module: Module, name: str, amount: float, n: Any, dim: int, importance_scores: Any = None) -> Module:
    """Prune ``amount`` of the channels of ``module.<name>`` along ``dim`` with the smallest ``n``-norm
    (``n`` as in ``torch.norm``: an int, ``float('inf')``, ``'fro'``...)."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters: Iterable[tuple[Module, str]], pruning_method: type, importance_scores: Any = None,
                        **kwargs: Any) -> None:
    """Prune ``(module, name)`` pairs together: ``pruning_method(**kwargs)`` (an unstructured method, e.g.
    ``L1Unstructured`` with ``amount=``) sees all their entries as one vector.

    >>> import jnn as nn
    >>> from jnn.utils import prune
    >>> net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    >>> prune.global_unstructured([(net[0], "weight"), (net[1], "weight")], prune.L1Unstructured, amount=12)
    >>> int(net[0].weight_mask.sum() + net[1].weight_mask.sum())
    12
    """
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = {} if importance_scores is None else importance_scores
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    method = pruning_method(**kwargs)
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(f'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
                        f"{pruning_method} of type {method.PRUNING_TYPE}")
    tensors = [getattr(module, name) for module, name in parameters]
    scores = np.concatenate([np.asarray(importance_scores.get((module, name), t)).reshape(-1)
                             for (module, name), t in zip(parameters, tensors, strict=True)])
    default = np.concatenate([np.asarray(getattr(module, name + "_mask")).reshape(-1)
                              if name + "_mask" in module._buffers else np.ones(t.size, np.asarray(t).dtype)
                              for (module, name), t in zip(parameters, tensors, strict=True)])
    method._tensor_name = "temp"
    container = PruningContainer(method)
    mask = container.compute_mask(scores, default)
    start = 0
    for (module, name), t in zip(parameters, tensors, strict=True):
        custom_from_mask(module, name, mask=mask[start:start + t.size].reshape(t.shape))
        start += t.size


def custom_from_mask(module: Module, name: str, mask: Any) -> Module:
    """Prune ``module.<name>`` with ``mask`` (ones keep, zeros prune)."""
    CustomFromMask.apply(module, name, mask)
    return module


def remove(module: Module, name: str) -> Module:
    """Make the pruning of ``module.<name>`` permanent: it becomes a plain parameter with the pruned values, and
    ``<name>_orig``/``<name>_mask`` go away."""
    hook = _attribute_hooks(module).get(name)
    if not isinstance(hook, BasePruningMethod):
        raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")
    hook.remove(module)
    return module


def is_pruned(module: Module) -> bool:
    """Whether ``module`` or any submodule has a pruned tensor."""
    return any(isinstance(hook, BasePruningMethod) for m in module.modules()
               for hook in m.__dict__.get("_forward_pre_hooks", {}).values())
