"""lucidrains' ema-pytorch, ported by ``python -m jnn.port`` from its own source (ema-pytorch 0.8.3, fetched at test
time, see ``_pypi_source``): ``ema_pytorch`` -> ``ema_pytorch_jnn``, no hand edits.

Its classes keep a deep copy of a model and update the copy's tensors in place: ``copy_``/``lerp_`` on
``param.data`` read from ``named_parameters()``/``named_buffers()``, ``torch._foreach_copy_``/``_foreach_lerp_``,
``self.initted.data.copy_(...)``, ``self.step += 1``, ``synth_tensor.add_(...)`` on a generator's parameters, ``lerp_``
on the leaves of ``torch.utils._pytree.tree_flatten``; ported, jnn's in-place functions write each result back to the
slot (or list or dict element) the array was read from. The model is defined once (``MODEL``) and ported along; the
online models take the same steps on both sides (noise on the weights, a train-mode forward that moves BatchNorm's
statistics, torch's state copied into the port), and after every update the EMA's whole state_dict (the EMA copy,
the online model, ``initted`` and ``step``) is torch's: EMA in six configurations (one by one, foreach, names kept
out or copied, continual learning pulling the online model to the EMA, an EMA copy from a given callable, a lazily
made EMA), KarrasEMA, PostHocEMA (its float16 ``torch.save`` checkpoints hold torch's values, its synthesised EMAs
are torch's), EMAPytree over a dict of tensors and EMAModuleWrapper (a forward hook on the EMA's submodule hands its
output to the online model's through a kwargs pre-hook). The EMA's forward is torch's eagerly and under
``jax.jit``; state_dicts load across (torch's into the port and back, strictly) and the updates go on alike.
"""

from __future__ import annotations

import types

import _pypi_source as pypi
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import jitted

from jnn.port import port_source

MODEL = '''
import torch
from torch import nn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 2)

    def forward(self, x, ema_output=None):  # EMAModuleWrapper hands the EMA head's output in as ema_output
        y = self.proj(x)
        return y if ema_output is None else y + 0.5 * ema_output


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.ln = nn.LayerNorm(4)
        self.head = Head()
        self.register_buffer("scale", torch.ones(2))

    def forward(self, x):
        return self.head(self.ln(self.norm(self.fc(x)).relu())) * self.scale
'''

COMMON = dict(beta=0.95, update_after_step=2, update_every=2, power=3 / 4)
CONFIGS = {
    "lerp": {},  # inplace_lerp/inplace_copy one tensor at a time
    "foreach": dict(use_foreach=True),  # torch._foreach_copy_ / _foreach_lerp_ over lists of .data
    "names": dict(param_or_buffer_names_no_ema={"fc.bias", "scale"}, ignore_names={"head.proj.weight"},
                  ignore_startswith_names={"ln."}),  # copied, left alone, left alone by prefix
    "continual": dict(include_online_model=False, update_model_with_ema_every=3,  # the online model pulled to
                      update_model_with_ema_beta=0.5),                           # the EMA (lerp into the model)
    "given": dict(ema_model="Net", forward_method_names=("forward",)),  # the EMA copy made by a given callable,
                                                                        # its forward bound on the EMA
    "lazy": dict(lazy_init_ema=True, coerce_dtype=True, allow_different_devices=True, move_ema_to_online_device=True,
                 inv_gamma=2.0, min_value=0.5),  # the EMA copy made at the first update
}


def _module(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec", dont_inherit=True), module.__dict__)
    return module


@pytest.fixture(scope="module")
def sides():
    """``(torch, jnn)``: each the package (``.ema``) and the model file (``.net``), as they are and ported."""
    return (types.SimpleNamespace(ema=pypi.imported(pypi.EMA_PYTORCH), net=_module(MODEL, "ema_net_torch")),
            types.SimpleNamespace(ema=pypi.imported(pypi.EMA_PYTORCH, ported=True),
                                  net=_module(port_source(MODEL, "net.py", report=None), "ema_net_jnn")))


def _numpy(state) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in state.items()}


def _twins(sides):
    """torch's Net and the port's, with torch's state (strictly)."""
    torch.manual_seed(0)
    reference, model = sides[0].net.Net(), sides[1].net.Net()
    model.load_state_dict(_numpy(reference.state_dict()), strict=True)
    return reference, model


def _move(reference, model, rng) -> None:
    """One training step's worth of change on both online models: noise on torch's weights and its float buffer, a
    train-mode forward (BatchNorm's running statistics and count move), then torch's state copied into the port."""
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
        reference.scale.mul_(1.5)
    reference.train()(torch.from_numpy(rng.standard_normal((5, 3)).astype(np.float32)))
    model.load_state_dict(_numpy(reference.state_dict()), strict=True)


def _same(ours, theirs, what: str, rtol: float = 1e-6) -> None:
    """A jnn state_dict is torch's: the same keys in the same order, values and dtype kinds."""
    ours = dict(ours)
    assert list(ours) == list(theirs), what
    for key, value in theirs.items():
        got = np.asarray(ours[key])
        assert got.dtype.kind == value.numpy().dtype.kind, (what, key, got.dtype, value.dtype)
        np.testing.assert_allclose(got, value.numpy(), rtol=rtol, atol=1e-7, err_msg=f"{what}: {key}")


def _x(rng) -> np.ndarray:
    return rng.standard_normal((4, 3)).astype(np.float32)


@pytest.mark.parametrize("config", CONFIGS)
def test_ema_tracks_the_model_as_torch(config, sides):
    """EMA's state after every update (warm-up copies, then lerps at the decay schedule's values), its forward eagerly,
    under jit and through forward_eval, and its state_dict loaded across and updated further, are torch's."""
    kwargs = {**COMMON, **CONFIGS[config]}
    rng = np.random.default_rng(0)
    reference, model = _twins(sides)
    reference_ema, ema = (side.ema.EMA(net, **{k: getattr(side.net, v) if k == "ema_model" else v
                                                for k, v in kwargs.items()})
                          for side, net in zip(sides, (reference, model), strict=True))
    for step in range(7):
        _move(reference, model, rng)
        reference_ema.update()
        ema.update()
        _same(ema.state_dict(), reference_ema.state_dict(), f"step {step}")
        _same(model.state_dict(), reference.state_dict(), f"online model, step {step}")  # "continual" changes it
    assert not np.allclose(np.asarray(ema.ema_model.fc.weight), np.asarray(model.fc.weight))  # an average
    x = _x(rng)
    reference_ema.eval(), ema.eval()
    expected = reference_ema(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(ema(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jitted(ema, (x,), {})), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ema.forward_eval(x)), expected, rtol=1e-5, atol=1e-6)
    for each in (reference_ema, ema):
        each.update_model_with_ema(0.0)  # decay 0: the EMA's tensors copied into the online model
    _same(model.state_dict(), reference.state_dict(), "the EMA copied into the model")
    assert np.allclose(np.asarray(ema.ema_model.fc.weight), np.asarray(model.fc.weight))
    if config == "lazy":
        return  # a fresh lazy EMA has no EMA copy to load a state into (torch's neither)
    # torch's EMA state loaded into a new EMA of the port's model, the port's into a new one of torch's: all four go
    # on alike (three more updates: a lerp, a warm-up-free step, the continual pull)
    kwargs.pop("ema_model", None)
    reference_ema2, ema2 = sides[0].ema.EMA(reference, **kwargs), sides[1].ema.EMA(model, **kwargs)
    ema2.load_state_dict(_numpy(reference_ema.state_dict()), strict=True)
    reference_ema2.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ema.state_dict().items()},
                                   strict=True)
    for step in range(3):
        _move(reference, model, rng)
        for each in (reference_ema, ema, reference_ema2, ema2):
            each.update()
        _same(ema2.state_dict(), reference_ema.state_dict(), f"loaded from torch, step {step}")
        _same(ema.state_dict(), reference_ema2.state_dict(), f"loaded into torch, step {step}")
        _same(model.state_dict(), reference.state_dict(), f"online model, step {step}")


def test_karras_and_post_hoc_ema_as_torch(sides, tmp_path):
    """KarrasEMA (beta from gamma, made from sigma_rel by NumPy's float64 roots) and PostHocEMA: their states after
    every update; PostHocEMA's float16 checkpoints (jnn.save writes torch's format) hold torch's values; the EMAs it
    synthesises from them for other sigma_rel/gamma and steps (weights from torch.linalg.solve in float64: in JAX's
    64-bit mode on the port's side; the checkpoints added with add_ to a generator's parameters) are torch's, their
    outputs too."""
    rng = np.random.default_rng(0)
    reference, model = _twins(sides)
    karras = [side.ema.KarrasEMA(net, sigma_rel=0.1, update_every=1) for side, net in zip(sides, (reference, model),
                                                                                         strict=True)]
    post_hoc = [side.ema.PostHocEMA(net, sigma_rels=(0.05, 0.28), update_every=1, checkpoint_every_num_steps=2,
                                    checkpoint_folder=tmp_path / name)
                for side, net, name in zip(sides, (reference, model), ("torch", "jnn"), strict=True)]
    assert karras[1].gamma == karras[0].gamma and post_hoc[1].gammas == post_hoc[0].gammas  # float64, exactly
    for step in range(6):
        _move(reference, model, rng)
        for each in (*karras, *post_hoc):
            each.update()
        assert karras[1].beta == karras[0].beta
        _same(karras[1].state_dict(), karras[0].state_dict(), f"KarrasEMA, step {step}")
        _same(post_hoc[1].state_dict(), post_hoc[0].state_dict(), f"PostHocEMA, step {step}")
    files = sorted(path.name for path in (tmp_path / "torch").iterdir())
    assert files == sorted(path.name for path in (tmp_path / "jnn").iterdir()) and len(files) == 6
    for name in files:
        theirs = torch.load(tmp_path / "torch" / name, weights_only=True)
        ours = torch.load(tmp_path / "jnn" / name, weights_only=True)
        assert list(ours) == list(theirs)
        for key, value in theirs.items():
            assert ours[key].dtype == value.dtype, (name, key)
            torch.testing.assert_close(ours[key], value, rtol=0, atol=0, msg=f"{name}: {key}")
    x = _x(rng)
    for kwargs in (dict(sigma_rel=0.15), dict(gamma=5.0, step=4)):
        synthesised = [post_hoc[0].synthesize_ema_model(**kwargs)]
        with jax.enable_x64(True):  # x.double() is float64 only in JAX's 64-bit mode (else float32)
            synthesised.append(post_hoc[1].synthesize_ema_model(**kwargs))
        _same(synthesised[1].state_dict(), synthesised[0].state_dict(), f"synthesised {kwargs}")
        for each in synthesised:
            each.eval()
        np.testing.assert_allclose(np.asarray(synthesised[1](x)),
                                   synthesised[0](torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    for each in post_hoc:
        for ema in each.ema_models:
            ema.eval()
    outputs = post_hoc[1](x)
    for got, expected in zip(outputs, post_hoc[0](torch.from_numpy(x)), strict=True):
        np.testing.assert_allclose(np.asarray(got), expected.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_ema_of_a_pytree_as_torch(sides):
    """EMA of a dict of tensors is an EMAPytree: it lerps the leaves of its deep copy, flattened with torch's pytree
    (ported: jnn.ops.utils._pytree, whose leaves write back into their dict or list)."""
    rng = np.random.default_rng(0)
    values = {"w": rng.standard_normal((2, 3)).astype(np.float32), "b": rng.standard_normal(3).astype(np.float32)}
    theirs = {"w": torch.from_numpy(values["w"].copy()), "more": [torch.from_numpy(values["b"].copy())]}
    ours = {"w": jnp.asarray(values["w"]), "more": [jnp.asarray(values["b"])]}
    reference_ema = sides[0].ema.EMA(theirs, beta=0.9, update_after_step=1, update_every=1)
    ema = sides[1].ema.EMA(ours, beta=0.9, update_after_step=1, update_every=1)
    assert type(ema).__name__ == type(reference_ema).__name__ == "EMAPytree"
    online = ema.pytree
    for step in range(5):
        noise = [rng.standard_normal(t.shape).astype(np.float32) for t in (theirs["w"], theirs["more"][0])]
        theirs["w"].add_(torch.from_numpy(noise[0]))
        theirs["more"][0].add_(torch.from_numpy(noise[1]))
        online["w"] = online["w"] + noise[0]
        online["more"][0] = online["more"][0] + noise[1]
        reference_ema.update()
        ema.update()
        for got, expected in ((ema()["w"], reference_ema()["w"]), (ema()["more"][0], reference_ema()["more"][0])):
            np.testing.assert_allclose(np.asarray(got), expected.numpy(), rtol=1e-6, atol=1e-7, err_msg=str(step))
        assert int(ema.step) == int(reference_ema.step) and bool(ema.initted) == bool(reference_ema.initted)
    assert not np.allclose(np.asarray(ema()["w"]), np.asarray(online["w"]))


@pytest.mark.xfail(strict=True, reason="EMATensor(tensor) keeps its lone EMA tensor as a plain attribute "
                   "(self.ema_pytree) and lerps it in place; a JAX array cannot change, and a read of a plain "
                   "attribute (no module slot, no list or dict element) leaves jnn nothing to write the result "
                   "back to, so the EMA stays the first copy")
def test_ema_of_a_lone_tensor_as_torch(sides):
    value = np.arange(3, dtype=np.float32)
    theirs, ours = torch.from_numpy(value.copy()), [jnp.asarray(value)]
    reference_ema = sides[0].ema.EMATensor(theirs, beta=0.5, update_after_step=0, update_every=1)
    ema = sides[1].ema.EMATensor(ours[0], beta=0.5, update_after_step=0, update_every=1)
    reference_ema.update(), ema.update()
    theirs.add_(1.0)
    ema.online_pytree[0] = ema.online_pytree[0] + 1.0
    reference_ema.update(), ema.update()
    np.testing.assert_allclose(np.asarray(ema()), reference_ema().numpy())


def test_ema_module_wrapper_as_torch(sides):
    """EMAModuleWrapper: in training, the EMA model runs first (eval mode, no grad) and a forward hook keeps its
    head's output; a kwargs pre-hook on the online head passes it in as ``ema_output``. Outputs, the online model's
    moved BatchNorm statistics and the EMA state are torch's, step after step; only_ema/only_online too."""
    rng = np.random.default_rng(0)
    reference, model = _twins(sides)
    wrappers = [side.ema.EMAModuleWrapper(net, ema_module_kwargs=["head"], beta=0.9, update_after_step=1,
                                          update_every=1) for side, net in zip(sides, (reference, model), strict=True)]
    for step in range(4):
        _move(reference, model, rng)
        for each in wrappers:
            each.update()
        x = _x(rng)
        expected = wrappers[0](torch.from_numpy(x)).detach().numpy()  # train mode: forward_online, hooks
        np.testing.assert_allclose(np.asarray(wrappers[1](x)), expected, rtol=1e-5, atol=1e-6, err_msg=str(step))
        _same(model.state_dict(), reference.state_dict(), f"online model, step {step}")
        _same(wrappers[1].state_dict(), wrappers[0].state_dict(), f"wrapper, step {step}")
    for kwargs in (dict(only_ema=True), dict(only_online=True)):
        expected = wrappers[0](torch.from_numpy(x), **kwargs).detach().numpy()
        np.testing.assert_allclose(np.asarray(wrappers[1](x, **kwargs)), expected, rtol=1e-5, atol=1e-6)
