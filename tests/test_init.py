"""jnn.init against torch.nn.init: distributions, deterministic fills, errors, and the in-place idioms."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jnn
import jnn as nn

RANDOM_CASES = [
    ("uniform_", dict(a=-0.5, b=2.0)),
    ("normal_", dict(mean=0.3, std=2.0)),
    ("trunc_normal_", dict(mean=0.5, std=1.0, a=-1.0, b=1.5)),
    ("xavier_uniform_", dict(gain=1.5)),
    ("xavier_normal_", dict(gain=0.5)),
    ("kaiming_uniform_", dict(a=math.sqrt(5))),
    ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu")),
    ("kaiming_normal_", dict(nonlinearity="tanh")),
    ("kaiming_normal_", dict(mode="fan_out", nonlinearity="leaky_relu", a=0.2)),
]


# Without key= the global stream draws on the host (NumPy); with a key, JAX draws (the same under jit).
SOURCES = {"global stream": {}, "key": {"key": jax.random.key(0)}}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name,kwargs", RANDOM_CASES)
def test_random_inits_have_torchs_distribution(name, kwargs, source):
    shape = (256, 64, 3, 3)
    torch.manual_seed(0)
    jnn.manual_seed(0)
    theirs = getattr(torch.nn.init, name)(torch.empty(shape), **kwargs).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nn.init.NotInPlaceWarning)
        ours = np.asarray(getattr(nn.init, name)(jnp.empty(shape), **kwargs, **SOURCES[source]))
    assert ours.shape == shape and ours.dtype == np.float32
    assert abs(ours.mean() - theirs.mean()) < 0.01 * theirs.std() + 1e-4, name
    assert abs(ours.std() / theirs.std() - 1) < 0.01, name
    if "uniform" in name or name == "trunc_normal_":  # bounded: the same support
        for stat in (np.min, np.max):
            assert abs(stat(ours) - stat(theirs)) < 0.01 * theirs.std(), (name, stat.__name__)


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3)])
def test_eye_and_constants_match_torch_exactly(shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nn.init.NotInPlaceWarning)
        np.testing.assert_array_equal(nn.init.eye_(jnp.empty(shape)), torch.nn.init.eye_(torch.empty(shape)))
        np.testing.assert_array_equal(nn.init.constant_(jnp.empty(shape), 0.25),
                                      torch.nn.init.constant_(torch.empty(shape), 0.25))
        np.testing.assert_array_equal(nn.init.ones_(jnp.empty(shape)), np.ones(shape))
        np.testing.assert_array_equal(nn.init.zeros_(jnp.ones(shape)), np.zeros(shape))


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 2, 3, 3), 3), ((8, 3, 3, 3, 3), 2), ((2, 5, 4, 4), 1)])
def test_dirac_matches_torch(shape, groups):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nn.init.NotInPlaceWarning)
        ours = nn.init.dirac_(jnp.empty(shape), groups)
    np.testing.assert_array_equal(ours, torch.nn.init.dirac_(torch.empty(shape), groups))


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (8, 3, 2, 2)])
def test_orthogonal_is_orthogonal_times_gain(shape, source):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nn.init.NotInPlaceWarning)
        w = np.asarray(nn.init.orthogonal_(jnp.empty(shape), gain=2.0, **SOURCES[source]), np.float64)
    flat = w.reshape(shape[0], -1)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-4)


@pytest.mark.parametrize("source", SOURCES)
def test_sparse_zeroes_the_same_count_per_column_as_torch(source):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nn.init.NotInPlaceWarning)
        ours = np.asarray(nn.init.sparse_(jnp.empty((10, 200)), 0.3, std=0.5, **SOURCES[source]))
    theirs = torch.nn.init.sparse_(torch.empty(10, 200), 0.3, std=0.5).numpy()
    np.testing.assert_array_equal((ours == 0).sum(0), (theirs == 0).sum(0))
    assert abs(ours[ours != 0].std() - 0.5) < 0.06


def test_errors_match_torch():
    def error(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            return type(e), str(e)
        return None

    cases = [
        lambda m: m.xavier_uniform_(lib(m).empty(3)),
        lambda m: m.kaiming_normal_(lib(m).empty((3, 3)), mode="fan_avg"),
        lambda m: m.eye_(lib(m).empty((2, 2, 2))),
        lambda m: m.dirac_(lib(m).empty((3, 3))),
        lambda m: m.dirac_(lib(m).empty((3, 2, 3)), groups=2),
        lambda m: m.orthogonal_(lib(m).empty(3)),
        lambda m: m.sparse_(lib(m).empty((2, 2, 2)), 0.1),
        lambda m: m.calculate_gain("swish"),
        lambda m: m.calculate_gain("leaky_relu", "x"),
    ]
    for case in cases:
        assert error(lambda c=case: c(nn.init)) == error(lambda c=case: c(torch.nn.init))
    for name in ("relu", "tanh", "sigmoid", "selu", "conv2d", "leaky_relu"):
        assert nn.init.calculate_gain(name) == torch.nn.init.calculate_gain(name)
    with pytest.raises(TypeError, match="key="):
        nn.init.normal_(jnp.empty(3), generator=object())


def lib(module):
    return torch if module is torch.nn.init else jnp


# --- the in-place idioms of PyTorch code -------------------------------------------------------------------


def test_init_on_an_attribute_changes_the_module():
    layer = nn.Linear(4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NotInPlaceWarning: the write-back worked
        returned = nn.init.zeros_(layer.bias)
        nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain("relu"))
    assert returned is layer.bias and layer.bias.tolist() == [0.0, 0.0, 0.0]
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    bound = math.sqrt(2) * math.sqrt(6 / 7)
    assert float(jnp.abs(layer.weight).max()) <= bound


def test_net_apply_and_parameter_loops_change_the_module():
    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.1)

    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    before = np.asarray(net[0].weight)
    assert net.apply(init_weights) is net
    assert not np.array_equal(before, net[0].weight)
    assert all(np.allclose(net[i].bias, 0.1) for i in (0, 2))

    for name, p in net.named_parameters():
        if name.endswith("weight"):
            nn.init.ones_(p)
    assert all(np.array_equal(net[i].weight, np.ones(net[i].weight.shape)) for i in (0, 2))
    for p in net.parameters():
        nn.init.zeros_(p)
    assert all(float(jnp.abs(v).sum()) == 0 for v in net.state_dict().values())


def test_buffers_can_be_initialised_too():
    bn = nn.BatchNorm1d(3)
    nn.init.constant_(bn.running_var, 2.0)
    assert bn.running_var.tolist() == [2.0, 2.0, 2.0]


def test_a_free_array_warns_and_the_result_is_returned():
    w = jnp.empty((3, 5))
    with pytest.warns(nn.init.NotInPlaceWarning, match=r"w = nn.init.uniform_\(w\)"):
        new = nn.init.uniform_(w, key=jax.random.key(0))
    assert new.shape == (3, 5) and float(new.min()) >= 0 and float(new.max()) <= 1


def test_init_respects_manual_seed_key_and_dtype():
    jnn.manual_seed(5)
    a = nn.Linear(6, 6).bfloat16()
    nn.init.normal_(a.weight, std=0.02)
    jnn.manual_seed(5)
    b = nn.Linear(6, 6).bfloat16()
    nn.init.normal_(b.weight, std=0.02)
    assert a.weight.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(a.weight, np.float32), np.asarray(b.weight, np.float32))
    c = nn.Linear(6, 6)
    nn.init.normal_(c.weight, key=jax.random.key(3))
    d = nn.Linear(6, 6)
    nn.init.normal_(d.weight, key=jax.random.key(3))
    np.testing.assert_array_equal(c.weight, d.weight)


def test_init_inside_a_jitted_function_on_a_module_argument():
    def reinit(m, key):
        nn.init.normal_(m.weight, std=0.01, key=key)
        return m

    layer = nn.Linear(5, 5)
    out = jax.jit(reinit)(layer, jax.random.key(0))
    assert float(jnp.abs(out.weight).max()) < 0.1 and not np.array_equal(out.weight, layer.weight)


def test_init_keeps_the_placement_committed_or_not():
    layer = nn.Linear(3, 2)
    nn.init.normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    assert not layer.weight.committed and not layer.bias.committed
    device = jax.devices()[-1]
    placed = nn.Linear(3, 2).to(device)
    nn.init.kaiming_uniform_(placed.weight)
    assert placed.weight.committed and placed.weight.devices() == {device}
