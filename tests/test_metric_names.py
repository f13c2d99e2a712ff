"""Metric names as users write them (val/acc, lr-SGD, epoch, a): stored, read back by that name."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import wcviz
from wcviz.report import analysis, tables
from wcviz.record.metrics import metric, metric_names, metric_variable, split_kind

ODD = {"val/acc": 0.5, "lr-SGD": 0.1, "eval_loss": 1.25, "epoch": 1.0, "a": 2.0, "val-acc": 0.25,
       "train_loss": 0.75, "grad_norm": 3.0}


def _run(path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    rec = wcviz.Recorder(model, path)
    rec.record(0)
    rec.record(1, ODD)
    rec.finish()
    return path


def test_any_metric_name_is_stored_and_read_back_by_that_name(tmp_path):
    ds = wcviz.open_run(_run(tmp_path / "run"))
    names = metric_names(ds)
    assert set(ODD) <= set(names)
    for name, value in ODD.items():
        assert metric(ds, name).values.tolist()[1] == value, name
        assert analysis.metric_values(ds, name)[1] == value
    # the schema keeps its meaning: epoch is the record axis, a the per-layer scale
    assert ds.epoch.values.tolist() == [0.0, 1.0] and ds.a.dims == ("epoch", "layer")
    assert metric_variable(ds, "val/acc") == "metric_val_acc"
    assert metric_variable(ds, "val-acc") == "metric_val_acc_2"  # same stem, own variable
    assert metric_variable(ds, "grad_norm") == "grad_norm"  # identifiers stay as they were
    with pytest.raises(KeyError, match="no metric 'nope'"):
        metric(ds, "nope")


def test_resume_writes_the_same_variables(tmp_path):
    path = _run(tmp_path / "run")
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    rec = wcviz.Recorder(model, path, resume=True)
    rec.record(2, {"val/acc": 0.75, "epoch": 2.0})
    ds = wcviz.open_run(path)
    assert metric(ds, "val/acc").values.tolist() == [pytest.approx(np.nan, nan_ok=True), 0.5, 0.75]
    assert [n for n in metric_names(ds) if n == "epoch"] == ["epoch"]


def test_export_and_inspect_use_the_users_names(tmp_path):
    path = _run(tmp_path / "run")
    out = tmp_path / "t.csv"
    cli = [sys.executable, "-m", "wcviz"]
    subprocess.run([*cli, "export", str(path), "--out", str(out), "--no-histogram"], check=True)
    import pandas as pd

    table = pd.read_csv(out)
    rows = table[table["layer"].isna()]
    assert rows.set_index("statistic")["value"].to_dict() == pytest.approx(ODD)
    text = subprocess.run([*cli, "inspect", str(path)], check=True, capture_output=True,
                          text=True).stdout
    assert "val/acc 0.5" in text and "lr-SGD 0.1" in text


@pytest.mark.parametrize("name,expected", [
    ("val/acc", ("val", "acc")), ("eval_loss", ("val", "loss")), ("train_loss", ("train", "loss")),
    ("test_acc", ("test", "acc")), ("valid-accuracy", ("val", "acc")), ("lr-SGD", ("", "lr-SGD")),
    ("epoch", ("", "epoch")), ("val_f1", ("val", "f1")),
])
def test_split_and_kind_of_framework_names(name, expected):
    assert split_kind(name) == expected


def test_dashboard_metrics_frame_carries_user_names(tmp_path):
    from wcviz.app import data

    _run(tmp_path / "run")
    run = data.scan(data.runs_root(tmp_path)).runs[0]
    frame = data.metrics([run])
    got = frame.set_index("metric")[["split", "kind", "value"]]
    assert got.loc["val/acc"].tolist() == ["val", "acc", 0.5]
    assert got.loc["eval_loss"].tolist() == ["val", "loss", 1.25]
    assert got.loc["lr-SGD"].tolist() == ["", "lr-SGD", 0.1]


def test_figures_tables_and_dashboard_find_framework_names(tmp_path):
    from wcviz.app import data
    from wcviz.report import plots

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with wcviz.Recorder(model, tmp_path / "lit", attrs={"model": "tiny", "dataset": "toy"}) as rec:
        rec.record(0)
        for epoch in (1, 2):
            rec.record(epoch, {"val/acc": 0.25 * epoch, "test/acc": 0.2 * epoch,
                               "eval_loss": 2.0 / epoch})
    ds = wcviz.open_run(tmp_path / "lit")
    assert analysis.metric_values(ds, "val_acc").tolist()[1:] == [0.25, 0.5]
    assert analysis.best_val_test_acc(ds) == (2.0, 0.4)
    assert analysis.run_row(ds)["last_test_acc"] == pytest.approx(40.0)
    fig = plots.metrics_curves([ds])
    gids = {line.get_gid().split(":")[0] for ax in fig.axes for line in ax.get_lines()}
    assert gids == {"val_acc", "val_loss", "test_acc"}
    table = tables.accuracy_table([ds])
    assert table["last_mean"].tolist() == [pytest.approx(40.0)]
    summary = data.accuracy_summary(data.scan(data.runs_root(tmp_path)).runs[0])
    assert (summary["best_val_epoch"], summary["best_val_test_acc"]) == (2.0, pytest.approx(40.0))
