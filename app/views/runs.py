"""Runs page: every run under the root in one filterable table; selecting rows selects runs."""

import streamlit as st

from app import data, ui

st.title("Runs")
scan = ui.page_scan()
if scan.problems:
    with st.expander(f"{len(scan.problems)} unreadable run store(s)", expanded=True,
                     icon=":material/warning:"):
        st.dataframe([{"path": p.path, "error": p.error} for p in scan.problems],
                     hide_index=True, width="stretch")
if not scan.runs:
    st.info(f"No runs under {scan.root}. Record some with `wcviz demo` or `wcviz train`.")
    st.stop()

pending = data.prefetch(scan.runs)
table = data.runs_table(scan, accuracy="ready")
cols = st.columns([3, 2, 2, 2, 2])
text = cols[0].text_input("Filter", placeholder="any text: model, method, seed, ...", key="runs_filter")
choices = {}
for col, name in zip(cols[1:], ("status", "method", "model", "dataset")):
    options = sorted(set(table[name]) - {""})
    choices[name] = col.multiselect(name, options, key=f"runs_filter_{name}")
shown = data.filter_table(table, text, **choices).reset_index(drop=True)

TABLE_KEY = "runs_table"
SHOWN_ROWS = "_runs_table_shown_rows"  # the rows this script last drew as selected
shown_ids = list(shown["run"])
# Show the current selection (sidebar or earlier clicks) as selected rows of this table.
chosen = st.session_state.get(ui.SELECTED, [])
rows = [shown_ids.index(i) for i in chosen if i in shown_ids]
st.session_state[TABLE_KEY] = {"selection": {"rows": rows, "columns": []}}


def _on_select() -> None:
    rows = st.session_state[TABLE_KEY]["selection"]["rows"]
    # A rerun started by another widget (the sidebar picker) also reports this table's state,
    # as the browser last knew it; Streamlit takes that for a change because the script set the
    # state itself. Only rows that differ from what was drawn are a user's click: without this
    # check, picking a run in the sidebar was undone at once by the stale, empty table state.
    if sorted(rows) == sorted(st.session_state.get(SHOWN_ROWS, [])):
        return
    picked = [shown_ids[i] for i in rows if i < len(shown_ids)]
    hidden = [i for i in st.session_state.get(ui.SELECTED, []) if i not in shown_ids]
    st.session_state[ui.SELECTED] = hidden + picked  # filtered-out selections stay selected


st.dataframe(
    shown, key=TABLE_KEY, on_select=_on_select, selection_mode="multi-row", hide_index=True,
    width="stretch",
    column_config={
        "name": st.column_config.TextColumn(help="the run's name in figures and tables"),
        "best_val_test_acc": st.column_config.NumberColumn(
            "test acc at best val (%)", format="%.2f",
            help="test accuracy at the epoch of best validation accuracy, in % (as in "
                 "'wcviz table' and the demo's table)"),
        "best_val_epoch": st.column_config.NumberColumn("best val epoch", format="%g"),
        "records": st.column_config.NumberColumn(help="committed records (epoch 0 included)"),
        "last_epoch": st.column_config.NumberColumn("epochs", format="%g",
                                                    help="last recorded epoch"),
    },
)
st.session_state[SHOWN_ROWS] = rows
st.caption(f"{len(shown)} of {len(table)} runs shown · {len(chosen)} selected. "
           "Select rows (or use the sidebar) to choose the runs the other pages show.")


@st.fragment(run_every=1.0 if pending else None)
def _fill_in() -> None:
    """While stores are being opened in the background, say so; redraw once they all are."""
    left = data.prefetch(scan.runs)
    if left == 0 and pending:
        st.rerun(scope="app")
    if left:
        st.caption(f"Reading epochs and accuracy of {left} run(s) in the background…")


_fill_in()
