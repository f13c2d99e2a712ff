"""wcviz.training.allocator: freed memory kept in the process (no page faults for blocks
allocated again), and WCVIZ_MALLOC=system leaving glibc's defaults. Each case runs in its own
process: the setting is process-wide."""

import os
import platform
import subprocess
import sys

import pytest

# A step's worth of blocks over glibc's largest mmap threshold (32 MiB), allocated and freed
# again and again as a training step does (torch's CPU allocator, the one training uses): the
# minor page faults of 10 steps after 10 steps of warm-up (the heap grows to what a step
# needs). Transparent huge pages off (prctl PR_SET_THP_DISABLE), so that faults count 4 KiB
# pages whatever the host's setting.
SCRIPT = """
import ctypes, resource, torch
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)
from wcviz.training.allocator import keep_freed_memory
applied = keep_freed_memory()
def step():
    xs = [torch.ones(n) for n in (16 * 2 ** 20, 8 * 2 ** 20, 4 * 2 ** 20)]
    y = xs[0] * 2
for _ in range(10):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

#: Pages of one step's blocks (64 + 32 + 16 + 64 MiB).
PAGES = 176 * 2 ** 20 // os.sysconf("SC_PAGE_SIZE")

#: What would make the child's malloc other than glibc's with its defaults.
MALLOC_ENV = ("LD_PRELOAD", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_",
              "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="the setting is glibc's; elsewhere it does nothing")


def _faults(malloc: str) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}
    env.update(WCVIZ_MALLOC=malloc, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    applied, faults = proc.stdout.split()
    return applied, int(faults)


def test_steps_allocating_what_the_last_one_freed_do_not_fault_its_pages_again():
    applied, faults = _faults("")
    assert applied == "True"
    assert faults < PAGES  # 10 steps: less than one step's pages in all


def test_wcviz_malloc_system_keeps_glibcs_defaults():
    applied, faults = _faults("system")
    assert applied == "False"
    assert faults > 5 * PAGES  # glibc gave the blocks back: their pages fault again each step
