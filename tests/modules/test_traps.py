"""PyTorch habits that used to fail silently: each now works as in torch or raises at once, naming the fix."""

from __future__ import annotations

import gc
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn as tnn

import jnn
import jnn as nn
from jnn.modules import _pytree


def mlp(lib):
    return lib.Sequential(lib.Linear(3, 4), lib.ReLU(), lib.Linear(4, 2))


def test_requires_grad_false_on_parameters_freezes_them_as_in_torch():
    tmodel, model = mlp(tnn), mlp(nn)
    for lib_model in (tmodel, model):
        for p in lib_model[0].parameters():
            p.requires_grad = False
    expected = [n for n, p in tmodel.named_parameters() if p.requires_grad]
    _, params, buffers = jnn.split(model)
    assert list(params) == expected == ["2.weight", "2.bias"]
    assert list(buffers) == ["0.weight", "0.bias"]
    assert [n for n, _ in model.named_trainable_parameters()] == expected
    for p in model[0].parameters():  # and back
        p.requires_grad = True
    assert list(jnn.split(model)[1]) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for p in model.parameters():
        p.requires_grad = False
    model.requires_grad_(True)  # the module-level switch wins over the older per-array flags
    assert len(jnn.split(model)[1]) == 4


def test_donated_arrays_raise_with_the_merge_hint():
    model = mlp(nn)
    apply, params, buffers = jnn.split(model)
    for leaf in jax.tree_util.tree_leaves(model):
        leaf.delete()  # what donation to a jitted step does
    assert model[0].weight.is_deleted()  # reading it is fine (and tells), using it raises with the hint
    with pytest.raises(RuntimeError, match=r"Linear.weight: this array was deleted because it was donated.*"
                                           r"jnn.merge\(apply, params, buffers\)"):
        model(jnp.ones((1, 3)))
    with pytest.raises(RuntimeError, match=r"donated.*jnn.merge"):
        jax.jit(lambda m: m)(model)


@pytest.mark.parametrize("call", [
    lambda m: m.to(dtype=torch.float16),
    lambda m: m.to(device=torch.device("cpu"), dtype=torch.bfloat16),
    lambda m: m.to("cpu", torch.float16),
    lambda m: m.type(torch.float16),
    lambda m: m.type("torch.HalfTensor"),
    lambda m: m.to(torch.ones(1, dtype=torch.bfloat16)),
    lambda m: m.half(),
    lambda m: m.bfloat16(),
])
def test_to_and_type_with_torch_dtypes_match_torch(call):
    tmodel, model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)), None
    tmodel = tnn.Sequential(tnn.Linear(2, 3), tnn.BatchNorm1d(3))
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    assert call(model) is model
    call(tmodel)
    theirs = {k: str(v.dtype).removeprefix("torch.") for k, v in tmodel.state_dict().items()}
    ours = {k: str(v.dtype) for k, v in model.state_dict().items()}
    theirs["1.num_batches_tracked"] = ours["1.num_batches_tracked"]  # int64 in torch, int32 without x64
    assert ours == theirs


def test_module_as_static_jit_argument_raises():
    fc = nn.Linear(2, 2)
    run = jax.jit(lambda m, x: m(x), static_argnums=0)
    with pytest.raises(ValueError, match="cannot be a static argument of jax.jit"):  # JAX wraps our TypeError
        run(fc, jnp.ones(2))
    with pytest.raises(ValueError, match="cannot be a static argument"):
        jax.jit(lambda x, m: m(x), static_argnames="m")(jnp.ones(2), m=fc)
    assert len({fc, fc}) == 1 and {fc: 1}[fc] == 1  # still hashable by identity, as in torch


def leak(action):
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))

    def step(x):
        action(model, x)
        return x

    jax.jit(step)(jnp.ones((2, 2)))


@pytest.mark.parametrize("action", [
    lambda m, x: m.load_state_dict({**m.state_dict(), "0.weight": x}),
    lambda m, x: m.to(jnp.bfloat16) if False else m.load_state_dict(m.state_dict() | {"1.running_mean": x[0]}),
    lambda m, x: m.half(),
    lambda m, x: m.to(dtype=jnp.float16),
    lambda m, x: m[0].register_buffer("cache", x),
    lambda m, x: m[0].register_parameter("extra", nn.Parameter(x)),
    lambda m, x: setattr(m[0], "last_input", x),
    lambda m, x: setattr(m[0], "weight", x),
], ids=["load_state_dict", "load_buffer", "half", "to", "register_buffer", "register_parameter", "attribute",
        "parameter"])
def test_tracers_never_leak_into_a_captured_module(action):
    with pytest.raises(RuntimeError, match="captured by a closure"):
        leak(action)


def test_modules_passed_in_may_change_under_jit():
    def step(m, x):
        m[0].last_input = x
        m[0].register_buffer("cache", x)
        return m

    out = jax.jit(step)(nn.Sequential(nn.Linear(2, 2)), jnp.ones((2, 2)))
    np.testing.assert_array_equal(out[0].cache, jnp.ones((2, 2)))


def test_recent_handouts_keep_no_tracers_alive():
    fc = nn.Linear(2, 2)
    jax.jit(lambda m, x: m.weight @ x + m.bias)(fc, jnp.ones(2))
    gc.collect()
    held = [ref() for ref, _ in [*_pytree._recent_handouts.values(), *_pytree._unchecked]]
    for module in held:
        if module is not None:
            assert not any(isinstance(v, jax.core.Tracer) for v in module._parameters.values())



@pytest.mark.parametrize("path", ["eager", "state_dict", "split", "jit"])
def test_data_written_on_a_parameter_reaches_the_model_as_in_torch(path):
    """``p.data = v`` (torch's way to replace a parameter's values) is an attribute a JAX array accepts and ignores:
    jnn reads it back wherever it next reads the slot, so the model computes with ``v`` as torch's does (before, the
    old weights stayed, silently). Tied weights take it together."""
    tmodel, model = tied_mlp(tnn), tied_mlp(nn)
    model.load_state_dict({k: v.numpy() for k, v in tmodel.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    for lib_model, make in ((tmodel, torch.from_numpy), (model, jnp.asarray)):
        for name, p in lib_model.named_parameters():
            if name.endswith("bias"):
                p.data = make(np.full(tuple(p.shape), 0.5, np.float32))
        w = lib_model[2].weight  # tied to [3].weight
        w.data = make(np.arange(np.prod(tuple(w.shape)), dtype=np.float32).reshape(tuple(w.shape)) / 10)
    expected = tmodel(torch.from_numpy(x)).detach().numpy()
    if path == "eager":
        out = model(jnp.asarray(x))
    elif path == "state_dict":
        state = model.state_dict()
        for key, value in tmodel.state_dict().items():
            np.testing.assert_array_equal(state[key], value.numpy(), err_msg=key)
        out = model(jnp.asarray(x))
    elif path == "split":
        apply, params, buffers = jnn.split(model)
        assert sorted(params) == sorted(n for n, _ in tmodel.named_parameters())
        out, _ = apply(params, buffers, jnp.asarray(x))
    else:
        out = jax.jit(lambda m, x: m(x))(model, jnp.asarray(x))
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert model[2].weight is model[3].weight


def tied_mlp(lib):
    model = lib.Sequential(lib.Linear(3, 4), lib.ReLU(), lib.Linear(4, 4), lib.Linear(4, 4))
    model[3].weight = model[2].weight
    return model

def tied(lib):
    emb, lin = lib.Embedding(5, 3), lib.Linear(3, 5, bias=False)
    emb.weight = lin.weight
    return lib.ModuleDict({"emb": emb, "lin": lin})


@pytest.mark.parametrize("prepare", [lambda m: m, lambda m: m.to(jnp.float32),
                                     lambda m: jax.tree_util.tree_map(lambda v: v + 0, m)],
                         ids=["fresh", "after_to", "rebuilt"])
def test_init_on_a_tied_weight_keeps_the_tie_as_in_torch(prepare):
    tmodel, model = tied(tnn), prepare(tied(nn))
    tnn.init.normal_(tmodel.emb.weight)
    nn.init.normal_(model.emb.weight)
    assert model.emb.weight is model.lin.weight
    assert len(list(model.parameters())) == len(list(tmodel.parameters())) == 1
    nn.init.zeros_(model.lin.weight)
    assert model.emb.weight is model.lin.weight and not np.asarray(model.emb.weight).any()


def gpt_block(lib):
    """minGPT's Block: the MLP used through a lambda stored on the module."""

    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.mlp = lib.ModuleDict(dict(c_fc=lib.Linear(4, 8), c_proj=lib.Linear(8, 4), act=lib.GELU()))
            m = self.mlp
            self.mlpf = lambda x: m.c_proj(m.act(m.c_fc(x)))
            self.skip = lib.Linear(4, 4)
            self.proj = self.skip.forward  # a bound method too

        def forward(self, x):
            return x + self.mlpf(x) + self.proj(x)

    return Block()


def test_functions_stored_on_modules_see_the_copies_under_split_and_jit():
    torch.manual_seed(0)
    tblock, block = gpt_block(tnn), gpt_block(nn)
    block.load_state_dict({k: v.numpy() for k, v in tblock.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    tblock(torch.from_numpy(x)).pow(2).sum().backward()
    expected = {k: p.grad.numpy() for k, p in tblock.named_parameters()}

    apply, params, buffers = jnn.split(block)
    grads = jax.jit(jax.grad(lambda p: (apply(p, buffers, x)[0] ** 2).sum()))(params)
    assert set(grads) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(grads[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
    module_grads = jax.jit(jax.grad(lambda m: (m(x) ** 2).sum()))(block)
    np.testing.assert_allclose(module_grads.mlp.c_fc.weight, expected["mlp.c_fc.weight"], rtol=1e-4, atol=1e-5)
    copy = jax.tree_util.tree_map(lambda v: v, block)
    assert copy.mlpf.__closure__[0].cell_contents is copy.mlp and copy.proj.__self__ is copy.skip
    assert block.mlpf.__closure__[0].cell_contents is block.mlp  # the original is untouched


def test_layer_dtype_mismatch_raises_like_torch():
    for shape in [(2, 4), (4,)]:
        x = np.ones(shape, np.int32)
        with pytest.raises(RuntimeError) as theirs:
            tnn.Linear(4, 3)(torch.from_numpy(x))
        with pytest.raises(RuntimeError) as ours:
            nn.Linear(4, 3)(jnp.asarray(x))
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(RuntimeError, match=r"conv2d: Input type \(Half\) and weight type \(Float\)"):
        nn.Conv2d(2, 3, 3)(jnp.ones((1, 2, 5, 5), jnp.float16))
    with pytest.raises(RuntimeError, match=r"Input type \(Float\) and weight type \(Half\)"):
        nn.Conv1d(2, 3, 3).half()(jnp.ones((1, 2, 5)))


def test_zero_grad_warns_that_gradients_are_pytrees():
    from jnn.modules import module as module_file

    module_file._zero_grad_warned.clear()
    model = mlp(nn)
    with pytest.warns(UserWarning, match="gradients are the pytrees jax.grad returns"):
        assert model.zero_grad() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.zero_grad(set_to_none=False)  # once only


class _TorchStyle(nn.Module):
    """A forward written for torch.Tensor: each call reaches a method a JAX array lacks or has with another meaning."""

    def __init__(self, call: str) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.call = call

    def forward(self, x):
        if self.call == "view":
            x = x.view(2, 4)
        elif self.call == "view(-1)":
            x = x.view(-1)
        elif self.call == "size":
            x = x.reshape(x.size(0), -1)
        elif self.call == "sum":
            x = x + x.sum(dim=1, keepdim=True)
        elif self.call == "backward":
            x.backward()
        return self.fc(x)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(("call", "error", "fix"), [
    ("view", NotImplementedError, "a JAX array view(dtype) reinterprets its bytes. Use jnn.ops.view(x, ...), or port"),
    ("view(-1)", TypeError, "a JAX array view(dtype) reinterprets its bytes. Use jnn.ops.view(x, ...), or port"),
    ("size", TypeError, "a JAX array size is its element count (an int). Use jnn.ops.size(x, ...), or port"),
    ("sum", TypeError, "takes axis= and keepdims= where torch takes dim= and keepdim=. Use jnn.ops.sum(x, ...)"),
    ("backward", AttributeError, "has no such method. Port the whole file onto jnn.ops: python -m jnn.port model.py"),
])
def test_torch_tensor_methods_in_forward_raise_naming_jnn_ops_and_the_port(call, error, fix, jit):
    model = nn.Sequential(_TorchStyle(call))  # the note is added once, by the innermost module
    run = jax.jit(lambda m, x: m(x)) if jit else (lambda m, x: m(x))
    with pytest.raises(error) as caught:
        run(model, jnp.ones((2, 4)))
    (note,) = [n for n in caught.value.__notes__ if "torch.Tensor" in n]
    method = call.split("(")[0]
    assert note.startswith(f"_TorchStyle.forward: x.{method} is torch.Tensor's API; ")
    assert fix in note


def test_other_errors_in_forward_get_no_note():
    class Typo(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fcc(x) if x.ndim == 2 else self.fc(x, x)

    for shape, error in (((2, 4), AttributeError), ((4,), TypeError)):
        with pytest.raises(error) as caught:
            Typo()(jnp.ones(shape))
        assert not getattr(caught.value, "__notes__", None)
