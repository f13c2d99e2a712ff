"""One writer per run: the writer lock of a run folder, and whether the process that wrote a
run still runs."""

from __future__ import annotations

import gc
import os
import socket
from pathlib import Path

from wcviz.errors import WcvizError
from wcviz.record.runfolder import LOCK_NAME

#: Writer locks this process holds: (pid, run dir) -> open lock file. One entry per run: a
#: second RunStore/Recorder of the same process on the same run is refused like a second process.
_LOCKS: dict[tuple[int, str], object] = {}


def lock_writer(run_dir: Path):
    """Hold ``run_dir/.writer.lock`` so that no second writer (process *or* object) can write.

    An exclusive ``flock`` (released by the OS when the process ends, killed or not), held by
    one writer object; a second one in this process (a re-run notebook cell) is refused too,
    since two writers overwrite each other's records. Returns the key to release.
    """
    key = (os.getpid(), str(Path(run_dir).resolve()))
    if key in _LOCKS:
        gc.collect()  # an unreachable writer (its name rebound) releases the run in __del__
    if key in _LOCKS:  # keyed by pid: a forked child does not inherit its parent's claim
        raise WcvizError(f"run {run_dir} is already open for writing in this process (another "
                         f"Recorder or RunStore); call finish() on that one first, or use it")
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no protection
        return None
    handle = open(Path(run_dir) / LOCK_NAME, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise WcvizError(f"run {run_dir} is being written by another process; wait for it "
                         f"to end (or stop it) before resuming or replacing the run") from None
    _LOCKS[key] = handle
    return key


def unlock_writer(key) -> None:
    handle = _LOCKS.pop(key, None)
    if handle is not None:
        handle.close()

def writer_alive(attrs: dict) -> bool | None:
    """Whether the process that last opened a run for writing still runs (None: unknown,
    e.g. another host). Tells an interrupted run from a live one whose status is "running"."""
    if attrs.get("host") != socket.gethostname() or not isinstance(attrs.get("pid"), int):
        return None
    try:
        os.kill(attrs["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True

