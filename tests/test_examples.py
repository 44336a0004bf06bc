"""The examples run end to end (on a tiny budget: the speed and accuracy targets are the examples' own)."""

from __future__ import annotations

import os
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


def run_example(name: str, *args: str, cwd: pathlib.Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)


def test_from_pytorch_matches_torch_both_ways(tmp_path):
    result = run_example("from_pytorch.py", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    diffs = dict(re.findall(r"^  (\S.*?)\s+([0-9.]+e[-+][0-9]+)$", result.stdout, re.M))
    assert set(diffs) == {"eval-mode output", "train-mode output", "BatchNorm running statistics after it",
                          "gradients (train mode)", "eval-mode output, jnn -> PyTorch via safetensors"}
    assert all(float(d) < 1e-5 for d in diffs.values()), diffs
    largest = float(re.search(r"^largest difference: (\S+)$", result.stdout, re.M).group(1))
    assert largest == max(float(d) for d in diffs.values())
    assert "class SmallConvNet(nn.Module):" in result.stdout  # the shared model source is shown
    assert (tmp_path / "small_convnet.pt").exists() and (tmp_path / "small_convnet.safetensors").exists()


def test_from_pytorch_without_torch_says_how_to_install_it(tmp_path):
    shim = tmp_path / "shim" / "torch"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(shim.parent), os.environ.get("PYTHONPATH")]))}
    result = run_example("from_pytorch.py", "--out", str(tmp_path), cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "needs PyTorch, which is not installed" in result.stderr
    assert "pip install torch" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "small_convnet.pt").exists()


def test_char_transformer_learns_and_samples(tmp_path):
    result = run_example(
        "char_transformer.py", "--steps", "60", "--batch-size", "16", "--context", "32", "--d-model", "32",
        "--nhead", "2", "--num-layers", "1", "--sample-length", "40", "--prompt", "Thy", "--out", str(tmp_path),
        cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    first, last = map(float, re.search(r"^training loss: ([0-9.]+) -> ([0-9.]+) ", result.stdout, re.M).groups())
    assert first > 3.0  # about ln(vocabulary size) before training
    assert last < first - 0.3
    sample = re.search(r"^sample \(temperature 0.8\):\n-+\n(.*)\n-+$", result.stdout, re.M | re.S).group(1)
    assert sample.startswith("Thy") and len(sample) == len("Thy") + 40
    vocabulary = set((ROOT / "examples" / "data" / "sonnets.txt").read_text(encoding="utf-8"))
    assert set(sample) <= vocabulary
    assert (tmp_path / "char_transformer_loss.png").stat().st_size > 0
