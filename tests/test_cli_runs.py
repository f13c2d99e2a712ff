"""`wcviz inspect` and `wcviz export` through the real dispatcher (and one real process)."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from torch import nn

import wcviz
from wcviz.cli import main
from wcviz.record.stats import DEFAULT_THRESHOLDS, QUANTILES


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs root with a finished learnable-WC run and a running plain one."""
    root = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    for name, companded in (("wc", True), ("plain", False)):
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
        if companded:
            wcviz.compand(model, "arctan", a=0.5, b=1.0, learnable="fine")
        rec = wcviz.Recorder(model, root / name, config={"preset": "toy", "lr": 0.1},
                             attrs={"model": "toy", "dataset": "noise", "seed": 1})
        rec.record(0)
        rec.record(0.5, {"train_loss": 2.0}, step=5)
        rec.record(1, {"train_loss": 1.5, "val_acc": 0.25}, step=10)
        if companded:
            rec.finish()
    return root


def test_inspect_summary(runs, capsys):
    assert main(["inspect", str(runs / "wc")]) == 0
    out = capsys.readouterr().out
    assert "run       wc" in out
    assert "status    finished   records 3 (epochs 0 to 1, 1 sub-epoch)" in out
    assert "model     toy   dataset noise   seed 1" in out
    assert "method    arctan  a=0.5  b=1  learnable=fine" in out
    assert "name      learnable WC (init a=0.5, b=1), seed 1" in out  # the one display name
    assert 'config    lr=0.1  preset="toy"' in out
    assert "layers    2 (1 Conv2d, 1 Linear; 42 weights)" in out
    assert "last      epoch 1, step 10" in out
    assert "train_loss 1.5" in out and "val_acc 0.25" in out
    assert "near zero abs=0.001:" in out and "a [" in out
    assert main(["inspect", str(runs / "plain")]) == 0
    assert "method    none (plain weights)" in capsys.readouterr().out


@pytest.mark.parametrize("cmd", [["inspect"], ["export"]])
def test_bad_path_is_one_line_exit_2(tmp_path, capsys, cmd):
    assert main([*cmd, str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run store" in err and "Traceback" not in err


def test_inspect_other_schema(runs, tmp_path, capsys):
    shutil.copytree(runs / "plain", tmp_path / "old")
    meta = tmp_path / "old" / "record.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["schema_version"] = 0
    meta.write_text(json.dumps(doc))
    assert main(["inspect", str(tmp_path / "old")]) == 2
    assert "schema version 0" in capsys.readouterr().err


def test_export_csv_long_form(runs, tmp_path, capsys):
    out = tmp_path / "all.csv"
    assert main(["export", str(runs / "wc"), str(runs / "plain"), "--out", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["run", "layer", "epoch", "statistic", "value", "bin_lo",
                                   "bin_hi"]
    assert set(table.run) == {"wc", "plain"}
    ds = wcviz.open_run(runs / "wc")
    q = table[(table.run == "wc") & (table.layer == "2") & (table.epoch == 0.5) &
              (table.statistic == "weight_quantile@0.5")].value
    assert q.item() == pytest.approx(ds.weight_quantile.sel(layer="2", quantile=0.5).values[1])
    loss = table[(table.run == "wc") & (table.statistic == "train_loss")]
    assert loss.layer.tolist() == ["", ""] and loss.value.tolist() == [2.0, 1.5]  # NaN dropped
    assert not ((table.run == "plain") & table.statistic.str.startswith("v_quantile")).any()
    hist = table[(table.run == "plain") & table.statistic.str.startswith("weight_histogram@")]
    assert hist.groupby(["layer", "epoch"]).value.sum().tolist() == [18, 18, 18, 24, 24, 24]
    n_wc = 3 * 2 * (2 * len(QUANTILES) + len(DEFAULT_THRESHOLDS) + 81 + 6 + 2) + 2 + 1
    # update_ratio (NaN at the first record) and original_quantile (v of each companded layer)
    n_wc += 2 * 2 + 3 * 2 * len(QUANTILES)
    assert (table.run == "wc").sum() == n_wc


def test_export_root_netcdf_and_stdout(runs, tmp_path, capsys):
    nc = tmp_path / "runs.nc"
    assert main(["export", str(runs), "--format", "netcdf", "--out", str(nc),
                 "--no-histogram"]) == 0
    table = xr.open_dataset(nc)
    assert set(np.unique(table.run.values)) == {"wc", "plain"}
    assert not any(str(s).startswith("weight_histogram") for s in table.statistic.values)
    capsys.readouterr()
    assert main(["export", str(runs / "plain")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "run,layer,epoch,statistic,value,bin_lo,bin_hi" and len(lines) > 100


def test_export_bad_arguments(runs, tmp_path, capsys):
    assert main(["export", str(runs / "wc"), "--format", "netcdf"]) == 2
    assert "needs --out" in capsys.readouterr().err
    assert main(["export", str(runs / "wc"), "--out", str(tmp_path / "no" / "x.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    for fmt in ("csv", "netcdf"):  # --out names a directory: one line, no traceback
        assert main(["export", str(runs / "wc"), "--format", fmt, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "cannot write" in err[0]


def test_export_never_writes_into_a_run(runs, tmp_path, capsys):
    # `--out RUN/config.json` overwrote the run's config with CSV; tensorboard --out ROOT
    # dropped event files into every run folder.
    root = tmp_path / "root"
    shutil.copytree(runs, root)
    config = (root / "wc" / "config.json").read_bytes()
    for fmt, out in (("csv", root / "wc" / "config.json"), ("netcdf", root / "wc" / "x.nc"),
                     ("parquet", root / "wc" / "record.zarr" / "x.parquet"),
                     ("tensorboard", root), ("tensorboard", root / "wc")):
        assert main(["export", str(root), "--format", fmt, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "inside the run" in err[0] and "--out" in err[0], err
    assert (root / "wc" / "config.json").read_bytes() == config
    assert sorted(p.name for p in (root / "wc").iterdir()) == sorted(
        p.name for p in (runs / "wc").iterdir())
    assert not (root / "wc" / "x.nc").exists()


def test_real_cli_process(runs):
    proc = subprocess.run([sys.executable, "-m", "wcviz", "inspect", str(runs / "wc")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "status    finished" in proc.stdout


def test_inspect_flags_interrupted_run(runs, tmp_path, capsys):
    shutil.copytree(runs / "plain", tmp_path / "dead")
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    meta = tmp_path / "dead" / "record.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["pid"] = gone.pid
    meta.write_text(json.dumps(doc))
    assert main(["inspect", str(tmp_path / "dead")]) == 0
    assert "running (its writer process is gone: interrupted" in capsys.readouterr().out
    assert main(["inspect", str(runs / "plain")]) == 0  # its Recorder was dropped unfinished
    assert "status    running (no writer since" in capsys.readouterr().out
    live = wcviz.Recorder(nn.Linear(2, 2), tmp_path / "live")  # held: its writer is alive
    live.record(0)
    assert main(["inspect", str(tmp_path / "live")]) == 0
    assert "status    running   records 1" in capsys.readouterr().out
    live.finish()
