"""Near-zero page: the fraction of weights with |w| below a threshold, over epochs and by depth."""

import streamlit as st

from wcviz.report import charts
from wcviz.app import data, export, ui

st.title("Near zero")
scan = ui.page_scan()
runs = ui.require_selection(scan)

thresholds = data.thresholds(runs)
if not thresholds:
    st.info("The selected runs recorded no near-zero thresholds.")
    st.stop()
names = list(dict.fromkeys(name for r in runs for name in data.layers(r)))
top = st.columns([2, 4])
default = data.default_threshold(runs)
threshold = top[0].selectbox("Threshold", thresholds, key="nz_threshold",
                             index=thresholds.index(default) if default in thresholds else 0,
                             help="abs=x: |w| < x; rel=x: |w| < x·std at epoch 0; std=x: |w| < x·std "
                                  "of that epoch; med=x: |w| < x·median|w| of that epoch "
                                  "(definitions: wcviz.record.measures). The default is the figures'.")
choices = data.layer_choices(names)  # at most data.MAX_LAYER_CHOICES: a 10^6 list stalls the page
scope = top[1].selectbox("Over epochs: layer", ["all layers (size-weighted)", *choices], key="nz_layer",
                         help=None if len(choices) == len(names) else
                         f"the first {len(choices):,} of {len(names):,} layers in model order")


def body(fresh):
    frame = data.near_zero(fresh)
    frame = frame[frame["threshold"] == threshold]
    one_layer = None if scope.startswith("all layers") else scope
    # the whole network is weighted per run first; seed groups fold the weighted fractions
    over = data.near_zero_overall(frame) if one_layer is None else frame[frame["layer"] == scope]
    over_figure, depth_figure = export.near_zero_figure, export.near_zero_depth_figure
    if ui.grouped():
        over, frame = data.fold_near_zero(over, fresh), data.fold_near_zero(frame, fresh)
        over_figure, depth_figure = export.seed_near_zero_figure, export.seed_near_zero_depth_figure
    st.subheader("Over epochs")
    st.altair_chart(charts.near_zero_over_epochs(over), width="content", key="nz_epochs_chart")
    ui.downloads(f"near_zero_{threshold}", over,
              lambda: over_figure(fresh, threshold, one_layer), key="nz_export")

    st.subheader("By layer depth")
    epochs = sorted(set(frame["epoch"]))
    if not epochs:
        return
    if len(epochs) > 1:
        epoch = st.select_slider("Epoch", epochs, value=epochs[-1], key=f"nz_epoch_{len(epochs)}")
    else:
        epoch = epochs[0]
    depth = frame[frame["epoch"] == epoch]
    st.altair_chart(charts.near_zero_by_depth(depth), width="content", key="nz_depth_chart")
    st.caption(ui.status_line(fresh))
    ui.downloads(f"near_zero_by_depth_{threshold}_epoch{epoch:g}", depth,
              lambda: depth_figure(fresh, threshold, epoch), key="nz_depth_export")


ui.live(runs, body)
