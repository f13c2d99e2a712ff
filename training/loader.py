"""Batches for the loop: a plain torch ``DataLoader`` or the on-device :class:`TensorLoader`.

Both iterate the same samples in the same order: each shards and shuffles through a
``DistributedSampler`` (one replica in a single process) seeded by the run's seed and the
epoch, so a DDP run sees, per global step, exactly the samples of the single-process run.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from wcviz.training.datasets import ArraySplit, Augment, augment_batch
from wcviz.training.distributed import DistInfo


class ShardSampler(Sampler):
    """Evaluation order: rank r takes samples r, r + world, ... (no padding, no shuffle)."""

    def __init__(self, n: int, info: DistInfo):
        self.indices = list(range(info.rank, n, info.world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def make_sampler(n: int, info: DistInfo, train: bool, seed: int) -> Sampler:
    """Shuffled, epoch-seeded DistributedSampler for training; a plain shard for evaluation."""
    if not train:
        return ShardSampler(n, info)
    return DistributedSampler(range(n), num_replicas=info.world, rank=info.rank, shuffle=True,
                              seed=seed, drop_last=False)


class TensorLoader:
    """Batches from an in-memory split kept on the training device (the GPU fast path).

    Raw images (uint8) live on ``device``; each batch is gathered, randomly cropped and flipped
    there in one shot (training only), normalised, and optionally made channels_last. The recipe
    equals the per-image torchvision transforms of :class:`wcviz.training.datasets.ArrayDataset`.

    Args:
        split: images (N, C, H, W) and labels (N,).
        aug: the dataset's recipe.
        batch_size: per-process batch size.
        train: shuffle and augment.
        device: where images live and batches are made.
        seed: shuffling seed (with the epoch, see :meth:`set_epoch`).
        info: DDP position (sharding).
        channels_last: return batches in channels_last memory format.
    """

    def __init__(self, split: ArraySplit, aug: Augment, batch_size: int, *, train: bool,
                 device: torch.device, seed: int = 0, info: DistInfo = DistInfo(),
                 channels_last: bool = False):
        self.images = split.images.to(device)
        self.labels = split.labels.to(device)
        self.aug, self.batch_size, self.train = aug, batch_size, train
        self.channels_last = channels_last
        self.sampler = make_sampler(len(split), info, train, seed)
        # Normalisation constants made once on the device (no host copies per batch).
        self._mean = torch.tensor(aug.mean, device=device).view(1, -1, 1, 1)
        self._std = torch.tensor(aug.std, device=device).view(1, -1, 1, 1)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self):
        order = torch.as_tensor(list(self.sampler), device=self.images.device)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx]
            if self.train:
                x = augment_batch(x, self.aug)
            x = (x.float() / self.aug.scale - self._mean) / self._std  # as ArrayDataset's Normalize
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


class EpochDataLoader(DataLoader):
    """A ``DataLoader`` whose sampler follows :meth:`set_epoch` (same API as TensorLoader)."""

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


def make_dataloader(dataset: Dataset, batch_size: int, *, train: bool, seed: int,
                    info: DistInfo, workers: int, pin_memory: bool) -> EpochDataLoader:
    """The plain path: per-sample transforms in ``workers`` processes."""
    return EpochDataLoader(dataset, batch_size=batch_size,
                           sampler=make_sampler(len(dataset), info, train, seed),
                           num_workers=workers, pin_memory=pin_memory, drop_last=False,
                           persistent_workers=False)
