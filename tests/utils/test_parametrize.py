"""jnn.utils.parametrize against torch.nn.utils.parametrize: keys, repr, values, gradients, removal, jit, split."""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.utils.parametrize as TPZ
from helpers import assert_close, torch_state

import jnn
import jnn.utils.parametrize as P


def _symmetric(nn, triu, transpose):
    class Symmetric(nn.Module):
        def forward(self, X):
            return triu(X) + transpose(triu(X, 1))

        def right_inverse(self, A):
            return triu(A)

    return Symmetric()


def _rank_one(nn, torch_like):
    class RankOne(nn.Module):
        def forward(self, x, y):
            return x[:, None] * y[None, :]

        def right_inverse(self, Z):
            return Z[:, 0], Z[0, :] / Z[0, 0] if torch_like else Z[0, :] / Z[0, 0]

    return RankOne()


def _scale(nn, factor):
    class Scale(nn.Module):
        def forward(self, X):
            return X * factor

        def right_inverse(self, Y):
            return Y / factor

    return Scale()


def _pair(build, register):
    torch.manual_seed(0)
    tm = build(torch.nn)
    jm = build(jnn)
    jm.load_state_dict(torch_state(tm))
    register(tm, torch.nn, torch.triu, lambda a: a.T)
    register(jm, jnn, jnp.triu, lambda a: a.T)
    return tm, jm


def _symmetric_on_weight(m, nn, triu, t):
    P_ = TPZ if nn is torch.nn else P
    P_.register_parametrization(m, "weight", _symmetric(nn, triu, t))


def _chain_on_weight(m, nn, triu, t):
    P_ = TPZ if nn is torch.nn else P
    P_.register_parametrization(m, "weight", _symmetric(nn, triu, t))
    P_.register_parametrization(m, "weight", _scale(nn, 2.0))
    P_.register_parametrization(m, "bias", _scale(nn, 3.0))


def _rank_one_on_weight(m, nn, triu, t):
    P_ = TPZ if nn is torch.nn else P
    P_.register_parametrization(m, "weight", _rank_one(nn, nn is torch.nn))


@pytest.mark.parametrize("register", [_symmetric_on_weight, _chain_on_weight, _rank_one_on_weight])
def test_register_matches_torch(register):
    tm, jm = _pair(lambda nn: nn.Linear(4, 4), register)
    assert repr(jm) == repr(tm)
    assert type(jm).__name__ == type(tm).__name__ == "ParametrizedLinear"
    assert P.type_before_parametrizations(jm) is jnn.Linear
    assert list(jm.state_dict()) == list(tm.state_dict())
    for k, v in torch_state(tm).items():
        assert_close(jm.state_dict()[k], v, atol=1e-6)
    assert_close(jm.weight, tm.weight, atol=1e-6)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    y = tm(torch.from_numpy(x))
    assert_close(jm(jnp.asarray(x)), y, atol=1e-5)
    assert_close(jax.jit(lambda m, x: m(x))(jm, jnp.asarray(x)), y, atol=1e-5)
    apply, params, buffers = jnn.split(jm)
    assert list(params) == [k for k, _ in tm.named_parameters()]
    grads = jax.grad(lambda p: (apply(p, buffers, jnp.asarray(x))[0] ** 2).sum())(params)
    (y ** 2).sum().backward()
    for k, p in tm.named_parameters():
        assert_close(grads[k], p.grad, rtol=1e-4, atol=1e-5)
    # jnn -> torch, strictly, into a fresh torch twin with the same parametrizations
    fresh, _ = _pair(lambda nn: nn.Linear(4, 4), register)
    fresh.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in jm.state_dict().items()}, strict=True)
    assert_close(jm(jnp.asarray(x)), fresh(torch.from_numpy(x)), atol=1e-5)


def test_assignment_goes_through_right_inverse():
    tm, jm = _pair(lambda nn: nn.Linear(3, 3), _chain_on_weight)
    a = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    a = a + a.T
    with torch.no_grad():
        tm.weight = torch.from_numpy(a)
    jm.weight = a
    assert_close(jm.weight, tm.weight, atol=1e-6)
    assert_close(jm.parametrizations.weight.original, tm.parametrizations.weight.original, atol=1e-6)
    jm.weight = jnn.Parameter(jnp.asarray(a))
    assert_close(jm.weight, a, atol=1e-6)


@pytest.mark.parametrize("leave_parametrized", [True, False])
def test_remove_matches_torch(leave_parametrized):
    tm, jm = _pair(lambda nn: nn.Linear(4, 4), _chain_on_weight)
    TPZ.remove_parametrizations(tm, "weight", leave_parametrized=leave_parametrized)
    P.remove_parametrizations(jm, "weight", leave_parametrized=leave_parametrized)
    assert repr(jm) == repr(tm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    for k, v in torch_state(tm).items():
        assert_close(jm.state_dict()[k], v, atol=1e-6)
    assert P.is_parametrized(jm) and P.is_parametrized(jm, "bias") and not P.is_parametrized(jm, "weight")
    TPZ.remove_parametrizations(tm, "bias", leave_parametrized=leave_parametrized)
    P.remove_parametrizations(jm, "bias", leave_parametrized=leave_parametrized)
    assert type(jm) is jnn.Linear and not P.is_parametrized(jm)
    assert list(jm.state_dict()) == list(tm.state_dict()) == ["weight", "bias"]
    for k, v in torch_state(tm).items():
        assert_close(jm.state_dict()[k], v, atol=1e-6)
    apply, params, _ = jnn.split(jm)
    assert list(params) == ["weight", "bias"]


def test_remove_multi_tensor_needs_leave_parametrized():
    _, jm = _pair(lambda nn: nn.Linear(4, 4), _rank_one_on_weight)
    with pytest.raises(ValueError, match="sequence of tensors"):
        P.remove_parametrizations(jm, "weight", leave_parametrized=False)
    w = jm.weight
    P.remove_parametrizations(jm, "weight")
    assert_close(jm.weight, w)
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        P.remove_parametrizations(jm, "weight")


def test_errors():
    class Reshape(jnn.Module):
        def forward(self, X):
            return X.reshape(-1)

    class Half(jnn.Module):
        def forward(self, X):
            return X.astype(jnp.float16)

    m = jnn.Linear(2, 3)
    with pytest.raises(ValueError, match="shape"):
        P.register_parametrization(m, "weight", Reshape())
    with pytest.raises(ValueError, match="dtype"):
        P.register_parametrization(m, "weight", Half())
    assert not P.is_parametrized(m) and type(m) is jnn.Linear and list(m.state_dict()) == ["weight", "bias"]
    P.register_parametrization(m, "weight", Reshape(), unsafe=True)
    assert m.weight.shape == (6,)
    with pytest.raises(TypeError, match="must be a jnn.Module"):
        P.register_parametrization(jnn.Linear(2, 2), "weight", lambda x: x)
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a parametrized element"):
        P.register_parametrization(jnn.Linear(2, 2), "nothing", Reshape())
    with pytest.raises(ValueError, match="is None"):
        P.register_parametrization(jnn.Linear(2, 2, bias=False), "bias", _scale(jnn, 2.0))
    with pytest.raises(RuntimeError, match="state_dict"):
        import pickle
        pickle.dumps(P.register_parametrization(jnn.Linear(2, 2), "weight", _scale(jnn, 2.0)))


def test_buffer_and_frozen_parameter_stay_out_of_trainables():
    bn = jnn.BatchNorm1d(3)
    P.register_parametrization(bn, "running_var", _scale(jnn, 2.0))
    tbn = torch.nn.BatchNorm1d(3)
    TPZ.register_parametrization(tbn, "running_var", _scale(torch.nn, 2.0))
    assert list(bn.state_dict()) == list(tbn.state_dict())
    assert_close(bn.running_var, tbn.running_var)
    apply, params, buffers = jnn.split(bn)
    assert "parametrizations.running_var.original" in buffers
    lin = jnn.Linear(2, 2)
    lin.weight = jnn.Parameter(lin.weight, requires_grad=False)
    P.register_parametrization(lin, "weight", _scale(jnn, 2.0))
    _, params, buffers = jnn.split(lin)
    assert list(params) == ["bias"] and "parametrizations.weight.original" in buffers
    P.remove_parametrizations(lin, "weight")
    assert [k for k, _ in lin.named_trainable_parameters()] == ["bias"]


def test_cached_computes_once_and_drops_on_exit():
    calls = []

    class Count(jnn.Module):
        def forward(self, X):
            calls.append(1)
            return X * 2

    m = P.register_parametrization(jnn.Linear(2, 2), "weight", Count())
    calls.clear()
    with P.cached():
        a = m.weight
        with P.cached():
            assert m.weight is a
        assert m.weight is a
    assert len(calls) == 1
    m.weight  # noqa: B018
    assert len(calls) == 2
    with P.cached():
        y = jax.jit(lambda m, x: m(x) + m(x))(m, jnp.ones(2))
    assert_close(y, 2 * m(jnp.ones(2)), atol=1e-6)


def test_modules_share_generated_class_and_deepcopy():
    a = P.register_parametrization(jnn.Linear(2, 2), "weight", _scale(jnn, 2.0))
    b = P.register_parametrization(jnn.Linear(2, 2), "weight", _scale(jnn, 2.0))
    assert type(a) is type(b)
    c = copy.deepcopy(a)
    assert type(c) is type(a) and np.array_equal(c.weight, a.weight)
    c.weight = jnp.zeros((2, 2))
    assert float(jnp.abs(a.weight).sum()) > 0
    P.register_parametrization(b, "bias", _scale(jnn, 2.0))
    assert type(b) is not type(a) and P.type_before_parametrizations(b) is jnn.Linear


def test_jit_returns_module_and_split_round_trip():
    _, jm = _pair(lambda nn: nn.Linear(4, 4), _chain_on_weight)
    out, back = jax.jit(lambda m, x: (m(x), m))(jm, jnp.ones(4))
    assert type(back) is type(jm) and repr(back) == repr(jm)
    apply, params, buffers = jnn.split(jm)
    merged = jnn.merge(apply, params, buffers)
    assert type(merged) is type(jm) and np.array_equal(merged.weight, jm.weight)


class Halve(jnn.Module):
    def forward(self, X):
        return X * 0.5


class Stack(jnn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = layers

    def forward(self, x):
        return jnn.scan_layers(self.layers, x)


def test_scan_layers_over_parametrized_blocks():
    jnn.manual_seed(0)
    layers = jnn.ModuleList([P.register_parametrization(jnn.Linear(4, 4), "weight", Halve()) for _ in range(4)])
    x = jnp.ones((2, 4))
    y = x
    for block in layers:
        y = block(y)
    assert_close(jnn.scan_layers(layers, x), y, atol=1e-5)
    net = Stack(layers)
    apply, params, buffers = jnn.split(net, stacked=["layers"])
    assert params["layers.*.parametrizations.weight.original"].shape == (4, 4, 4)

    def run(p):
        return apply(p, buffers, x)[0].sum()

    grads = jax.jit(jax.grad(run))(params)
    expected = jax.grad(lambda p: jnn.split(net)[0](p, jnn.split(net)[2], x)[0].sum())(jnn.split(net)[1])
    assert_close(grads["layers.*.parametrizations.weight.original"][2],
                 expected["layers.2.parametrizations.weight.original"], atol=1e-5)


def test_transfer_parametrizations_and_params():
    src = P.register_parametrization(jnn.Linear(3, 3), "weight", _scale(jnn, 2.0))
    dst = P.transfer_parametrizations_and_params(src, jnn.Linear(3, 3))
    assert np.array_equal(dst.weight, src.weight)
    assert list(dst.state_dict()) == ["bias", "parametrizations.weight.original"]
