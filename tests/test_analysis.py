"""wcviz.report.analysis and wcviz.report.tables on real fixture stores: run and layer tables,
thresholds, the accuracy tables over seeds."""

from __future__ import annotations

import io
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import _fixture_runs as fx
import wcviz
from wcviz.report import analysis as an
from wcviz.report import tables
from wcviz.errors import WcvizError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A runs root: 3 baseline seeds, 3 WC seeds, 2 learnable seeds, one failed run."""
    root = tmp_path_factory.mktemp("root")
    fx.seed_group(root, "baseline")
    fx.seed_group(root, "wc")
    fx.seed_group(root, "learnable", seeds=(0, 1))
    fx.baseline_run(root / "crashed", seed=9, status="failed")
    return root


def expected_stats(root, kind: str) -> dict:
    """Independent mean ± std of best-val and last test accuracy (%) over a group's seeds."""
    best, last = [], []
    for path in sorted(root.glob(f"{kind}-s*")):
        ds = wcviz.open_run(path)
        val, test, ep = ds.val_acc.values, ds.test_acc.values, ds.epoch.values
        trained = [i for i in range(len(ep)) if ep[i] >= 1]
        i = max(trained, key=lambda k: (val[k], -k))  # first best validation epoch
        best.append(100 * test[i])
        last.append(100 * test[-1])
    return {"n": len(best), "best_mean": statistics.fmean(best), "best_std": statistics.stdev(best),
            "last_mean": statistics.fmean(last), "last_std": statistics.stdev(last)}


def row(table, method, learnable=""):
    sel = table[(table["method"] == method) & (table["learnable"] == learnable)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_accuracy_table_equals_independent_mean_std(root):
    table = tables.accuracy_table(root)
    assert len(table) == 3  # the failed run is left out
    for method, learnable, kind in (("none", "", "baseline"), ("arctan", "", "wc"),
                                    ("arctan", "fine", "learnable")):
        got, want = row(table, method, learnable), expected_stats(root, kind)
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-12), (kind, key)
    base, wc = row(table, "none"), row(table, "arctan")
    assert wc["delta_best"] == pytest.approx(wc["best_mean"] - base["best_mean"])
    assert wc["delta_last"] == pytest.approx(wc["last_mean"] - base["last_mean"])
    assert base["note"] == "baseline" and np.isnan(base["delta_best"])


def test_unfinished_runs_only_on_request(root):
    table = tables.accuracy_table(root, finished_only=False)
    assert row(table, "none")["n"] == 4


def test_significance_note_pairs_seeds():
    base = {0: 94.0, 1: 94.1, 2: 93.9, 3: 94.2}
    better = {0: 94.4, 1: 94.6, 2: 94.3, 3: 94.5}
    gap = tables.gap_interval(better, base)
    d = np.array([0.4, 0.5, 0.4, 0.3])
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert gap.ci_t == pytest.approx((d.mean() - half, d.mean() + half))
    assert tables.significance_note(gap).endswith("excludes 0")
    mixed = tables.gap_interval({0: 94.4, 1: 93.6, 2: 94.3}, base)  # sign changes between seeds
    assert "no verdict (Holm p = " in tables.significance_note(mixed)
    two = tables.gap_interval({0: 95.0, 1: 95.0}, base)
    assert "no verdict (2 paired seed(s) < 3)" in tables.significance_note(two)
    assert tables.significance_note(tables.gap_interval({7: 95.0}, base)) == "no seed shared with the baseline"


def test_table_marks_a_gap_whose_ci_excludes_0(tmp_path):
    fx.seed_group(tmp_path, "baseline")
    for s in (0, 1, 2):  # the fixture's WC adds exactly 2 points to every test accuracy
        fx.wc_run(tmp_path / f"wc-s{s}", seed=s)
    table = tables.accuracy_table(tmp_path)
    wc = row(table, "arctan")
    assert wc["ci_excludes_0"] and wc["ci_low"] == pytest.approx(2.0)
    md = tables.format_table(table, "md")
    assert "| +2.00* |" in md and "Holm-adjusted p < 0.05" in md and "needs ≥ 3 paired seeds" in md


def test_table_formats(root):
    table = tables.accuracy_table(root)
    wc = row(table, "arctan")
    md = tables.format_table(table, "md")
    lines = md.strip().splitlines()
    assert lines[0].startswith("| dataset | model | seeds | best-val test acc (%)")
    # WC and learnable WC share the baseline: the second footnote says they are correlated
    assert lines[-3:] == [tables.GAP_FOOTNOTE, "", tables.SHARED_FOOTNOTE] and lines[-4] == ""
    lines = lines[:-4]
    assert len(lines) == 2 + len(table)
    assert f"{wc['best_mean']:.2f} ± {wc['best_std']:.2f}" in md
    # rows named by the one run display name (run_label), in the paper's order: baseline
    # first, then WC, then learnable WC
    assert [r.split(" | ")[1] for r in lines[2:]] == [
        "tinynet", "tinynet + WC a=0.8, b=0.5", "tinynet + learnable WC (init a=0.5, b=1)"]
    tex = tables.format_table(table, "tex")
    assert tex.startswith("\\begin{tabular}") and "\\toprule" in tex and tex.rstrip().endswith("\\end{tabular}")
    assert f"{wc['best_mean']:.2f} $\\pm$ {wc['best_std']:.2f}" in tex
    assert "(\\%)" in tex and "tinynet" in tex
    back = pd.read_csv(io.StringIO(tables.format_table(table, "csv")))
    np.testing.assert_allclose(back["best_mean"], table["best_mean"], atol=1e-4)
    np.testing.assert_allclose(back["last_std"], table["last_std"], atol=1e-4)
    with pytest.raises(WcvizError, match="md, tex or csv"):
        tables.format_table(table, "html")


def test_runs_table_rows(root):
    df = an.runs_table(root)
    assert len(df) == 9
    first = df[df["run_id"] == wcviz.open_run(root / "wc-s1").attrs["run_id"]].iloc[0]
    assert (first["method"], first["method_label"], first["seed"], first["n_epochs"]) == ("arctan", "WC", 1, 6)


def test_layer_table(root):
    df = an.layer_table([root / "baseline-s0"])
    assert list(df["layer"]) == list(fx.LAYERS) and list(df["depth"]) == [0, 1, 2, 3]
    ds = wcviz.open_run(root / "baseline-s0")
    np.testing.assert_allclose(df["w_max"], ds.weight_quantile.sel(quantile=1.0).isel(epoch=-1).values)
    np.testing.assert_allclose(df["near_zero[rel=0.1]"],
                               ds.near_zero_fraction.sel(threshold="rel=0.1").isel(epoch=-1).values)


def test_select_threshold(root):
    ds = wcviz.open_run(root / "baseline-s0")
    assert an.select_threshold(ds) == "rel=0.5"  # the largest relative one
    assert an.select_threshold(ds, "abs=0.01") == "abs=0.01"
    assert an.select_threshold(ds, "abs=1e-2") == "abs=0.01"
    assert an.select_threshold(ds, 0.001) == "abs=0.001"
    with pytest.raises(WcvizError, match="it records: abs=0.001, abs=0.01, rel=0.1, rel=0.5"):
        an.select_threshold(ds, "rel=0.2")


def test_default_threshold_is_claim_ii_tail_safe_measure(tmp_path):
    """With the recorder's default thresholds (std and med among them), figures and the
    dashboard show rel=0.5 by default: the measure claim (ii) is decided on, which clipping the
    tails cannot lower (std=0.5 can)."""
    import torch

    with wcviz.Recorder(torch.nn.Sequential(torch.nn.Linear(8, 8)), tmp_path / "r") as rec:
        rec.record(0)
    ds = wcviz.open_run(tmp_path / "r")
    assert {"std=0.5", "med=0.5", "rel=0.5"} <= set(ds.threshold.values.tolist())
    assert an.select_threshold(ds) == "rel=0.5"


def test_bound_of_scales_equals_bound_over_epochs_and_falls_back_to_fixed_a():
    import xarray as xr

    a = np.array([0.5, np.nan, 0.7])  # epoch 1 did not record a: the fixed attribute stands in
    dims = ("epoch", "layer")
    ds = xr.Dataset({"a": (dims, a[:, None]), "b": (dims, np.ones((3, 1)))},
                    coords={"layer": ["fc"]}, attrs={"method": "arctan", "a": 2.0, "b": 1.0})
    want = np.array([0.5, 2.0, 0.7]) * np.pi / 2
    np.testing.assert_allclose(an.bound_over_epochs(ds, "fc"), want)
    light = xr.Dataset(attrs=ds.attrs)  # attributes only, as the dashboard has them
    np.testing.assert_allclose(an.bound_of_scales(light, a, np.ones(3)), want)
    none = xr.Dataset(attrs={"method": "none"})
    assert np.isinf(an.bound_of_scales(none, np.full(3, np.nan), np.full(3, np.nan))).all()
