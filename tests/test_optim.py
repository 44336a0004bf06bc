"""Training with optax over jnn.split against torch.optim step by step; jnn.optim groups, masks and freezing."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from helpers import assert_close, copy_torch_weights, torch_state

import jnn

STEPS = 12
TOL = {"rtol": 2e-4, "atol": 2e-5}
RNG = np.random.default_rng(0)
XS = RNG.standard_normal((STEPS, 16, 4)).astype(np.float32)
YS = np.tanh(XS @ RNG.standard_normal((4, 3))).astype(np.float32)  # learnable targets


def make_net(nn):
    """The same model written against torch.nn or jnn: a backbone with BatchNorm and a head."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU())
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.backbone(x))

    return Net()


def twins(seed: int = 0):
    torch.manual_seed(seed)
    t = make_net(torch.nn)
    return t, copy_torch_weights(make_net(jnn), t)


def train_torch(net, optimizer, scheduler=None, clip: float | None = None, xs=XS, ys=YS) -> tuple[list, list]:
    losses, norms = [], []
    for x, y in zip(xs, ys, strict=True):
        optimizer.zero_grad()
        loss = ((net(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).mean()
        loss.backward()
        if clip is not None:
            norms.append(float(torch.nn.utils.clip_grad_norm_(net.parameters(), clip)))
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(float(loss.detach()))
    return losses, norms


def train_jnn(net, optimizer, xs=XS, ys=YS, train: bool | None = True) -> tuple[list, jnn.Module]:
    """The canonical loop: split once, one jitted step with params, buffers and optimizer state donated."""
    apply, params, buffers = jnn.split(net)
    opt_state = optimizer.init(params)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(params, buffers, opt_state, x, y):
        def loss_fn(params):
            out, new_buffers = apply(params, buffers, x, train=train)
            return ((out - y) ** 2).mean(), new_buffers

        (loss, buffers), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), buffers, opt_state, loss

    losses = []
    for x, y in zip(xs, ys, strict=True):
        params, buffers, opt_state, loss = step(params, buffers, opt_state, jnp.asarray(x), jnp.asarray(y))
        losses.append(float(loss))
    return losses, jnn.merge(apply, params, buffers)


def assert_same_training(t, j, torch_losses, jnn_losses) -> None:
    assert_close(jnn_losses, torch_losses, **TOL)
    ours, theirs = j.state_dict(), torch_state(t)
    assert list(ours) == list(theirs)
    for k in theirs:  # weights, running statistics and num_batches_tracked
        assert_close(ours[k], theirs[k], **TOL)
    assert int(ours["backbone.1.num_batches_tracked"]) == STEPS


def sgd_with_decay(learning_rate, weight_decay=0.0, momentum=0.9, nesterov=False):
    """torch.optim.SGD in optax: weight decay is added to the gradient before the momentum trace."""
    return optax.chain(optax.add_decayed_weights(weight_decay),
                       optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov))


# --- single-group trajectories ------------------------------------------------------------------------------

CASES = {
    "sgd_momentum_decay": (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
                           sgd_with_decay(0.1, 1e-2)),
    "sgd_nesterov": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                     sgd_with_decay(0.05, 1e-3, nesterov=True)),
    "adamw": (lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1, betas=(0.8, 0.99), eps=1e-6),
              optax.adamw(1e-2, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.1)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_matches_torch(case):
    make_torch_optimizer, optimizer = CASES[case]
    t, j = twins()
    torch_losses, _ = train_torch(t, make_torch_optimizer(t.parameters()))
    jnn_losses, j = train_jnn(j, optimizer)
    assert jnn_losses[-1] < jnn_losses[0]
    assert_same_training(t, j, torch_losses, jnn_losses)


# --- parameter groups, clipping, schedules ------------------------------------------------------------------

def test_param_groups_with_decay_mask_match_torch_groups():
    t, j = twins(1)
    named = dict(t.named_parameters())
    is_backbone = lambda name: name.startswith("backbone.")  # noqa: E731
    torch_groups = [
        {"params": [p for n, p in named.items() if is_backbone(n) == backbone and (p.ndim >= 2) == decay],
         "lr": 3e-3 if backbone else 1e-2, "weight_decay": 0.1 if decay else 0.0}
        for backbone in (True, False) for decay in (True, False)
    ]
    torch_losses, _ = train_torch(t, torch.optim.AdamW(torch_groups))
    optimizer = jnn.optim.param_groups(optax.adamw, [{"params": "backbone.*", "learning_rate": 3e-3}],
                                       learning_rate=1e-2, weight_decay=0.1, mask=jnn.optim.decay_mask)
    jnn_losses, j = train_jnn(j, optimizer)
    assert_same_training(t, j, torch_losses, jnn_losses)


def test_param_groups_sgd_per_group_momentum_and_decay():
    t, j = twins(2)
    torch_optimizer = torch.optim.SGD([
        {"params": t.backbone.parameters(), "lr": 0.02, "momentum": 0.5},
        {"params": [t.head.weight], "weight_decay": 0.05},
        {"params": [t.head.bias]},
    ], lr=0.1, momentum=0.9, weight_decay=0.0)
    torch_losses, _ = train_torch(t, torch_optimizer)
    optimizer = jnn.optim.param_groups(sgd_with_decay, [
        {"params": "backbone.*", "learning_rate": 0.02, "momentum": 0.5},
        {"params": {"head.weight"}, "weight_decay": 0.05, "name": "head_matrix"},
    ], learning_rate=0.1, momentum=0.9, weight_decay=0.0)
    jnn_losses, j = train_jnn(j, optimizer)
    assert_same_training(t, j, torch_losses, jnn_losses)


def test_clip_by_global_norm_matches_clip_grad_norm():
    t, j = twins(3)
    torch_losses, norms = train_torch(t, torch.optim.SGD(t.parameters(), lr=0.1, momentum=0.9), clip=0.5)
    assert sum(n > 0.5 for n in norms) >= STEPS // 2  # the clip is active on most steps
    optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.sgd(0.1, momentum=0.9))
    jnn_losses, j = train_jnn(j, optimizer)
    assert_same_training(t, j, torch_losses, jnn_losses)


def test_step_lr_schedule_matches_torch():
    t, j = twins(4)
    torch_optimizer = torch.optim.SGD(t.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(torch_optimizer, step_size=4, gamma=0.5)
    torch_losses, _ = train_torch(t, torch_optimizer, scheduler)
    schedule = optax.exponential_decay(0.1, transition_steps=4, decay_rate=0.5, staircase=True)
    jnn_losses, j = train_jnn(j, optax.sgd(schedule, momentum=0.9))
    assert_same_training(t, j, torch_losses, jnn_losses)


def test_cosine_schedule_with_adamw_matches_torch():
    t, j = twins(5)
    torch_optimizer = torch.optim.AdamW(t.parameters(), lr=1e-2, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(torch_optimizer, T_max=STEPS, eta_min=1e-3)
    torch_losses, _ = train_torch(t, torch_optimizer, scheduler)
    schedule = optax.cosine_decay_schedule(1e-2, decay_steps=STEPS, alpha=0.1)
    jnn_losses, j = train_jnn(j, optax.adamw(schedule, weight_decay=0.05))
    assert_same_training(t, j, torch_losses, jnn_losses)


# --- freezing and fine-tuning --------------------------------------------------------------------------------

def test_fine_tune_head_on_frozen_backbone_matches_torch():
    t, j = twins(6)
    for net in (t, j):
        net.backbone.requires_grad_(False)
        net.backbone.eval()  # frozen BatchNorm: running statistics stay put too
    apply, params, buffers = jnn.split(j)
    assert list(params) == ["head.weight", "head.bias"]
    assert [k for k in buffers if k.startswith("backbone.")] == [k for k in torch_state(t) if k.startswith("backbone.")]
    before = {k: np.array(v) for k, v in j.state_dict().items()}
    xs, ys = np.repeat(XS[:1], 10, axis=0), np.repeat(YS[:1], 10, axis=0)  # one batch: the loss must fall
    torch_losses, _ = train_torch(t, torch.optim.SGD(t.head.parameters(), lr=0.1, momentum=0.9), xs=xs, ys=ys)
    jnn_losses, j = train_jnn(j, optax.sgd(0.1, momentum=0.9), xs=xs, ys=ys, train=None)
    after = j.state_dict()
    for k, v in before.items():
        if k.startswith("backbone."):
            np.testing.assert_array_equal(np.asarray(after[k]), v, err_msg=k)
    assert not np.allclose(np.asarray(after["head.weight"]), before["head.weight"])
    assert jnn_losses[-1] < 0.9 * jnn_losses[0]
    assert_close(jnn_losses, torch_losses, **TOL)
    for k in ("head.weight", "head.bias"):
        assert_close(after[k], t.state_dict()[k], **TOL)


def test_group_with_set_to_zero_freezes_what_it_selects():
    t, j = twins(7)
    before = {k: np.array(v) for k, v in j.state_dict().items()}
    optimizer = jnn.optim.param_groups(optax.sgd, [{"params": "backbone.0.*", "optimizer": optax.set_to_zero()}],
                                       learning_rate=0.1)
    _, j = train_jnn(j, optimizer)
    after = j.state_dict()
    for k in ("backbone.0.weight",):
        np.testing.assert_array_equal(np.asarray(after[k]), before[k])
    for k in ("backbone.1.weight", "head.weight", "head.bias"):
        assert not np.allclose(np.asarray(after[k]), before[k]), k


# --- any pytree, predicates, state layout --------------------------------------------------------------------

def test_param_groups_on_nested_pytree_with_predicate_group():
    params = {"encoder": {"layers": [{"weight": jnp.ones((2, 2)), "bias": jnp.ones(2)}]}, "scale": jnp.ones(())}
    optimizer = jnn.optim.param_groups(optax.sgd, [
        {"params": "encoder.layers.*.weight", "learning_rate": 0.5, "name": "matrices"},
        {"params": lambda name, value: value.ndim == 0, "learning_rate": 0.25},
    ], learning_rate=1.0)
    opt_state = optimizer.init(params)
    assert set(opt_state.inner_states) == {"matrices", "group1", "default"}
    updates, _ = jax.jit(optimizer.update)(params, opt_state)
    assert float(updates["encoder"]["layers"][0]["weight"][0, 0]) == -0.5
    assert float(updates["encoder"]["layers"][0]["bias"][0]) == -1.0
    assert float(updates["scale"]) == -0.25


def test_group_with_its_own_factory_takes_the_defaults_it_accepts():
    params = {"backbone.weight": jnp.ones((2, 2)), "head.weight": jnp.ones((1, 2))}
    optimizer = jnn.optim.param_groups(optax.adamw, [{"params": "head.*", "optimizer": optax.sgd}],
                                       learning_rate=0.1, weight_decay=0.5)  # optax.sgd takes no weight_decay
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    assert_close(updates["head.weight"], np.full((1, 2), -0.1))  # plain SGD with the default learning rate
    assert_close(updates["backbone.weight"], np.full((2, 2), -0.1 * (1 + 0.5)), rtol=1e-6)  # AdamW: step + decay


def test_decay_mask_conventions_and_overrides():
    net = jnn.Sequential(jnn.Conv2d(1, 2, 3), jnn.BatchNorm2d(2), jnn.Flatten(), jnn.Linear(2, 2),
                         jnn.LayerNorm(2), jnn.Embedding(5, 2), jnn.PReLU())
    _, params, _ = jnn.split(net)
    assert {k for k, v in jnn.optim.decay_mask(params).items() if v} == {"0.weight", "3.weight", "5.weight"}
    mask = jnn.optim.decay_mask(params, include=["6.*"], exclude=["5.*"])
    assert {k for k, v in mask.items() if v} == {"0.weight", "3.weight", "6.weight"}
    assert jnn.optim.decay_mask({"a": {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}}) == {"a": {"w": True, "b": False}}


def test_decay_mask_as_callable_mask_excludes_bias_from_adamw_decay():
    params = {"fc.weight": jnp.ones((2, 2)), "fc.bias": jnp.ones(2)}
    zero_grads = jax.tree_util.tree_map(jnp.zeros_like, params)
    optimizer = optax.adamw(0.1, weight_decay=0.5, mask=jnn.optim.decay_mask)
    updates, _ = optimizer.update(zero_grads, optimizer.init(params), params)
    assert_close(updates["fc.weight"], np.full((2, 2), -0.05))
    assert_close(updates["fc.bias"], np.zeros(2))


# --- errors ----------------------------------------------------------------------------------------------------

PARAMS = {"backbone.0.weight": jnp.ones((2, 2)), "backbone.0.bias": jnp.ones(2), "head.weight": jnp.ones((1, 2))}


@pytest.mark.parametrize("groups, match", [
    ([{"params": "backbone.*"}, {"params": ["backbone.0.bias"]}], r"'backbone\.0\.bias' is selected by groups"),
    ([{"params": "encoder.*"}], r"group 'group0' selects no parameters \(no name matches \['encoder\.\*'\]\)"),
    ([{"params": ["head.weight", "head.bais"]}], r"no name matches \['head\.bais'\]"),
    ([{"params": lambda name, value: False, "name": "never"}], r"group 'never' selects no parameters"),
])
def test_group_selection_errors_name_the_parameter(groups, match):
    optimizer = jnn.optim.param_groups(optax.sgd, groups, learning_rate=0.1)
    with pytest.raises(ValueError, match=match):
        optimizer.init(PARAMS)


@pytest.mark.parametrize("call, error, match", [
    (lambda: jnn.optim.param_groups(optax.sgd, {"params": "head.*"}, learning_rate=0.1), TypeError,
     "groups must be a list of dicts"),
    (lambda: jnn.optim.param_groups(optax.sgd, [{"learning_rate": 0.1}], learning_rate=0.1), TypeError,
     "group 0: expected a dict with a 'params' entry"),
    (lambda: jnn.optim.param_groups(optax.sgd, [{"params": 3}], learning_rate=0.1), TypeError,
     "'params' must be a glob pattern"),
    (lambda: jnn.optim.param_groups(optax.sgd, [{"params": []}], learning_rate=0.1), TypeError,
     "non-empty list"),
    (lambda: jnn.optim.param_groups(optax.sgd, [{"params": "head.*", "lr": 0.1}], learning_rate=0.1), TypeError,
     r"group 0: sgd takes no hyperparameter\(s\) \['lr'\] \(optax spells torch's 'lr' as 'learning_rate'\)"),
    (lambda: jnn.optim.param_groups(optax.adamw, [], lr=0.1), TypeError, r"defaults: adamw takes no"),
    (lambda: jnn.optim.param_groups(optax.adamw(0.1), [], learning_rate=0.1), TypeError,
     "optimizer must be an optax factory"),
    (lambda: jnn.optim.param_groups(optax.sgd, [{"params": "head.*", "optimizer": optax.set_to_zero(),
                                                 "learning_rate": 0.1}], learning_rate=0.1), TypeError,
     "given with a ready GradientTransformation"),
    (lambda: jnn.optim.param_groups(optax.sgd, [{"params": "head.*", "name": "default"}], learning_rate=0.1),
     ValueError, "name must be a unique string"),
    (lambda: jnn.optim.decay_mask(PARAMS, include="head.*"), TypeError, "include must be a list of glob patterns"),
    (lambda: jnn.optim.decay_mask(PARAMS, include=["head.*"], exclude=["*.weight"]), ValueError,
     "'head.weight' matches both include and exclude"),
])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- make_train_step ----------------------------------------------------------------------------------------------

def test_make_train_step_matches_torch():
    t, j = twins(8)
    torch_losses, _ = train_torch(t, torch.optim.SGD(t.parameters(), lr=0.05, momentum=0.9, nesterov=True))
    apply, params, buffers = jnn.split(j)
    optimizer = optax.sgd(0.05, momentum=0.9, nesterov=True)
    step = jnn.optim.make_train_step(apply, optimizer, jnn.functional.mse_loss)
    opt_state, losses = optimizer.init(params), []
    for x, y in zip(XS, YS, strict=True):
        params, buffers, opt_state, loss = step(params, buffers, opt_state, jnp.asarray(x), jnp.asarray(y))
        losses.append(float(loss))
    assert_same_training(t, jnn.merge(apply, params, buffers), torch_losses, losses)


def test_make_train_step_dropout_key_per_step_and_donation():
    jnn.manual_seed(0)
    net = jnn.Sequential(jnn.Linear(4, 16), jnn.ReLU(), jnn.Dropout(0.5), jnn.Linear(16, 3))
    apply, params, buffers = jnn.split(net)
    optimizer = optax.adam(1e-2)
    x, y = jnp.asarray(XS[0]), jnp.asarray(YS[0])
    kept = jnn.optim.make_train_step(apply, optimizer, jnn.functional.mse_loss, donate=False)
    key = jax.random.key(0)
    opt_state = optimizer.init(params)
    same = [float(kept(params, buffers, opt_state, x, y, key=jax.random.fold_in(key, 0))[3]) for _ in range(2)]
    other = float(kept(params, buffers, opt_state, x, y, key=jax.random.fold_in(key, 1))[3])
    assert same[0] == same[1] != other  # the mask follows the key, and only the key
    assert not params["0.weight"].is_deleted()
    with pytest.raises(jnn.random.MissingKeyError):
        kept(params, buffers, opt_state, x, y)
    reference = kept(params, buffers, opt_state, x, y, key=jax.random.fold_in(key, 0))[0]
    donated = jnn.optim.make_train_step(apply, optimizer, jnn.functional.mse_loss)
    new_params, *_ = donated(params, buffers, opt_state, x, y, key=jax.random.fold_in(key, 0))
    assert params["0.weight"].is_deleted() and net[0].weight.is_deleted()  # the split module's arrays too
    for k in reference:
        np.testing.assert_array_equal(np.asarray(new_params[k]), np.asarray(reference[k]))


def test_make_train_step_rejects_an_optimizer_factory():
    apply, _, _ = jnn.split(jnn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"optimizer must be an optax GradientTransformation such as optax\.adamw"):
        jnn.optim.make_train_step(apply, optax.adamw, jnn.functional.mse_loss)
