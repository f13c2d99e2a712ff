"""Rank-aware recording under torch.distributed, and URLs given as run paths."""

import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

import wcviz
from wcviz.errors import WcvizError


@pytest.mark.slow
def test_only_rank_zero_writes(tmp_path):
    writer = Path(__file__).with_name("_rank_writer.py")
    proc = subprocess.run([sys.executable, str(writer), str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
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
