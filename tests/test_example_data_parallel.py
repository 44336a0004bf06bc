"""examples/data_parallel.py runs end to end on 8 forced CPU devices (a tiny budget) and reports sharded runs that
reproduce the single-device losses, with the parameters really split."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_data_parallel_example_matches_single_device_and_shards(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the script forces 8 host devices itself
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "data_parallel.py"), "--steps", "3", "--epochs", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert out.startswith("8 CPU device(s), 1 process(es)")
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        r"^(single device|data parallel|fully sharded)\s+(\S+(?: x \S+)?)\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)\s+(\S+)",
        out, re.M)}
    assert set(rows) == {"single device", "data parallel", "fully sharded"}, out
    assert rows["data parallel"][0] == "data=8" and rows["fully sharded"][0] == "data=2 x model=4"
    reference_loss = float(rows["single device"][2])
    for _mesh, steps, loss, accuracy, gap in rows.values():
        assert int(steps) == 3
        assert abs(float(loss) - reference_loss) < 1e-4
        assert float(gap) < 1e-4  # every step's loss, not only the last
        # argmax near-ties of a barely trained model may flip for a few of the 360 test digits
        assert abs(float(accuracy) - float(rows["single device"][3])) < 0.02
    assert "sharded runs match the single-device losses to 1e-4: yes" in out
    assert "fully sharded: classifier.1.weight (128, 1024) -> P(None, 'model'), 8 shards of (128, 256)" in out
    assert "fully sharded: features.3.weight (64, 32, 3, 3) -> P('model',), 8 shards of (16, 32, 3, 3)" in out
    assert "data parallel: classifier.1.weight (128, 1024) -> P(), 8 shards of (128, 1024)" in out
