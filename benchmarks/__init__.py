"""jnn's benchmarks against hand-written JAX, Flax NNX, Equinox and PyTorch: ``python -m benchmarks.run``."""
