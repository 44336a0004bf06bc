"""The three ways to run a model: eager, module as a pytree, and jnn.split's pure apply; and randomness."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights, torch_state

import jnn
import jnn.functional as JF


def small_cnn(nn, F):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.bn = nn.BatchNorm2d(4)
            self.pool = nn.MaxPool2d(2)
            self.drop = nn.Dropout(0.5)
            self.fc = nn.Linear(4 * 3 * 3, 3)

        def forward(self, x):
            x = self.pool(F.relu(self.bn(self.conv(x))))
            return self.fc(self.drop(x.reshape(x.shape[0], -1)))

    return Net()


def x_batch(seed=0, n=5):
    return np.random.default_rng(seed).standard_normal((n, 1, 8, 8)).astype(np.float32)


# --- module as a pytree ------------------------------------------------------------------------------------


def test_jit_over_the_module_equals_eager_and_key_paths_are_state_dict_names():
    net = small_cnn(jnn, JF).eval()
    x = jnp.asarray(x_batch())
    np.testing.assert_allclose(jax.jit(lambda m, x: m(x))(net, x), net(x), rtol=1e-5, atol=1e-6)
    paths, leaves = zip(*jax.tree_util.tree_flatten_with_path(net)[0], strict=True)
    names = [jax.tree_util.keystr(p, simple=True, separator=".") for p in paths]
    assert names == list(net.state_dict())
    assert all(a is b for a, b in zip(leaves, net.state_dict().values(), strict=True))


def test_train_eval_switch_retraces_instead_of_running_the_wrong_mode():
    traces = []

    @jax.jit
    def run(m, x):
        traces.append(m.training)
        return m(x)

    net = small_cnn(jnn, JF)
    x = jnp.asarray(x_batch())
    eval_out = run(net.eval(), x)
    np.testing.assert_allclose(eval_out, net(x), rtol=1e-5, atol=1e-6)
    with jnn.random.fork(jax.random.key(0)):
        train_out = run(net.train(), x)
    assert traces == [False, True]
    assert not np.allclose(train_out, eval_out)
    run(net.eval(), x)
    assert traces == [False, True]  # cached again: same static structure
    net.drop.p = 0.25  # a hyperparameter is static too
    run(net, x)
    assert len(traces) == 3


def test_jitted_function_returns_the_changed_module_and_leaves_the_caller_untouched():
    t, j = small_cnn(torch.nn, torch.nn.functional), small_cnn(jnn, JF)
    t.drop.p = j.drop.p = 0.0
    copy_torch_weights(j, t)
    before = {k: np.asarray(v) for k, v in j.state_dict().items()}
    step = jax.jit(lambda m, x: (m(x), m))
    m = j
    for seed in range(3):
        x = x_batch(seed)
        out, m = step(m, jnp.asarray(x))
        assert_close(out, t(torch.from_numpy(x)), rtol=1e-4, atol=1e-5)
    for k, v in torch_state(t).items():
        assert_close(m.state_dict()[k], v, rtol=1e-4, atol=1e-6)
    assert int(m.bn.num_batches_tracked) == 3
    for k, v in j.state_dict().items():  # the caller's module did not change
        np.testing.assert_array_equal(np.asarray(v), before[k])


def test_a_returned_module_is_built_when_first_used():
    # jit returns the root alone, holding its flattening: the next step flattens it without building the tree
    # (a training step's model and optimizer state); anything else done with it builds it first
    import copy
    import gc
    import pickle
    import weakref

    from jnn.modules import _pytree

    net = small_cnn(jnn, JF)
    step = jax.jit(lambda m: m)
    state = {k: np.asarray(v) for k, v in net.state_dict().items()}
    uses = {
        "attribute": lambda m: m.conv.weight.shape == (4, 1, 3, 3),
        "state_dict": lambda m: all(np.array_equal(v, state[k]) for k, v in m.state_dict().items()),
        "vars": lambda m: set(vars(m)) == set(vars(net)) and "_modules" in vars(m),
        "dict item": lambda m: list(m.__dict__["_modules"]) == ["conv", "bn", "pool", "drop", "fc"],
        "dict get": lambda m: m.__dict__.get("_buffers") == {},
        "setattr": lambda m: (setattr(m, "extra", 3), m.extra == 3 and m.conv.kernel_size == (3, 3))[1],
        "train/eval": lambda m: not m.eval().bn.training,
        "repr": lambda m: repr(m) == repr(net),
        "deepcopy": lambda m: copy.deepcopy(m).fc.weight.shape == (3, 36),
        "copy": lambda m: copy.copy(m).fc is m.fc,
        "dir": lambda m: "fc" in dir(m),
        "modules": lambda m: len(list(m.modules())) == 6,
        "delattr": lambda m: (delattr(m, "drop"), not hasattr(m, "drop"))[1],
    }
    for name, use in uses.items():
        out = step(net)
        assert type(out.__dict__) is _pytree.PendingDict and out.__dict__.pending is not None, name
        leaves, _ = jax.tree_util.tree_flatten(step(out))
        assert out.__dict__.pending is not None and len(leaves) == len(state), name  # flattened, not built
        assert use(out), name
        assert out.__dict__.pending is None, name
    seq = jnn.Sequential(jnn.Linear(2, 3))
    back = pickle.loads(pickle.dumps(step(seq)))  # a module-level class pickles
    assert back[0].weight.shape == (3, 2) and "_jnn_flat" not in vars(back)  # without this process's cache
    assert type(pickle.loads(pickle.dumps(vars(step(seq))))) is dict
    out = step(net)
    leaf = weakref.ref(jax.tree_util.tree_leaves(out)[0])
    collecting = gc.isenabled()
    gc.disable()  # a returned module that is dropped frees its arrays at once (no reference cycle)
    try:
        del out
        assert leaf() is None
    finally:
        if collecting:
            gc.enable()


def test_closure_captured_module_that_a_transformation_changes_raises_a_clear_error():
    net = small_cnn(jnn, JF)
    net.drop.p = 0.0
    with pytest.raises(RuntimeError, match=r"captured by a closure.*jnn.split"):
        jax.jit(lambda x: net(x))(jnp.asarray(x_batch()))
    assert int(net.bn.num_batches_tracked) == 0  # nothing leaked in
    net.eval()
    jax.jit(lambda x: net(x))(jnp.asarray(x_batch()))  # eval mode changes nothing: fine


def test_grad_and_vmap_over_the_module():
    net = small_cnn(jnn, JF).eval()
    x = jnp.asarray(x_batch())
    grads = jax.grad(lambda m: m(x).sum(), allow_int=True)(net)  # num_batches_tracked is an integer leaf
    assert isinstance(grads, type(net))
    assert grads.fc.weight.shape == net.fc.weight.shape and float(jnp.abs(grads.fc.weight).sum()) > 0
    per_example = jax.vmap(lambda m, xi: m(xi[None])[0], in_axes=(None, 0))(net, x)
    np.testing.assert_allclose(per_example, net(x), rtol=1e-5, atol=1e-6)


# --- split / apply / merge --------------------------------------------------------------------------------


def test_split_names_and_apply_matches_torch_in_train_mode_with_buffers():
    t, j = small_cnn(torch.nn, torch.nn.functional), small_cnn(jnn, JF)
    t.drop.p = j.drop.p = 0.0
    copy_torch_weights(j, t)
    apply, params, buffers = jnn.split(j)
    assert list(params) == [n for n, _ in t.named_parameters()]
    assert list(buffers) == [n for n, _ in t.named_buffers()]
    step = jax.jit(apply)
    for seed in range(3):
        x = x_batch(seed)
        out, buffers = step(params, buffers, jnp.asarray(x))
        assert_close(out, t(torch.from_numpy(x)), rtol=1e-4, atol=1e-5)
    for k, v in t.named_buffers():
        assert_close(buffers[k], v, rtol=1e-4, atol=1e-6)
    assert int(j.bn.num_batches_tracked) == 0  # apply never mutates the original
    merged = jnn.merge(apply, params, buffers)
    assert type(merged).__name__ == "Net" and int(merged.bn.num_batches_tracked) == 3
    for k, v in torch_state(t).items():
        assert_close(merged.state_dict()[k], v, rtol=1e-4, atol=1e-6)


def test_grad_through_apply_matches_torch_autograd():
    t, j = small_cnn(torch.nn, torch.nn.functional), small_cnn(jnn, JF)
    t.drop.p = j.drop.p = 0.0
    copy_torch_weights(j, t)
    x = x_batch()
    apply, params, buffers = jnn.split(j)
    grads = jax.jit(jax.grad(lambda p: (apply(p, buffers, jnp.asarray(x))[0] ** 2).sum()))(params)
    assert set(grads) == set(params)
    (t(torch.from_numpy(x)) ** 2).sum().backward()
    for name, p in t.named_parameters():
        assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-4)


def test_apply_train_flag_overrides_and_defaults_to_split_time_mode():
    net = small_cnn(jnn, JF).eval()
    apply, params, buffers = jnn.split(net)
    x = jnp.asarray(x_batch())
    out_default, b1 = apply(params, buffers, x)
    np.testing.assert_allclose(out_default, net(x), rtol=1e-6)
    assert int(b1["bn.num_batches_tracked"]) == 0
    out_train, b2 = apply(params, buffers, x, train=True, key=jax.random.key(1))
    assert int(b2["bn.num_batches_tracked"]) == 1 and not np.allclose(out_train, out_default)
    assert not net.training  # the module kept its mode


def test_vmap_over_apply():
    net = small_cnn(jnn, JF).eval()
    apply, params, buffers = jnn.split(net)
    x = jnp.asarray(x_batch())
    out = jax.vmap(lambda xi: apply(params, buffers, xi[None])[0][0])(x)
    np.testing.assert_allclose(out, net(x), rtol=1e-5, atol=1e-6)


def test_apply_reports_missing_keys_clearly():
    apply, params, buffers = jnn.split(small_cnn(jnn, JF))
    params.pop("fc.bias")
    with pytest.raises(KeyError, match=r"params is missing \['fc.bias'\]"):
        apply(params, buffers, jnp.asarray(x_batch()))
    with pytest.raises(TypeError, match="jnn.merge expects"):
        jnn.merge(lambda: None, params, buffers)


def test_split_of_tied_parameters_gives_one_entry_and_merge_keeps_the_tie():
    a, b = jnn.Linear(3, 3), jnn.Linear(3, 3)
    b.weight = a.weight
    net = jnn.Sequential(a, jnn.ReLU(), b)
    apply, params, buffers = jnn.split(net)
    assert list(params) == ["0.weight", "0.bias", "2.bias"]
    grads = jax.grad(lambda p: apply(p, buffers, jnp.ones((2, 3)))[0].sum())(params)
    # the tied weight's gradient is the sum of both uses
    eps_grad = jax.grad(lambda w: jnn.merge(apply, {**params, "0.weight": w}, buffers)(jnp.ones((2, 3))).sum())(
        params["0.weight"])
    np.testing.assert_allclose(grads["0.weight"], eps_grad, rtol=1e-6)
    merged = jnn.merge(apply, params, buffers)
    assert merged[0].weight is merged[2].weight


# --- randomness ---------------------------------------------------------------------------------------------


def test_manual_seed_makes_init_and_eager_dropout_reproducible():
    def run():
        jnn.manual_seed(123)
        net = small_cnn(jnn, JF)
        return net.fc.weight, net.drop(jnp.ones(1000))

    (w1, d1), (w2, d2) = run(), run()
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(d1, d2)
    jnn.manual_seed(124)
    assert not np.array_equal(small_cnn(jnn, JF).fc.weight, w1)
    drop = jnn.Dropout(0.5)
    assert not np.array_equal(drop(jnp.ones(1000)), drop(jnp.ones(1000)))  # the stream advances
    assert jnn.random.initial_seed() == 124


def test_layers_accept_an_explicit_init_key():
    a, b = jnn.Linear(4, 4, key=jax.random.key(7)), jnn.Linear(4, 4, key=jax.random.key(7))
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, jnn.Linear(4, 4, key=jax.random.key(8)).weight)
    jax.jit(lambda k: jnn.Linear(2, 2, key=k).weight)(jax.random.key(0))  # init under jit with a key


def test_dropout_under_a_transformation_needs_a_key_and_says_how():
    net = small_cnn(jnn, JF)
    apply, params, buffers = jnn.split(net)
    x = jnp.asarray(x_batch())
    with pytest.raises(jnn.random.MissingKeyError, match=r"apply\(params, buffers, x, key=key\)"):
        jax.jit(apply)(params, buffers, x)
    with pytest.raises(jnn.random.MissingKeyError, match="jnn.random.fork"):
        jax.jit(lambda m, x: m(x))(net, x)
    step = jax.jit(lambda p, b, x, k: apply(p, b, x, key=k)[0])
    k1, k2 = jax.random.key(1), jax.random.key(2)
    out1, out1b, out2 = step(params, buffers, x, k1), step(params, buffers, x, k1), step(params, buffers, x, k2)
    np.testing.assert_array_equal(out1, out1b)
    assert not np.allclose(out1, out2)
    # the pytree path takes its key from a fork context, inside the transformation
    fork_run = jax.jit(lambda m, x, k: _with_fork(m, x, k))
    np.testing.assert_array_equal(fork_run(net, x, k1), fork_run(net, x, k1))
    assert not np.allclose(fork_run(net, x, k1), fork_run(net, x, k2))


def _with_fork(m, x, k):
    with jnn.random.fork(k):
        return m(x)


def test_fork_rejects_non_keys():
    with pytest.raises(TypeError, match="expected a JAX PRNG key"):
        with jnn.random.fork(jnp.ones(3)):
            pass
    with jnn.random.fork(jax.random.PRNGKey(0)):  # raw uint32 keys work too
        assert jnn.random.next_key() is not None


def test_traced_train_flag_gets_a_clear_error():
    apply, params, buffers = jnn.split(small_cnn(jnn, JF))
    with pytest.raises(TypeError, match="static_argnames='train'"):
        jax.jit(apply)(params, buffers, jnp.asarray(x_batch()), train=False)
    out, _ = jax.jit(apply, static_argnames="train")(params, buffers, jnp.asarray(x_batch()), train=False)
    assert out.shape == (5, 3)


def test_first_draw_of_the_process_under_jit_raises_and_leaves_the_stream_usable():
    import subprocess
    import sys

    code = (
        "import jax, jax.numpy as jnp, jnn\n"
        "try:\n"
        "    jax.jit(lambda x: jnn.Dropout(0.5)(x))(jnp.ones(4))\n"
        "except jnn.random.MissingKeyError:\n"
        "    print('raised')\n"
        "print(jnn.Dropout(0.5)(jnp.ones(4)).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["raised", "(4,)"]
