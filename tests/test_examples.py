"""The examples run end to end (on a tiny budget: the speed and accuracy targets are the examples' own)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_train_digits_trains_saves_and_reloads(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_digits.py"), "--epochs", "3", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trained = float(re.search(r"^test accuracy: ([0-9.]+)$", result.stdout, re.M).group(1))
    reloaded = float(re.search(r"reloaded from .*: test accuracy: ([0-9.]+)$", result.stdout, re.M).group(1))
    assert trained == reloaded
    assert trained > 0.8  # three epochs already learn the digits; the full run reaches > 0.97
    assert (tmp_path / "digits_cnn.npz").exists() and (tmp_path / "digits_curves.png").exists()
