"""Two processes x two CPU devices, started by jnn's launcher: training, jnn.save and sharded checkpoints.

The oracle for multi-process training is the same training on one device (each process also runs it): data
parallel and fully sharded training over the 4 devices of 2 processes, each process feeding only its half of
every batch, must give the single-device losses, parameters and BatchNorm statistics. ``jnn.save`` called on
every process writes one file equal to the single-device state; misused, it raises within its timeout. The
workers run tests/_multiprocess_worker.py; the launcher's own behaviour is tested with tiny scripts.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

import jnn

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("multiprocess")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "jnn.launch", "-n", "2", "--devices", "2", "--timeout", "400",
               str(ROOT / "tests" / "_multiprocess_worker.py"), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=450, env=env, cwd=ROOT)
    assert result.returncode == 0, f"the 2-process run failed ({result.returncode}):\n{result.stdout[-6000:]}"
    reports = [json.loads((out / f"process{i}.json").read_text()) for i in range(2)]
    return {"dir": out, "reports": reports}


def _assert_close(actual: dict, expected: dict, what: str, ordered: bool = True) -> None:
    assert list(actual) == list(expected) if ordered else sorted(actual) == sorted(expected), what
    for name, value in expected.items():
        np.testing.assert_allclose(np.asarray(actual[name]), np.asarray(value), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{what}: {name}")


@pytest.mark.parametrize("mode", ["dp", "fsdp"])
def test_two_process_training_gives_the_single_device_losses_and_state(run, mode):
    for report in run["reports"]:
        single, sharded = report["single"], report[mode]
        assert len(single["losses"]) == 4 and single["losses"][0] != single["losses"][-1]  # it trained
        np.testing.assert_allclose(sharded["losses"], single["losses"], rtol=1e-5)
        _assert_close(sharded["values"], single["values"], f"process {report['process']} {mode}")
        assert sharded["values"]["bn.num_batches_tracked"] == 4
        assert not any(sharded["fully_addressable"].values())  # every array spans both processes


def test_fsdp_keeps_only_each_process_slices(run):
    shards = run["reports"][0]["fsdp"]["local_shards"]
    assert shards["fc1.weight"] == [[8, 16], [8, 16]]  # (8, 64) split 4 ways along its 64 side
    assert shards["conv.weight"] == [[1, 1, 3, 3], [1, 1, 3, 3]]
    assert shards["fc2.bias"] == [[3], [3]]  # 3 does not divide by 4: replicated
    assert run["reports"][0]["dp"]["local_shards"]["fc1.weight"] == [[8, 64], [8, 64]]


@pytest.mark.parametrize("mode", ["dp", "fsdp"])
def test_jnn_save_on_every_process_writes_one_file_of_the_single_device_state(run, mode):
    single = run["reports"][0]["single"]["values"]
    loaded = jnn.load(run["dir"] / f"{mode}.npz")
    _assert_close(loaded, single, f"{mode}.npz")
    assert loaded["bn.num_batches_tracked"].dtype == np.int32
    for report in run["reports"]:  # each process read the file right after its jnn.save returned
        assert report[mode]["loaded_equals_gathered"], report["process"]


def test_a_checkpoint_loads_into_a_sharded_model_on_two_processes(run):
    for report in run["reports"]:
        assert report["load_into_sharded"]["equal"]
        assert report["load_into_sharded"]["local_shards"]["fc1.weight"] == [[8, 16], [8, 16]]


def test_sharded_checkpoint_restores_onto_another_mesh_and_another_process_count(run):
    fsdp = run["reports"][0]["fsdp"]["values"]
    for report in run["reports"]:
        orbax = report["orbax"]
        assert orbax["mesh"] == {"data": 2, "model": 2}
        _assert_close(orbax["restored"], fsdp, "restored onto 2x2")
        assert orbax["specs"]["fc2.weight"] == [None, "model"] and orbax["specs"]["fc1.bias"] == []
        _assert_close(orbax["module"], fsdp, "restored into a data-parallel module", ordered=False)  # state_dict order
        assert orbax["module_replicated"]
    # written by 2 processes over 4 devices, read here by 1 process on its devices
    pytest.importorskip("orbax.checkpoint")
    restored = jnn.sharding.load_sharded(run["dir"] / "fsdp_ckpt", jnn.sharding.make_mesh())
    _assert_close(restored, run["reports"][0]["single"]["values"], "restored in one process")


def test_misused_save_raises_on_the_waiting_processes_instead_of_hanging(run):
    first, second = (report["errors"] for report in run["reports"])
    for errors, count in ((first, 16), (second, 15)):  # process 1 left out fc1.weight
        assert errors["different_keys"].startswith(f"jnn.save: {count} array(s) ('conv.weight', 'conv.bias'")
        assert "span the devices of several processes (jax.process_count() = 2), so every process must call " \
               "jnn.save with the same keys and shapes" in errors["different_keys"]
        assert "jnn.distributed.TIMEOUT_S" in errors["different_keys"]
    assert "Process 0 waited" in first["alone"] and "jnn.distributed.gather(state)" in first["alone"]
    assert "alone" not in second
    assert "alone.npz" not in run["reports"][0]["files"] and "x.npz" not in run["reports"][0]["files"]


# ---------------------------------------------------------------------------------------------------------
# The launcher, with scripts that do not import JAX


def _launch(code: str, n: int = 2, **kwargs) -> tuple[int, str, float]:
    out = io.StringIO()
    start = time.monotonic()
    code = jnn.distributed.launch([sys.executable, "-c", code], n, out=out, **kwargs)
    return code, out.getvalue(), time.monotonic() - start


def test_launch_gives_each_process_its_index_and_prefixes_its_output():
    code, out, _ = _launch("import os; print(os.environ['JNN_PROCESS_ID'], os.environ['JNN_NUM_PROCESSES'], "
                           "os.environ['JNN_COORDINATOR_ADDRESS'].startswith('127.0.0.1:'), "
                           "os.environ['XLA_FLAGS'], os.environ['JAX_PLATFORMS'])", 3, devices=2)
    assert code == 0
    assert sorted(out.splitlines()) == [
        f"[{i}] {i} 3 True --xla_force_host_platform_device_count=2 cpu" for i in range(3)]


def test_launch_stops_every_process_when_one_fails():
    code, out, seconds = _launch("import os, sys, time\nif os.environ['JNN_PROCESS_ID'] == '1': sys.exit(3)\n"
                                 "time.sleep(120)")
    assert code == 3 and seconds < 60
    assert "jnn.distributed.launch: process 1 exited with code 3; stopping the others" in out


def test_launch_stops_every_process_after_the_timeout():
    code, out, seconds = _launch("import time; print('started', flush=True); time.sleep(120)", timeout=3)
    assert code == 124 and seconds < 60
    assert "jnn.distributed.launch: timed out after 3 s; stopping processes [0, 1]" in out
    assert out.count("started") == 2


def test_launch_rejects_bad_counts():
    with pytest.raises(ValueError, match="launch: num_processes must be at least 1, got 0"):
        jnn.distributed.launch([sys.executable, "-c", "0"], 0)
    with pytest.raises(ValueError, match="launch: devices must be at least 1, got 0"):
        jnn.distributed.launch([sys.executable, "-c", "0"], 1, devices=0)


def test_on_one_process_gather_and_save_are_plain(tmp_path):
    import jax.numpy as jnp

    state = {"w": jnp.arange(3.0), "n": np.int32(2)}
    gathered = jnn.distributed.gather(state)
    assert gathered == state and not jnn.distributed.spans_processes(state)
    assert jnn.distributed.write_once(state, lambda host: sorted(host)) == ["n", "w"]
    with pytest.raises(TypeError, match=r"jnn.distributed.gather: expected a mapping .* got list"):
        jnn.distributed.gather([1])
