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
# minor page faults of the last of a few such steps.
SCRIPT = """
import resource, torch
from wcviz.training.allocator import keep_freed_memory
applied = keep_freed_memory()
def step():
    xs = [torch.ones(n) for n in (16 * 2 ** 20, 8 * 2 ** 20, 4 * 2 ** 20)]
    y = xs[0] * 2
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

#: Pages of one step's blocks (64 + 32 + 16 + 64 MiB).
PAGES = 176 * 2 ** 20 // os.sysconf("SC_PAGE_SIZE")

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="the setting is glibc's; elsewhere it does nothing")


def _faults(**env) -> tuple[str, int]:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    applied, faults = proc.stdout.split()
    return applied, int(faults)


def test_a_step_allocating_what_the_last_one_freed_does_not_fault_its_pages_again():
    applied, faults = _faults(WCVIZ_MALLOC="")
    assert applied == "True"
    assert faults < PAGES // 20


def test_wcviz_malloc_system_keeps_glibcs_defaults():
    applied, faults = _faults(WCVIZ_MALLOC="system")
    assert applied == "False"
    assert faults > PAGES // 2  # glibc gave the blocks back: their pages fault again
