"""``wcviz export --format tensorboard|parquet``, and histogram rows that carry their bin edges."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import wcviz
from wcviz.cli import main
from _engines import framework

LAYERS = ["0", "2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "wc"
    torch.manual_seed(0)
    model = wcviz.compand(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)),
                          "arctan", a=1.0, b=0.5, learnable="fine")
    opt = wcviz.build_optimizer(model, "sgd", lr=0.5)
    with wcviz.Recorder(model, path, bins=8) as rec:
        rec.record(0, step=0)
        for step in (1, 2):
            loss = nn.functional.cross_entropy(model(torch.randn(8, 4)), torch.randint(0, 3, (8,)))
            opt.zero_grad(), loss.backward(), opt.step()
            rec.record(step, {"train_loss": loss, "val/acc": 0.25 * step}, step=step * 10)
    return path


def test_tensorboard_export_opens_in_tensorboards_reader(run, tmp_path, capsys):
    accumulator = framework("tensorboard.backend.event_processing.event_accumulator")
    assert main(["export", str(run), "--format", "tensorboard", "--out", str(tmp_path / "tb")]) == 0
    assert "tensorboard --logdir" in capsys.readouterr().err
    acc = accumulator.EventAccumulator(str(tmp_path / "tb" / "wc"), size_guidance={"histograms": 0,
                                                                                  "scalars": 0})
    acc.Reload()
    ds = wcviz.open_run(run)
    tags = acc.Tags()
    assert {f"weight_histogram/{layer}" for layer in LAYERS} <= set(tags["histograms"])
    for j, layer in enumerate(LAYERS):
        events = acc.Histograms(f"weight_histogram/{layer}")
        assert [e.step for e in events] == [0, 10, 20]
        edges = ds.bin_edges.values[j]
        for k, event in enumerate(events):
            hist = event.histogram_value
            np.testing.assert_allclose(hist.bucket_limit, edges)  # the real edges
            assert list(hist.bucket)[1:] == ds.weight_histogram.values[k, j].tolist()
            assert hist.num == ds.layer_numel.values[j]
        a = [e.value for e in acc.Scalars(f"a/{layer}")]
        np.testing.assert_allclose(a, ds.a.values[:, j], rtol=1e-6)
        near = acc.Scalars(f"near_zero_fraction/rel=0.1/{layer}")
        np.testing.assert_allclose([e.value for e in near],
                                   ds.near_zero_fraction.sel(threshold="rel=0.1").values[:, j],
                                   rtol=1e-6)
    assert [(e.step, e.value) for e in acc.Scalars("val/acc")] == [(10, 0.25), (20, 0.5)]
    assert [e.value for e in acc.Scalars("wcviz/epoch")] == [0, 1, 2]


def test_parquet_and_csv_histogram_rows_carry_bin_edges(run, tmp_path):
    framework("pyarrow")
    out = tmp_path / "t.parquet"
    assert main(["export", str(run), "--format", "parquet", "--out", str(out)]) == 0
    csv = tmp_path / "t.csv"
    assert main(["export", str(run), "--out", str(csv)]) == 0
    ds = wcviz.open_run(run)
    for table in (pd.read_parquet(out), pd.read_csv(csv, dtype={"layer": str}, keep_default_na=False,
                                                        na_values={"bin_lo": [""], "bin_hi": [""]})):
        hist = table[table.statistic == "weight_histogram@bin=3"]
        assert len(hist) == 6
        row = hist[(hist.layer == "2") & (hist.epoch == 1)].iloc[0]
        edges = ds.bin_edges.sel(layer="2").values
        assert (row.bin_lo, row.bin_hi) == pytest.approx((edges[3], edges[4]))
        assert row.value == ds.weight_histogram.sel(layer="2").values[1, 3]
        assert table[~table.statistic.str.startswith("weight_histogram")].bin_lo.isna().all()
        assert table[table.statistic == "val/acc"].value.tolist() == [0.25, 0.5]


def test_export_format_needs_out(run, capsys):
    for fmt in ("parquet", "tensorboard"):
        assert main(["export", str(run), "--format", fmt]) == 2
        assert "needs --out" in capsys.readouterr().err
