"""jnn.utils.skip_init: torch's structure without initialization, and jnn's random stream untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jnn


@pytest.mark.parametrize("build", [
    (lambda nn, skip: skip(nn.Linear, 5, 3)),
    (lambda nn, skip: skip(nn.Conv2d, 3, 4, 3, bias=False)),
    (lambda nn, skip: skip(nn.BatchNorm2d, 6)),
    (lambda nn, skip: skip(nn.Embedding, 10, 4, padding_idx=0)),
])
def test_same_structure_as_torch(build):
    ours = build(jnn, jnn.utils.skip_init)
    theirs = build(torch.nn, torch.nn.utils.skip_init)
    assert type(ours).__name__ == type(theirs).__name__ and repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert tuple(a.shape) == tuple(b.shape), k
        assert np.issubdtype(a.dtype, np.floating) == b.dtype.is_floating_point, k  # int64 is int32 without x64
        assert not np.any(np.asarray(a)), k  # zeros: JAX has no uninitialized memory


def test_does_not_draw_from_the_random_stream():
    jnn.manual_seed(0)
    expected = jnn.Linear(4, 4).weight
    jnn.manual_seed(0)
    jnn.utils.skip_init(jnn.Linear, 100, 100)
    assert np.array_equal(jnn.Linear(4, 4).weight, expected)


def test_errors():
    with pytest.raises(RuntimeError, match="Expected a Module"):
        jnn.utils.skip_init(torch.nn.Linear, 2, 2)

    class NoDevice(jnn.Module):
        def __init__(self):
            super().__init__()

    with pytest.raises(RuntimeError, match="must support a 'device' arg"):
        jnn.utils.skip_init(NoDevice)
