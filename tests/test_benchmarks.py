"""The benchmarks run at a tiny size, every framework gives a timed row, and every framework computes the same
function from the same weights. No wall-clock thresholds: the timings themselves are never asserted."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("equinox")
pytest.importorskip("torch")

from benchmarks import cnn, mlp, overhead, resnet, run, transformer  # noqa: E402
from benchmarks.harness import EQX, HAND, NNX, PYTREE, SPLIT, TORCH  # noqa: E402

JAX_ROWS = {HAND, SPLIT, PYTREE, NNX, EQX}


@pytest.mark.parametrize("module", [mlp, cnn, resnet, transformer, overhead], ids=lambda m: m.__name__)
def test_same_function_from_same_weights(module):
    out = module.outputs()
    assert {HAND, SPLIT, PYTREE} <= set(out)
    reference = out[HAND]
    assert np.all(np.isfinite(reference)) and np.abs(reference).max() > 0
    for framework, value in out.items():
        assert value.shape == reference.shape, framework
        np.testing.assert_allclose(value, reference, rtol=1e-4, atol=1e-5, err_msg=framework)


# one worker runs this file: the tiny benchmark run below (~4 min) is a module fixture, which each pytest-xdist
# worker given one of its tests would make again
pytestmark = pytest.mark.xdist_group("benchmarks")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    results = run.main(["--tiny", "--workloads", "1,2,3,4,5,6", "--out", str(out)])
    return results, out


def _rows(results, number):
    return results[run.TITLES[number]]


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_training_workloads_time_every_framework(tiny_run, number):
    results, _ = tiny_run
    rows = _rows(results, number)
    assert rows, f"workload {number} gave no rows"
    for label in {r["workload"] for r in rows}:
        found = {r["framework"]: r for r in rows if r["workload"] == label}
        assert set(found) == JAX_ROWS | {TORCH}, label
        for framework, row in found.items():
            assert "error" not in row, (label, framework, row.get("error"))
            assert math.isfinite(row["median_s"]) and row["median_s"] > 0
            assert row["n"] == run.TINY[1] * run.TINY[2]
        assert found[HAND]["ratio"] == 1.0


def test_overhead_workload_covers_sizes_and_kinds(tiny_run):
    results, _ = tiny_run
    rows = _rows(results, 5)
    seen = {(r["kind"], r["modules"], r["framework"]) for r in rows if "median_s" in r}
    expected = {(k, n, f) for k in ("call", "update") for n in overhead.TINY_SIZES for f in JAX_ROWS}
    assert seen == expected
    slopes = overhead.per_module(rows)
    assert set(slopes) == {(k, f) for k in ("call", "update") for f in JAX_ROWS}


def test_depth_workload_rows(tiny_run):
    results, _ = tiny_run
    rows = _rows(results, 6)
    assert rows, "workload 6 gave no rows"
    from benchmarks import scan_depth

    assert {(r["depth"], r["mode"]) for r in rows} == {(d, m) for d in (2, 4) for m in scan_depth.MODES}
    assert all(r["compile_s"] > 0 and r["step_ms"] > 0 for r in rows)


def test_results_file_and_plots(tiny_run):
    _, out = tiny_run
    text = out.read_text()
    for number in range(1, 7):
        assert f"## {run.TITLES[number]}" in text
    assert "## Machine" in text and "## Targets" in text and "jax " in text
    assert (out.parent / "overhead.png").stat().st_size > 0
    assert (out.parent / "depth.png").stat().st_size > 0


def test_bad_workload_number_is_refused():
    with pytest.raises(SystemExit):
        run.main(["--tiny", "--workloads", "99"])


def test_build_workload_rows_and_table():
    results = run.main(["--tiny", "--workloads", "8"])
    rows = results[run.TITLES[8]]
    from benchmarks import build

    assert {r["impl"] for r in rows} == {"torch", "jnn", "jax"} and {r["workload"] for r in rows} == {build.DISTINCT}
    for r in rows:
        assert r["arrays"] == 16 and math.isfinite(r["first_s"] + r["second_s"])
        assert min(r["first_s"], r["second_s"]) > 0
    assert next(r for r in rows if r["impl"] == "torch")["first_ratio"] == 1.0
    assert len(build.table(rows)) == 2 + len(rows)


def test_linear_ce_workload_rows_and_table():
    results = run.main(["--tiny", "--workloads", "7"])
    rows = results[run.TITLES[7]]
    assert {(r["impl"], r["mode"]) for r in rows} == {(i, m) for i in ("Linear + cross_entropy", "linear_cross_entropy")
                                                      for m in ("forward", "forward+backward")}
    for r in rows:
        assert math.isfinite(r["median_s"]) and r["median_s"] > 0 and r["temp_bytes"] >= 0
    from benchmarks import linear_ce

    assert len(linear_ce.table(rows)) == 2 + len(rows)


def test_gpu_compile_probe_runs_every_flag_set():
    """The script a session with a GPU runs first (issue: workload 4 compiles ~50 s there); here on the CPU."""
    from benchmarks import gpu_compile

    rows = gpu_compile.run(tiny=True, steps=1)
    assert [r["variant"] for r in rows] == list(gpu_compile.VARIANTS)
    for r in rows:
        assert "error" not in r, r
        assert r["first_s"] > 0 and r["step_s"] > 0
