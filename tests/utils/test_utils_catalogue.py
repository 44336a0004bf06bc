"""The docs catalogue lists every public name of the torch.nn.utils parts, and they are torch's names."""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest
import torch

CATALOGUE = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "catalogue.md").read_text()
SECTION = CATALOGUE.split("## `nn.utils` is `torch.nn.utils`")[1].split("\n## ")[0]
MODULES = ["parametrize", "parametrizations", "weight_norm", "spectral_norm", "prune", "fusion", "init", "stateless"]


@pytest.mark.parametrize("name", MODULES)
def test_catalogue_lists_every_public_name(name):
    module = importlib.import_module(f"jnn.utils.{name}")
    listed = set(re.findall(r"`([A-Za-z_][\w.]*)`", SECTION))
    classes = {n for n in module.__all__ if n[0].isupper() and n not in ("ParametrizationList",)}
    missing = [n for n in module.__all__ if n not in listed and n not in classes]
    assert missing == [], f"docs/catalogue.md's nn.utils section does not list {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_names_are_torchs(name):
    ours = importlib.import_module(f"jnn.utils.{name}")
    theirs = importlib.import_module(f"torch.nn.utils.{name}")
    extra = [n for n in ours.__all__ if not hasattr(theirs, n)]
    assert extra == [], f"jnn.utils.{name} exports names torch.nn.utils.{name} does not have: {extra}"
    missing = [n for n in getattr(theirs, "__all__", []) if n not in ours.__all__
               and n not in ("SpectralNormLoadStateDictPreHook", "SpectralNormStateDictHook")]
    assert missing == [], f"jnn.utils.{name} lacks torch's {missing}"


def test_top_level_names_match_torch():
    import jnn
    jnn_only = {"checkpoint", "clip_by_total_norm"}  # torch.utils.checkpoint's mirror; the optax form of clipping
    for name in jnn.utils.__all__:
        assert hasattr(torch.nn.utils, name) or name in jnn_only, name
