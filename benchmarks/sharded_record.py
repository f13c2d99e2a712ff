"""What a record of a sharded model costs each rank: extra memory and time.

    python benchmarks/sharded_record.py [--rows 8192] [--cols 8192] [--ranks 2] [--records 3]

One ``nn.Linear`` of rows × cols weights (default 8192 × 8192 = 64 Mi elements, 256 MiB in
float32) is sharded with FSDP2 ``fully_shard`` over ``--ranks`` CPU processes (gloo); the
model is built on the meta device and each rank initializes only its own shard, so no rank
ever holds the full weight. Each rank then records it ``--records`` times with
``wcviz.Recorder`` and reports:

* its shard's size, and the **extra memory** of a record: the peak resident set size during
  the records (sampled every millisecond from /proc/self/statm) above the resident size just
  before them, and the growth of the process's lifetime peak (``ru_maxrss``);
* the median seconds of one record (all layers' statistics plus rank 0's store write).

Both after one unmeasured record, whose resident size also holds the code pages of the torch
kernels it runs for the first time.

The same layer is then recorded in one plain process (the full weight, the single-device
path), for the time ratio and its own extra memory. Ranks use one intra-op thread each, the
single process too. The load average is printed beside the numbers: on a shared machine the
times move with it. Prints; asserts nothing. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import wcviz

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20


def rss() -> int:
    """Resident set size of this process now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def maxrss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakSampler:
    """The highest RSS seen while the ``with`` block runs (a thread samples every ms)."""

    def __enter__(self) -> "PeakSampler":
        self.peak, self._stop = rss(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.001)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def measure(rec: wcviz.Recorder, records: int) -> dict:
    """Median seconds of ``records`` records, and their extra memory (bytes), after one
    unmeasured record (the first also maps the code of torch's kernels into memory)."""
    if dist.is_initialized():
        dist.barrier()
    rec.record(-1)
    times = []
    before, life_before = rss(), maxrss()
    with PeakSampler() as sampler:
        for epoch in range(records):
            if dist.is_initialized():
                dist.barrier()  # every rank starts the record together
            start = time.perf_counter()
            rec.record(epoch)
            times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "extra_peak": sampler.peak - before,
            "maxrss_growth": maxrss() - life_before}


def _rank(rank: int, world: int, init: str, out: str, rows: int, cols: int,
          records: int) -> None:
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import init_device_mesh

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (world,))
        with torch.device("meta"):
            model = nn.Sequential(nn.Linear(cols, rows, bias=False))
        fully_shard(model, mesh=mesh)
        model.to_empty(device="cpu")  # allocates this rank's shard only
        with torch.no_grad():
            model[0].weight.normal_(0, cols ** -0.5)  # each rank fills its own shard
        shard = model[0].weight.to_local()
        rec = wcviz.Recorder(model, Path(out) / "sharded-run", threads=1)
        result = {"rank": rank, "shard_bytes": shard.numel() * shard.element_size(),
                  **measure(rec, records)}
        rec.finish()
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(result))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def single(rows: int, cols: int, records: int, out: Path) -> dict:
    """The same layer, unsharded, recorded in this (plain) process."""
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(cols, rows, bias=False))
    with torch.no_grad():
        model[0].weight.normal_(0, cols ** -0.5)
    rec = wcviz.Recorder(model, out / "single-run", threads=1)
    result = {"weight_bytes": model[0].weight.numel() * 4, **measure(rec, records)}
    rec.finish()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--cols", type=int, default=8192)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--records", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before (1, 5, 15 min; {os.cpu_count()} cores, shared machine): "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        mp.spawn(_rank, args=(args.ranks, str(out / "init"), str(out), args.rows, args.cols,
                              args.records), nprocs=args.ranks, join=True)
        ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(args.ranks)]
        one = single(args.rows, args.cols, args.records, out)
    n = args.rows * args.cols
    print(f"one Linear {args.rows} x {args.cols} = {n / MIB:.0f} Mi float32 weights "
          f"({n * 4 / MIB:.0f} MiB), fully_shard over {args.ranks} gloo CPU ranks, "
          f"median of {args.records} records")
    for r in ranks:
        print(f"  rank {r['rank']}: shard {r['shard_bytes'] / MIB:7.1f} MiB | record extra peak "
              f"RSS {r['extra_peak'] / MIB:7.1f} MiB ({r['extra_peak'] / r['shard_bytes']:.2f} x "
              f"shard), ru_maxrss growth {r['maxrss_growth'] / MIB:7.1f} MiB | "
              f"{r['seconds']:.2f} s per record")
    print(f"  single process: weight {one['weight_bytes'] / MIB:7.1f} MiB | record extra peak "
          f"RSS {one['extra_peak'] / MIB:7.1f} MiB ({one['extra_peak'] / one['weight_bytes']:.2f}"
          f" x weight) | {one['seconds']:.2f} s per record")
    slowest = max(r["seconds"] for r in ranks)
    print(f"sharded / single-process record time: {slowest / one['seconds']:.2f} "
          f"(slowest rank)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
