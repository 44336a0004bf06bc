"""Containers against torch's: the same operations on twin containers give the same keys, reprs and errors."""

from __future__ import annotations

from collections import OrderedDict

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights

import jnn


def twins(make):
    return make(torch.nn), make(jnn)


def linears(nn, *sizes):
    return [nn.Linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False)]


def same(t, j) -> None:
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(t.state_dict())
    assert [tuple(v.shape) for v in j.state_dict().values()] == [tuple(v.shape) for v in t.state_dict().values()]


def outcome(fn):
    try:
        result = fn()
    except KeyError:  # torch's KeyErrors for named Sequentials are bare keys; ours explain: the type counts
        return ("error", "KeyError")
    except Exception as e:  # noqa: BLE001
        return ("error", type(e).__name__, str(e).replace("torch.nn.", "jnn."))
    return ("ok", type(result).__name__ if result is not None else None)


SEQUENTIAL_OPS = [
    lambda s, nn: s[1],
    lambda s, nn: s[-1],
    lambda s, nn: s[1:3],
    lambda s, nn: s[::-2],
    lambda s, nn: s[7],
    lambda s, nn: s.append(nn.Linear(6, 7)),
    lambda s, nn: s.extend([nn.Linear(6, 2), nn.ReLU()]),
    lambda s, nn: s.insert(1, nn.Tanh()),
    lambda s, nn: s.insert(-1, nn.Sigmoid()),
    lambda s, nn: s.insert(9, nn.Sigmoid()),
    lambda s, nn: s.pop(1),
    lambda s, nn: s.pop(slice(0, 2)),
    lambda s, nn: s.__delitem__(0),
    lambda s, nn: s.__delitem__(slice(1, None)),
    lambda s, nn: s.__setitem__(-2, nn.Linear(3, 3)),
    lambda s, nn: s + nn.Sequential(nn.Linear(6, 1)),
    lambda s, nn: s.__iadd__(nn.Sequential(nn.Linear(6, 1))),
    lambda s, nn: s + [nn.Linear(6, 1)],
    lambda s, nn: s * 2,
    lambda s, nn: s * 0,
    lambda s, nn: len(s),
]


@pytest.mark.parametrize("op", range(len(SEQUENTIAL_OPS)))
@pytest.mark.parametrize("named", [False, True])
def test_sequential_operations_match_torch(op, named):
    def make(nn):
        layers = linears(nn, 2, 3, 4, 5, 6)
        if named:
            return nn.Sequential(OrderedDict((f"layer_{i}", m) for i, m in enumerate(layers)))
        return nn.Sequential(*layers)

    t, j = twins(make)
    fn = SEQUENTIAL_OPS[op]
    t_result, j_result = outcome(lambda: fn(t, torch.nn)), outcome(lambda: fn(j, jnn))
    assert j_result == t_result
    same(t, j)
    if t_result[0] == "ok":  # what the operation returned is the same too
        t2, j2 = twins(make)
        t_value, j_value = fn(t2, torch.nn), fn(j2, jnn)
        if isinstance(t_value, torch.nn.Module):
            same(t_value, j_value)
        else:
            assert j_value == t_value


def test_sequential_forward_matches_torch_and_slices_keep_keys():
    t, j = twins(lambda nn: nn.Sequential(OrderedDict([
        ("linear_in", nn.Linear(5, 16)), ("relu_in", nn.ReLU()), ("linear_out", nn.Linear(16, 5)), ("out", nn.Tanh()),
    ])))
    copy_torch_weights(j, t)
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)))
    assert list(j[1:3]._modules) == ["relu_in", "linear_out"]
    assert [type(m).__name__ for m in j] == ["Linear", "ReLU", "Linear", "Tanh"]
    assert j[1:3][1] is j.linear_out  # slicing shares the modules


MODULELIST_OPS = [
    lambda s, nn: s[0],
    lambda s, nn: s[-1],
    lambda s, nn: s[1:],
    lambda s, nn: s[5],
    lambda s, nn: s.append(nn.ReLU()),
    lambda s, nn: s.extend([nn.ReLU(), nn.Linear(1, 1)]),
    lambda s, nn: s.extend(3),
    lambda s, nn: s.insert(1, nn.Tanh()),
    lambda s, nn: s.insert(0, nn.Tanh()),
    lambda s, nn: s.pop(0),
    lambda s, nn: s.__delitem__(1),
    lambda s, nn: s.__delitem__(slice(0, 2)),
    lambda s, nn: s.__setitem__(0, nn.Tanh()),
    lambda s, nn: s.__iadd__([nn.Linear(2, 2)]),
    lambda s, nn: s + nn.ModuleList([nn.Linear(2, 2)]),
    lambda s, nn: len(s),
]


@pytest.mark.parametrize("op", range(len(MODULELIST_OPS)))
def test_modulelist_operations_match_torch(op):
    def make(nn):
        return nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU()])

    t, j = twins(make)
    fn = MODULELIST_OPS[op]
    assert outcome(lambda: fn(j, jnn)) == outcome(lambda: fn(t, torch.nn))
    same(t, j)


def test_modulelist_repr_compresses_runs_like_torch():
    t, j = twins(lambda nn: nn.ModuleList(
        [nn.Linear(2, 2)] * 3 + [nn.ReLU(), nn.Linear(2, 2), nn.ModuleList([nn.ReLU(), nn.ReLU()])]
    ))
    assert repr(j) == repr(t)
    assert "(0-2): 3 x Linear(in_features=2, out_features=2, bias=True)" in repr(j)
    assert repr(jnn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"


def test_moduledict_matches_torch():
    def make(nn):
        d = nn.ModuleDict({"b": nn.Linear(1, 2), "a": nn.ReLU()})
        d["c"] = nn.Linear(2, 3)
        d.update([("e", nn.Tanh())])
        d.update(OrderedDict([("f", nn.Linear(3, 1))]))
        del d["a"]
        return d

    t, j = twins(make)
    same(t, j)
    assert list(j.keys()) == list(t.keys())
    assert "c" in j and "a" not in j and len(j) == len(t)
    assert type(j.pop("c")).__name__ == type(t.pop("c")).__name__ == "Linear"
    assert list(j) == list(t) and list(j.state_dict()) == list(t.state_dict())
    assert outcome(lambda: j.update([("x", jnn.ReLU(), 1)])) == outcome(lambda: t.update([("x", torch.nn.ReLU(), 1)]))
    j.clear()
    assert len(j) == 0 and list(j.state_dict()) == []


def test_parameterlist_and_parameterdict_match_torch():
    pl_t = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(3, 4)), torch.nn.Parameter(torch.zeros(2))])
    pl_j = jnn.ParameterList([jnp.ones((3, 4)), jnp.zeros(2)])
    pl_t.append(torch.nn.Parameter(torch.ones(5)))
    pl_j.append(jnp.ones(5))
    same(pl_t, pl_j)
    assert [tuple(p.shape) for p in pl_j] == [tuple(p.shape) for p in pl_t]
    assert [tuple(p.shape) for p in pl_j[1:]] == [(2,), (5,)]
    assert outcome(lambda: pl_j[9]) == outcome(lambda: pl_t[9])
    with pytest.raises(RuntimeError, match="ParameterList should not be called"):
        pl_j(1)

    pd_t = torch.nn.ParameterDict({"w": torch.nn.Parameter(torch.ones(2, 2)), "a": torch.nn.Parameter(torch.ones(1))})
    pd_j = jnn.ParameterDict({"w": jnp.ones((2, 2)), "a": jnp.ones(1)})
    pd_t["z"] = torch.nn.Parameter(torch.zeros(3))
    pd_j["z"] = jnp.zeros(3)
    same(pd_t, pd_j)
    assert list(pd_j.keys()) == list(pd_t.keys())
    assert pd_j.get("missing", 5) == 5 and "z" in pd_j
    assert pd_j.pop("z").shape == (3,) and "z" not in pd_j and "z" not in pd_j.state_dict()
    assert outcome(lambda: pd_j[3])[:2] == outcome(lambda: pd_t[3])[:2]


def test_containers_inside_custom_modules_nest_freely():
    def make(nn):
        class Inner(nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
                self.scales = nn.ParameterList([nn.Parameter(torch.ones(4)) if nn is torch.nn else jnp.ones(4)])

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x) * self.scales[0]
                return x

        class Outer(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(Inner(), nn.ReLU(), nn.ModuleDict({"k": Inner()})["k"])
                self.heads = nn.ModuleDict({"a": nn.Linear(4, 1), "b": nn.Sequential(Inner(), nn.Linear(4, 2))})

            def forward(self, x):
                h = self.body(x)
                return self.heads["a"](h), self.heads["b"](h)

        return Outer()

    t, j = twins(make)
    same(t, j)
    copy_torch_weights(j, t)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    for a, b in zip(j(jnp.asarray(x)), t(torch.from_numpy(x)), strict=True):
        assert_close(a, b, rtol=1e-5, atol=1e-5)
