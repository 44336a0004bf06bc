"""jnn: torch.nn re-made on JAX."""

from jnn import random
from jnn.random import manual_seed

__version__ = "0.1.0"
