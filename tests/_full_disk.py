"""A full disk for tests: files opened for writing under a folder fail with ENOSPC.

Patches ``open`` (builtins and io: pathlib and zarr's local store go through ``io.open``) so
that, once full, opening a file below ``folder`` for writing raises ``OSError(ENOSPC)`` as the
file system would; ``free()`` makes room again. ``allow`` lets that many more write-opens
succeed first, so that a write fails midway through a record.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from contextlib import contextmanager


class FullDisk:
    def __init__(self, folder, allow: int = 0):
        self.folder = os.path.realpath(folder)
        self.full = False
        self.allow = allow
        self.refused = 0

    def fill(self, allow: int = 0) -> None:
        self.full, self.allow = True, allow

    def free(self) -> None:
        self.full = False

    def check(self, file, mode: str) -> None:
        if not self.full or not isinstance(file, (str, os.PathLike)):
            return
        if not any(c in mode for c in "wax+"):
            return
        if not os.path.realpath(os.fspath(file)).startswith(self.folder):
            return
        if self.allow > 0:
            self.allow -= 1
            return
        self.refused += 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(file))


@contextmanager
def full_disk(folder):
    """Patch ``open`` for the block; yields the :class:`FullDisk` (not full yet)."""
    disk = FullDisk(folder)
    real = builtins.open

    def fake_open(file, mode="r", *args, **kwargs):
        disk.check(file, mode)
        return real(file, mode, *args, **kwargs)

    builtins.open = io.open = fake_open
    try:
        yield disk
    finally:
        builtins.open = io.open = real
