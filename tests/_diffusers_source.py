"""HuggingFace diffusers' own source for the diffusers port tests: the installed package's files, ported once per jnn
source, cached, never committed.

diffusers is installed by the test extra (pinned, like transformers: its version builds the torch reference models).
As for transformers (``_transformers_source``, whose ``subset_tree`` and ``load`` do the work), the files ported
are the ones importing the names in ``NAMES`` loads, untouched: about 250 of diffusers' ~700, since
``diffusers.models.unets`` imports every UNet, and through ``diffusers.loaders`` every transformer model and
autoencoder. ``ported_tree()`` is their port by ``python -m jnn.port diffusers -o diffusers_jnn`` (about 100 s on
one core), cached for the jnn source that made it.
"""

from __future__ import annotations

import pathlib
import types

import _transformers_source as _hf
from _timm_source import port_cached

# the names the tests take from the package: importing them loads the subset
NAMES = ["UNet2DModel", "UNet2DConditionModel", "AutoencoderKL", "DDPMScheduler", "DDIMScheduler"]
MARKER = "models/modeling_utils.py"


def source_tree() -> pathlib.Path:
    """A directory with the ``diffusers`` subset (cached)."""
    return _hf.subset_tree("diffusers", NAMES, MARKER)


def ported_tree() -> pathlib.Path:
    """``diffusers_jnn``, the port of :func:`source_tree` (see ``_timm_source.port_cached``)."""
    return port_cached(source_tree(), "diffusers", _hf.subset_name("diffusers", NAMES), MARKER)


def load(package: str, parent: pathlib.Path | None = None) -> types.ModuleType:
    """``import package`` (from ``parent`` when given) and the names in ``NAMES`` from it (see
    ``_transformers_source.load``)."""
    return _hf.load(package, parent, NAMES)


def import_ported() -> types.ModuleType:
    """``import diffusers_jnn`` from the ported tree, with its models and schedulers."""
    return load("diffusers_jnn", ported_tree())
