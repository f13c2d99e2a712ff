"""Compander page: the learnable a and b of each layer over epochs."""

import streamlit as st

from wcviz.report import charts
from wcviz.app import data, export, ui

st.title("Compander")
scan = ui.page_scan()
runs = ui.require_selection(scan)

learnable = [r for r in runs if data.is_learnable(r)]
fixed = [r for r in runs if not data.is_learnable(r)]
if fixed:
    def _fixed(run):
        method = run.attr("method") or "none"
        if method == "none":
            return f"{run.run_id} (plain weights)"
        return f"{run.run_id} ({method}, a={run.attr('a')}, b={run.attr('b')})"

    st.caption("Not learnable, so not plotted: " + ", ".join(ui.md(_fixed(r)) for r in fixed))
if not learnable:
    st.info("None of the selected runs learns its a, b (store attribute learnable = fine/coarse).")
    st.stop()


def body(fresh):
    frame = data.compander(fresh)
    if frame.empty:
        st.info("No a, b recorded yet.")
        return
    st.altair_chart(charts.compander_chart(frame), width="content", key="ab_chart")
    st.caption(ui.status_line(fresh))
    target = fresh[0]
    if len(fresh) > 1:
        ids = [r.run_id for r in fresh]
        target = fresh[ids.index(st.selectbox("Run to export as a figure", ids, key="ab_export_run"))]
    ui.downloads(f"compander_ab_{target.run_id.replace('/', '--')}", frame, lambda: export.compander_figure(target),
              key="ab_export")


ui.live(learnable, body)
