"""jnn.utils.prune against torch.nn.utils.prune: masks (identical for the deterministic methods), keys, loading."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.utils.prune as TP
from helpers import assert_close, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st

import jnn
from jnn.utils import prune as JP


def _twins(build=lambda nn: nn.Conv2d(3, 6, 3), seed=0):
    torch.manual_seed(seed)
    tm = build(torch.nn)
    jm = build(jnn)
    jm.load_state_dict(torch_state(tm))
    return tm, jm


# (function name, args, kwargs): each step prunes further, combining masks as torch's PruningContainer does
SEQUENCES = [
    [("l1_unstructured", ("weight",), {"amount": 0.3})],
    [("l1_unstructured", ("weight",), {"amount": 17})],
    [("ln_structured", ("weight",), {"amount": 2, "n": 2, "dim": 0})],
    [("ln_structured", ("weight",), {"amount": 0.5, "n": 1, "dim": 1})],
    [("ln_structured", ("weight",), {"amount": 0.34, "n": float("inf"), "dim": -1})],
    [("ln_structured", ("weight",), {"amount": 1, "n": 3, "dim": 2})],
    [("identity", ("weight",), {})],
    [("l1_unstructured", ("weight",), {"amount": 0.2}),
     ("ln_structured", ("weight",), {"amount": 2, "n": 2, "dim": 0}),
     ("l1_unstructured", ("weight",), {"amount": 0.25}),
     ("ln_structured", ("weight",), {"amount": 1, "n": 1, "dim": 1})],
    [("l1_unstructured", ("bias",), {"amount": 2}), ("l1_unstructured", ("weight",), {"amount": 0.5})],
]


@pytest.mark.parametrize("sequence", SEQUENCES, ids=lambda s: "+".join(f[0] for f in s))
def test_masks_and_state_match_torch(sequence):
    tm, jm = _twins()
    for name, args, kwargs in sequence:
        getattr(TP, name)(tm, *args, **kwargs)
        getattr(JP, name)(jm, *args, **kwargs)
        assert list(jm.state_dict()) == list(tm.state_dict())
        for k, v in torch_state(tm).items():
            assert np.array_equal(np.asarray(jm.state_dict()[k]), v), k
    assert repr(jm) == repr(tm) and type(jm).__name__ == "Conv2d"
    assert JP.is_pruned(jm) and JP.is_pruned(jnn.Sequential(jm))
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7)).astype(np.float32)
    y = tm(torch.from_numpy(x))
    assert_close(jm(jnp.asarray(x)), y, atol=1e-5)
    assert_close(jax.jit(lambda m, x: m(x))(jm, jnp.asarray(x)), y, atol=1e-5)
    apply, params, buffers = jnn.split(jm)
    assert sorted(params) == sorted(k for k, _ in tm.named_parameters())
    assert sorted(buffers) == sorted(k for k, _ in tm.named_buffers())
    grads = jax.grad(lambda p: (apply(p, buffers, jnp.asarray(x))[0] ** 2).sum())(params)
    (y ** 2).sum().backward()
    for k, p in tm.named_parameters():
        assert_close(grads[k], p.grad, rtol=1e-4, atol=1e-4)
    # strict loading both ways between pruned twins
    fresh_t, fresh_j = _twins(seed=1)
    for name, args, kwargs in sequence:
        getattr(TP, name)(fresh_t, *args, **kwargs)
        getattr(JP, name)(fresh_j, *args, **kwargs)
    fresh_j.load_state_dict(torch_state(tm))
    fresh_t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in jm.state_dict().items()}, strict=True)
    assert_close(fresh_j(jnp.asarray(x)), fresh_t(torch.from_numpy(x)), atol=1e-5)
    for tensor in {args[0] for _, args, _ in sequence}:
        TP.remove(tm, tensor)
        JP.remove(jm, tensor)
    assert not JP.is_pruned(jm) and type(jm) is jnn.Conv2d
    assert list(jm.state_dict()) == list(tm.state_dict())
    for k, v in torch_state(tm).items():
        assert np.array_equal(np.asarray(jm.state_dict()[k]), v), k


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(2, 6), cols=st.integers(2, 6), amount=st.floats(0, 1), seed=st.integers(0, 2**16),
       n=st.sampled_from([1, 2, 3, float("inf"), float("-inf")]), dim=st.sampled_from([0, 1, -1]))
def test_deterministic_masks_over_shapes(rows, cols, amount, seed, n, dim):
    w = np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)
    t = torch.from_numpy(w)
    assert np.array_equal(JP.L1Unstructured(amount).compute_mask(w, np.ones_like(w)),
                          TP.L1Unstructured(amount).compute_mask(t, torch.ones_like(t)).numpy())
    assert np.array_equal(JP.LnStructured(amount, n, dim).compute_mask(w, np.ones_like(w)),
                          TP.LnStructured(amount, n, dim).compute_mask(t, torch.ones_like(t)).numpy())


def test_importance_scores_and_custom_mask_match_torch():
    tm, jm = _twins(lambda nn: nn.Linear(6, 4))
    scores = np.arange(24, dtype=np.float32).reshape(4, 6)[::-1].copy()
    TP.l1_unstructured(tm, "weight", 0.5, importance_scores=torch.from_numpy(scores))
    JP.l1_unstructured(jm, "weight", 0.5, importance_scores=scores)
    mask = (np.arange(4) % 2).astype(np.float32)
    TP.custom_from_mask(tm, "bias", torch.from_numpy(mask))
    JP.custom_from_mask(jm, "bias", mask)
    TP.ln_structured(tm, "weight", 1, 2, 1, importance_scores=torch.from_numpy(scores))
    JP.ln_structured(jm, "weight", 1, 2, 1, importance_scores=scores)
    for k, v in torch_state(tm).items():
        assert np.array_equal(np.asarray(jm.state_dict()[k]), v), k


def test_global_unstructured_matches_torch():
    build = lambda nn: nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))  # noqa: E731
    tm, jm = _twins(build)
    TP.l1_unstructured(tm[0], "weight", 3)
    JP.l1_unstructured(jm[0], "weight", 3)
    TP.global_unstructured([(tm[0], "weight"), (tm[2], "weight"), (tm[2], "bias")], TP.L1Unstructured, amount=0.4)
    JP.global_unstructured([(jm[0], "weight"), (jm[2], "weight"), (jm[2], "bias")], JP.L1Unstructured, amount=0.4)
    assert list(jm.state_dict()) == list(tm.state_dict())
    for k, v in torch_state(tm).items():
        assert np.array_equal(np.asarray(jm.state_dict()[k]), v), k
    with pytest.raises(TypeError, match="unstructured"):
        JP.global_unstructured([(jm[0], "weight")], JP.LnStructured, amount=1, n=2, dim=0)


def test_random_methods_draw_from_jnn_stream():
    def pruned(seed):
        jnn.manual_seed(seed)
        m = jnn.Linear(10, 8)
        JP.random_unstructured(m, "weight", 0.25)
        JP.random_structured(m, "weight", 3, 0)
        return np.asarray(m.weight_mask)

    a, b, c = pruned(0), pruned(0), pruned(1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    rows_kept = a.any(axis=1)
    assert rows_kept.sum() == 5
    # random_structured prunes whole rows; random_unstructured pruned round(0.25 * 80) = 20 entries before it
    m = jnn.Linear(10, 8)
    JP.random_unstructured(m, "weight", 0.25)
    assert int(m.weight_mask.sum()) == 60


def test_errors():
    m = jnn.Linear(3, 2)
    with pytest.raises(ValueError, match="should either be a float in the range"):
        JP.l1_unstructured(m, "weight", 1.5)
    with pytest.raises(TypeError, match="Invalid type for amount"):
        JP.l1_unstructured(m, "weight", "half")
    with pytest.raises(ValueError, match="should be smaller than the number of parameters"):
        JP.l1_unstructured(m, "weight", 7)
    with pytest.raises(ValueError, match="Structured pruning can only be applied to multidimensional"):
        JP.ln_structured(m, "bias", 1, 2, 0)
    with pytest.raises(IndexError, match="Invalid index"):
        JP.ln_structured(m, "weight", 1, 2, 2)
    with pytest.raises(ValueError, match="has to be pruned before pruning can be removed"):
        JP.remove(m, "weight")
    with pytest.raises(ValueError, match="no parameter named"):
        JP.l1_unstructured(m, "nothing", 1)
    with pytest.raises(ValueError, match="importance_scores should have the same shape"):
        JP.l1_unstructured(m, "weight", 1, importance_scores=np.ones(3))
    assert list(m.state_dict()) == ["weight", "bias"] and not JP.is_pruned(m)
    JP.l1_unstructured(m, "weight", 1)
    with pytest.raises(ValueError, match="should be smaller than the number of parameters"):
        JP.l1_unstructured(m, "weight", 9)
    assert int(m.weight_mask.sum()) == 5  # the failed second pruning left the first in place
    assert JP.L1Unstructured(0.5).prune(jnp.asarray([1.0, -3.0, 0.5, 2.0])).tolist() == [0.0, -3.0, 0.0, 2.0]
