"""jnn.scan_layers (scan over layers) and jnn.utils.checkpoint (gradient checkpointing), against the unrolled
loop, the non-checkpointed call and PyTorch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.utils.checkpoint
from helpers import assert_close, copy_torch_weights, torch_state

import jnn
import jnn as nn
from jnn.utils.checkpoint import checkpoint, checkpoint_sequential


class Block(nn.Module):
    def __init__(self, width: int = 6, p: float = 0.0) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.bn = nn.BatchNorm1d(width)
        self.drop = nn.Dropout(p)

    def forward(self, x, scale=1.0):
        return x + scale * jnp.tanh(self.drop(self.bn(self.fc(x))))


class Stack(nn.Module):
    def __init__(self, depth: int = 4, scan: bool = True, **block) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Block(**block) for _ in range(depth)])
        self.scan = scan

    def forward(self, x):
        if self.scan:
            return jnn.scan_layers(self.layers, x, scale=0.5)
        for layer in self.layers:
            x = layer(x, scale=0.5)
        return x


def twins(**kw):
    jnn.manual_seed(0)
    scanned = Stack(scan=True, **kw)
    looped = Stack(scan=False, **kw)
    looped.load_state_dict(scanned.state_dict())
    return scanned, looped


def assert_same_state(a: nn.Module, b: nn.Module, atol=1e-6):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_allclose(np.asarray(sa[k]), np.asarray(sb[k]), atol=atol, err_msg=k)


X = jax.random.normal(jax.random.key(1), (5, 6))


# --- scan_layers: the three ways to run ------------------------------------------------------------------


def test_scan_matches_loop_eager_with_buffers_written_back():
    scanned, looped = twins()
    for _ in range(2):
        assert_close(scanned(X), looped(X), atol=1e-6)
    assert_same_state(scanned, looped)
    assert int(scanned.layers[3].bn.num_batches_tracked) == 2
    assert not np.allclose(scanned.layers[0].bn.running_mean, scanned.layers[1].bn.running_mean)


def test_scan_matches_loop_module_as_pytree_under_jit():
    scanned, looped = twins()
    step = jax.jit(lambda m, x: (m(x), m))
    (ys, new_scanned), (yl, new_looped) = step(scanned, X), step(looped, X)
    assert_close(ys, yl, atol=1e-6)
    assert_same_state(new_scanned, new_looped)
    assert int(new_scanned.layers[2].bn.num_batches_tracked) == 1
    assert int(scanned.layers[2].bn.num_batches_tracked) == 0  # the jitted copy changed, not the original


def test_scan_matches_loop_through_split_with_grad():
    scanned, looped = twins()

    def grads(net):
        apply, params, buffers = jnn.split(net)

        def loss(p):
            out, new_buffers = apply(p, buffers, X, train=True)
            return (out**2).sum(), new_buffers

        return jax.jit(jax.grad(loss, has_aux=True))(params)

    (gs, bs), (gl, bl) = grads(scanned), grads(looped)
    assert set(gs) == set(gl) and list(bs) == list(bl)
    for k in gl:
        assert_close(gs[k], gl[k], atol=1e-5)
        assert np.abs(gl[k]).sum() > 0
    for k in bl:
        assert_close(bs[k], bl[k], atol=1e-6)


def test_compiled_scan_is_one_while_loop():
    jnn.manual_seed(0)
    net = Stack(depth=32)
    lowered = jax.jit(lambda m, x: m(x)).lower(net, X).as_text()
    assert lowered.count("stablehlo.while") == 1
    unrolled = Stack(depth=32, scan=False)
    assert jax.jit(lambda m, x: m(x)).lower(unrolled, X).as_text().count("stablehlo.while") == 0
    apply, params, buffers = jnn.split(net)
    grad_jaxpr = str(jax.make_jaxpr(jax.grad(lambda p: apply(p, buffers, X)[0].sum()))(params))
    assert grad_jaxpr.count(" scan[") == 2  # forward and backward, independent of depth


def test_checkpointed_scan_matches_and_uses_remat():
    scanned, looped = twins()
    scanned.eval(), looped.eval()
    apply, params, buffers = jnn.split(looped)

    def scanned_loss(p):
        net = jnn.merge(apply, p, buffers)
        return (jnn.scan_layers(net.layers, X, scale=0.5, checkpoint=True) ** 2).sum()

    g_scan = jax.grad(scanned_loss)(params)
    g_loop = jax.grad(lambda p: (apply(p, buffers, X)[0] ** 2).sum())(params)
    for k in g_loop:
        assert_close(g_scan[k], g_loop[k], atol=1e-5)
    assert "remat" in str(jax.make_jaxpr(jax.grad(scanned_loss))(params))


# --- scan_layers: against PyTorch ------------------------------------------------------------------------


def test_torch_transformer_stack_loads_strict_and_matches():
    torch.manual_seed(0)
    layers_t = torch.nn.ModuleList([torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
                                    for _ in range(3)])

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
                                         for _ in range(3)])

        def forward(self, x, mask=None):
            return jnn.scan_layers(self.layers, x, src_key_padding_mask=mask)

    torch_net = torch.nn.Module()
    torch_net.layers = layers_t
    net = copy_torch_weights(Encoder(), torch_net)  # strict=True: names layers.0.… are unchanged
    assert list(net.state_dict()) == list(torch_net.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    mask = np.array([[False] * 5, [False, False, False, True, True]])
    out_t = torch.from_numpy(x)
    for layer in layers_t:  # training mode with gradients: torch's reference (not fast) path
        out_t = layer(out_t, src_key_padding_mask=torch.from_numpy(mask))
    (out_t**2).sum().backward()

    apply, params, buffers = jnn.split(net)

    def loss(p):
        out = apply(p, buffers, jnp.asarray(x), jnp.asarray(mask))[0]
        return (out**2).sum(), out

    grads, out = jax.jit(jax.grad(loss, has_aux=True))(params)
    assert_close(out, out_t, atol=1e-5)
    for name, p in torch_net.named_parameters():
        assert_close(grads[name], p.grad, atol=1e-4, rtol=1e-4)


# --- scan_layers: randomness, hooks, errors ----------------------------------------------------------------


class RecordDrop(nn.Module):
    """Writes its dropout mask of a ones vector into row 0 and shifts earlier rows down: after N blocks the
    rows hold the masks of the N layers."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return jnp.roll(x, 1, axis=0).at[0].set(self.drop(jnp.ones(x.shape[1])))


def _assert_independent_masks(rows):
    rows = np.asarray(rows)
    assert set(np.unique(rows)) <= {0.0, 2.0}
    for i in range(len(rows)):
        assert 0.4 < (rows[i] == 0).mean() < 0.6
        for j in range(i):
            assert 0.4 < (rows[i] == rows[j]).mean() < 0.6  # independent masks agree half the time


def test_dropout_draws_a_different_mask_per_layer():
    layers = nn.ModuleList([RecordDrop() for _ in range(4)])
    x = jnp.zeros((4, 2000))
    jnn.manual_seed(0)
    _assert_independent_masks(jnn.scan_layers(layers, x))  # eager: from jnn's stream

    def forked(m, x, key):
        with jnn.random.fork(key):
            return jnn.scan_layers(m, x)

    a = jax.jit(forked)(layers, x, jax.random.key(1))
    _assert_independent_masks(a)
    np.testing.assert_array_equal(forked(layers, x, jax.random.key(1)), a)  # eager: same keys, same masks
    np.testing.assert_array_equal(a, jax.jit(forked)(layers, x, jax.random.key(1)))
    assert not np.array_equal(a, jax.jit(forked)(layers, x, jax.random.key(2)))


def test_dropout_under_jit_without_key_raises_and_eval_needs_none():
    layers = nn.ModuleList([RecordDrop() for _ in range(3)])
    with pytest.raises(jnn.random.MissingKeyError, match="fork"):
        jax.jit(lambda m, x: jnn.scan_layers(m, x))(layers, jnp.zeros((3, 8)))
    layers.eval()
    out = jax.jit(lambda m, x: jnn.scan_layers(m, x))(layers, jnp.zeros((3, 8)))
    np.testing.assert_array_equal(out, np.ones((3, 8)))


def test_forward_hooks_on_blocks_run():
    scanned, looped = twins()
    for net in (scanned, looped):
        for layer in net.layers:
            layer.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
            layer.register_forward_hook(lambda m, args, out: out + 1.0)
    assert_close(scanned(X), looped(X), atol=1e-5)
    assert not np.allclose(scanned(X), twins()[0](X))


def test_different_blocks_are_refused_with_the_difference():
    with pytest.raises(ValueError, match=r"block 2 \(Linear\) differs from block 0: .*out_features=5"):
        jnn.scan_layers([nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 5)], jnp.ones(4))
    with pytest.raises(ValueError, match=r"block 1 .*parameter 'bias' None"):
        jnn.scan_layers([nn.Linear(4, 4), nn.Linear(4, 4, bias=False)], jnp.ones(4))
    with pytest.raises(ValueError, match="block 1 .*is a Tanh where block 0 has a ReLU"):
        jnn.scan_layers([nn.ReLU(), nn.Tanh()], jnp.ones(4))
    mixed = nn.ModuleList([Block(), Block()])
    mixed[1].eval()
    with pytest.raises(ValueError, match="the block itself has training=False where block 0 has training=True"):
        jnn.scan_layers(mixed, X)
    odd = [nn.Linear(4, 4), nn.Linear(4, 4)]
    odd[1].weight = jnp.ones((4, 4), jnp.bfloat16)
    with pytest.raises(ValueError, match=r"block 1's 'weight' is bfloat16\[4, 4\] where block 0's is float32"):
        jnn.scan_layers(odd, jnp.ones(4))
    with pytest.raises(TypeError, match="block 1 is a .*, not a jnn.Module"):
        jnn.scan_layers([nn.ReLU(), jnp.tanh], jnp.ones(4))
    with pytest.raises(TypeError, match="got a Linear; wrap a single block in a list"):
        jnn.scan_layers(nn.Linear(4, 4), jnp.ones(4))


def test_shared_changing_buffers_are_refused_under_a_transformation():
    block = Block()
    shared = nn.ModuleList([block, block])
    with pytest.raises(ValueError, match="the blocks share buffers that the forward pass changes"):
        jax.jit(lambda m, x: jnn.scan_layers(m, x))(shared, X)
    shared.eval()  # nothing changes: sharing is fine, and gradients reach the one block through both uses
    loop = lambda m: (m[0](m[1](X)) ** 2).sum()  # noqa: E731
    scan = lambda m: (jnn.scan_layers(m, X) ** 2).sum()  # noqa: E731
    apply, params, buffers = jnn.split(shared)
    g_loop = jax.grad(lambda p: loop(jnn.merge(apply, p, buffers)))(params)
    g_scan = jax.grad(lambda p: scan(jnn.merge(apply, p, buffers)))(params)
    for k in g_loop:
        assert_close(g_scan[k], g_loop[k], atol=1e-5)


def test_carry_contract_is_enforced():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x.sum()

    with pytest.raises(TypeError, match=r"returned \('float32\[3\]', 'float32\[\]'\) for an input x of float32\[3\]"):
        jnn.scan_layers([Pair(), Pair()], jnp.ones(3))
    with pytest.raises(TypeError, match="must return the same structure, shapes and dtypes"):
        jnn.scan_layers([nn.Linear(3, 2)], jnp.ones(3))


def test_tuple_carry_and_empty_stack():
    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, state):
            h, total = state
            h = self.fc(h)
            return h, total + h.sum()

    layers = [Both() for _ in range(3)]
    h, total = jnn.scan_layers(layers, (jnp.ones(3), jnp.zeros(())))
    expected_h, expected_total = jnp.ones(3), 0.0
    for layer in layers:
        expected_h = layer.fc(expected_h)
        expected_total += expected_h.sum()
    assert_close(h, expected_h, atol=1e-6)
    assert_close(total, expected_total, atol=1e-5)
    assert jnn.scan_layers(nn.ModuleList(), X) is X


# --- gradient checkpointing ---------------------------------------------------------------------------------


def small_pair():
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    j = copy_torch_weights(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)), t)
    return t, j


def test_checkpoint_gradients_match_plain_and_torch():
    t, j = small_pair()
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    t.zero_grad()
    (torch.utils.checkpoint.checkpoint(t, torch.from_numpy(x), use_reentrant=False) ** 2).sum().backward()
    apply, params, buffers = jnn.split(j)

    def loss(p, remat):
        net = jnn.merge(apply, p, buffers)
        return ((checkpoint(net, jnp.asarray(x), use_reentrant=False) if remat else net(jnp.asarray(x))) ** 2).sum()

    with_remat = jax.grad(loss)(params, True)
    plain = jax.grad(loss)(params, False)
    for name, p in t.named_parameters():
        assert_close(with_remat[name], p.grad, atol=1e-5)
        assert_close(with_remat[name], plain[name], atol=1e-6)
    assert "remat" in str(jax.make_jaxpr(jax.grad(loss), static_argnums=1)(params, True))
    assert "remat" not in str(jax.make_jaxpr(jax.grad(loss), static_argnums=1)(params, False))


def test_checkpoint_bound_method_closure_and_module_argument():
    class Net(nn.Module):
        def __init__(self, how):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.bn = nn.BatchNorm1d(4)
            self.how = how

        def body(self, x):
            return jnp.tanh(self.bn(self.fc(x)))

        def forward(self, x):
            if self.how == "method":
                return checkpoint(self.body, x)
            if self.how == "closure":
                return checkpoint(lambda h: self.body(h), x)
            if self.how == "argument":
                return checkpoint(lambda fc, bn, h: jnp.tanh(bn(fc(h))), self.fc, self.bn, x)
            return self.body(x)

    x = jax.random.normal(jax.random.key(0), (6, 4))
    jnn.manual_seed(0)
    plain = Net("plain")
    plain_apply, params, buffers = jnn.split(plain)
    loss = lambda apply: lambda p: (lambda o: ((o[0] ** 2).sum(), o[1]))(apply(p, buffers, x))  # noqa: E731
    g_plain, b_plain = jax.grad(loss(plain_apply), has_aux=True)(params)
    for how in ("method", "closure", "argument"):
        net = Net(how)
        net.load_state_dict(plain.state_dict())
        apply = jnn.split(net)[0]
        g, b = jax.grad(loss(apply), has_aux=True)(params)
        for k in g_plain:
            assert_close(g[k], g_plain[k], atol=1e-5)
        for k in b_plain:
            assert_close(b[k], b_plain[k], atol=1e-6)
        assert int(b["bn.num_batches_tracked"]) == 1
        net(x)  # eager: the module's own buffers are updated
        assert_close(net.bn.running_mean, b_plain["bn.running_mean"], atol=1e-6)
        assert int(net.bn.num_batches_tracked) == 1


def test_checkpoint_recomputation_sees_the_forwards_dropout_mask():
    drop = nn.Dropout(0.5)
    x = jnp.ones(1000)

    def f(x, key):
        with jnn.random.fork(key):
            y = checkpoint(drop, x)
        return y.sum(), y

    (total, y), grad = jax.value_and_grad(f, has_aux=True)(x, jax.random.key(0))
    assert 0.4 < float((y == 0).mean()) < 0.6
    np.testing.assert_array_equal(grad, y)  # d sum(mask * x) / dx = mask; a fresh mask would differ
    with pytest.raises(jnn.random.MissingKeyError):
        jax.jit(lambda x: checkpoint(drop, x))(x)
    np.testing.assert_array_equal(jax.jit(lambda x: checkpoint(drop.eval(), x))(x), x)


def test_checkpoint_sequential_matches_torch():
    torch.manual_seed(0)
    t = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(5, 5), torch.nn.Tanh()) for _ in range(5)])
    j = nn.Sequential(*[nn.Sequential(nn.Linear(5, 5), nn.Tanh()) for _ in range(5)])
    j.load_state_dict(torch_state(t))
    x = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)
    t.zero_grad()
    out_t = torch.utils.checkpoint.checkpoint_sequential(t, 2, torch.from_numpy(x), use_reentrant=False)
    (out_t**2).sum().backward()
    apply, params, buffers = jnn.split(j)

    def loss(p):
        net = jnn.merge(apply, p, buffers)
        return (checkpoint_sequential(net, 2, jnp.asarray(x), use_reentrant=True) ** 2).sum()

    assert_close(checkpoint_sequential(j, 2, jnp.asarray(x)), out_t, atol=1e-5)
    grads = jax.grad(loss)(params)
    for name, p in t.named_parameters():
        assert_close(grads[name], p.grad, atol=1e-5)
    assert str(jax.make_jaxpr(jax.grad(loss))(params)).count("remat") == 1  # segments - 1 checkpointed


def test_checkpoint_bad_arguments():
    with pytest.raises(TypeError, match="function must be callable"):
        checkpoint(3, jnp.ones(2))
    with pytest.raises(ValueError, match="segments must be an int between 1 and the number of functions"):
        checkpoint_sequential(nn.Sequential(nn.ReLU()), 2, jnp.ones(2))


# --- split(..., stacked=...): stacked parameters in the training state ------------------------------------


def _loss_step(apply, buffers):
    def loss(p):
        out, new_buffers = apply(p, buffers, X, train=True)
        return (out**2).sum(), (out, new_buffers)

    return jax.jit(jax.grad(loss, has_aux=True))


@pytest.mark.parametrize("scan", [True, False])
def test_stacked_split_matches_ordinary_split(scan):
    jnn.manual_seed(0)
    net = Stack(scan=scan)
    apply, params, buffers = jnn.split(net)
    apply_s, params_s, buffers_s = jnn.split(net, stacked=["layers"])
    assert list(params_s) == apply_s.param_names == ["layers.*.fc.weight", "layers.*.fc.bias", "layers.*.bn.weight",
                                                     "layers.*.bn.bias"]
    assert list(buffers_s) == apply_s.buffer_names == ["layers.*.bn.running_mean", "layers.*.bn.running_var",
                                                       "layers.*.bn.num_batches_tracked"]
    assert params_s["layers.*.fc.weight"].shape == (4, 6, 6)
    assert buffers_s["layers.*.bn.num_batches_tracked"].shape == (4,)
    grads, (out, new_buffers) = _loss_step(apply, buffers)(params)
    grads_s, (out_s, new_buffers_s) = _loss_step(apply_s, buffers_s)(params_s)
    assert_close(out_s, out, atol=1e-6)
    assert set(grads_s) == set(params_s) and set(new_buffers_s) == set(buffers_s)  # jit sorts dict keys
    expected_grads, expected_buffers = apply_s.stack(grads), apply_s.stack(new_buffers)
    for k in grads_s:
        assert_close(grads_s[k], expected_grads[k], atol=1e-5)
    for k in new_buffers_s:
        assert_close(new_buffers_s[k], expected_buffers[k], atol=1e-6)
    np.testing.assert_array_equal(new_buffers_s["layers.*.bn.num_batches_tracked"], np.ones(4))
    # eager evaluation changes no buffer: the stacked arrays given come back as they are
    _, unchanged = apply_s(params_s, buffers_s, X, train=False)
    assert all(unchanged[k] is buffers_s[k] for k in buffers_s)


def test_stacked_merge_round_trip_and_conversions():
    jnn.manual_seed(0)
    net = Stack()
    net.layers[1].fc.requires_grad_(False)  # frozen in one block only: not identical, so refused...
    with pytest.raises(ValueError, match="stacked='layers': blocks must be structurally identical, but block 1"):
        jnn.split(net, stacked="layers")
    for layer in net.layers:  # ...frozen in every block: the stacked arrays go to buffers
        layer.fc.requires_grad_(False)
    apply, params, buffers = jnn.split(net)
    apply_s, params_s, buffers_s = jnn.split(net, stacked="layers")
    assert "layers.*.fc.weight" in buffers_s and "layers.*.fc.weight" not in params_s
    again = jnn.split(net, stacked=["layers"])[0]
    assert again == apply_s and hash(again) == hash(apply_s) and apply_s != apply  # jit caches by apply
    merged = jnn.merge(apply_s, params_s, buffers_s)
    assert_same_state(merged, net, atol=0)
    assert list(merged.state_dict()) == list(net.state_dict())
    unstacked = apply_s.unstack(params_s)
    assert list(unstacked) == list(params)
    for k in params:
        np.testing.assert_array_equal(unstacked[k], params[k])
    state = apply_s.stack(torch_state(torch.nn.Module()) | dict(net.state_dict()))
    for k in (*params_s, *buffers_s):
        np.testing.assert_array_equal(state[k], (params_s | buffers_s)[k])
    with pytest.raises(KeyError, match=r"'layers.\*.bn.weight' needs the entry of every block; missing "
                                       r"\['layers.3.bn.weight'\]"):
        apply_s.stack({f"layers.{i}.bn.weight": jnp.ones(6) for i in range(3)})


def test_stacked_split_of_torch_transformer_stack_matches_torch():
    torch.manual_seed(0)
    torch_net = torch.nn.Module()
    torch_net.layers = torch.nn.ModuleList([torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
                                            for _ in range(3)])

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
                                         for _ in range(3)])

        def forward(self, x):
            return jnn.scan_layers(self.layers, x)

    net = copy_torch_weights(Encoder(), torch_net)  # strict=True
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    out_t = torch.from_numpy(x)
    for layer in torch_net.layers:
        out_t = layer(out_t)
    (out_t**2).sum().backward()
    apply, params, buffers = jnn.split(net, stacked=["layers"])
    assert params["layers.*.self_attn.in_proj_weight"].shape == (3, 24, 8)

    def loss(p):
        out = apply(p, buffers, jnp.asarray(x))[0]
        return (out**2).sum(), out

    grads, out = jax.jit(jax.grad(loss, has_aux=True))(params)
    assert_close(out, out_t, atol=1e-5)
    grads = apply.unstack(grads)
    for name, p in torch_net.named_parameters():
        assert_close(grads[name], p.grad, atol=1e-4, rtol=1e-4)
    assert list(jnn.merge(apply, params, buffers).state_dict()) == list(torch_net.state_dict())


def _step_ops(depth: int, stacked: tuple) -> dict[str, int]:
    """Op counts in the lowered training step (fwd + bwd + SGD) of a scanned stack of `depth` blocks."""
    jnn.manual_seed(0)
    apply, params, buffers = jnn.split(Stack(depth=depth), stacked=stacked)

    def step(params, buffers):
        def loss(p):
            out, new_buffers = apply(p, buffers, X, train=True)
            return (out**2).sum(), new_buffers

        grads, new_buffers = jax.grad(loss, has_aux=True)(params)
        return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), new_buffers

    text = jax.jit(step).lower(params, buffers).as_text()
    return {op: text.count(f"stablehlo.{op} ") + text.count(f"stablehlo.{op}(") for op in
            ("concatenate", "slice", "dynamic_slice", "dynamic_update_slice", "while", "subtract")}


def test_stacked_training_step_does_not_grow_with_depth():
    shallow, deep = _step_ops(3, ("layers",)), _step_ops(7, ("layers",))
    assert shallow == deep  # no per-layer stacking, slicing or update: the same program at any depth
    assert deep["while"] == 2 and deep["concatenate"] == 0
    per_layer = _step_ops(7, ())  # per-layer arrays: N-operand concatenates, N slices, N updates per parameter
    assert per_layer["concatenate"] > deep["concatenate"] and per_layer["slice"] >= deep["slice"] + 7 * 4


def test_stacked_split_errors():
    net = Stack(depth=2)
    with pytest.raises(ValueError, match=r"stacked='layer' names no submodule of the model; the model's "
                                         r"ModuleLists and Sequentials are \['layers'\]"):
        jnn.split(net, stacked=["layer"])
    with pytest.raises(TypeError, match="stacked='layers.0.fc' is a Linear, not a ModuleList or Sequential"):
        jnn.split(net, stacked=["layers.0.fc"])
    with pytest.raises(TypeError, match="stacked must be a list of submodule names"):
        jnn.split(net, stacked=[3])
    odd = nn.Sequential(nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 5)]))
    with pytest.raises(ValueError, match=r"jnn.split: stacked='0': blocks must be structurally identical, but "
                                         r"block 1 \(Linear\) differs from block 0: .*out_features=5"):
        jnn.split(odd, stacked=["0"])
    block = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="block 1's 'weight' is also used elsewhere in the model"):
        jnn.split(nn.Sequential(nn.ModuleList([block, block])), stacked=["0"])
    nested = nn.Sequential(nn.Sequential(nn.Sequential(nn.Linear(2, 2)), nn.Sequential(nn.Linear(2, 2))))
    with pytest.raises(ValueError, match="stacked='0.0' overlaps stacked='0'"):
        jnn.split(nested, stacked=["0", "0.0"])
    apply, params, buffers = jnn.split(net, stacked=["layers"])
    with pytest.raises(ValueError, match=r"'layers.\*.fc.weight' must have a leading axis of 2 .* got shape "
                                         r"\(6, 6\)"):
        apply({**params, "layers.*.fc.weight": jnp.ones((6, 6))}, buffers, X)
    with pytest.raises(KeyError, match=r"this apply was split with stacked=\['layers'\], and apply.stack"):
        apply(apply.unstack(params), buffers, X)


def test_decay_mask_does_not_count_the_stacked_axis():
    apply, params, _ = jnn.split(Stack(depth=2), stacked=["layers"])
    assert params["layers.*.fc.bias"].ndim == 2
    assert jnn.optim.decay_mask(params) == {"layers.*.fc.weight": True, "layers.*.fc.bias": False,
                                            "layers.*.bn.weight": False, "layers.*.bn.bias": False}
