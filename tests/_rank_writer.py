"""Two real torch.distributed (gloo) processes recording one model (not a test itself).

    python tests/_rank_writer.py ROOT

Each rank opens ``Recorder(model, ROOT/run-of-rank-<rank>)`` and records twice; the rank-aware
Recorder must write only rank 0's store. Run as its own process so that ``mp.spawn`` re-imports
this file as ``__main__``, never whatever script an earlier test left as ``__main__``.
"""

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import wcviz


def _worker(rank: int, world: int, init_file: str, root: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
        run = os.path.join(root, f"run-of-rank-{rank}")
        with wcviz.Recorder(model, run) as rec:
            assert rec.rank == rank
            assert rec.record(0) is (rank == 0)
            assert rec.record(1, {"val/acc": 0.5}) is (rank == 0)
            assert rec.n_records == (2 if rank == 0 else 0)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    root = sys.argv[1]
    mp.spawn(_worker, args=(2, os.path.join(root, "init"), root), nprocs=2, join=True)
