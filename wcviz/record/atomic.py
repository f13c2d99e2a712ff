"""Crash-safe file replacement: a reader (or a resume after a kill or power loss) sees the old
file or the new one whole, never a torn one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Callable


def write_atomic(path, write: Callable[[IO[bytes]], None] | bytes | str) -> None:
    """Replace ``path`` by new content atomically and durably.

    The content goes to a temporary file next to ``path`` (same file system), is flushed and
    fsynced, renamed over ``path``, and the directory is fsynced so that the rename itself
    survives a power loss. A failure leaves ``path`` as it was and no temporary file.

    Args:
        path: the file to replace (its directory must exist).
        write: bytes or text (UTF-8), or a function writing into the open binary file
            (e.g. ``lambda f: torch.save(state, f)``).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            if isinstance(write, str):
                fh.write(write.encode())
            elif isinstance(write, bytes):
                fh.write(write)
            else:
                write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder) -> None:
    """Make renames in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without directory fsync
        pass
    finally:
        os.close(fd)
