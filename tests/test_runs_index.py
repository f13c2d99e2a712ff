"""The runs index of a root: built by listings and writers, refreshed when stale, never
trusted over a store that changed, rebuilt when missing or damaged, shared by writers."""

import json
import os

import numpy as np
import pytest

from wcviz.record import index as I
from wcviz.record.reader import list_runs
from wcviz.record.store import RunStore


def _store(run_dir, seed=0, overwrite=False):
    return RunStore.create(run_dir, layers=["a", "b"], layer_kinds=["Linear"] * 2,
                           layer_numel=[4, 6], bin_edges=np.tile(np.linspace(-1, 1, 4), (2, 1)),
                           thresholds=["abs=0.1"], attrs={"seed": seed}, epoch_chunk=4,
                           overwrite=overwrite)


def _entries(root):
    return json.loads((root / I.INDEX_NAME).read_text())["runs"]


@pytest.fixture
def reads(monkeypatch):
    """Count the stores whose attributes are read from their zarr.json."""
    calls = []
    original = I.read_root_attrs

    def counting(store):
        calls.append(store.parent.name)
        return original(store)

    monkeypatch.setattr(I, "read_root_attrs", counting)
    return calls


def _finished(root, names):
    for i, name in enumerate(names):
        store = _store(root / name, seed=i)
        store.append(0, 0, {})
        store.finish()


def test_listing_uses_fresh_entries_and_reads_stale_ones(tmp_path, reads):
    root = tmp_path / "runs"
    _finished(root, ["r0", "r1", "r2"])
    assert set(_entries(root)) == {"r0", "r1", "r2"}  # the writers indexed their runs
    reads.clear()
    runs, broken = list_runs(root)
    assert [r.run_id for r in runs] == ["r0", "r1", "r2"] and not broken
    assert reads == []  # every entry fresh: no store read
    assert [r.attrs["seed"] for r in runs] == [0, 1, 2]
    store = RunStore.open(root / "r1")  # a new record: r1's entry is stale until refreshed
    store.append(1, 1, {})
    runs, _ = list_runs(root)
    assert reads == ["r1"] and runs[1].n_epochs == 2 and runs[1].status == "finished"
    reads.clear()
    assert list_runs(root)[0][1].n_epochs == 2 and reads == []  # the listing saved it


def test_never_trusted_over_the_store(tmp_path):
    """An entry that disagrees with its store (edited, or left from a replaced store) loses."""
    root = tmp_path / "runs"
    _finished(root, ["r0", "r1"])
    doc = json.loads((root / I.INDEX_NAME).read_text())
    doc["runs"]["r0"]["attrs"].update(status="failed", n_committed=99)
    doc["runs"]["r0"]["stamp"][2] -= 1  # an older store
    (root / I.INDEX_NAME).write_text(json.dumps(doc))
    _store(root / "r1", seed=7, overwrite=True).release()  # r1 replaced by an empty run (overwrite)
    runs, _ = list_runs(root)
    assert (runs[0].status, runs[0].n_epochs) == ("finished", 1)
    assert (runs[1].status, runs[1].n_epochs, runs[1].attrs["seed"]) == ("running", 0, 7)


def test_rebuilt_when_missing_damaged_or_foreign(tmp_path, reads):
    root = tmp_path / "runs"
    _finished(root, ["r0", "r1"])
    for content in (None, "{not json", json.dumps({"version": 999, "runs": {}})):
        if content is None:
            (root / I.INDEX_NAME).unlink()
        else:
            (root / I.INDEX_NAME).write_text(content)
        reads.clear()
        runs, _ = list_runs(root)
        assert [r.n_epochs for r in runs] == [1, 1] and sorted(reads) == ["r0", "r1"]
        assert set(_entries(root)) == {"r0", "r1"}


def test_removed_runs_leave_the_index_and_nested_runs_key_by_path(tmp_path):
    import shutil

    root = tmp_path / "runs"
    _finished(root / "sweep", ["s0", "s1"])
    _finished(root, ["top"])
    runs, _ = list_runs(root)
    assert [r.run_id for r in runs] == ["sweep/s0", "sweep/s1", "top"]  # the path below the root
    assert {"sweep/s0", "sweep/s1", "top"} <= set(_entries(root))
    shutil.rmtree(root / "sweep" / "s1")
    assert [r.run_id for r in list_runs(root)[0]] == ["sweep/s0", "top"]
    assert "sweep/s1" not in _entries(root)


def test_unwritable_root_lists_from_the_stores(tmp_path, monkeypatch):
    """A root where the index cannot be written (read-only) is listed from the stores."""
    root = tmp_path / "runs"
    _finished(root, ["r0"])
    (root / I.INDEX_NAME).unlink()

    def refuse(path, entries):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(I, "_write", refuse)
    assert list_runs(root)[0][0].n_epochs == 1
    assert not (root / I.INDEX_NAME).exists()


@pytest.mark.slow
def test_concurrent_writers_lose_no_entry(tmp_path):
    """Four processes create and finish runs in one root at once: every run is indexed, the
    file stays valid JSON, and a listing then reads no store."""
    root = tmp_path / "runs"
    root.mkdir()
    pids = []
    for w in range(4):
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 1
            try:
                _finished(root, [f"w{w}-{i}" for i in range(4)])
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    assert all(os.waitpid(pid, 0)[1] == 0 for pid in pids)
    assert len(_entries(root)) == 16
    calls = []
    original = I.read_root_attrs
    I.read_root_attrs = lambda store: calls.append(store) or original(store)
    try:
        runs, _ = list_runs(root)
    finally:
        I.read_root_attrs = original
    assert len(runs) == 16 and calls == [] and {r.status for r in runs} == {"finished"}
