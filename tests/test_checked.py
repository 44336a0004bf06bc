"""jnn.checked: the index errors jnn raises eagerly (as torch does) become errors under jax.jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.experimental import checkify

import jnn
import jnn.functional as F


def test_embedding_out_of_range_under_jit():
    jnn.manual_seed(0)
    emb = jnn.Embedding(5, 3)
    plain = jax.jit(lambda m, i: m(i))
    step = jnn.checked(jax.jit(lambda m, i: m(i)))
    good = jnp.array([[0, 4], [2, 2]])
    np.testing.assert_array_equal(step(emb, good), plain(emb, good))
    for bad, value in (([0, 5], 5), ([7, 1], 7), ([1, -1], -1)):
        # unchecked, JAX clamps or wraps the lookup silently
        assert plain(emb, jnp.array(bad)).shape == (2, 3)
        with pytest.raises(checkify.JaxRuntimeError, match=rf"embedding: index {value} out of range "
                                                           rf"\(expected indices in \[0, 5\)\)"):
            step(emb, jnp.array(bad))
    with pytest.raises(IndexError):  # eagerly, as torch
        emb(jnp.array([5]))
    with pytest.raises(IndexError):
        torch.nn.Embedding(5, 3)(torch.tensor([5]))


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_class_target_out_of_range_under_jit(loss):
    fn = getattr(F, loss)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 4)), jnp.float32)
    plain = jax.jit(lambda x, t: fn(x, t))
    step = jnn.checked(jax.jit(lambda x, t: fn(x, t)))
    good = jnp.array([0, 3, 1])
    np.testing.assert_allclose(step(x, good), plain(x, good), rtol=1e-6)
    np.testing.assert_allclose(step(x, good), getattr(torch.nn.functional, loss)(
        torch.from_numpy(np.asarray(x)), torch.tensor([0, 3, 1])).item(), rtol=1e-5)
    assert np.isnan(plain(x, jnp.array([0, 4, 1])))  # unchecked under jit: NaN
    with pytest.raises(checkify.JaxRuntimeError, match=rf"{loss}: index 4 out of range"):
        step(x, jnp.array([0, 4, 1]))
    with pytest.raises(checkify.JaxRuntimeError, match="index -3 out of range"):
        step(x, jnp.array([0, -3, 1]))
    # ignore_index is not out of range
    np.testing.assert_allclose(step(x, jnp.array([0, -100, 1])), plain(x, jnp.array([0, -100, 1])), rtol=1e-6)


def test_margin_losses_checked():
    x = jnp.ones((2, 3))
    with pytest.raises(checkify.JaxRuntimeError, match="multi_margin_loss: index 3"):
        jnn.checked(jax.jit(F.multi_margin_loss))(x, jnp.array([0, 3]))
    with pytest.raises(checkify.JaxRuntimeError, match="multilabel_margin_loss: index 5"):
        jnn.checked(jax.jit(F.multilabel_margin_loss))(x, jnp.array([[0, 5, -1], [1, -1, 0]]))


def test_checked_training_step_through_split():
    jnn.manual_seed(0)
    net = jnn.Sequential(jnn.Embedding(10, 4), jnn.Flatten(), jnn.Linear(8, 3))
    apply, params, buffers = jnn.split(net)

    def loss(params, tokens, target):
        out, _ = apply(params, buffers, tokens)
        return F.cross_entropy(out, target)

    step = jnn.checked(jax.jit(jax.value_and_grad(loss)))
    value, grads = step(params, jnp.array([[1, 2], [3, 9]]), jnp.array([0, 2]))
    assert np.isfinite(value) and set(grads) == set(params)
    with pytest.raises(checkify.JaxRuntimeError, match="embedding: index 10"):
        step(params, jnp.array([[1, 2], [3, 10]]), jnp.array([0, 2]))
    with pytest.raises(checkify.JaxRuntimeError, match="cross_entropy: index 3"):
        step(params, jnp.array([[1, 2], [3, 9]]), jnp.array([0, 3]))


def test_checks_cost_nothing_unchecked():
    """Without jnn.checked the staged checks vanish: the jitted program has no error plumbing."""
    emb = jnn.Embedding(5, 3)
    text = jax.jit(lambda m, i: m(i)).lower(emb, jnp.array([1])).as_text()
    assert "check" not in text.lower()
