"""jnn.Module against torch.nn.Module: registration, traversal, state dicts, modes, casts, devices, repr."""

from __future__ import annotations

from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_close, copy_torch_weights, torch_state

import jnn
import jnn.functional as JF


def both(fn):
    """Build the same model twice, once against torch.nn and once against jnn (only the imports differ)."""
    return fn(torch.nn, torch.nn.functional), fn(jnn, JF)


def error_of(fn) -> tuple[type, str]:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    raise AssertionError("no error raised")


# --- the tutorial's models, built from the same source in both libraries --------------------------------


def tutorial_conv(nn, F):
    class MyModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 20, 3)
            self.conv2 = nn.Conv2d(20, 20, 3)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            return F.relu(self.conv2(x))

    return MyModel()


def mlp_sequential(nn, F, input_dim=64, hidden_dim=64, num_layers=5, output_dim=1):
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layer = nn.Linear(input_dim, hidden_dim)
            layers = []
            for _ in range(num_layers):
                layers.append(nn.Linear(hidden_dim, hidden_dim))
                layers.append(nn.ReLU())
            self.hidden_layers = nn.Sequential(*layers)
            self.output_layer = nn.Linear(hidden_dim, output_dim)

        def forward(self, x):
            x = F.relu(self.input_layer(x))
            x = self.hidden_layers(x)
            return self.output_layer(x)

    return MLP()


def mlp_modulelist(nn, F, input_dim=64, hidden_dim=64, num_layers=5, output_dim=1):
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layer = nn.Linear(input_dim, hidden_dim)
            self.hidden_layers = nn.ModuleList([nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers)])
            self.output_layer = nn.Linear(hidden_dim, output_dim)

        def forward(self, x):
            x = F.relu(self.input_layer(x))
            for layer in self.hidden_layers:
                x = F.relu(layer(x))
            return self.output_layer(x)

    return MLP()


def sequential_forms(nn, F):
    return [
        nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10), nn.ReLU()),
        nn.Sequential(*[nn.Linear(5, 256), nn.ReLU(), nn.Linear(256, 5), nn.ReLU()]),
        nn.Sequential(OrderedDict([
            ("linear_in", nn.Linear(5, 256)), ("relu_in", nn.ReLU()),
            ("linear_out", nn.Linear(256, 5)), ("relu_out", nn.ReLU()),
        ])),
    ]


def nested(nn, F):
    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1)
            self.bn = nn.BatchNorm2d(c)
            self.drop = nn.Dropout(0.0)

        def forward(self, x):
            return x + F.relu(self.bn(self.conv(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
            self.blocks = nn.Sequential(Block(8), nn.Sequential(Block(8), nn.Identity()))
            self.head = nn.ModuleList([nn.Flatten(), nn.Linear(8 * 6 * 6, 10)])

        def forward(self, x):
            x = self.blocks(self.stem(x))
            for layer in self.head:
                x = layer(x)
            return F.log_softmax(x, dim=1)

    return Net()


BUILDERS = [tutorial_conv, mlp_sequential, mlp_modulelist, nested]


@pytest.mark.parametrize("build", BUILDERS + [lambda nn, F: sequential_forms(nn, F)[2]])
def test_repr_state_dict_keys_and_traversal_match_torch(build):
    t, j = both(build)
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(t.state_dict())
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in j.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in j.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in j.named_children()] == [n for n, _ in t.named_children()]
    assert [tuple(p.shape) for p in j.parameters()] == [tuple(p.shape) for p in t.parameters()]
    assert [type(m).__name__ for m in j.modules()] == [type(m).__name__ for m in t.modules()]


def test_tutorial_sequential_prints_like_torch_and_runs_unbatched():
    for t, j in zip(*both(sequential_forms), strict=True):
        assert repr(j) == repr(t)
        copy_torch_weights(j, t)
        x = np.ones(j[0].in_features if hasattr(j[0], "in_features") else 5, np.float32)
        assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)))
    net = jnn.Sequential(jnn.Linear(20, 256), jnn.ReLU(), jnn.Linear(256, 10), jnn.ReLU())
    assert str(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=20, out_features=256, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=256, out_features=10, bias=True)\n"
        "  (3): ReLU()\n"
        ")"
    )
    assert net(jnp.ones(20)).shape == (10,)


def test_mlp_state_dict_names_follow_the_tutorial():
    seq = mlp_sequential(jnn, JF)
    keys = list(seq.state_dict())
    assert [k for k in keys if k.startswith("hidden_layers")] == [
        f"hidden_layers.{i}.{p}" for i in (0, 2, 4, 6, 8) for p in ("weight", "bias")
    ]
    lst = mlp_modulelist(jnn, JF)
    assert [k for k in lst.state_dict() if k.startswith("hidden_layers")] == [
        f"hidden_layers.{i}.{p}" for i in range(5) for p in ("weight", "bias")
    ]
    assert repr(lst).count("(0-4): 5 x Linear(in_features=64, out_features=64, bias=True)") == 1


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_outputs_and_buffers_match_torch_after_loading_its_state_dict(build, mode):
    t, j = both(build)
    copy_torch_weights(j, t)
    getattr(t, mode)()
    assert getattr(j, mode)() is j
    assert all(m.training == (mode == "train") for m in j.modules())
    rng = np.random.default_rng(0)
    shape = {tutorial_conv: (2, 1, 12, 12), nested: (4, 3, 8, 8)}.get(build, (7, 64))
    for _ in range(3):  # several forwards: BatchNorm statistics accumulate
        x = rng.standard_normal(shape).astype(np.float32)
        assert_close(j(jnp.asarray(x)), t(torch.from_numpy(x)), rtol=1e-4, atol=1e-4)
    for k, v in torch_state(t).items():
        assert_close(j.state_dict()[k], v, rtol=1e-4, atol=1e-5)


# --- registration ------------------------------------------------------------------------------------------


def test_registration_errors_match_torch():
    class Early:
        def __init__(self, nn, value):
            self.nn, self.value = nn, value

    def assign_before_init(nn, value):
        class Bad(nn.Module):
            def __init__(self):
                self.x = value

        return lambda: Bad()

    for name, value in (("parameters", lambda nn: nn.Parameter(torch.ones(1)) if nn is torch.nn else
                         jnn.Parameter(jnp.ones(1))), ("module", lambda nn: nn.Linear(1, 1))):
        te = error_of(assign_before_init(torch.nn, value(torch.nn)))
        je = error_of(assign_before_init(jnn, value(jnn)))
        assert te == je, name

    t, j = torch.nn.Module(), jnn.Module()
    cases = [
        lambda m, nn: m.register_buffer("a.b", None),
        lambda m, nn: m.register_buffer("", None),
        lambda m, nn: m.register_parameter("a.b", None),
        lambda m, nn: m.register_parameter("", None),
        lambda m, nn: m.add_module("a.b", nn.Linear(1, 1)),
        lambda m, nn: m.add_module("", nn.Linear(1, 1)),
        lambda m, nn: m.add_module("x", 3),
        lambda m, nn: m.get_submodule("nope"),
        lambda m, nn: m.get_parameter("nope"),
    ]
    for case in cases:
        assert error_of(lambda c=case: c(t, torch.nn)) == error_of(lambda c=case: c(j, jnn))

    t.lin, j.lin = torch.nn.Linear(1, 1), jnn.Linear(1, 1)
    te, je = error_of(lambda: setattr(t, "lin", 3)), error_of(lambda: setattr(j, "lin", 3))
    assert te[0] is je[0] is TypeError and "as child module 'lin'" in je[1]
    t.plain, j.plain = 1, 1
    assert error_of(lambda: t.register_buffer("plain", None)) == error_of(lambda: j.register_buffer("plain", None))
    assert error_of(lambda: j.register_buffer("b", 3.0))[0] is TypeError
    assert error_of(lambda: j.register_parameter("p", jnp.ones(2)))[0] is TypeError  # needs jnn.Parameter
    assert error_of(lambda: jnn.Module(3))[0] is TypeError


def test_setattr_getattr_delattr_and_none():
    m = jnn.Module()
    m.w = jnn.Parameter(jnp.ones(3))
    m.register_buffer("b", jnp.zeros(2))
    m.register_buffer("scratch", jnp.zeros(1), persistent=False)
    m.child = jnn.Linear(2, 2)
    m.hyper = 0.5
    assert isinstance(m.w, jax.Array) and m.w.shape == (3,)
    assert list(m.state_dict()) == ["w", "b", "child.weight", "child.bias"]
    assert [n for n, _ in m.named_buffers()] == ["b", "scratch"]
    m.w = jnp.full(3, 2.0)  # arrays are immutable: assigning to a parameter's name replaces its value
    assert m.w.tolist() == [2.0, 2.0, 2.0] and [n for n, _ in m.named_parameters()][0] == "w"
    m.w = None
    assert "w" not in m.state_dict() and "w" in m._parameters
    m.child = None
    assert list(m.state_dict()) == ["b"]
    assert m.hyper == 0.5
    del m.b, m.child, m.hyper
    assert not hasattr(m, "b") and not hasattr(m, "child") and not hasattr(m, "hyper")
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'missing'"):
        m.missing
    # a parameter slot takes arrays or None only, as in torch; after del, the name is free again
    with pytest.raises(TypeError, match="as parameter 'w'"):
        m.w = jnn.Identity()
    del m.w
    m.w = jnn.Identity()
    assert "w" in m._modules and "w" not in m._parameters
    del m.w
    m.w = jnn.Buffer(jnp.ones(1), persistent=False)
    assert "w" in m._buffers and "w" not in m._modules and "w" not in m.state_dict()


def test_assignment_to_a_property_calls_its_setter_as_torch():
    """``self.codebook = codes`` on a module whose class has a ``codebook`` property with a setter calls the setter
    (vector-quantize-pytorch's ``VectorQuantize.codebook`` copies into its codebook buffer), as torch's
    ``Module.__setattr__`` does for values that are not parameters, buffers or modules; a property without a setter
    refuses the assignment. Before, the value went into the instance's ``__dict__`` unseen and the buffer stayed."""
    def build(nn, zeros):
        class Quantizer(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("embed", zeros(2))

            @property
            def codebook(self):
                return self.embed * 1

            @codebook.setter
            def codebook(self, codes):
                self.embed = codes + 1

            @property
            def size(self):
                return 2

        return Quantizer()

    for q, make in ((build(torch.nn, torch.zeros), torch.tensor), (build(jnn, jnp.zeros), jnp.asarray)):
        q.codebook = make([1.0, 2.0])
        assert np.asarray(q.embed).tolist() == np.asarray(q.codebook).tolist() == [2.0, 3.0]
        assert "codebook" not in q.__dict__
        with pytest.raises(AttributeError):
            q.size = 3


def test_assigning_another_modules_parameter_registers_it():
    """torch's ``self.a = other.a`` with ``other.a`` a Parameter registers it on ``self`` (open_clip's CLIP takes
    its text tower's positional_embedding so); an array that is no module's parameter stays a plain attribute."""
    def build(nn, F):
        class Tower(nn.Module):
            def __init__(self):
                super().__init__()
                self.pos = nn.Parameter(torch.zeros(3) if nn is torch.nn else jnp.zeros(3))
                self.register_buffer("mask", torch.ones(2) if nn is torch.nn else jnp.ones(2))
                self.lin = nn.Linear(2, 2)

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                tower = Tower()
                self.pos = tower.pos
                self.mask = tower.mask  # a buffer is a plain tensor: a plain attribute
                self.lin = tower.lin
                self.plain = torch.ones(2) if nn is torch.nn else jnp.ones(2)

        return Model()

    ref, model = both(build)
    assert list(model.state_dict()) == list(ref.state_dict()) == ["pos", "lin.weight", "lin.bias"]
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert model.plain.shape == (2,) and model.mask.shape == (2,)


def test_traversal_deduplicates_shared_modules_and_tied_parameters():
    def tied(nn, F):
        shared = nn.Linear(3, 3)
        net = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(3, 3))
        net[3].weight = net[0].weight
        return net

    t, j = both(tied)
    for fn in ("named_parameters", "named_modules", "named_buffers"):
        assert [n for n, _ in getattr(j, fn)()] == [n for n, _ in getattr(t, fn)()]
    assert [n for n, _ in j.named_modules(remove_duplicate=False)] == [
        n for n, _ in t.named_modules(remove_duplicate=False)
    ]
    assert list(j.state_dict()) == list(t.state_dict())  # tied parameters under every name
    assert len(list(j.parameters())) == len(list(t.parameters())) == 3
    # loading keeps ties: one array, visible under both names
    j.load_state_dict(torch_state(t))
    assert j[0].weight is j[3].weight
    # pytree: one leaf per distinct array, and ties survive a transformation
    assert len(jax.tree_util.tree_leaves(j)) == 3
    j2 = jax.jit(lambda m: jax.tree_util.tree_map(lambda v: v * 2, m))(j)
    assert j2[0].weight is j2[3].weight and j2[0] is j2[2]


def test_apply_is_post_order_and_returns_self():
    t, j = both(nested)
    seen_t, seen_j = [], []
    assert t.apply(lambda m: seen_t.append(type(m).__name__)) is t
    assert j.apply(lambda m: seen_j.append(type(m).__name__)) is j
    assert seen_j == seen_t

    def init_weights(m):
        if isinstance(m, jnn.Linear):
            m.weight = jnp.zeros_like(m.weight)

    j.apply(init_weights)
    assert float(jnp.abs(j.head[1].weight).sum()) == 0.0


def test_get_submodule_and_get_parameter():
    t, j = both(nested)
    assert type(j.get_submodule("blocks.1.0.bn")).__name__ == "BatchNorm2d"
    assert j.get_parameter("blocks.1.0.conv.weight").shape == tuple(t.get_parameter("blocks.1.0.conv.weight").shape)
    assert j.get_buffer("blocks.0.bn.running_mean").shape == (8,)
    assert error_of(lambda: j.get_submodule("blocks.7")) == error_of(lambda: t.get_submodule("blocks.7"))
    assert error_of(lambda: j.get_parameter("blocks.0.bn.running_mean")) == error_of(
        lambda: t.get_parameter("blocks.0.bn.running_mean"))
    assert j.get_submodule("") is j


def test_train_eval_flags_and_errors():
    _, j = both(nested)
    assert j.eval() is j and not any(m.training for m in j.modules())
    assert j.train() is j and all(m.training for m in j.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        j.train("yes")


def test_forward_missing_raises_like_torch():
    assert error_of(lambda: jnn.ModuleList([jnn.ReLU()])(1)) == error_of(
        lambda: torch.nn.ModuleList([torch.nn.ReLU()])(1))


# --- state dicts -------------------------------------------------------------------------------------------


def test_load_state_dict_messages_match_torch():
    t, j = both(mlp_sequential)
    sd = torch_state(t)
    broken = dict(sd)
    del broken["input_layer.bias"], broken["hidden_layers.2.weight"]
    broken["extra.weight"] = np.ones(3, np.float32)
    broken["hidden_layers.9.weight"] = np.ones(3, np.float32)
    broken["output_layer.weight"] = np.ones((2, 64), np.float32)
    te = error_of(lambda: t.load_state_dict({k: torch.from_numpy(v) for k, v in broken.items()}))
    je = error_of(lambda: j.load_state_dict(broken))
    assert je == te
    # size mismatch raises even with strict=False; missing/unexpected are then returned
    broken.pop("output_layer.weight")
    te_res = t.load_state_dict({k: torch.from_numpy(v) for k, v in broken.items()}, strict=False)
    je_res = j.load_state_dict(broken, strict=False)
    assert je_res.missing_keys == te_res.missing_keys and je_res.unexpected_keys == te_res.unexpected_keys
    assert repr(j.load_state_dict(sd)) == repr(t.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}))
    assert repr(j.load_state_dict(sd)) == "<All keys matched successfully>"
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        j.load_state_dict([1, 2])


def test_load_state_dict_accepts_numpy_and_jax_and_keeps_dtype_and_values():
    t, j = both(nested)
    sd = torch_state(t)
    j.load_state_dict({k: jnp.asarray(v) for k, v in sd.items()})
    for k, v in sd.items():
        np.testing.assert_array_equal(np.asarray(j.state_dict()[k]), v)
    # float64 numpy into float32 parameters: cast to the model's dtype, like torch's copy_
    j.load_state_dict({k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in sd.items()})
    assert all(v.dtype == jnp.float32 for k, v in j.state_dict().items() if "num_batches" not in k)
    assert j.state_dict()["blocks.0.bn.num_batches_tracked"].dtype.kind == "i"
    # torch tensors load directly (bfloat16 included), copied rather than shared
    t.bfloat16()
    j.bfloat16().load_state_dict(t.state_dict())
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(np.asarray(j.state_dict()[k], np.float32), v.float().numpy())
    with torch.no_grad():
        t.head[1].weight.add_(1)
    assert not np.array_equal(np.asarray(j.head[1].weight, np.float32), t.head[1].weight.detach().float().numpy())


def test_non_persistent_buffers_stay_out_of_state_dict():
    def build(nn, F):
        m = nn.Module()
        m.register_buffer("kept", (torch.ones if nn is torch.nn else jnp.ones)(2))
        m.register_buffer("cache", (torch.zeros if nn is torch.nn else jnp.zeros)(2), persistent=False)
        return m

    t, j = both(build)
    assert list(j.state_dict()) == list(t.state_dict()) == ["kept"]
    assert [n for n, _ in j.named_buffers()] == [n for n, _ in t.named_buffers()] == ["kept", "cache"]


def test_save_then_load_into_a_fresh_model_gives_identical_outputs(tmp_path):
    jnn.manual_seed(1)
    net = nested(jnn, JF)
    x = jax.random.normal(jax.random.key(0), (2, 3, 8, 8))
    net(x)  # training-mode forward: BatchNorm statistics move
    net.eval()
    path = tmp_path / "model.npz"
    jnn.save(net.state_dict(), str(path))
    jnn.manual_seed(2)
    net2 = nested(jnn, JF)
    net2.load_state_dict(jnn.load(str(path)))
    net2.eval()
    np.testing.assert_array_equal(np.asarray(net(x)), np.asarray(net2(x)))
    assert list(jnn.load(str(path))) == list(net.state_dict())


# --- frozen parameters, casts, devices ---------------------------------------------------------------------


def test_frozen_parameters_stay_in_state_dict_but_leave_the_trainable_set():
    net = mlp_sequential(jnn, JF)
    net.input_layer.requires_grad_(False)
    net.scale = jnn.Parameter(jnp.ones(()), requires_grad=False)
    apply, params, buffers = jnn.split(net)
    assert "input_layer.weight" not in params and "input_layer.weight" in buffers and "scale" in buffers
    assert "output_layer.weight" in params
    assert list(net.state_dict())[:3] == ["scale", "input_layer.weight", "input_layer.bias"]
    assert [n for n, _ in net.named_trainable_parameters()][0] == "hidden_layers.0.weight"
    net.requires_grad_(True)
    assert "input_layer.weight" in jnn.split(net)[1] and "scale" in jnn.split(net)[1]


def test_casts_touch_floating_arrays_only():
    net = nested(jnn, JF)
    for method, dtype in (("half", jnp.float16), ("bfloat16", jnp.bfloat16), ("float", jnp.float32)):
        assert getattr(net, method)() is net
        for k, v in net.state_dict().items():
            assert v.dtype == (jnp.int32 if "num_batches" in k else dtype), (method, k)
    net.to(jnp.float16)
    assert net.head[1].weight.dtype == jnp.float16
    net.to(torch.bfloat16)  # a torch dtype works too, as does a dtype name
    assert net.head[1].weight.dtype == jnp.bfloat16
    net.to("float32")
    assert net.head[1].weight.dtype == jnp.float32
    with pytest.raises(TypeError, match="jax_enable_x64"):
        net.double()
    with pytest.raises(TypeError, match="only accepts floating point"):
        net.to(jnp.int32)


def test_devices_and_missing_gpu_error():
    net = mlp_sequential(jnn, JF)
    cpu = jax.devices("cpu")[0]
    for target in ("cpu", "cpu:0", cpu, torch.device("cpu")):
        assert net.to(target) is net
        assert all(v.devices() == {cpu} for v in net.state_dict().values())
    assert net.cpu() is net
    if not jax.devices()[0].platform == "gpu":
        for call in (lambda: net.cuda(), lambda: net.cuda(0), lambda: net.to("cuda:0"), lambda: net.to("gpu")):
            kind, text = error_of(call)
            assert kind is RuntimeError and "no GPU device" in text and "cpu" in text
    with pytest.raises(ValueError, match="unknown device"):
        net.to("quantum")


def test_hooks_run_under_jit_and_remove():
    net = mlp_sequential(jnn, JF)
    reference = net(jnp.zeros((2, 64)))
    seen = []
    handle = net.hidden_layers.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    pre = net.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    out = jax.jit(lambda m, x: m(x))(net, jnp.ones((2, 64)))
    assert seen == [(2, 64)]
    np.testing.assert_allclose(out, reference, rtol=1e-6)
    handle.remove()
    pre.remove()
    assert float(jnp.abs(net(jnp.ones((2, 64))) - reference).max()) > 0
    assert seen == [(2, 64)]


def test_load_state_dict_keeps_placement_committed_or_not():
    # an uncommitted array that came back committed would make a jitted step compile a second time
    net = jnn.Linear(2, 2)
    net.load_state_dict({k: np.ones(v.shape, np.float32) for k, v in net.state_dict().items()})
    assert not net.weight.committed and not net.bias.committed
    net.to(jax.devices()[0])
    net.load_state_dict({k: np.zeros(v.shape, np.float32) for k, v in net.state_dict().items()})
    assert net.weight.committed and net.weight.devices() == {jax.devices()[0]}


def test_load_state_dict_copies_numpy_views_before_the_caller_changes_them():
    # torch's load_state_dict copies at once; JAX transfers host memory asynchronously, so a torch model trained
    # right after its `.numpy()` views were loaded must not leak its updates into jnn (this raced under load)
    for seed in range(100):
        torch.manual_seed(seed)
        t = torch.nn.Linear(4, 8)
        net = jnn.Linear(4, 8)
        net.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
        expected = {k: v.detach().numpy().copy() for k, v in t.state_dict().items()}
        with torch.no_grad():
            for p in t.parameters():
                p.add_(1.0)
        for k, v in net.state_dict().items():
            np.testing.assert_array_equal(np.asarray(v), expected[k])
