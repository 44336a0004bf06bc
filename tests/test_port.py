"""jnn.port: each rewrite as source in -> source out, and ported code run against the torch original."""

from __future__ import annotations

import io
import os
import pathlib
import subprocess
import sys
import textwrap
import types
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jnn
from jnn.port import PortedNameError, missing, port_source, port_tree

ROOT = pathlib.Path(__file__).resolve().parents[1]


def port(src: str) -> tuple[str, str]:
    """``(ported source, stderr report)`` for dedented ``src``."""
    err = io.StringIO()
    return port_source(textwrap.dedent(src), "model.py", report=err), err.getvalue()


def same(src: str, expected: str) -> None:
    out, _ = port(src)
    assert out == textwrap.dedent(expected), out


def load(source: str, name: str = "ported") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec", dont_inherit=True), module.__dict__)  # annotations are evaluated
    return module


# -- imports and names ----------------------------------------------------------------------------------------
def test_imports_keep_local_names():
    same("""\
        import torch.nn as nn
        import torch.nn.functional as F
        from torch import nn as tnn, Tensor
        from torch.nn import functional as F2, Module, init
        import numpy as np
        """, """\
        import jnn as nn
        import jnn.functional as F
        import jnn as tnn
        from jnn.ops import Tensor
        from jnn import functional as F2, Module, init
        import numpy as np
        """)


def test_from_import_of_a_name_below_an_object_binds_it():
    # timm: `from torch.jit import Final`; jnn.ops.jit is an object, so `from jnn.ops.jit import Final` cannot import
    out, _ = port("""\
        from torch.jit import Final, is_scripting as scripting
        from torch.jit.annotations import List
        import torch.nn as nn


        class Attention(nn.Module):
            fused_attn: Final[bool]
        """)
    assert out.splitlines()[:4] == ["from jnn import ops", "Final = ops.jit.Final", "scripting = ops.jit.is_scripting",
                                    "List = ops.jit.annotations.List"]
    module = load(out)
    assert module.Final is typing.Final and module.scripting() is False and module.List[int] == list[int]


def test_torch_from_a_star_import_is_the_torch_root():
    # timm layers/create_act.py: `from .activations import *` brings `torch`, then `dir(torch.nn.functional)`
    same("""\
        \"\"\"Activation factory.\"\"\"
        from .activations import *

        _has_silu = "silu" in dir(torch.nn.functional)


        def act(x):
            return torch.sigmoid(x).view(-1)
        """, """\
        \"\"\"Activation factory.\"\"\"
        from jnn import ops
        import jnn
        from .activations import *

        _has_silu = "silu" in dir(jnn.functional)


        def act(x):
            return ops.view(ops.sigmoid(x), -1)
        """)
    same("from .a import *\n\n\ndef f(torch):\n    return torch.cat(x)\n",
         "from .a import *\n\n\ndef f(torch):\n    return torch.cat(x)\n")  # bound here: not torch


def test_a_parameter_or_local_named_as_a_torch_import_is_not_torch():
    # x-transformers: `from torch import tensor`, then
    # `def max_neg_value(tensor): return -torch.finfo(tensor.dtype).max`
    out, err = port("""\
        import torch
        from torch import tensor


        def max_neg_value(tensor):
            return -torch.finfo(tensor.dtype).max


        def doubled(x):
            tensor = x * 2
            return tensor.sum()


        def made(x):
            return tensor([x]).sum()


        def dtypes(xs):
            return [tensor.dtype for tensor in xs], list(map(lambda tensor: tensor.dtype, xs))
        """)
    assert "missing" not in out and not err, out
    module = load(out)
    x = jnp.ones(3, jnp.float32)
    assert module.max_neg_value(x) == -torch.finfo(torch.float32).max
    assert module.doubled(x) == 6.0 and module.made(2.0) == 2.0
    assert module.dtypes([x]) == ([jnp.float32], [jnp.float32])


def test_einops_torch_layers_become_jnn_einops_layers():
    # lucidrains' models: einops' torch layers inside nn.Sequential; einops' functions take JAX arrays as they are
    src = """\
        import torch
        from torch import nn
        from einops import rearrange, reduce
        from einops.layers.torch import Rearrange, Reduce as Pool, EinMix
        import einops.layers.torch as L


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(Rearrange("b c (h p) (w q) -> b h w (p q c)", p=2, q=2),
                                         EinMix("b h w c -> b h w d", weight_shape="c d", bias_shape="d", c=12, d=4),
                                         L.Reduce("b h w d -> b d h w", "max", ), Pool("b d h w -> b d", "mean"))

            def forward(self, x):
                return reduce(rearrange(self.net(x), "b (d k) -> b d k", k=2), "b d k -> b d", "sum").relu()
        """
    out, err = port(src)
    assert out.splitlines()[3:5] == ["from jnn.einops import Rearrange, Reduce as Pool, EinMix",
                                     "import jnn.einops as L"], out
    assert "from einops import rearrange, reduce" in out and not err
    same("from einops.layers.torch import Rearrange\n", "from jnn.einops import Rearrange\n")  # no torch import
    torch.manual_seed(0)
    reference = load(textwrap.dedent(src), "einops_torch").Net()
    model = load(out, "einops_jnn").Net()
    assert repr(model) == repr(reference)
    model.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()}, strict=True)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 6)).astype(np.float32)
    expected = reference(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda m, v: m(v))(model, x), expected, rtol=1e-5, atol=1e-6)
    reference(torch.from_numpy(x)).square().sum().backward()  # EinMix's weight and bias, through einops in grad
    apply, params, buffers = jnn.split(model)
    grads = jax.jit(jax.grad(lambda p: (apply(p, buffers, x)[0] ** 2).sum()))(params)
    for k, p in reference.named_parameters():
        np.testing.assert_allclose(grads[k], p.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_torch_root_becomes_ops_and_jnn():
    same("""\
        import torch
        y = torch.cat([a, b], dim=1)
        z = torch.nn.functional.relu(y)
        m = torch.nn.Linear(2, 3)
        t: torch.Tensor = torch.zeros(3, dtype=torch.float32)
        """, """\
        import jnn
        from jnn import ops
        y = ops.cat([a, b], dim=1)
        z = jnn.functional.relu(y)
        m = jnn.Linear(2, 3)
        t: ops.Tensor = ops.zeros(3, dtype=ops.float32)
        """)


def test_torch_root_only_ops():
    same("""\
        # header comment
        import torch  # the framework
        x = torch.ones(2)
        """, """\
        # header comment
        from jnn import ops  # the framework
        x = ops.ones(2)
        """)


def test_ops_name_taken_uses_another_alias():
    out, _ = port("import torch\nops = 1\nx = torch.ones(2)\n")
    assert "from jnn import ops as jnn_ops" in out and "x = jnn_ops.ones(2)" in out


def test_decorators_annotations_no_grad():
    same("""\
        import torch
        from torch import Tensor

        @torch.jit.unused
        def f(x: torch.Tensor) -> Tensor:
            with torch.no_grad():
                return x
        """, """\
        from jnn import ops
        from jnn.ops import Tensor

        @ops.jit.unused
        def f(x: ops.Tensor) -> Tensor:
            with ops.no_grad():
                return x
        """)


def test_no_grad_blocks_cut_what_they_compute_as_torch():
    """torch's tensors computed under ``no_grad`` require no gradient (an actor-critic's advantage, a baseline from
    a ``@torch.no_grad()`` method): ported, the values stored in the block are cut from JAX's gradient while grad mode
    is off, so the gradients are torch's. Before, the block changed nothing and the critic got the actor's loss's
    gradient through the advantage, silently."""
    source = """
        import torch
        import torch.nn as nn

        class ActorCritic(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Linear(3, 4)
                self.actor = nn.Linear(4, 2)
                self.critic = nn.Linear(4, 1)

            def loss(self, x, returns):
                h = torch.tanh(self.body(x))
                value = self.critic(h).squeeze(-1)
                with torch.no_grad():
                    advantage = returns - self.critic(h).squeeze(-1)
                    scale, offset = advantage.std(), self.baseline(h)
                    advantage[0] += offset
                    same = h  # not computed here: still h, with its gradient
                    with torch.enable_grad():
                        kept = self.critic(h).sum()
                logp = torch.log_softmax(self.actor(h), -1)[:, 0]
                actor = -(logp * same.sum(-1) * advantage / scale).mean()
                return actor + ((returns - value) ** 2).mean() + kept

            @torch.no_grad()
            def baseline(self, h):
                return self.critic(h).mean()
        """
    out, err = port(source)
    assert "scale, offset = ops.detach_if_no_grad(ops.std(advantage)), ops.detach_if_no_grad(self.baseline(h))" in out
    assert "same = h  # not computed" in out and not err
    theirs, ours = load(textwrap.dedent(source), "t"), load(out)
    torch.manual_seed(0)
    reference, model = theirs.ActorCritic(), ours.ActorCritic()
    model.load_state_dict({k: jnp.asarray(v.detach().numpy()) for k, v in reference.state_dict().items()})
    x, returns = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32), np.arange(5, dtype=np.float32)
    reference.loss(torch.from_numpy(x), torch.from_numpy(returns)).backward()
    apply, params, buffers = jnn.split(model)
    grads = jax.grad(lambda p: jnn.merge(apply, p, buffers).loss(jnp.asarray(x), jnp.asarray(returns)))(params)
    for name, parameter in reference.named_parameters():
        np.testing.assert_allclose(grads[name], parameter.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


# -- tensor methods ---------------------------------------------------------------------------------------------
def test_methods_become_ops_functions():
    same("""\
        import torch
        y = x.view(b, -1).transpose(1, 2).contiguous()
        n = x.size(0)
        m = x.max(dim=1).values
        """, """\
        from jnn import ops
        y = ops.contiguous(ops.transpose(ops.view(x, b, -1), 1, 2))
        n = ops.size(x, 0)
        m = ops.max(x, dim=1).values
        """)


def test_methods_on_modules_self_and_literals_are_left():
    same("""\
        import math
        import torch.nn.functional as F
        y = F.softmax(x, dim=-1)
        z = math.floor(2.5)
        w = self.flatten(x)
        parts = "a b".split()
        s = super().view(1)
        """, """\
        import math
        import jnn.functional as F
        y = F.softmax(x, dim=-1)
        z = math.floor(2.5)
        w = self.flatten(x)
        parts = "a b".split()
        s = super().view(1)
        """)


def test_methods_on_numpy_arrays_made_in_place_are_left():
    # diffusers' schedulers: `(np.arange(0, n) * ratio).round()[::-1].copy().astype(np.int64)` is NumPy's round,
    # copy and astype (NumPy's max, repeat, transpose differ from torch's); a name may hold a tensor, so it is ported.
    # An attribute of one too: ema-pytorch's `np.roots(...).real.max().item()` (ops.max made its float64 a float32)
    same("""\
        import numpy as np
        import torch
        t = (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.int64)
        m = np.linspace(0, 1, 5).max(0)
        r = (2 * np.ones(3)).repeat(2)
        g = np.roots([1, 7, 16 - t, 12 - t]).real.max().item()
        u = x.round()
        """, """\
        import numpy as np
        from jnn import ops
        t = (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.int64)
        m = np.linspace(0, 1, 5).max(0)
        r = (2 * np.ones(3)).repeat(2)
        g = np.roots([1, 7, 16 - t, 12 - t]).real.max().item()
        u = ops.round(x)
        """)


def test_files_without_torch_are_untouched():
    src = "x = y.view(2)\nd[k] = v\n"
    assert port(src) == (src, "")


def test_method_dispatch_keeps_non_arrays_working():
    out, _ = port("""\
        import torch
        def f(s, seq, x):
            return s.split(" "), x.split(2, dim=0)
        """)
    assert 'ops.split(s, " ")' in out
    f = load(out).f
    words, chunks = f("a b", None, jnp.arange(4.0))
    assert words == ["a", "b"] and [c.tolist() for c in chunks] == [[0.0, 1.0], [2.0, 3.0]]


# -- in-place methods and element updates -----------------------------------------------------------------------
def test_inplace_method_statements_assign():
    same("""\
        import torch
        x.add_(y)
        self.w.data.mul_(2).add_(1)
        a[0].zero_()
        v = torch.empty(3).normal_(std=0.02)
        """, """\
        from jnn import ops
        x = ops.add_(x, y)
        self.w = ops.add_(ops.mul_(self.w, 2), 1)
        a = ops.at(a)[0].set(ops.zero_(a[0]))
        v = ops.normal_(ops.empty(3), std=0.02)
        """)


def test_inplace_on_a_temporary_is_reported():
    out, err = port("import torch\nf(x).add_(1)\n")
    assert "model.py:2: jnn.port: in-place 'add_' on 'f(x)'" in err
    assert "# jnn.port: in-place 'add_'" in out


def test_element_updates():
    # `x: Tensor` updated in place: f returns it (its call statements store it, see
    # test_local_helpers_returning_their_updated_argument_calls_store_it)
    same("""\
        import torch
        def f(x: torch.Tensor, v, q, i):
            z = torch.zeros(3)
            z[0] = v
            z[1:] += v
            x[..., 0] *= 2
            self.buf[1] = v
            layers = {}
            layers["a"] = v
            kwargs["b"] = v
            lst = [1, 2]
            lst[0] = v
            q[i] = v
            REGISTRY[i] = v
        """, """\
        from jnn import ops
        def f(x: ops.Tensor, v, q, i):
            z = ops.zeros(3)
            z = ops.at(z)[0].set(v)
            z = ops.at(z)[1:].add(v)
            x = ops.at(x)[..., 0].multiply(2)
            ops.store(self, 'buf', ops.at(self.buf)[1].set(v))
            layers = {}
            layers["a"] = v
            kwargs["b"] = v
            lst = [1, 2]
            lst[0] = v
            q = ops.at(q)[i].set(v)
            REGISTRY[i] = v
            return x
        """)


def test_torch_inplace_functions_store_into_their_first_argument():
    # torch.relu_(x) as a statement changes x (ported, its result was dropped and x kept its values, silently)
    src = """\
        import torch


        def f(x, rows):
            torch.relu_(x)
            torch.clamp_(rows[0], -0.5, 0.5)
            torch.sigmoid_(x * 2)
            return x, rows
        """
    out, err = port(src)
    assert "x = ops.relu_(x)" in out and "in-place 'torch.sigmoid_' on 'x * 2'" in err
    x = np.array([-1.0, 0.25, 2.0], np.float32)
    rows = np.array([[-1.0, 0.2], [3.0, -3.0]], np.float32)
    ours_x, ours_rows = load(out).f(jnp.asarray(x), jnp.asarray(rows))
    namespace = {}
    exec(textwrap.dedent(src), namespace)
    theirs_x, theirs_rows = namespace["f"](torch.from_numpy(x.copy()), torch.from_numpy(rows.copy()))
    np.testing.assert_array_equal(np.asarray(ours_x), theirs_x.numpy())
    np.testing.assert_array_equal(np.asarray(ours_rows), theirs_rows.numpy())


def test_element_update_through_an_attribute_does_not_reassign_a_container():
    # transformers' WeightConverter: `self.source_patterns[i] = pattern` on a list attribute whose class refuses
    # `self.source_patterns = ...`; an array attribute (a module buffer) still gets its new value
    out, _ = port("""\
        import torch


        class Patterns:
            def __init__(self, names):
                object.__setattr__(self, "names", list(names))
                self.w = torch.zeros(2)
                self.nested = {"k": [0, 0]}

            def __setattr__(self, name, value):
                if name == "names":
                    raise ValueError("names cannot be assigned")
                object.__setattr__(self, name, value)

            def update(self, v):
                self.names[0] = v
                self.w[1] += v
                self.nested["k"][1] = v
                self.w.mul_(2)
        """)
    assert "ops.store(self, 'names', ops.at(self.names)[0].set(v))" in out
    p = load(out).Patterns(["a", "b"])
    p.update(3.0)
    assert p.names == [3.0, "b"] and p.w.tolist() == [0.0, 6.0] and p.nested == {"k": [0, 3.0]}


def test_element_update_values_stay_one_expression():
    # timm hiera: `self.schedule[i] = unroll_schedule, size` on a dict; `//=` with a compound right-hand side
    out, _ = port("""\
        import torch


        def f(x: torch.Tensor, d, a, b):
            d[0] = a, b
            x[0] //= a + b
            x[1] %= a - b
            x[2] = yield
            return x, d
        """)
    assert "ops.at(d)[0].set((a, b))" in out and "ops.at(x)[0].set(x[0] // (a + b))" in out
    assert "ops.at(x)[1].set(x[1] % (a - b))" in out and "ops.at(x)[2].set((yield))" in out
    out = out.replace("    x = ops.at(x)[2].set((yield))\n", "")
    x, d = load(out).f(jnp.full(3, 7.0), {}, 1.0, 2.0)
    t = torch.full((3,), 7.0)
    t[0] //= 1.0 + 2.0
    t[1] %= 1.0 - 2.0
    assert d == {0: (1.0, 2.0)} and x.tolist() == t.tolist()


def test_element_update_dispatch_runs_on_arrays_and_containers():
    out, _ = port("""\
        import torch
        def f(a, i, v):
            a[i] = v
            a[i] += v
            return a
        """)
    f = load(out).f
    assert f(jnp.zeros(3), 1, 2.0).tolist() == [0.0, 4.0, 0.0]
    assert f([0, 0], 0, 5) == [10, 0]
    assert f({"k": 1}, "k", 2) == {"k": 4}
    torch_a = torch.zeros(3)
    torch_a[1] = 2.0
    torch_a[1] += 2.0
    assert torch_a.tolist() == [0.0, 4.0, 0.0]


def test_init_calls_store_their_result():
    same("""\
        import torch
        import torch.nn as nn
        from torch.nn.init import trunc_normal_
        nn.init.kaiming_normal_(m.weight, mode="fan_out")  # keep
        torch.nn.init.zeros_(m.bias.data)
        trunc_normal_(self.pos, std=0.02)
        g = nn.init.calculate_gain("relu")
        """, """\
        import jnn
        import jnn as nn
        from jnn.init import trunc_normal_
        m.weight = nn.init.kaiming_normal_(m.weight, mode="fan_out")  # keep
        m.bias = jnn.init.zeros_(m.bias)
        self.pos = trunc_normal_(self.pos, std=0.02)
        g = nn.init.calculate_gain("relu")
        """)


def test_data_reads_and_writes():
    same("""\
        import torch
        w = self.fc.weight.data
        self.fc.weight.data = w * 2
        n = self.data
        self.proj.weight.data *= 0.5
        w.data[0] += 1
        """, """\
        from jnn import ops
        w = ops.data(self.fc.weight)
        self.fc.weight = ops.set_data(self.fc.weight, w * 2)
        n = self.data
        self.proj.weight = ops.mul_(self.proj.weight, 0.5)
        w = ops.at(w)[0].add(1)
        """)


def test_writes_to_parameters_read_into_variables_reach_the_module_as_torch():
    """torch's tensors are shared with their module: ``for p in model.parameters(): p.data.clamp_(-c, c)`` (WGAN),
    MoCo's ``q.data = q.data * m + p.data * (1 - m)``, DINO's ``q.mul_(m).add_(...)``, timm's EMA ``copy_`` over
    ``state_dict().values()`` change the model. Ported, the variable is rebound to the new array; the in-place
    function (and ``ops.set_data``) also puts it in the module slot the array was read from. Before, every one of
    these updates was silently lost."""
    source = """
        import torch
        import torch.nn as nn

        def mlp():
            return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder, self.momentum = mlp(), mlp()
                for p, q in zip(self.encoder.parameters(), self.momentum.parameters()):
                    q.data.copy_(p.data)
                    q.requires_grad = False

            def momentum_update(self, m):
                for p, q in zip(self.encoder.parameters(), self.momentum.parameters()):
                    q.data = q.data * m + p.data * (1.0 - m)

            def chained_update(self, m):
                with torch.no_grad():
                    for p, q in zip(self.encoder.parameters(), self.momentum.parameters()):
                        q.mul_(m).add_((1 - m) * p.detach())

            def clip(self, c):
                for p in self.encoder.parameters():
                    p.data.clamp_(-c, c)

            def scale(self):
                for name, p in self.named_parameters():
                    if name.endswith("bias"):
                        p.data *= 0.5
                    else:
                        p.data.mul_(2)

            def ema_from(self, other, decay):
                with torch.no_grad():
                    for e, v in zip(self.state_dict().values(), other.state_dict().values()):
                        e.copy_(e * decay + (1.0 - decay) * v)

        class Tied(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(5, 2)
                self.head = nn.Linear(2, 5, bias=False)
                self.head.weight = self.emb.weight

            def reset(self):
                w = self.head.weight
                w.data = torch.linspace(0, 1, 10).view(5, 2)
                self.emb.weight.data *= 3
        """
    out, err = port(source)
    assert "q = ops.set_data(q, ops.data(q) * m + ops.data(p) * (1.0 - m))" in out
    assert "p = ops.mul_(p, 0.5)" in out and not err
    theirs, ours = load(textwrap.dedent(source), "t"), load(out)

    def same_state(reference, model):
        state = model.state_dict()
        assert list(state) == list(reference.state_dict())
        for key, value in reference.state_dict().items():
            np.testing.assert_allclose(state[key], value.numpy(), rtol=1e-6, atol=1e-7, err_msg=key)

    torch.manual_seed(0)
    reference, other_reference, tied_reference = theirs.Net(), theirs.Net(), theirs.Tied()
    model, other, tied = ours.Net(), ours.Net(), ours.Tied()
    for mine, torchs in ((model, reference), (other, other_reference), (tied, tied_reference)):
        mine.load_state_dict({k: jnp.asarray(v.numpy()) for k, v in torchs.state_dict().items()})
    other_reference.encoder(torch.randn(6, 3)), other_reference.momentum(torch.randn(6, 3))  # BatchNorm statistics
    other.load_state_dict({k: jnp.asarray(v.numpy()) for k, v in other_reference.state_dict().items()})
    assert set(jnn.split(ours.Net())[1]) == {k for k, v in theirs.Net().named_parameters() if v.requires_grad}
    for name, args in (("momentum_update", (0.9,)), ("chained_update", (0.5,)), ("clip", (0.2,)), ("scale", ()),
                       ("ema_from", (other_reference, 0.75))):
        getattr(reference, name)(*args)
        getattr(model, name)(*[other if a is other_reference else a for a in args])
        same_state(reference, model)
    tied_reference.reset()
    tied.reset()
    same_state(tied_reference, tied)
    assert tied.head.weight is tied.emb.weight


def test_grad_kept_on_a_tensor_as_torch():
    """Code that keeps a running sum in a tensor's ``.grad`` (vector-quantize-pytorch's ``accum_ema_update``:
    ``t.grad.add_(g)`` or ``t.grad = g.clone()``, later read and reset by ``ema_inplace``) sees what it stored, as
    in torch; ``.grad`` of an array nothing was stored in is None. Before, reads gave None and the sums were lost."""
    source = """
        import torch

        def accumulate_(t, g):
            if t.grad is not None:
                t.grad.add_(g)
            else:
                t.grad = g.clone().detach()

        def take(t):
            g = t.grad
            t.grad = None
            return g
        """
    out, err = port(source)
    assert 't.grad = ops.add_(ops.attr(t, "grad"), g)' in out and "not stored anywhere" not in err
    for mod, make in ((load(textwrap.dedent(source), "reference"), torch.tensor), (load(out), jnp.asarray)):
        t = make([0.0, 1.0])
        assert mod.take(t) is None
        mod.accumulate_(t, make([1.0, 2.0]))
        mod.accumulate_(t, make([3.0, 4.0]))
        assert np.asarray(mod.take(t)).tolist() == [4.0, 6.0] and mod.take(t) is None


def test_data_of_an_imported_module_stays_an_attribute():
    # fair-esm's model/esm2.py: `import esm` and `esm.data.Alphabet`, its data.py submodule (no tensor's .data)
    same("""\
        import torch
        import esm
        import esm.model as em
        def f(a: esm.data.Alphabet, x):
            esm.data.cache = em.data
            return esm.data.Alphabet.from_architecture("ESM-1b"), x.data
        """, """\
        from jnn import ops
        import esm
        import esm.model as em
        def f(a: esm.data.Alphabet, x):
            esm.data.cache = em.data
            return esm.data.Alphabet.from_architecture("ESM-1b"), ops.data(x)
        """)


def test_data_and_tensor_attributes_in_tuple_targets_stay_targets():
    # transformers' quantizer_higgs: `module.weight.data, module.tune_metadata = maybe_tune_and_repack(...)`
    same("""\
        import torch
        def f(module, x):
            module.weight.data, module.meta = g(x.data)
            a.requires_grad, (b.data, *c.data) = 1, (2, 3)
        """, """\
        from jnn import ops
        def f(module, x):
            module.weight, module.meta = g(ops.data(x))
            a.requires_grad, (b, *c) = 1, (2, 3)
        """)


def test_dtype_attributes_are_read_through_attr():
    # timm layers/pos_embed_sincos.py: `dtype.is_floating_point` on torch.get_default_dtype() or x.dtype
    src = """\
        import torch


        def make(x, dtype=None):
            dtype = dtype or torch.get_default_dtype()
            assert dtype.is_floating_point and not x.dtype.is_complex
            size = x.dtype.itemsize + torch.float16.itemsize
            return x.to(dtype) * size if x.is_floating_point() and x.dtype.is_signed else x
        """
    out, _ = port(src)
    assert 'ops.attr(dtype, "is_floating_point") and not ops.attr(x.dtype, "is_complex")' in out
    assert 'ops.attr(x.dtype, "itemsize") + ops.float16.itemsize' in out and "ops.is_floating_point(x)" in out
    reference = load(textwrap.dedent(src), "reference")
    module = load(out)
    for t, j in [(torch.ones(2), jnp.ones(2)), (torch.ones(2, dtype=torch.int8), jnp.ones(2, jnp.int8))]:
        assert module.make(j).tolist() == reference.make(t).tolist()
    assert module.make(jnp.ones(2), jnp.float16).dtype == jnp.float16


# -- what cannot be converted ----------------------------------------------------------------------------------
def test_unsupported_imports_become_missing_placeholders():
    out, err = port("""\
        import torch
        from torch.distributed import get_rank
        import torch.distributed.rpc as dist
        y = torch.ones(2)
        """)
    assert err.splitlines()[0].startswith("model.py:2: jnn.port: torch.distributed.get_rank has no jnn")
    assert "model.py:3: jnn.port: torch.distributed.rpc has no jnn counterpart" in err
    assert out.splitlines()[:3] == ["from jnn import ops", "from jnn.port import missing",
                                    "# jnn.port: torch.distributed.get_rank has no jnn counterpart; "
                                    "'get_rank' raises NotImplementedError when used"]
    assert 'get_rank = missing("torch.distributed.get_rank")' in out
    module = load(out)
    with pytest.raises(PortedNameError, match="torch.distributed.get_rank has no jnn counterpart"):
        module.get_rank()
    with pytest.raises(NotImplementedError, match="torch.distributed"):
        module.dist.get_rank()


def test_module_alias_of_a_jnn_object_binds_it():
    """``import torch.distributed as dist`` binds jnn's torch.distributed (``ops.distributed``, an object, not a
    module): its queries answer (``dist.is_initialized()`` is False, as lucidrains' vector-quantize-pytorch asks
    when built), and its names jnn lacks are placeholders where used."""
    out, err = port("""\
        import torch.distributed as dist
        def world():
            if dist.is_initialized():
                return dist.get_world_size()
            return 1
        """)
    assert "dist = ops.distributed" in out and "'dist' raises" not in err
    assert 'missing("torch.distributed.get_world_size")()' in out
    module = load(out)
    assert module.world() == 1 and module.dist.is_available() is False


def test_unknown_torch_attribute_is_reported_and_commented():
    out, err = port("import torch\nz = torch.no_such_function(1)\n")
    assert "model.py:2: jnn.port: torch.no_such_function has no jnn counterpart" in err
    assert "# jnn.port: torch.no_such_function has no jnn counterpart" in out


def test_tied_weights_stay_tied():
    # GPT-2's lm_head.weight = wte.weight (transformers' tie_weights): jnn keeps one parameter through
    # load_state_dict, split and jit, so there is nothing to report
    out, err = port("""\
        import torch.nn as nn


        class Tied(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed, self.head = nn.Embedding(5, 3), nn.Linear(3, 5, bias=False)
                self.head.weight = self.embed.weight

            def forward(self, x):
                return self.head(self.embed(x))
        """)
    assert err == ""
    model = load(out).Tied()
    state = {k: np.asarray(v) + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert model.head.weight is model.embed.weight and list(jnn.split(model)[1]) == ["embed.weight"]


def test_missing_placeholder():
    m = missing("torch.cuda")
    assert repr(m) == "missing('torch.cuda')"
    with pytest.raises(PortedNameError, match="torch.cuda.is_available has no jnn counterpart"):
        m.is_available()


def test_missing_torch_names_at_import_time_become_placeholders():
    # timm: a torch base class jnn lacks (was torch.autograd.Function, which jnn.ops now has), an optimizer
    # annotation, a dataset base class, isinstance on a torch class
    out, err = port("""\
        from typing import Optional
        import torch
        import torch.utils.data as data


        class Swish(torch.distributions.Distribution):
            def log_prob(self, x):
                return x * torch.sigmoid(x)


        class ImageDataset(data.Dataset):
            def __init__(self, root):
                self.root = root


        @torch.compiler.disable
        def step(optimizer: Optional[torch.optim.Optimizer] = None, x: torch.Tensor = None) -> torch.Tensor:
            return x * 2


        def is_sync(m):
            return isinstance(m, torch.nn.SyncBatchNorm)
        """)
    assert "class Swish(missing(\"torch.distributions.Distribution\")):" in out
    assert "optimizer: Optional[missing(\"torch.optim.Optimizer\")] = None" in out
    assert "@ops.compiler.disable" in out
    assert "model.py:6: jnn.port: torch.distributions.Distribution has no jnn counterpart" in err, err
    module = load(out)
    assert module.step(x=jnp.ones(2)).tolist() == [2.0, 2.0] and not module.is_sync(jnp.ones(2))
    with pytest.raises(PortedNameError, match="torch.distributions.Distribution has no jnn counterpart.*Swish"):
        module.Swish()
    with pytest.raises(PortedNameError, match="torch.autograd.Function.apply has no jnn counterpart"):
        missing("torch.autograd.Function").apply(1)
    with pytest.raises(PortedNameError, match="torch.utils.data.Dataset has no jnn counterpart"):
        module.ImageDataset("/data")
    assert issubclass(module.ImageDataset, module.data.Dataset) and missing("x")[int] | None is not None


# -- ported code against torch -----------------------------------------------------------------------------------
TORCH_MODEL = '''
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class Attention(nn.Module):
    """A causal self-attention block in the style of nanoGPT (comments and layout are kept)."""

    def __init__(self, dim: int, heads: int, block: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.scale = nn.Parameter(torch.ones(dim))
        self.register_buffer("mask", torch.tril(torch.ones(block, block)).view(1, 1, block, block))
        self.register_buffer("counts", torch.zeros(block))
        nn.init.normal_(self.proj.weight, std=0.02)
        self.proj.bias.data.zero_()

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.size()
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        k = k.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        v = v.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        y = self.proj(y) * self.scale
        scores = y.max(dim=-1).values
        y[:, 0] += 1.0
        y.mul_(0.5)
        out = torch.cat([y.flatten(1), scores], dim=1)
        return out
'''


def test_ported_module_matches_torch():
    source, err = port(TORCH_MODEL)
    assert "torch" not in source.replace("jnn", "").split("class")[0]
    assert "# jnn.port" not in source, source
    reference = load(TORCH_MODEL, "reference").Attention(8, 2, 6).eval()
    torch.nn.init.normal_(reference.scale, 1.0, 0.1)
    ported = load(source).Attention(8, 2, 6).eval()
    ported.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()}, strict=True)
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    expected = reference(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(ported(jnp.asarray(x))), expected, rtol=1e-5, atol=1e-5)
    jitted = jax.jit(lambda m, v: m(v))(ported, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(jitted), expected, rtol=1e-5, atol=1e-5)


def test_ported_init_reaches_the_module():
    source, _ = port("""\
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                for m in self.modules():
                    if isinstance(m, nn.Linear):
                        nn.init.constant_(m.weight, 0.5)
                        m.bias.data.fill_(0.25)
        """)
    net = load(source).Net()
    assert np.all(np.asarray(net.fc.weight) == 0.5) and np.all(np.asarray(net.fc.bias) == 0.25)



def test_local_helpers_updating_their_argument_return_it_and_calls_store_it():
    # HuBERT's / fairseq's BERT init: a nested `normal_(data)` that returns nothing and copies into `data`
    src = """\
        import torch
        import torch.nn as nn
        def fill(t, v):
            if v is None:
                return
            t.data.fill_(v)
        def log(t):
            print(t.shape)
        def normal_(t):
            return None
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                def constant_(data):
                    data.copy_(torch.full_like(data, 0.5))
                constant_(self.fc.weight.data)
                fill(self.fc.bias, 0.25)
                log(self.fc.weight)
                normal_(self.fc.weight)  # a file's own normal_ that returns None is no initialiser
        """
    source, err = port(src)
    assert "return t\n" in source and "self.fc.bias = fill(self.fc.bias, 0.25)" in source
    assert "self.fc.weight = constant_(self.fc.weight)" in source and "    log(self.fc.weight)" in source
    assert "    normal_(self.fc.weight)" in source
    assert "'constant_' updates 'data' in place" in err and "'log'" not in err
    net, reference = load(source).Net(), load(textwrap.dedent(src), "reference").Net()
    for name, value in reference.state_dict().items():
        np.testing.assert_array_equal(np.asarray(net.state_dict()[name]), value.numpy())


def test_local_helpers_returning_their_updated_argument_calls_store_it():
    # torchvision's MViT: `_add_shortcut(x, shortcut, ...)` adds into `x` in place (`x.add_` or `x[...] +=`),
    # returns `x`, and its caller drops the result
    src = """\
        import torch
        def add_shortcut(x: torch.Tensor, shortcut: torch.Tensor, whole: bool):
            if whole:
                x.add_(shortcut)
            else:
                x[:, 1:] += shortcut[:, 1:]
            return x
        def add_rows(x: torch.Tensor, y: torch.Tensor):
            x[1:] += y[1:]
            return x
        def scaled(x, s):
            x.mul_(s)
            return x * 2  # another value: its calls are left as they are
        def attend(x: torch.Tensor, q: torch.Tensor, whole: bool):
            x = x * 1
            add_shortcut(x, q, whole)
            add_rows(x, q)
            return x
        def other(x):
            scaled(x, 3.0)
            return x
        """
    source, err = port(src)
    assert "    x = add_shortcut(x, q, whole)\n" in source and "    x = add_rows(x, q)\n" in source
    assert "    scaled(x, 3.0)\n" in source
    ported, reference = load(source), load(textwrap.dedent(src), "reference")
    x, q = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    for whole in (True, False):
        np.testing.assert_array_equal(np.asarray(ported.attend(jnp.asarray(x), jnp.asarray(q), whole)),
                                      reference.attend(torch.from_numpy(x), torch.from_numpy(q), whole).numpy())

# -- files, packages, command line -----------------------------------------------------------------------------
def test_cli_ports_a_file_and_a_package(tmp_path):
    pkg = tmp_path / "src" / "mypkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .layers import Block\n")
    (pkg / "layers.py").write_text(textwrap.dedent("""\
        import torch
        from torch import nn
        from mypkg.sub.helpers import double


        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 3)

            def forward(self, x):
                return double(self.fc(x).view(-1))
        """))
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "helpers.py").write_text("import torch\n\ndef double(x):\n    return torch.mul(x, 2)\n")
    (pkg / "data.txt").write_text("kept")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "jnn.port", str(pkg), "-o", str(tmp_path / "out" / "mypkg_jnn")],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out" / "mypkg_jnn"
    assert (out / "data.txt").read_text() == "kept"
    assert "from mypkg_jnn.sub.helpers import double" in (out / "layers.py").read_text()
    code = ("import jax.numpy as jnp, mypkg_jnn\n"
            "print(mypkg_jnn.Block()(jnp.ones((2, 3))).shape)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path / "out",
                         env={**env, "PYTHONPATH": os.pathsep.join([str(tmp_path / "out"), env["PYTHONPATH"]])})
    assert run.returncode == 0 and run.stdout.strip() == "(6,)", run.stderr
    single = tmp_path / "single.py"
    run = subprocess.run([sys.executable, "-m", "jnn.port", str(pkg / "sub" / "helpers.py"), "-o", str(single)],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0 and "ops.mul(x, 2)" in single.read_text()
    run = subprocess.run([sys.executable, "-m", "jnn.port", str(pkg / "sub" / "helpers.py")],
                         capture_output=True, text=True, env=env)
    assert run.stdout == single.read_text()


def test_port_tree_keeps_compiled_libraries_for_the_operators_jnn_has(tmp_path):
    """A package that finds its compiled extension and loads it with ``torch.ops.load_library`` (torchvision's
    extension.py) keeps working ported: the library file is copied, and loading it succeeds when it registers
    operators of a namespace jnn implements (``torchvision::``); one that does not fails to load, as in torch when
    it was built for another version, so the package falls back as it would there."""
    pkg = tmp_path / "src" / "vispkg"
    pkg.mkdir(parents=True)
    (pkg / "_C.so").write_bytes(b"\x7fELF...torchvision::nms(Tensor dets, Tensor scores, float iou_threshold)...")
    (pkg / "_other.so").write_bytes(b"\x7fELF...otherlib::op(Tensor x) -> Tensor...")
    (pkg / "__init__.py").write_text(textwrap.dedent("""\
        import importlib.machinery
        import os
        import torch


        def _load(name):
            finder = importlib.machinery.FileFinder(
                os.path.dirname(__file__),
                (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES))
            try:
                spec = finder.find_spec(name)
                if spec is None:
                    raise ImportError(name)
                torch.ops.load_library(spec.origin)
                return True
            except (ImportError, OSError):
                return False


        HAS_OPS, HAS_OTHER = _load("_C"), _load("_other")


        def nms(boxes, scores):
            return torch.ops.torchvision.nms(boxes, scores, 0.5)
        """))
    port_tree(pkg, tmp_path / "out" / "vispkg_jnn", report=None)
    assert (tmp_path / "out" / "vispkg_jnn" / "_C.so").read_bytes() == (pkg / "_C.so").read_bytes()
    code = ("import jax.numpy as jnp, vispkg_jnn as v\n"
            "b = jnp.array([[0.0, 0, 2, 2], [0, 0, 2, 1.9], [3, 3, 4, 4]])\n"
            "print(v.HAS_OPS, v.HAS_OTHER, v.nms(b, jnp.array([0.4, 0.6, 0.1])).tolist())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "out"), str(ROOT)])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and run.stdout.strip() == "True False [1, 2]", run.stderr[-3000:]


def test_torch_nn_modules_utils_port_to_jnn_modules_utils():
    """``from torch.nn.modules.utils import _pair`` (torchvision's ops) ports, with torch's meaning."""
    import torch.nn.modules.utils as torch_utils

    import jnn.modules.utils as jnn_utils

    assert "from jnn.modules.utils import _pair" in port_source("from torch.nn.modules.utils import _pair\n")
    for name, args in [("_pair", (3,)), ("_pair", ((1, 2),)), ("_pair", ([4, 5],)), ("_single", (2,)),
                       ("_triple", (1,)), ("_quadruple", (0,)), ("_reverse_repeat_tuple", ((1, 2), 2)),
                       ("_list_with_default", ([None, 3], [1, 2, 4, 5])), ("_list_with_default", (7, [1, 2]))]:
        assert getattr(jnn_utils, name)(*args) == getattr(torch_utils, name)(*args), name
    with pytest.raises(ValueError, match="at least 3"):
        jnn_utils._list_with_default([1, 2], [1, 2])


def test_port_tree_renamed_package_imported_by_its_own_name_keeps_the_name(tmp_path):
    """``import torchvision`` in torchvision's own files, then ``torchvision._is_tracing()``: ported to
    ``torchvision_jnn``, the import still binds ``torchvision`` (it bound nothing the code used)."""
    pkg = tmp_path / "src" / "renpkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from renpkg import sub\n\n\ndef answer():\n    return 42\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "tool.py").write_text("def twice(x):\n    return 2 * x\n")
    (pkg / "use.py").write_text(textwrap.dedent("""\
        import torch
        import renpkg, math
        import renpkg.sub.tool
        import renpkg.sub.tool as tool


        def f():
            return renpkg.answer() + renpkg.sub.tool.twice(1) + tool.twice(2) + int(math.sqrt(torch.ones(1).sum()))
        """))
    port_tree(pkg, tmp_path / "out" / "renpkg_jnn", report=None)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "out"), str(ROOT)])}
    run = subprocess.run([sys.executable, "-c", "import renpkg_jnn.use as u; print(u.f())"], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 0 and run.stdout.strip() == "49", run.stderr[-3000:]


def test_port_tree_rejects_a_file(tmp_path):
    (tmp_path / "a.py").write_text("")
    with pytest.raises(NotADirectoryError, match="jnn.port.port_tree"):
        port_tree(tmp_path / "a.py", tmp_path / "b")


def test_in_place_updates_keep_their_own_target_in_long_files():
    # the rewriter keys the calls it creates by id(): freed nodes once lent their ids to later ones, so in a long
    # file `m.w4.data.mul_(s)` could come out as `m.w4 = ops.mul_(m.w18, s)` (timm's convnext head init did)
    lines = ["import torch", "import torch.nn as nn", "", "", "def f(m, s):"]
    for i in range(200):
        lines += [f"    m.w{i}.data.mul_(s)", f"    m.b{i}.data.zero_()", f"    nn.init.normal_(m.c{i}, std=0.01)"]
    out, _ = port("\n".join(lines) + "\n")
    body = [line.strip() for line in out.splitlines() if line.startswith("    m.")]
    assert len(body) == 600
    for line in body:
        target, value = line.split(" = ", 1)
        assert value.split("(", 1)[1].split(",")[0].rstrip(")") == target, line


def test_argument_updated_in_place_is_reported():
    """torch's caller sees a function's in-place writes to its tensor argument (whisper's logit filters' ``apply``,
    its greedy decoder's ``sum_logprobs += ...``); ported, the write rebinds a local name and the caller's array stays
    as it was: the port says so, for a parameter annotated Tensor or the receiver of an in-place method. Not
    reported: a returned parameter, a local array, a number, a container or an unannotated parameter (its element
    writes are in place for a list or dict), the file's own first-parameter updaters (they return it)."""
    source = """
        import torch
        from typing import Dict

        class Suppress:
            def apply(self, logits: torch.Tensor, tokens: torch.Tensor) -> None:
                logits[:, [1, 2]] = -float("inf")

        def update(tokens, logits: torch.Tensor, total: torch.Tensor, n: int, d: Dict, q):
            total += logits.max(-1).values
            q[0] = 1
            tokens.add_(1)
            d["k"] = 1
            n += 1
            local = torch.zeros(2)
            local[0] = 1
            return tokens.sum() + n

        def scale(x: torch.Tensor, s):
            x[0] *= s
            return x

        def fill(data):
            data.zero_()

        class Sliced:  # diffusers' SlicedAttnProcessor: the argument's name is rebound first, and returned
            def __call__(self, attn, hidden: torch.Tensor):
                hidden = torch.zeros(2)
                hidden[0] = 1
                return hidden
        """
    out, err = port(source)
    noted = [tuple(line.split("'")[1:4:2]) for line in err.splitlines() if "updates its argument" in line]
    assert noted == [("apply", "logits"), ("update", "total"), ("update", "tokens")], err
    assert "# jnn.port: 'apply' updates its argument 'logits'" in out  # above the line, whose meaning changed
    theirs, ours = load(textwrap.dedent(source), "t"), load(out)
    logits = torch.zeros(2, 3)
    theirs.Suppress().apply(logits, None)
    ported = jnp.zeros((2, 3))
    ours.Suppress().apply(ported, None)
    assert bool(torch.isinf(logits).any()) and not bool(jnp.isinf(ported).any())  # what the note warns of
