"""What ``gradients=True`` costs: a record with gradients vs one without, and vs an epoch.

    python benchmarks/gradient_overhead.py [--records 5] [--threads N]

On the CPU, in one process:

1. the digits CNN of ``wcviz train --preset digits-cnn --method wc`` (companded): one measured
   training epoch, then the median time of a record without gradients, with gradients, and
   without the update ratio (no weight copy), all on the same weights and gradients;
2. the CIFAR ResNet18 of the ``cifar10-resnet18`` presets, companded, after one
   forward/backward pass of a batch of 32: the same three record times.

Goals (issue 21): a record with gradients ≤ 2 × one without; the gradients' extra cost ≤ 1 % of
a digits epoch at the default cadence (one record per epoch). Prints the numbers, the ratios
and the load average (other processes on a shared machine slow every number); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import wcviz


def record_times(model: nn.Module, root: Path, records: int) -> dict[str, float]:
    """Median seconds of ``Recorder.record`` per setting, the settings' records interleaved
    (so a busy moment of a shared machine hits them alike); the first records are dropped."""
    settings = {"without": {}, "gradients": {"gradients": True},
                "no_update_ratio": {"update_ratio": False}}
    recs = {name: wcviz.Recorder(model, root / name, overwrite=True, **kw)
            for name, kw in settings.items()}
    times = {name: [] for name in settings}
    for epoch in range(records + 1):
        for name, rec in recs.items():
            start = time.perf_counter()
            rec.record(epoch)
            if epoch:
                times[name].append(time.perf_counter() - start)
    for rec in recs.values():
        rec.finish()
    return {name: statistics.median(t) for name, t in times.items()}


def digits(root: Path, records: int) -> tuple[float, dict[str, float]]:
    """(seconds of one digits-cnn WC epoch, record times) on the CPU."""
    from wcviz.training.loop import build, train_one_epoch
    from wcviz.training.presets import resolve

    parts = build(resolve("digits-cnn", "wc", device="cpu", progress=False, epochs=1))
    train_one_epoch(parts, 1)  # warm-up: allocator, first-call costs
    start = time.perf_counter()
    train_one_epoch(parts, 2)
    epoch = time.perf_counter() - start
    return epoch, record_times(parts.raw_model, root / "digits", records)


def resnet18(root: Path, records: int) -> dict[str, float]:
    from wcviz.training.models import build_model

    torch.manual_seed(0)
    model = wcviz.compand(build_model("resnet18", 10), "arctan", a=0.5, b=0.3)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    nn.functional.cross_entropy(model(x), y).backward()
    return record_times(model, root / "resnet18", records)


def report(name: str, times: dict[str, float], epoch: float | None = None) -> None:
    base = times["without"]
    print(f"{name}: record without gradients {base * 1e3:.1f} ms, with gradients "
          f"{times['gradients'] * 1e3:.1f} ms ({times['gradients'] / base:.2f} ×; goal ≤ 2 ×), "
          f"without update ratio {times['no_update_ratio'] * 1e3:.1f} ms")
    if epoch is not None:
        extra = times["gradients"] - base
        print(f"{name}: one epoch {epoch:.2f} s; the gradients add {extra * 1e3:.1f} ms a "
              f"record = {100 * extra / epoch:.3f} % of an epoch (goal ≤ 1 %); the whole "
              f"record with gradients = {100 * times['gradients'] / epoch:.2f} %")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5, help="records timed per setting")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        epoch, times = digits(Path(tmp), args.records)
        report("digits-cnn (WC)", times, epoch)
        report("ResNet18 CIFAR (WC)", resnet18(Path(tmp), args.records))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
