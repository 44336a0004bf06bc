"""jnn.utils.clip_grad and convert_parameters against torch.nn.utils: norms, clipped gradients, vectors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn
from jnn.utils import (
    clip_by_total_norm,
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
    parameters_to_vector,
    vector_to_parameters,
)

SHAPES = [(3, 4), (5,), (), (2, 1, 3)]
NORMS = [2.0, 1.0, 0.5, 3.0, math.inf, -math.inf, 0.0, "inf"]


def grads_np(seed: int, scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s) * scale, dtype=np.float32) for s in SHAPES]


def torch_clip(grads: list[np.ndarray], max_norm: float, norm_type) -> tuple[list[np.ndarray], np.ndarray]:
    params = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.from_numpy(g.copy())
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    return [p.grad.numpy() for p in params], total.numpy()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), norm_type=st.sampled_from(NORMS), max_norm=st.floats(0.01, 20.0),
       scale=st.sampled_from([0.01, 1.0, 10.0]))
def test_clip_grad_norm_matches_torch(seed, norm_type, max_norm, scale):
    grads = grads_np(seed, scale)
    want, want_total = torch_clip(grads, max_norm, norm_type)
    got, total = clip_grad_norm_([jnp.asarray(g) for g in grads], max_norm, norm_type=norm_type)
    assert_close(total, want_total, rtol=1e-5, atol=1e-6)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        assert_close(a, b, rtol=1e-5, atol=1e-7)
    # a dict (jnn.split's params) and a single array give the same as the list
    named, total_d = clip_grad_norm_({f"p{i}": jnp.asarray(g) for i, g in enumerate(grads)}, max_norm,
                                     norm_type=norm_type)
    assert_close(total_d, want_total, rtol=1e-5, atol=1e-6)
    assert_close(named["p0"], want[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.5])
def test_clip_grad_norm_under_jit_and_the_epsilon(norm_type):
    grads = grads_np(0)
    want, want_total = torch_clip(grads, 1.0, norm_type)
    got, total = jax.jit(lambda g: clip_grad_norm_(g, 1.0, norm_type))([jnp.asarray(g) for g in grads])
    assert_close(total, want_total)
    for a, b in zip(got, want, strict=True):
        assert_close(a, b, rtol=1e-5, atol=1e-7)
    # torch scales by max_norm / (norm + 1e-6) even at the boundary: a norm equal to max_norm still shrinks a bit
    g = jnp.array([3.0, 4.0])
    clipped, _ = clip_grad_norm_([g], 5.0)
    assert float(clipped[0][0]) == pytest.approx(3.0 * 5.0 / (5.0 + 1e-6), rel=1e-7)
    assert float(clipped[0][0]) < 3.0


def test_get_total_norm_and_clip_grads_with_norm_match_torch():
    grads = grads_np(3)
    tensors = [torch.from_numpy(g.copy()) for g in grads]
    for norm_type in NORMS:
        want = torch.nn.utils.get_total_norm(tensors, norm_type=norm_type)
        assert_close(get_total_norm([jnp.asarray(g) for g in grads], norm_type=norm_type), want)
    assert_close(get_total_norm(jnp.asarray(grads[0])), torch.nn.utils.get_total_norm(tensors[0]))
    assert float(get_total_norm([])) == float(torch.nn.utils.get_total_norm([])) == 0.0
    # generators and None leaves (parameters without a gradient) are accepted, as torch skips p.grad is None
    assert_close(get_total_norm(jnp.asarray(g) for g in grads), torch.nn.utils.get_total_norm(tensors))
    assert_close(get_total_norm({"a": jnp.asarray(grads[0]), "b": None}),
                 torch.nn.utils.get_total_norm(tensors[:1]))
    params = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grads_with_norm_(params, 0.3, torch.tensor(7.0))
    got = clip_grads_with_norm_([jnp.asarray(g) for g in grads], 0.3, 7.0)
    for a, p in zip(got, params, strict=True):
        assert_close(a, p.grad)


def test_clip_grad_value_matches_torch_and_optax_clip():
    grads = grads_np(5, 2.0)
    params = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_value_(params, 0.7)
    got = clip_grad_value_({str(i): jnp.asarray(g) for i, g in enumerate(grads)}, 0.7)
    optax_got, _ = optax.clip(0.7).update([jnp.asarray(g) for g in grads], None)
    for i, p in enumerate(params):
        np.testing.assert_array_equal(np.asarray(got[str(i)]), p.grad.numpy())
        np.testing.assert_array_equal(np.asarray(optax_got[i]), p.grad.numpy())


def test_error_if_nonfinite_eager_and_under_jit():
    bad = [jnp.array([1.0, jnp.inf]), jnp.ones(2)]
    params = [torch.zeros(2, requires_grad=True) for _ in bad]
    for p, g in zip(params, bad, strict=True):
        p.grad = torch.from_numpy(np.array(g))
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as ours:
        clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
    assert str(ours.value) == str(theirs.value)
    clipped, total = clip_grad_norm_(bad, 1.0)  # without the flag: scaled by the non-finite norm, as torch does
    assert math.isinf(float(total))
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    assert_close(clipped[1], params[1].grad)
    step = jax.jit(lambda g: clip_grad_norm_(g, 1.0, error_if_nonfinite=True))
    assert float(step([jnp.ones(4)])[1]) == 2.0
    with pytest.raises(Exception, match="is non-finite, so it cannot be clipped"):
        jax.block_until_ready(step(bad))


def test_deprecated_clip_grad_norm_warns():
    with pytest.warns(FutureWarning, match="clip_grad_norm_"):
        _, total = clip_grad_norm([jnp.array([3.0, 4.0])], 1.0)
    assert float(total) == 5.0


@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.0])
def test_clip_by_total_norm_in_an_optax_chain_matches_torch_sgd(norm_type):
    torch.manual_seed(0)
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    net = jnn.Sequential(jnn.Linear(4, 8), jnn.Tanh(), jnn.Linear(8, 2))
    net.load_state_dict({k: v.detach().numpy() for k, v in tnet.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    topt = torch.optim.SGD(tnet.parameters(), lr=0.5, momentum=0.9)
    apply, params, buffers = jnn.split(net)
    tx = optax.chain(clip_by_total_norm(0.1, norm_type), optax.sgd(0.5, momentum=0.9))
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(lambda p: (apply(p, buffers, x)[0] ** 2).sum())(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(3):
        topt.zero_grad()
        (tnet(torch.from_numpy(x)) ** 2).sum().backward()
        torch.nn.utils.clip_grad_norm_(tnet.parameters(), 0.1, norm_type=norm_type)
        topt.step()
        params, state = step(params, state)
    for k, v in tnet.state_dict().items():
        assert_close(params[k], v, rtol=1e-4, atol=1e-6)


def test_parameters_to_vector_and_back_match_torch():
    torch.manual_seed(0)
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    net = jnn.Sequential(jnn.Linear(3, 4), jnn.Linear(4, 2))
    net.load_state_dict({k: v.detach().numpy() for k, v in tnet.state_dict().items()})
    want = torch.nn.utils.parameters_to_vector(tnet.parameters()).detach().numpy()
    np.testing.assert_array_equal(np.asarray(parameters_to_vector(net.parameters())), want)
    _, params, _ = jnn.split(net)
    sorted_order = np.concatenate([params[k].reshape(-1) for k in sorted(params)])  # a dict: JAX's key order,
    np.testing.assert_array_equal(np.asarray(parameters_to_vector(params)), sorted_order)  # the same under jit
    np.testing.assert_array_equal(np.asarray(jax.jit(parameters_to_vector)(params)), sorted_order)
    vec = np.arange(want.size, dtype=np.float32)
    torch.nn.utils.vector_to_parameters(torch.from_numpy(vec), tnet.parameters())
    as_list = vector_to_parameters(jnp.asarray(vec), net.parameters())
    assert isinstance(as_list, list)
    for a, p in zip(as_list, tnet.parameters(), strict=True):
        np.testing.assert_array_equal(np.asarray(a), p.detach().numpy())
    theirs = {k: jnp.asarray(v.numpy()) for k, v in tnet.state_dict().items()}
    new = jax.jit(vector_to_parameters)(parameters_to_vector(theirs), params)  # a dict round trip, by key
    assert set(new) == set(params)
    for k, v in tnet.state_dict().items():
        np.testing.assert_array_equal(np.asarray(new[k]), v.numpy())
    net.load_state_dict(new)  # the new arrays load back strictly
    assert_close(net[0].weight, tnet[0].weight)


def test_vector_to_parameters_errors():
    with pytest.raises(TypeError, match="expected an array, but got: list"):
        vector_to_parameters([1.0, 2.0], [jnp.zeros(2)])
    with pytest.raises(ValueError, match="expected a vector of 2 elements"):
        vector_to_parameters(jnp.zeros(3), [jnp.zeros(2)])
    with pytest.raises(ValueError, match="at least one parameter"):
        parameters_to_vector([])
