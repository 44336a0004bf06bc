"""The one lazy mechanism (jnn.modules.lazy.LazyModuleMixin) across LazyLinear, LazyConv*, LazyBatchNorm* and
LazyInstanceNorm*: sized by a state dict at any depth, as torch loads them; never re-drawn inside split."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn as tnn

import jnn
import jnn as nn

CASES = [
    ("LazyLinear", (3,), "Linear", (5, 3), (4, 5)),
    ("LazyConv1d", (4, 3), "Conv1d", (2, 4, 3), (1, 2, 7)),
    ("LazyConv2d", (4, 3), "Conv2d", (2, 4, 3), (1, 2, 6, 6)),
    ("LazyConvTranspose2d", (3, 2), "ConvTranspose2d", (5, 3, 2), (1, 5, 4, 4)),
    ("LazyBatchNorm1d", (), "BatchNorm1d", (3,), (4, 3)),
    ("LazyBatchNorm2d", (), "BatchNorm2d", (3,), (2, 3, 2, 2)),
    ("LazyInstanceNorm1d", (), "InstanceNorm1d", (3,), (2, 3, 5)),
]


def randomized_state(module):
    torch.manual_seed(0)
    with torch.no_grad():
        for value in module.state_dict().values():
            if value.is_floating_point():
                value.uniform_(0.5, 1.5)
    return module.state_dict()


@pytest.mark.parametrize("lazy, args, plain, plain_args, shape", CASES)
def test_lazy_layers_load_a_materialised_state_dict_at_any_depth(lazy, args, plain, plain_args, shape):
    kwargs = {"track_running_stats": True, "affine": True} if "Instance" in lazy else {}
    source = tnn.Sequential(tnn.Sequential(getattr(tnn, plain)(*plain_args, **kwargs))).eval()
    state = randomized_state(source)
    model = nn.Sequential(nn.Sequential(getattr(nn, lazy)(*args, **kwargs))).eval()
    tmodel = tnn.Sequential(tnn.Sequential(getattr(tnn, lazy)(*args, **kwargs))).eval()
    theirs = tmodel.load_state_dict(state)
    ours = model.load_state_dict({k: v.numpy() for k, v in state.items()})
    assert tuple(ours) == tuple(theirs) == ([], [])
    assert type(model[0][0]).__name__ == plain
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    expected = source(torch.from_numpy(x)).detach().numpy()  # torch's lazy InstanceNorm stays unsized here
    np.testing.assert_allclose(model(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.jit(lambda m, v: m(v))(model, jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(np.asarray(model.state_dict()[key]), value.numpy(), err_msg=key)


@pytest.mark.parametrize("lazy, args", [("LazyLinear", (3,)), ("LazyConv2d", (4, 3)), ("LazyBatchNorm1d", ())])
def test_lazy_layers_without_entries_report_them_missing_as_torch(lazy, args):
    with pytest.raises(RuntimeError) as theirs:
        getattr(tnn, lazy)(*args).load_state_dict({})
    with pytest.raises(RuntimeError) as ours:
        getattr(nn, lazy)(*args).load_state_dict({})
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("lazy, args, x", [("LazyLinear", (3,), jnp.ones((2, 4))),
                                           ("LazyConv1d", (2, 3), jnp.ones((1, 2, 5))),
                                           ("LazyBatchNorm1d", (), jnp.ones((4, 3)))])
def test_split_lazy_layer_refuses_to_draw_parameters_per_call(lazy, args, x):
    apply, params, buffers = jnn.split(getattr(nn, lazy)(*args))
    with pytest.raises(RuntimeError, match="Run one eager forward first"):
        apply(params, buffers, x)  # eager, but every call would create new arrays


def test_lazy_state_dict_keys_before_init_as_before():
    assert list(nn.LazyLinear(3).state_dict()) == []  # jnn lists no uninitialised Linear/Conv slots
    assert list(nn.LazyBatchNorm1d().state_dict()) == list(tnn.LazyBatchNorm1d().state_dict())
    assert nn.LazyLinear(3).has_uninitialized_params() and nn.LazyInstanceNorm1d().has_uninitialized_params()
