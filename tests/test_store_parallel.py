"""Records with many chunk files (here: a metric table of many column blocks) are written by a
few threads."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from torch import nn

import wcviz
from wcviz.errors import WcvizError
from wcviz.record import store
from wcviz.record.metrics import metric

sys.path.insert(0, str(Path(__file__).resolve().parent / "adversarial"))
from _full_disk import full_disk  # noqa: E402

METRICS = 6 * store.METRIC_BLOCK + 5  # seven column blocks of the metric table
#: chunk files a record writes from which threads write them, lowered so that these records
#: (seven table blocks and about twenty other arrays) take the threaded path
PARALLEL_FILES = 16


@pytest.fixture(autouse=True)
def _threaded(monkeypatch):
    monkeypatch.setattr(store, "PARALLEL_FILES", PARALLEL_FILES)


def values(epoch: int) -> dict[str, float]:
    return {f"m{i}": epoch * 1000.0 + i for i in range(METRICS)}


def test_many_metrics_are_written_by_the_threads_and_read_back_exactly(tmp_path, monkeypatch):
    threads = set()
    real = store._RowWriter.write

    def write(self, k, row):
        threads.add(__import__("threading").get_ident())
        return real(self, k, row)

    monkeypatch.setattr(store._RowWriter, "write", write)
    rec = wcviz.Recorder(nn.Linear(3, 2), tmp_path / "run", epoch_chunk=2)
    for epoch in range(5):
        rec.record(epoch, values(epoch))
    rec.finish()
    assert len(threads) > 1  # the pool wrote them
    ds = wcviz.open_run(tmp_path / "run")
    for i in (0, METRICS // 2, METRICS - 1):
        assert metric(ds, f"m{i}").values.tolist() == [e * 1000.0 + i for e in range(5)]


@pytest.mark.parametrize("allow", [0, 7, 12])  # a record writes 19 chunk files and more
def test_a_full_disk_midway_through_the_threads_keeps_records_and_goes_on(tmp_path, allow):
    rec = wcviz.Recorder(nn.Linear(3, 2), tmp_path / "run", epoch_chunk=2)
    with full_disk(tmp_path) as disk:
        for epoch in range(3):
            rec.record(epoch, values(epoch))
        disk.fill(allow)
        with pytest.raises(WcvizError, match="no space left on the device"):
            rec.record(3, values(3))
        kept = wcviz.open_run(tmp_path / "run")
        assert kept.epoch.values.tolist() == [0, 1, 2]
        assert np.array_equal(metric(kept, f"m{METRICS - 1}").values,
                              [e * 1000.0 + METRICS - 1 for e in range(3)])
        disk.free()
        for epoch in (3, 4):
            rec.record(epoch, values(epoch))
        rec.finish()
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.epoch.values.tolist() == [0, 1, 2, 3, 4]
    for i in (0, allow % METRICS, METRICS - 1):
        assert metric(ds, f"m{i}").values.tolist() == [e * 1000.0 + i for e in range(5)]
