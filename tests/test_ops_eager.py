"""jnn.ops' eager paths on concrete CPU arrays (``jnn/ops/_eager.py``): elementwise functions computed in chunks and
exact operations made in NumPy give what JAX's own per-shape programs give, compile nothing per new shape, and stay
out of the way under transformations. (tests/test_ops.py compares every function with torch, eagerly and under jit.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax._src import monitoring

from jnn import ops
from jnn.ops import _eager, pointwise

RNG = np.random.default_rng(0)
SIZES = [(3,), (2, 5), (_eager.SMALL,), (_eager.SMALL + 1,), (3, _eager.LARGE // 2 + 7)]  # padding, several chunks


class Compiles:
    """Counts XLA compiles in a block."""

    def __enter__(self):
        self.count = 0

        def listen(event, duration, **kwargs):
            if event == "/jax/core/compile/backend_compile_duration":
                self.count += 1

        self._listen = listen
        monitoring.register_event_duration_secs_listener(listen)
        return self

    def __exit__(self, *exc):
        monitoring.unregister_event_duration_listener(self._listen)


def _operand(name, shape):
    if name in ("acosh",):
        return RNG.uniform(1.0, 4.0, shape).astype(np.float32)
    if name in ("asin", "acos", "atanh", "erfinv", "arcsin", "arccos"):
        return RNG.uniform(-0.99, 0.99, shape).astype(np.float32)
    if name.startswith(("bitwise", "gcd", "lcm", "logical")):
        return RNG.integers(-50, 50, shape).astype(np.int32)
    return RNG.standard_normal(shape).astype(np.float32) * 3


def _native(fn, *args, **kwargs):
    """What JAX's own per-shape program gives."""
    return fn.unchunked(*args, **kwargs)


@pytest.mark.parametrize("name", [n for n in pointwise._UNARY])
def test_unary_chunked_as_jax(name):
    fn = getattr(ops, name)
    for shape in SIZES[:3] + SIZES[-1:]:
        x = jnp.asarray(_operand(name, shape))
        ours, theirs = fn(x), _native(fn, x)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, name
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=3e-7, atol=1e-30, equal_nan=True,
                                   err_msg=name)


@pytest.mark.parametrize("name", [n for n in pointwise._BINARY if n not in pointwise._PRODUCTS])
def test_binary_chunked_as_jax(name):
    fn = getattr(ops, name)
    for shape in SIZES[:2] + SIZES[-1:]:
        a, b = _operand(name, shape), _operand(name, shape)
        if name in ("pow", "float_power"):
            a = np.abs(a)
        if name in ("bitwise_left_shift", "bitwise_right_shift"):
            b = np.abs(b) % 8
        cases = [(jnp.asarray(a), jnp.asarray(b)),  # same shapes
                 (jnp.asarray(a), jnp.asarray(b.reshape(-1)[: shape[-1]])),  # broadcast
                 (jnp.asarray(a), 2), (jnp.asarray(a), jnp.asarray(b[(0,) * b.ndim])),  # number, 0-d array
                 (a, jnp.asarray(b))]  # NumPy data
        for x, y in cases:
            ours, theirs = fn(x, y), _native(fn, x, y)
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (name, type(y))
            np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=3e-7, atol=1e-30, equal_nan=True,
                                       err_msg=name)


def test_options_and_numbers_keep_jax_meaning():
    ints = jnp.arange(-7, 8, dtype=jnp.int32)
    floats = jnp.asarray(RNG.standard_normal(11).astype(np.float32))
    checks = [
        (ops.pow, (ints, 2), {}), (ops.pow, (floats, 3), {}), (ops.pow, (2.0, floats), {}),  # x ** 2 multiplies
        (ops.div, (ints, 3), {"rounding_mode": "trunc"}), (ops.div, (ints, 3), {"rounding_mode": "floor"}),
        (ops.div, (ints, 2), {}), (ops.add, (ints, 2.5), {}), (ops.add, (ints, ints), {"alpha": 3}),
        (ops.sub, (floats, 1), {"alpha": 0.5}), (ops.clamp, (ints,), {"min": -2, "max": 3}),
        (ops.clamp, (floats, -0.5, 0.5), {}), (ops.clamp, (ints, None, 2.5), {}),
        (ops.round, (floats,), {"decimals": 2}),
        (ops.lerp, (floats, floats * 2, 0.3), {}), (ops.addcmul, (floats, floats, floats), {"value": 0.5}),
        (ops.logit, (jnp.abs(floats) / 4, 1e-3), {}), (ops.nan_to_num, (floats / 0.0,), {"posinf": 7.0}),
        (ops.add_, (jnp.ones(4, jnp.float16), 1e-4), {}), (ops.mul_, (floats, 2), {}),
        (ops.clamp_, (floats,), {"min": -1.0, "max": 1.0}),
    ]
    for fn, args, kwargs in checks:
        ours = fn(*args, **kwargs)
        theirs = jax.jit(lambda *a, fn=fn, kwargs=kwargs: fn(*a, **kwargs))(*args) if fn.__name__.endswith("_") \
            else _native(getattr(pointwise, fn.__name__), *args, **kwargs)
        assert ours.dtype == theirs.dtype, fn.__name__
        # one program may fuse what separate eager ops round twice (lerp's multiply-add): the last bit may differ
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=3e-7, atol=0, err_msg=fn.__name__)


def test_new_shapes_compile_nothing_new():
    # what timm's trunc_normal_ does to every weight: uniform_, erfinv_, mul_, add_, clamp_
    def trunc_normal(x):
        x = ops.uniform_(x, -0.95, 0.95)
        return ops.clamp_(ops.add_(ops.mul_(ops.erfinv_(x), 0.02 * 2 ** 0.5), 0.0), min=-2.0, max=2.0)

    trunc_normal(jnp.zeros(5))
    trunc_normal(jnp.zeros(4000))  # one program per chunk size
    with Compiles() as compiles:
        for n in range(6, 30):
            out = trunc_normal(ops.zeros((n, n + 100)))
    assert compiles.count == 0
    assert out.shape == (29, 129) and float(jnp.abs(out).max()) <= 2.0


def test_a_shape_used_again_and_again_gets_its_own_program(monkeypatch):
    monkeypatch.setattr(_eager, "BUDGET", 3)
    x = jnp.asarray(RNG.standard_normal((7, 3)).astype(np.float32))
    calls = []
    monkeypatch.setattr(_eager, "_piece", lambda *a, real=_eager._piece: calls.append(1) or real(*a))
    for _ in range(5):
        np.testing.assert_allclose(np.asarray(ops.expm1(x)), np.asarray(jnp.expm1(x)), rtol=3e-7)
    assert len(calls) == 3  # three chunked calls (one operand each), then JAX's own program


def test_transformations_take_jax_path():
    x = jnp.asarray(RNG.standard_normal(6).astype(np.float32))
    jaxpr = str(jax.make_jaxpr(lambda y: ops.exp(x) + ops.reshape(x, (2, 3)).sum() + y)(1.0))
    assert "exp" in jaxpr and "reshape" in jaxpr  # staged, not folded into constants made on the host
    grad = jax.grad(lambda y: ops.sum(ops.exp(ops.reshape(y, (2, 3)))))(x)
    np.testing.assert_allclose(np.asarray(grad), np.exp(np.asarray(x)), rtol=1e-6)
    out = jax.vmap(lambda y: ops.stack([y, ops.sin(y)]))(x.reshape(3, 2))
    assert out.shape == (3, 2, 2)


def test_exact_ops_match_jax():
    x = jnp.arange(24, dtype=jnp.int32).reshape(2, 3, 4)
    f = jnp.asarray(RNG.standard_normal((2, 3, 4)).astype(np.float32))
    pairs = [
        (ops.permute(x, 2, 0, 1), jnp.transpose(x, (2, 0, 1))), (ops.flatten(x, 1), x.reshape(2, 12)),
        (ops.unsqueeze(x, -1), x[..., None]), (ops.squeeze(x[:1]), x[0]), (ops.transpose(x, 0, 2), x.swapaxes(0, 2)),
        (ops.expand(x[:, :1], 2, 5, 4), jnp.broadcast_to(x[:, :1], (2, 5, 4))), (ops.flip(x, 1), x[:, ::-1]),
        (ops.roll(x, 1, 2), jnp.roll(x, 1, 2)), (ops.repeat(x, 1, 2, 1), jnp.tile(x, (1, 2, 1))),
        (ops.stack([x, f]), jnp.stack([x, f])), (ops.cat([x, f > 0], 1), jnp.concatenate([x, f > 0], 1)),
        (ops.cat([f, f.astype(jnp.float16)]), jnp.concatenate([f, f.astype(jnp.float16)])),
        (ops.meshgrid(x[0, 0], x[1, 1])[1], jnp.meshgrid(x[0, 0], x[1, 1], indexing="ij")[1]),
        (ops.unbind(x, 1)[2], x[:, 2]), (ops.sum(x > 5, -1), jnp.sum(x > 5, -1)), (ops.sum(x), jnp.sum(x)),
        (ops.masked_fill(f, f > 0, -100.0), jnp.where(f > 0, -100.0, f)),
        (ops.masked_fill(x, x > 3, 2), jnp.where(x > 3, 2, x)), (ops.where(x > 4, x, 0.5), jnp.where(x > 4, x, 0.5)),
        (ops.where(f > 0, f, x), jnp.where(f > 0, f, x)),
    ]
    for ours, theirs in pairs:
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_exact_results_do_not_share_memory_with_inputs():
    x = jnp.asarray(np.arange(64, dtype=np.float32))
    y = ops.reshape(x, (8, 8))
    step = jax.jit(lambda a: a * 2, donate_argnums=0)
    step(x)  # donating x must not be refused or change y
    assert x.is_deleted() and float(y[7, 7]) == 63.0


_INDEXES = st.sampled_from([0, -1, 3, 9, (slice(None), 1), (slice(1, None), slice(None, None, 2)), (None, 2),
                            (Ellipsis, 0), np.array([0, 0, 2]), np.array([True, False, True, False]),
                            (np.array([1, 1]), np.array([0, 0])), (slice(None), np.array([4, 0]))])


@settings(max_examples=60, deadline=None)
@given(_INDEXES, st.sampled_from(["set", "add", "subtract", "multiply"]),
       st.sampled_from([np.float32, np.int32, np.float16]),
       st.sampled_from([2, -3.5, True, 2 ** 40, "array", "int-array"]))
def test_at_updates_as_jax(index, method, dtype, value):
    x = jnp.asarray(RNG.standard_normal((4, 5)) * 4).astype(dtype)
    if value == "array":
        value = jnp.asarray(RNG.standard_normal(5).astype(np.float32))
    elif value == "int-array":
        value = jnp.arange(5)
    try:
        theirs = getattr(x.at[index], method)(value)
    except Exception as error:  # noqa: BLE001 - then ours must refuse it too
        with pytest.raises(type(error)):
            getattr(ops.at(x)[index], method)(value)
        return
    ours = getattr(ops.at(x)[index], method)(value)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_at_updates_compile_nothing_per_shape():
    ops.at(jnp.zeros((1, 3, 3, 1)))[:, 0:1, 1:2, :].set(1)
    with Compiles() as compiles:
        for n in range(4, 12):  # Swin's shifted-window mask, one size per stage
            mask = ops.zeros((1, n, n, 1))
            for i, h in enumerate(((0, -2), (-2, -1), (-1, None))):
                mask = ops.at(mask)[:, h[0]:h[1], :, :].set(i)
            windows = ops.view(ops.permute(ops.view(mask, 1, n, 1, n, 1), 0, 1, 3, 2, 4), -1, n)
            pairs = ops.unsqueeze(windows, 1) - ops.unsqueeze(windows, 2)
    assert compiles.count <= 8  # the subtraction is JAX's operator: one program per shape
    assert pairs.shape == (n, n, n)
