"""jnn.utils.stateless.functional_call against torch.func.functional_call."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, torch_state
from torch.func import functional_call as torch_call

import jnn
from jnn.utils.stateless import functional_call


def _twins(build):
    torch.manual_seed(0)
    tm = build(torch.nn)
    jm = build(jnn)
    jm.load_state_dict(torch_state(tm))
    return tm, jm


def _net(nn):
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("keys", [["0.weight"], ["0.weight", "3.bias", "1.running_mean", "1.num_batches_tracked"], []])
def test_partial_dicts_match_torch(train, keys):
    tm, jm = _twins(_net)
    tm.train(train), jm.train(train)
    rng = np.random.default_rng(0)
    state = torch_state(tm)
    given = {k: (rng.standard_normal(state[k].shape).astype(np.float32) if state[k].dtype == np.float32
                 else np.array(state[k])) for k in keys}
    x = rng.standard_normal((5, 3)).astype(np.float32)
    theirs_dict = {k: torch.from_numpy(v.copy()) for k, v in given.items()}
    ours_dict = {k: jnp.asarray(v) for k, v in given.items()}
    y = torch_call(tm, theirs_dict, (torch.from_numpy(x),))
    assert_close(functional_call(jm, ours_dict, (jnp.asarray(x),)), y, atol=1e-5)
    for k in keys:  # buffers torch updated in place come back in the dict
        assert_close(ours_dict[k], theirs_dict[k], atol=1e-6)
    for k, v in torch_state(tm).items():  # the module's own buffers, updated where not given
        assert_close(jm.state_dict()[k], v, atol=1e-6)


def test_gradients_and_jit():
    tm, jm = _twins(lambda nn: nn.Linear(3, 2))
    w = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    x = jnp.ones((4, 3))

    def loss(weight, x):
        return (functional_call(jm, {"weight": weight}, x) ** 2).sum()

    grad = jax.jit(jax.grad(loss))(jnp.asarray(w), x)
    tw = torch.from_numpy(w).requires_grad_()
    (torch_call(tm, {"weight": tw}, torch.ones(4, 3)) ** 2).sum().backward()
    assert_close(grad, tw.grad, atol=1e-5)
    assert_close(jm.weight, tm.weight)  # unchanged
    out = jax.jit(lambda m, d, x: functional_call(m, d, x))(jm, {"bias": jnp.zeros(2)}, x)
    assert_close(out, torch_call(tm, {"bias": torch.zeros(2)}, torch.ones(4, 3)), atol=1e-5)
    kw = functional_call(jnn.MultiheadAttention(4, 2, batch_first=True), {}, (jnp.ones((1, 2, 4)),) * 3,
                         {"need_weights": False})
    assert kw[1] is None


class Tied(jnn.Module):
    def __init__(self):
        super().__init__()
        self.a = jnn.Linear(2, 2, bias=False)
        self.b = jnn.Linear(2, 2, bias=False)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(self.a(x))


class TorchTied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(2, 2, bias=False)
        self.b = torch.nn.Linear(2, 2, bias=False)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(self.a(x))


@pytest.mark.parametrize("tie_weights", [True, False])
def test_tied_weights_match_torch(tie_weights):
    tm, jm = TorchTied(), Tied()
    jm.load_state_dict(torch_state(tm))
    w = np.arange(4, dtype=np.float32).reshape(2, 2)
    y = torch_call(tm, {"a.weight": torch.from_numpy(w)}, torch.ones(1, 2), tie_weights=tie_weights)
    assert_close(functional_call(jm, {"a.weight": jnp.asarray(w)}, jnp.ones((1, 2)), tie_weights=tie_weights), y)
    y = torch_call(tm, {"b.weight": torch.from_numpy(w)}, torch.ones(1, 2), tie_weights=tie_weights)
    assert_close(functional_call(jm, {"b.weight": jnp.asarray(w)}, jnp.ones((1, 2)), tie_weights=tie_weights), y)
    if tie_weights:
        with pytest.raises(ValueError, match="which are tied"):
            functional_call(jm, {"a.weight": jnp.asarray(w), "b.weight": jnp.asarray(w + 1)}, jnp.ones((1, 2)))


def test_strict_message_matches_torch():
    tm, jm = _twins(_net)
    given = {"0.weight": np.ones((4, 3), np.float32), "extra": np.ones(1, np.float32)}
    with pytest.raises(RuntimeError) as theirs:
        torch_call(tm, {k: torch.from_numpy(v) for k, v in given.items()}, (torch.ones(2, 3),), strict=True)
    with pytest.raises(RuntimeError) as ours:
        functional_call(jm, {k: jnp.asarray(v) for k, v in given.items()}, (jnp.ones((2, 3)),), strict=True)
    assert str(ours.value) == str(theirs.value)
    assert functional_call(jm, {k: jnp.asarray(v) for k, v in given.items()}, jnp.ones((2, 3))).shape == (2, 2)


def test_parametrized_module():
    m = jnn.utils.parametrizations.weight_norm(jnn.Linear(3, 2))
    g = jnp.full((2, 1), 2.0)
    out = functional_call(m, {"parametrizations.weight.original0": g}, jnp.ones(3))
    w = m.parametrizations.weight.original1
    expected = jnp.ones(3) @ (2.0 * w / jnp.linalg.norm(w, axis=1, keepdims=True)).T + m.bias
    assert_close(out, expected, atol=1e-5)
