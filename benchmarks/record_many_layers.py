"""Per-layer overhead of a record: many tiny layers, many metrics.

    python -m benchmarks.record_many_layers [--layers 10000] [--metrics 2000] [--records 5]

1. a model of ``--layers`` ``Linear(1, 1)`` layers: seconds per ``Recorder.record`` (median
   of ``--records``) and the process's peak resident memory growth while recording; beside
   it, in the same run, the statistics computed one layer at a time
   (:func:`wcviz.record.stats.weight_summary` per layer, what every record did before small
   layers were summarised together), as a ratio;
2. a two-layer model recording ``--metrics`` scalar metrics per record: seconds per record;
   beside it, the store's append alone in each layout (schema 2's metric table, schema 1's
   variable per metric), as a ratio.

Goals (issue 23): 10,000 layers ≤ 2 s per record and ≤ 500 MB extra memory; 2,000 metrics
≤ 0.2 s per record (quiet machine). Prints the machine's load average beside the numbers: a
figure taken with load > 1 is labelled as such. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import wcviz
from wcviz.record import stats as S


def load_note() -> str:
    """The 1-minute load average, and a label when the machine is not quiet."""
    load = os.getloadavg()[0]
    return f"load {load:.2f}" + (" (UNDER LOAD: not the machine's figure)" if load > 1 else "")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def one_by_one(rec) -> None:
    """The statistics of every layer computed one layer at a time (the per-layer loop)."""
    with torch.no_grad():
        for i, target in enumerate(rec._layers):
            S.weight_summary(target.tensor(), rec.store.quantiles, rec._cutoffs[i],
                             rec._ranges[i], rec.store.n_bins)


def many_layers(root: Path, layers: int, records: int) -> dict:
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(layers)])
    before = peak_rss_mb()
    start = time.perf_counter()
    rec = wcviz.Recorder(model, root / "layers")
    create = time.perf_counter() - start
    rec.record(0)
    ours, loop, batched = [], [], []
    for epoch in range(1, records + 1):  # interleaved: each pair under the same load
        start = time.perf_counter()
        rec.record(epoch)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        rec.compute()
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        one_by_one(rec)
        loop.append(time.perf_counter() - start)
    rec.finish()
    return {"create": create, "record": statistics.median(ours),
            "stats": statistics.median(batched), "loop": statistics.median(loop),
            "rss": peak_rss_mb() - before}


def many_metrics(root: Path, metrics: int, records: int) -> dict:
    """Seconds per record with ``metrics`` scalar metrics: through ``Recorder.record``, and the
    store's append alone in each layout, interleaved (each under the same load): schema 2's
    one metric table, schema 1's variable (and chunk file) per metric."""
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    rec = wcviz.Recorder(model, root / "metrics")
    values = {f"metric/{i}": float(i) for i in range(metrics)}
    stores = {v: _metric_store(root / f"schema{v}", v) for v in (1, 2)}
    rec.record(0, values)  # creates the metric variables
    for store in stores.values():
        store.append(0, 0, {}, values)
    times = {"record": [], 1: [], 2: []}
    for epoch in range(1, records + 1):
        start = time.perf_counter()
        rec.record(epoch, values)
        times["record"].append(time.perf_counter() - start)
        for version, store in stores.items():
            start = time.perf_counter()
            store.append(epoch, epoch, {}, values)
            times[version].append(time.perf_counter() - start)
    rec.finish()
    for store in stores.values():
        store.finish()
    return {key: statistics.median(t) for key, t in times.items()}


def _metric_store(path: Path, version: int):
    from wcviz.record.store import RunStore

    return RunStore.create(path, layers=["0"], layer_kinds=["Linear"], layer_numel=[16],
                           bin_edges=[np.linspace(-1, 1, 82)], thresholds=["abs=0.01"],
                           schema_version=version)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=2_000)
    parser.add_argument("--records", type=int, default=5)
    parser.add_argument("--dir", default=None,
                        help="where to write the runs (default: a temporary folder; a tmpfs "
                             "such as /dev/shm separates the file system's cost from ours)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"start: {load_note()}")
        lay = many_layers(Path(tmp), args.layers, args.records)
        print(f"{args.layers:,} Linear(1, 1) layers ({load_note()}):")
        print(f"  recorder creation:            {lay['create']:.2f} s")
        print(f"  one record (median of {args.records}):  {lay['record']:.3f} s (goal <= 2 s)")
        print(f"  statistics, batched:          {lay['stats']:.3f} s")
        print(f"  statistics, one by one:       {lay['loop']:.3f} s "
              f"(batched / one by one {lay['stats'] / lay['loop']:.3f})")
        print(f"  peak memory growth:           {lay['rss']:.0f} MB (goal <= 500 MB)")
        met = many_metrics(Path(tmp), args.metrics, args.records)
        print(f"{args.metrics:,} metrics per record ({load_note()}):")
        print(f"  one record (median of {args.records}):  {met['record']:.3f} s (goal <= 0.2 s)")
        print(f"  the store's append, one metric table (schema 2):      {met[2]:.3f} s")
        print(f"  the store's append, a variable per metric (schema 1): {met[1]:.3f} s "
              f"(table / variables {met[2] / met[1]:.3f})")


if __name__ == "__main__":
    main()
