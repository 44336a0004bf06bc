"""Parameter groups and weight-decay masks for optax, selected by state_dict names.

The optimizers themselves are optax's (``optax.sgd``, ``optax.adamw``, ...). This module adds what a PyTorch
user builds with ``torch.optim`` parameter groups: different hyperparameters for different parts of a model,
and no weight decay on biases and normalisation weights. Both work on the flat dicts that :func:`jnn.split`
returns (and on any pytree: nested keys are joined with ``.``, as in a ``state_dict``).

>>> import jax, jax.numpy as jnp, optax, jnn
>>> net = jnn.Sequential(jnn.Linear(3, 4), jnn.LayerNorm(4), jnn.Linear(4, 2))
>>> apply, params, buffers = jnn.split(net)
>>> optimizer = jnn.optim.param_groups(
...     optax.adamw, [{"params": "0.*", "learning_rate": 1e-4}],
...     learning_rate=1e-3, weight_decay=0.01, mask=jnn.optim.decay_mask)
>>> opt_state = optimizer.init(params)
>>> grads = jax.tree_util.tree_map(jnp.ones_like, params)
>>> updates, opt_state = optimizer.update(grads, opt_state, params)
>>> round(float(updates["0.bias"][0]), 6), round(float(updates["2.bias"][0]), 6)
(-0.0001, -0.001)
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Mapping, Sequence, Set
from typing import Any

import jax
import optax

__all__ = ["param_groups", "decay_mask", "leaf_names", "make_train_step"]

DEFAULT_GROUP = "default"


def leaf_names(tree: Any) -> list[str]:
    """The state_dict-style name of every leaf of ``tree``, in leaf order (nested keys joined with ``.``).

    >>> import jnn
    >>> leaf_names({"fc.weight": 1, "fc.bias": 2})
    ['fc.bias', 'fc.weight']
    >>> leaf_names({"encoder": {"layers": [{"weight": 1}]}})
    ['encoder.layers.0.weight']
    """
    paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [jax.tree_util.keystr(path, simple=True, separator=".") for path, _ in paths]


def _matcher(selector: Any, where: str) -> tuple[Callable[[str, Any], bool], list[str]]:
    """A predicate over (name, array) for one selector, and the glob patterns it holds (to report unused ones)."""
    if isinstance(selector, str):
        patterns = [selector]
    elif callable(selector):
        return (lambda name, value: bool(selector(name, value))), []
    elif isinstance(selector, (Sequence, Set)) and selector and all(isinstance(p, str) for p in selector):
        patterns = sorted(selector) if isinstance(selector, Set) else list(selector)
    else:
        raise TypeError(
            f"{where}: 'params' must be a glob pattern over state_dict names (e.g. 'backbone.*'), a non-empty "
            f"list of names or patterns, or a predicate f(name, array) -> bool; got {selector!r}")
    return (lambda name, _: any(fnmatch.fnmatchcase(name, p) for p in patterns)), patterns


def _check_hyperparameters(factory: Callable, names: Sequence[str], where: str) -> None:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return
    unknown = [n for n in names if n not in signature.parameters]
    if unknown:
        hint = " (optax spells torch's 'lr' as 'learning_rate')" if "lr" in unknown else ""
        raise TypeError(
            f"{where}: {getattr(factory, '__name__', factory)!s} takes no hyperparameter(s) {unknown}{hint}; "
            f"it takes {list(signature.parameters)}")


def _accepted(factory: Callable, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters that ``factory`` takes (all of them if its signature cannot be read)."""
    try:
        accepted = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return dict(hyperparameters)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        return dict(hyperparameters)
    return {k: v for k, v in hyperparameters.items() if k in accepted}


def param_groups(
    optimizer: Callable[..., optax.GradientTransformation],
    groups: Sequence[Mapping[str, Any]],
    **defaults: Any,
) -> optax.GradientTransformation:
    """torch.optim parameter groups for optax: ``optimizer(**{**defaults, **group})`` for each group's parameters.

    ``optimizer`` is an optax factory (``optax.adamw``, ``optax.sgd``, or your own function returning a
    ``GradientTransformation``). Each group is a dict with ``"params"`` — a glob over state_dict names
    (``"backbone.*"``), a list of names or globs, or a predicate ``f(name, array) -> bool`` — and the
    hyperparameters that differ from ``defaults``. A group may also give its own ``"optimizer"``: another
    factory (called with its group's hyperparameters and those of the ``defaults`` it takes), or a ready
    ``GradientTransformation`` (e.g. ``optax.set_to_zero()`` to freeze what it selects), and a ``"name"``
    (its key in the optimizer state; default ``"group0"``, ``"group1"``, ...).
    Parameters that no group selects are optimised with ``optimizer(**defaults)`` (state key ``"default"``).

    Like torch, a parameter may belong to only one group: a name selected by two groups, or a group (or one of
    its patterns) that selects nothing, raises ``ValueError`` when the optimizer is initialised.

    >>> import jax.numpy as jnp, optax, jnn
    >>> params = {"backbone.weight": jnp.ones((2, 2)), "head.weight": jnp.ones((1, 2)), "head.bias": jnp.ones(1)}
    >>> optimizer = jnn.optim.param_groups(optax.sgd, [{"params": "backbone.*", "learning_rate": 0.01}],
    ...                                    learning_rate=0.1)
    >>> updates, _ = optimizer.update(params, optimizer.init(params))
    >>> round(float(updates["backbone.weight"][0, 0]), 6), round(float(updates["head.bias"][0]), 6)
    (-0.01, -0.1)
    """
    if not callable(optimizer):
        raise TypeError(f"jnn.optim.param_groups: optimizer must be an optax factory such as optax.adamw, "
                        f"got {optimizer!r}")
    if isinstance(groups, Mapping) or not isinstance(groups, Sequence):
        raise TypeError("jnn.optim.param_groups: groups must be a list of dicts like "
                        f"[{{'params': 'backbone.*', 'learning_rate': 1e-4}}], got {type(groups).__name__}")
    _check_hyperparameters(optimizer, list(defaults), "jnn.optim.param_groups defaults")
    transforms: dict[str, optax.GradientTransformation] = {}
    matchers: list[tuple[str, Callable[[str, Any], bool], list[str]]] = []
    for index, group in enumerate(groups):
        where = f"jnn.optim.param_groups group {index}"
        if not isinstance(group, Mapping) or "params" not in group:
            raise TypeError(f"{where}: expected a dict with a 'params' entry, got {group!r}")
        hyper = {k: v for k, v in group.items() if k not in ("params", "name", "optimizer")}
        label = group.get("name", f"group{index}")
        if not isinstance(label, str) or label in transforms or label == DEFAULT_GROUP:
            raise ValueError(f"{where}: name must be a unique string other than {DEFAULT_GROUP!r}, got {label!r}")
        factory = group.get("optimizer", optimizer)
        if isinstance(factory, optax.GradientTransformation):
            if hyper:
                raise TypeError(f"{where}: hyperparameters {list(hyper)} given with a ready GradientTransformation "
                                "as 'optimizer'; pass a factory (e.g. optax.adamw) to set them")
            transforms[label] = factory
        elif callable(factory):
            inherited = defaults if factory is optimizer else _accepted(factory, defaults)
            _check_hyperparameters(factory, [*inherited, *hyper], where)
            transforms[label] = factory(**{**inherited, **hyper})
        else:
            raise TypeError(f"{where}: 'optimizer' must be an optax factory or a GradientTransformation, "
                            f"got {factory!r}")
        matchers.append((label, *_matcher(group["params"], where)))
    transforms[DEFAULT_GROUP] = optimizer(**defaults)

    def labels(tree: Any) -> Any:
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        names = leaf_names(tree)
        chosen = []
        used_patterns: set[str] = set()
        for name, value in zip(names, leaves, strict=True):
            hits = [label for label, match, _ in matchers if match(name, value)]
            if len(hits) > 1:
                raise ValueError(f"jnn.optim.param_groups: parameter {name!r} is selected by groups {hits}; "
                                 "a parameter may appear in only one group")
            chosen.append(hits[0] if hits else DEFAULT_GROUP)
            for _, _, patterns in matchers:
                used_patterns.update(p for p in patterns if fnmatch.fnmatchcase(name, p))
        for label, _, patterns in matchers:
            unused = [p for p in patterns if p not in used_patterns]
            if label not in chosen or unused:
                raise ValueError(
                    f"jnn.optim.param_groups: group {label!r} selects no parameters"
                    f"{f' (no name matches {unused})' if unused else ''}; the names are {names[:8]}"
                    f"{'...' if len(names) > 8 else ''}")
        return jax.tree_util.tree_unflatten(treedef, chosen)

    return optax.multi_transform(transforms, labels)


def decay_mask(
    params: Any, *, include: Sequence[str] = (), exclude: Sequence[str] = (), min_ndim: int = 2
) -> Any:
    """Which parameters get weight decay: a pytree of bools shaped like ``params``, for ``optax.adamw(mask=...)``.

    The usual convention: decay weight matrices and kernels (``ndim >= min_ndim``), not biases or
    normalisation weights; the stacked axis of a ``jnn.split(..., stacked=...)`` entry (``layers.*.bias``)
    does not count. Names matching a glob in ``include`` are always decayed, names matching one in
    ``exclude`` never (a name in both raises ``ValueError``). Pass it as the mask itself, or with
    ``functools.partial`` to set the options: ``optax.adamw(1e-3, mask=jnn.optim.decay_mask)``.

    >>> import jnn
    >>> apply, params, buffers = jnn.split(jnn.Sequential(jnn.Linear(3, 4), jnn.BatchNorm1d(4)))
    >>> decay_mask(params)
    {'0.bias': False, '0.weight': True, '1.bias': False, '1.weight': False}
    >>> decay_mask(params, exclude=["0.weight"], include=["1.*"])
    {'0.bias': False, '0.weight': False, '1.bias': True, '1.weight': True}
    """
    for what, patterns in (("include", include), ("exclude", exclude)):
        if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
            raise TypeError(f"jnn.optim.decay_mask: {what} must be a list of glob patterns, got {patterns!r}")

    def decays(path: Any, value: Any) -> bool:
        name = jax.tree_util.keystr(path, simple=True, separator=".")
        included = any(fnmatch.fnmatchcase(name, p) for p in include)
        excluded = any(fnmatch.fnmatchcase(name, p) for p in exclude)
        if included and excluded:
            raise ValueError(f"jnn.optim.decay_mask: {name!r} matches both include and exclude")
        # A stacked entry of jnn.split(..., stacked=...) ('layers.*.bias') has one more axis per '*' in its name.
        return included or (not excluded and jax.numpy.ndim(value) - name.split(".").count("*") >= min_ndim)

    return jax.tree_util.tree_map_with_path(decays, params)


def make_train_step(
    apply: Callable[..., tuple[Any, dict]],
    optimizer: optax.GradientTransformation,
    loss_fn: Callable[..., jax.Array],
    *,
    train: bool | None = True,
    donate: bool = True,
) -> Callable[..., tuple[dict, dict, Any, jax.Array]]:
    """The canonical jitted training step for a split model.

    Returns ``step(params, buffers, opt_state, x, *targets, key=None) -> (params, buffers, opt_state, loss)``:
    the loss is ``loss_fn(apply(params, buffers, x, train=train, key=key)[0], *targets)``, the new buffers
    (BatchNorm statistics) come back with it, and ``optimizer`` updates ``params``. ``key`` is that step's
    randomness for Dropout: pass a fresh one each step, e.g. ``jax.random.fold_in(key, step)``.
    ``train=None`` keeps the modes the model had when split (a frozen backbone left in eval mode).
    With ``donate`` (the default) the step reuses the memory of the params, buffers and optimizer state it is
    given, which are deleted — the arrays of the module that was split included; keep only what it returns.

    >>> import jax, jax.numpy as jnp, optax, jnn
    >>> apply, params, buffers = jnn.split(jnn.Sequential(jnn.Linear(3, 4), jnn.BatchNorm1d(4), jnn.Linear(4, 1)))
    >>> optimizer = optax.sgd(0.1)
    >>> step = jnn.optim.make_train_step(apply, optimizer, jnn.functional.mse_loss)
    >>> x, y = jnp.ones((8, 3)), jnp.zeros((8, 1))
    >>> params, buffers, opt_state, loss = step(params, buffers, optimizer.init(params), x, y)
    >>> int(buffers["1.num_batches_tracked"]), loss.shape
    (1, ())
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"jnn.optim.make_train_step: optimizer must be an optax GradientTransformation such as "
                        f"optax.adamw(1e-3), got {optimizer!r}")
    if not callable(apply) or not callable(loss_fn):
        raise TypeError("jnn.optim.make_train_step: apply (from jnn.split) and loss_fn(output, *targets) must be "
                        "callable")

    def step(params: dict, buffers: dict, opt_state: Any, x: Any, *targets: Any,
             key: jax.Array | None = None) -> tuple[dict, dict, Any, jax.Array]:
        def loss_and_buffers(params: dict) -> tuple[jax.Array, dict]:
            output, new_buffers = apply(params, buffers, x, train=train, key=key)
            return loss_fn(output, *targets), new_buffers

        (loss, new_buffers), grads = jax.value_and_grad(loss_and_buffers, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_buffers, opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1, 2) if donate else ())
