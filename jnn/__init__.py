"""jnn: torch.nn re-made on JAX.

>>> import jax.numpy as jnp
>>> import jnn as nn
>>> import jnn.functional as F
>>> net = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10), nn.ReLU())
>>> net(jnp.ones(20)).shape
(10,)
"""

from jnn import (
           amp,
           attention,
           common_types,
           distributed,
           functional,
           init,
           ops,
           optim,
           parameter,
           random,
           sharding,
           transforms,
           utils,
)
from jnn.checking import checked
from jnn.modules import *  # noqa: F403
from jnn.modules import __all__ as _modules_all
from jnn.parameter import UninitializedBuffer, UninitializedParameter
from jnn.random import manual_seed
from jnn.serialization import load, save
from jnn.stateless import Apply, merge, split
from jnn.summary import capture_outputs, feature_extractor, summary
from jnn.transforms import scan_layers
from jnn.utils.checkpoint import checkpoint

__version__ = "0.1.0"

__all__ = [*_modules_all, "amp", "attention", "distributed", "functional", "init", "ops", "optim", "random", "sharding",
           "manual_seed", "save", "load", "split", "merge", "Apply", "parameter", "common_types",
           "UninitializedParameter", "UninitializedBuffer", "transforms", "utils", "scan_layers", "checkpoint",
           "summary", "capture_outputs", "feature_extractor", "checked"]
