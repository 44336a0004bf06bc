"""Shared test helpers: PyTorch is the oracle, so most tests build a torch twin and copy its weights."""

from __future__ import annotations

import collections

import jax
import numpy as np
import torch

import jnn


def torch_state(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """A torch module's state_dict as numpy arrays (what a user gets from a checkpoint)."""
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def copy_torch_weights(jnn_module: jnn.Module, torch_module: torch.nn.Module) -> jnn.Module:
    """Load the torch twin's state_dict into the jnn module with strict=True."""
    result = jnn_module.load_state_dict(torch_state(torch_module))
    assert not result.missing_keys and not result.unexpected_keys
    return jnn_module


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().cpu().numpy()
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol, atol=atol)


def assert_state_close(jnn_module: jnn.Module, torch_module: torch.nn.Module, **tol) -> None:
    """Same keys, in the same order, with the same values (buffers included)."""
    ours, theirs = jnn_module.state_dict(), torch_state(torch_module)
    assert list(ours) == list(theirs)
    for k in theirs:
        assert_close(ours[k], theirs[k], **tol)


def jnn_grads(module: jnn.Module, x, loss=lambda y: (y**2).sum()) -> dict[str, np.ndarray]:
    """Gradients of ``loss(module(x))`` w.r.t. the trainable parameters, through jnn.split."""
    apply, params, buffers = jnn.split(module)
    grads = jax.grad(lambda p: loss(apply(p, buffers, x)[0]))(params)
    return {k: np.asarray(v) for k, v in grads.items()}


def torch_grads(module: torch.nn.Module, x: np.ndarray, loss=lambda y: (y**2).sum()) -> dict[str, np.ndarray]:
    module.zero_grad()
    loss(module(torch.from_numpy(np.asarray(x)))).backward()
    return {k: p.grad.numpy().copy() for k, p in module.named_parameters()}


def randomise_constants(model: torch.nn.Module) -> None:
    """Give every constant-initialised float tensor of a torch model (BatchNorm statistics, zero-init heads and
    biases, layer scales) random values, so that a comparison with a port checks them too (seeded)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or t.numel() == 0:
                continue
            if t.numel() == 1 or bool((t == t.flatten()[0]).all()):
                if name.endswith("running_var") or bool((t == 1).all()):
                    t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=gen) * 0.1)


def load_twin(model: jnn.Module, reference: torch.nn.Module) -> None:
    """A ported ``model`` gets its torch twin's state: ``reference``'s constants randomised first
    (:func:`randomise_constants`), then its state_dict, with the same keys in the same order and its metadata (module
    versions, which e.g. MNASNet's ``_load_from_state_dict`` reads), loaded with ``strict=True``. Both end in eval
    mode."""
    randomise_constants(reference)
    reference.eval()
    state = reference.state_dict()
    arrays = collections.OrderedDict((k, v.detach().numpy()) for k, v in state.items())
    arrays._metadata = state._metadata
    assert list(model.state_dict()) == list(arrays)
    model.load_state_dict(arrays, strict=True)
    model.eval()


def jitted(fn, args: tuple, kwargs: dict):
    """``fn(*args, **kwargs)`` under ``jax.jit``, the NumPy arrays among ``args`` its (traced) arguments and the
    rest static."""
    arrays = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]

    def run(*xs):
        full = list(args)
        for i, x in zip(arrays, xs, strict=True):
            full[i] = x
        return fn(*full, **kwargs)

    return jax.jit(run)(*[np.asarray(args[i]) for i in arrays])
