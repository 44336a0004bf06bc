"""torch's per-module state-dict path: _load_from_state_dict overrides, versions in _metadata, and the
state-dict / load-state-dict hooks, each compared with torch on the same module and the same hooks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn as tnn

import jnn
import jnn as nn


def build(lib):
    return lib.Sequential(lib.Linear(3, 4), lib.BatchNorm1d(4), lib.Sequential(lib.Linear(4, 2), lib.ReLU()))


def torch_pair(factory=build):
    torch.manual_seed(0)
    tmodel = factory(tnn)
    model = factory(nn)
    model.load_state_dict({k: v.numpy() for k, v in tmodel.state_dict().items()})
    return tmodel, model


def numpy_sd(sd):
    return {k: np.asarray(v) for k, v in sd.items()}


def assert_same_state(model, tmodel):
    ours, theirs = model.state_dict(), tmodel.state_dict()
    assert list(ours) == list(theirs)
    for key in theirs:
        np.testing.assert_allclose(np.asarray(ours[key]), theirs[key].numpy(), rtol=0, atol=0, err_msg=key)


def test_state_dict_metadata_records_versions_as_torch():
    tmodel, model = torch_pair()
    ours, theirs = model.state_dict(), tmodel.state_dict()
    assert dict(ours._metadata) == dict(theirs._metadata)
    assert ours._metadata["1"] == {"version": 2}
    assert model.state_dict(prefix="net.")._metadata.keys() == tmodel.state_dict(prefix="net.")._metadata.keys()


def frozen_bn(lib):
    """torchvision's FrozenBatchNorm2d: buffers only, drops num_batches_tracked in _load_from_state_dict."""

    class FrozenBatchNorm2d(lib.Module):
        def __init__(self, n):
            super().__init__()
            self.register_buffer("weight", (torch.ones(n) if lib is tnn else jnp.ones(n)))
            self.register_buffer("bias", (torch.zeros(n) if lib is tnn else jnp.zeros(n)))

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                  error_msgs):
            state_dict.pop(prefix + "num_batches_tracked", None)
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                          unexpected_keys, error_msgs)

    return lib.Sequential(FrozenBatchNorm2d(3))


def renaming(lib):
    """ViT/MNASNet style: a class with _version 2 renames the keys of version-1 checkpoints."""

    class Block(lib.Module):
        _version = 2

        def __init__(self):
            super().__init__()
            self.proj = lib.Linear(2, 2)

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                  error_msgs):
            version = local_metadata.get("version", None)
            if version is None or version < 2:
                for name in ("weight", "bias"):
                    old = f"{prefix}old_proj.{name}"
                    if old in state_dict:
                        state_dict[f"{prefix}proj.{name}"] = state_dict.pop(old)
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                          unexpected_keys, error_msgs)

    return lib.Sequential(lib.Linear(2, 2), Block())


def test_subclass_override_drops_a_key_as_in_torch():
    tmodel, model = frozen_bn(tnn), frozen_bn(nn)
    sd = {"0.weight": np.arange(3.0, dtype=np.float32), "0.bias": np.ones(3, np.float32),
          "0.num_batches_tracked": np.zeros((), np.int64)}
    theirs = tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    ours = model.load_state_dict(sd)
    assert (ours.missing_keys, ours.unexpected_keys) == (theirs.missing_keys, theirs.unexpected_keys) == ([], [])
    assert_same_state(model, tmodel)


@pytest.mark.parametrize("with_metadata", [False, True])
def test_version_dependent_renaming_as_in_torch(with_metadata):
    from collections import OrderedDict

    torch.manual_seed(1)
    tmodel, model = renaming(tnn), renaming(nn)
    old = {k.replace("proj", "old_proj"): v.numpy() + 1 for k, v in tmodel.state_dict().items()}
    sd, tsd = OrderedDict(old), OrderedDict((k, torch.from_numpy(v)) for k, v in old.items())
    if with_metadata:  # saved by version 2 of Block: no renaming, the old keys are unexpected
        sd._metadata = tsd._metadata = {"": {"version": 1}, "0": {"version": 1}, "1": {"version": 2}}
    before = np.asarray(model[1].proj.weight)
    theirs = tmodel.load_state_dict(tsd, strict=False)
    ours = model.load_state_dict(sd, strict=False)
    assert ours.missing_keys == theirs.missing_keys
    assert ours.unexpected_keys == theirs.unexpected_keys
    assert with_metadata == bool(theirs.unexpected_keys)
    if with_metadata:  # not loaded, in either
        np.testing.assert_array_equal(np.asarray(model[1].proj.weight), before)
    else:
        assert_same_state(model, tmodel)


def test_batchnorm_without_num_batches_tracked_loads_as_in_torch():
    tmodel, model = torch_pair()
    sd = {k: v for k, v in tmodel.state_dict().items() if "num_batches" not in k}
    tmodel.load_state_dict(sd)  # no versions: torch fills num_batches_tracked in
    model.load_state_dict(numpy_sd(sd))
    assert_same_state(model, tmodel)
    versioned = tmodel.state_dict()
    del versioned["1.num_batches_tracked"]  # with versions (2): missing, in both
    with pytest.raises(RuntimeError, match='Missing key.*"1.num_batches_tracked"') as theirs:
        tmodel.load_state_dict(versioned)
    ours = type(versioned)(numpy_sd(versioned))
    ours._metadata = versioned._metadata
    with pytest.raises(RuntimeError) as mine:
        model.load_state_dict(ours)
    assert str(mine.value) == str(theirs.value)


def hooked(lib, events):
    model = build(lib)

    def pre(*args):
        module = args[0] if isinstance(args[0], lib.Module) else None
        state_dict, prefix = (args[1], args[2]) if module is not None else (args[0], args[1])
        events.append(("pre", type(module).__name__ if module is not None else None, prefix,
                       sorted(k for k in state_dict)))
        if prefix + "legacy_weight" in state_dict:
            state_dict[prefix + "weight"] = state_dict.pop(prefix + "legacy_weight")

    def post(module, incompatible):
        events.append(("post", type(module).__name__, list(incompatible.missing_keys),
                       list(incompatible.unexpected_keys)))
        while "2.0.bias" in incompatible.missing_keys:
            incompatible.missing_keys.remove("2.0.bias")

    handles = [
        model.register_load_state_dict_pre_hook(pre),
        model[2][0]._register_load_state_dict_pre_hook(pre),
        model[2][0]._register_load_state_dict_pre_hook(pre, with_module=True),
        model[2].register_load_state_dict_post_hook(post),
        model.register_load_state_dict_post_hook(post),
    ]
    return model, handles


def test_load_state_dict_hooks_called_as_in_torch():
    tevents, events = [], []
    torch.manual_seed(0)
    tmodel, handles_t = hooked(tnn, tevents)
    model, handles = hooked(nn, events)
    sd = {k: v.clone() for k, v in tmodel.state_dict().items()}
    sd["2.0.legacy_weight"] = sd.pop("2.0.weight")
    del sd["2.0.bias"]
    theirs = tmodel.load_state_dict(sd)
    ours = model.load_state_dict({k: v.numpy() for k, v in sd.items()})
    assert events == tevents and len(events) == 5
    assert tuple(ours) == tuple(theirs) == ([], [])
    np.testing.assert_array_equal(np.asarray(model[2][0].weight), tmodel[2][0].weight.detach().numpy())
    for handle in handles:
        handle.remove()
    for handle in handles_t:
        handle.remove()
    events.clear()
    with pytest.raises(RuntimeError, match='Missing key.*"2.0.weight"'):
        model.load_state_dict({k: v.numpy() for k, v in sd.items()})
    assert events == []


def test_load_post_hook_must_not_return_a_value():
    for lib in (tnn, nn):
        model = build(lib)
        model.register_load_state_dict_post_hook(lambda module, keys: keys)
        with pytest.raises(AssertionError, match="not expected to return new values"):
            model.load_state_dict(model.state_dict())


def state_hooked(lib, events):
    model = build(lib)
    model[2].register_state_dict_pre_hook(lambda module, prefix, keep_vars: events.append(("pre", prefix)))

    def post(module, state_dict, prefix, local_metadata):
        events.append(("post", prefix, dict(local_metadata), len(state_dict)))
        state_dict.pop(prefix + "1.running_var", None)

    def old_style(module, state_dict, prefix, local_metadata):
        events.append(("old", prefix))
        return type(state_dict)((k, v) for k, v in state_dict.items() if not k.endswith("bias"))

    model.register_state_dict_post_hook(post)
    model[2]._register_state_dict_hook(old_style)
    return model


def test_state_dict_hooks_called_as_in_torch():
    tevents, events = [], []
    tmodel, model = state_hooked(tnn, tevents), state_hooked(nn, events)
    assert list(model.state_dict()) == list(tmodel.state_dict())
    assert events == tevents and [e[0] for e in events] == ["pre", "old", "post"]
    bad = build(nn)
    bad.register_state_dict_post_hook(lambda *args: {})
    with pytest.raises(RuntimeError, match="state_dict post-hook must return None"):
        bad.state_dict()

    def hook(*args):
        return None

    bad.register_state_dict_post_hook(hook)
    tbad = build(tnn)
    tbad.register_state_dict_post_hook(hook)
    with pytest.raises(RuntimeError, match="previously registered via register_state_dict_post_hook"):
        build(nn)._register_state_dict_hook(hook)


def test_extra_state_round_trips_as_in_torch():
    def factory(lib):
        class WithExtra(lib.Module):
            def __init__(self):
                super().__init__()
                self.fc = lib.Linear(2, 2)
                self.step = 0

            def get_extra_state(self):
                return {"step": self.step}

            def set_extra_state(self, state):
                self.step = state["step"]

        return WithExtra()

    tm, m = factory(tnn), factory(nn)
    tm.step = m.step = 7
    assert list(m.state_dict()) == list(tm.state_dict()) == ["_extra_state", "fc.weight", "fc.bias"]
    fresh, tfresh = factory(nn), factory(tnn)
    fresh.load_state_dict(m.state_dict())
    tfresh.load_state_dict(tm.state_dict())
    assert fresh.step == tfresh.step == 7


def test_failed_load_changes_nothing():
    model = build(nn)
    before = numpy_sd(model.state_dict())
    sd = {k: np.full_like(v, 3.0) for k, v in before.items()}
    sd["1.weight"] = np.ones(5, np.float32)
    with pytest.raises(RuntimeError, match="size mismatch for 1.weight"):
        model.load_state_dict(sd)
    for key, value in numpy_sd(model.state_dict()).items():
        np.testing.assert_array_equal(value, before[key])


def test_parameter_and_common_types_namespaces():
    assert nn.parameter.Parameter is nn.Parameter
    assert nn.parameter.Buffer is nn.Buffer
    from jnn.common_types import _size_2_t, _size_any_opt_t  # noqa: F401

    m = nn.Module()
    m.w = nn.parameter.Parameter(jnp.ones(2))
    assert list(dict(m.named_parameters())) == ["w"]
    assert nn.parameter.is_lazy(nn.parameter.UninitializedParameter())
    assert not nn.parameter.is_lazy(jnp.ones(2))


# -- the pytree engine sees direct writes to the slot dicts and class swaps -------------------------------


def test_direct_slot_writes_are_seen_by_jit():
    fc = nn.Linear(2, 2)
    run = jax.jit(lambda m, x: m(x))
    x = jnp.ones((1, 2))
    run(fc, x)
    fc._parameters["weight"] = jnp.zeros((2, 2))
    np.testing.assert_allclose(run(fc, x), fc.bias[None])
    fc._buffers["extra"] = jnp.ones(3)  # a new key changes the structure
    assert [k for k, _ in jax.tree_util.tree_flatten_with_path(fc)[0]][-1][0].name == "extra"
    assert "extra" in fc.state_dict()
    fc._parameters["bias"] = nn.Parameter(jnp.full((2,), 5.0))  # stored as its array
    np.testing.assert_allclose(run(fc, x), jnp.full((1, 2), 5.0))
    del fc._parameters["bias"]
    assert len(jax.tree_util.tree_leaves(fc)) == 2
    seq = nn.Sequential(nn.Linear(2, 2))
    seq._modules["1"] = nn.Tanh()
    assert len(jax.jit(lambda m: m)(seq)) == 2


def test_swapped_class_flattens_and_runs_under_jit_and_split():
    fc = nn.Linear(2, 2)
    cls = type("ParametrizedLinear", (nn.Linear,), {"doubled": property(lambda self: self.weight * 2)})
    fc.__class__ = cls
    assert "__class__" not in fc.__dict__
    copy = jax.tree_util.tree_map(lambda v: v, fc)
    assert type(copy) is cls
    np.testing.assert_allclose(copy.doubled, fc.weight * 2)
    out = jax.jit(lambda m: (m.doubled, m))(fc)
    assert type(out[1]) is cls
    apply, params, buffers = jnn.split(fc)
    assert type(jnn.merge(apply, params, buffers)) is cls
