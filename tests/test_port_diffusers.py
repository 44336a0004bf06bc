"""HuggingFace diffusers' UNets, VAE and schedulers, ported by ``python -m jnn.port`` from diffusers' own source.

The installed diffusers package (the test extra pins it) builds the torch references; the files that importing
them loads are ported with no hand edits (see ``_diffusers_source``): ``diffusers`` -> ``diffusers_jnn``. Each
model is made from a small config on both sides (a few channels, one layer per block, but every block kind a
Stable-Diffusion-style model has: resnets with time embeddings, self- and cross-attention transformers, down- and
upsamplers), its constant-initialised tensors (GroupNorm weights and biases, zero-initialised output convolutions)
are randomised, torch's state_dict loads into the port with ``strict=True`` (same keys, same order), and eval
outputs match eagerly and under ``jax.jit``. The conditional UNet also takes one training step through
``jnn.split`` (the epsilon-prediction MSE loss and every gradient); the VAE encodes (the latent distribution's
mean, std and a sample with fixed noise) and decodes; DDPM's and DDIM's ``step`` match torch's; and a whole tiny
text-to-image loop (DDIM over the conditional UNet with classifier-free guidance, then the VAE's decoder) gives
torch's image.
"""

from __future__ import annotations

import _diffusers_source as source
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import jitted, load_twin

import jnn

# one pytest-xdist worker runs this file: its module fixture ports diffusers (over a minute), which each worker
# given one of its tests would make again
pytestmark = pytest.mark.xdist_group("diffusers")

pytest.importorskip("diffusers")
diffusers = source.load("diffusers")  # the installed package, with its models imported

RNG = np.random.default_rng(0)
CONDITION = RNG.standard_normal((2, 7, 32)).astype(np.float32)  # "text" embeddings: batch 2, 7 tokens, width 32
TIMESTEPS = np.array([10, 700])
# Stable Diffusion's UNet and VAE, scaled down: two resolutions, 8 groups per GroupNorm, heads of width 8
UNET = {"sample_size": 16, "block_out_channels": (32, 64), "layers_per_block": 1, "norm_num_groups": 8,
        "attention_head_dim": 8}
MODELS = {
    "unet2d": ("UNet2DModel", {  # unconditional (DDPM's), with self-attention at the lower resolution
        **UNET, "in_channels": 3, "out_channels": 3,
        "down_block_types": ("DownBlock2D", "AttnDownBlock2D"), "up_block_types": ("AttnUpBlock2D", "UpBlock2D")}),
    "unet2d_condition": ("UNet2DConditionModel", {  # text-conditioned: cross-attention to CONDITION
        **UNET, "in_channels": 4, "out_channels": 4, "cross_attention_dim": 32,
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D")}),
    "vae": ("AutoencoderKL", {
        "in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": (32, 64),
        "layers_per_block": 1, "norm_num_groups": 8, "sample_size": 16,
        "down_block_types": ("DownEncoderBlock2D",) * 2, "up_block_types": ("UpDecoderBlock2D",) * 2}),
}
# Stable Diffusion's noise schedule (its scheduler_config.json; set_alpha_to_one is DDIM's alone)
SCHEDULER = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
             "clip_sample": False, "steps_offset": 1}
DDIM = {**SCHEDULER, "set_alpha_to_one": False}


@pytest.fixture(scope="module")
def diffusers_jnn():
    return source.import_ported()


def _models(name: str, diffusers_jnn):
    cls, config = MODELS[name]
    torch.manual_seed(0)
    reference, model = getattr(diffusers, cls)(**config), getattr(diffusers_jnn, cls)(**config)
    load_twin(model, reference)
    return reference, model


def _close(actual, expected, rtol=1e-4):
    """float32 parity: relative to the output's scale (sums over a few hundred channels, in another order)."""
    expected = np.asarray(expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected)
    atol = 1e-5 * max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol)


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x))


def test_unet2d_matches_torch(diffusers_jnn):
    reference, model = _models("unet2d", diffusers_jnn)
    x = RNG.standard_normal((2, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = reference(_t(x), _t(TIMESTEPS)).sample
    output = model(jnp.asarray(x), jnp.asarray(TIMESTEPS))
    assert type(output).__name__ == "UNet2DOutput"
    _close(output.sample, expected)
    _close(jax.jit(lambda m, x, t: m(x, t).sample)(model, jnp.asarray(x), jnp.asarray(TIMESTEPS)), expected)
    with torch.no_grad():  # a single python-int timestep, broadcast over the batch
        _close(model(jnp.asarray(x), 50).sample, reference(_t(x), 50).sample)


def test_unet2d_condition_matches_torch(diffusers_jnn):
    reference, model = _models("unet2d_condition", diffusers_jnn)
    x = RNG.standard_normal((2, 4, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = reference(_t(x), _t(TIMESTEPS), _t(CONDITION)).sample
    _close(model(jnp.asarray(x), jnp.asarray(TIMESTEPS), jnp.asarray(CONDITION)).sample, expected)
    output = jax.jit(lambda m, *a: m(*a))(model, jnp.asarray(x), jnp.asarray(TIMESTEPS), jnp.asarray(CONDITION))
    assert type(output).__name__ == "UNet2DConditionOutput"  # a pytree: it comes back through jit whole
    _close(output.sample, expected)
    mask = np.ones((2, 7), bool)
    mask[0, 4:] = False  # the first prompt is 4 tokens long
    with torch.no_grad():
        masked = reference(_t(x), _t(TIMESTEPS), _t(CONDITION), encoder_attention_mask=_t(mask)).sample
    _close(model(jnp.asarray(x), jnp.asarray(TIMESTEPS), jnp.asarray(CONDITION),
                 encoder_attention_mask=jnp.asarray(mask)).sample, masked)

    # one training step: epsilon prediction's MSE loss and every parameter's gradient
    reference.train()
    model.train()
    target = RNG.standard_normal(x.shape).astype(np.float32)
    loss = torch.nn.functional.mse_loss(reference(_t(x), _t(TIMESTEPS), _t(CONDITION)).sample, _t(target))
    loss.backward()
    apply, params, buffers = jnn.split(model)

    def objective(params):
        out, _ = apply(params, buffers, jnp.asarray(x), jnp.asarray(TIMESTEPS), jnp.asarray(CONDITION), train=True)
        return jnn.functional.mse_loss(out.sample, jnp.asarray(target))

    value, grads = jax.jit(jax.value_and_grad(objective))(params)
    _close(value, loss)
    torch_grads = dict(reference.named_parameters())
    assert set(grads) == set(torch_grads)
    for key, p in torch_grads.items():
        _close(grads[key], np.zeros(p.shape) if p.grad is None else p.grad, rtol=1e-3)


def _fixed_noise(monkeypatch, module, noise: np.ndarray, to_array) -> None:
    """``module.randn_tensor`` (diffusers' sampler of Gaussian noise) gives ``noise`` instead: the same draw on
    both sides."""
    def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
        assert tuple(shape) == noise.shape
        return to_array(noise)

    monkeypatch.setattr(module, "randn_tensor", randn_tensor)


def test_autoencoder_kl_matches_torch(diffusers_jnn, monkeypatch):
    reference, model = _models("vae", diffusers_jnn)
    images = RNG.uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32)
    # diffusers' own sampling with a (jnn) generator: reproducible, mean + std * a standard normal draw
    ours = model.encode(jnp.asarray(images)).latent_dist
    draws = [ours.sample(generator=jnn.ops.Generator().manual_seed(0)) for _ in range(2)]
    np.testing.assert_array_equal(draws[0], draws[1])
    z = np.asarray((draws[0] - ours.mean) / ours.std)
    assert abs(z.mean()) < 0.2 and abs(z.std() - 1) < 0.2

    noise = RNG.standard_normal((2, 4, 8, 8)).astype(np.float32)
    _fixed_noise(monkeypatch, diffusers.models.autoencoders.vae, noise, _t)
    _fixed_noise(monkeypatch, diffusers_jnn.models.autoencoders.vae, noise, jnp.asarray)
    with torch.no_grad():
        dist = reference.encode(_t(images)).latent_dist
        latents = dist.sample()
        decoded = reference.decode(latents).sample
    ours = model.encode(jnp.asarray(images)).latent_dist
    for name in ("mean", "std", "var", "logvar"):
        _close(getattr(ours, name), getattr(dist, name))
    ours_latents = ours.sample()
    _close(ours_latents, latents)
    _close(ours.kl(), dist.kl())
    _close(model.decode(ours_latents).sample, decoded)
    _close(jax.jit(lambda m, z: m.decode(z).sample)(model, jnp.asarray(latents.numpy())), decoded)
    with torch.no_grad():  # the whole forward: the posterior's mode, decoded
        _close(jax.jit(lambda m, x: m(x).sample)(model, jnp.asarray(images)), reference(_t(images)).sample)


@pytest.mark.parametrize("name", ["DDPMScheduler", "DDIMScheduler"])
def test_scheduler_step_matches_torch(name, diffusers_jnn, monkeypatch):
    config = DDIM if name == "DDIMScheduler" else SCHEDULER
    reference, scheduler = getattr(diffusers, name)(**config), getattr(diffusers_jnn, name)(**config)
    _close(scheduler.alphas_cumprod, reference.alphas_cumprod)
    reference.set_timesteps(10)
    scheduler.set_timesteps(10)
    np.testing.assert_array_equal(np.asarray(scheduler.timesteps), reference.timesteps.numpy())
    sample, model_output, noise = (RNG.standard_normal((2, 4, 8, 8)).astype(np.float32) for _ in range(3))
    # DDPM adds its variance noise with randn_tensor; DDIM (eta > 0) takes it as an argument
    _fixed_noise(monkeypatch, diffusers.schedulers.scheduling_ddpm, noise, _t)
    _fixed_noise(monkeypatch, diffusers_jnn.schedulers.scheduling_ddpm, noise, jnp.asarray)
    extra = {"eta": 0.5} if name == "DDIMScheduler" else {}
    for t in (reference.timesteps[0], reference.timesteps[5], reference.timesteps[-1]):
        t = int(t)
        kwargs = dict(extra, variance_noise=_t(noise)) if extra else {}
        expected = reference.step(_t(model_output), t, _t(sample), **kwargs)
        kwargs = dict(extra, variance_noise=jnp.asarray(noise)) if extra else {}
        output = scheduler.step(jnp.asarray(model_output), t, jnp.asarray(sample), **kwargs)
        _close(output.prev_sample, expected.prev_sample)
        _close(output.pred_original_sample, expected.pred_original_sample)
        if name == "DDIMScheduler":  # DDPM finds t's index in its timesteps with nonzero(): not under jit
            _close(jitted(scheduler.step, (model_output, t, sample), kwargs).prev_sample, expected.prev_sample)
    timesteps = np.array([3, 999])
    _close(scheduler.add_noise(jnp.asarray(sample), jnp.asarray(noise), jnp.asarray(timesteps)),
           reference.add_noise(_t(sample), _t(noise), _t(timesteps)))


def test_text_to_image_loop_matches_torch(diffusers_jnn):
    """A tiny Stable Diffusion sampling loop: DDIM over the conditional UNet with classifier-free guidance (an
    unconditional and a conditional half of one batch), the latents decoded by the VAE. (With DDIM's default
    schedule, whose last alpha_cumprod is 4e-5, the first step divides the UNet's float32 rounding by
    sqrt(4e-5): the loop amplifies differences 150-fold; Stable Diffusion's schedule keeps them near 1e-6.)"""
    (unet_ref, unet), (vae_ref, vae) = _models("unet2d_condition", diffusers_jnn), _models("vae", diffusers_jnn)
    scheduler_ref, scheduler = diffusers.DDIMScheduler(**DDIM), diffusers_jnn.DDIMScheduler(**DDIM)
    latents = RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)
    condition = np.concatenate([np.zeros_like(CONDITION[:1]), CONDITION[:1]])  # (unconditional, prompt)

    def sample(ops, unet, vae, scheduler, latents, condition, denoise):
        scheduler.set_timesteps(4)
        latents = latents * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            noise_pred = denoise(unet, ops.cat([latents] * 2), t, condition)
            uncond, cond = noise_pred.chunk(2) if isinstance(noise_pred, torch.Tensor) else ops.chunk(noise_pred, 2)
            latents = scheduler.step(uncond + 7.5 * (cond - uncond), t, latents).prev_sample
        return latents, vae.decode(latents / vae.config.scaling_factor).sample

    with torch.no_grad():
        expected_latents, expected = sample(torch, unet_ref, vae_ref, scheduler_ref, _t(latents), _t(condition),
                          lambda m, x, t, c: m(x, t, c).sample)
    denoise = jax.jit(lambda m, x, t, c: m(x, t, c).sample)
    latents, image = sample(jnn.ops, unet, vae, scheduler, jnp.asarray(latents), jnp.asarray(condition), denoise)
    _close(latents, expected_latents)
    _close(image, expected)
