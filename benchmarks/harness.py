"""Timing harness shared by every workload: cases, interleaved rounds, medians, ratios, machine description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

# Row labels, in the order tables print them. Ratios are to HAND.
HAND = "JAX (hand-written)"
SPLIT = "jnn split"
PYTREE = "jnn module pytree"
NNX = "Flax NNX"
EQX = "Equinox"
TORCH = "PyTorch eager"
TORCH_COMPILE = "torch.compile"
ORDER = (HAND, SPLIT, PYTREE, NNX, EQX, TORCH, TORCH_COMPILE)


@dataclass
class Case:
    """One framework's version of a workload: ``step()`` runs one timed step and blocks on its result."""

    framework: str
    step: Callable[[], Any]
    note: str = ""


@dataclass
class Settings:
    """How long to time: warm-up calls (first one = compile), rounds, steps per round per case."""

    warmup: int = 3
    rounds: int = 5
    steps: int = 20
    gpu: bool = False
    torch_compile: bool = True
    extra: dict = field(default_factory=dict)


def blocking(value: Any) -> Any:
    """Wait for every JAX array in ``value`` (and for CUDA, if torch is on a GPU)."""
    return jax.block_until_ready(value)


def build_cases(builders: dict[str, Callable[[], Case]]) -> tuple[list[Case], list[dict]]:
    """Call each builder; a builder that fails becomes an error row instead of stopping the run."""
    cases, failed = [], []
    for name, build in builders.items():
        try:
            cases.append(build())
        except Exception as error:  # a peer that does not run here: record why
            failed.append({"framework": name, "error": _one_line(error)})
            if os.environ.get("JNN_BENCH_DEBUG"):
                traceback.print_exc()
    return cases, failed


def measure(cases: list[Case], settings: Settings, label: str = "") -> list[dict]:
    """Warm each case up, then time ``settings.rounds`` round-robin rounds of ``settings.steps`` steps per case.

    The case order rotates every round, so drift of the machine hits all frameworks alike. Each step is timed
    on its own (it blocks on its result); the median is over all steps of all rounds.
    """
    samples: dict[str, list[float]] = {c.framework: [] for c in cases}
    first_call: dict[str, float] = {}
    errors: dict[str, str] = {}
    live = list(cases)
    for case in cases:
        try:
            t0 = time.perf_counter()
            case.step()
            first_call[case.framework] = time.perf_counter() - t0
            for _ in range(max(settings.warmup - 1, 0)):
                case.step()
        except Exception as error:
            errors[case.framework] = _one_line(error)
            live.remove(case)
            if os.environ.get("JNN_BENCH_DEBUG"):
                traceback.print_exc()
    for r in range(settings.rounds):
        shift = r % max(len(live), 1)
        for case in live[shift:] + live[:shift]:
            times = samples[case.framework]
            for _ in range(settings.steps):
                t0 = time.perf_counter()
                case.step()
                times.append(time.perf_counter() - t0)
    rows = []
    for case in cases:
        times = samples[case.framework]
        row = {"workload": label, "framework": case.framework, "note": case.note}
        if case.framework in errors:
            row["error"] = errors[case.framework]
        else:
            row.update(median_s=statistics.median(times), n=len(times), first_call_s=first_call[case.framework],
                       iqr_s=float(np.subtract(*np.percentile(times, [75, 25]))))
        rows.append(row)
    return with_ratios(rows)


def with_ratios(rows: list[dict]) -> list[dict]:
    """Add ``ratio`` (median / hand-written JAX's median) to every timed row."""
    base = next((r["median_s"] for r in rows if r["framework"] == HAND and "median_s" in r), None)
    for row in rows:
        if base and "median_s" in row:
            row["ratio"] = row["median_s"] / base
    return rows


def _one_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n{title}", flush=True)
    for row in rows:
        if "median_s" in row:
            ratio = f"{row['ratio']:6.2f}x" if "ratio" in row else "      "
            print(f"  {row['framework']:22s} {fmt_time(row['median_s']):>11s} {ratio}  "
                  f"(first call {fmt_time(row['first_call_s'])}, n={row['n']}) {row.get('note', '')}", flush=True)
        else:
            print(f"  {row['framework']:22s} not run: {row.get('error', '')}", flush=True)


def machine() -> dict[str, str]:
    """The machine and library versions, for RESULTS.md."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": str(os.cpu_count())}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "Hypervisor vendor", "L2 cache", "L3 cache"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    info["jax devices"] = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    versions = {}
    for module in ("jax", "jaxlib", "optax", "flax", "equinox", "torch", "numpy", "jnn"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:
            versions[module] = "not installed"
    info["versions"] = ", ".join(f"{k} {v}" for k, v in versions.items())
    return info
