"""Histograms page: the recorded histograms over epochs (heatmap, TensorBoard-style ridgelines),
gradient bands beside weight bands, and the update ratio per layer."""

import pandas as pd
import streamlit as st

from wcviz.app import data, ui
from wcviz.report import histcharts

st.title("Histograms")
st.caption("Every record holds an 81-bin histogram of each layer's weights over edges fixed at "
           "epoch 0. Heatmap: epochs across, weight values up, colour = log10(1 + count). "
           "Ridgelines: TensorBoard's offset view, one curve per record, the first on top. "
           "Gradients: the weight's percentile bands beside those of ∂L/∂w (runs recorded with "
           "gradients=True). Update ratio: ‖w_t − w_prev‖ / ‖w_prev‖ between records, log axis, "
           "with the customary 1e-3 line.")
scan = ui.page_scan()
runs = ui.require_selection(scan)

names = list(dict.fromkeys(name for r in runs for name in data.layers(r)))  # model order
top = st.columns([4, 5])
layer = top[0].selectbox("Layer (model order)", names, key="hist_layer")
view = top[1].radio("View", ["heatmap", "ridgelines", "gradients", "update ratio"],
                    key="hist_view", horizontal=True)


def _frames(fresh, build) -> tuple[list[pd.DataFrame], list]:
    """(``build(ds, run_id)`` of every run that has ``layer``, those runs' datasets); runs
    without the layer or the variable (``build`` returns None) are named in one line."""
    frames, shown, lacking = [], [], []
    for run in fresh:
        frame = None
        if view == "update ratio" or layer in data.layers(run):
            frame = build(data.dataset(run), run.run_id)
        if frame is None:
            lacking.append(run.run_id)
        else:
            frames.append(frame)
            shown.append(data.dataset(run))
    if lacking:
        needs = {"gradients": "no gradients recorded (wcviz.Recorder(..., gradients=True))",
                 "update ratio": "no update ratio recorded (an older wcviz, or "
                                 "update_ratio=False)"}.get(view, f"no layer {layer!r}")
        st.info(f"Not shown, {needs}: {', '.join(lacking)}")
    return frames, shown


def _figure(datasets):
    """The view as a matplotlib figure (:mod:`wcviz.report.plots`), drawn when downloaded."""
    from wcviz.report import plots

    if view == "update ratio":
        return plots.update_ratio_plot(datasets)
    draw = {"heatmap": plots.histogram_heatmap, "ridgelines": plots.histogram_ridgelines,
            "gradients": plots.gradient_bands}[view]
    return draw(datasets, layer)


def body(fresh):
    if view in ("heatmap", "ridgelines"):
        frames, shown = _frames(fresh,
                                lambda ds, rid: histcharts.histogram_frame(ds, rid, layer))
        if view == "ridgelines":
            frames = [histcharts.ridge_frame(f) for f in frames]
        chart = histcharts.heatmap_chart if view == "heatmap" else histcharts.ridgeline_chart
    elif view == "gradients":
        frames, shown = _frames(fresh,
                                lambda ds, rid: histcharts.grad_band_frame(ds, rid, layer))
        chart = histcharts.grad_band_chart
    else:
        frames, shown = _frames(fresh, histcharts.update_ratio_frame)
        chart = histcharts.update_ratio_chart
    frames = [f for f in frames if len(f)]
    if not frames:
        return
    frame = pd.concat(frames, ignore_index=True)
    st.altair_chart(chart(frame), width="content", key="hist_chart")
    st.caption(ui.status_line(fresh))
    ui.downloads(f"{view.replace(' ', '_')}_{layer}", frame, lambda: _figure(shown),
                 key="hist_export")


ui.live(runs, body)
