"""The README's Python blocks run as written (executed in order, in one namespace)."""

from __future__ import annotations

import pathlib
import re

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["predict"].shape == (10,)
    assert (tmp_path / "model.npz").exists()
    np.testing.assert_array_equal(np.asarray(namespace["net2"](namespace["x"])), np.asarray(namespace["y"]))
