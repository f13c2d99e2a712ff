"""wcviz.report.bands and wcviz.report.palette: bands from any recorded quantile set, one colour rule."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import _fixture_runs as fx
import wcviz
from wcviz.report.bands import band_label, band_pairs, median_quantile, quantile_label
from wcviz.report.palette import METHOD_COLORS, PALETTE, run_color, run_colors

SEVEN = (0, .05, .25, .5, .75, .95, 1)


@pytest.mark.parametrize("levels, pairs, median", [
    (SEVEN, [(0.0, 1.0), (0.05, 0.95), (0.25, 0.75)], 0.5),
    ((0.0, 0.0668, 0.1587, 0.3085, 0.5, 0.6915, 0.8413, 0.9332, 1.0),
     [(0.0, 1.0), (0.0668, 0.9332), (0.1587, 0.8413), (0.3085, 0.6915)], 0.5),
    ((0.0, 0.1, 0.5, 0.8, 1.0), [(0.0, 1.0)], 0.5),  # 0.1 and 0.8 have no mirror: no band
    ((0.25, 0.75), [(0.25, 0.75)], None),
    ((0.5,), [], 0.5),
])
def test_pairs_and_median_come_from_the_levels(levels, pairs, median):
    assert band_pairs(levels) == pairs
    assert median_quantile(levels) == median
    assert band_pairs(list(reversed(levels))) == pairs  # order of the levels does not matter


def test_pairs_read_the_dataset_quantile_coordinate():
    ds = xr.Dataset(coords={"quantile": np.array(SEVEN, dtype=float)})
    assert band_pairs(ds) == band_pairs(SEVEN)
    assert median_quantile(ds) == 0.5
    with pytest.raises(ValueError, match="no 'quantile' coordinate"):
        band_pairs(xr.Dataset(coords={"epoch": [0.0]}))


def test_labels_are_exact_percents():
    assert band_label(0.0, 1.0) == "min–max"
    assert band_label(0.0668, 0.9332) == "6.68–93.32 %"
    assert band_label(0.05, 0.95) == "5–95 %"
    assert [quantile_label(q) for q in (0.0, 0.1587, 0.5, 1.0)] == ["min", "15.87 %", "median", "max"]


def test_seven_level_recorder_store_pairs(tmp_path):
    """A store written by the Recorder with a 7-level set yields its own three bands."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(5, 3))
    with wcviz.Recorder(model, tmp_path / "run", quantiles=SEVEN) as rec:
        rec.record(0.0)
    ds = wcviz.open_run(tmp_path / "run")
    assert [band_label(*p) for p in band_pairs(ds)] == ["min–max", "5–95 %", "25–75 %"]
    w = model[0].weight.detach().double().flatten()
    lo, hi = band_pairs(ds)[-1]
    np.testing.assert_allclose(ds.weight_quantile.sel(quantile=hi).values[0],
                               torch.quantile(w, hi).item(), rtol=1e-6)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"base": wcviz.open_run(fx.baseline_run(root / "base")),
            "wc": wcviz.open_run(fx.wc_run(root / "wc")), "wc_path": root / "wc",
            "learn": wcviz.open_run(fx.learnable_run(root / "learn")),
            "seeds": [wcviz.open_run(p) for p in fx.seed_group(root / "seeds", "baseline")]}


def test_colour_is_the_method_s_whatever_the_order(mixed):
    runs = [mixed["learn"], mixed["base"], mixed["wc"]]
    want = [METHOD_COLORS["arctan+learnable"], METHOD_COLORS["none"], METHOD_COLORS["arctan"]]
    assert run_colors(runs) == want
    assert run_colors(runs[::-1]) == want[::-1]
    assert [run_color(ds, runs) for ds in runs] == want


def test_runs_of_one_method_are_told_apart(mixed):
    runs = [*mixed["seeds"], mixed["wc"]]
    colors = run_colors(runs)
    assert colors[0] == METHOD_COLORS["none"] and colors[-1] == METHOD_COLORS["arctan"]
    assert len(set(colors)) == len(runs)  # the other seeds take colours no method here claims
    assert set(colors) <= set(PALETTE)


def test_run_color_matches_by_run_id_and_refuses_strangers(mixed):
    runs = [mixed["base"], mixed["wc"]]
    reopened = wcviz.open_run(mixed["wc_path"])  # another object of the same run
    assert run_color(reopened, runs) == METHOD_COLORS["arctan"]
    with pytest.raises(ValueError, match="not among the given runs"):
        run_color(mixed["learn"], runs)
