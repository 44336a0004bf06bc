"""Forward hooks against torch.nn: call order, what hooks see and return, prepend, always_call, removal, global
hooks; hooks under jax.jit and through jnn.split; capture_outputs / feature_extractor; backward hooks refused."""

from __future__ import annotations

import copy
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.modules.module as torch_module_mod
from helpers import assert_close, copy_torch_weights, torch_state

import jnn
import jnn.modules.module as jnn_module_mod

X = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)


def twin_mlps():
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    return t, copy_torch_weights(jnn.Sequential(jnn.Linear(3, 4), jnn.ReLU(), jnn.Linear(4, 2)), t)


def shapes(tree):
    if hasattr(tree, "shape"):
        return tuple(tree.shape)
    if isinstance(tree, (tuple, list)):
        return tuple(shapes(x) for x in tree)
    if isinstance(tree, dict):
        return {k: shapes(v) for k, v in tree.items()}
    return tree


def as_input(lib, x):
    return torch.from_numpy(x) if lib is torch.nn else jnp.asarray(x)


def logging_hooks(net, log):
    """The same hooks, registered the same way on a torch or a jnn net; they log and change values."""
    def tag(name):
        def pre(module, args):
            log.append((name, type(module).__name__, shapes(args)))
        return pre
    handles = [
        net.register_forward_pre_hook(tag("root-pre")),
        net[0].register_forward_pre_hook(tag("fc0-pre")),
        net[0].register_forward_pre_hook(lambda m, args: args[0] * 2),  # a non-tuple result is wrapped
        net[0].register_forward_pre_hook(tag("fc0-pre-first"), prepend=True),
        net[0].register_forward_pre_hook(
            lambda m, args, kwargs: log.append(("fc0-pre-kw", sorted(kwargs), shapes(args))), with_kwargs=True),
        net[1].register_forward_hook(lambda m, args, out: log.append(("relu-fwd", shapes(args), shapes(out)))),
        net[1].register_forward_hook(lambda m, args, out: out + 1),
        net[1].register_forward_hook(lambda m, args, out: log.append(("relu-first", shapes(out))), prepend=True),
        net[2].register_forward_hook(
            lambda m, args, kwargs, out: log.append(("fc2-kw", sorted(kwargs), shapes(out))), with_kwargs=True),
        net.register_forward_hook(lambda m, args, out: log.append(("root-fwd", shapes(out)))),
    ]
    return handles


def test_call_order_args_and_modifications_match_torch():
    t, j = twin_mlps()
    results = {}
    for lib, net in ((torch.nn, t), (jnn, j)):
        log = []
        handles = logging_hooks(net, log)
        out = net(as_input(lib, X))
        results[lib] = (log, out)
        for h in handles:
            h.remove()
        assert not net[0]._forward_pre_hooks and not net[1]._forward_hooks
    assert results[jnn][0] == results[torch.nn][0]
    assert_close(results[jnn][1], results[torch.nn][1])
    assert_close(j(jnp.asarray(X)), t(torch.from_numpy(X)))  # all hooks gone


def test_with_kwargs_pre_hook_changes_args_and_kwargs_like_torch():
    def make(lib):
        class Scaled(lib.Module):
            def forward(self, x, scale=1.0):
                return x * scale
        return Scaled()

    def trial(lib):
        net, log = make(lib), []
        net.register_forward_pre_hook(lambda m, args, kwargs: ((args[0] + 1,), {**kwargs, "scale": 3.0}),
                                      with_kwargs=True)
        net.register_forward_hook(lambda m, args, kwargs, out: log.append((dict(kwargs), float(out.sum()))),
                                  with_kwargs=True)
        out = net(as_input(lib, X), scale=2.0)
        bad = make(lib)
        bad.register_forward_pre_hook(lambda m, args, kwargs: (args,), with_kwargs=True)
        with pytest.raises(RuntimeError) as info:
            bad(as_input(lib, X))
        return log, np.asarray(out), str(info.value)

    (log_j, out_j, err_j), (log_t, out_t, err_t) = trial(jnn), trial(torch.nn)
    assert [kw for kw, _ in log_j] == [kw for kw, _ in log_t] == [{"scale": 3.0}]
    assert log_j[0][1] == pytest.approx(log_t[0][1], rel=1e-5)
    np.testing.assert_allclose(out_j, out_t, rtol=1e-6)
    np.testing.assert_allclose(out_j, (X + 1) * 3, rtol=1e-6)
    assert err_j.startswith("forward pre-hook must return None or a tuple of (new_args, new_kwargs)")
    assert err_t.startswith("forward pre-hook must return None or a tuple of (new_args, new_kwargs)")


def test_always_call_runs_on_exception_like_torch():
    def make(lib):
        class Boom(lib.Module):
            def forward(self, x):
                raise ValueError("boom")
        return Boom()

    def trial(lib):
        log = []
        net = make(lib)
        net.register_forward_hook(lambda m, a, out: log.append(("plain", out)))
        net.register_forward_hook(lambda m, a, out: log.append(("always", out)), always_call=True)
        net.register_forward_hook(lambda m, a, out: 1 / 0, always_call=True)
        net.register_forward_hook(lambda m, a, kw, out: log.append(("always-kw", kw)), always_call=True,
                                  with_kwargs=True)
        with warnings.catch_warnings(record=True) as caught, pytest.raises(ValueError, match="boom"):
            warnings.simplefilter("always")
            net(as_input(lib, X))
        # a pre-hook that raises: always_call hooks still run
        log2 = []
        other = make(lib)
        other.register_forward_pre_hook(lambda m, a: 1 / 0)
        other.register_forward_hook(lambda m, a, out: log2.append("always"), always_call=True)
        with pytest.raises(ZeroDivisionError):
            other(as_input(lib, X))
        return log, [str(w.message) for w in caught], log2

    logs = {lib: trial(lib) for lib in (torch.nn, jnn)}
    assert logs[jnn][0] == logs[torch.nn][0] == [("always", None), ("always-kw", {})]
    assert len(logs[jnn][1]) == len(logs[torch.nn][1]) == 1
    assert logs[jnn][1][0] == logs[torch.nn][1][0]
    assert logs[jnn][2] == logs[torch.nn][2] == ["always"]


def test_handles_remove_context_manager_and_ids_like_torch():
    def trial(lib):
        net, log = lib.Identity(), []
        handles = [net.register_forward_hook(lambda m, a, o, i=i: log.append(i)) for i in range(3)]
        assert [h.id for h in handles] == sorted(h.id for h in handles) and len({h.id for h in handles}) == 3
        assert list(net._forward_hooks) == [h.id for h in handles]
        handles[1].remove()
        handles[1].remove()  # twice is fine
        with net.register_forward_hook(lambda m, a, o: log.append("ctx"), prepend=True) as handle:
            assert list(net._forward_hooks)[0] == handle.id
            net(as_input(lib, X))
        net(as_input(lib, X))
        return log

    orders = {lib: trial(lib) for lib in (torch.nn, jnn)}
    assert orders[jnn] == orders[torch.nn] == ["ctx", 0, 2, 0, 2]


def test_global_hooks_like_torch_and_retrace_under_jit():
    t, j = twin_mlps()
    def trial(lib, net, mod):
        log = []
        net[0].register_forward_pre_hook(lambda m, a: log.append(("own-pre", type(m).__name__)))
        pre = mod.register_module_forward_pre_hook(lambda m, a: log.append(("global-pre", type(m).__name__)))
        fwd = mod.register_module_forward_hook(lambda m, a, kw, o: log.append(("global-fwd", type(m).__name__)),
                                               with_kwargs=True)
        try:
            net(as_input(lib, X))
        finally:
            pre.remove()
            fwd.remove()
        net(as_input(lib, X))
        return log

    logs = {jnn: trial(jnn, j, jnn_module_mod), torch.nn: trial(torch.nn, t, torch_module_mod)}
    assert logs[jnn] == logs[torch.nn]

    traces = []
    run = jax.jit(lambda m, x: (traces.append(1), m(x))[1])
    plain = run(j, jnp.asarray(X))
    with jnn_module_mod.register_module_forward_hook(lambda m, a, o: o * 0 if isinstance(m, jnn.Linear) else None):
        zeroed = run(j, jnp.asarray(X))
    again = run(j, jnp.asarray(X))
    assert len(traces) == 2  # retraced once with the hook; after removal the first program is reused
    np.testing.assert_array_equal(zeroed, np.zeros((2, 2), np.float32))
    np.testing.assert_array_equal(again, plain)


def test_hooks_under_jit_retrace_and_change_the_jitted_result():
    t, j = twin_mlps()
    traces = []
    run = jax.jit(lambda m, x: (traces.append(1), m(x))[1])
    x = jnp.asarray(X)
    reference = run(j, x)
    run(j, x)
    assert len(traces) == 1
    handle = j[1].register_forward_hook(lambda m, args, out: out * 0 + 5)
    t[1].register_forward_hook(lambda m, args, out: out * 0 + 5)
    hooked = run(j, x)
    assert len(traces) == 2
    assert_close(hooked, t(torch.from_numpy(X)))
    run(j, x)
    assert len(traces) == 2  # hooks are static: no retrace while they stay the same
    handle.remove()
    np.testing.assert_array_equal(run(j, x), reference)
    # a hook seeing the traced values while jit traces: it runs at trace time, not on every call
    seen = []
    j.register_forward_hook(lambda m, a, out: seen.append(isinstance(out, jax.core.Tracer)))
    run(j, x)
    run(j, x)
    assert seen == [True]


def test_hooks_run_inside_split_apply_and_gradients_match_torch():
    t, j = twin_mlps()
    t[1].register_forward_hook(lambda m, args, out: out * 2)
    t[2].register_forward_pre_hook(lambda m, args: args[0] - 0.5)
    j[1].register_forward_hook(lambda m, args, out: out * 2)
    j[2].register_forward_pre_hook(lambda m, args: args[0] - 0.5)
    apply, params, buffers = jnn.split(j)
    out, _ = jax.jit(apply)(params, buffers, jnp.asarray(X))
    assert_close(out, t(torch.from_numpy(X)))
    grads = jax.grad(lambda p: (apply(p, buffers, jnp.asarray(X))[0] ** 2).sum())(params)
    t.zero_grad()
    (t(torch.from_numpy(X)) ** 2).sum().backward()
    for name, p in t.named_parameters():
        assert_close(grads[name], p.grad)


def test_deepcopy_keeps_hooks_and_removal_affects_only_the_original():
    net, log = jnn.Identity(), []
    handle = net.register_forward_hook(lambda m, a, o: log.append("hook"))
    clone = copy.deepcopy(net)
    handle.remove()
    net(jnp.ones(1))
    clone(jnp.ones(1))
    assert log == ["hook"]


def test_capture_outputs_eager_and_jitted_match_torch_features():
    t, j = twin_mlps()
    feats_t = {}
    t[1].register_forward_hook(lambda m, a, o: feats_t.__setitem__("hidden", o.detach().numpy()))
    y_t = t(torch.from_numpy(X))
    with jnn.capture_outputs(j, {"1": "hidden", "": "out"}) as feats:
        j(jnp.asarray(X))
    assert list(feats) == ["hidden", "out"]
    assert_close(feats["hidden"], feats_t["hidden"])
    assert_close(feats["out"], y_t)
    assert not j[1]._forward_hooks and not j._forward_hooks  # hooks gone after the block

    @jax.jit
    def run(net, x):
        with jnn.capture_outputs(net, ["1", "2"]) as inner:
            net(x)
        return inner

    jitted = run(j, jnp.asarray(X))
    assert list(jitted) == ["1", "2"]
    assert_close(jitted["1"], feats_t["hidden"])
    assert_close(jitted["2"], y_t)


def test_capture_outside_jit_raises_instead_of_leaking():
    _, j = twin_mlps()
    run = jax.jit(lambda m, x: m(x))
    with pytest.raises(RuntimeError, match="different JAX trace.*inside the jitted function"):
        with jnn.capture_outputs(j, ["1"]):
            run(j, jnp.asarray(X))
    with pytest.raises(RuntimeError, match="different JAX trace"):
        with jnn.capture_outputs(j, ["1"]):
            jax.jit(lambda x: j(x))(jnp.asarray(X))


def test_feature_extractor_through_split_and_jit_matches_torch():
    t, j = twin_mlps()
    feats_t = {}
    t[0].register_forward_hook(lambda m, a, o: feats_t.__setitem__("fc0", o.detach().numpy()))
    t[1].register_forward_hook(lambda m, a, o: feats_t.__setitem__("relu", o.detach().numpy()))
    t(torch.from_numpy(X))
    body = jnn.feature_extractor(j, {"1": "relu", "0": "fc0"})
    assert list(body.state_dict()) == list(torch_state(t))
    assert not j._forward_hooks and not j._forward_pre_hooks  # the original model is untouched
    eager = body(jnp.asarray(X))
    assert list(eager) == ["relu", "fc0"]
    apply, params, buffers = jnn.split(body)
    feats, _ = jax.jit(apply)(params, buffers, jnp.asarray(X))
    pytree = jax.jit(lambda m, x: m(x))(body, jnp.asarray(X))
    for result in (eager, feats, pytree):
        assert_close(result["fc0"], feats_t["fc0"])
        assert_close(result["relu"], feats_t["relu"])
    assert_close(body[0](jnp.asarray(X)), feats_t["fc0"])  # a submodule called alone is a plain layer


def test_feature_extractor_repeated_module_and_errors():
    relu = jnn.ReLU()

    class Twice(jnn.Module):
        def __init__(self):
            super().__init__()
            self.act = relu
            self.unused = jnn.Linear(2, 2)

        def forward(self, x):
            return self.act(self.act(x - 1) - 1)

    body = jnn.feature_extractor(Twice(), ["act"])
    feats = body(jnp.array([3.0, 1.5]))
    assert list(feats) == ["act", "act:1"]
    np.testing.assert_allclose(feats["act"], [2.0, 0.5])
    np.testing.assert_allclose(feats["act:1"], [1.0, 0.0])
    with pytest.raises(RuntimeError, match=r"\['unused'\].*did not run"):
        jnn.feature_extractor(Twice(), ["unused"])(jnp.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failing forward raises its own error, with no warning from the hooks
        with pytest.raises(TypeError):
            jnn.feature_extractor(Twice(), ["act"])("not an array")
    with pytest.raises(ValueError, match="'nope' is not a submodule of Twice.*'act'"):
        jnn.feature_extractor(Twice(), ["nope"])
    with pytest.raises(TypeError, match="wrap it in a list"):
        jnn.capture_outputs(Twice(), "act").__enter__()
    with pytest.raises(ValueError, match="same output name"):
        jnn.feature_extractor(Twice(), {"act": "x", "unused": "x"})


def test_backward_hooks_raise_a_clear_error():
    net = jnn.Linear(2, 2)
    for register in (net.register_full_backward_hook, net.register_full_backward_pre_hook,
                     net.register_backward_hook, jnn_module_mod.register_module_full_backward_hook):
        with pytest.raises(NotImplementedError, match=r"jax\.grad.*jnn\.split.*jax\.vjp"):
            register(lambda *a: None)


def test_bad_hooks_and_no_hook_fast_path(monkeypatch):
    net = jnn.Linear(2, 2)
    with pytest.raises(TypeError, match="Linear.register_forward_hook: the hook must be callable"):
        net.register_forward_hook("not a function")
    with pytest.raises(TypeError):
        net.register_forward_hook(lambda *a: None, True)  # prepend is keyword-only, as in torch

    def fail(*a, **k):
        raise AssertionError("hook machinery used without hooks")

    monkeypatch.setattr(jnn.Module, "_call_with_hooks", fail)
    assert net(jnp.ones(2)).shape == (2,)
    net.register_forward_hook(lambda *a: None)
    with pytest.raises(AssertionError, match="hook machinery"):
        net(jnp.ones(2))
