"""Adversarial cases: damaged stores and concurrent writers (issue 10).

Each damage is done to a real store on disk; every reader (``open_run``, the CLI in a real
subprocess) must answer with one line naming the array and the records, never NaN data or a
traceback.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import wcviz
from _fixture_runs import baseline_run, wc_run
from wcviz.errors import WcvizError

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, stdin=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "wcviz", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def _chunk(run: Path, array: str) -> Path:
    """The array's first chunk file (c/0, or c/0/0/0 for a per-layer array)."""
    return min(p for p in (run / "record.zarr" / array / "c").rglob("*") if p.is_file())


def _set_attr(run: Path, **attrs):
    meta = run / "record.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"].update(attrs)
    meta.write_text(json.dumps(doc))


def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


DAMAGES = {
    "deleted chunk": (lambda r: _chunk(r, "val_acc").unlink(),
                      r"array 'val_acc': records 0-5 are missing"),
    "truncated chunk": (lambda r: _truncate(_chunk(r, "weight_quantile")),
                        r"array 'weight_quantile': records 0-5 fail their checksum"),
    "garbage chunk": (lambda r: _chunk(r, "train_loss").write_bytes(os.urandom(64)),
                      r"array 'train_loss': records 0-5 fail their checksum"),
    "one flipped byte": (lambda r: _flip(_chunk(r, "a")), r"array 'a': records 0-5 fail"),
    "n_committed inflated": (lambda r: _set_attr(r, n_committed=100000),
                             r"n_committed says 100000 records but array '\w+' holds 128 rows"),
    "truncated array zarr.json": (lambda r: _truncate(r / "record.zarr" / "val_loss" / "zarr.json"),
                                  r"array 'val_loss' has an unreadable zarr.json"),
    "deleted array zarr.json": (lambda r: (r / "record.zarr" / "lr" / "zarr.json").unlink(),
                                r"array 'lr' has lost its zarr.json"),
    "deleted static chunk": (lambda r: _chunk(r, "bin_edges").unlink(),
                             r"array 'bin_edges': its values are missing"),
}


def _flip(path: Path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def damaged(tmp_path, request):
    run = wc_run(tmp_path / "runs" / "wc")
    baseline_run(tmp_path / "runs" / "base")
    damage, match = DAMAGES[request.param]
    damage(run)
    return run, match


@pytest.mark.parametrize("damaged", list(DAMAGES), indirect=True)
def test_open_run_names_the_damaged_array_and_records(damaged):
    run, match = damaged
    with pytest.raises(WcvizError, match=f"damaged run store .*{match}"):
        wcviz.open_run(run)


@pytest.mark.slow
@pytest.mark.parametrize("damaged", ["deleted chunk", "garbage chunk",
                                     "truncated array zarr.json"], indirect=True)
def test_cli_readers_give_one_line_and_keep_healthy_runs(damaged):
    run, match = damaged
    for args in (["inspect", run], ["compare", run.parent / "base", run],
                 ["export", run.parent, "--out", run.parent.parent / "out.csv"]):
        proc = _cli(*args)
        lines = proc.stderr.strip().splitlines()
        assert "Traceback" not in proc.stderr and "Task" not in proc.stderr, proc.stderr
        if args[0] == "export":  # a folder of runs: the healthy one is exported, the bad named
            assert any("wc" in line and "damaged" in line for line in lines), proc.stderr
            assert (run.parent.parent / "out.csv").is_file()
        else:
            assert proc.returncode == 2 and len(lines) == 1, proc.stderr
            assert "damaged run store" in lines[0]


def test_n_committed_beyond_written_rows_of_an_old_store_is_refused(tmp_path):
    run = wc_run(tmp_path / "wc")
    _set_attr(run, n_committed=7)  # one more than written: row 6 is blank (NaN epoch)
    with pytest.raises(WcvizError, match="record 6 has no epoch"):
        wcviz.open_run(run)


def test_new_store_has_checksums_and_plain_xarray_still_reads_it(tmp_path):
    import xarray as xr

    run = wc_run(tmp_path / "wc")
    meta = json.loads((run / "record.zarr" / "val_acc" / "zarr.json").read_text())
    assert [c["name"] for c in meta["codecs"]][-1] == "crc32c"
    ds = xr.open_zarr(run / "record.zarr", consolidated=False)
    assert ds.sizes["epoch"] == 128 and float(ds.val_acc[0]) == float(wcviz.open_run(run).val_acc[0])


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))


def test_two_recorders_in_one_process_cannot_both_write(tmp_path):
    """A re-run notebook cell: the second Recorder is refused until the first is finished."""
    model = _tiny()
    first = wcviz.Recorder(model, tmp_path / "run", config={"x": 1})
    first.record(0, {"train_loss": 0.0})
    for kwargs in ({"resume": True}, {"overwrite": True}):
        with pytest.raises(WcvizError, match="already open for writing in this process"):
            wcviz.Recorder(model, tmp_path / "run", config={"x": 1}, **kwargs)
    first.record(1, {"train_loss": 1.0})
    first.finish()
    second = wcviz.Recorder(model, tmp_path / "run", config={"x": 1}, resume=True)
    second.record(2, {"train_loss": 2.0})
    del second  # dropped without finish (the cell's name rebound): the run is free again
    third = wcviz.Recorder(model, tmp_path / "run", config={"x": 1}, resume=True)
    third.record(3, {"train_loss": 3.0})
    third.finish()
    assert wcviz.open_run(tmp_path / "run").train_loss.values.tolist() == [0, 1, 2, 3]


@pytest.mark.slow
def test_inspect_into_a_closed_pipe_is_quiet(tmp_path):
    run = wc_run(tmp_path / "wc")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(3):
        proc = subprocess.run(f"{sys.executable} -m wcviz inspect {run} --all-layers | head -1",
                              shell=True, capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=120)
        assert proc.stdout.count("\n") == 1 and proc.stderr == "", proc.stderr


def test_figures_of_a_root_leave_out_a_damaged_run_with_a_line(tmp_path, capsys):
    from wcviz.cli import main

    root = tmp_path / "runs"
    baseline_run(root / "base")
    wc_run(root / "wc")
    _chunk(root / "wc", "weight_quantile").write_bytes(b"garbage")
    assert main(["figures", str(root), "--out", str(tmp_path / "fig"), "--format", "png"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "skipping broken run" in err[0] and "'weight_quantile'" in err[0]
    assert list((tmp_path / "fig").glob("*.png"))


def test_figures_of_a_root_name_a_run_whose_attributes_are_unreadable(tmp_path, capsys):
    from wcviz.cli import main

    root = tmp_path / "runs"
    baseline_run(root / "base")
    wc_run(root / "wc")
    (root / "wc" / "record.zarr" / "zarr.json").write_text("{not json")
    assert main(["figures", str(root), "--out", str(tmp_path / "fig"), "--format", "png"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "skipping broken run" in err[0] and "wc" in err[0]


def test_a_metric_first_given_after_many_records_is_no_damage(tmp_path):
    """A metric array created mid-run has every chunk of the earlier records (NaN)."""
    rec = wcviz.Recorder(_tiny(), tmp_path / "run", epoch_chunk=2)
    for epoch in range(5):
        rec.record(epoch, {"train_loss": float(epoch)})
    rec.record(5, {"grad_norm": 1.5})
    rec.finish()
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.grad_norm.values.tolist()[-1] == 1.5 and ds.sizes["epoch"] == 6
    assert not list((tmp_path / "run" / "record.zarr").glob(".*creating"))
