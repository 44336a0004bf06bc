"""What every format of :mod:`jnn.serialization` shares: the error type, checking what is saved, atomic writes
that keep the target's permissions, defensive reads and the memory bound.

Reads never memory-map the file: a file truncated by another process while it is read would kill this one with
SIGBUS. :class:`Source` reads with ``readinto`` into arrays it allocates, and a short read (the file shrank)
raises :class:`LoadError`.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import reprlib
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any, Union

import ml_dtypes
import numpy as np

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

# The documented memory bound: the arrays a file yields take at most 8x its size plus this many bytes.
SLACK = 1 << 26
# ml_dtypes' extension dtypes (numpy cannot store them portably), by name.
EXT_DTYPES = {n: np.dtype(getattr(ml_dtypes, n)) for n in (
    "bfloat16", "float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz", "float8_e4m3fn", "float8_e4m3fnuz",
    "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn",
    "int1", "int2", "int4", "uint1", "uint2", "uint4") if hasattr(ml_dtypes, n)}
EXT_NAMES = {dt: n for n, dt in EXT_DTYPES.items()}


class LoadError(ValueError):
    """A file given to :func:`jnn.load` holds content jnn refuses: unknown format, corrupt, or unsafe (pickle)."""


def memory_bound(file_size: int) -> int:
    """The most bytes of arrays a file of ``file_size`` bytes may yield."""
    return 8 * file_size + SLACK


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60


def brief(value: Any) -> str:
    """A short repr of something read from an untrusted file, for error messages; never raises."""
    try:
        return _REPR.repr(value)
    except Exception:  # e.g. an int past Python's digit limit
        return f"<{type(value).__name__}>"


# --- what is saved ------------------------------------------------------------------------------------------


def check_state_dict(obj: Any) -> list[tuple[str, np.ndarray]]:
    """``obj``'s items as ``(str key, numpy array)`` pairs, or a clear error for anything jnn does not save."""
    if not isinstance(obj, Mapping):
        raise TypeError(f"jnn.save expects a mapping of str keys to arrays (e.g. a state_dict()), "
                        f"got {type(obj).__name__}")
    items = []
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"jnn.save: keys must be str, got {type(key).__name__} key {key!r}")
        if "\x00" in key or not _encodable(key):
            raise ValueError(f"jnn.save: key {key!r} cannot be stored as a zip member name")
        try:
            arr = np.asarray(value)
        except Exception as e:
            raise TypeError(f"jnn.save: value of key {key!r} ({type(value).__name__}) is not an array") from e
        if arr.dtype not in EXT_NAMES and arr.dtype.kind not in "biufc":
            raise TypeError(f"jnn.save: key {key!r} has dtype {arr.dtype}; only bool, integer, float and "
                            f"complex arrays are saved (jnn never pickles)")
        items.append((key, arr))
    return items


def _encodable(key: str) -> bool:
    try:
        key.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def suffix_format(path: str) -> str:
    """The format a path's suffix selects: ``.safetensors``, ``.pt``/``.pth`` (PyTorch), else npz."""
    name = path.lower()
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith((".pt", ".pth")):
        return "torch"
    return "npz"


# --- byte order ---------------------------------------------------------------------------------------------


def _swap_unit(dtype: np.dtype) -> int:
    return dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize


def little_endian_bytes(arr: np.ndarray) -> np.ndarray:
    """``arr``'s elements in C order as little-endian bytes (a 1-d uint8 array, a view where possible)."""
    arr = np.ascontiguousarray(arr).reshape(-1)
    unit, order = _swap_unit(arr.dtype), arr.dtype.byteorder
    if unit > 1 and (order == ">" or (order == "=" and sys.byteorder == "big")):
        arr = arr.view(f">u{unit}").astype(f"<u{unit}")
    return arr.view(np.uint8)


def from_bytes(raw: np.ndarray, dtype: np.dtype, little: bool = True) -> np.ndarray:
    """A 1-d uint8 array holding ``dtype`` elements in the given byte order, as native ``dtype`` elements.

    A view of ``raw`` when no byte swap is needed, else swapped (in place when ``raw`` is writeable).
    ``len(raw)`` must be a multiple of the item size.
    """
    unit = _swap_unit(dtype)
    if unit <= 1 or little == (sys.byteorder == "little"):
        return raw.view(dtype)
    words = raw.view(f"u{unit}")
    return (words.byteswap(inplace=True) if raw.flags.writeable else words.byteswap()).view(dtype)


def fits_numpy(shape: tuple[int, ...] | list[int], dtype: np.dtype) -> bool:
    """numpy refuses shapes whose nonzero sides multiply past its index range, even for empty arrays."""
    return math.prod(n for n in shape if n) * dtype.itemsize < 1 << 63


# --- reading ------------------------------------------------------------------------------------------------


class Source:
    """A seekable binary file from byte ``start`` on, read defensively: never memory-mapped, every read checked.

    ``size`` is the length seen when opened; a read that comes back short (the file shrank meanwhile) raises
    :class:`LoadError` instead of returning garbage -- or, as a memory map would, killing the process.
    """

    def __init__(self, fh: IO[bytes], start: int = 0) -> None:
        self.fh, self.start = fh, start
        self.size = fh.seek(0, os.SEEK_END) - start
        fh.seek(start)

    def array(self, offset: int, n: int) -> np.ndarray:
        """``n`` bytes from ``offset`` as a new writeable uint8 array (the one copy of them this process makes)."""
        if offset < 0 or n < 0 or offset + n > self.size:
            raise LoadError(f"jnn.load: {n} bytes at byte {offset} lie past the end of the {self.size}-byte file "
                            f"(truncated?)")
        out = np.empty(n, np.uint8)
        self.fh.seek(self.start + offset)
        view, done = memoryview(out), 0
        readinto = getattr(self.fh, "readinto", None)
        while done < n:
            if readinto is not None:
                got = readinto(view[done:])
            else:
                chunk = self.fh.read(n - done)
                got = len(chunk)
                view[done:done + got] = chunk
            if not got:
                raise LoadError(f"jnn.load: the file ended at byte {offset + done} while {n} bytes were read from "
                                f"byte {offset}; it was {self.size} bytes long when opened (changed or truncated "
                                f"while being read?)")
            done += got
        return out

    def bytes(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes from ``offset`` (fewer at the end of the file)."""
        n = max(0, min(n, self.size - offset))
        return self.array(offset, n).tobytes()


# --- writing ------------------------------------------------------------------------------------------------

_TMP = re.compile(r"^\.(?P<base>.+)\.(?P<host>[^.]*)-(?P<pid>\d+)-[0-9a-f]{12}\.jnn-tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40]


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file through ``write(fh)`` atomically: to a temporary file beside the target, flushed and fsynced,
    then renamed over it. A crash, a signal or an exception never leaves a half-written file in its place.

    As ``open(path, "wb")`` would (and so ``torch.save``): a target the caller cannot write raises
    ``PermissionError``; an existing target keeps its permission bits (and, where allowed, its owner); a
    symbolic link is written through. The temporary file, ``.<name>.<host>-<pid>-<hex>.jnn-tmp``, is removed on
    any exception and on SIGTERM/SIGHUP (when their handlers are the default, in the main thread); one left by a
    killed process (SIGKILL) of this host is removed by the next save to the same target.
    """
    target = os.path.realpath(os.fsdecode(os.fspath(path)))
    folder, base = os.path.split(target)
    old = None
    with contextlib.suppress(FileNotFoundError):
        old = os.stat(target)
    if old is not None and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, f"jnn.save: {os.strerror(errno.EACCES)} (the file is read-only)",
                              os.fsdecode(os.fspath(path)))
    _remove_stale_temporaries(folder, base)
    tmp = os.path.join(folder, f".{base}.{_host()}-{os.getpid()}-{secrets.token_hex(6)}.jnn-tmp")
    try:
        # O_EXCL never clobbers another file; mode 0o666 lets the umask apply as for a plain open(path, "wb").
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        raise type(e)(e.errno, f"jnn.save: {e.strerror} (writing {target!r} needs a temporary file in its folder "
                               f"{folder!r})", os.fsdecode(os.fspath(path))) from None
    try:
        with _removed_on_signal(tmp):
            with open(fd, "wb") as fh:
                if old is not None:
                    _keep_metadata(fh.fileno(), old)
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX; not possible on Windows)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _keep_metadata(fd: int, old: os.stat_result) -> None:
    with contextlib.suppress(OSError, AttributeError):
        if (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
            os.fchown(fd, old.st_uid, old.st_gid)  # only root may; others keep their own ownership, as cp does
    with contextlib.suppress(OSError, AttributeError):
        os.fchmod(fd, old.st_mode & 0o7777)


def _remove_stale_temporaries(folder: str, base: str) -> None:
    """Remove this target's temporaries left by processes of this host that no longer run (killed mid-save)."""
    prefix, host = f".{base}.", _host()
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if not name.startswith(prefix):
                continue
            match = _TMP.match(name)
            if match is None or match["base"] != base or match["host"] != host or _alive(int(match["pid"])):
                continue
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be saving
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _removed_on_signal(tmp: str):
    """While the block runs, a SIGTERM/SIGHUP that would kill the process first removes ``tmp``, then kills it
    as before. Only where Python lets us (main thread) and only replacing the default handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    try:
        for sig in _SIGNALS:
            with contextlib.suppress(ValueError, OSError):
                if signal.getsignal(sig) == signal.SIG_DFL:
                    previous[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, old)
