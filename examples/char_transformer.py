"""Train a small character-level Transformer language model on Shakespeare's sonnets, then sample from it.

    python examples/char_transformer.py            # a minute or two on a 2-core CPU

The model is plain PyTorch-style code (only the imports differ): ``nn.Embedding`` for characters and positions,
an ``nn.TransformerEncoder`` run with a causal mask, and a linear head over the vocabulary. Training runs through
``jnn.split`` + ``jax.jit`` + optax, with a fresh Dropout key per step; sampling draws each next character with
``jax.random.categorical`` at a chosen temperature. The text (``examples/data/sonnets.txt``) is in the public
domain.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

import jnn
import jnn as nn
import jnn.functional as F

DATA = pathlib.Path(__file__).resolve().parent / "data" / "sonnets.txt"


class CharTransformer(nn.Module):
    def __init__(self, vocab_size: int, context: int, d_model: int, nhead: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(context, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=4 * d_model, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens):  # tokens: (batch, time) integer ids -> logits (batch, time, vocab)
        length = tokens.shape[1]
        x = self.token_embedding(tokens) + self.position_embedding(jnp.arange(length))
        causal = nn.Transformer.generate_square_subsequent_mask(length)  # -inf above the diagonal
        return self.head(self.encoder(x, mask=causal, is_causal=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--context", type=int, default=64, help="characters the model sees at once")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--nhead", type=int, default=4)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--sample-length", type=int, default=400)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--prompt", default="Shall I compare thee")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=".", help="folder for char_transformer_loss.png")
    args = parser.parse_args()

    text = DATA.read_text(encoding="utf-8")
    chars = sorted(set(text))
    char_to_id = {c: i for i, c in enumerate(chars)}
    data = np.array([char_to_id[c] for c in text], dtype=np.int32)
    split_at = int(0.9 * len(data))
    train_data, val_data = data[:split_at], data[split_at:]
    print(f"{len(text)} characters, a vocabulary of {len(chars)}; "
          f"{len(train_data)} to train on, {len(val_data)} held out")

    jnn.manual_seed(args.seed)
    net = CharTransformer(len(chars), args.context, args.d_model, args.nhead, args.num_layers, args.dropout)
    apply, params, buffers = jnn.split(net)
    print(f"{sum(p.size for p in params.values())} parameters")

    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(100, args.steps // 10 + 1), args.steps)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.01))
    opt_state = optimizer.init(params)

    def loss_fn(params, tokens, targets, key, train):
        logits, _ = apply(params, buffers, tokens, train=train, key=key)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    @jax.jit
    def train_step(params, opt_state, tokens, targets, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, tokens, targets, key, True)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    eval_loss = jax.jit(lambda params, tokens, targets: loss_fn(params, tokens, targets, None, False))

    def batch(source: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        starts = rng.integers(0, len(source) - args.context - 1, args.batch_size)
        windows = np.stack([source[s : s + args.context + 1] for s in starts])
        return windows[:, :-1], windows[:, 1:]  # predict every next character

    rng = np.random.default_rng(args.seed)
    val_rng = np.random.default_rng(args.seed + 1)
    val_batches = [batch(val_data, val_rng) for _ in range(4)]
    key = jax.random.key(args.seed)
    eval_every = max(1, args.steps // 20)
    losses, val_steps, val_losses = [], [], []
    start = time.perf_counter()
    for step in (bar := tqdm(range(1, args.steps + 1), desc="training", unit="step")):
        key, step_key = jax.random.split(key)  # a fresh Dropout key every step
        params, opt_state, loss = train_step(params, opt_state, *batch(train_data, rng), step_key)
        losses.append(loss)
        if step % eval_every == 0 or step == args.steps:
            val_steps.append(step)
            val_losses.append(float(np.mean([eval_loss(params, x, y) for x, y in val_batches])))
            bar.set_postfix(loss=f"{float(loss):.3f}", val_loss=f"{val_losses[-1]:.3f}")
    losses = np.asarray(jax.device_get(losses))
    elapsed = time.perf_counter() - start
    window = max(1, min(50, len(losses) // 5))  # steps averaged for the summary and the smoothed curve
    first, last = float(losses[:window].mean()), float(losses[-window:].mean())
    print(f"trained {args.steps} steps in {elapsed:.1f} s")
    print(f"training loss: {first:.3f} -> {last:.3f} (mean of the first and last {window} steps)")
    print(f"held-out loss: {val_losses[-1]:.3f} nats per character")

    # Sampling: feed a fixed-length window (one compiled shape) and read the logits at the last real position;
    # the causal mask keeps the padding after it from mattering.
    @jax.jit
    def next_logits(params, padded, position):
        logits, _ = apply(params, buffers, padded[None], train=False)
        return logits[0, position]

    tokens = [char_to_id[c] for c in args.prompt if c in char_to_id] or [char_to_id["\n"]]
    key = jax.random.key(args.seed + 2)
    for _ in range(args.sample_length):
        context = tokens[-args.context :]
        padded = np.zeros(args.context, np.int32)
        padded[: len(context)] = context
        key, draw_key = jax.random.split(key)
        logits = next_logits(params, padded, len(context) - 1)
        tokens.append(int(jax.random.categorical(draw_key, logits / args.temperature)))
    sample = "".join(chars[t] for t in tokens)
    print(f"sample (temperature {args.temperature}):")
    print("-" * 60)
    print(sample)
    print("-" * 60)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(losses) + 1), losses, alpha=0.35, label="training (per step)")
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax.plot(np.arange(window, len(losses) + 1), smooth, label=f"training ({window}-step mean)")
    ax.plot(val_steps, val_losses, "o-", label="held out")
    ax.set(xlabel="step", ylabel="cross-entropy (nats per character)", title="character-level Transformer")
    ax.legend()
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "char_transformer_loss.png")
    fig.savefig(png, dpi=100)
    print(f"loss curve written to {png}")


if __name__ == "__main__":
    main()
