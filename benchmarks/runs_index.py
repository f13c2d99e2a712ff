"""Listing a big runs root with and without its runs index.

    python -m benchmarks.runs_index [--runs 1000] [--root DIR] [--repeats 5]

Builds ``--runs`` small runs (or uses ``--root``, e.g. one left by ``dash_load.py``) and
times :func:`wcviz.record.reader.list_runs`, interleaved: a listing whose index is missing
(every store's ``zarr.json`` read, the index rebuilt) and a listing with a fresh index (one
``stat`` per run). Goal (issue 23): 1,000 runs listed in ≤ 0.2 s. Prints medians, their
ratio and the machine's load average (figures taken with load > 1 are labelled). Asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from wcviz.record.index import INDEX_NAME
from wcviz.record.reader import list_runs


def load_note() -> str:
    load = os.getloadavg()[0]
    return f"load {load:.2f}" + (" (UNDER LOAD: not the machine's figure)" if load > 1 else "")


def timed_listing(root: Path, drop_index: bool) -> float:
    if drop_index:
        (root / INDEX_NAME).unlink(missing_ok=True)
    start = time.perf_counter()
    list_runs(root)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--root", help="an existing runs root (default: build one)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root) if args.root else Path(tmp) / "runs"
        if not args.root:
            from benchmarks.dash_load import build_many

            build_many(root, args.runs)
        n = len(list_runs(root)[0])
        cold, warm = [], []
        for _ in range(args.repeats):  # interleaved pairs: each under the same load
            cold.append(timed_listing(root, drop_index=True))
            warm.append(timed_listing(root, drop_index=False))
        c, w = statistics.median(cold), statistics.median(warm)
        print(f"listing {n} runs ({load_note()}), medians of {args.repeats}:")
        print(f"  without index (read every store, rebuild): {c:.3f} s "
              f"(min {min(cold):.3f}, max {max(cold):.3f})")
        print(f"  with a fresh index:                        {w:.3f} s "
              f"(min {min(warm):.3f}, max {max(warm):.3f}; goal <= 0.2 s)")
        print(f"  ratio with / without:                      {w / c:.2f}")


if __name__ == "__main__":
    main()
