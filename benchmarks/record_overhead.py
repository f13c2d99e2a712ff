"""What recording costs: wcviz's exact record vs TensorBoard histograms, time and bytes.

    python benchmarks/record_overhead.py [--device auto|cpu|cuda] [--epochs 10]
        [--epoch-images N] [--keep DIR] [--compand]

For a torchvision ResNet50 (all 54 conv/linear layers, 25.5 M weights) it measures, in one
process and on the same weights each epoch:

1. one ``Recorder.record`` (exact quantiles, near-zero fractions, histogram, moments, written
   to the Zarr store) against TensorBoard's ``SummaryWriter.add_histogram`` for the same
   layers (plus its flush), the median over ``--epochs`` records;
2. one record against a measured training epoch of a small CNN (``--epoch-images`` synthetic
   32×32 images, batch 128, SGD), and the small CNN's own record against its epoch;
3. the bytes on disk of the run store against TensorBoard's event file after the same epochs;
4. on the CPU, a record's statistics with the compiled passes (wcviz.record.native) against
   numpy's path (``WCVIZ_NATIVE=0``), interleaved.

Between records the weights move a little (as training would), so neither side compresses
repeated data. Goals (issues 3, 23): ≤ 0.25 × TensorBoard's time and ≤ 5 × one read of the weights on CPU, ≤ 0.1 × on CUDA, ≤ 1 % of
an epoch, ≤ 0.1 × TensorBoard's bytes. Prints the numbers and ratios; asserts nothing.
TensorBoard is a benchmark-only dependency (``pip install wcviz[bench]``).
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
from wcviz.reparam.layers import tracked_layers


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    """Seconds of one call of ``fn``, with the device's queue drained before and after."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def nudge(model: nn.Module, scale: float = 1e-3) -> None:
    """Move every weight a little, as a training step would (keeps both sides honest)."""
    with torch.no_grad():
        for _, module in tracked_layers(model):
            module.weight.add_(torch.randn_like(module.weight) * scale * module.weight.std())


def folder_bytes(path: Path) -> tuple[int, int]:
    files = [p for p in Path(path).rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


def train_epoch(model: nn.Module, images: int, device: torch.device) -> float:
    """Seconds of one SGD epoch over ``images`` synthetic CIFAR-sized images (batch 128)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    data = torch.randn(images, 3, 32, 32, device=device)
    labels = torch.randint(0, 10, (images,), device=device)

    def epoch():
        for start in range(0, images, 128):
            x, y = data[start:start + 128], labels[start:start + 128]
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    model.train()
    return timed(epoch, device)


def record_vs_tensorboard(device: torch.device, epochs: int, root: Path,
                          compand: bool = False, model: nn.Module | None = None) -> dict:
    """Median seconds of one record vs TensorBoard histograms of the same layers, and bytes.

    ``model``: the network to record (default: a torchvision ResNet50, seeded).
    """
    from torch.utils.tensorboard import SummaryWriter

    if model is None:
        import torchvision

        torch.manual_seed(0)
        model = torchvision.models.resnet50()
    model = model.to(device)
    if compand:  # records then also hold v quantiles and a, b; w = Ψ(v) is computed per record
        wcviz.compand(model, "arctan", a=1.0, b=0.6, learnable="fine")
    layers = tracked_layers(model)
    created = time.perf_counter()
    rec = wcviz.Recorder(model, root / "resnet50", config={"benchmark": "record_overhead"})
    created = time.perf_counter() - created
    writer = SummaryWriter(str(root / "tensorboard"))

    def tensorboard(epoch):
        for name, module in layers:
            writer.add_histogram(name, module.weight, epoch)
        writer.flush()

    def read_once():  # one read of every weight: the floor any statistic pays
        for _, module in layers:
            module.weight.detach().abs().sum()

    ours, theirs, stats_only, reads = [], [], [], []
    for epoch in range(epochs):  # interleaved: each side under the same load
        if epoch:
            nudge(model)
        reads.append(timed(read_once, device))
        stats_only.append(timed(rec.compute, device))
        ours.append(timed(lambda: rec.record(epoch), device))
        theirs.append(timed(lambda: tensorboard(epoch), device))
    passes = compiled_vs_numpy(rec) if device.type == "cpu" else None
    rec.finish()
    writer.close()
    paths = shared_vs_general(model) if device.type == "cpu" else None
    return {"paths": paths, "passes": passes, "layers": len(layers),
            "weights": sum(m.weight.numel() for _, m in layers),
            "create": created, "ours": statistics.median(ours),
            "stats": statistics.median(stats_only), "tb": statistics.median(theirs),
            "read": statistics.median(reads),
            "spread": (min(o / t for o, t in zip(ours, theirs)),
                       max(o / t for o, t in zip(ours, theirs))),
            "store": folder_bytes(root / "resnet50" / "record.zarr"),
            "events": folder_bytes(root / "tensorboard")}


def shared_vs_general(model: nn.Module, repeats: int = 5) -> tuple[float, float, float]:
    """CPU statistics of every layer, interleaved: the shared radix pass (what a record runs)
    vs the general path (a selection per statistic, a pass per threshold: what records ran
    before); returns (median ratio, min, max) over the interleaved pairs."""
    from wcviz.record import stats as S

    weights = [m.weight.detach().cpu().reshape(-1) for _, m in tracked_layers(model)]
    cutoffs = [0.001, 0.01, 0.002, 0.003, ("std", 0.1), ("std", 0.5), ("med", 0.1), ("med", 0.5)]
    ranges = [4 * float(w.abs().max()) for w in weights]

    def general():
        for w, r in zip(weights, ranges):
            S._summary_numpy(w.numpy(), cutoffs, r, S.DEFAULT_BINS)
            S._quantiles_numpy(w.numpy(), S.QUANTILES)

    def shared():
        for w, r in zip(weights, ranges):
            S.weight_summary(w, S.QUANTILES, cutoffs, r, S.DEFAULT_BINS)

    ratios = []
    for _ in range(repeats):
        g = timed(general, torch.device("cpu"))
        ratios.append(timed(shared, torch.device("cpu")) / g)
    return statistics.median(ratios), min(ratios), max(ratios)


def compiled_vs_numpy(rec, repeats: int = 5) -> tuple[float, float, float] | None:
    """A record's statistics (``rec.compute()``, the recorder's threads) with the compiled
    passes vs numpy's path (``WCVIZ_NATIVE=0``), interleaved; (median ratio, min, max), or
    None when the compiled passes were not built."""
    from wcviz.record import native

    if not native.built():
        return None
    ratios = []
    try:
        for _ in range(repeats):
            os.environ["WCVIZ_NATIVE"] = "0"
            numpy_path = timed(rec.compute, torch.device("cpu"))
            os.environ["WCVIZ_NATIVE"] = "1"
            ratios.append(timed(rec.compute, torch.device("cpu")) / numpy_path)
    finally:
        os.environ.pop("WCVIZ_NATIVE", None)
    return statistics.median(ratios), min(ratios), max(ratios)


def epoch_overhead(device: torch.device, images: int, root: Path) -> dict:
    torch.manual_seed(0)
    model = small_cnn().to(device)
    train_epoch(model, min(images, 1024), device)  # warm-up (allocator, kernels)
    seconds = train_epoch(model, images, device)
    rec = wcviz.Recorder(model, root / "small")
    record = statistics.median(timed(lambda e=e: rec.record(e), device) for e in range(3))
    return {"epoch": seconds, "record": record}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    parser.add_argument("--epochs", type=int, default=10, help="records per side")
    parser.add_argument("--epoch-images", type=int, default=None,
                        help="images in the small CNN's epoch (default 50000 cuda, 10000 cpu)")
    parser.add_argument("--keep", help="write the runs here instead of a temporary folder")
    parser.add_argument("--compand", action="store_true",
                        help="record a learnable-WC ResNet50 (adds v quantiles, a, b)")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    images = args.epoch_images or (50_000 if device.type == "cuda" else 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        big = record_vs_tensorboard(device, args.epochs, root, args.compand)
        small = epoch_overhead(device, images, root)
    report(device, args.epochs, images, big, small, args.compand)


def report(device, epochs, images, big, small, compand=False) -> None:
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"cpu, {torch.get_num_threads()} threads")
    (store, nstore), (events, nevents) = big["store"], big["events"]
    load = os.getloadavg()[0]
    lines = [
        f"device {device} ({where}), torch {torch.__version__}, load {load:.2f}"
        + (" (UNDER LOAD: not the machine's figures)" if load > 1 else ""),
        f"ResNet50{' (learnable WC)' if compand else ''}: {big['layers']} conv/linear layers, "
        f"{big['weights']:,} weights",
        f"  recorder creation (epoch-0 edges, empty store): {big['create']:.2f} s",
        f"  one record, wcviz (exact):          {big['ours']:.3f} s "
        f"(statistics {big['stats']:.3f} s; median of {epochs})",
        f"  same layers, TensorBoard histograms: {big['tb']:.3f} s",
        f"  ratio wcviz / TensorBoard:           {big['ours'] / big['tb']:.2f} "
        f"(per-record pairs {big['spread'][0]:.2f}-{big['spread'][1]:.2f}; goal <= 0.25 on "
        f"CPU, <= 0.1 on CUDA)",
        f"  one read of the weights (abs().sum()): {big['read']:.3f} s; record / read "
        f"{big['ours'] / big['read']:.1f} (goal <= 5)",
        *([f"  statistics, shared radix pass / general path: {big['paths'][0]:.2f} "
           f"(pairs {big['paths'][1]:.2f}-{big['paths'][2]:.2f}, one thread)"]
          if big.get("paths") else []),
        *([f"  statistics, compiled passes / numpy's path: {big['passes'][0]:.2f} "
           f"(pairs {big['passes'][1]:.2f}-{big['passes'][2]:.2f}, the recorder's threads)"]
          if big.get("passes") else
          ["  compiled passes not built: every figure above is numpy's path"]
          if device.type == "cpu" else []),
        f"small CNN epoch ({images:,} images, batch 128): {small['epoch']:.2f} s",
        f"  ResNet50 record / that epoch:        {100 * big['ours'] / small['epoch']:.2f} %",
        f"  small CNN record / its epoch:        {100 * small['record'] / small['epoch']:.3f} % "
        f"(goal <= 1 %)",
        f"bytes after {epochs} records: store {store / 1e6:.2f} MB in {nstore} files, "
        f"TensorBoard {events / 1e6:.2f} MB in {nevents} file(s)",
        f"  ratio store / TensorBoard:           {store / events:.3f} (goal <= 0.1)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
