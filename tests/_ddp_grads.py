"""Two gloo processes train one DDP step and record gradients (not a test itself).

    python tests/_ddp_grads.py ROOT

Rank 0 records ``ROOT/run`` and saves the all-reduced gradients (``reduced.npz``) and its
own, un-reduced ones from a copy of the model (``local0.npz``) for the test to compare.
"""

import copy
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.nn.utils import parametrize

import wcviz


def _worker(rank: int, world: int, init_file: str, root: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        torch.manual_seed(0)
        model = wcviz.compand(nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 2)), "arctan",
                              include=["0"])
        local = copy.deepcopy(model)
        ddp = DDP(model)
        rec = wcviz.Recorder(model, os.path.join(root, "run"), gradients=True)
        g = torch.Generator().manual_seed(100 + rank)  # each rank its own samples
        x, y = torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g)
        nn.functional.mse_loss(ddp(x), y).backward()
        with parametrize.cached():
            w = local[0].weight
            w.retain_grad()
            nn.functional.mse_loss(local(x), y).backward()
        rec.record(0)
        rec.finish()
        if rank == 0:
            v = model[0].parametrizations.weight.original
            np.savez(os.path.join(root, "reduced.npz"), plain=model[1].weight.grad.numpy(),
                     v=v.grad.numpy())
            np.savez(os.path.join(root, "local0.npz"), plain=local[1].weight.grad.numpy(),
                     w=w.grad.numpy())
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    root = sys.argv[1]
    mp.spawn(_worker, args=(2, os.path.join(root, "init"), root), nprocs=2, join=True)
