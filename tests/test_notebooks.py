"""The notebooks run top to bottom (in a temporary copy) and show what they claim; the committed copies keep
their outputs."""

from __future__ import annotations

import pathlib
import re
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_building_models.ipynb", "02_training_with_optax.ipynb"]


def execute(name: str, folder: pathlib.Path, monkeypatch) -> nbformat.NotebookNode:
    """Run a copy of the notebook in ``folder`` (a cell error fails the test); return it with its outputs."""
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    path = folder / name
    shutil.copy(NOTEBOOKS / name, path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    return notebook


def text_of(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images_in(notebook) -> int:
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells for out in cell.get("outputs", []))


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_was_run_top_to_bottom_with_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))
    assert not [out for cell in notebook.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert text_of(notebook).strip()


def test_building_models_tour(tmp_path, monkeypatch):
    text = text_of(execute(NAMES[0], tmp_path, monkeypatch))
    assert ("Sequential(\n  (0): Linear(in_features=20, out_features=256, bias=True)\n  (1): ReLU()\n"
            "  (2): Linear(in_features=256, out_features=10, bias=True)\n  (3): ReLU()\n)") in text
    assert "  (linear_in): Linear(in_features=5, out_features=256, bias=True)\n  (relu_in): ReLU()" in text
    assert "(0-4): 5 x Linear(in_features=64, out_features=64, bias=True)" in text  # ModuleList repr
    assert "(1, 20, 24, 24)" in text  # MyModel's output shape
    assert "after train(): True True" in text and "after eval():  False False" in text
    assert "<All keys matched successfully>" in text and "same weights: True" in text
    assert "size mismatch for weight: copying a param with shape torch.Size([5, 3])" in text
    assert "parameters: 25025 (Sequential) and 25025 (ModuleList)" in text
    assert "F.linear equals the layer: True" in text
    assert (tmp_path / "model.npz").exists()


def test_training_with_optax(tmp_path, monkeypatch):
    notebook = execute(NAMES[1], tmp_path, monkeypatch)
    text = text_of(notebook)
    losses = [float(v) for v in re.findall(r"loss ([0-9.]+)  test accuracy", text)]
    assert len(losses) == 5 and losses[-1] < losses[0] / 2
    accuracy = float(re.search(r"^test accuracy: ([0-9.]+)$", text, re.M).group(1))
    assert accuracy > 0.9  # the committed run reaches about 0.98
    assert f"reloaded model: test accuracy {accuracy:.3f}, same predictions: True" in text
    assert (tmp_path / "digits_mlp.npz").exists()
    assert images_in(notebook) == 2  # the digits and the loss/accuracy curves
