"""Sweeps page: the (a, b) grid search of the runs under the root, one heatmap per summary.

Each cell is the mean over the seeds of one (a, b) (count and spread on hover); the baseline's
value is marked (the accuracy colours diverge around it). Clicking cells selects their runs for
the other pages.
"""

import streamlit as st

from wcviz.report import charts
from wcviz.app import data, export, ui
from wcviz.report.sweep import SWEEP_METRICS, baseline_values, is_grid_run, sweep_cells

st.title("Sweeps")
scan = ui.page_scan()
if not scan.runs:
    st.info(f"No runs under {ui.md(scan.root)}.")
    st.stop()

rows = data.sweep_rows(list(scan.runs))
setups = sorted(set(zip(rows["dataset"].astype(str), rows["model"].astype(str))))
if len(setups) > 1:
    dataset, model = st.selectbox("Dataset and model", setups, key="sweep_setup",
                                  format_func=lambda setup: " / ".join(setup))
    rows = rows[(rows["dataset"].astype(str) == dataset) & (rows["model"].astype(str) == model)]
# One method per grid: arctan and arsinh runs at the same (a, b) would share a cell.
methods = sorted(set(rows.loc[rows.apply(is_grid_run, axis=1), "method"].astype(str))) if len(rows) else []
if len(methods) > 1:
    method = st.selectbox("Method", methods, key="sweep_method")
    rows = rows[(rows["method"].astype(str) == method) | (rows["method"].astype(str) == "none")]
cells = sweep_cells(rows)
if cells.empty:
    st.info("No sweep here: no run has a fixed compander a and b. A grid search is runs of WC at "
            "several (a, b) values (e.g. 'wcviz sweep'); learnable runs are not on the grid.")
    st.stop()
base = baseline_values(rows)
st.caption("Mean over seeds per (a, b); hover a cell for the seed count, the spread (std) and "
           "its runs; click cells (shift-click for more) to select their runs. "
           + (f"Baseline: {base['best_val_test_acc']:.2f} % test acc at best val, "
              f"{base['near_zero']:.3g} near zero; the accuracy colours diverge around it."
              if base["best_val_test_acc"] == base["best_val_test_acc"] else "No baseline run."))


def _select_cells(key: str) -> None:
    """Cells clicked in a heatmap select their runs (the sidebar picker's value)."""
    runs = data.cell_runs(cells, st.session_state[key]["selection"].get("cell", []))
    if runs:
        st.session_state[ui.SELECTED] = runs


cols = st.columns(len(SWEEP_METRICS))
for col, metric in zip(cols, SWEEP_METRICS):
    key = f"sweep_{metric}"
    with col:
        st.altair_chart(charts.sweep_heatmap(cells, metric, base[metric]), key=key,
                        on_select=lambda key=key: _select_cells(key), selection_mode="cell",
                        width="content")
best = cells.sort_values("best_val_test_acc", ascending=False).iloc[0]
st.markdown(f"**Best (a, b)**: a = {best['a']:g}, b = {best['b']:g}: "
            f"{best['best_val_test_acc']:.2f} % (n = {int(best['best_val_test_acc_n'])}).")
ui.downloads("sweep_ab", cells, lambda: export.sweep_figure(rows), key="sweep_export")
