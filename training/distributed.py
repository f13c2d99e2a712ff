"""Process-group set-up for torchrun/DDP; every helper is a no-op in a single process.

``torchrun --nproc-per-node N -m wcviz.training ...`` sets RANK, WORLD_SIZE and LOCAL_RANK; the
loop calls :func:`init` once. NCCL on CUDA, gloo on CPU. Rank 0 alone writes the run store and
the checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the process that does the I/O (rank 0)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def from_env() -> DistInfo:
    """The DDP position from torchrun's environment (single process when it is absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(info: DistInfo, device: torch.device) -> None:
    """Join the process group (once); NCCL for CUDA devices, gloo otherwise."""
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=info.rank, world_size=info.world)


def shutdown(info: DistInfo) -> None:
    """Leave the process group if this process joined one."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over all processes (returns it unchanged in a single process)."""
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(info: DistInfo, device: torch.device | None = None) -> None:
    """Wait for every process (no-op in a single process). On CUDA give the process's
    ``device``: NCCL's barrier otherwise guesses the GPU (and warns that it does)."""
    if info.enabled:
        on_gpu = device is not None and device.type == "cuda"
        dist.barrier(device_ids=[device.index] if on_gpu else None)


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Rank 0's boolean, on every process."""
    if not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())
