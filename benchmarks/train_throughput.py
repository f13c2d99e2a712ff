"""Training throughput: the plain loop against the fast path, one epoch of CIFAR ResNet18.

The paper's recipe (preset ``cifar10-resnet18``: batch 128, SGD momentum 0.9, lr 0.1, wd 1e-4;
WC by default) on synthetic CIFAR-shaped data, run twice in one process:

* plain: torch ``DataLoader`` with per-image torchvision transforms in worker processes, fp32,
  contiguous (NCHW) memory;
* fast: the whole uint8 set on the device (``TensorLoader``: batched on-device crops and flips),
  bf16 autocast and channels_last on CUDA, optionally ``torch.compile``.

Both use the same loop (``wcviz.training.loop.train_one_epoch``), model, optimizer and augmentation
recipe. Prints images/s of each and the ratio. On CPU a small subset keeps it short; on CUDA
the full 45,000-image training split is used unless ``--subset`` says otherwise.

    python benchmarks/train_throughput.py                 # CPU here: 128 images
    python benchmarks/train_throughput.py --compile       # CUDA: goal fast/plain >= 3
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from wcviz.training.datasets import ArrayDataset, ArraySplit
from wcviz.training.distributed import DistInfo
from wcviz.training.loader import TensorLoader, make_dataloader
from wcviz.training.loop import build, train_one_epoch
from wcviz.training.presets import resolve


def _subset(split: ArraySplit, n: int | None) -> ArraySplit:
    return split if n is None else ArraySplit(split.images[:n], split.labels[:n])


def _parts(args, fast: bool):
    cfg = resolve("cifar10-resnet18", args.method, dataset="synthetic-cifar", epochs=1,
                  device=args.device, amp=fast, channels_last=fast, compile=fast and args.compile,
                  loader="tensor" if fast else "dataloader", workers=args.workers,
                  progress=False)
    parts = build(cfg)
    split = _subset(parts.data.arrays["train"], args.subset)
    if cfg.compile and parts.device.type == "cuda":
        # Whole batches only: a last, smaller batch is a new input shape, which torch.compile
        # would recompile for inside the timed epoch (tens of seconds).
        split = _subset(split, len(split) // cfg.batch_size * cfg.batch_size)
    if fast:
        parts.loaders["train"] = TensorLoader(split, parts.data.augment, cfg.batch_size,
                                              train=True, device=parts.device, seed=cfg.seed,
                                              channels_last=parts.device.type == "cuda")
    else:
        parts.loaders["train"] = make_dataloader(
            ArrayDataset(split, parts.data.augment, train=True), cfg.batch_size, train=True,
            seed=cfg.seed, info=DistInfo(), workers=args.workers,
            pin_memory=parts.device.type == "cuda")
    return parts


def _warm_up(parts, steps: int) -> None:
    """A few steps first (cuDNN autotuning, compile, allocator) without touching the timed
    epoch's data order."""
    loader = parts.loaders["train"]
    loader.set_epoch(0)
    for i, (x, y) in enumerate(loader):
        if i >= steps:
            break
        with torch.autocast(parts.device.type, dtype=parts.amp_dtype,
                            enabled=parts.amp_dtype is not None):
            loss = torch.nn.functional.cross_entropy(parts.model(x.to(parts.device)).float(),
                                                     y.to(parts.device))
        parts.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        parts.optimizer.step()
    _sync(parts.device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Measured:
    """One timed epoch: its images, seconds and loss, and the parts it trained."""

    images: int
    seconds: float
    train_loss: float
    parts: object  # wcviz.training.loop.Parts

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds


def measure(args, fast: bool) -> Measured:
    """One timed epoch of the plain loop (``fast`` False) or of the fast path."""
    parts = _parts(args, fast)
    _warm_up(parts, args.warmup)
    _sync(parts.device)
    start = time.perf_counter()
    out = train_one_epoch(parts, epoch=1)
    _sync(parts.device)
    seconds = time.perf_counter() - start
    result = Measured(len(parts.loaders["train"].sampler), seconds, out["train_loss"], parts)
    print(f"  {'fast ' if fast else 'plain'}: {result.images} images in {seconds:.2f} s = "
          f"{result.images_per_s:,.0f} images/s (train loss {out['train_loss']:.3f})", flush=True)
    return result


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--method", default="wc", help="preset method (default wc)")
    p.add_argument("--subset", type=int, help="training images (default: 128 on CPU, all on CUDA)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain loop")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--compile", action="store_true", help="torch.compile in the fast path")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    if args.subset is None and not cuda:
        args.subset = 128
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"train throughput, cifar10-resnet18 ({args.method}), {name}, torch {torch.__version__},"
          f" {args.subset or 'all'} images, batch 128")
    plain = measure(args, fast=False)
    fast = measure(args, fast=True)
    print(f"fast / plain = {fast.images_per_s / plain.images_per_s:.2f}x")


if __name__ == "__main__":
    main()
