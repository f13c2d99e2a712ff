"""Frames and Altair charts of the Histograms page: the recorded histograms over epochs (heatmap
and TensorBoard-style offset ridgelines), gradient bands beside weight bands, and the update
ratio per layer on a log axis with the customary 1e-3 reference line.

Each ``*_frame`` reads one run's opened Dataset into a tidy frame (``run`` first); each
``*_chart`` draws frames of one or more runs, side by side in columns.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from wcviz.record.measures import UPDATE_RATIO_REFERENCE

#: Panel size of one run's chart (pixels).
WIDTH, HEIGHT = 300, 240
#: At most this many records are drawn as ridgelines (evenly spaced, the last always).
MAX_RIDGES = 30
#: A ridge is this many offsets tall at the layer's largest count.
RIDGE_OVERLAP = 2.0


def histogram_frame(ds, run_id: str, layer: str) -> pd.DataFrame:
    """``run, epoch, epoch_end, lo, hi, centre, count, log_count``: one row per record and bin
    (``epoch_end`` is the next record's epoch, so heatmap cells tile the epoch axis)."""
    epochs = np.asarray(ds["epoch"].values, dtype=float)
    edges = np.asarray(ds["bin_edges"].sel(layer=layer).values, dtype=float)
    counts = np.asarray(ds["weight_histogram"].sel(layer=layer).values, dtype=float)
    step = np.diff(epochs)[-1] if len(epochs) > 1 else 1.0
    ends = np.append(epochs[1:], epochs[-1] + step)
    n_epochs, n_bins = counts.shape
    frame = pd.DataFrame({
        "run": run_id, "epoch": np.repeat(epochs, n_bins), "epoch_end": np.repeat(ends, n_bins),
        "lo": np.tile(edges[:-1], n_epochs), "hi": np.tile(edges[1:], n_epochs),
        "count": counts.ravel()})
    frame["centre"] = (frame["lo"] + frame["hi"]) / 2
    frame["log_count"] = np.log10(1 + frame["count"].fillna(0))
    return frame


def ridge_frame(hist: pd.DataFrame) -> pd.DataFrame:
    """``hist`` (one run) reduced to at most :data:`MAX_RIDGES` records, with each record's
    ``base`` (−rank: the first on top) and ``top`` (base + its counts scaled so the largest
    count spans :data:`RIDGE_OVERLAP` offsets)."""
    epochs = np.sort(hist["epoch"].unique())
    keep = epochs[np.unique(np.linspace(0, len(epochs) - 1, min(MAX_RIDGES, len(epochs)))
                            .round().astype(int))]
    out = hist[hist["epoch"].isin(keep)].copy()
    rank = {e: i for i, e in enumerate(keep)}
    out["base"] = -out["epoch"].map(rank).astype(float)
    peak = out["count"].max()
    out["top"] = out["base"] + RIDGE_OVERLAP * out["count"].fillna(0) / (peak if peak > 0 else 1)
    return out


def heatmap_chart(frame: pd.DataFrame) -> alt.FacetChart:
    """Epoch × weight value, colour log10(1 + count); one column per run."""
    base = alt.Chart(frame).mark_rect().encode(
        x=alt.X("epoch:Q", title="epoch"), x2="epoch_end:Q",
        y=alt.Y("lo:Q", title="weight value w"), y2="hi:Q",
        color=alt.Color("log_count:Q", title="log10(1 + count)",
                        scale=alt.Scale(scheme="viridis")),
        tooltip=["run", "epoch", alt.Tooltip("lo:Q", format=".4g"),
                 alt.Tooltip("hi:Q", format=".4g"), "count"],
    ).properties(width=WIDTH, height=HEIGHT)
    return base.facet(column=alt.Column("run:N", title=None))


def ridgeline_chart(frame: pd.DataFrame) -> alt.FacetChart:
    """TensorBoard's offset histograms: one filled curve per record, the first on top, later
    ones lower and darker; one column per run (``frame`` from :func:`ridge_frame`)."""
    base = alt.Chart(frame).mark_area(opacity=0.85, stroke="black", strokeWidth=0.5).encode(
        x=alt.X("centre:Q", title="weight value w"),
        y=alt.Y("top:Q", title="record (first on top)", axis=alt.Axis(labels=False, ticks=False)),
        y2="base:Q",
        color=alt.Color("epoch:Q", title="epoch", scale=alt.Scale(scheme="orangered")),
        detail="epoch:Q", order=alt.Order("epoch:Q", sort="ascending"),
        tooltip=["run", "epoch", alt.Tooltip("centre:Q", format=".4g"), "count"],
    ).properties(width=WIDTH, height=HEIGHT + 80)
    return base.facet(column=alt.Column("run:N", title=None))


def grad_band_frame(ds, run_id: str, layer: str) -> pd.DataFrame | None:
    """``run, quantity, epoch, lo, hi, pair, median``: the weight's and the gradient's nested
    bands (symmetric quantile pairs) of one layer; None when the run recorded no gradients."""
    if "grad_quantile" not in ds:
        return None
    levels = [float(q) for q in ds["quantile"].values]
    pairs = [(lo, hi) for lo in levels for hi in levels
             if lo < 0.5 < hi and abs(lo + hi - 1) < 1e-9]
    epochs = np.asarray(ds["epoch"].values, dtype=float)
    rows = []
    for var, quantity in (("weight_quantile", "weight w"), ("grad_quantile", "gradient ∂L/∂w")):
        values = np.asarray(ds[var].sel(layer=layer).values, dtype=float)  # (epoch, quantile)
        median = values[:, levels.index(0.5)] if 0.5 in levels else np.full(len(epochs), np.nan)
        for lo, hi in pairs:
            rows.append(pd.DataFrame({
                "run": run_id, "quantity": quantity, "epoch": epochs,
                "lo": values[:, levels.index(lo)], "hi": values[:, levels.index(hi)],
                "pair": f"{100 * lo:g}–{100 * hi:g} %", "median": median}))
    return pd.concat(rows, ignore_index=True)


def grad_band_chart(frame: pd.DataFrame) -> alt.FacetChart:
    """Weight bands beside gradient bands (columns), one row per run; y independent."""
    bands = alt.Chart().mark_area(opacity=0.25).encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("lo:Q", title="value"), y2="hi:Q",
        detail="pair:N", tooltip=["run", "quantity", "epoch", "pair",
                                  alt.Tooltip("lo:Q", format=".4g"),
                                  alt.Tooltip("hi:Q", format=".4g")])
    median = alt.Chart().mark_line(color="black", strokeWidth=1.2).encode(
        x="epoch:Q", y="median:Q")
    return alt.layer(bands, median, data=frame).properties(width=WIDTH, height=HEIGHT).facet(
        column=alt.Column("quantity:N", title=None), row=alt.Row("run:N", title=None),
    ).resolve_scale(y="independent")


def update_ratio_frame(ds, run_id: str) -> pd.DataFrame | None:
    """``run, layer, epoch, ratio``: finite update ratios; None when the run has none."""
    if "update_ratio" not in ds:
        return None
    values = np.asarray(ds["update_ratio"].values, dtype=float)  # (epoch, layer)
    layers = [str(x) for x in ds["layer"].values]
    epochs = np.asarray(ds["epoch"].values, dtype=float)
    frame = pd.DataFrame({"run": run_id, "layer": np.tile(layers, len(epochs)),
                          "epoch": np.repeat(epochs, len(layers)), "ratio": values.ravel()})
    return frame[np.isfinite(frame["ratio"]) & (frame["ratio"] > 0)]


def update_ratio_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """One line per (run, layer) on a log y axis, with the 1e-3 reference rule."""
    lines = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("epoch:Q", title="epoch"),
        y=alt.Y("ratio:Q", title="update ratio ‖Δw‖ / ‖w‖", scale=alt.Scale(type="log")),
        color=alt.Color("layer:N", title="layer", sort=None),
        strokeDash=alt.StrokeDash("run:N", title="run"),
        tooltip=["run", "layer", "epoch", alt.Tooltip("ratio:Q", format=".3g")])
    rule = alt.Chart(pd.DataFrame({"ratio": [UPDATE_RATIO_REFERENCE],
                                   "label": ["1e-3 reference"]})).mark_rule(
        strokeDash=[4, 2], color="black").encode(y="ratio:Q", tooltip=["label"])
    return alt.layer(lines, rule).properties(width=2 * WIDTH, height=HEIGHT)
