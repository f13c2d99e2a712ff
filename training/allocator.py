"""Keep freed memory in the process: the CPU training step without page faults.

glibc's malloc hands every block over its mmap threshold (at most 32 MiB on 64-bit) to the
kernel with ``munmap`` when it is freed, and trims the heap's free top back to the kernel. A
CPU training step allocates and frees its activations anew each step (a CIFAR ResNet18's first
activations, batch 128, are 33.5 MB), so each step faults its memory in again, page by page:
420,000 minor faults and 0.8 s of system time in a 5.6 s step, measured on a 2-core CPU, and
more or fewer from step to step. With every block served from the heap and the heap never
trimmed, the same step had almost no fault once the heap had grown to the step's needs.

The cost: the process's resident memory never shrinks below its peak (the peak of two ResNet18
models training in turn rose from 2.2 to 2.5 GB), which matters to a process that goes on to
other work after training. Threads other than the main one allocate from arenas of their own,
which still hand big blocks back; the training step runs on the main thread.

The ``wcviz`` commands that train (``train``, ``sweep``, ``demo``, ``reproduce``) ask for this
through :func:`wcviz.training.loop.run`'s ``keep_memory`` for a run on the CPU (glibc only;
elsewhere nothing changes); ``WCVIZ_MALLOC=system`` keeps glibc's defaults. The same outside
wcviz: start Python with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=-1``.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: Environment variable; ``system`` leaves glibc's malloc settings alone.
ENV = "WCVIZ_MALLOC"

# mallopt(3) parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: mallopt(3): a trim threshold of -1 turns trimming off.
_NEVER_TRIM = -1


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the kernel.

    Returns True when applied; False where the C library is not glibc, or ``WCVIZ_MALLOC`` is
    ``system``. Affects the whole process, from this call on.
    """
    if os.environ.get(ENV, "").strip().lower() == "system":
        return False
    libc = _glibc()
    if libc is None:
        return False
    # Both: with mmap off but trimming on, the heap's free top would still go back.
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD,
                                                                     _NEVER_TRIM))


def _glibc():
    """The running C library when it is glibc (it has ``gnu_get_libc_version``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the symbols the process has loaded, its C library's among them
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc
