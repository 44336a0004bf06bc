import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/helpers.py

# PyTorch (the oracle) on one thread per test process: the suite runs two processes on two cores, and torch's
# OpenMP pool spinning against XLA's threads and the other process made small torch calls 100x slower
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tv_torch():
    """torchvision's own files (the subset of ``_torchvision_source``), imported with torch."""
    import _torchvision_source as tvsource

    return tvsource.import_package(tvsource.source_tree(), "torchvision")


@pytest.fixture(scope="session")
def tv_jnn():
    """``python -m jnn.port torchvision -o torchvision_jnn`` (cached), imported with jnn."""
    import _torchvision_source as tvsource

    return tvsource.import_package(tvsource.ported_tree(), "torchvision_jnn")
