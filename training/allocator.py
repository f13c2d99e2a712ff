"""Keep freed memory in the process: the CPU training step without page faults.

glibc's malloc hands every block over its mmap threshold (at most 32 MiB on 64-bit) to the
kernel with ``munmap`` when it is freed, and trims the heap's free top back to the kernel. A
CPU training step allocates and frees its activations anew each step (a CIFAR ResNet18's first
activations, batch 128, are 33.5 MB), so each step faults its memory in again, page by page:
420,000 minor faults and 0.8 s of system time in a 5.6 s step, measured on a 2-core CPU, and
more or fewer from step to step. With every block served from the heap and the heap never
trimmed, the same step took 4.4–5.1 s (two runs) with no fault. The cost: freed memory stays with the process
(the peak resident memory of two ResNet18 models training in turn rose from 2.2 to 2.5 GB).

:func:`wcviz.training.loop.run` (``wcviz train``, ``wcviz sweep``, ``wcviz demo``) does this for
a run on the CPU, for the whole process (glibc only; elsewhere nothing changes); set
``WCVIZ_MALLOC=system`` to keep glibc's defaults. The same effect outside wcviz: start Python
with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647``, or preload jemalloc or tcmalloc.
"""

from __future__ import annotations

import ctypes
import os

#: Environment variable; ``system`` leaves glibc's malloc settings alone.
ENV = "WCVIZ_MALLOC"

# mallopt(3) parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: The largest trim threshold mallopt takes (an int): the free top of the heap is never this big.
_NEVER_TRIM = 2 ** 31 - 1


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
    try:
        libc = ctypes.CDLL(None)  # the symbols the process has loaded, its C library's among them
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc
