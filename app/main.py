"""Entry script of the wcviz dashboard: ``streamlit run app/main.py -- RUNS_ROOT`` (``wcviz dash``
does this).

Draws what every page shares (page config, the sidebar run picker) and hands over to the page
chosen in the navigation. The runs root is the script's argument (default ``./runs``):
Streamlit gives the script what follows ``--`` as ``sys.argv[1:]``.
"""

import sys

import streamlit as st

from wcviz.app import data, ui

# An emoji favicon is inlined as a data URL; a :material/...: one is fetched from a font CDN.
st.set_page_config(page_title="wcviz", page_icon="📈", layout="wide")

PAGES = [
    st.Page("views/runs.py", title="Runs", icon=":material/table_rows:", default=True),
    st.Page("views/distributions.py", title="Distributions", icon=":material/stacked_line_chart:"),
    st.Page("views/histograms.py", title="Histograms", icon=":material/bar_chart:"),
    st.Page("views/near_zero.py", title="Near zero", icon=":material/filter_center_focus:"),
    st.Page("views/compander.py", title="Compander", icon=":material/tune:"),
    st.Page("views/metrics.py", title="Metrics", icon=":material/monitoring:"),
    st.Page("views/sweeps.py", title="Sweeps", icon=":material/grid_on:"),
]

page = st.navigation(PAGES)
scan = ui.current_scan(ui.root(sys.argv[1:]))
data.prefetch(scan.runs)  # open the stores in the background while the user looks around
ui.run_picker(scan)
with data.page_checks():  # each store's link check once this run, before its first read
    page.run()
