"""Several processes, one program: start them, and bring arrays that span them back to one host.

JAX runs one process per host (multi-controller): every process runs the same script, and a ``jax.Array`` over
a mesh of every process's devices is *global* — each process holds only its own devices' shards.

- :func:`initialize` — ``jax.distributed.initialize`` that also reads what :func:`launch` sets, so the same
  script runs under ``python -m jnn.distributed`` on one machine and under SLURM/Open MPI/Cloud TPU on a cluster.
- :func:`launch` (``python -m jnn.launch -n 2 --devices 2 train.py ...``) — a small ``torchrun`` for one
  machine: starts the processes, prefixes their output with their index, stops all of them when one fails or
  time runs out.
- :func:`gather` — a state dict of possibly-sharded, possibly multi-process arrays as numpy arrays on every
  process; :func:`write_once` — gather, let process 0 write, and make every process wait for the file (what
  :func:`jnn.save` does when its arrays span processes).

Every process must make the same collective calls in the same order. A process that calls :func:`gather`
(or ``jnn.save``) alone would wait forever in a collective; jnn first meets the other processes at a barrier and
raises an error naming the arrays after :data:`TIMEOUT_S` seconds instead.

With one process everything is a no-op:

>>> import numpy as np, jnn
>>> jnn.distributed.gather({"w": np.ones(2, np.float32)})["w"]
array([1., 1.], dtype=float32)
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import jax
import numpy as np

__all__ = ["TIMEOUT_S", "initialize", "launch", "spans_processes", "gather", "write_once"]

#: Seconds a process waits for the others at jnn's barriers (and for process 0 to finish writing) before it
#: raises. Set it (``jnn.distributed.TIMEOUT_S = 60``) on every process.
TIMEOUT_S: float = 300.0

# Environment the launcher gives each process (read by initialize()).
ENV_ADDRESS, ENV_COUNT, ENV_INDEX = "JNN_COORDINATOR_ADDRESS", "JNN_NUM_PROCESSES", "JNN_PROCESS_ID"

_calls = itertools.count()  # numbers the collective calls of this process; every process counts the same
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------------
# Starting processes


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, **kwargs: Any) -> None:
    """``jax.distributed.initialize``, call it first thing, before any other JAX call, on every process.

    Arguments not given come from the environment :func:`launch` sets (``JNN_COORDINATOR_ADDRESS``,
    ``JNN_NUM_PROCESSES``, ``JNN_PROCESS_ID``), else from JAX's cluster detection (SLURM, Open MPI, Cloud TPU,
    Kubernetes). On CPU, collectives between processes go over gloo (JAX's ``jax_cpu_collectives_implementation``
    is set to ``"gloo"`` when it is off). ``kwargs`` go to ``jax.distributed.initialize``.
    """
    env = os.environ
    if coordinator_address is None:
        coordinator_address = env.get(ENV_ADDRESS)
    if num_processes is None and env.get(ENV_COUNT):
        num_processes = int(env[ENV_COUNT])
    if process_id is None and env.get(ENV_INDEX):
        process_id = int(env[ENV_INDEX])
    if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id, **kwargs)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _relay(stream: Any, prefix: str, out: Any) -> None:
    for line in iter(stream.readline, ""):
        out.write(prefix + line)
        out.flush()


def launch(command: Sequence[str], num_processes: int, *, devices: int | None = None, port: int | None = None,
           timeout: float | None = None, env: Mapping[str, str] | None = None, out: Any = None) -> int:
    """Run ``command`` (e.g. ``[sys.executable, "train.py"]``) as ``num_processes`` processes on this machine.

    Each process gets the environment :func:`initialize` reads (a coordinator on ``127.0.0.1:port``, a free port
    unless given); ``devices`` forces that many CPU devices per process (``XLA_FLAGS``'s
    ``--xla_force_host_platform_device_count``, and ``JAX_PLATFORMS=cpu``). Their stdout and stderr lines go
    to ``out`` (default ``sys.stdout``) prefixed ``[i] ``. When one process fails, or after ``timeout``
    seconds, the others are stopped. Returns 0, the first failing process's exit code, or 124 on timeout.
    """
    if num_processes < 1:
        raise ValueError(f"jnn.distributed.launch: num_processes must be at least 1, got {num_processes}")
    if devices is not None and devices < 1:
        raise ValueError(f"jnn.distributed.launch: devices must be at least 1, got {devices}")
    out = sys.stdout if out is None else out
    base = dict(os.environ if env is None else env)
    base[ENV_ADDRESS] = f"127.0.0.1:{port or _free_port()}"
    base[ENV_COUNT] = str(num_processes)
    if devices is not None:
        flags = [f for f in base.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device")]
        base["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={devices}"])
        base["JAX_PLATFORMS"] = "cpu"
    procs, relays = [], []
    try:
        for index in range(num_processes):
            proc = subprocess.Popen(list(command), env={**base, ENV_INDEX: str(index)}, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, bufsize=1)
            procs.append(proc)
            relays.append(threading.Thread(target=_relay, args=(proc.stdout, f"[{index}] ", out), daemon=True))
            relays[-1].start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                index, code = failed[0]
                out.write(f"jnn.distributed.launch: process {index} exited with code {code}; stopping the others\n")
                return code
            if all(c == 0 for c in codes):
                return 0
            if deadline is not None and time.monotonic() > deadline:
                running = [i for i, c in enumerate(codes) if c is None]
                out.write(f"jnn.distributed.launch: timed out after {timeout:g} s; stopping processes {running}\n")
                return 124
            time.sleep(0.05)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for relay in relays:
            relay.join(5)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jnn.launch -n N [--devices K] [--timeout S] script.py [args...]`` (or ``-m module``)."""
    parser = argparse.ArgumentParser(prog="python -m jnn.launch", description=(
        "Run a script as several JAX processes on this machine (call jnn.distributed.initialize() in it)."))
    parser.add_argument("-n", "--num-processes", type=int, required=True)
    parser.add_argument("--devices", type=int, default=None, help="force this many CPU devices per process")
    parser.add_argument("--port", type=int, default=None, help="coordinator port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=None, help="stop every process after this many seconds")
    parser.add_argument("-m", dest="module", action="store_true", help="the target is a module, as python -m")
    parser.add_argument("target")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = [sys.executable, *(["-m"] if args.module else []), args.target, *args.args]
    return launch(command, args.num_processes, devices=args.devices, port=args.port, timeout=args.timeout)


# ---------------------------------------------------------------------------------------------------------
# Gathering


def spans_processes(state: Any) -> bool:
    """Whether some value of the mapping ``state`` is a ``jax.Array`` with shards on other processes' devices."""
    return isinstance(state, Mapping) and any(
        isinstance(v, jax.Array) and not v.is_fully_addressable for v in state.values())


def _client() -> Any:
    from jax._src import distributed  # the coordination service: barriers and a key-value store with timeouts

    client = distributed.global_state.client
    if client is None:
        raise RuntimeError("jnn.distributed: arrays span several processes but jax.distributed is not initialized")
    return client


def _meet(call: int, spanning: dict[str, Any], who: str) -> None:
    """A barrier of every process, named by the call number and the spanning arrays' names and shapes."""
    digest = hashlib.sha1(repr([(k, v.shape, str(v.dtype)) for k, v in spanning.items()]).encode()).hexdigest()[:12]
    start = time.monotonic()
    try:
        _client().wait_at_barrier(f"jnn/{call}/{digest}", int(TIMEOUT_S * 1000))
    except Exception as error:
        if "DEADLINE_EXCEEDED" not in str(error) and "timed out" not in str(error).lower():
            raise
        names = ", ".join(repr(k) for k in list(spanning)[:5]) + (", ..." if len(spanning) > 5 else "")
        raise RuntimeError(
            f"{who}: {len(spanning)} array(s) ({names}) span the devices of several processes "
            f"(jax.process_count() = {jax.process_count()}), so every process must call {who} with the same keys and "
            f"shapes, at the same point of the program: it gathers them from every process (and process 0 writes). "
            f"Process {jax.process_index()} waited {time.monotonic() - start:.0f} s (jnn.distributed.TIMEOUT_S) and "
            "not every process arrived with the same arrays. To save from one process only, gather first on every "
            "process with jnn.distributed.gather(state)."
        ) from None


def gather(state: Mapping[str, Any], *, who: str = "jnn.distributed.gather") -> dict[str, Any]:
    """``state`` with every array that spans several processes as a numpy array holding its full value.

    Call it on every process, with the same keys: it is a collective (``process_allgather`` for sharded arrays;
    a replicated array is read from a local device without communication). Other values are returned as they
    are. Without arrays spanning processes it returns ``dict(state)`` at once and communicates nothing.

    >>> import jax.numpy as jnp, jnn
    >>> jnn.distributed.gather({"b": jnp.zeros(3)})["b"].shape
    (3,)
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"{who}: expected a mapping of names to arrays (e.g. a state_dict()), "
                        f"got {type(state).__name__}")
    spanning = {k: v for k, v in state.items() if isinstance(v, jax.Array) and not v.is_fully_addressable}
    if not spanning:
        return dict(state)
    _meet(next(_calls), spanning, who)
    from jax.experimental import multihost_utils

    out = dict(state)
    for name, value in spanning.items():
        if value.is_fully_replicated:
            out[name] = np.asarray(value.addressable_data(0))
        else:
            out[name] = np.asarray(multihost_utils.process_allgather(value, tiled=True))
    return out


def write_once(state: Mapping[str, Any], write: Callable[[dict[str, Any]], T], *, who: str = "jnn.save") -> T | None:
    """Gather ``state`` (:func:`gather`), call ``write(gathered)`` on process 0, and wait on every process until
    it is done; an error in process 0's ``write`` is raised on every process. Returns ``write``'s result on
    process 0, ``None`` on the others. :func:`jnn.save` calls it when its arrays span processes.
    """
    host = gather(state, who=who)
    if jax.process_count() == 1:
        return write(host)
    key, client = f"jnn/{next(_calls)}/written", _client()
    if jax.process_index() == 0:
        try:
            result = write(host)
        except BaseException as error:
            client.key_value_set(key, f"{type(error).__name__}: {error}")
            raise
        client.key_value_set(key, "")
        return result
    try:
        failure = client.blocking_key_value_get(key, int(TIMEOUT_S * 1000))
    except Exception as error:
        raise RuntimeError(f"{who}: process 0 did not finish writing within {TIMEOUT_S:g} s "
                           f"(jnn.distributed.TIMEOUT_S): {error}") from None
    if failure:
        raise RuntimeError(f"{who}: process 0, which writes for every process, failed: {failure}")
    return None
