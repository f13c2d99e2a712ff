"""The one chart vocabulary (:mod:`wcviz.report.charts`) that the dashboard and the HTML report
share: what a reader sees on its axes, legends and pickers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import wcviz
from _fixture_runs import LAYERS, wc_run

alt = pytest.importorskip("altair")
from wcviz.report import charts, frames  # noqa: E402


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    run = wc_run(tmp_path_factory.mktemp("runs") / "wc")
    out = frames.all_quantiles(wcviz.open_run(run), "wc")
    return out.assign(name="WC a=0.8, b=0.5", color="#E69F00")


def _metrics(values, kind="acc") -> pd.DataFrame:
    return pd.DataFrame({"run": "r", "name": "r", "color": "#000", "epoch": np.arange(len(values)),
                         "metric": f"val_{kind}", "split": "val", "kind": kind, "value": values})


def test_metrics_draw_accuracy_in_percent():
    frame = pd.concat([_metrics([0.5, 0.75]), _metrics([2.0, 1.0], "loss")], ignore_index=True)
    shown = charts.as_percent(frame)
    assert shown.loc[shown["kind"] == charts.ACC_PERCENT, "value"].tolist() == [50.0, 75.0]
    assert shown.loc[shown["kind"] == "loss", "value"].tolist() == [2.0, 1.0]
    already = charts.as_percent(_metrics([50.0, 75.0]))  # a run that logged percent stays so
    assert already["value"].tolist() == [50.0, 75.0]
    spec = charts.metrics_chart(frame).to_dict()
    assert spec["facet"]["column"]["sort"] == ["loss", charts.ACC_PERCENT]


def test_sweep_colour_bar_labels_are_rounded():
    cells = pd.DataFrame({"a": [1.0, 2.0], "b": [0.5, 0.5], "best_val_test_acc": [98.328691, 97.1],
                          "best_val_test_acc_std": [0.1, 0.2], "best_val_test_acc_n": [3, 3],
                          "runs": ["x", "y"]})
    spec = json.dumps(charts.sweep_heatmap(cells, "best_val_test_acc", 97.5).to_dict())
    assert '"format": ".1f"' in spec


def test_symlog_axis_ticks_include_zero(wide):
    one = wide[wide["layer"] == LAYERS[0]]
    cols = frames.band_columns(one)
    ticks = charts.symlog_ticks(one, cols, None, charts.symlog_constant(one, cols))
    assert 0.0 in ticks and ticks == sorted(ticks)
    assert any(t < 0 for t in ticks) and any(t > 0 for t in ticks)
    spec = charts.band_chart(one, cols, yscale="symlog").to_dict()
    y_axes = [layer["encoding"]["y"]["axis"]["values"] for layer in spec["layer"]
              if "axis" in layer["encoding"].get("y", {})]
    assert y_axes and all(0.0 in values for values in y_axes)
    assert charts.symlog_ticks(one, cols, (-0.5, 0.3), 0.01) == [
        -0.5, -0.2, -0.1, -0.05, -0.02, -0.01, 0.0, 0.01, 0.02, 0.05, 0.1, 0.2]


@pytest.mark.parametrize("layout", ["overlay", "side"])
def test_layer_picker_filters_every_layer_of_the_bands(wide, layout):
    two = pd.concat([wide, wide.assign(run="b", name="baseline")], ignore_index=True)
    chart = charts.band_chart(two if layout == "side" else wide, frames.band_columns(wide),
                              layout=layout, layers=list(LAYERS))
    if layout == "side":  # one panel per run: check the first panel's layers
        spec = chart.to_dict()
        spec = {**spec["hconcat"][0], "params": spec["params"], "datasets": spec["datasets"]}
    else:
        spec = chart.to_dict()
    (param,) = [p for p in spec["params"] if p["name"] == "layer"]
    assert param["bind"]["options"] == list(LAYERS) and param["value"] == LAYERS[0]
    assert all({"filter": "(datum.layer === layer)"} in layer["transform"] for layer in spec["layer"])
    # every layer of the chart (fills, lines, hover points) has the rows the picker filters on
    for layer in spec["layer"]:
        rows = spec["datasets"][layer["data"]["name"]]
        assert rows and all(row.get("layer") in LAYERS for row in rows)
        assert {row["layer"] for row in rows} == set(LAYERS)


def test_bound_check_box_hides_only_the_bound_lines(wide):
    cols = frames.band_columns(wide)
    spec = charts.band_chart(wide, cols, layout="overlay", layers=list(LAYERS), bound_box=True).to_dict()
    assert {"name": "bounds", "value": True} | {"bind": {"input": "checkbox", "name": "bound lines "}} in spec["params"]
    filtered = [layer for layer in spec["layer"] if any(
        "bounds ||" in str(t.get("filter")) for t in layer.get("transform", []))]
    assert [layer["mark"]["type"] for layer in filtered] == ["line"]
    plain = wide.assign(bound=np.nan)  # no bound: no check box
    spec = charts.band_chart(plain, cols, layout="overlay", bound_box=True).to_dict()
    assert all(p["name"] != "bounds" for p in spec.get("params", []))
