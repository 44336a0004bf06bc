"""The ops helpers the port tool writes into ported code: ``ops.at`` (element updates), ``ops.data``, ``ops.hub``."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jnn
from jnn import ops
from jnn.ops._port import DTYPE_ATTRIBUTES


@pytest.mark.parametrize("index", [1, slice(1, None), (Ellipsis, 0), np.array([True, False, True])])
@pytest.mark.parametrize("method,op", [("set", None), ("add", "__iadd__"), ("multiply", "__imul__"),
                                       ("subtract", "__isub__"), ("divide", "__itruediv__")])
def test_at_on_arrays_matches_torch_element_updates(index, method, op):
    base = np.arange(1.0, 7.0, dtype=np.float32).reshape(3, 2) if isinstance(index, tuple) else \
        np.arange(1.0, 4.0, dtype=np.float32)
    value = np.float32(2.5)
    t = torch.from_numpy(base.copy())
    t_index = torch.from_numpy(index) if isinstance(index, np.ndarray) else index
    if op is None:
        t[t_index] = float(value)
    else:
        t[t_index] = getattr(t[t_index], op)(float(value))
    got = getattr(ops.at(jnp.asarray(base))[index], method)(value)
    np.testing.assert_allclose(np.asarray(got), t.numpy(), rtol=1e-6)
    jitted = jax.jit(lambda a: getattr(ops.at(a)[index], method)(value))(jnp.asarray(base)) \
        if not isinstance(index, np.ndarray) else got
    np.testing.assert_allclose(np.asarray(jitted), t.numpy(), rtol=1e-6)


@pytest.mark.parametrize("value", [0.0, 7, np.arange(3, dtype=np.float32), np.full((1, 3), 2.0, np.float32)])
@pytest.mark.parametrize("method,op", [("set", None), ("add", "__iadd__"), ("multiply", "__imul__"),
                                       ("subtract", "__isub__"), ("divide", "__itruediv__")])
def test_at_with_a_traced_boolean_mask_matches_torch(value, method, op):
    # `x[mask] = v` under jax.jit (wav2vec2's padded-frame masking): a mask over the leading dimensions and a value
    # broadcasting over the rest need no gather of a run-time size
    rng = np.random.default_rng(0)
    base, mask = rng.standard_normal((2, 5, 3)).astype(np.float32), rng.random((2, 5)) > 0.5
    t, t_mask, t_value = torch.from_numpy(base.copy()), torch.from_numpy(mask), torch.as_tensor(value)
    t[t_mask] = t_value.to(t.dtype) if op is None else getattr(t[t_mask], op)(t_value)
    got = jax.jit(lambda a, m: getattr(ops.at(a)[m], method)(value))(base, mask)
    np.testing.assert_allclose(np.asarray(got), t.numpy(), rtol=1e-6)
    assert got.dtype == jnp.float32


def test_at_with_a_traced_boolean_mask_and_one_value_per_element_is_jaxs_error():
    mask = jnp.asarray([True, False, True])
    with pytest.raises(jax.errors.NonConcreteBooleanIndexError):
        jax.jit(lambda a, m: ops.at(a)[m].set(jnp.ones((2, 4))))(jnp.zeros((3, 4)), mask)


def test_at_on_containers_updates_in_place_and_returns_them():
    lst, d, arr = [1, 2], {"a": 1}, np.zeros(2)
    assert ops.at(lst)[0].add(5) is lst and lst == [6, 2]
    assert ops.at(d)["b"].set(2) is d and d == {"a": 1, "b": 2}
    assert ops.at(arr)[1].set(3.0) is arr and arr.tolist() == [0.0, 3.0]
    blocks = jnn.ModuleList([jnn.Linear(1, 1), jnn.Linear(1, 1)])
    new = jnn.Identity()
    assert ops.at(blocks)[1].set(new) is blocks and blocks[1] is new
    assert ops.at(lst)[1].power(2) == [6, 4] and ops.at(lst)[1].subtract(1) == [6, 3]


def test_data_stops_gradients_like_torch_and_reads_other_objects():
    w = torch.tensor(3.0, requires_grad=True)
    (w * w.data).backward()
    grad = jax.grad(lambda x: x * ops.data(x))(jnp.array(3.0))
    assert float(grad) == float(w.grad) == 3.0
    p = jnn.Parameter(jnp.ones(2))
    assert ops.data(p) is p.data


def test_hub_directories_follow_torch(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert ops.hub.get_dir() == torch.hub.get_dir() == str(tmp_path / "th" / "hub")
    assert ops.hub._get_torch_home() == torch.hub._get_torch_home()
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ops.hub._get_torch_home() == torch.hub._get_torch_home()


def test_hub_loads_a_torch_checkpoint_from_a_url(tmp_path):
    net = torch.nn.Linear(3, 2)
    src = tmp_path / "net-1234abcd.pth"
    torch.save(net.state_dict(), src)
    state = ops.hub.load_state_dict_from_url(src.as_uri(), model_dir=str(tmp_path / "cache"))
    assert os.path.exists(tmp_path / "cache" / "net-1234abcd.pth")
    model = jnn.Linear(3, 2)
    model.load_state_dict(state, strict=True)
    np.testing.assert_array_equal(np.asarray(model.weight), net.weight.detach().numpy())
    with pytest.raises(RuntimeError, match="invalid hash value"):
        ops.hub.load_state_dict_from_url(src.as_uri(), model_dir=str(tmp_path / "other"), check_hash=True)


def test_torch_c_shims():
    assert ops._C._log_api_usage_once("x") is None and ops._C._get_tracing_state() is None


def test_attr_reads_torch_tensor_attributes():
    x = jnp.ones((2, 2))
    t = torch.ones(2, 2)
    assert ops.attr(x, "requires_grad") is True and ops.attr(jnp.arange(3), "requires_grad") is False
    assert ops.attr(x, "grad") is t.grad is None and ops.attr(x, "is_leaf") is t.is_leaf is True
    assert ops.attr(x, "is_cuda") is (jax.default_backend() == "gpu")
    assert ops.attr(x, "device") == ("cuda" if jax.default_backend() == "gpu" else "cpu")
    assert jax.jit(lambda v: v + ops.attr(v, "requires_grad"))(x).tolist() == [[2.0, 2.0], [2.0, 2.0]]
    p = jnn.Parameter(jnp.ones(2))
    assert ops.attr(p, "requires_grad") is True                     # not an array: its own attribute
    with pytest.raises(AttributeError, match="jnn.ops.attr: 'shape' is not one of"):
        ops.attr(x, "shape")


def test_scalar_first_torch_functions():
    # torch.pow(2.0, t) (regnet's width rule): a Python number first, an array after it
    t = torch.arange(4.0)
    np.testing.assert_allclose(np.asarray(ops.pow(2.5, jnp.arange(4.0))), torch.pow(2.5, t).numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="jnn.ops.view expected an array"):
        ops.view(3, 1)


@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16", "float64", "int8", "int64", "uint8", "bool",
                                  "complex64"])
def test_attr_answers_torch_dtype_attributes(name):
    # timm pos_embed_sincos: `dtype.is_floating_point` on torch.get_default_dtype() or x.dtype
    t = getattr(torch, name)
    jnn_dtypes = [getattr(ops, name), jnp.zeros(1, getattr(ops, name)).dtype if "64" not in name else None,  # x32
                  getattr(jnp, name if name != "bool" else "bool_")]
    for dtype in [d for d in jnn_dtypes if d is not None]:
        for attribute in DTYPE_ATTRIBUTES:
            assert ops.attr(dtype, attribute) == getattr(t, attribute), (dtype, attribute)
            assert ops.attr(t, attribute) == getattr(t, attribute)  # objects that have it: getattr


def test_attr_dtype_attributes_on_arrays_and_other_objects():
    x = jnp.ones(3, jnp.float16)
    assert ops.attr(x, "itemsize") == 2 and ops.attr(x, "is_floating_point")() is True
    assert ops.attr(ops.get_default_dtype(), "is_floating_point") is True
    assert ops.attr(memoryview(b"ab"), "itemsize") == 1
    with pytest.raises(AttributeError):
        ops.attr(object(), "is_signed")

