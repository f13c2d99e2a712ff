"""Rank-aware recording under torch.distributed, and URLs given as run paths."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import wcviz
from wcviz.errors import WcvizError


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


@pytest.mark.slow
def test_only_rank_zero_writes(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    assert wcviz.open_run(tmp_path / "run-of-rank-0").sizes["epoch"] == 2
    assert not (tmp_path / "run-of-rank-1").exists()  # no store, not even a folder


def test_recorder_refuses_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for url in ("memory://runs/x", "s3://bucket/run", "file:///tmp/run"):
        with pytest.raises(WcvizError, match="local disk"):
            wcviz.Recorder(nn.Linear(2, 2), url)
    assert list(tmp_path.iterdir()) == []  # no folder named "memory:" or "s3:"


def test_readers_take_file_urls_and_refuse_others(tmp_path):
    rec = wcviz.Recorder(nn.Linear(2, 2), tmp_path / "runs" / "a")
    rec.record(0)
    rec.finish()
    url = (tmp_path / "runs" / "a").as_uri()
    assert wcviz.open_run(url).attrs["run_id"] == "a"
    assert [ds.attrs["run_id"] for ds in wcviz.open_runs((tmp_path / "runs").as_uri())] == ["a"]
    for bad in ("memory://runs/a", "s3://bucket/runs"):
        with pytest.raises(WcvizError, match="local disk only"):
            wcviz.open_run(bad)
        with pytest.raises(WcvizError, match="local disk only"):
            wcviz.open_runs(bad)
