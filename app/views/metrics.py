"""Metrics page: loss and accuracy curves of the selected runs."""

import streamlit as st

from wcviz.report import charts
from wcviz.app import data, export, ui

st.title("Metrics")
scan = ui.page_scan()
runs = ui.require_selection(scan)


def body(fresh):
    frame = data.metrics(fresh)
    if frame[frame["kind"].isin(["loss", "acc"])].empty:
        st.info("No loss or accuracy recorded yet.")
        return
    figure = lambda: export.metrics_figure(fresh)  # noqa: E731
    if ui.grouped():
        frame = data.fold_metrics(frame, fresh)
        figure = lambda: export.seed_metrics_figure(fresh)  # noqa: E731
    st.altair_chart(charts.metrics_chart(frame), width="content", key="metrics_chart")
    st.caption(ui.status_line(fresh))
    ui.downloads("metrics", frame, figure, key="metrics_export")


ui.live(runs, body)
